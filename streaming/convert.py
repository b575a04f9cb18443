"""CSV to typed NDJSON: the sync's conversion of one file into a dataset directory.

The csv module reads header-keyed records (as ``csv.DictReader`` gives them) in batches of up
to 2,048 rows (fewer for wide rows: BATCH_BYTES, BATCH_CELLS). Each batch is turned into
columns, each column is typed as a whole (``streaming.coerce``), the column statistics and the
column files are fed the typed values (``streaming.tally``: in a second process, on another
CPU, for a file of 4 MiB or more), and the rows are written as JSON arrays in the header's
order, one per line, with their byte offsets in the row index (``streaming.index``)::

    bytes ─ TextIOWrapper ─ csv.reader ─ batch ─ columns ─ typed columns ─┬─ rows.ndjson, rows.idx
                                                                        ├─ columns.json, .bin
                                                                        ├─ stats.json, .state
                                                                        └─ sample.ndjson

The columns (``streaming.column_store``) are the same values in blocks of one column each, for
the questions that read a few columns of many rows.

Rows are stored as arrays rather than objects: the file is about 40% smaller, written twice
as fast, and the column names live once in the metadata. The API turns them back into objects.

Rules for awkward input (README lists them for users):

- The upload may be CSV text, gzip, a zip of one CSV or an Excel workbook, told by its bytes
  (``streaming.unpack``, ``streaming.xlsx``); each is read as a stream, pass after pass.
- UTF-8 unless the upload names an encoding; a UTF-16 or UTF-32 byte-order mark is honoured.
- The delimiter, unless given, is the one that splits the head's records evenly
  (``streaming.sniff``).
- The first record is the header (with ``header=False`` it is data, and the columns are named
  ``column_1``, ``column_2``, …). Names are stripped of surrounding space; an empty name
  becomes ``column_N`` (N its 1-based position); a repeated name gets ``_2``, ``_3``… .
- Blank lines are skipped. A short row is padded with nulls. Extra fields that are empty
  (trailing delimiters) are dropped; an extra non-empty field fails the sync, naming the line.
- Bytes that are not valid in the encoding fail the sync, naming the line. So does a record the
  csv module cannot read (a quote left open, text after a closing quote, a field longer than
  the field limit), naming the line the record starts on.
- A column's type comes from the first batch; a later value that does not fit widens it. Only a
  column that held nulls alone widens in place; any other widening restarts the conversion with
  the wider type, so every value of a column always has the column's type. The same holds for
  its notation (``$``, ``%d/%m/%Y``): a batch in another one makes the column a string.
- ``types`` forces columns' types: a value that does not fit fails the sync (``type_mismatch``,
  naming the column, the line and the value); ``string`` always fits.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import logging
import marshal
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any

import orjson

from streaming import coerce, dates, unpack
from streaming.column_store import FORMAT as COLUMNS_FORMAT
from streaming.errors import BadRequest, InvalidCSV
from streaming.index import RowWriter
from streaming.sketches import Reservoir
from streaming.sniff import DELIMITERS, sniff_delimiter  # noqa: F401 (tests and callers)
from streaming.stats import ColumnStats
from streaming.tally import PARALLEL_BYTES, Tally, TallyFailed, open_tally

log = logging.getLogger("rillet.sync")
BATCH_ROWS = 2048
BATCH_BYTES = 4 << 20  # smaller batches when rows are wide, so memory stays bounded
# And when rows have many fields: each is a string and then a typed value, on both sides of
# the statistics pipe. 2,048 rows of 6 columns, 646 of flights.csv's 19 (its sync process's
# private memory: 19.9 -> 16.4 MiB). The first batch, which types the columns, keeps
# BATCH_ROWS.
BATCH_CELLS = 12288
# orjson gives each encoded row a 4 KiB buffer, however short the row: encode and write a few
# hundred at a time (measured: 2x faster than a whole batch, and 16 MiB less memory).
WRITE_ROWS = 256
SAMPLE_ROWS = 1000
HEAD_BYTES = 65536
FIELD_LIMIT = 128 * 1024

ROWS_FILE = "rows.ndjson"
INDEX_FILE = "rows.idx"
STATS_FILE = "stats.json"
STATE_FILE = "stats.state"  # what stats.json was made from, for an append to merge with
SAMPLE_FILE = "sample.ndjson"

Progress = Callable[[int, int], None]  # (bytes read, rows written)

# Longest first: the UTF-32 little-endian mark begins with UTF-16's.
WIDE_ENCODINGS = ("utf-16", "utf-32")  # their text is full of NUL bytes
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Conversion:
    """What a finished conversion learned about the file."""

    rows: int
    # [{"name", "type", "nulls"}, plus "format" or "unit" when read in a notation], in order
    columns: list[dict[str, Any]]
    delimiter: str | None  # None for a workbook
    encoding: str | None  # None for a workbook
    restarts: int
    columns_format: int | None  # the format of columns.json/.bin, None when not written
    format: str = "csv"  # csv, csv.gz, zip or xlsx (streaming.unpack.FORMATS)


@dataclass(frozen=True)
class Reading:
    """How values are read: the upload's options that reach every column."""

    decimal: str = "."  # "," for numbers written 1.234,56
    date_order: str = "mdy"  # NN/NN/YYYY dates whose values do not decide
    types: Mapping[str, str] | None = None  # column name -> forced type
    header: bool = True  # False: the first record is data
    sheet: str | None = None  # a workbook's sheet; the first by default

    def check(self) -> None:
        """BadRequest for an option outside what it can be."""
        if self.decimal not in (".", ","):
            raise _bad(f"decimal must be '.' or ',', not {self.decimal!r}")
        if self.date_order not in dates.ORDERS:
            raise _bad(f"date order must be mdy or dmy, not {self.date_order!r}")
        for name, kind in (self.types or {}).items():
            if kind not in coerce.TYPES:
                raise _bad(
                    f"unknown type {kind!r} for column {name!r}; use one of "
                    + ", ".join(coerce.TYPES)
                )


