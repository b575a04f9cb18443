"""Reading a ready dataset: pages by the row index, and every row as a stream of blocks.

A reader opens one version's files once, up front (its columns too), and keeps their
descriptors, so a dataset deleted, or a version pruned, while a response streams stays
readable to that response (POSIX keeps an unlinked file until its last descriptor closes).
Every read is bounded by the version's own row index and row count: an append writes after
the end of files it shares with the version before (``streaming.store``). Pages are found by
the index in constant time whatever their depth; scans read blocks of whole lines
(``blocks``; their size is the scan's to choose).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from streaming import column_store
from streaming.convert import INDEX_FILE, ROWS_FILE, STATS_FILE
from streaming.errors import NotFound, NotReady, VersionNotFound
from streaming.index import RowIndex
from streaming.jobs import Jobs
from streaming.store import META_FILE, Store, check_dataset_id, with_version

_OPEN_TRIES = 3  # a version pruned between resolving and opening: resolve again


class Dataset:
    """An open ready dataset. Use as a context manager, or call ``close``."""

    def __init__(self, store: Store, dataset_id: str, version: int | None = None) -> None:
        self.id = dataset_id
        for attempt in range(_OPEN_TRIES):
            self.version, self.folder = store.resolve(dataset_id, version)
            try:
                self._fds = _open_all(self.folder)
                break
            except FileNotFoundError:  # pruned or deleted while we opened it
                if version is not None:
                    raise VersionNotFound(
                        f"dataset {dataset_id!r} has no version {version} (it was just removed)"
                    ) from None
                if attempt == _OPEN_TRIES - 1:
                    raise NotFound(f"dataset {dataset_id!r} does not exist") from None
        meta_fd, self._rows_fd, index_fd, self._stats_fd, *columns = self._fds
        self.meta: dict[str, Any] = orjson.loads(with_version(_read_all(meta_fd), self.version))
        self.rows: int = self.meta["rows"]
        self.index = RowIndex(index_fd, self.rows)
        self.end = self.index.offset(self.rows)  # where this version's rows end
        self.names: list[str] = [c["name"] for c in self.meta["columns"]]
        # columns.bin and columns.json, open like the rest (None: rows only)
        self.column_fds: tuple[int, int] | None = (columns[0], columns[1]) if columns else None

    @property
    def key(self) -> str:
        """What names this version's data: the dataset and the version."""
        return f"{self.id}@{self.version}"

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    def lines(self, start: int, stop: int) -> list[bytes]:
        """The stored lines (JSON arrays) of rows ``[start, stop)``."""
        begin, end = self.index.span(start, stop)
        if end <= begin:
            return []
        return os.pread(self._rows_fd, end - begin, begin).splitlines()

    def row(self, number: int) -> list[Any]:
        """One row's values, found by the index."""
        values: list[Any] = orjson.loads(self.lines(number, number + 1)[0])
        return values

    def blocks(self, position: int, size: int) -> Iterator[bytes]:
        """The stored lines from byte ``position`` on, in blocks of whole lines of about
        ``size`` bytes."""
        carry = b""
        while chunk := os.pread(self._rows_fd, max(0, min(size, self.end - position)), position):
            position += len(chunk)
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:
                carry += chunk
                continue
            yield carry + chunk[:cut]
            carry = chunk[cut:]
        if carry:
            yield carry

    def stats_bytes(self) -> bytes:
        """stats.json: ``{NAME: STATS, ...}`` in the header's order."""
        return _read_all(self._stats_fd)


def open_dataset(store: Store, jobs: Jobs, dataset_id: str, version: int | None = None) -> Dataset:
    """Open a ready dataset's version (the current one by default); 404 if there is no such
    dataset or version, 409 if it is not ready yet."""
    check_dataset_id(dataset_id)
    try:
        return Dataset(store, dataset_id, version)
    except VersionNotFound:
        raise
    except NotFound:
        job = jobs.find(Store.job_of(dataset_id))
        if job is None:
            raise
        if job["status"] == "failed":
            message = (job.get("error") or {}).get("message", "")
            raise NotReady(
                f"dataset {dataset_id!r} failed to sync: {message}", code="dataset_failed"
            ) from None
        raise NotReady(
            f"dataset {dataset_id!r} is {job['status']}; try again when it is ready",
            status=job["status"],
        ) from None


def _open_all(folder: Path) -> list[int]:
    """Descriptors of a version's files (meta, rows, index, stats, then columns.bin and
    columns.json when both are there), all opened in one directory, the one ``folder`` named
    when it was opened; FileNotFoundError (nothing left open) if a file it must have is gone."""
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fds: list[int] = []
    try:
        for name in _FILES:
            fds.append(os.open(name, os.O_RDONLY, dir_fd=directory))
        for name in _COLUMN_FILES:  # both or neither (columns being given to an old dataset)
            try:
                fds.append(os.open(name, os.O_RDONLY, dir_fd=directory))
            except FileNotFoundError:
                for fd in fds[len(_FILES) :]:
                    os.close(fd)
                return fds[: len(_FILES)]
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    finally:
        os.close(directory)
    return fds


_FILES = (META_FILE, ROWS_FILE, INDEX_FILE, STATS_FILE)
_COLUMN_FILES = (column_store.DATA_NAME, column_store.META_NAME)


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0)
