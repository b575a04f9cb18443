"""Spool an upload to disk: the first stage of a CSV's path through Rillet.

The bytes are stored as they came, gzip, zip and workbook included (the sync reads those;
``streaming.unpack``), so the SHA-256 is of what the client sent.

One request passes through four steps, and never sits in memory whole:

1. ``spool_upload`` checks Content-Type and Content-Length before reading a byte.
2. ``_body_chunks`` reads ``wsgi.input`` in fixed-size chunks, up to Content-Length (or to the
   end of the stream when the client sent it chunked), and caps the body's total size.
3. A raw CSV body is the file. For ``multipart/form-data``, ``MultipartParser`` turns the
   chunks into events and ``_store_file_part`` keeps the data of the part named ``file``.
4. ``_Sink`` writes the file's bytes to ``dest``, counting, hashing and keeping the head.

Example::

    spooled = spool_upload(environ, data_dir / "upload.part", max_bytes=1024 * 2**20)
    spooled.filename, spooled.bytes, spooled.sha256  # ("sales.csv", 18234, "9f86d0...")

Any error, the client's or the connection's, removes ``dest`` before it propagates.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from streaming.convert import announces_wide_text
from streaming.errors import BadRequest, InvalidCSV, PayloadTooLarge, UnsupportedMediaType
from streaming.unpack import is_archive

RAW_TYPES = (
    "text/csv",
    "application/csv",
    "text/plain",
    # Compressed CSV and workbooks (streaming.unpack tells them by their bytes, not by this).
    "application/gzip",
    "application/x-gzip",
    "application/zip",
    "application/x-zip-compressed",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
ACCEPTED = (
    "text/csv, application/csv, text/plain (or gzip, zip, xlsx), "
    "or multipart/form-data with a part named 'file'"
)
HEAD_BYTES = 65536
# Room in a multipart body for boundaries, part headers and small form fields beside the file.
MULTIPART_ALLOWANCE = 2**20
MAX_HEADER_BLOCK = 16 * 1024

Event = tuple[Any, ...]

# One `; key=value` or `; key="quoted \" value"` parameter of a header value.
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
# RFC 5987 `filename*` value: charset'language'percent-encoded-text.
_EXT_VALUE = re.compile(r"([^']+)'[^']*'(.*)")


@dataclass(frozen=True)
class Spooled:
    """What was stored at ``dest``."""

    filename: str  # the part's filename, or the `name` given for raw bodies; no directories
    bytes: int  # size of the stored file
    sha256: str  # hex digest of the stored file
    # builtins.bytes, because inside this class `bytes` now names the field above.
    head: builtins.bytes  # the first (up to) HEAD_BYTES bytes of the file, as checked


def spool_upload(
    environ: dict[str, Any],
    dest: Path,
    *,
    max_bytes: int,
    name: str | None = None,
    chunk_size: int = 65536,
    binary_check: bool = True,
) -> Spooled:
    """Copy the request body's CSV file to ``dest`` and describe it (see the module docstring)."""
    media_type, params = _parse_header(environ.get("CONTENT_TYPE", ""))
    fallback = _basename(name or "") or "upload.csv"
    boundary = None
    if media_type == "multipart/form-data":
        boundary = _boundary(params)
        body_limit = max_bytes + MULTIPART_ALLOWANCE
    elif media_type in RAW_TYPES:
        body_limit = max_bytes
    else:
        raise UnsupportedMediaType(f"expected {ACCEPTED}; got {media_type or 'no Content-Type'}")
    length = _content_length(environ)
    if length is not None and length > body_limit:
        raise _too_large(max_bytes)
    chunks = _body_chunks(environ["wsgi.input"], length, body_limit, max_bytes, chunk_size)
    try:
        with dest.open("wb") as out:
            sink = _Sink(out, max_bytes, binary_check)
            if boundary is None:
                filename = fallback
                for chunk in chunks:
                    sink.write(chunk)
            else:
                filename = _store_file_part(chunks, boundary, sink, fallback)
        if sink.size == 0:
            raise InvalidCSV("the file is empty", code="empty_file")
        sink.finish()
    except BaseException:
        # Also on KeyboardInterrupt or a client disconnect: leave no partial file behind.
        dest.unlink(missing_ok=True)
        raise
    return Spooled(filename, sink.size, sink.sha256.hexdigest(), bytes(sink.head))


