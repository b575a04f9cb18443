"""The sync worker: turns queued uploads into datasets.

Three ways to run it::

    python sync_worker.py                          # the worker loop (the Procfile's `worker`)
    python sync_worker.py FILE.csv --out DIR       # convert one file, progress bar on stderr
    python sync_worker.py --job JOB                # one claimed job (the loop starts these)
    python sync_worker.py --columns DATASET        # columns for a dataset synced before them

The server runs the same loop in a thread unless SYNC_WORKER=off. Either way the loop claims a
job and converts it in a child process: a sync is CPU-bound Python, and in its own process it
neither holds the server's GIL nor adds to the server's memory, and if it dies (killed, out of
memory) the loop sees it and queues the job again or fails it. The loop holds the job's lock
while the child works, so a worker that dies whole leaves a lock the kernel frees, and the next
worker to start finds the job in ``recover``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from streaming import metadata
from streaming.append import append_version
from streaming.column_backfill import build_columns
from streaming.convert import ROWS_FILE, Progress, convert_csv
from streaming.errors import RilletError
from streaming.jobs import Claim, Jobs, job_error, progress
from streaming.notify import Outbox
from streaming.options import check_roles, reading, upload_options
from streaming.roles import decided_roles
from streaming.schedule import Clock, Schedules
from streaming.settings import Settings
from streaming.store import Store, utc_now

log = logging.getLogger("rillet.worker")
POLL_SECONDS = 0.5
RECOVER_SECONDS = 30.0
SCHEDULE_SECONDS = 5.0  # how often the loop looks for sources due (one small file each)
NOTIFY_SECONDS = 1.0  # how often the notifier looks for webhooks due
PROGRESS_SECONDS = 0.5


class Worker:
    """Claims queued jobs and syncs each, in a child process (``in_process`` for tests and the
    command line: the same step, with the sync run in this process); queues the syncs of
    sources whose time has come, and sends webhooks. ``now`` is the clock of both (epoch
    seconds; tests move it instead of sleeping)."""

    def __init__(
        self, settings: Settings, *, in_process: bool = False, now: Clock = time.time
    ) -> None:
        self.settings = settings
        self.store = Store(settings.data_dir)
        self.jobs = Jobs(self.store)
        self.schedules = Schedules(settings.data_dir, now, settings.source_backoff_max)
        self._adopted = False  # adopt_old_sources has run in this process
        self.outbox = Outbox(settings.data_dir, now)
        self.in_process = in_process
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._children: set[subprocess.Popen[bytes]] = set()  # one per sync thread
        self._lock = threading.Lock()
        self._columned: set[str] = set()  # datasets whose columns were looked at

    def wake(self) -> None:
        """Look at the queue now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; a sync under way is stopped too and its job queued again."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            for child in self._children:
                if child.poll() is None:
                    child.terminate()

    def run_forever(self) -> None:
        last_recover = last_schedule = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_recover > RECOVER_SECONDS:
                last_recover = time.monotonic()
                try:
                    self.recover()
                    self.give_columns()
                except Exception:  # the loop must outlive a failed recovery too
                    log.exception("worker: recovery failed")
            if time.monotonic() - last_schedule > SCHEDULE_SECONDS:
                last_schedule = time.monotonic()
                try:
                    self.schedule_due()
                except Exception:
                    log.exception("worker: looking for sources due failed")
            if not self.step():
                self._wake.wait(POLL_SECONDS)
                self._wake.clear()

    def step(self) -> bool:
        """Claim the oldest queued job and sync it; False if the queue was empty."""
        claim = self.jobs.claim()
        if claim is None:
            return False
        try:
            self.run_claimed(claim)
        except Exception:  # the loop must outlive any one job
            log.exception("worker: job %s could not be run", claim.job_id)
        return True

    def schedule_due(self) -> int:
        """Queue a sync of each source whose next time has come; how many it queued.

        Under the job's lock, as a worker claiming it would hold it, so that of two workers
        (threads or processes) looking at once only one queues it, and a source whose sync is
        queued or running is left alone: one dataset never has two syncs.
        """
        queued = 0
        for dataset_id in self.schedules.due():
            job_id = Store.job_of(dataset_id)
            claim = self.jobs.lock(job_id)
            if claim is None:  # a worker runs it, or the web process is queueing it now
                continue
            try:
                job = self.jobs.find(job_id)
                if job is None or job["status"] in ("queued", "running"):
                    continue
                if self.schedules.reserve(dataset_id):  # still due, now moved on: ours
                    self.jobs.retry(job_id)
                    queued += 1
                    log.info("worker: %s is due; its sync is queued", dataset_id)
            finally:
                claim.release()
        return queued

    def deliver_notifications(self) -> int:
        """Send the webhooks that are due (once each); how many were delivered."""
        settings = self.settings
        return self.outbox.deliver_due(
            settings.source_allow_private, settings.notify_attempts, settings.source_ca_file
        )

    def run_notifier(self) -> None:
        """The notifier thread: webhooks are sent here, never by a sync."""
        while not self._stop.is_set():
            try:
                self.deliver_notifications()
            except Exception:  # the thread must outlive any one delivery
                log.exception("worker: sending webhooks failed")
            self._stop.wait(NOTIFY_SECONDS)

    def start_threads(self, count: int) -> list[threading.Thread]:
        """Run the loop in ``count`` daemon threads of this process, and the notifier in one."""
        threads = [
            threading.Thread(target=self.run_forever, name=f"sync-worker-{n}", daemon=True)
            for n in range(count)
        ]
        threads.append(threading.Thread(target=self.run_notifier, name="notifier", daemon=True))
        for thread in threads:
            thread.start()
        return threads

    def recover(self) -> None:
        for job_id in self.jobs.recover(self.settings.sync_attempts):
            log.warning("worker: recovered job %s from a worker that stopped", job_id)
            self._ended(job_id)  # failed for good (or done): its schedule and webhook
        self.store.empty_trash()
        self.store.drop_stale_incoming()
        self.adopt_old_sources()

    def adopt_old_sources(self) -> None:
        """Give a schedule file to each source created before schedules were kept on disk
        (its ``every`` was in its job record alone): without one it would never be due. Once
        a process: every source made since has its file from its creation."""
        if self._adopted:
            return
        self._adopted = True
        for dataset_id in self.store.ready_ids():
            if self.schedules.get(dataset_id) is not None:
                continue
            job = self.jobs.find(Store.job_of(dataset_id))
            source = (job or {}).get("source") or {}
            if "url" in source and self.schedules.adopt(dataset_id, source.get("every")):
                log.info("worker: %s, a source without a schedule, is given one", dataset_id)

    def give_columns(self) -> None:
        """Build, once each, the columns of ready datasets synced before columns existed (in a
        child process, as a sync: 3.6 s per million rows); until then the rows answer them."""
        for dataset_id in self.store.ready_ids():
            with self._lock:
                if dataset_id in self._columned or self._stop.is_set():
                    continue
                self._columned.add(dataset_id)  # tried once per worker, built or not
            meta = orjson.loads(self.store.meta_bytes(dataset_id) or b"{}")
            if not meta or meta.get("columns_format") is not None:
                continue
            command = [sys.executable, str(Path(__file__).resolve()), "--columns", dataset_id]
            env = dict(os.environ, DATA_DIR=str(self.settings.data_dir))
            done = subprocess.run(command, env=env, check=False)
            if done.returncode != 0:
                log.error("worker: columns for %s failed (code %s)", dataset_id, done.returncode)

    def run_claimed(self, claim: Claim) -> None:
        """Sync a claimed job, then give it up as its record says (done, failed, or queued
        again after a sync that died)."""
        if self.jobs.find(claim.job_id) is None:  # deleted between its queueing and its claim
            self.jobs.settle(claim)
            return
        self.jobs.start(claim)
        if not self._fetch_source(claim):
            return
        if self.in_process:
            sync_job(self.settings, claim.job_id)
            why = "its sync stopped"
        else:
            why = self._sync_in_child(claim)
        ended = self._ended(claim.job_id)  # while the claim is held: nothing queues it again
        self.jobs.conclude(claim, self.settings.sync_attempts, why, stopping=self._stop.is_set())
        if not ended:  # the sync died: conclude failed it, or queued it again
            self._ended(claim.job_id)

    def _fetch_source(self, claim: Claim) -> bool:
        """A source's body into the job's upload file, here in the loop's thread so the sync
        process never loads httpx; False when the job ended without a sync (the fetch failed,
        or found the source unchanged: recorded, settled)."""
        job = self.jobs.get(claim.job_id)
        dest = self.store.upload_path(claim.job_id)
        if "url" not in job["source"] or dest.exists():  # an upload, or fetched already
            return True
        from streaming.fetch import fetch_job_source  # httpx: only in this process

        validators = self.schedules.get(job["dataset_id"]) or {}
        try:
            changed = fetch_job_source(self.settings, self.jobs, job, validators)
        except Exception as exc:
            if not isinstance(exc, RilletError):
                log.exception("worker: fetching the source of %s failed", claim.job_id)
            self.jobs.update(claim.job_id, status="failed", error=job_error(exc))
        else:
            if changed:
                return True
            self.jobs.update(claim.job_id, status="done", error=None)
        self._ended(claim.job_id)
        self.jobs.finish(claim)
        return False

    def _ended(self, job_id: str) -> bool:
        """After a source's sync ended, done or failed: its schedule moved on (or backed off)
        and its webhook queued. False if the job has not ended (its sync died)."""
        job = self.jobs.find(job_id)
        if job is None or job["status"] not in ("done", "failed"):
            return False
        if "url" not in job["source"]:  # an upload: no schedule, no webhook
            return True
        dataset_id = job["dataset_id"]
        try:
            if job["status"] == "done":
                # Validators only of data that came from the source: after new data from a
                # request body, the next fetch is unconditional and its hash decides.
                fetched = job["source"] if job.get("changed") is not None else {}
                etag, modified = fetched.get("etag"), fetched.get("last_modified")
                self.schedules.succeeded(dataset_id, etag, modified)
            else:
                self.schedules.failed(dataset_id, job["error"])
            meta = orjson.loads(self.store.meta_bytes(dataset_id) or b"null")
            # The version readers get now; null while the dataset has no data.
            version = meta.get("version", 1) if meta else None
            self.outbox.add(dataset_id, f"sync.{job['status']}", version, job_id)
        except Exception:  # the job's outcome stands, and its claim must still be given up
            log.exception("worker: recording the end of %s's sync failed", dataset_id)
        return True

    def _sync_in_child(self, claim: Claim) -> str:
        """Run ``sync_job`` in a child process; why it ended, should the record not say."""
        env = dict(
            os.environ,
            DATA_DIR=str(self.settings.data_dir),
            CSV_FIELD_LIMIT_KB=str(self.settings.csv_field_limit_kb),
        )
        # The child inherits the lock's descriptor, so the job stays locked while either
        # lives: a child orphaned by a killed server finishes its sync unbothered by recovery.
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--job", claim.job_id],
            env=env,
            pass_fds=(claim.lock_fd,),
        )
        with self._lock:
            self._children.add(child)
        try:
            child.wait()
        finally:
            with self._lock:
                self._children.discard(child)
        return f"its process exited with code {child.returncode}"


