"""When a dataset's source is fetched again: its schedule, kept on disk so that it survives
restarts, and the decisions made from it (is it due, how long to back off).

One small file per dataset with a source, ``schedule/ID.json``, replaced atomically under an
flock on ``schedule/ID.lock`` held only for the read-modify-write, so the worker loops of
several processes and the web process never lose each other's changes::

    every            seconds between fetches, or null (fetched only when asked)
    etag             validators of the answer the current data came from: sent back as
    last_modified      If-None-Match / If-Modified-Since on the next fetch
    checked_at       when the source was last fetched, changed or not (or last tried)
    next_sync_at     when the worker fetches it next; null without ``every``
    failures         syncs that failed in a row (0 after one that did not)
    last_error       {"code", "message"} of the last failure, null after a success

These are the fields METADATA shows in ``source`` (``shown``), over the ones its first fetch
recorded. ``next_sync_at`` is a time, not a count of intervals: a worker that was stopped for
ten intervals finds it passed, syncs once, and sets the next one ``every`` seconds after that
sync: a restart catches up once. After N failures in a row the next try waits
``every × 2^N`` seconds, at most ``max(every, SOURCE_BACKOFF_MAX)``.

Times are ISO-8601 in UTC, as everywhere in the API; the clock is a ``now`` callable (epoch
seconds) so that tests move time instead of sleeping through it.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from streaming.store import check_dataset_id, write_atomic

Clock = Callable[[], float]
SHOWN = ("every", "etag", "last_modified", "checked_at", "next_sync_at", "failures", "last_error")
_STATE = re.compile(r"(ds_[0-9a-f]{12})\.json")


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def backoff(every: int, failures: int, cap: int) -> int:
    """Seconds to wait after ``failures`` failed syncs in a row (doubling, capped).

    >>> [backoff(60, n, 600) for n in (1, 2, 3, 4, 5)]
    [120, 240, 480, 600, 600]
    """
    return min(every * 2 ** min(failures, 32), max(every, cap))


class Schedules:
    """The schedule files of a data directory, read and changed under their locks."""

    def __init__(self, root: Path, now: Clock = time.time, backoff_max: int = 86400) -> None:
        self.folder = root / "schedule"
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.now = now
        self.backoff_max = backoff_max

    def _path(self, dataset_id: str) -> Path:
        return self.folder / f"{check_dataset_id(dataset_id)}.json"

    def get(self, dataset_id: str) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = orjson.loads(self._path(dataset_id).read_bytes())
        except FileNotFoundError:
            return None
        return state

    def create(self, dataset_id: str, every: int | None) -> None:
        """The schedule of a new source: nothing fetched yet, its first fetch already queued."""
        state = {name: None for name in SHOWN} | {"every": every, "failures": 0}
        with self._locked(dataset_id):
            write_atomic(self._path(dataset_id), orjson.dumps(state))

    def adopt(self, dataset_id: str, every: int | None) -> bool:
        """The schedule of a source created before schedules were kept (its ``every`` in its
        job record alone), due at once when it has an ``every``: it catches up once, then
        keeps time. False if it had one already."""
        state: dict[str, Any] = {name: None for name in SHOWN} | {"every": every, "failures": 0}
        state["next_sync_at"] = iso(self.now()) if every else None
        with self._locked(dataset_id):
            if self._path(dataset_id).exists():
                return False
            write_atomic(self._path(dataset_id), orjson.dumps(state))
        return True

    def forget(self, dataset_id: str) -> None:
        self._path(dataset_id).unlink(missing_ok=True)
        (self.folder / f"{dataset_id}.lock").unlink(missing_ok=True)

    def due(self) -> list[str]:
        """Datasets whose next fetch time has come, oldest first."""
        now = self.now()
        found = []
        for entry in os.listdir(self.folder):
            match = _STATE.fullmatch(entry)
            state = self.get(match.group(1)) if match else None
            if match and state and _is_due(state, now):
                found.append((state["next_sync_at"], match.group(1)))
        return [dataset_id for _, dataset_id in sorted(found)]

    def reserve(self, dataset_id: str) -> bool:
        """Move a due fetch's time on by ``every`` as its sync is queued: another worker that
        looks now finds it not due. False if it was no longer due (another worker queued it)."""
        now = self.now()
        taken = False

        def move_on(state: dict[str, Any]) -> None:
            nonlocal taken
            if _is_due(state, now):
                state["next_sync_at"] = iso(now + state["every"])
                taken = True

        self.update(dataset_id, move_on)
        return taken

    def succeeded(self, dataset_id: str, etag: str | None, last_modified: str | None) -> None:
        """A sync that ended done (changed or not): the validators of the data now served."""
        now = self.now()

        def record(state: dict[str, Any]) -> None:
            every = state["every"]
            state.update(
                etag=etag,
                last_modified=last_modified,
                checked_at=iso(now),
                next_sync_at=iso(now + every) if every else None,
                failures=0,
                last_error=None,
            )

        self.update(dataset_id, record)

    def failed(self, dataset_id: str, error: dict[str, Any] | None) -> None:
        """A sync that failed: counted, said, and the next try backed off."""
        now = self.now()

        def record(state: dict[str, Any]) -> None:
            every, failures = state["every"], state["failures"] + 1
            wait = backoff(every, failures, self.backoff_max) if every else None
            shown_error = {k: (error or {}).get(k) for k in ("code", "message")}
            state.update(
                checked_at=iso(now),
                next_sync_at=iso(now + wait) if wait else None,
                failures=failures,
                last_error=shown_error,
            )

        self.update(dataset_id, record)

    def update(self, dataset_id: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Read, change and write one schedule under its lock; nothing if it is gone (the
        dataset was deleted meanwhile)."""
        with self._locked(dataset_id):
            state = self.get(dataset_id)
            if state is None:
                return
            change(state)
            write_atomic(self._path(dataset_id), orjson.dumps(state))

    @contextmanager
    def _locked(self, dataset_id: str) -> Iterator[None]:
        fd = os.open(
            self.folder / f"{check_dataset_id(dataset_id)}.lock", os.O_RDWR | os.O_CREAT, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held for a read and a small write: brief
            yield
        finally:
            os.close(fd)


def shown(state: dict[str, Any] | None) -> dict[str, Any]:
    """The schedule's fields as METADATA's ``source`` shows them (nothing without a source)."""
    return {name: state.get(name) for name in SHOWN} if state else {}


def with_schedule(meta: bytes, state: dict[str, Any] | None) -> bytes:
    """A METADATA record with its source's schedule laid over ``source``."""
    if not state:
        return meta
    record = orjson.loads(meta)
    record["source"] = {**record.get("source", {}), **shown(state)}
    return orjson.dumps(record)


def _is_due(state: dict[str, Any], now: float) -> bool:
    when = state.get("next_sync_at")
    return bool(state.get("every")) and when is not None and epoch(when) <= now
