"""The column writer: its files byte for byte, and its memory.

Generated tables written by ColumnWriter give the same columns.bin and columns.json as the
writer that kept each block in memory did (its digests are the goldens below, computed with
that writer), so a change to how the writer holds a block cannot change the format or the
blocks' cut unseen. The tables exercise nulls, integers that widen from 1 to 8 bytes within a
block, blocks of nulls alone, a column of nulls that later takes a type, strings not worth
coding, codes of 2 bytes, a cut by BUFFER_BYTES, batches that cross blocks, and appends through
``ColumnWriter.resume``. The writer holds a batch, not a block: the block waits in a scratch
file that has no name."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streaming import column_store
from streaming.column_store import ColumnWriter

ROWS = 3500
BLOCK = 1000
KINDS = [
    "integer",  # small, then past 1 and 4 bytes within a block; nulls
    "number",  # -0.0, huge, nulls; a block of nulls alone
    "string",  # 8 words, nulls; a block of nulls alone
    "string",  # a new word every 7 rows: past DICTIONARY_MAX, not worth coding, mid-block
    "date",  # nulls
    "datetime",  # hourly with "Z": a scale of 3,600,000,000; nulls
    "datetime",  # unique microseconds, no "Z" (converted uncached)
    "boolean",  # nulls
    "integer",  # nulls alone for 1,200 rows (kind "null"), then multiples of 10
    "integer",  # one value and nulls: width 0
    "string",  # 290 words: codes of 2 bytes
    "integer",  # negative, down to -2**62, never null
]


def _value(column: int, row: int, draw: random.Random) -> Any:
    null = draw.random() < 0.12
    if column == 0:
        if null:
            return None
        top = 100 if row < 1500 else 1 << 40 if row < 2800 else 1 << 62
        return draw.randrange(-top, top)
    if column == 1:
        if null or 1000 <= row < 2000:
            return None
        return draw.choice([-0.0, 1e300, 0.5, -2.25, draw.uniform(-1e6, 1e6)])
    if column == 2:
        if null or 2000 <= row < 3000:
            return None
        return draw.choice(["AA", "DL", "UA", "WN", "B6", "Ünï", "x y", "z"])
    if column == 3:
        return None if null else f"word {row // 7}"
    if column == 4:
        return None if null else f"2024-{1 + row % 12:02d}-{1 + row % 28:02d}"
    if column == 5:
        return None if null else f"2024-03-{1 + row // 240 % 28:02d}T{row % 24:02d}:00:00Z"
    if column == 6:
        return f"2023-05-06T07:{row % 60:02d}:{row % 59:02d}.{draw.randrange(10**6):06d}"
    if column == 7:
        return None if null else draw.random() < 0.5
    if column == 8:
        return None if null or row < 1200 else 10 * draw.randrange(-50, 5000)
    if column == 9:
        return None if null else 7
    if column == 10:
        return None if null else f"w{draw.randrange(290)}"
    return -draw.randrange(1 << 62)


def _table(seed: int) -> list[list[Any]]:
    """ROWS rows of len(KINDS) columns, as the sync types them."""
    draw = random.Random(seed)
    return [[_value(c, r, draw) for c in range(len(KINDS))] for r in range(ROWS)]


def _kinds(rows: list[list[Any]]) -> list[str]:
    """The batch's kind of each column: a column with no value yet is "null"."""
    return [
        kind if column != 8 or any(row[8] is not None for row in rows) else "null"
        for column, kind in enumerate(KINDS)
    ]


def _batches(rows: list[list[Any]], seed: int) -> Iterator[list[list[Any]]]:
    """Batches of uneven sizes, some of them across a block's end."""
    sizes = [333, 517, 1000, 7, 1, 150, 2048]
    start, turn = 0, seed
    while start < len(rows):
        size = sizes[turn % len(sizes)]
        yield rows[start : start + size]
        start, turn = start + size, turn + 1


def _add(writer: ColumnWriter, rows: list[list[Any]], seed: int, kinds: list[str] | None) -> None:
    for turn, batch in enumerate(_batches(rows, seed)):
        columns = [list(c) for c in zip(*batch)]
        nulls = [c.count(None) for c in columns] if turn % 2 else None
        writer.add(columns, kinds or _kinds(batch), nulls)


def _digest(folder: Path) -> str:
    files = [folder / column_store.DATA_NAME, folder / column_store.META_NAME]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def _write(folder: Path, rows: list[list[Any]], seed: int) -> None:
    writer = ColumnWriter(folder, len(KINDS))
    _add(writer, rows, seed, None)
    writer.close()