def sync_all(settings: Settings) -> int:
    """Sync every queued job in this process, by the worker's own step; how many it synced."""
    worker = Worker(settings, in_process=True)
    done = 0
    while worker.step():
        done += 1
    return done


def sync_job(settings: Settings, job_id: str) -> None:
    """Convert a claimed job's upload and publish it as the dataset's next version (its first,
    for a new dataset; rows added to the current one's, in ``append`` mode); record done or
    failed. Versions beyond VERSIONS_KEPT are then pruned."""
    store = Store(settings.data_dir)
    jobs = Jobs(store)
    job = jobs.get(job_id)
    dataset_id = job["dataset_id"]
    if jobs.published(job):  # published by an earlier attempt that died recording it
        jobs.update(job_id, status="done", error=None, finished_at=utc_now())
        return
    tmp = store.new_tmp_dir(dataset_id)
    total = job["source"]["bytes"]
    report = _Throttle(PROGRESS_SECONDS)

    def report_progress(bytes_read: int, rows: int) -> None:
        if report.due():
            jobs.update(job_id, progress=progress(bytes_read, total, rows))

    try:
        if job.get("mode") == "append":
            meta = append_version(settings, store, job, tmp, report_progress)
        else:
            meta = _convert(settings, store, job, tmp, report_progress)
        meta = _with_roles(job, tmp, meta)
        store.publish(tmp, dataset_id, meta)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(exc, RilletError):
            log.exception("sync of %s failed", job_id)
        jobs.update(job_id, status="failed", error=job_error(exc), finished_at=utc_now())
        return
    jobs.update(
        job_id,
        status="done",
        finished_at=utc_now(),
        progress=progress(total, total, meta["rows"]),
    )
    for number in store.prune(dataset_id, settings.versions_kept):
        log.info(
            "dataset %s: version %s removed (VERSIONS_KEPT=%s)",
            dataset_id,
            number,
            settings.versions_kept,
        )