def _bad(message: str) -> BadRequest:
    return BadRequest(message, code="bad_parameter")


def resolve_encoding(name: str | None) -> str:
    """The codec's canonical name; BadRequest for an unknown one."""
    try:
        return codecs.lookup(name or "utf-8").name
    except LookupError:
        raise BadRequest(f"unknown encoding {name!r}", code="bad_encoding") from None


def bom_encoding(head: bytes) -> str | None:
    """The encoding a byte-order mark at the start of ``head`` announces, if any."""
    for mark, name in BOMS:
        if head.startswith(mark):
            return name
    return None


def announces_wide_text(head: bytes) -> bool:
    """Whether a file starting with ``head`` announces UTF-16 or UTF-32 text by its BOM."""
    return bom_encoding(head) in WIDE_ENCODINGS


def _announced_encoding(upload: unpack.Upload) -> str | None:
    """UTF-16 or UTF-32 when the file starts with their byte-order mark (UTF-8's is read by
    the default codec anyway)."""
    head = upload.head(4)
    return bom_encoding(head) if announces_wide_text(head) else None


def convert_csv(
    source: Path,
    out_dir: Path,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    progress: Progress | None = None,
    field_limit: int = FIELD_LIMIT,
    seed: int = 0,
    parallel: bool | None = None,
    columns: bool = True,
    reading: Reading | None = None,
    max_bytes: int | None = None,
) -> Conversion:
    """Convert ``source`` into ``out_dir`` (which must exist); raises InvalidCSV.

    ``parallel`` keeps the column statistics in a second process (``streaming.tally``); by
    default it does for files of PARALLEL_BYTES or more. ``columns`` writes the columnar
    shape beside the rows (``streaming.column_store``). ``reading`` holds the upload's
    options for values (decimal, date order, forced types, header, sheet); ``max_bytes`` caps
    what a compressed upload may inflate to.

    >>> convert_csv(Path("flights.csv"), Path("out"))  # doctest: +SKIP
    Conversion(rows=1000000, columns=[{'name': 'carrier', 'type': 'string', ...}, ...], ...)
    >>> convert_csv(Path("bank.gz"), Path("out"), reading=Reading(decimal=","))  # doctest: +SKIP
    Conversion(rows=211, columns=[..., {'name': 'amount', 'type': 'number', 'unit': '€', ...}],
               format='csv.gz', ...)
    """
    reading = reading or Reading()
    reading.check()
    if delimiter is not None and len(delimiter) != 1:
        raise BadRequest(
            f"delimiter must be a single character, not {delimiter!r}", code="bad_parameter"
        )
    upload = unpack.identify(source, max_bytes)
    codec = (
        "" if upload.format == "xlsx" else resolve_encoding(encoding or _announced_encoding(upload))
    )
    csv.field_size_limit(field_limit)
    if parallel is None:
        parallel = source.stat().st_size >= PARALLEL_BYTES
    hints: dict[int, str] = {}
    restarts = 0
    with _collector_paused():
        while True:
            try:
                run = _Run(
                    upload, out_dir, delimiter, codec, hints, progress, seed, parallel, columns
                )
                run.reading = reading
                return run.convert(restarts)
            except _Widen as widen:
                hints = widen.hints
                restarts += 1
            except TallyFailed as failed:
                # The statistics process died (killed, out of memory): the pass is done again
                # with the statistics in this process, slower but whole.
                log.warning("%s; converting %s again in one process", failed, source.name)
                parallel = False


