"""What an upload holds, told by its bytes: CSV text, gzip, a zip of one CSV, or a workbook.

The spool keeps the bytes as uploaded (its SHA-256 is theirs); the sync reads through them as
a stream, inflating as it goes, and reopens them for each pass it makes (a restart, the search
for the line of an error). Nothing is inflated to disk or to memory whole::

    1f 8b ...          csv.gz   gzip.GzipFile
    PK 03 04 ...       zip      the archive's one file (more than one: an error naming them)
                       xlsx     a zip holding xl/workbook.xml (streaming.xlsx reads it)
    D0 CF 11 E0 ...    an encrypted workbook, or an old .xls: refused with what to do instead
    anything else      csv

Inflating is capped (``limit``, the upload cap by default): a zip bomb, or a stream that claims
more than the cap, fails the sync with ``too_large`` as soon as it passes it; a stream that is
damaged or ends early fails with ``bad_archive``. Either way the sync's output is thrown away
whole, as for any failed sync.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from streaming.errors import InvalidCSV, PayloadTooLarge

if TYPE_CHECKING:
    import zipfile

# gzip and zipfile are imported where a compressed upload is read, not by every CSV's sync or
# by the server, which imports is_archive for its binary check (DESIGN: import lazily).

FORMATS = ("csv", "csv.gz", "zip", "xlsx")
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Files a zip tool adds beside the one a person meant: not counted as a second file.
_ZIP_CLUTTER = ("__MACOSX/", ".DS_Store", "Thumbs.db")

_READABLE = (0, 8, 12, 14)  # stored, deflate, bzip2, lzma: what zipfile inflates

Position = Callable[[], int]  # bytes read so far


def is_archive(head: bytes) -> bool:
    """Whether ``head`` starts an upload this module reads (not text, yet not refused)."""
    return head.startswith((GZIP_MAGIC, OLE_MAGIC, *ZIP_MAGICS))


@dataclass(frozen=True)
class Upload:
    """A spooled upload and how to read it."""

    path: Path
    format: str
    limit: int | None  # most bytes any one stream may inflate to
    member: str | None = None  # the CSV inside a zip

    def open(self) -> tuple[BinaryIO, Position]:
        """A fresh stream of the CSV's bytes, and how many of them it has read (the CSV's
        bytes: ``scale`` turns them into the upload's)."""
        if self.format == "csv":
            raw = open(self.path, "rb")
            return raw, raw.tell
        if self.format == "csv.gz":
            import gzip

            raw = open(self.path, "rb")
            capped = Capped(gzip.GzipFile(fileobj=raw, mode="rb"), self.limit, "gzip stream")
            return _buffered(capped, extra=raw), lambda: capped.count
        if self.format == "zip" and self.member is not None:
            import zipfile

            archive = zipfile.ZipFile(self.path)
            info = archive.getinfo(self.member)
            capped = Capped(archive.open(info), self.limit, f"zip entry {info.filename!r}")
            return _buffered(capped, extra=archive), lambda: capped.count
        raise ValueError(f"no byte stream for {self.format}")

    @cached_property
    def scale(self) -> float:
        """Bytes of the upload per byte of CSV, to turn a read position into progress."""
        if self.format == "csv.gz":
            with open(self.path, "rb") as f:
                f.seek(-4, os.SEEK_END)
                inflated = int.from_bytes(f.read(4), "little")  # ISIZE: the size mod 2**32
                return f.tell() / inflated if inflated else 1.0
        if self.format == "zip" and self.member is not None:
            import zipfile

            with zipfile.ZipFile(self.path) as archive:
                info = archive.getinfo(self.member)
            return info.compress_size / max(1, info.file_size)
        return 1.0  # a workbook reports its own progress (streaming.xlsx)

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes of the CSV (fewer if it is shorter)."""
        stream, _ = self.open()
        with stream:
            return stream.read(size)


def identify(path: Path, limit: int | None) -> Upload:
    """What the upload at ``path`` is; InvalidCSV for a workbook it cannot read."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(GZIP_MAGIC):
        return Upload(path, "csv.gz", limit)
    if head.startswith(OLE_MAGIC):
        raise InvalidCSV(
            "the file is an encrypted Excel workbook or an old .xls: save it as .xlsx without "
            "a password, or as CSV, and upload that",
            code="unsupported_workbook",
        )
    if head.startswith(ZIP_MAGICS):
        return _zip_upload(path, limit)
    return Upload(path, "csv", limit)


def _zip_upload(path: Path, limit: int | None) -> Upload:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidCSV(f"the zip archive is damaged: {exc}", code="bad_archive") from None
    names = {info.filename for info in infos}
    if "xl/workbook.xml" in names:
        return Upload(path, "xlsx", limit)
    files = [i for i in infos if not i.is_dir() and not _clutter(i.filename)]
    if len(files) != 1:
        listed = ", ".join(repr(i.filename) for i in files[:10])
        more = f" and {len(files) - 10} more" if len(files) > 10 else ""
        raise InvalidCSV(
            f"a zip upload must hold exactly one CSV file; this one holds {len(files)}"
            + (f": {listed}{more}" if files else ""),
            code="bad_archive",
        )
    (info,) = files
    if info.compress_type not in _READABLE:
        raise InvalidCSV(
            f"{info.filename!r} in the zip is compressed with method {info.compress_type}, "
            "which cannot be read; use deflate (any zip tool's default)",
            code="bad_archive",
        )
    if info.flag_bits & 0x1:
        raise InvalidCSV(f"{info.filename!r} in the zip is encrypted", code="bad_archive")
    if limit is not None and info.file_size > limit:
        raise too_large(info.filename, limit)
    return Upload(path, "zip", limit, info.filename)


def _clutter(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.startswith(_ZIP_CLUTTER) or base in _ZIP_CLUTTER or base.startswith("._")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class Capped(io.RawIOBase):
    """A decompressing stream that fails past ``limit`` bytes, or when its input is damaged."""

    def __init__(self, stream: Readable, limit: int | None, what: str) -> None:
        import gzip
        import zipfile
        import zlib

        self.damaged = (EOFError, zlib.error, zipfile.BadZipFile, gzip.BadGzipFile)
        self.stream = stream
        self.limit = limit
        self.what = what
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self.stream.read(len(buffer))
        except self.damaged as exc:
            reason = "ends early" if isinstance(exc, EOFError) else f"is damaged ({exc})"
            raise InvalidCSV(f"the {self.what} {reason}", code="bad_archive") from None
        self.count += len(data)
        if self.limit is not None and self.count > self.limit:
            raise too_large(self.what, self.limit)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.stream.close()
        super().close()


def _buffered(capped: Capped, extra: BinaryIO | zipfile.ZipFile) -> BinaryIO:
    """A buffered reader over ``capped`` that also closes ``extra`` (the file underneath)."""
    reader = _ClosingReader(capped)
    reader.extra = extra
    return reader


class _ClosingReader(io.BufferedReader):
    extra: BinaryIO | zipfile.ZipFile

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.extra.close()


def too_large(what: str, limit: int) -> PayloadTooLarge:
    """The error for a stream that inflates past ``limit`` bytes."""
    return PayloadTooLarge(
        f"{what} inflates to more than {limit / 2**20:g} MiB, the upload limit",
        limit_bytes=limit,
    )
