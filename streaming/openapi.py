"""The OpenAPI 3.1 document of the routes the server serves (``GET /openapi.json``)."""

from __future__ import annotations

from typing import Any

from streaming.jobs import PUBLIC_FIELDS

_TYPES = ["integer", "number", "boolean", "date", "datetime", "string", "null"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "Bad parameter",
        401: "No or unknown key",
        403: "Key lacks the scope",
        404: "No such thing",
        409: "Dataset not ready",
        413: "Upload too large",
        415: "Not a CSV",
        422: "CSV cannot be converted",
        429: "Rate limited (see Retry-After)",
        502: "The LLM failed after its retries, or answered nonsense",
        503: "No LLM configured (GROQ_API_KEY)",
        504: "The LLM timed out",
    }
    return {str(c): _json(_ref("Error"), words[c]) for c in codes}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_DATASET_ID = {
    "name": "dataset_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^ds_[0-9a-f]{12}$"},
}
_PAGE = [
    _query("limit", {"type": "integer", "minimum": 1}, "Rows per page (at most PAGE_MAX)."),
    _query("offset", {"type": "integer", "minimum": 0}, "Rows to skip."),
    _query("columns", {"type": "string"}, "Comma-separated columns, in output order."),
    _query("format", {"type": "string", "enum": ["json", "ndjson", "csv"]}, "Output format."),
    _query(
        "count",
        {"type": "string", "enum": ["0", "1", "true", "false", "yes", "no"]},
        "Also count matching rows.",
    ),
]
_QUERY = [
    _query("q", {"type": "string"}, "Keep rows where any string column contains this, any case."),
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
]
_SORT = _query("sort", {"type": "string"}, "COLUMN or -COLUMN; nulls last.")
_CURSOR = _query("cursor", {"type": "string"}, "From a filtered page's next URL.")
_READ: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]


