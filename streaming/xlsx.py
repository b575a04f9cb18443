"""Excel workbooks (.xlsx) read as a stream of rows, with the standard library alone.

An .xlsx file is a zip of XML parts. The rows of one sheet come from its part, read with
``ElementTree.iterparse`` and each ``<row>`` dropped once read, so memory does not grow with
the sheet. Each cell becomes the text a CSV export would hold, and the sync types it as it
types a CSV (``streaming.coerce``)::

    shared string (t="s")      the string, from the shared-strings table
    inline string (inlineStr)  the string
    number                     its text ("3", "2.5"); a date number format makes it a date
                               ("2024-03-01") or a datetime ("2024-03-01T10:30:00")
    boolean (t="b")            true / false
    error (t="e")              its text ("#DIV/0!")
    formula                    its cached value; the formula ("=A1+B1") when none is cached
    empty or absent            "" (null)

The shared-strings table is read first, into memory up to SPILL_BYTES and into an unnamed file
past that (a workbook of many distinct strings is read in the same few megabytes). Rows a sheet
leaves out are read as blank lines, so the record number of a row is its row number and an
error names the sheet's row. Excel's serial numbers count days from 1899-12-30 (1904-01-01 in a
workbook saved with the 1904 date system).
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal
from xml.etree.ElementTree import Element, ParseError, iterparse

from streaming.errors import InvalidCSV
from streaming.unpack import Capped

SPILL_BYTES = 4 << 20
# Markup around every cell makes a sheet's XML several times the CSV it holds: its parts may
# inflate to this many times the upload cap.
XML_FACTOR = 4
# Built-in number formats that show a date, a date and time, or a time of day alone.
DATE_FORMATS = frozenset([14, 15, 16, 17, *range(27, 37), *range(50, 59)])
DATETIME_FORMATS = frozenset([22])
TIME_FORMATS = frozenset([18, 19, 20, 21, 45, 46, 47])
_QUOTED_OR_BRACKETED = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.|_.|\*.')
_CELL_REF = re.compile(r"([A-Z]+)([0-9]+)")


def _local(tag: str) -> str:
    """A tag without its namespace (transitional and strict workbooks name them differently)."""
    return tag.rpartition("}")[2]


def _children(element: Element, name: str) -> Iterator[Element]:
    return (child for child in element if _local(child.tag) == name)


def _child(element: Element, name: str) -> Element | None:
    return next(_children(element, name), None)


class SharedStrings:
    """The workbook's shared-strings table: in memory while small, then in a file."""

    def __init__(self, spill_dir: Path | None, spill_bytes: int | None = None) -> None:
        self.spill_dir = spill_dir
        self.spill_bytes = SPILL_BYTES if spill_bytes is None else spill_bytes
        self.strings: list[str] = []
        self.size = 0
        self.data: IO[bytes] | None = None  # UTF-8 strings, end to end
        self.ends: IO[bytes] | None = None  # each string's end offset in data, 8 bytes each
        self.count = 0
        self.end = 0

    def append(self, text: str) -> None:
        self.count += 1
        if self.data is None:
            self.strings.append(text)
            self.size += len(text) + 50  # a str object's own size, roughly
            if self.size > self.spill_bytes:
                self._spill()
            return
        self._write(text)

    def _spill(self) -> None:
        self.data = tempfile.TemporaryFile(dir=self.spill_dir)
        self.ends = tempfile.TemporaryFile(dir=self.spill_dir)
        for text in self.strings:
            self._write(text)
        self.strings = []

    def _write(self, text: str) -> None:
        assert self.data is not None and self.ends is not None
        encoded = text.encode("utf-8")
        self.data.write(encoded)
        self.end += len(encoded)
        self.ends.write(struct.pack("<Q", self.end))

    @property
    def spilled(self) -> bool:
        return self.data is not None

    def finish(self) -> None:
        """Done appending: flush the files so that lookups can read them."""
        if self.data is not None and self.ends is not None:
            self.data.flush()
            self.ends.flush()

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < self.count:
            raise InvalidCSV(f"the workbook refers to shared string {index}, which it lacks")
        if self.data is None or self.ends is None:
            return self.strings[index]
        if index == 0:
            start, (end,) = 0, struct.unpack("<Q", os.pread(self.ends.fileno(), 8, 0))
        else:
            start, end = struct.unpack("<QQ", os.pread(self.ends.fileno(), 16, (index - 1) * 8))
        return os.pread(self.data.fileno(), end - start, start).decode("utf-8")

    def close(self) -> None:
        for f in (self.data, self.ends):
            if f is not None:
                f.close()