class _Sink:
    """The stored file: written to disk, counted, hashed, capped and checked for binary."""

    def __init__(self, out: BinaryIO, max_bytes: int, binary_check: bool = True) -> None:
        self.out = out
        self.max_bytes = max_bytes
        self.binary_check = binary_check
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.head = bytearray()
        self._checked = 0  # how much of the head was searched for NUL bytes

    def write(self, data: bytes) -> None:
        """Store ``data``, failing as soon as the file is too large or looks binary."""
        self.size += len(data)
        if self.size > self.max_bytes:
            raise _too_large(self.max_bytes)
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
            self._check_head()
        self.sha256.update(data)
        self.out.write(data)

    def finish(self) -> None:
        """Judge a file shorter than a byte-order mark, which ``write`` left unjudged."""
        self._check_head(final=True)

    def _check_head(self, final: bool = False) -> None:
        """Fail on a NUL byte in the head: a CSV has none, unless it is UTF-16 or UTF-32 text,
        which a byte-order mark announces, or compressed or a workbook, which their first bytes
        announce (so the first 8 bytes are read before judging, unless the file ends sooner).
        The sync judges those further (streaming.unpack)."""
        if not self.binary_check or (len(self.head) < 8 and not final):
            return
        head = bytes(self.head[:8])
        if announces_wide_text(head[:4]) or is_archive(head):
            self.binary_check = False
            return
        nul = self.head.find(b"\x00", self._checked)
        self._checked = len(self.head)
        if nul != -1:
            raise UnsupportedMediaType(
                f"the upload looks binary (NUL byte at offset {nul}), not a CSV"
            )


def _body_chunks(
    stream: BinaryIO, length: int | None, limit: int, max_bytes: int, chunk_size: int
) -> Iterator[bytes]:
    """Read the body: ``length`` bytes if given, else until the stream ends (waitress de-chunks)."""
    remaining = length
    total = 0
    while remaining is None or remaining > 0:
        chunk = stream.read(chunk_size if remaining is None else min(chunk_size, remaining))
        if not chunk:
            if remaining is not None:
                raise BadRequest(
                    f"the request body ended {remaining} bytes short of its Content-Length",
                    code="incomplete_body",
                )
            return
        total += len(chunk)
        if total > limit:
            raise _too_large(max_bytes)
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


def _store_file_part(chunks: Iterator[bytes], boundary: bytes, sink: _Sink, fallback: str) -> str:
    """Write the data of the first part named ``file`` to ``sink``; return its filename."""
    filename = None
    storing = False
    for event in _events(chunks, boundary):
        match event:
            case ("part", headers):
                disposition = _parse_header(headers.get("content-disposition", ""))[1]
                storing = filename is None and disposition.get("name") == "file"
                if storing:
                    filename = _filename(disposition) or fallback
            case ("data", data) if storing:
                sink.write(data)
            case ("end_part",):
                storing = False
    if filename is None:
        raise BadRequest("multipart upload has no part named 'file'", code="missing_file")
    return filename


def _events(chunks: Iterator[bytes], boundary: bytes) -> Iterator[Event]:
    """Every event of a multipart body, ending with the parser's check that it was complete."""
    parser = MultipartParser(boundary)
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.flush()