class _Widen(Exception):
    """A column needs a wider type than the rows already written: start again."""

    def __init__(self, hints: dict[int, str]) -> None:
        self.hints = hints


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A batch holds thousands of fresh lists; the cyclic collector would walk them over and
    # over (measured: a third of the read time). Reference counting frees them all the same.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Run:
    """One pass over the file with a fixed set of type hints."""

    reading = Reading()

    def __init__(
        self,
        upload: unpack.Upload,
        out_dir: Path,
        delimiter: str | None,
        codec: str,
        hints: dict[int, str],
        progress: Progress | None,
        seed: int,
        parallel: bool,
        columns: bool = True,
    ) -> None:
        self.upload = upload
        self.parallel = parallel
        self.out_dir = out_dir
        self.delimiter = delimiter
        self.codec = codec
        self.hints = hints
        self.progress = progress
        self.seed = seed
        self.columns = columns

    def convert(self, restarts: int) -> Conversion:
        if self.upload.format == "xlsx":
            return self._convert_workbook(restarts)
        python_codec = "utf-8-sig" if self.codec == "utf-8" else self.codec
        head = self.upload.head(HEAD_BYTES)
        delimiter = self.delimiter or sniff_delimiter(head, python_codec)
        self.python_codec, self.delimiter_used = python_codec, delimiter
        raw, position = self.upload.open()
        with raw:
            text = io.TextIOWrapper(raw, encoding=python_codec, errors="strict", newline="")
            reader = csv.reader(text, delimiter=delimiter, strict=True)
            try:
                names, records = self._header(reader)
                columns = self._body(records, position, names)
            except UnicodeDecodeError as exc:
                line = _line_of_bad_bytes(self.upload, python_codec)
                raise InvalidCSV(
                    f"line {line}: the file is not valid {self.codec} ({exc.reason}); "
                    "if it is Latin-1 or Windows-1252, upload it again with ?encoding=cp1252",
                    line=line,
                    code="bad_encoding",
                ) from None
            except csv.Error as exc:
                # The reader stops where the record broke; the line worth naming is where the
                # record began (as for a ragged row): an unclosed quote swallows the lines
                # after it until the end of the file or the field limit.
                end = reader.line_num
                found = _line_of_record(self.upload, python_codec, delimiter, None)
                line = found if found is not None else end
                hint = f"; the record runs on to line {end} (a stray or unclosed quote?)"
                message = f"line {line}: {exc}" + (hint if end > line else "")
                raise InvalidCSV(message, line=line) from None
        return Conversion(
            rows=self.rows,
            columns=columns,
            delimiter=delimiter,
            encoding=self.codec,
            restarts=restarts,
            columns_format=COLUMNS_FORMAT if self.columns else None,
            format=self.upload.format,
        )

    def _convert_workbook(self, restarts: int) -> Conversion:
        """One pass over a workbook's sheet: its rows are the records (streaming.xlsx)."""
        from streaming import xlsx  # zipfile and ElementTree: only for a workbook

        sheet, limit = self.reading.sheet, self.upload.limit
        with xlsx.Workbook(self.upload.path, sheet, limit, spill_dir=self.out_dir) as book:
            names, records = self._header(book.rows())
            columns = self._body(records, book.position, names)
        return Conversion(
            self.rows,
            columns,
            None,
            None,
            restarts,
            columns_format=COLUMNS_FORMAT if self.columns else None,
            format="xlsx",
        )

    def _header(self, reader: Iterable[list[str]]) -> tuple[list[str], Iterable[list[str]]]:
        """The column names, and the records after them (from the first, without a header)."""
        for records, record in enumerate(reader, start=1):
            if not record:
                continue
            if self.reading.header:
                self.header_records = records  # blank lines above the header are records too
                return header_names(record), reader
            self.header_records = records - 1
            names = [f"column_{i}" for i in range(1, len(record) + 1)]
            return names, chain([record], reader)
        what = "header row" if self.reading.header else "rows"
        raise InvalidCSV(f"the file has no {what}", code="empty_file")

    def _forced_types(self, names: list[str]) -> dict[int, str]:
        """Column position -> forced type; InvalidCSV naming a column the file lacks."""
        forced = {}
        for name, kind in (self.reading.types or {}).items():
            if name not in names:
                listed = ", ".join(map(repr, names[:20]))
                raise InvalidCSV(
                    f"types names column {name!r}, which the file does not have "
                    f"(its columns: {listed})",
                    code="unknown_column",
                )
            forced[names.index(name)] = kind
        return forced

    def _body(
        self, reader: Iterable[list[str]], position: unpack.Position, names: list[str]
    ) -> list[dict[str, Any]]:
        width = len(names)
        self.names = names
        self.forced = self._forced_types(names)
        kinds: list[str | None] = [self.hints.get(i) for i in range(width)]
        firsts: list[Any] = [None] * width  # each column's first value: None until one is seen
        # The column files are written where the statistics are kept (streaming.tally). A
        # restart (_Widen, TallyFailed) makes new writers, which truncate what this pass wrote.
        tally = open_tally(self.parallel, (self.out_dir, width) if self.columns else None)
        try:
            writer = RowWriter(self.out_dir / ROWS_FILE, self.out_dir / INDEX_FILE)
        except BaseException:
            tally.abort()
            raise
        sample = Reservoir(SAMPLE_ROWS, seed=self.seed, keep=_compact)
        records_before = self.header_records  # records read so far, the header included
        batch_rows = BATCH_ROWS
        try:
            while batch := list(islice(reader, batch_rows)):
                rows = self._rectangular(batch, width, records_before)
                self.batch = (batch, records_before)  # where a type_mismatch is looked for
                records_before += len(batch)
                if rows:
                    typed = [
                        self._column(j, column, kinds, firsts, tally)
                        for j, column in enumerate(zip(*rows))
                    ]
                    tally.end_batch()
                    rows_typed = zip(*typed)
                    while lines := list(map(orjson.dumps, islice(rows_typed, WRITE_ROWS))):
                        writer.write(lines)
                        sample.update(lines)
                read = position()
                batch_rows = _next_batch_rows(read, records_before, width)
                if self.progress is not None:
                    self.progress(int(read * self.upload.scale), writer.rows)
            found = tally.results()
        except BaseException:
            tally.abort()
            writer.abort()
            raise
        writer.close()
        self.rows = writer.rows
        _write(self.out_dir / SAMPLE_FILE, b"".join(line + b"\n" for line in sample.items))
        columns, results, states = [], {}, {}
        for j, name in enumerate(names):
            kind = kinds[j] or "null"
            empty = ColumnStats(coerce.base(kind))
            result = found.get(j) or empty.result()
            results[name] = result
            states[name] = tally.states.get(j) or empty.state()
            column = {"name": name, "type": result["type"], "nulls": result["nulls"]}
            columns.append(column | coerce.describe(kind))
        _write(self.out_dir / STATS_FILE, orjson.dumps(results))
        _write(self.out_dir / STATE_FILE, marshal.dumps(states))
        return columns

    def _column(
        self, j: int, raw: Sequence[str], kinds: list[str | None], firsts: list[Any], tally: Tally
    ) -> list[Any]:
        """Type column j of a batch, widening its type if it must; feed its statistics."""
        forced = self.forced.get(j)
        kind = kinds[j] or self._first_kind(j, raw, forced)
        try:
            values, present = coerce.convert(kind, raw, self.reading.decimal)
            if coerce.base(kind) == "datetime" and present:
                _same_offset_style(present[0], firsts[j])
        except coerce.Mismatch:
            old, kind = kind, coerce.join(kind, self._infer(raw))
            if forced is not None:
                kind = coerce.fit(forced, kind) or ""
                if not kind or (kind == old and firsts[j] is not None):
                    raise self._mismatch(j, forced, raw, old) from None
            if firsts[j] is not None:  # typed values of the old type are written: start over
                hints = {i: k for i, k in enumerate(kinds) if k is not None}
                hints[j] = kind if kind != kinds[j] else "string"
                raise _Widen(hints) from None
            kind, (values, present) = self._convert_widened(j, kind, raw, forced)
        kinds[j] = kind
        if firsts[j] is None and present:
            firsts[j] = present[0]
        # The columns know types, not notations.
        tally.update(j, coerce.base(kind), values, len(raw) - len(present), present)
        return values

    def _infer(self, raw: Sequence[str]) -> str:
        return coerce.infer(raw, self.reading.decimal, self.reading.date_order)

    def _first_kind(self, j: int, raw: Sequence[str], forced: str | None) -> str:
        """The kind of a column's first batch: inferred, or of the forced type."""
        if forced is None:
            return self._infer(raw)
        if forced == "string":
            return "string"
        kind = coerce.fit(forced, self._infer(raw))
        if kind is None:
            raise self._mismatch(j, forced, raw, None)
        return kind

    def _convert_widened(
        self, j: int, kind: str, raw: Sequence[str], forced: str | None
    ) -> tuple[str, coerce.Typed]:
        """Convert a batch with the widened kind. Should its notation still not read the
        batch, the column is a string (forced to a type: a type_mismatch)."""
        try:
            return kind, coerce.convert(kind, raw, self.reading.decimal)
        except coerce.Mismatch:
            if forced is not None:
                raise self._mismatch(j, forced, raw, None) from None
            return "string", coerce.convert("string", raw)

    def _mismatch(self, j: int, forced: str, raw: Sequence[str], before: str | None) -> InvalidCSV:
        """The type_mismatch error for the first value of the batch that breaks ``forced``."""
        kind, at = before or "null", None
        for i, text in enumerate(raw):
            if text in coerce.NULL_MARKERS:
                continue
            joined = coerce.join(kind, self._infer([text]))
            fitted = coerce.fit(forced, joined)
            if fitted is None or not _reads(fitted, text, self.reading.decimal):
                at = i
                break
            kind = joined
        if at is None:  # no single value breaks it, the batch as a whole does
            at = next(i for i, text in enumerate(raw) if text not in coerce.NULL_MARKERS)
        batch, records_before = self.batch
        record = records_before + [k for k, record in enumerate(batch) if record][at]
        where, line = self._line_of(record)
        return InvalidCSV(
            f"{where}: column {self.names[j]!r} must be {forced}, and {raw[at]!r} is not",
            line=line,
            code="type_mismatch",
        )

    def _line_of(self, record: int) -> tuple[str, int | None]:
        """("line N" or "row N", N) for a record number (0 is the first record)."""
        if self.upload.format == "xlsx":
            return f"row {record + 1}", record + 1  # a workbook's rows are its records
        line = _line_of_record(self.upload, self.python_codec, self.delimiter_used, record)
        return f"line {line}", line

    def _rectangular(
        self, batch: list[list[str]], width: int, records_before: int
    ) -> list[list[str]]:
        """The batch's rows, each of exactly ``width`` fields (see the module's rules)."""
        if all(map(width.__eq__, map(len, batch))):
            return batch
        rows = []
        for i, row in enumerate(batch):
            size = len(row)
            if size == width:
                rows.append(row)
            elif size == 0:
                continue  # a blank line
            elif size < width:
                rows.append(row + [""] * (width - size))
            elif any(row[width:]):
                where, line = self._line_of(records_before + i)
                raise InvalidCSV(
                    f"{where}: {size} fields, but the header has {width}",
                    line=line,
                    code="ragged_row",
                )
            else:
                rows.append(row[:width])
        return rows