def _text_of(element: Element) -> str:
    """The text of a string item (``<si>`` or ``<is>``): its ``<t>``, or its runs' ``<t>``s,
    without the phonetic guides (``<rPh>``)."""
    parts = []
    for child in element:
        name = _local(child.tag)
        if name == "t":
            parts.append(child.text or "")
        elif name == "r":
            parts.extend(t.text or "" for t in _children(child, "t"))
    return "".join(parts)


def _column_number(letters: str) -> int:
    """0 for A, 25 for Z, 26 for AA."""
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - 64
    return number - 1


def date_kind(code: str) -> str | None:
    """ "date", "datetime" or "time" for a custom number format code, else None."""
    bare = _QUOTED_OR_BRACKETED.sub("", code.split(";")[0]).lower()
    has_time = "h" in bare or "s" in bare or "[h" in code.lower()
    has_date = "d" in bare or "y" in bare or ("m" in bare and not has_time)
    if has_date:
        return "datetime" if has_time else "date"
    return "time" if has_time else None


class Workbook:
    """One sheet of an .xlsx file, as rows of cell texts::

    with Workbook(Path("sales.xlsx"), sheet="2024", limit=2**30) as book:
        for row in book.rows():
            ...
    """

    def __init__(
        self, path: Path, sheet: str | None, limit: int | None, spill_dir: Path | None = None
    ) -> None:
        self._stack = ExitStack()
        self.limit = None if limit is None else limit * XML_FACTOR
        try:
            self.archive = self._stack.enter_context(zipfile.ZipFile(path))
            self.names = set(self.archive.namelist())
            self.sheet_part, self.epoch = self._sheet(sheet)
            self.kinds = self._styles()
            self.strings = SharedStrings(spill_dir)
            self._stack.callback(self.strings.close)
            self._read_shared_strings()
        except BaseException:
            self._stack.close()
            raise
        self.scale = 1.0  # from inflated sheet XML to bytes of the upload, for progress

    def __enter__(self) -> Workbook:
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    # the parts --------------------------------------------------------------------------

    def _parse(
        self, part: str, events: tuple[Literal["start", "end"], ...] = ("end",)
    ) -> Iterator[Any]:
        """iterparse over one part, inflated through the cap; InvalidCSV when it is damaged."""
        if part not in self.names:
            raise InvalidCSV(f"the workbook lacks its part {part}", code="bad_workbook")
        try:
            member = self.archive.open(part)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
            # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
            raise InvalidCSV(
                f"the workbook's {part} cannot be read: {exc}", code="bad_workbook"
            ) from None
        self.stream = stream = Capped(member, self.limit, f"the workbook's {part}")
        try:
            yield from iterparse(stream, events=events)
        except ParseError as exc:
            raise InvalidCSV(
                f"the workbook's {part} is damaged: {exc}", code="bad_workbook"
            ) from None
        finally:
            stream.close()

    def _whole(self, part: str) -> Element:
        """A small part (workbook, relationships, styles) read whole."""
        root = None
        for _, element in self._parse(part):
            root = element
        assert root is not None
        return root

    def _sheet(self, wanted: str | None) -> tuple[str, datetime]:
        """The XML part of the wanted (or first) sheet, and the workbook's date epoch."""
        workbook = self._whole("xl/workbook.xml")
        properties = _child(workbook, "workbookPr")
        date1904 = properties is not None and properties.get("date1904") in ("1", "true")
        epoch = datetime(1904, 1, 1) if date1904 else datetime(1899, 12, 30)
        listing = _child(workbook, "sheets")
        sheets = [] if listing is None else list(_children(listing, "sheet"))
        names = [s.get("name", "") for s in sheets]
        if not sheets:
            raise InvalidCSV("the workbook has no sheets", code="bad_workbook")
        if wanted is None:
            chosen = sheets[0]
        elif wanted in names:
            chosen = sheets[names.index(wanted)]
        else:
            listed = ", ".join(map(repr, names))
            raise InvalidCSV(
                f"the workbook has no sheet {wanted!r}; its sheets: {listed}",
                code="unknown_sheet",
            )
        rel_id = next((v for k, v in chosen.attrib.items() if _local(k) == "id"), None)
        targets = {
            r.get("Id"): r.get("Target", "")
            for r in self._whole("xl/_rels/workbook.xml.rels")
            if _local(r.tag) == "Relationship"
        }
        target = targets.get(rel_id, "")
        if not target:
            raise InvalidCSV(f"the workbook's sheet {chosen.get('name')!r} has no part")
        part = target.lstrip("/") if target.startswith("/") else "xl/" + target
        return os.path.normpath(part).replace(os.sep, "/"), epoch

    def _styles(self) -> list[str | None]:
        """For each cell style (``s``), "date", "datetime", "time" or None."""
        if "xl/styles.xml" not in self.names:
            return []
        styles = self._whole("xl/styles.xml")
        codes: dict[int, str] = {}
        formats = _child(styles, "numFmts")
        for fmt in [] if formats is None else _children(formats, "numFmt"):
            codes[int(fmt.get("numFmtId", "0"))] = fmt.get("formatCode", "")
        cell_xfs = _child(styles, "cellXfs")
        kinds = []
        for xf in [] if cell_xfs is None else _children(cell_xfs, "xf"):
            number = int(xf.get("numFmtId", "0"))
            kinds.append(_format_kind(number, codes.get(number)))
        return kinds

    def _read_shared_strings(self) -> None:
        if "xl/sharedStrings.xml" not in self.names:
            return
        table = None
        for event, element in self._parse("xl/sharedStrings.xml", ("start", "end")):
            if event == "start":
                if table is None:
                    table = element
                continue
            if _local(element.tag) == "si":
                self.strings.append(_text_of(element))
                if table is not None:
                    table.remove(element)  # the table would keep every item otherwise
        self.strings.finish()

    # the rows -------------------------------------------------------------------------

    def rows(self) -> Iterator[list[str]]:
        """The sheet's rows, from row 1; rows it leaves out are empty lists."""
        info = self.archive.getinfo(self.sheet_part)
        self.scale = info.compress_size / max(1, info.file_size)
        parent: Element | None = None
        expected = 1
        for event, element in self._parse(self.sheet_part, ("start", "end")):
            name = _local(element.tag)
            if event == "start":
                if name == "sheetData":
                    parent = element
                continue
            if name != "row":
                continue
            number = int(element.get("r") or expected)
            while expected < number:
                yield []
                expected += 1
            yield self._cells(element)
            expected = number + 1
            if parent is not None:
                parent.remove(element)

    def position(self) -> int:
        """Bytes of the upload read so far (the sheet's share of it), for progress."""
        return int(self.stream.count * self.scale)

    def _cells(self, row: Element) -> list[str]:
        cells: list[str] = []
        for cell in _children(row, "c"):
            ref = _CELL_REF.match(cell.get("r", ""))
            at = _column_number(ref.group(1)) if ref else len(cells)
            if at > len(cells):
                cells.extend([""] * (at - len(cells)))
            cells.append(self._value(cell))
        return cells

    def _value(self, cell: Element) -> str:
        kind = cell.get("t", "n")
        value = _child(cell, "v")
        text = value.text if value is not None else None
        if kind == "inlineStr":
            inline = _child(cell, "is")
            return _text_of(inline) if inline is not None else ""
        if text is None:
            formula = _child(cell, "f")
            return "=" + formula.text if formula is not None and formula.text else ""
        if kind == "s":
            return self.strings[int(text)]
        if kind == "b":
            return "true" if text.strip() in ("1", "true") else "false"
        if kind == "n":
            style = int(cell.get("s", "0"))
            shown = self.kinds[style] if style < len(self.kinds) else None
            if shown is not None:
                return _serial_text(float(text), shown, self.epoch)
        return text


def _format_kind(number: int, code: str | None) -> str | None:
    if code is not None:
        return date_kind(code)
    if number in DATE_FORMATS:
        return "date"
    if number in DATETIME_FORMATS:
        return "datetime"
    if number in TIME_FORMATS:
        return "time"
    return None


def _serial_text(serial: float, shown: str, epoch: datetime) -> str:
    """An Excel serial number as the ISO text of the date, datetime or time it shows."""
    try:
        moment = epoch + timedelta(milliseconds=round(serial * 86_400_000))
    except OverflowError:
        return repr(serial)
    if shown == "time":
        return moment.time().isoformat()
    if shown == "date" and moment.time() == datetime.min.time():
        return moment.date().isoformat()
    return moment.isoformat()
