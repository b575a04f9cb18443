"""The data directory: where uploads, jobs and datasets live, and how they appear whole.

Layout under DATA_DIR::

    uploads/JOB.csv          the spooled upload, until its sync ends (JOB.xxxx.incoming: new
                             data being received, moved there once checked)
    jobs/JOB.json            the job record (see streaming.jobs)
    queue/, running/, locks/ job claiming (see streaming.jobs)
    tmp/                     syncs in progress; renamed into datasets/ when complete
    datasets/ID/             a ready dataset, as a sequence of versions:
      current                  a symlink naming the current version's directory ("v3")
      vN/                      version N: meta.json, stats.json, stats.state, rows.ndjson,
                               rows.idx, sample.ndjson, and its columns: columns.json (the
                               block table, per block min/max/nulls/crc32) and columns.bin
                               (frame-of-reference integers, floats, dictionary codes, null
                               bitmaps, dictionaries), format in streaming.column_store;
                               meta.json's "columns_format" (1) says they are there (absent:
                               synced before columns existed)
    trash/                   datasets and versions being deleted
    keys.json                hashed API keys (see streaming.web.auth)

A new dataset becomes visible by one ``rename`` of a finished directory holding ``v1/`` and
``current``; a new version by the rename of its finished directory to ``vN/`` and then one
``rename`` of a new ``current`` symlink over the old: a reader resolves ``current`` once
(``readlink``) and opens that version's files, so it sees one version whole, old or new.
A crash between the two renames leaves a ``vN`` beyond ``current``, which nobody reads and the
next publication removes. A ready version's data never changes as far as its readers can see:
an append (``streaming.append``) hard-links the previous version's rows.ndjson, rows.idx and
columns.bin into the new version and writes after their ends, which the old version's index,
row count and block table never reach (readers bound every read by them).

A dataset synced before versions existed has its files directly in ``datasets/ID/`` and no
``current``: it is version 1, read where it lies, with no migration. Its next version is made
beside it as ``v2/`` (and ``current``); the flat files stay version 1 until pruned.

Old versions: ``prune`` keeps the newest VERSIONS_KEPT and removes the rest by renaming them
into trash/ and deleting them there. A reader opens all its files up front and reads through
the descriptors (``streaming.read``), and POSIX keeps an unlinked file until its last
descriptor closes, so a reader streaming a pruned version finishes it; a request that names a
pruned version afterwards is a 404 ``version_not_found``.

Ids are checked against a strict pattern before any path is built from them, so no id can
name a path outside the data directory.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from streaming.errors import NotFound, VersionNotFound

DATASET_ID = re.compile(r"ds_[0-9a-f]{12}")
JOB_ID = re.compile(r"job_[0-9a-f]{12}")
META_FILE = "meta.json"
CURRENT = "current"
INCOMING = (
    ".incoming"  # uploads/JOB.xxxx.incoming: new data being received (streaming.web.versions)
)
INCOMING_MAX_AGE = 3600.0
VERSION_DIR = re.compile(r"v[1-9][0-9]{0,8}")


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
        self._datasets = str(self.datasets)
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
        """The directory of a ready dataset, all its versions (which may not exist)."""
        return self.datasets / check_dataset_id(dataset_id)

    def current_version(self, dataset_id: str) -> int:
        """The number of a dataset's current version; 0 if it has none (not ready)."""
        return self._current(dataset_id)[0]

    def _current(self, dataset_id: str) -> tuple[int, str]:
        """(number, directory) of the current version; (0, "") if there is none. Every read
        starts here: strings, not Paths (a Path join costs as much as the system call)."""
        base = f"{self._datasets}/{check_dataset_id(dataset_id)}"
        try:
            name = os.readlink(f"{base}/{CURRENT}")
        except FileNotFoundError:  # no dataset, or one synced before versions: version 1
            return (1, base) if os.path.isfile(f"{base}/{META_FILE}") else (0, "")
        return _version_number(name), f"{base}/{name}"

    def resolve(self, dataset_id: str, version: int | None = None) -> tuple[int, Path]:
        """(number, directory) of a version: the current one, or ``version`` if kept.

        NotFound for a dataset that is not ready; VersionNotFound for a version it does not
        keep (the directory may still vanish after this, when it is pruned: open and retry)."""
        current, where = self._current(dataset_id)
        if current == 0:
            raise NotFound(f"dataset {dataset_id!r} does not exist")
        if version is None:  # the current version is never pruned: no need to look
            return current, Path(where)
        folder = self._version_folder(dataset_id, version)
        if version > current or not (folder / META_FILE).is_file():
            kept = ", ".join(map(str, reversed(self.versions(dataset_id)))) or "none"
            raise VersionNotFound(f"dataset {dataset_id!r} has no version {version} (kept: {kept})")
        return version, folder

    def _version_folder(self, dataset_id: str, number: int) -> Path:
        folder = self.dataset_dir(dataset_id)
        versioned = folder / f"v{number}"
        if number == 1 and not versioned.exists():  # synced before versions: flat
            return folder
        return versioned

    def versions(self, dataset_id: str) -> list[int]:
        """The numbers of a ready dataset's kept versions, oldest first."""
        current = self.current_version(dataset_id)
        if current == 0:
            return []
        folder = self.dataset_dir(dataset_id)
        found = {_version_number(n) for n in os.listdir(folder) if VERSION_DIR.fullmatch(n)}
        if (folder / META_FILE).is_file():
            found.add(1)
        return sorted(n for n in found if n <= current)

    def is_ready(self, dataset_id: str) -> bool:
        return DATASET_ID.fullmatch(dataset_id) is not None and self.current_version(dataset_id) > 0

    def meta_bytes(self, dataset_id: str, version: int | None = None) -> bytes | None:
        """The stored METADATA of a ready dataset's version (the current one by default), as
        JSON bytes, or None if the dataset is not ready."""
        try:
            number, folder = self.resolve(dataset_id, version)
            with open(folder / META_FILE, "rb") as f:
                return with_version(f.read(), number)
        except NotFound:
            if version is not None and self.is_ready(dataset_id):
                raise
            return None
        except FileNotFoundError:  # pruned between resolving and reading
            return self.meta_bytes(dataset_id, version) if version is None else None

    def ready_ids(self) -> list[str]:
        return sorted(n for n in os.listdir(self.datasets) if DATASET_ID.fullmatch(n))

    def count_ready(self) -> int:
        return sum(1 for n in os.listdir(self.datasets) if DATASET_ID.fullmatch(n))

    def latest_ready(self) -> str | None:
        """The most recently completed dataset (its meta.json is written as it is published)."""
        best: tuple[int, str] | None = None
        for dataset_id in self.ready_ids():
            try:
                _, folder = self.resolve(dataset_id)
                stamp = os.stat(folder / META_FILE).st_mtime_ns
            except (FileNotFoundError, NotFound):
                continue
            if best is None or (stamp, dataset_id) > best:
                best = (stamp, dataset_id)
        return best[1] if best else None

    def new_tmp_dir(self, dataset_id: str) -> Path:
        path = self.tmp / f"{check_dataset_id(dataset_id)}.{os.urandom(4).hex()}"
        path.mkdir()
        return path

    def publish(self, tmp_dir: Path, dataset_id: str, meta: dict[str, Any]) -> int:
        """Write meta.json into a finished directory and make it the dataset's next version
        (version 1 of a new dataset); its number. The caller holds the dataset's job lock, so
        no one else publishes this dataset meanwhile."""
        folder = self.dataset_dir(dataset_id)
        number = self.current_version(dataset_id) + 1
        write_atomic(tmp_dir / META_FILE, orjson.dumps({**meta, "version": number}))
        _fsync_dir(tmp_dir)
        if number == 1:  # a new dataset: v1/ and current, appearing in one rename
            wrap = self.new_tmp_dir(dataset_id)
            os.rename(tmp_dir, wrap / "v1")
            os.symlink("v1", wrap / CURRENT)
            _fsync_dir(wrap)
            os.rename(wrap, folder)
            _fsync_dir(self.datasets)
            return number
        self._drop_unpublished(dataset_id, number)
        os.rename(tmp_dir, folder / f"v{number}")
        link = folder / f".{CURRENT}.{os.urandom(4).hex()}"
        os.symlink(f"v{number}", link)
        os.replace(link, folder / CURRENT)  # the switch: one rename
        _fsync_dir(folder)
        return number

    def _drop_unpublished(self, dataset_id: str, number: int) -> None:
        """Remove versions from ``number`` on that a sync renamed into place and then died
        before switching ``current`` to them: nobody has read them."""
        folder = self.dataset_dir(dataset_id)
        for name in os.listdir(folder):
            if VERSION_DIR.fullmatch(name) and _version_number(name) >= number:
                self._discard(folder / name, dataset_id)

    def prune(self, dataset_id: str, kept: int) -> list[int]:
        """Remove all but the newest ``kept`` versions (at least the current one stays); the
        numbers removed. Readers that opened a removed version keep reading it."""
        numbers = self.versions(dataset_id)
        removed = numbers[: max(0, len(numbers) - max(1, kept))]
        for number in removed:
            folder = self._version_folder(dataset_id, number)
            if folder == self.dataset_dir(dataset_id):
                self._discard_flat(dataset_id)
            else:
                self._discard(folder, dataset_id)
        return removed

    def _discard(self, path: Path, dataset_id: str) -> None:
        target = self.root / "trash" / f"{dataset_id}.{os.urandom(4).hex()}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return
        shutil.rmtree(target, ignore_errors=True)

    def _discard_flat(self, dataset_id: str) -> None:
        """Remove version 1 of a dataset synced before versions: the files lying directly in
        its directory, meta.json first so that no new reader resolves it."""
        folder = self.dataset_dir(dataset_id)
        names = [n for n in os.listdir(folder) if (folder / n).is_file() and n != CURRENT]
        for name in sorted(names, key=lambda n: n != META_FILE):
            try:
                os.unlink(folder / name)
            except FileNotFoundError:
                pass

    def delete(self, dataset_id: str) -> bool:
        """Remove a ready dataset, every version; open readers keep their files until they
        close them."""
        target = self.root / "trash" / f"{check_dataset_id(dataset_id)}.{os.urandom(4).hex()}"
        try:
            os.rename(self.dataset_dir(dataset_id), target)
        except FileNotFoundError:
            return False
        shutil.rmtree(target, ignore_errors=True)
        return True

    def drop_stale_incoming(self, max_age: float = INCOMING_MAX_AGE) -> None:
        """Remove new data spooled by a request that died with its process (a request that
        fails removes its own; a live one writes its file as the body comes)."""
        uploads = self.root / "uploads"
        for entry in os.scandir(uploads):
            if entry.name.endswith(INCOMING):
                try:
                    if time.time() - entry.stat().st_mtime > max_age:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    pass

    def empty_trash(self) -> None:
        """Remove what interrupted deletions left behind."""
        trash = self.root / "trash"
        for entry in os.listdir(trash):
            shutil.rmtree(trash / entry, ignore_errors=True)


def with_version(meta: bytes, number: int) -> bytes:
    """A stored meta.json with its "version" (absent in a dataset synced before versions)."""
    if meta.rstrip().endswith(b"}") and b'"version":' in meta[-24:]:  # where publish puts it
        return meta
    record = orjson.loads(meta)
    return meta if "version" in record else orjson.dumps({**record, "version": number})


def _version_number(name: str) -> int:
    if not VERSION_DIR.fullmatch(name):
        raise NotFound(f"a dataset's current version is damaged ({name!r})")
    return int(name[1:])


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