def header_names(record: Sequence[str]) -> list[str]:
    """Column names from a header record: stripped, never empty, never repeated."""
    names = [name.strip() or f"column_{i}" for i, name in enumerate(record, start=1)]
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _same_offset_style(value: str, earlier: str | None) -> None:
    """Raise Mismatch if a batch of datetimes and the earlier ones differ in having an offset."""
    if earlier is not None and value.endswith("Z") != earlier.endswith("Z"):
        raise coerce.Mismatch("datetimes with and without an offset")


def _next_batch_rows(position: int, records: int, width: int) -> int:
    """Rows per batch so that a batch holds about BATCH_BYTES of text and BATCH_CELLS fields."""
    average = max(1, position // max(1, records))
    return max(64, min(BATCH_ROWS, BATCH_BYTES // average, BATCH_CELLS // max(1, width)))


def _reads(kind: str, text: str, decimal: str) -> bool:
    """Whether ``kind`` reads the value ``text``."""
    try:
        coerce.convert(kind, [text], decimal)
    except coerce.Mismatch:
        return False
    return True


def _line_of_bad_bytes(upload: unpack.Upload, codec: str) -> int:
    """The 1-based line holding the first byte sequence that ``codec`` cannot decode."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    line = 1
    f, _ = upload.open()
    with f:
        while chunk := f.read(HEAD_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # exc.object is what the decoder tried: without a BOM it skipped, with the
                # start of a character the previous chunk cut short.
                return line + exc.object.count(b"\n", 0, max(0, exc.start))
            line += chunk.count(b"\n")
    return line


def _line_of_record(
    upload: unpack.Upload, codec: str, delimiter: str, record: int | None
) -> int | None:
    """The 1-based line where record number ``record`` (0 is the header) starts, or with None
    the record the csv module cannot read; None if the file has no such record."""
    raw, _ = upload.open()
    with io.TextIOWrapper(raw, encoding=codec, newline="") as text:
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        end_of_previous = 0
        try:
            for i, _ in enumerate(reader):
                if i == record:
                    return end_of_previous + 1
                end_of_previous = reader.line_num
        except csv.Error:
            return end_of_previous + 1 if record is None else None
        except UnicodeDecodeError:
            return None
    return end_of_previous + 1 if record is not None else None


def _compact(line: bytes) -> bytes:
    """A copy of an encoded row in a buffer of its own size (see WRITE_ROWS)."""
    return bytes(memoryview(line))


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
