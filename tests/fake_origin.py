"""A local HTTP origin for source tests: a real server on 127.0.0.1, so the fetch goes through
real sockets, real redirects, real timeouts and real cut connections::

    with FakeOrigin(token="t0k") as origin:
        origin.url("/data.csv")          # http://127.0.0.1:PORT/data.csv
        origin.requests                  # [(path, {header: value}), ...] as received

Paths: ``/data.csv`` (401 without ``X-Token: TOKEN``; ``body`` with ``etag`` and
``last_modified``, 304 to a request that holds either; ``fail_status`` instead when set),
``/open.csv`` (``body``, no token, no validators: only its hash says it is unchanged),
``/error`` (500), ``/page`` (text/html), ``/sneaky`` (an HTML body said to
be text/plain), ``/big`` (``big_bytes`` of CSV), ``/redirect/N`` (N hops, then /data.csv),
``/loop`` (to itself), ``/away`` (to ``localhost``: another origin, then /open.csv), ``/cut``
(a Content-Length it does not keep), ``/slow`` (answers after ``slow_seconds``),
``/trickle`` (a line every ``trickle_seconds``, without end). ``change(body)`` gives the
data new bytes and a new ETag.

``POST /hook`` is a webhook receiver: it keeps ``(headers, body)`` in ``hooks`` and answers the
next of ``hook_statuses`` (200 once they are used up). ``tls=(cert, key)`` serves https.
"""

from __future__ import annotations

import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CSV = b"city,visits\nLyon,3\nNantes,5\nLille,8\n"
ETAG = '"v1"'
LAST_MODIFIED = "Tue, 01 Dec 2026 10:00:00 GMT"


class FakeOrigin:
    def __init__(
        self,
        token: str | None = "origin-token",
        big_bytes: int = 0,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.token = token
        self.big_bytes = big_bytes
        self.slow_seconds = 3.0
        self.trickle_seconds = 0.05
        self.body, self.etag, self.last_modified = CSV, ETAG, LAST_MODIFIED
        self.fail_status: int | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.hooks: list[tuple[dict[str, str], bytes]] = []
        self.hook_statuses: list[int] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def change(self, body: bytes) -> None:
        """New data at the origin, with a new ETag and Last-Modified."""
        self.body = body
        self.etag = f'"v{len(self.requests) + 2}"'
        self.last_modified = "Wed, 02 Dec 2026 10:00:00 GMT"

    def __enter__(self) -> FakeOrigin:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(origin: FakeOrigin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            origin.requests.append((self.path, dict(self.headers.items())))
            try:
                self._answer()
            except (BrokenPipeError, ConnectionResetError):  # the client gave up: expected
                self.close_connection = True

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            origin.hooks.append((dict(self.headers.items()), body))
            status = origin.hook_statuses.pop(0) if origin.hook_statuses else 200
            self._send(status, b"", "text/plain")

        def _answer(self) -> None:
            path = self.path.partition("?")[0]
            if path == "/data.csv":
                if self.headers.get("X-Token") != origin.token:
                    return self._send(401, b"no token", "text/plain")
                if origin.fail_status is not None:
                    return self._send(origin.fail_status, b"down", "text/plain")
                validators = {"ETag": origin.etag, "Last-Modified": origin.last_modified}
                if self.headers.get("If-None-Match") == origin.etag or (
                    self.headers.get("If-Modified-Since") == origin.last_modified
                ):
                    return self._send(304, b"", extra=validators)
                return self._send(200, origin.body, extra=validators)
            if path == "/open.csv":
                return self._send(200, origin.body)
            if path == "/trickle":
                return self._trickle()
            if path == "/error":
                return self._send(500, b"oops", "text/plain")
            if path == "/page":
                return self._send(200, b"<html><body>Sign in</body></html>", "text/html")
            if path == "/sneaky":
                return self._send(200, b"\n  <!DOCTYPE html><html></html>", "text/plain")
            if path == "/big":
                return self._big()
            if path.startswith("/redirect/"):
                hops = int(path.rpartition("/")[2])
                return self._redirect(f"/redirect/{hops - 1}" if hops > 1 else "/data.csv")
            if path == "/loop":
                return self._redirect("/loop")
            if path == "/away":
                return self._redirect(origin.url("/open.csv", host="localhost"))
            if path == "/cut":
                return self._cut()
            if path == "/slow":
                time.sleep(origin.slow_seconds)
                return self._send(200, CSV)
            return self._send(404, b"not found", "text/plain")

        def _send(
            self,
            status: int,
            body: bytes,
            kind: str = "text/csv",
            extra: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            if status != 304:  # a 304 has no body, and says nothing of one
                self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _big(self) -> None:
            # No Content-Length: the cap must hold while the body streams.
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"n\n")
            line = b"1234567\n" * 8192
            for _ in range(origin.big_bytes // len(line) + 1):
                self.wfile.write(line)
            self.close_connection = True

        def _trickle(self) -> None:
            # Never a pause long enough for a per-read timeout: only a deadline ends it.
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"n\n")
            while True:
                self.wfile.write(b"1\n")
                self.wfile.flush()
                time.sleep(origin.trickle_seconds)

        def _cut(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(CSV)
            self.wfile.flush()
            self.close_connection = True

    return Handler
