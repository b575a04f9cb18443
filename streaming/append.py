"""Append: rows added after a dataset's current rows, as its next version, without reading them.

``POST /datasets/ID/sync?mode=append`` spools a CSV of the same header (checked then, from the
file's first record: ``check_header``, a 422 ``header_mismatch``); the worker's
``append_version`` builds the new version in its temporary directory::

    appended CSV ─ convert_csv (types forced to the columns') ─ .part/ rows, index, stats
    previous version ─┬─ rows.ndjson, rows.idx, columns.bin: hard links, written after their
                      │  ends (the previous version's index, row count and block table never
                      │  reach what follows; readers are bounded by them, ``streaming.read``)
                      ├─ stats.state + the part's ─ merged ─ stats.json, stats.state
                      ├─ sample.ndjson + the part's ─ merged, uniform over both
                      └─ columns.json: the block table, its last block cut again with the new
                         rows (a partial block, at most BLOCK_ROWS rows, read back from the rows)

What an append costs, per appended row: its conversion (as in any sync), its bytes and 8 bytes
of index written after the old ones, its values' statistics merged (a fixed size per column,
whatever the dataset's length), and its column values written. Besides, once per append: the
previous version's last column block (at most BLOCK_ROWS rows) read and written again, its
string dictionaries written again (at most DICTIONARY_BYTES each), and columns.json, whose
block table has one entry per BLOCK_ROWS rows. None of it reads the previous rows, so the cost
does not grow with the dataset. The superseded copies of the last block and the dictionaries
stay in columns.bin, unread (about one block's worth per append), until the versions sharing
the file are all removed.

A dataset synced before statistics were saved (no stats.state) has them rebuilt from its rows
on its first append: a one-time read of the rows, logged; later appends merge as above.

Types: each column keeps its type. The appended values are read with the column's type forced,
so a value that does not fit fails the job with ``type_mismatch`` naming the column, the line
of the appended file and the value, and nothing changes (widening would mean rewriting the old
rows). A column that held only nulls takes the appended values' type; datetimes must keep
their offset style (all with "Z" or none).
"""

from __future__ import annotations

import csv
import io
import logging
import marshal
import os
import random
import shutil
from array import array
from collections.abc import Iterator, Mapping
from itertools import compress, islice, repeat
from operator import add, is_not
from pathlib import Path
from typing import Any

import orjson

from streaming import column_store, metadata, unpack
from streaming.convert import (
    HEAD_BYTES,
    INDEX_FILE,
    ROWS_FILE,
    SAMPLE_FILE,
    SAMPLE_ROWS,
    STATE_FILE,
    STATS_FILE,
    Progress,
    announces_wide_text,
    bom_encoding,
    convert_csv,
    header_names,
    resolve_encoding,
)
from streaming.errors import InvalidCSV
from streaming.options import reading
from streaming.read import Dataset
from streaming.settings import Settings
from streaming.sniff import sniff_delimiter
from streaming.stats import ColumnStats
from streaming.store import Store, utc_now

log = logging.getLogger("rillet.append")
PART_DIR = ".part"  # the appended file converted, inside the new version's directory
_BATCH_ROWS = 2048
_READ_BYTES = 1 << 20
_OFFSET_BYTES = 8


def header_of(path: Path, options: Mapping[str, Any], max_bytes: int, spill: Path) -> list[str]:
    """The column names an upload's first record gives, read as its sync would read them
    (``streaming.convert``: the same unpacking, encoding, delimiter and header rules)."""
    upload = unpack.identify(path, max_bytes)
    record: list[str] | None
    if upload.format == "xlsx":
        from streaming import xlsx

        with xlsx.Workbook(path, options.get("sheet") or None, max_bytes, spill) as book:
            record = next((r for r in book.rows() if r), None)
    else:
        record = _first_record(upload, options)
    if record is None:
        raise InvalidCSV("the file has no header row", code="empty_file")
    if options.get("header") is False:
        return [f"column_{i}" for i in range(1, len(record) + 1)]
    return header_names(record)