def _op(
    summary: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    secured: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if secured:
        op["security"] = list(_READ)
        op["responses"] = {**responses, **_errors(401, 403, 429)}
    op.update(extra)
    return op


def openapi_document(version: str) -> dict[str, Any]:
    row_streams: dict[str, Any] = {
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}},
    }
    rows_page = {
        "description": "A page of rows (ndjson and csv give the rows alone).",
        "content": {"application/json": {"schema": _ref("RowsPage")}, **row_streams},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Rillet",
            "version": version,
            "description": "Streaming data server: CSV uploads as typed, paged datasets.",
        },
        "paths": {
            "/health": {
                "get": _op(
                    "Liveness and counts", {"200": _json(_ref("Health"), "OK")}, secured=False
                )
            },
            "/openapi.json": {
                "get": _op("This document", {"200": _json({"type": "object"}, "OpenAPI 3.1")})
            },
            "/datasets": {
                "get": _op(
                    "All datasets",
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["datasets"],
                                "properties": {
                                    "datasets": {"type": "array", "items": _ref("Metadata")}
                                },
                            },
                            "Metadata of every dataset",
                        )
                    },
                ),
                "post": _op(
                    "Upload a CSV (write scope)",
                    {
                        "202": _json(_ref("Accepted"), "Queued for sync"),
                        **_errors(400, 413, 415, 422),
                    },
                    [
                        _query("name", {"type": "string"}, "Dataset name (raw bodies)."),
                        _query(
                            "delimiter", {"type": "string"}, "Field delimiter; sniffed if absent."
                        ),
                        _query("encoding", {"type": "string"}, "Text encoding (default utf-8)."),
                    ],
                    requestBody={
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                }
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                ),
            },
            "/datasets/{dataset_id}": {
                "parameters": [_DATASET_ID],
                "get": _op(
                    "Metadata probe (reads no rows)",
                    {"200": _json(_ref("Metadata"), "Metadata"), **_errors(404)},
                ),
                "delete": _op(
                    "Delete a dataset (write scope)",
                    {"204": {"description": "Deleted"}, **_errors(404, 409)},
                ),
            },
            "/datasets/{dataset_id}/rows": {
                "parameters": [_DATASET_ID],
                "get": _op(
                    "A page of rows",
                    {"200": rows_page, **_errors(400, 404, 409)},
                    [*_PAGE, _SORT, _CURSOR, *_QUERY],
                ),
            },
            "/fetch-data": {
                "get": _op(
                    "Rows or metadata of a dataset (older clients)",
                    {
                        "200": {
                            "description": "Rows, or the metadata with metadata_only",
                            "content": {
                                "application/json": {
                                    "schema": {"anyOf": [_ref("RowsPage"), _ref("Metadata")]}
                                },
                                **row_streams,
                            },
                        },
                        **_errors(400, 404, 409),
                    },
                    [
                        _query(
                            "dataset", {"type": "string"}, "Dataset id (default: latest ready)."
                        ),
                        _query(
                            "metadata_only",
                            {"type": "string", "enum": ["true", "false", "1", "0"]},
                            "Answer the metadata only.",
                        ),
                        *_PAGE,
                        _SORT,
                        _CURSOR,
                        *_QUERY,
                    ],
                )
            },
            "/datasets/{dataset_id}/export": {
                "parameters": [_DATASET_ID],
                "get": _op(
                    "Every row, streamed",
                    {
                        "200": {
                            "description": "CSV or NDJSON",
                            "content": {
                                "text/csv": {"schema": {"type": "string"}},
                                "application/x-ndjson": {"schema": {"type": "string"}},
                            },
                        },
                        **_errors(400, 404, 409),
                    },
                    [
                        _query(
                            "format",
                            {"type": "string", "enum": ["csv", "ndjson"]},
                            "Output format (default csv).",
                        ),
                        _PAGE[2],
                        *_QUERY,
                    ],
                ),
            },
            "/datasets/{dataset_id}/stats": {
                "parameters": [_DATASET_ID],
                "get": _op(
                    "Column statistics",
                    {"200": _json(_ref("Stats"), "Statistics"), **_errors(400, 404, 409)},
                    [_PAGE[2], *_QUERY],
                ),
            },
            "/datasets/{dataset_id}/groupby": {
                "parameters": [_DATASET_ID],
                "get": _op(
                    "One row per group",
                    {"200": _json(_ref("Groups"), "Groups"), **_errors(400, 404, 409)},
                    [
                        {
                            **_query(
                                "by", {"type": "string"}, "One or two columns, comma-separated."
                            ),
                            "required": True,
                        },
                        _query(
                            "agg",
                            {"type": "string"},
                            "count, sum:COL, mean:COL, min:COL, "
                            "max:COL, distinct:COL, comma-separated.",
                        ),
                        _query("sort", {"type": "string"}, "A group field, - for descending."),
                        _query("limit", {"type": "integer", "minimum": 1}, "Most groups."),
                        *_QUERY,
                    ],
                ),
            },
            "/datasets/{dataset_id}/chart": {
                "parameters": [_DATASET_ID],
                "get": _op(
                    "A Vega-Lite v6 chart, aggregated on the server",
                    {
                        "200": {
                            "description": "The spec (json), or the picture (svg, png)",
                            "content": {
                                "application/json": {"schema": {"type": "object"}},
                                "image/svg+xml": {"schema": {"type": "string"}},
                                "image/png": {"schema": {"type": "string"}},
                            },
                        },
                        **_errors(400, 404, 409),
                        "501": _json(_ref("Error"), "Rendering needs the render extra"),
                    },
                    [
                        _query(
                            "mark",
                            {
                                "type": "string",
                                "enum": [
                                    "bar",
                                    "line",
                                    "area",
                                    "point",
                                    "arc",
                                    "rect",
                                    "boxplot",
                                    "histogram",
                                ],
                            },
                            "The mark.",
                        ),
                        _query("x", {"type": "string"}, "Column on x."),
                        _query("y", {"type": "string"}, "Column on y."),
                        _query("color", {"type": "string"}, "Column on color."),
                        _query(
                            "aggregate",
                            {"type": "string", "enum": ["count", "sum", "mean", "min", "max"]},
                            "How y is aggregated.",
                        ),
                        _query("bins", {"type": "integer", "minimum": 1}, "Histogram bins."),
                        _query(
                            "format",
                            {"type": "string", "enum": ["json", "svg", "png"]},
                            "The spec, or a picture of it.",
                        ),
                        *_QUERY,
                    ],
                ),
            },
            "/datasets/{dataset_id}/charts": {
                "parameters": [_DATASET_ID],
                "get": _op(
                    "Recommended charts, best first",
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["dataset", "charts"],
                                "properties": {
                                    "dataset": {"type": "string"},
                                    "charts": {"type": "array", "items": {"type": "object"}},
                                },
                            },
                            "Charts",
                        ),
                        **_errors(400, 404, 409),
                    },
                    [
                        _query(
                            "limit", {"type": "integer", "minimum": 1, "maximum": 20}, "How many."
                        )
                    ],
                ),
            },
            "/datasets/{dataset_id}/insights": {
                "parameters": [_DATASET_ID],
                "get": _op(
                    "Findings in plain words, by the LLM or from the statistics",
                    {
                        "200": _json(_ref("Insights"), "Insights"),
                        **_errors(400, 404, 409, 502, 504),
                    },
                ),
            },
            "/datasets/{dataset_id}/columns/{column}/insights": {
                "parameters": [
                    _DATASET_ID,
                    {
                        "name": "column",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "get": _op(
                    "Findings about one column",
                    {
                        "200": _json(_ref("Insights"), "Insights"),
                        **_errors(400, 404, 409, 502, 504),
                    },
                ),
            },
            "/datasets/{dataset_id}/chat": {
                "parameters": [_DATASET_ID],
                "post": _op(
                    "Ask about the dataset; numbers come from queries the server runs",
                    {
                        "200": {
                            "description": "The reply (JSON), or server-sent events when "
                            "Accept is text/event-stream: delta events, then done (or error)",
                            "content": {
                                "application/json": {"schema": _ref("ChatReply")},
                                "text/event-stream": {"schema": {"type": "string"}},
                            },
                        },
                        **_errors(400, 404, 409, 413, 502, 503, 504),
                    },
                    requestBody={
                        "required": True,
                        "content": {"application/json": {"schema": _ref("ChatRequest")}},
                    },
                ),
            },
            "/jobs/{job_id}": {
                "parameters": [
                    {
                        "name": "job_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^job_[0-9a-f]{12}$"},
                    }
                ],
                "get": _op("A sync job", {"200": _json(_ref("Job"), "Job"), **_errors(404)}),
            },
        },
        "components": {
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": _SCHEMAS,
        },
    }


