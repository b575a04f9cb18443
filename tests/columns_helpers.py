"""Shared by the column tests: a CSV synced into a dataset (rows and columns), and a comparison
that allows the last bits of float sums to differ (the two paths add in different batches)."""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streaming.column_read import ColumnReader, open_columns
from streaming.convert import convert_csv
from streaming.read import Dataset
from streaming.store import Store

CARRIERS = ["AA", "DL", "UA", "WN", "B6", "Ünï", "", "NA"]  # "" and NA are nulls


def synced(root: Path, text: str, dataset_id: str = "ds_0000000000c1") -> Dataset:
    """Convert CSV text as the sync does and open the dataset."""
    store = Store(root)
    source = root / "upload.csv"
    source.write_text(text, encoding="utf-8")
    tmp = store.new_tmp_dir(dataset_id)
    conversion = convert_csv(source, tmp, parallel=False)
    meta = {
        "id": dataset_id,
        "name": "t.csv",
        "rows": conversion.rows,
        "columns": conversion.columns,
        "columns_format": conversion.columns_format,
    }
    store.publish(tmp, dataset_id, meta)
    return Dataset(store, dataset_id)


@contextmanager
def columns_of(root: Path, text: str) -> Iterator[tuple[Dataset, ColumnReader]]:
    with synced(root, text) as dataset:
        reader = open_columns(dataset)
        assert reader is not None
        with reader:
            yield dataset, reader


def flights_text(rows: int, seed: int = 7) -> str:
    """A realistic table: every column type, nulls, repeats, a free-text column."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "price", "carrier", "day", "at", "ok", "delay", "note", "empty", "late_int"]
    )
    for i in range(rows):
        price = "" if rng.random() < 0.1 else f"{rng.uniform(-50, 900):.2f}"
        delay = "NA" if rng.random() < 0.15 else str(rng.randint(-30, 300))
        day = f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        minute = rng.choice(["00", "30"])
        at = f"2023-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{minute}:00"
        if rng.random() < 0.2:
            at = f"2023-03-{rng.randint(1, 28):02d}T10:00:00.{rng.randint(1, 999999):06d}"
        note = " ".join(rng.choice(["late", "gate", "crew", "Bag", "smooth"]) for _ in range(3))
        late_int = "" if i < rows // 3 else str(rng.randint(0, 5))  # all-null blocks first
        writer.writerow(
            [
                i * 3,
                price,
                rng.choice(CARRIERS),
                day,
                "" if rng.random() < 0.05 else at,
                rng.choice(["true", "false", ""]),
                delay,
                f"{note} {rng.randint(0, 10**6)}" if rng.random() < 0.5 else note,
                "",
                late_int,
            ]
        )
    return out.getvalue()


def same(a: Any, b: Any, path: str = "") -> None:
    """Assert a == b, floats within 1e-9 relative (sums and moments added in other orders)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{path}: {a} != {b}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"