def _first_record(upload: unpack.Upload, options: Mapping[str, Any]) -> list[str] | None:
    head = upload.head(4)
    announced = bom_encoding(head) if announces_wide_text(head) else None
    codec = resolve_encoding(options.get("encoding") or announced)
    python_codec = "utf-8-sig" if codec == "utf-8" else codec
    delimiter = options.get("delimiter") or sniff_delimiter(upload.head(HEAD_BYTES), python_codec)
    raw, _ = upload.open()
    with io.TextIOWrapper(raw, encoding=python_codec, newline="") as text:
        try:
            return next((r for r in csv.reader(text, delimiter=delimiter) if r), None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InvalidCSV(f"line 1: the header cannot be read ({exc})", line=1) from None


def check_header(expected: list[str], found: list[str]) -> None:
    """A 422 ``header_mismatch`` unless the appended file has the dataset's columns, in order."""
    if found == expected:
        return
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    why = []
    if missing:
        why.append("missing " + ", ".join(map(repr, missing[:10])))
    if extra:
        why.append("not in the dataset " + ", ".join(map(repr, extra[:10])))
    raise InvalidCSV(
        "the appended file's header is not the dataset's: "
        + ("; ".join(why) if why else "the same columns in another order")
        + f" (the dataset's columns: {', '.join(map(repr, expected[:20]))})",
        line=1,
        code="header_mismatch",
    )


def append_version(
    settings: Settings, store: Store, job: dict[str, Any], tmp: Path, report: Progress
) -> dict[str, Any]:
    """Build in ``tmp`` the version that adds the job's upload to the current version's rows;
    its METADATA (``Store.publish`` makes it current)."""
    with Dataset(store, job["dataset_id"]) as base:
        part = tmp / PART_DIR
        part.mkdir()
        options = job.get("sync_options") or job["options"]
        forced = {c["name"]: c["type"] for c in base.meta["columns"] if c["type"] != "null"}
        conversion = convert_csv(
            store.upload_path(job["id"]),
            part,
            delimiter=options.get("delimiter"),
            encoding=options.get("encoding"),
            progress=report,
            field_limit=settings.csv_field_limit_kb * 1024,
            parallel=settings.sync_stats_process,
            columns=False,  # the columns are extended from the part's rows below
            reading=reading({**options, "types": forced}, _date_order(base, settings)),
            max_bytes=settings.max_upload_mb * 2**20,
        )
        check_header(base.names, [c["name"] for c in conversion.columns])
        if conversion.rows == 0:
            raise InvalidCSV("the appended file has no rows", code="empty_file")
        columns = _joined_columns(base.meta["columns"], conversion.columns)
        kinds = [c["type"] for c in columns]
        before = _saved_states(base)
        appended = marshal.loads((part / STATE_FILE).read_bytes())
        _same_offset_style(columns, before, appended)
        _extend_rows(base, part, tmp)
        merged = _merge_stats(base.names, before, appended, tmp)
        for column in columns:
            column["nulls"] = merged[column["name"]].nulls
        _merge_samples(base, part, tmp, conversion.rows)
        columns_format = _extend_columns(base, part, tmp, kinds)
        shutil.rmtree(part)
        meta = metadata.ready(
            job,
            rows=base.rows + conversion.rows,
            columns=columns,
            delimiter=conversion.delimiter,
            encoding=conversion.encoding,
            size=sum(f.stat().st_size for f in tmp.iterdir()),
            ready_at=utc_now(),
            columns_format=columns_format,
            source_format=conversion.format,
        )
        return {**meta, "mode": "append"}


def _date_order(base: Dataset, settings: Settings) -> str:
    """How NN/NN/YYYY dates that do not decide are read: as the dataset's dates were."""
    for column in base.meta["columns"]:
        written = column.get("format") or ""
        if written.startswith("%d"):
            return "dmy"
        if written.startswith("%m"):
            return "mdy"
    return settings.date_order


def _joined_columns(
    before: list[dict[str, Any]], appended: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The columns of the new version: each keeps its type and its notation (a column of
    nulls alone takes the appended ones); another is a type_mismatch: dates read another way
    (31/01 against 01/31) or numbers written another way would not be the same values."""
    joined = []
    for old, new in zip(before, appended):
        if old["type"] == "null" or new["type"] == "null":
            joined.append(dict(new if old["type"] == "null" else old))
            continue
        notation = (
            [old.get(k) for k in ("format", "unit")],
            [new.get(k) for k in ("format", "unit")],
        )
        if new["type"] != old["type"] or notation[0] != notation[1]:
            raise InvalidCSV(
                f"column {old['name']!r} is {_described(old)}, and the appended rows are "
                f"{_described(new)}: append rows whose values are written as the column's",
                code="type_mismatch",
            )
        joined.append(dict(old))
    return joined


def _described(column: Mapping[str, Any]) -> str:
    """A column's type, with its notation if it has one ("date (%d/%m/%Y)")."""
    notation = column.get("format") or column.get("unit")
    return f"{column['type']} ({notation})" if notation else str(column["type"])


# --- rows -------------------------------------------------------------------------------------


def _extend_rows(base: Dataset, part: Path, tmp: Path) -> None:
    """rows.ndjson and rows.idx: the previous version's, linked, then the part's after them."""
    rows, index = tmp / ROWS_FILE, tmp / INDEX_FILE
    os.link(base.folder / ROWS_FILE, rows)
    os.link(base.folder / INDEX_FILE, index)
    with open(rows, "r+b") as out, open(part / ROWS_FILE, "rb") as source:
        out.truncate(base.end)  # what a crashed append left after the end, if anything
        out.seek(base.end)
        shutil.copyfileobj(source, out, _READ_BYTES)
        _durable(out)
    with open(index, "r+b") as out, open(part / INDEX_FILE, "rb") as source:
        out.truncate((base.rows + 1) * _OFFSET_BYTES)
        out.seek((base.rows + 1) * _OFFSET_BYTES)
        source.seek(_OFFSET_BYTES)  # the part's first row starts where the old rows end
        while chunk := source.read(_READ_BYTES):
            offsets = array("Q", chunk)
            if _BIG:
                offsets.byteswap()
            moved = array("Q", map(add, offsets, repeat(base.end)))
            if _BIG:
                moved.byteswap()
            out.write(moved.tobytes())
        _durable(out)


def _durable(f: Any) -> None:
    f.flush()
    os.fsync(f.fileno())


_BIG = array("Q", [1]).tobytes()[0] == 0


# --- statistics and sample --------------------------------------------------------------------


def _same_offset_style(
    columns: list[dict[str, Any]], before: dict[str, Any], appended: dict[str, Any]
) -> None:
    """A type_mismatch if a datetime column's appended values and its old ones differ in
    carrying an offset ("Z"): the column files store one style a column."""
    for column in columns:
        old, new = before[column["name"]]["low"], appended[column["name"]]["low"]
        if column["type"] != "datetime" or old is None or new is None:
            continue
        if old.endswith("Z") != new.endswith("Z"):
            raise InvalidCSV(
                f"column {column['name']!r} holds datetimes "
                + ("with" if old.endswith("Z") else "without")
                + f" an offset, and the appended rows hold {new!r}",
                code="type_mismatch",
            )


def _merge_stats(
    names: list[str], before: dict[str, Any], appended: dict[str, Any], tmp: Path
) -> dict[str, ColumnStats]:
    """stats.json and stats.state of both together, from the two versions' saved states."""
    merged = {
        name: ColumnStats.from_state(before[name]).merge(ColumnStats.from_state(appended[name]))
        for name in names
    }
    _write(tmp / STATS_FILE, orjson.dumps({n: s.result() for n, s in merged.items()}))
    _write(tmp / STATE_FILE, marshal.dumps({n: s.state() for n, s in merged.items()}))
    return merged


def _saved_states(base: Dataset) -> dict[str, Any]:
    """The previous version's saved statistics; rebuilt from its rows (once: the new version
    saves them) for a dataset synced before they were saved."""
    try:
        saved: dict[str, Any] = marshal.loads((base.folder / STATE_FILE).read_bytes())
        return saved
    except FileNotFoundError:
        pass
    log.info("%s: statistics rebuilt from its %s rows for its first append", base.id, base.rows)
    stats = [ColumnStats(c["type"]) for c in base.meta["columns"]]
    for rows in _batches(base, 0):
        for column, values in zip(stats, zip(*rows)):
            present = list(compress(values, map(is_not, values, repeat(None))))
            column.update(present, len(values) - len(present))
    return {name: column.state() for name, column in zip(base.names, stats)}


def _merge_samples(base: Dataset, part: Path, tmp: Path, appended: int) -> None:
    """A uniform sample of both versions' rows from a uniform sample of each: how many come
    from each side is drawn as a sample of all row numbers would fall. Without a previous
    sample (synced before samples were kept) the new version has none either."""
    try:
        old = (base.folder / SAMPLE_FILE).read_bytes().splitlines()
    except FileNotFoundError:
        return
    new = (part / SAMPLE_FILE).read_bytes().splitlines()
    total = base.rows + appended
    if total <= SAMPLE_ROWS:
        chosen = old + new
    else:
        draw = random.Random(total)
        from_old = sum(1 for n in draw.sample(range(total), SAMPLE_ROWS) if n < base.rows)
        from_old = min(from_old, len(old))
        chosen = draw.sample(old, from_old) + draw.sample(
            new, min(len(new), SAMPLE_ROWS - from_old)
        )
    _write(tmp / SAMPLE_FILE, b"".join(line + b"\n" for line in chosen))


# --- columns ----------------------------------------------------------------------------------


def _extend_columns(base: Dataset, part: Path, tmp: Path, kinds: list[str]) -> int | None:
    """columns.bin (linked, written after its end) and columns.json of the new version; None
    if the previous version has no columns (the rows answer, as for it)."""
    if base.meta.get("columns_format") != column_store.FORMAT or base.column_fds is None:
        return None
    data_fd, table_fd = base.column_fds
    described = orjson.loads(os.pread(table_fd, os.fstat(table_fd).st_size, 0))
    blocks = described["blocks"]
    keep = len(blocks)
    if blocks and blocks[-1][1] < column_store.BLOCK_ROWS:
        keep -= 1  # the partial last block is cut again, with the new rows after it
    os.link(base.folder / column_store.DATA_NAME, tmp / column_store.DATA_NAME)
    dictionaries = [_dictionary(data_fd, c) for c in described["columns"]]
    writer = column_store.ColumnWriter.resume(tmp, described, kinds, keep, dictionaries)
    try:
        if keep < len(blocks):
            first, _ = blocks[keep]
            start = base.index.offset(first)
            for rows in _batches(base, start):
                writer.add(list(zip(*rows)), kinds)
        for rows in _part_batches(part):
            writer.add(list(zip(*rows)), kinds)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return column_store.FORMAT


def _dictionary(data_fd: int, column: Mapping[str, Any]) -> list[str]:
    if "dictionary" not in column:
        return []
    offset, length, _ = column["dictionary"]
    words: list[str] = orjson.loads(os.pread(data_fd, length, offset))
    return words


def _batches(dataset: Dataset, start: int) -> Iterator[list[list[Any]]]:
    """The version's stored rows from a byte offset on, decoded, in batches of _BATCH_ROWS."""
    for chunk in dataset.blocks(start, _READ_BYTES):
        lines = iter(chunk.splitlines())
        while batch := list(islice(lines, _BATCH_ROWS)):
            yield orjson.loads(b"[" + b",".join(batch) + b"]")


def _part_batches(part: Path) -> Iterator[list[list[Any]]]:
    with open(part / ROWS_FILE, "rb") as f:
        lines = iter(f)
        while batch := list(islice(lines, _BATCH_ROWS)):
            yield orjson.loads(b"[" + b",".join(line.rstrip(b"\n") for line in batch) + b"]")


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        _durable(f)
