"""Webhooks: after a source's sync ends, done or failed, a signed event POSTed to the URL its
dataset names in ``notify``.

An event is never sent by the sync itself: the worker writes it to a persisted outbox, one
file per event, and its notifier thread sends what is due. So a slow or failing receiver never
delays or fails a sync, and an event not yet delivered survives a restart::

    outbox/TIME_DATASET_RAND.json    {"dataset", "body", "attempts", "next_at"}

``body`` is the exact JSON text sent (``{"event", "dataset", "version", "job"}``) and the bytes
the signature covers: ``X-Rillet-Signature: sha256=HEX``, HMAC-SHA256 of the body with the
dataset's notify secret. The URL and the secret live in the dataset's secrets file (0600,
``streaming.sources``), never in the outbox, a log line or a response.

A 2xx answer delivers an event; anything else (another status, a redirect, a refused or cut
connection, a timeout) is a failed attempt, tried again 2, 4, 8, ... seconds later, and given
up after NOTIFY_ATTEMPTS attempts with a warning in the log. The connection goes through the
sources' guarded client, so the address rules are checked as it connects. Two workers never
send one event: a sender holds an flock on the event's file while it sends.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from streaming.schedule import Clock
from streaming.sources import load_secrets, mask_url
from streaming.store import write_atomic

log = logging.getLogger("rillet.notify")
TIMEOUT = 10.0  # seconds for one delivery; a receiver should answer at once and work later
FIRST_WAIT = 2.0  # seconds before the second attempt, doubling after each


def signature(secret: str, body: bytes) -> str:
    """The ``X-Rillet-Signature`` value of ``body``.

    >>> signature("s3cret", b'{"event":"sync.done"}')[:15]
    'sha256=03a6eb67'
    """
    import hashlib
    import hmac  # here, not at the top: it loads OpenSSL, which a sync process never needs

    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Outbox:
    """Events waiting to be sent, on disk."""

    def __init__(self, root: Path, now: Clock = time.time) -> None:
        self.root = root
        self.folder = root / "outbox"
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.now = now

    def add(self, dataset_id: str, event: str, version: int | None, job_id: str) -> None:
        """Queue the event of a sync that ended (only for a dataset with ``notify``)."""
        secrets = load_secrets(self.root, dataset_id) or {}
        if not secrets.get("notify"):
            return
        body = {"event": event, "dataset": dataset_id, "version": version, "job": job_id}
        entry = {
            "dataset": dataset_id,
            "body": orjson.dumps(body).decode(),
            "attempts": 0,
            "next_at": self.now(),
        }
        name = f"{time.time_ns():020d}_{dataset_id}_{os.urandom(3).hex()}.json"
        write_atomic(self.folder / name, orjson.dumps(entry))

    def pending(self) -> list[Path]:
        return [self.folder / n for n in sorted(os.listdir(self.folder)) if n.endswith(".json")]

    def deliver_due(self, allow_private: bool, attempts: int, ca_file: str = "") -> int:
        """Send every event whose time has come, once each; how many were delivered."""
        due = [p for p in self.pending() if _next_at(p) <= self.now()]
        if not due:
            return 0
        from streaming.fetch import guarded_client  # httpx: only in the worker's process

        delivered = 0
        with guarded_client(allow_private, TIMEOUT, ca_file) as client:
            for path in due:
                with _claimed(path) as entry:
                    if entry is not None and entry["next_at"] <= self.now():
                        delivered += self._send(client, path, entry, attempts)
        return delivered

    def _send(self, client: Any, path: Path, entry: dict[str, Any], attempts: int) -> int:
        """One attempt at one event (its file claimed): 1 if it was delivered."""
        notify = (load_secrets(self.root, entry["dataset"]) or {}).get("notify")
        if not notify:  # the dataset was deleted since: nobody to tell
            path.unlink(missing_ok=True)
            return 0
        body = entry["body"].encode()
        headers = {
            "Content-Type": "application/json",
            "X-Rillet-Signature": signature(notify["secret"], body),
            "User-Agent": "rillet-webhook",
        }
        why = ""
        try:
            answer = client.post(notify["url"], content=body, headers=headers)
            if answer.is_success:
                path.unlink(missing_ok=True)
                return 1
            why = f"answered {answer.status_code}"
        except Exception as exc:  # any failure to deliver is one failed attempt, no more
            why = type(exc).__name__
        entry["attempts"] += 1
        shown = mask_url(notify["url"])
        if entry["attempts"] >= attempts:
            log.warning(
                "webhook %s for %s given up after %d attempts (%s)",
                shown,
                entry["dataset"],
                entry["attempts"],
                why,
            )
            path.unlink(missing_ok=True)
            return 0
        entry["next_at"] = self.now() + FIRST_WAIT * 2 ** (entry["attempts"] - 1)
        log.info("webhook %s for %s failed (%s); tried again later", shown, entry["dataset"], why)
        write_atomic(path, orjson.dumps(entry))
        return 0


def _next_at(path: Path) -> float:
    try:
        return float(orjson.loads(path.read_bytes())["next_at"])
    except (FileNotFoundError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return float("inf")  # gone, or being replaced: the next pass sees it


@contextmanager
def _claimed(path: Path) -> Iterator[dict[str, Any] | None]:
    """The event in ``path`` with its file locked by us, or None if another sender holds it or
    it is gone. The lock is on the file itself; since a sender replaces or removes the file
    while it holds the lock, the entry counts only if the path still names what we locked."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except (BlockingIOError, FileNotFoundError):
            same = False
        if not same:
            yield None
            return
        with os.fdopen(os.dup(fd), "rb") as f:
            entry: dict[str, Any] = orjson.loads(f.read())
        yield entry
    finally:
        os.close(fd)