class MultipartParser:
    """Turn chunks of a ``multipart/form-data`` body into events, holding little in memory.

    Used like httpx's ``LineDecoder``: ``feed(chunk)`` returns the events that chunk completes,
    and ``flush()`` at the end of the body raises ``BadRequest`` unless the final boundary was
    seen. The events are tuples, in body order::

        ("part", headers)   a part begins; headers maps lower-case names to values (str)
        ("data", bytes)     the next piece of the current part's content (never empty)
        ("end_part",)       the current part is complete
        ("end",)            the final boundary was seen; the epilogue after it is ignored

    A delimiter is CRLF "--" boundary (RFC 2046), so "--boundary" in content that does not
    follow a CRLF is content. The first delimiter may open the body without its CRLF, so the
    buffer starts with one. Between chunks only what could be the start of a delimiter, or an
    unfinished header block of at most ``MAX_HEADER_BLOCK`` bytes, is held back.
    """

    def __init__(self, boundary: bytes) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._buffer = b"\r\n"
        # preamble -> headers -> data -> headers ... -> end
        self._state = "preamble"

    def feed(self, chunk: bytes) -> list[Event]:
        """Events completed by ``chunk``."""
        self._buffer += chunk
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def flush(self) -> list[Event]:
        """Check that the body ended after the final boundary; there are no events left."""
        if self._state != "end":
            raise _malformed("multipart body ends before its final boundary")
        return []

    def _step(self, events: list[Event]) -> bool:
        """Consume what the buffer allows in the current state; False when it needs more."""
        if self._state in ("preamble", "data"):
            return self._scan_for_delimiter(events)
        if self._state == "headers":
            return self._read_headers(events)
        self._buffer = b""  # the epilogue is ignored
        return False

    def _scan_for_delimiter(self, events: list[Event]) -> bool:
        """Pass on content up to the next delimiter (preamble content is dropped)."""
        at = self._buffer.find(self._delimiter)
        # Without a delimiter, hold back a tail that could be the start of one.
        end = at if at != -1 else max(0, len(self._buffer) - len(self._delimiter) + 1)
        if self._state == "data" and end > 0:
            events.append(("data", self._buffer[:end]))
        if at == -1:
            self._buffer = self._buffer[end:]
            return False
        if self._state == "data":
            events.append(("end_part",))
        self._buffer = self._buffer[at + len(self._delimiter) :]
        self._state = "headers"
        return True

    def _read_headers(self, events: list[Event]) -> bool:
        """After a delimiter: the final "--", or the next part's header block once complete."""
        if len(self._buffer) < 2:
            return False
        if self._buffer.startswith(b"--"):
            events.append(("end",))
            self._state = "end"
            return True
        # The block still starts with the delimiter line's padding and CRLF, so even a part
        # with no headers ends at a CRLF CRLF.
        end = self._buffer.find(b"\r\n\r\n", 0, MAX_HEADER_BLOCK + 4)
        if end == -1:
            if len(self._buffer) >= MAX_HEADER_BLOCK + 4:
                raise _malformed(f"a multipart header block is over {MAX_HEADER_BLOCK} bytes")
            return False
        padding, *lines = self._buffer[:end].split(b"\r\n")
        if padding.strip(b" \t"):
            raise _malformed("unexpected bytes after a multipart boundary")
        events.append(("part", _parse_part_headers(lines)))
        self._buffer = self._buffer[end + 4 :]
        self._state = "data"
        return True


def _parse_part_headers(lines: list[bytes]) -> dict[str, str]:
    """``{"content-disposition": "form-data; name=..."}`` from a part's header lines."""
    headers = {}
    for line in lines:
        key, colon, value = line.decode("utf-8", "replace").partition(":")
        if not colon:
            raise _malformed(f"malformed multipart header line {line[:80]!r}")
        headers[key.strip().lower()] = value.strip()
    return headers


def _parse_header(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type; key=value; key="quoted"`` into the lower-case type and its parameters."""
    main, _, rest = value.partition(";")
    params = {}
    for match in _PARAM.finditer(";" + rest):
        key, raw = match.group(1).lower(), match.group(2).strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            # Undo only \" and \\ so an old browser's raw C:\dir\a.csv path survives.
            raw = re.sub(r'\\(["\\])', r"\1", raw[1:-1])
        params[key] = raw
    return main.strip().lower(), params


def _boundary(params: dict[str, str]) -> bytes:
    """The multipart boundary as bytes (WSGI headers are latin-1 strings)."""
    boundary = params.get("boundary", "")
    if not boundary or not boundary.isascii():
        raise _malformed("multipart upload has no usable boundary parameter")
    return boundary.encode("ascii")


def _filename(params: dict[str, str]) -> str:
    """The part's filename, preferring RFC 5987 ``filename*``; directories removed."""
    name = params.get("filename", "")
    extended = _EXT_VALUE.fullmatch(params.get("filename*", ""))
    if extended:
        charset, encoded = extended.groups()
        with contextlib.suppress(LookupError):  # an unknown charset: keep the plain filename
            name = urllib.parse.unquote(encoded, encoding=charset, errors="replace")
    return _basename(name)


def _basename(name: str) -> str:
    """The last path component, split at / and at \\ (Windows browsers send full paths)."""
    base = re.split(r"[\\/]", name)[-1].strip()
    return "" if base in (".", "..") else base


def _content_length(environ: dict[str, Any]) -> int | None:
    """The declared body size, or None when the body came chunked."""
    raw = environ.get("CONTENT_LENGTH", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise BadRequest(f"invalid Content-Length {raw[:40]!r}")
    return int(raw)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    """The 413 error for an upload over ``max_bytes``."""
    return PayloadTooLarge(
        f"upload exceeds the limit of {max_bytes / 2**20:g} MiB", limit_bytes=max_bytes
    )


def _malformed(message: str) -> BadRequest:
    """The 400 error for a multipart body that cannot be parsed."""
    return BadRequest(message, code="bad_multipart")
