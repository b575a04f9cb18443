"""The Bottle app: the route table served, each request's key checked, every error in one shape.

``create_app`` walks ``streaming.web.routes.ROUTES``. For each request it makes the handler's
``Call`` from bottle's request (the query string decoded as UTF-8), checks the key, scope and
rate limit the route needs, calls the handler, and turns its ``Answer`` into bottle's response.
A ``RilletError`` raised anywhere before the body streams becomes the one JSON error shape
here, the only place that writes one; anything else is logged and answered 500 without a
traceback.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import bottle
import orjson

from streaming.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RilletError,
)
from streaming.web.auth import KeyRing
from streaming.web.exchange import JSON, Answer, Call, error_answer
from streaming.web.openapi import document
from streaming.web.routes import ROUTES, Route
from streaming.web.state import VERSION, Rillet

log = logging.getLogger("rillet")


def create_app(rillet: Rillet) -> bottle.Bottle:
    """The Bottle app for one Rillet; ``python server.py`` serves it with waitress."""
    app = bottle.Bottle()
    app.config["json.enable"] = False
    rillet.openapi = orjson.dumps(document(ROUTES, VERSION))
    for route in ROUTES:
        app.route(route.path, route.method, _endpoint(rillet, route))
    for code in (400, 404, 405, 500):
        app.error(code)(_bottle_error)
    return app


def _endpoint(rillet: Rillet, route: Route) -> Callable[..., Any]:
    def endpoint(**args: str) -> bottle.HTTPResponse:
        scope = None
        try:
            if route.scope is not None:
                key = rillet.keys.identify(_presented_key())
                scope = key.scope
                KeyRing.require(key.scope, route.scope)
                rillet.limiter.take(key.id)
            answer = route.handler(rillet, _call(args))
        except RilletError as exc:
            answer = error_answer(exc)
        except bottle.HTTPError:
            raise  # bottle's own (a body it cannot read): _bottle_error gives it the one shape
        except Exception:
            log.error(
                "unhandled error in %s %s\n%s",
                bottle.request.method,
                bottle.request.path,
                traceback.format_exc(),
            )
            answer = error_answer(RilletError("internal error"))
        if scope is not None:  # what the key may do, so a client need not try (the page)
            answer.headers["X-Key-Scope"] = scope
        return bottle.HTTPResponse(answer.body, answer.status, answer.headers)

    endpoint.__name__ = route.handler.__name__
    return endpoint


def _call(args: dict[str, str]) -> Call:
    request = bottle.request
    return Call(
        method=request.method,
        path=request.path,
        query_string=request.query_string,
        params=_params(),
        args=args,
        headers=request.headers,
        environ=request.environ,
        body=_read_body,
    )


def _params() -> bottle.FormsDict:
    """The query string, decoded as UTF-8 (bottle's own gives Latin-1 text)."""
    try:
        values: bottle.FormsDict = bottle.request.query.decode()
    except UnicodeError:
        raise BadRequest("the query string is not valid UTF-8", code="bad_parameter") from None
    return values


def _read_body(limit: int) -> bytes:
    """The request body, up to ``limit`` bytes; 413 past it (whatever Content-Length says)."""
    too_large = PayloadTooLarge(f"the body is over {limit // 1024} KiB", code="too_large")
    if bottle.request.content_length > limit:
        raise too_large
    body: bytes = bottle.request.body.read(limit + 1)
    if len(body) > limit:
        raise too_large
    return body


def _presented_key() -> str | None:
    headers = bottle.request.headers
    key = headers.get("X-API-Key")
    if key:
        return str(key)
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return str(auth[7:].strip())
    return None


def _bottle_error(error: bottle.HTTPError) -> bytes:
    """Bottle's own 400 (a body it could not read), 404 (no route), 405 (wrong method) and 500
    (an error raised while bottle read a response's first chunk, past the endpoint), in the
    one error shape."""
    exc: RilletError
    if error.status_code == 400:
        exc = BadRequest(f"the request could not be read: {error.body}", code="bad_body")
    elif error.status_code == 405:
        exc = MethodNotAllowed(f"{bottle.request.method} is not allowed on {bottle.request.path}")
    elif isinstance(error.exception, RilletError):  # raised as the body began: its own status
        exc = error.exception
        bottle.response.status = exc.status
        for name, value in getattr(exc, "headers", {}).items():
            bottle.response.set_header(name, value)
    elif error.status_code == 500:
        log.error(
            "unhandled error in %s %s\n%s",
            bottle.request.method,
            bottle.request.path,
            error.traceback or error.exception,
        )
        exc = RilletError("internal error")
    else:
        exc = NotFound(f"no route {bottle.request.path}")
    bottle.response.content_type = JSON
    return orjson.dumps(exc.to_dict())


__all__ = ["Answer", "Rillet", "create_app"]
