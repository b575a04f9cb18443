"""The WSGI layer around the Bottle app: CORS for browser dashboards, and the access log.

``python server.py`` serves ``AccessLog(Cors(app, CORS_ORIGINS))``: the log sees every
response, preflights included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any


class Cors:
    """WSGI middleware: CORS for browser dashboards on the origins CORS_ORIGINS allows.

    Preflights (OPTIONS with Access-Control-Request-Method) are answered here, without a key.
    An allowed origin is echoed back with ``Vary: Origin``; ``*`` allows every origin, and
    credentials are never allowed (keys travel in headers, not cookies), so a wildcard never
    meets credentials.
    """

    METHODS = "GET, POST, DELETE, OPTIONS"
    HEADERS = "X-API-Key, Authorization, Content-Type, If-None-Match"
    EXPOSED = "ETag, Link, Retry-After, Content-Disposition, X-Key-Scope"

    def __init__(self, app: Callable[..., Any], origins: str) -> None:
        self.app = app
        allowed = [o.strip().rstrip("/") for o in origins.split(",") if o.strip()]
        self.any = "*" in allowed
        self.allowed = frozenset(allowed)

    def _allow(self, origin: str | None) -> str | None:
        if not origin:
            return None
        if self.any:
            return "*"
        return origin if origin.rstrip("/") in self.allowed else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        allowed = self._allow(environ.get("HTTP_ORIGIN"))
        preflight = environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get(
            "HTTP_ACCESS_CONTROL_REQUEST_METHOD"
        )
        if preflight:
            headers = [("Content-Length", "0")]
            if allowed:
                headers += [
                    ("Access-Control-Allow-Origin", allowed),
                    ("Vary", "Origin"),
                    ("Access-Control-Allow-Methods", self.METHODS),
                    ("Access-Control-Allow-Headers", self.HEADERS),
                    ("Access-Control-Max-Age", "600"),
                ]
            start_response("204 No Content", headers)
            return [b""]
        if not allowed:
            return self.app(environ, start_response)

        def with_cors(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            headers = [
                *headers,
                ("Access-Control-Allow-Origin", allowed),
                ("Vary", "Origin"),
                ("Access-Control-Expose-Headers", self.EXPOSED),
            ]
            return start_response(status, headers, exc_info)

        return self.app(environ, with_cors)


class AccessLog:
    """WSGI middleware: one line per request when its response ends (or its client leaves):
    method, path and query, status, bytes sent, milliseconds. Keys travel in headers, which
    it never logs."""

    def __init__(self, app: Callable[..., Any], logger: logging.Logger | None = None) -> None:
        self.app = app
        self.log = logger or logging.getLogger("rillet.access")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        status: list[str] = []

        def recording_start(code: str, headers: list[Any], exc_info: Any = None) -> Any:
            status[:] = [code.split(" ", 1)[0]]
            return start_response(code, headers, exc_info)

        body = self.app(environ, recording_start)
        return _LoggedBody(body, self, environ, status, started)

    def line(self, environ: dict[str, Any], status: str, sent: int, started: float) -> None:
        query = environ.get("QUERY_STRING", "")
        target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        millis = (time.perf_counter() - started) * 1000
        self.log.info(
            "%s %s %s %dB %.1fms",
            environ.get("REQUEST_METHOD", "-"),
            target,
            status or "-",
            sent,
            millis,
        )


class _LoggedBody:
    """The response body, counted as it goes; logged once when closed."""

    def __init__(
        self, body: Any, log: AccessLog, environ: dict[str, Any], status: list[str], started: float
    ) -> None:
        self._body, self._log, self._environ = body, log, environ
        self._status, self._started, self._sent = status, started, 0
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._log.line(
                self._environ, self._status[0] if self._status else "", self._sent, self._started
            )
