"""Reading a ready dataset: pages by the row index, and every row as a stream of blocks.

A reader opens the dataset's files once, up front, and keeps their descriptors, so a dataset
deleted while a response streams stays readable to that response (POSIX keeps an unlinked file
until its last descriptor closes). Pages are found by the index in constant time whatever their
depth; scans read blocks of whole lines (``blocks``; their size is the scan's to choose).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import orjson

from streaming.convert import INDEX_FILE, ROWS_FILE, STATS_FILE
from streaming.errors import NotFound, NotReady
from streaming.index import RowIndex
from streaming.jobs import Jobs
from streaming.store import META_FILE, Store, check_dataset_id


class Dataset:
    """An open ready dataset. Use as a context manager, or call ``close``."""

    def __init__(self, store: Store, dataset_id: str) -> None:
        folder = store.dataset_dir(dataset_id)
        self.id = dataset_id
        self.folder = folder
        fds: list[int] = []
        try:
            for name in (META_FILE, ROWS_FILE, INDEX_FILE, STATS_FILE):
                fds.append(os.open(folder / name, os.O_RDONLY))
        except FileNotFoundError:  # not there, or deleted while we opened it
            for fd in fds:
                os.close(fd)
            raise NotFound(f"dataset {dataset_id!r} does not exist") from None
        self._fds = fds
        meta_fd, self._rows_fd, index_fd, self._stats_fd = fds
        self.meta: dict[str, Any] = orjson.loads(_read_all(meta_fd))
        self.index = RowIndex(index_fd)
        self.names: list[str] = [c["name"] for c in self.meta["columns"]]
        self.rows: int = self.meta["rows"]

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
        while chunk := os.pread(self._rows_fd, size, position):
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


def open_dataset(store: Store, jobs: Jobs, dataset_id: str) -> Dataset:
    """Open a ready dataset; 404 if there is no such dataset, 409 if it is not ready yet."""
    check_dataset_id(dataset_id)
    try:
        return Dataset(store, dataset_id)
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


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0)
