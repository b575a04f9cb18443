"""The data directory: where uploads, jobs and datasets live, and how they appear whole.

Layout under DATA_DIR::

    uploads/JOB.csv          the spooled upload, until its sync ends
    jobs/JOB.json            the job record (see streaming.jobs)
    queue/, running/, locks/ job claiming (see streaming.jobs)
    tmp/                     syncs in progress; renamed into datasets/ when complete
    datasets/ID/             a ready dataset: meta.json, stats.json, rows.ndjson, rows.idx,
                             sample.ndjson, and its columns: columns.json (the block table,
                             per block min/max/nulls/crc32) and columns.bin (frame-of-reference
                             integers, floats, dictionary codes, null bitmaps, dictionaries),
                             format in streaming.column_store; meta.json's "columns_format"
                             (1) says they are there (absent: synced before columns existed)
    trash/                   datasets being deleted
    keys.json                hashed API keys (see streaming.web.auth)

A dataset becomes visible by one ``rename`` of its finished directory, so a reader sees all of
it or nothing, and a ready dataset never changes. Ids are checked against a strict pattern
before any path is built from them, so no id can name a path outside the data directory.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from streaming.errors import NotFound

DATASET_ID = re.compile(r"ds_[0-9a-f]{12}")
JOB_ID = re.compile(r"job_[0-9a-f]{12}")
META_FILE = "meta.json"


def utc_now() -> str:
    """The current time as ISO 8601 in UTC, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole."""
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class NewIds:
    dataset: str
    job: str


class Store:
    """Paths and catalogue of the data directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for name in ("uploads", "jobs", "queue", "running", "locks", "tmp", "datasets", "trash"):
            (root / name).mkdir(parents=True, exist_ok=True)
        self.datasets = root / "datasets"
        self.tmp = root / "tmp"

    @staticmethod
    def new_ids() -> NewIds:
        # os.urandom, as the secrets module uses, without importing it: secrets loads hmac and
        # OpenSSL (4 MiB of RSS) into every sync process for nothing.
        token = os.urandom(6).hex()
        return NewIds(dataset=f"ds_{token}", job=f"job_{token}")

    @staticmethod
    def job_of(dataset_id: str) -> str:
        return "job_" + dataset_id.removeprefix("ds_")

    @staticmethod
    def dataset_of(job_id: str) -> str:
        return "ds_" + job_id.removeprefix("job_")

    def upload_path(self, job_id: str) -> Path:
        return self.root / "uploads" / f"{check_job_id(job_id)}.csv"

    def dataset_dir(self, dataset_id: str) -> Path:
        """The directory of a ready dataset (which may not exist)."""
        return self.datasets / check_dataset_id(dataset_id)

    def is_ready(self, dataset_id: str) -> bool:
        return (
            DATASET_ID.fullmatch(dataset_id) is not None
            and (self.datasets / dataset_id / META_FILE).is_file()
        )

    def meta_bytes(self, dataset_id: str) -> bytes | None:
        """The stored METADATA of a ready dataset, as JSON bytes, or None."""
        try:
            with open(self.dataset_dir(dataset_id) / META_FILE, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def ready_ids(self) -> list[str]:
        return sorted(n for n in os.listdir(self.datasets) if DATASET_ID.fullmatch(n))

    def count_ready(self) -> int:
        return sum(1 for n in os.listdir(self.datasets) if DATASET_ID.fullmatch(n))

    def latest_ready(self) -> str | None:
        """The most recently completed dataset (its meta.json is written as it is published)."""
        best: tuple[int, str] | None = None
        for dataset_id in self.ready_ids():
            try:
                stamp = os.stat(self.datasets / dataset_id / META_FILE).st_mtime_ns
            except FileNotFoundError:
                continue
            if best is None or (stamp, dataset_id) > best:
                best = (stamp, dataset_id)
        return best[1] if best else None

    def new_tmp_dir(self, dataset_id: str) -> Path:
        path = self.tmp / f"{check_dataset_id(dataset_id)}.{os.urandom(4).hex()}"
        path.mkdir()
        return path

    def publish(self, tmp_dir: Path, dataset_id: str, meta: dict[str, Any]) -> None:
        """Write meta.json into a finished directory and rename it into place."""
        write_atomic(tmp_dir / META_FILE, orjson.dumps(meta))
        _fsync_dir(tmp_dir)
        os.rename(tmp_dir, self.dataset_dir(dataset_id))
        _fsync_dir(self.datasets)

    def delete(self, dataset_id: str) -> bool:
        """Remove a ready dataset; open readers keep their files until they close them."""
        target = self.root / "trash" / f"{check_dataset_id(dataset_id)}.{os.urandom(4).hex()}"
        try:
            os.rename(self.dataset_dir(dataset_id), target)
        except FileNotFoundError:
            return False
        shutil.rmtree(target, ignore_errors=True)
        return True

    def empty_trash(self) -> None:
        """Remove what interrupted deletions left behind."""
        trash = self.root / "trash"
        for entry in os.listdir(trash):
            shutil.rmtree(trash / entry, ignore_errors=True)


def check_dataset_id(dataset_id: str) -> str:
    if not DATASET_ID.fullmatch(dataset_id):
        raise NotFound(f"dataset {dataset_id!r} does not exist")
    return dataset_id


def check_job_id(job_id: str) -> str:
    if not JOB_ID.fullmatch(job_id):
        raise NotFound(f"job {job_id!r} does not exist")
    return job_id


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
