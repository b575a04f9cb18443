"""The OpenAPI 3.1 document of the routes served (``GET /openapi.json``), built from the table.

Each route declares its own document next to its handler (a ``Doc``: summary, parameters,
responses, body), with the words below; ``document`` walks the route table
(``streaming.web.routes``) and adds what follows from each route's place in it: the path's
parameters, and for every route that needs a key its security and its 401, 403 and 429. So
a route cannot be served without being documented, nor documented without being served.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streaming.web.schemas import SCHEMAS


@dataclass(frozen=True)
class Doc:
    """What the document says of one route."""

    summary: str
    responses: dict[str, Any]
    parameters: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] | None = None  # the requestBody, for routes that take one


class Documented(Protocol):
    """A route, as the document sees it (``streaming.web.routes.Route``)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def scope(self) -> str | None: ...
    @property
    def doc(self) -> Doc: ...


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR_WORDS = {
    400: "Bad parameter",
    401: "No or unknown key",
    403: "Key lacks the scope",
    404: "No such thing",
    409: "Dataset not ready",
    413: "Upload too large",
    415: "Not a CSV",
    422: "CSV cannot be converted",
    429: "Rate limited (see Retry-After)",
    501: "Rendering needs the render extra",
    502: "The LLM failed after its retries, or answered nonsense",
    503: "No LLM configured (GROQ_API_KEY)",
    504: "The LLM timed out",
}


def errors(*codes: int) -> dict[str, Any]:
    return {str(c): json_content(ref("Error"), ERROR_WORDS[c]) for c in codes}


def param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


COLUMNS = param("columns", {"type": "string"}, "Comma-separated columns, in output order.")
PAGE = (
    param("limit", {"type": "integer", "minimum": 1}, "Rows per page (at most PAGE_MAX)."),
    param("offset", {"type": "integer", "minimum": 0}, "Rows to skip."),
    COLUMNS,
    param("format", {"type": "string", "enum": ["json", "ndjson", "csv"]}, "Output format."),
    param(
        "count",
        {"type": "string", "enum": ["0", "1", "true", "false", "yes", "no"]},
        "Also count matching rows.",
    ),
)
VERSION = param(
    "version",
    {"type": "integer", "minimum": 1},
    "A kept version of the dataset (GET /datasets/ID/versions); the current one by default.",
)
# Every route that filters reads a version: the two go together.
FILTERS = (
    VERSION,
    param("q", {"type": "string"}, "Keep rows where any string column contains this, any case."),
    {
        "name": "filters",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": True,
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        "description": "COLUMN=VALUE (equality) or COLUMN__OP=VALUE with OP one of exact, not, "
        "gt, gte, lt, lte, contains, icontains, startswith, endswith, in, notin, isnull, "
        "notnull; ANDed.",
    },
)
SORT = param("sort", {"type": "string"}, "COLUMN or -COLUMN; nulls last.")
CURSOR = param("cursor", {"type": "string"}, "From a filtered page's next URL.")
ROW_STREAMS: dict[str, Any] = {
    "application/x-ndjson": {"schema": {"type": "string"}},
    "text/csv": {"schema": {"type": "string"}},
}

PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "dataset_id": {"type": "string", "pattern": "^ds_[0-9a-f]{12}$"},
    "job_id": {"type": "string", "pattern": "^job_[0-9a-f]{12}$"},
    "column": {"type": "string"},
    "path": {"type": "string"},
}
_PATH_ARGUMENT = re.compile(r"<(\w+)(?::\w+)?>")  # bottle's <name> and <name:filter>
_SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]


def document(routes: Sequence[Documented], version: str) -> dict[str, Any]:
    """The whole document: every route of the table, as served."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        names = _PATH_ARGUMENT.findall(route.path)
        item = paths.setdefault(_PATH_ARGUMENT.sub(r"{\1}", route.path), {})
        if names:
            item["parameters"] = [_path_parameter(name) for name in names]
        item[route.method.lower()] = operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Rillet",
            "version": version,
            "description": "Streaming data server: CSV uploads as typed, paged datasets.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": SCHEMAS,
        },
    }


def operation(route: Documented) -> dict[str, Any]:
    """One route's operation object."""
    doc = route.doc
    op: dict[str, Any] = {"summary": doc.summary, "responses": dict(doc.responses)}
    if doc.parameters:
        op["parameters"] = list(doc.parameters)
    if doc.body is not None:
        op["requestBody"] = doc.body
    if route.scope is not None:
        op["security"] = list(_SECURITY)
        op["responses"].update(errors(401, 403, 429))
    return op


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name]}
