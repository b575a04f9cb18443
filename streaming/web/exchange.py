"""What a handler is given (``Call``: the request's values) and what it gives back (``Answer``).

Handlers are plain functions of ``(Rillet, Call) -> Answer``: no thread-local request or
response, so a test can call one with a Call it made and look at the Answer. The app factory
(``streaming.web.app``) makes the Call from bottle's request and turns the Answer into
bottle's response.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson

from streaming.errors import RilletError
from streaming.memory import release_memory
from streaming.web.compress import GZIP_SUFFIX, accepts_gzip

JSON = "application/json; charset=utf-8"
EVENT_HEADERS = {  # server-sent events: never cached, relayed by proxies as they come
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


@dataclass(frozen=True)
class Call:
    """One request's values: path arguments, query parameters, headers, the body's source."""

    method: str
    path: str  # as requested, without the query string
    query_string: str
    params: Mapping[str, str]  # decoded as UTF-8; a bottle FormsDict keeps repeated filters
    args: Mapping[str, str] = field(default_factory=dict)  # the route's path arguments
    headers: Mapping[str, str] = field(default_factory=dict)
    environ: Mapping[str, Any] = field(default_factory=dict)  # for spooling an upload
    body: Callable[[int], bytes] = lambda limit: b""  # the body, up to a limit (413 past it)

    def header(self, name: str) -> str:
        return str(self.headers.get(name) or "")

    def wants_events(self) -> bool:
        return "text/event-stream" in self.header("Accept")


@dataclass
class Answer:
    """A response: status, headers and a body (bytes, or chunks that may hold resources)."""

    body: bytes | Iterable[bytes] = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(data: Any, status: int = 200, **headers: str) -> Answer:
    return Answer(orjson.dumps(data), status, {"Content-Type": JSON, **headers})


def raw_json(body: bytes, **headers: str) -> Answer:
    """JSON already encoded (a stored meta.json, a spliced statistics body)."""
    return Answer(body, 200, {"Content-Type": JSON, **headers})


def error_answer(exc: RilletError) -> Answer:
    headers = {"Content-Type": JSON, **getattr(exc, "headers", {})}
    return Answer(orjson.dumps(exc.to_dict()), exc.status, headers)


def url(path: str, params: Mapping[str, str]) -> str:
    return f"{path}?{urlencode(params)}"


def etag_of(dataset_id: str, call: Call, version: int) -> str:
    """A strong ETag for a response about a version of a ready dataset.

    A version never changes (new data makes a new version), so the ETag is the request itself
    and the version it was answered from: the dataset, the version, the path and the query.
    """
    seed = f"{dataset_id}\n{version}\n{call.path}\n{call.query_string}".encode()
    return '"' + hashlib.sha256(seed).hexdigest()[:32] + '"'


def not_modified(etag: str, call: Call) -> Answer | None:
    """A 304 if the client holds a representation of this response (plain or gzip), else None.

    The 304 names the tag the client presented, so the representation it caches stays named.
    """
    # The gzip representation's tag matches only for a client that takes gzip: a cache asking
    # for a client that does not must not be told its gzip copy will do.
    gzip_ok = accepts_gzip(call.header("Accept-Encoding"))
    gzip_tag = etag[:-1] + GZIP_SUFFIX + '"' if gzip_ok else None
    for tag in (t.strip() for t in call.header("If-None-Match").split(",")):
        if tag in ("*", etag, gzip_tag):
            return Answer(b"", 304, {"ETag": etag if tag == "*" else tag})
    return None


class Streamed:
    """A streamed body that releases what it holds (its dataset's files, its stream slot, an
    upstream call) when done or when the client goes away.

    The WSGI server calls ``close`` in both cases, even when the stream never started, which a
    generator's ``finally`` would miss.
    """

    def __init__(self, chunks: Iterator[bytes], resources: ExitStack) -> None:
        self._chunks = chunks
        self._resources = ExitStack()  # callbacks run last in, first out:
        self._resources.callback(release_memory)  # so this runs once the rest is let go
        self._resources.enter_context(resources)

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._chunks
        finally:
            self.close()  # also when it ends at once: bottle then never calls close()

    def close(self) -> None:
        self._resources.close()  # an ExitStack closes once: later calls find it empty


def attachment(filename: str) -> str:
    """A Content-Disposition naming a download, with only safe characters in the name."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return f'attachment; filename="{safe}"'
