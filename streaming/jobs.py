"""Sync jobs: records on disk, a queue that workers claim atomically, recovery after a crash.

A job is ``jobs/JOB.json`` (replaced atomically on every change) plus a marker that says
where it stands::

    queue/TIME_JOB   waiting; TIME orders the queue
    running/JOB      claimed by a worker, which holds an exclusive flock on locks/JOB.lock

A worker claims a job by taking the job's lock and then renaming its queue marker to
running/: a rename succeeds for exactly one worker, so two never take the same job. The kernel
drops a flock when its holder dies, however it dies, so a running marker whose lock can be
taken belongs to a dead worker: ``recover`` puts it back in the queue, or fails it once it has
been tried SYNC_ATTEMPTS times. Nothing is ever left 'running'.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streaming.errors import NotFound, RilletError
from streaming.store import JOB_ID, Store, check_job_id, utc_now, write_atomic

# What GET /jobs/JOB shows of a job record (the rest is the worker's bookkeeping).
PUBLIC_FIELDS = (
    "id",
    "dataset_id",
    "status",
    "progress",
    "error",
    "created_at",
    "started_at",
    "finished_at",
)


SETTLE_SECONDS = 2.0  # the longest ``lock_settled`` waits for a worker to give a job up


@dataclass
class Claim:
    """A job this process has claimed; the lock is held until ``release``."""

    job_id: str
    lock_fd: int

    def release(self) -> None:
        os.close(self.lock_fd)


class Jobs:
    def __init__(self, store: Store) -> None:
        self.store = store
        root = store.root
        self._records = root / "jobs"
        self._queue = root / "queue"
        self._running = root / "running"
        self._locks = root / "locks"

    # records ---------------------------------------------------------------------------

    def _path(self, job_id: str) -> Path:
        return self._records / f"{check_job_id(job_id)}.json"

    def get(self, job_id: str) -> dict[str, Any]:
        try:
            with open(self._path(job_id), "rb") as f:
                job: dict[str, Any] = orjson.loads(f.read())
                return job
        except FileNotFoundError:
            raise NotFound(f"job {job_id!r} does not exist") from None

    def find(self, job_id: str) -> dict[str, Any] | None:
        try:
            return self.get(job_id)
        except NotFound:
            return None

    def _write(self, job: dict[str, Any]) -> None:
        write_atomic(self._path(job["id"]), orjson.dumps(job))

    def update(self, job_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of a job record (only its current worker writes it)."""
        job = self.get(job_id)
        job.update(fields)
        self._write(job)
        return job

    def create(
        self,
        job_id: str,
        dataset_id: str,
        name: str,
        source: dict[str, Any],
        options: dict[str, Any],
    ) -> dict[str, Any]:
        """Record a new job and queue it."""
        job = {
            "id": job_id,
            "dataset_id": dataset_id,
            "name": name,
            "status": "queued",
            "progress": progress(0, source["bytes"], 0),
            "error": None,
            "created_at": utc_now(),
            "started_at": None,
            "finished_at": None,
            "attempts": 0,
            "source": source,
            "options": options,
            "publishes": 1,  # the version its sync makes (``published``)
        }
        self._write(job)
        self._enqueue(job_id)
        return job

    def retry(self, job_id: str, **fields: Any) -> dict[str, Any]:
        """Queue a finished job again, as new (a source fetched again, or new data in
        ``fields``: its ``source``, ``mode`` and ``sync_options``, the reading options of that
        data alone); the caller holds its lock, so no worker is running it. The sync makes the
        dataset's next version."""
        dataset_id = self.store.dataset_of(job_id)
        job = self.update(
            job_id,
            status="queued",
            error=None,
            attempts=0,
            started_at=None,
            finished_at=None,
            progress=progress(0, fields.get("source", {}).get("bytes", 0), 0),
            publishes=self.store.current_version(dataset_id) + 1,
            changed=None,  # a source's fetch says again whether it changed
            **{"mode": "replace", "sync_options": None, **fields},
        )
        self._enqueue(job_id)
        return job

    def delete(self, job_id: str) -> None:
        """Forget a job that is not running (its record, queue marker and upload)."""
        for marker in self._markers(job_id):
            _unlink(self._queue / marker)
        _unlink(self._path(job_id))
        _unlink(self.store.upload_path(job_id))

    # queue -----------------------------------------------------------------------------

    def _enqueue(self, job_id: str) -> None:
        (self._queue / f"{time.time_ns():020d}_{job_id}").touch()

    def _markers(self, job_id: str) -> list[str]:
        return [m for m in os.listdir(self._queue) if m.endswith("_" + job_id)]

    def lock(self, job_id: str) -> Claim | None:
        """Hold a job's lock, as a worker running it would; None if someone holds it."""
        fd = self._try_lock(check_job_id(job_id))
        if fd is None:
            return None
        if self.is_running(job_id):  # claimed, and its worker died: recovery's business
            os.close(fd)
            return None
        return Claim(job_id, fd)

    def lock_settled(self, job_id: str, wait: float = SETTLE_SECONDS) -> Claim | None:
        """``lock``, waiting out a worker that has recorded the job's outcome and is giving
        it up (a few milliseconds), so that a client that saw "done" and at once asks for more
        is not told the job is busy; None if a worker holds it otherwise."""
        deadline = time.monotonic() + wait
        while (claim := self.lock(job_id)) is None:
            job = self.find(job_id)
            if job is None or job["status"] not in ("done", "failed"):
                return None
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        return claim

    def is_running(self, job_id: str) -> bool:
        return (self._running / check_job_id(job_id)).exists()

    def counts(self) -> dict[str, int]:
        return {"queued": len(os.listdir(self._queue)), "running": len(os.listdir(self._running))}

    def claim(self) -> Claim | None:
        """Take the oldest queued job, or None if the queue is empty."""
        for marker in sorted(os.listdir(self._queue)):
            job_id = marker.partition("_")[2]
            if not JOB_ID.fullmatch(job_id):
                continue
            lock_fd = self._try_lock(job_id)
            if lock_fd is None:
                continue
            try:
                os.rename(self._queue / marker, self._running / job_id)
            except FileNotFoundError:  # another worker took it first
                os.close(lock_fd)
                continue
            return Claim(job_id, lock_fd)
        return None

    def start(self, claim: Claim) -> dict[str, Any]:
        """Mark a claimed job running and count the attempt."""
        job = self.get(claim.job_id)
        return self.update(
            claim.job_id, status="running", started_at=utc_now(), attempts=job["attempts"] + 1
        )

    def finish(self, claim: Claim, **fields: Any) -> None:
        """Record the outcome of a claimed job, then give it up."""
        self.update(claim.job_id, finished_at=utc_now(), **fields)
        self.settle(claim)

    def settle(self, claim: Claim) -> None:
        """Give up a claimed job whose outcome is recorded: drop its marker and upload."""
        _unlink(self._running / claim.job_id)
        upload = self.store.upload_path(claim.job_id)
        _unlink(upload)
        _unlink(upload.with_name(upload.name + ".part"))  # a source's fetch cut by a crash
        claim.release()

    def requeue(self, claim: Claim, count_attempt: bool = False) -> None:
        """Put a claimed job back in the queue and give it up."""
        job = self.get(claim.job_id)
        attempts = job["attempts"] if count_attempt else max(0, job["attempts"] - 1)
        self.update(claim.job_id, status="queued", attempts=attempts)
        marker = self._queue / f"{time.time_ns():020d}_{claim.job_id}"
        os.rename(self._running / claim.job_id, marker)
        claim.release()

    def requeue_or_fail(self, claim: Claim, attempts: int, why: str) -> None:
        """After a sync died: queue it again, or fail it once it has had its attempts."""
        job = self.get(claim.job_id)
        if job["attempts"] >= attempts:
            error = {
                "code": "sync_interrupted",
                "message": f"the sync was interrupted {job['attempts']} times ({why})",
                "line": None,
            }
            self.finish(claim, status="failed", error=error)
            return
        self.requeue(claim, count_attempt=True)

    def _try_lock(self, job_id: str) -> int | None:
        fd = os.open(self._locks / f"{job_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    # recovery --------------------------------------------------------------------------

    def recover(self, attempts: int) -> list[str]:
        """Requeue or fail jobs whose worker died; remove their half-written output.

        Returns the ids of the jobs it found orphaned.
        """
        orphans = []
        for job_id in os.listdir(self._running):
            if not JOB_ID.fullmatch(job_id):
                continue
            lock_fd = self._try_lock(job_id)
            if lock_fd is None:
                continue  # its worker is alive
            claim = Claim(job_id, lock_fd)
            if not (self._running / job_id).exists():  # settled while we took the lock
                claim.release()
                continue
            orphans.append(job_id)
            self._sweep_tmp(job_id)
            self.conclude(claim, attempts, "its worker stopped")
        for entry in os.listdir(self.store.tmp):
            job_id = self.store.job_of(entry.partition(".")[0])
            if JOB_ID.fullmatch(job_id) and not self.is_running(job_id):
                self._sweep_tmp(job_id)
        return orphans

    def conclude(self, claim: Claim, attempts: int, why: str, stopping: bool = False) -> None:
        """Give up a claimed job whose sync process has ended, however it ended.

        The record decides, not how the process ended: a sync stopped just after it recorded
        its outcome, or just after it published its dataset, has finished its job.
        """
        record = self.find(claim.job_id)
        if record is None or record["status"] in ("done", "failed"):
            self.settle(claim)
        elif self.published(record):
            self.finish(claim, status="done", error=None)
        else:
            self._sweep_tmp(claim.job_id)  # what the dead sync left half-written
            if stopping:
                self.requeue(claim)  # stopped on purpose: not an attempt that failed
            else:
                self.requeue_or_fail(claim, attempts, why)

    def published(self, record: dict[str, Any]) -> bool:
        """Whether a job's sync has published the version it was queued to make (a sync that
        died between publishing and recording has finished its job)."""
        current = self.store.current_version(record["dataset_id"])
        return current >= record.get("publishes", 1)

    def _sweep_tmp(self, job_id: str) -> None:
        prefix = self.store.dataset_of(job_id) + "."
        for entry in os.listdir(self.store.tmp):
            if entry.startswith(prefix):
                shutil.rmtree(self.store.tmp / entry, ignore_errors=True)


def progress(bytes_read: int, bytes_total: int, rows: int) -> dict[str, Any]:
    """A job's ``progress`` field."""
    fraction = round(min(1.0, bytes_read / bytes_total), 4) if bytes_total else 1.0
    return {
        "bytes_read": bytes_read,
        "bytes_total": bytes_total,
        "rows": rows,
        "fraction": fraction,
    }


def job_error(exc: BaseException) -> dict[str, Any]:
    """A job's ``error`` field for an exception that ended its sync."""
    if isinstance(exc, RilletError):
        return {"code": exc.code, "message": exc.message, "line": exc.extra.get("line")}
    return {"code": "internal", "message": "the sync failed unexpectedly", "line": None}


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
