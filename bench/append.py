"""What an append costs beside a full re-sync, and that it does not grow with the dataset.

    python bench/append.py [--rows 200000 1000000] [--append 1000]

For each size, in a fresh temporary data directory: the mixed file of ROWS rows
(bench/.data/mixed-ROWS-seed0.csv) synced as version 1 (the sync the server runs, by the
worker's own step, in this process), then APPEND rows of another mixed file (seed 1, the same
columns) synced as version 2 with ``mode=append``, then the whole (ROWS + APPEND rows) synced
from scratch as version 3 with ``mode=replace``, which is what a client without append would
send. Prints the wall time of each, and the bytes the append wrote: the new version's own
files, plus what it wrote after the ends of those it shares with version 1 by hard links.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

from common import REPO, cached_csv

sys.path.insert(0, str(REPO))

from streaming.jobs import Jobs  # noqa: E402
from streaming.settings import Settings  # noqa: E402
from streaming.store import Store  # noqa: E402
from sync_worker import sync_all  # noqa: E402


def _write(path: Path, header: bytes, lines: list[bytes]) -> dict[str, object]:
    with open(path, "wb") as f:
        f.write(header)
        f.writelines(lines)
    data = path.read_bytes()
    return {"filename": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _timed_sync(settings: Settings, jobs: Jobs, job_id: str) -> float:
    started = time.perf_counter()
    sync_all(settings)
    elapsed = time.perf_counter() - started
    job = jobs.get(job_id)
    if job["status"] != "done":
        raise SystemExit(f"sync failed: {job['error']}")
    return elapsed


def _queue(store: Store, jobs: Jobs, job_id: str, source: dict[str, object], mode: str) -> None:
    claim = jobs.lock(job_id)
    assert claim is not None
    try:
        jobs.retry(job_id, source=source, mode=mode)
    finally:
        claim.release()


def measure(rows: int, appended: int) -> dict[str, float]:
    with open(cached_csv(rows), "rb") as f:
        header = f.readline()
        lines = f.readlines()
    with open(cached_csv(max(5000, appended), seed=1), "rb") as f:
        f.readline()
        lines += list(islice(f, appended))
    with tempfile.TemporaryDirectory(prefix="rillet-append-") as tmp:
        settings = Settings.from_env({}, data_dir=Path(tmp) / "data", sync_worker=False)
        store = Store(settings.data_dir)
        jobs = Jobs(store)
        ids = store.new_ids()
        upload = store.upload_path(ids.job)
        base = _write(upload, header, lines[:rows])
        jobs.create(ids.job, ids.dataset, "mixed", base, {"delimiter": None, "encoding": None})
        synced = _timed_sync(settings, jobs, ids.job)
        more = _write(upload, header, lines[rows:])
        _queue(store, jobs, ids.job, more, "append")
        append = _timed_sync(settings, jobs, ids.job)
        _, one = store.resolve(ids.dataset, 1)
        _, two = store.resolve(ids.dataset, 2)
        shared = {f.name for f in two.iterdir() if f.stat().st_nlink > 1}
        written = sum(f.stat().st_size for f in two.iterdir() if f.name not in shared)
        grown = sum((two / n).stat().st_size - (one / n).stat().st_size for n in shared)
        whole = _write(upload, header, lines)
        _queue(store, jobs, ids.job, whole, "replace")
        resync = _timed_sync(settings, jobs, ids.job)
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    return {
        "sync": synced,
        "append": append,
        "resync": resync,
        "written_mib": (written + grown) / 2**20,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--append", type=int, default=1000)
    args = parser.parse_args()
    print(f"{'rows':>10} {'sync':>8} {'append':>8} {'re-sync':>8} {'append wrote':>13}")
    for rows in args.rows:
        found = measure(rows, args.append)
        print(
            f"{rows:>10,} {found['sync']:>7.2f}s {found['append']:>7.2f}s "
            f"{found['resync']:>7.2f}s {found['written_mib']:>9.2f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
