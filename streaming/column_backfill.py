"""Columns for a dataset synced before they existed, built once from its rows.ndjson.

Until then the row scan answers for it (``open_columns`` gives None). The build reads the rows
a block at a time, as the scan does, feeds the same ``ColumnWriter`` the sync feeds, writes
into a private directory, renames the two files into the dataset's, and only then rewrites
meta.json with ``columns_format``: a reader sees the columns whole or not at all, and a
reader that opened the dataset before keeps answering from the rows.

>>> build_columns(Store(Path("data")), "ds_0123456789ab")  # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import shutil
from itertools import islice
from typing import Any

import orjson

from streaming import column_store
from streaming.read import Dataset
from streaming.store import META_FILE, Store, write_atomic

_BATCH_ROWS = 2048  # the sync's batch size
_READ_BYTES = 1 << 20


def build_columns(store: Store, dataset_id: str) -> bool:
    """Write a ready dataset's columns if it has none; False if it already had them."""
    with Dataset(store, dataset_id) as dataset:
        if dataset.meta.get("columns_format") == column_store.FORMAT:
            return False
        folder = dataset.folder
        work = folder / f".columns.{os.urandom(4).hex()}"
        work.mkdir()
        try:
            kinds = [c["type"] for c in dataset.meta["columns"]]
            writer = column_store.ColumnWriter(work, len(kinds))
            try:
                for rows in _batches(dataset):
                    writer.add(list(zip(*rows)), kinds)
            except BaseException:
                writer.abort()
                raise
            writer.close()
            for name in (column_store.DATA_NAME, column_store.META_NAME):
                os.rename(work / name, folder / name)
            meta: dict[str, Any] = {**dataset.meta, "columns_format": column_store.FORMAT}
            write_atomic(folder / META_FILE, orjson.dumps(meta))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return True


def _batches(dataset: Dataset) -> Any:
    """The stored rows, decoded, in batches of about _BATCH_ROWS."""
    for chunk in dataset.blocks(0, _READ_BYTES):
        lines = iter(chunk.splitlines())
        while batch := list(islice(lines, _BATCH_ROWS)):
            yield orjson.loads(b"[" + b",".join(batch) + b"]")