def _with_roles(job: dict[str, Any], tmp: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The version's METADATA with every column's role, decided from its statistics and
    sample in ``tmp`` (``streaming.roles``), the job's ``roles`` winning where they fit; a
    role that does not fit fails the job (``role_mismatch``, ``unknown_column``)."""
    given = (job.get("sync_options") or job["options"]).get("roles")
    check_roles(given, meta["columns"])
    return metadata.with_roles(meta, decided_roles(tmp, meta["columns"], given))


def _convert(
    settings: Settings, store: Store, job: dict[str, Any], tmp: Path, report: Progress
) -> dict[str, Any]:
    """The upload converted whole into ``tmp``; the version's METADATA."""
    options = job.get("sync_options") or job["options"]
    conversion = convert_csv(
        store.upload_path(job["id"]),
        tmp,
        delimiter=options.get("delimiter"),
        encoding=options.get("encoding"),
        progress=report,
        field_limit=settings.csv_field_limit_kb * 1024,
        parallel=settings.sync_stats_process,
        reading=reading(options, settings.date_order),
        max_bytes=settings.max_upload_mb * 2**20,
    )
    return metadata.ready(
        job,
        rows=conversion.rows,
        columns=conversion.columns,
        delimiter=conversion.delimiter,
        encoding=conversion.encoding,
        size=sum(f.stat().st_size for f in tmp.iterdir()),
        ready_at=utc_now(),
        columns_format=conversion.columns_format,
        source_format=conversion.format,
    )


class _Throttle:
    """True at most once per ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.seconds:
            self.last = now
            return True
        return False


def convert_one(
    source: Path,
    out: Path,
    delimiter: str | None,
    encoding: str | None,
    query: dict[str, str] | None = None,
) -> int:
    """The command-line conversion of one file, with a progress bar on stderr; ``query``
    holds the upload options as an upload's query would (``types``, ``decimal``, ...)."""
    out.mkdir(parents=True, exist_ok=True)
    total = source.stat().st_size
    started = time.monotonic()
    bar = _Throttle(0.1)

    def draw_progress(bytes_read: int, rows: int) -> None:
        if bar.due():
            _draw(bytes_read, total, rows, time.monotonic() - started)

    settings = Settings.from_env()
    try:
        conversion = convert_csv(
            source,
            out,
            delimiter=delimiter,
            encoding=encoding,
            progress=draw_progress,
            field_limit=settings.csv_field_limit_kb * 1024,
            parallel=settings.sync_stats_process,
            reading=reading(upload_options(query or {}), settings.date_order),
        )
    except RilletError as exc:
        sys.stderr.write(f"\n{source}: {exc.message}\n")
        return 1
    elapsed = time.monotonic() - started
    _draw(total, total, conversion.rows, elapsed)
    size = (out / ROWS_FILE).stat().st_size
    sys.stderr.write(
        f"\n{conversion.rows:,} rows, {len(conversion.columns)} columns -> {out} "
        f"({size / 2**20:.1f} MiB) in {elapsed:.1f} s\n"
    )
    return 0


def _draw(done: int, total: int, rows: int, elapsed: float) -> None:
    fraction = done / total if total else 1.0
    filled = int(fraction * 30)
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:6.1%} "
        f"{done / 2**20:8.1f}/{total / 2**20:.1f} MiB {rows:>12,} rows {elapsed:6.1f} s"
    )
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, help="a CSV file to convert once")
    parser.add_argument("--out", type=Path, help="output directory for FILE")
    parser.add_argument("--delimiter", help="field delimiter (sniffed when absent)")
    parser.add_argument("--encoding", help="text encoding (default utf-8; a BOM is honoured)")
    parser.add_argument("--types", help="forced column types, COL:TYPE,COL:TYPE")
    parser.add_argument("--decimal", help="decimal mark of numbers: . (default) or ,")
    parser.add_argument("--header", help="true (default) or false: the first line is data")
    parser.add_argument("--sheet", help="a workbook's sheet (default: the first)")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--columns", metavar="DATASET", help="build an old dataset's columns")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.file is not None:
        if args.out is None:
            parser.error("FILE needs --out DIR")
        given = {name: getattr(args, name) for name in ("types", "decimal", "header", "sheet")}
        query = {name: value for name, value in given.items() if value is not None}
        return convert_one(args.file, args.out, args.delimiter, args.encoding, query)
    settings = Settings.from_env()
    if args.columns:
        built = build_columns(Store(settings.data_dir), args.columns)
        log.info("columns of %s: %s", args.columns, "built" if built else "already there")
        return 0
    if args.job:
        sync_job(settings, args.job)
        return 0
    worker = Worker(settings)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    log.info("worker: watching %s", settings.data_dir)
    threads = worker.start_threads(settings.sync_concurrency - 1)
    try:
        worker.run_forever()
    except KeyboardInterrupt:
        worker.stop()
    for thread in threads:
        thread.join()
    return 0


def run_in_thread(settings: Settings) -> Worker:
    """Start the worker loop in daemon threads (SYNC_CONCURRENCY of them) of this process."""
    worker = Worker(settings)
    worker.recover()
    worker.start_threads(settings.sync_concurrency)
    return worker


if __name__ == "__main__":
    sys.exit(main())