def _append(folder: Path, rows: list[list[Any]], seed: int) -> None:
    """Rows added after those written, as ``streaming.append`` adds them: the partial last
    block cut again."""
    described = orjson.loads((folder / column_store.META_NAME).read_bytes())
    blocks = described["blocks"]
    keep = len(blocks) - (1 if blocks and blocks[-1][1] < column_store.BLOCK_ROWS else 0)
    data = (folder / column_store.DATA_NAME).read_bytes()
    words = []
    for column in described["columns"]:
        offset, length, _ = column.get("dictionary", (0, 0, 0))
        words.append(orjson.loads(data[offset : offset + length]) if length else [])
    writer = ColumnWriter.resume(folder, described, KINDS, keep, words)
    first = blocks[keep][0] if keep < len(blocks) else described["rows"]
    _add(writer, rows[first:], seed, KINDS)
    writer.close()


GOLDEN = {
    "whole, seed 0": "45f7bb2c7666378f",
    "whole, seed 1": "1bff9dffc089b65e",
    "cut by BUFFER_BYTES": "d1deb276cf6bc8da",
    "appended after a partial block": "52857fcd8c90328b",
    "appended after whole blocks": "c79472de6e15c9b2",
}


def _case(name: str, folder: Path) -> None:
    """Write case ``name``'s column files in ``folder``."""
    column_store.BUFFER_BYTES = 9000 if name == "cut by BUFFER_BYTES" else 8 << 20
    if name.startswith("whole"):
        seed = int(name[-1])
        _write(folder, _table(seed), seed)
    elif name == "cut by BUFFER_BYTES":
        _write(folder, _table(2), 0)
    elif name == "appended after a partial block":
        rows = _table(3)
        _write(folder, rows[:2300], 3)
        _append(folder, rows, 4)
    else:
        rows = _table(4)
        _write(folder, rows[:3000], 5)
        _append(folder, rows, 6)


def main(root: Path) -> None:
    """Print every case's digest and the files it left, as JSON."""
    column_store.BLOCK_ROWS = BLOCK
    column_store.DICTIONARY_MAX = 300
    found = {}
    for name in GOLDEN:
        folder = root / str(len(found))
        folder.mkdir()
        _case(name, folder)
        blocks = orjson.loads((folder / column_store.META_NAME).read_bytes())["blocks"]
        found[name] = [_digest(folder), sorted(os.listdir(folder)), len(blocks)]
    print(orjson.dumps(found).decode())


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """Every case written by a fresh interpreter whose string hashes are fixed: a
    dictionary's codes are given in the order of a set of the batch's new words, which
    follows the hash seed (random per process unless PYTHONHASHSEED says otherwise)."""
    root = tmp_path_factory.mktemp("cases")
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_column_writer", str(root)],
        env={**os.environ, "PYTHONHASHSEED": "0"},
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        check=True,
    )
    found: dict[str, list[Any]] = orjson.loads(done.stdout)
    return found


@pytest.mark.parametrize("name", list(GOLDEN))
def test_column_files_are_those_of_the_in_memory_writer(
    name: str, written: dict[str, list[Any]]
) -> None:
    digest, files, blocks = written[name]
    assert files == [column_store.DATA_NAME, column_store.META_NAME]  # nothing left behind
    assert blocks == (6 if name == "cut by BUFFER_BYTES" else 4)
    assert digest == GOLDEN[name]


def test_a_block_waits_in_a_scratch_file_not_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three columns of 8-byte integers and one of floats with nulls: a block of 65,536 rows
    # kept in memory took 2.2 MB before its end and 3.6 MB at it (the offsets, then a copy of
    # them, then that and the bitmap joined); spilled, about 80 and 180 KB.
    monkeypatch.setattr(column_store, "BLOCK_ROWS", 65536)
    draw = random.Random(5)
    batch: list[list[Any]] = [
        [draw.randrange(-(1 << 62), 1 << 62) for _ in range(2048)] for _ in range(3)
    ]
    batch.append([None if i % 3 == 0 else draw.random() for i in range(2048)])
    kinds = ["integer"] * 3 + ["number"]
    writer = ColumnWriter(tmp_path, len(kinds))
    tracemalloc.start()
    try:
        for _ in range(31):
            writer.add(batch, kinds)
        _, filling = tracemalloc.get_traced_memory()
        assert os.listdir(tmp_path) == [column_store.DATA_NAME]  # the scratch file has no name
        tracemalloc.reset_peak()
        writer.add(batch, kinds)  # the 32nd batch ends the block
        _, ending = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    writer.abort()
    assert filling < 400_000 and ending < 400_000
    assert os.listdir(tmp_path) == [column_store.DATA_NAME]  # what a restart truncates


if __name__ == "__main__":
    main(Path(sys.argv[1]))