_NULLABLE_INT = {"type": ["integer", "null"]}
_TIME = {"type": ["string", "null"]}
_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "version", "datasets", "jobs"],
        "properties": {
            "status": {"type": "string"},
            "version": {"type": "string"},
            "datasets": {"type": "integer"},
            "jobs": {
                "type": "object",
                "properties": {"queued": {"type": "integer"}, "running": {"type": "integer"}},
            },
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["dataset", "job"],
        "properties": {"dataset": {"type": "object"}, "job": {"type": "object"}},
    },
    "Metadata": {
        "type": "object",
        "required": [
            "id",
            "name",
            "status",
            "rows",
            "columns",
            "source",
            "bytes",
            "created_at",
            "ready_at",
        ],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "ready", "failed"]},
            "rows": _NULLABLE_INT,
            "columns": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "type", "nulls"],
                    "properties": {
                        "name": {"type": "string"},
                        "type": {"enum": _TYPES},
                        "nulls": {"type": "integer"},
                    },
                },
            },
            "source": {"type": "object"},
            "bytes": _NULLABLE_INT,
            "created_at": _TIME,
            "ready_at": _TIME,
        },
    },
    "RowsPage": {
        "type": "object",
        "required": ["dataset", "offset", "limit", "rows", "total", "next"],
        "properties": {
            "dataset": {"type": "string"},
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
            "rows": {"type": "array", "items": {"type": "object"}},
            "total": _NULLABLE_INT,
            "next": {"type": ["string", "null"]},
        },
    },
    "Stats": {
        "type": "object",
        "required": ["dataset", "rows_matched", "columns"],
        "properties": {
            "dataset": {"type": "string"},
            "rows_matched": {"type": "integer"},
            "columns": {"type": "object", "additionalProperties": {"type": "object"}},
        },
    },
    "Groups": {
        "type": "object",
        "required": ["dataset", "groups", "truncated"],
        "properties": {
            "dataset": {"type": "string"},
            "groups": {"type": "array", "items": {"type": "object"}},
            "truncated": {"type": "boolean"},
        },
    },
    "Insights": {
        "type": "object",
        "required": ["dataset", "insights", "model", "source", "cached"],
        "properties": {
            "dataset": {"type": "string"},
            "column": {"type": "string"},
            "insights": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["title", "detail", "columns"],
                    "properties": {
                        "title": {"type": "string"},
                        "detail": {"type": "string"},
                        "columns": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "model": {"type": ["string", "null"]},
            "source": {"type": "string", "enum": ["llm", "statistics"]},
            "cached": {"type": "boolean"},
        },
    },
    "ChatRequest": {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string", "minLength": 1, "maxLength": 4000},
            "history": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {
                        "role": {"type": "string", "enum": ["user", "assistant"]},
                        "content": {"type": "string"},
                    },
                },
            },
        },
    },
    "ChatReply": {
        "type": "object",
        "required": ["reply", "model", "query", "result"],
        "properties": {
            "reply": {"type": "string"},
            "model": {"type": "string"},
            "query": {"type": ["object", "null"]},
            "result": {"type": ["object", "null"]},
        },
    },
    "Job": {
        "type": "object",
        "required": list(PUBLIC_FIELDS),
        "properties": {
            "id": {"type": "string"},
            "dataset_id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "progress": {"type": "object"},
            "error": {"type": ["object", "null"]},
            "created_at": _TIME,
            "started_at": _TIME,
            "finished_at": _TIME,
        },
    },
}
