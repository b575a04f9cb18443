"""WSGI middleware: gzip for clients that accept it, compressed as the body streams.

A response is compressed when the request accepts gzip (``Accept-Encoding``, q-values
honoured: ``gzip;q=0`` or ``identity`` alone mean no), its status is 200, its media type is
text (JSON, NDJSON, CSV, HTML, CSS, JavaScript, SVG; never server-sent events, which must
arrive as they are written, nor PNG, which is compressed already), and its body is over
MIN_BYTES. A body of unknown length (a stream) is held until MIN_BYTES have come, so a short
one goes out plain. Every compressible response says ``Vary: Accept-Encoding``; a compressed
one's ETag is the plain one's with ``-gzip`` inside the quotes, so the two representations
never share a tag (``streaming.web.exchange.not_modified`` knows both).

HEAD: bottle answers it with the GET's headers and no body, so here the decision is made from
those headers alone; the compressed length is not known without compressing, so a HEAD of a
compressed response carries no Content-Length (RFC 9110 allows a HEAD to leave it out), and a
HEAD of a streamed response (whose length is never known) says gzip even where a short GET of
it would have gone out plain.

Level: GZIP_LEVEL, chosen by measurement (README, "Compression"; bench/serve.py).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

GZIP_SUFFIX = "-gzip"  # a gzip representation's ETag is the plain one's with this inside
MIN_BYTES = 1024
GZIP_LEVEL = (
    3  # measured on 1,000 rows of flights: 7.6x smaller at 185 MiB/s; 6 is 9.2x at 59 MiB/s
)
COMPRESSIBLE = (
    "application/json",
    "application/x-ndjson",
    "text/csv",
    "text/html",
    "text/css",
    "text/plain",
    "application/javascript",
    "text/javascript",
    "image/svg+xml",
)
_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate stream

Headers = list[tuple[str, str]]


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (``*`` included) with a q above 0."""
    allowed: dict[str, bool] = {}
    for item in header.split(","):
        name, _, rest = item.strip().partition(";")
        quality = 1.0
        for parameter in rest.split(";"):
            key, _, value = parameter.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        allowed[name.strip().lower()] = quality > 0
    if "gzip" in allowed:
        return allowed["gzip"]
    if "x-gzip" in allowed:
        return allowed["x-gzip"]
    return allowed.get("*", False)


class Compress:
    """gzip the responses of ``app`` that are worth it, streamed."""

    def __init__(self, app: Callable[..., Any], level: int = GZIP_LEVEL) -> None:
        self.app = app
        self.level = level

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        wanted = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
        head = environ.get("REQUEST_METHOD") == "HEAD"
        started: list[tuple[str, Headers]] = []

        def deferred_start(status: str, headers: Headers, exc_info: Any = None) -> Any:
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            started[:] = [(status, headers)]
            return _no_write

        body = self.app(environ, deferred_start)
        return _Body(body, started, start_response, wanted, head, self.level)


def _no_write(data: bytes) -> None:
    raise RuntimeError("the write() callable is not supported; return the body instead")


class _Body:
    """The response body, compressed or not, decided when its headers and first bytes come."""

    def __init__(
        self,
        body: Iterable[bytes],
        started: list[tuple[str, Headers]],
        start_response: Callable[..., Any],
        wanted: bool,
        head: bool,
        level: int,
    ) -> None:
        self._body = body
        self._started = started
        self._start_response = start_response
        self._wanted = wanted
        self._head = head
        self._level = level

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._body)
        held: list[bytes] = []
        status, headers = self._headers(chunks, held)
        compressible = _compressible(status, headers)
        if compressible or status.startswith("304"):  # a 304 names one of two representations
            headers = [*headers, ("Vary", "Accept-Encoding")]
        if not (compressible and self._wanted):
            self._start_response(status, headers)
            yield from _chain(held, chunks)
            return
        size = _length(headers)
        if size is None and not self._head and _fill(chunks, held, MIN_BYTES):
            size = sum(map(len, held))  # a stream that ended short: sent plain, with its size
            headers = _with_length(headers, size)
        if size is not None and size < MIN_BYTES:
            self._start_response(status, headers)
            yield from _chain(held, chunks)
            return
        yield from self._gzipped(status, headers, held, chunks)

    def _headers(self, chunks: Iterator[bytes], held: list[bytes]) -> tuple[str, Headers]:
        """The status and headers, reading the body until the app has given them."""
        while not self._started:
            chunk = next(chunks, None)
            if chunk is None:
                break
            held.append(chunk)
        if not self._started:
            raise RuntimeError("the application returned without calling start_response")
        return self._started[0]

    def _gzipped(
        self, status: str, headers: Headers, held: list[bytes], chunks: Iterator[bytes]
    ) -> Iterator[bytes]:
        out = [(k, v) for k, v in headers if k.lower() not in ("content-length", "etag")]
        out.append(("Content-Encoding", "gzip"))
        etag = _header(headers, "ETag")
        if etag:
            out.append(("ETag", _gzip_tag(etag)))
        if self._head:
            self._start_response(status, out)
            return
        compressor = zlib.compressobj(self._level, zlib.DEFLATED, _WBITS)
        whole = _length(headers) is not None  # one known body: compress it at once, say its size
        if whole:
            data = compressor.compress(b"".join([*held, *chunks])) + compressor.flush()
            self._start_response(status, [*out, ("Content-Length", str(len(data)))])
            yield data
            return
        self._start_response(status, out)
        for chunk in _chain(held, chunks):
            if packed := compressor.compress(chunk):
                yield packed
        yield compressor.flush()

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


def _fill(chunks: Iterator[bytes], held: list[bytes], need: int) -> bool:
    """Read chunks into ``held`` until it holds ``need`` bytes; True if the stream ended first."""
    total = sum(map(len, held))
    while total < need:
        chunk = next(chunks, None)
        if chunk is None:
            return True
        held.append(chunk)
        total += len(chunk)
    return False


def _chain(held: list[bytes], chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield from held
    yield from chunks


def _compressible(status: str, headers: Headers) -> bool:
    if not status.startswith("200") or _header(headers, "Content-Encoding"):
        return False
    media = _header(headers, "Content-Type").split(";", 1)[0].strip().lower()
    return media in COMPRESSIBLE


def _header(headers: Headers, name: str) -> str:
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), "")


def _length(headers: Headers) -> int | None:
    text = _header(headers, "Content-Length")
    return int(text) if text.isdigit() else None


def _with_length(headers: Headers, size: int) -> Headers:
    return [
        *((k, v) for k, v in headers if k.lower() != "content-length"),
        ("Content-Length", str(size)),
    ]


def _gzip_tag(etag: str) -> str:
    """``"abc"`` → ``"abc-gzip"`` (a weak ``W/"abc"`` keeps its W/)."""
    return etag[:-1] + GZIP_SUFFIX + '"' if etag.endswith('"') else etag + GZIP_SUFFIX
