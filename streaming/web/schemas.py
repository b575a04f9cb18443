"""The JSON schemas of the API's bodies, as ``/openapi.json`` declares them (API.md's shapes)."""

from __future__ import annotations

from typing import Any

from streaming.jobs import PUBLIC_FIELDS

_TYPES = ["integer", "number", "boolean", "date", "datetime", "string", "null"]
_NULLABLE_INT = {"type": ["integer", "null"]}
_TIME = {"type": ["string", "null"]}
SCHEMAS: dict[str, Any] = {
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
                        "format": {
                            "type": "string",
                            "description": "The pattern dates were read with (%d/%m/%Y)",
                        },
                        "unit": {
                            "type": "string",
                            "description": "The currency symbol or % numbers were written with",
                        },
                    },
                },
            },
            "source": {
                "type": "object",
                "properties": {
                    "filename": {"type": "string"},
                    "bytes": {"type": "integer"},
                    "sha256": {"type": "string"},
                    "delimiter": {"type": ["string", "null"]},
                    "encoding": {"type": ["string", "null"]},
                    "format": {"enum": ["csv", "csv.gz", "zip", "xlsx"]},
                    "url": {"type": "string", "description": "A source's URL, secrets masked"},
                    "every": _NULLABLE_INT,
                    "etag": {"type": ["string", "null"]},
                    "last_modified": {"type": ["string", "null"]},
                    "checked_at": _TIME,
                    "next_sync_at": _TIME,
                    "failures": {"type": "integer"},
                    "last_error": {"type": ["object", "null"]},
                },
            },
            "bytes": _NULLABLE_INT,
            "created_at": _TIME,
            "ready_at": _TIME,
            "roles": {
                "type": "object",
                "description": "What charts and insights take each column for (ready datasets)",
                "additionalProperties": {
                    "enum": [
                        "measure",
                        "category",
                        "time",
                        "date_part",
                        "clock",
                        "identifier",
                        "text",
                        "constant",
                        "empty",
                    ]
                },
            },
            "version": {
                **_NULLABLE_INT,
                "description": "1, then 2, ... each time the data is replaced or appended to "
                "(null before the first sync ends)",
            },
        },
    },
    "Versions": {
        "type": "object",
        "required": ["versions"],
        "properties": {
            "versions": {
                "type": "array",
                "description": "The kept versions, newest first",
                "items": {
                    "type": "object",
                    "required": ["version", "rows", "bytes", "sha256", "created_at"],
                    "properties": {
                        "version": {"type": "integer"},
                        "rows": {"type": "integer"},
                        "bytes": {"type": "integer"},
                        "sha256": {
                            "type": ["string", "null"],
                            "description": "Of the file that made it (an append: the appended)",
                        },
                        "created_at": _TIME,
                        "mode": {"enum": ["replace", "append"]},
                    },
                },
            }
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
                        "kind": {
                            "type": "string",
                            "description": "The fact said (statistics only): trend, skew, ...",
                        },
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
            "changed": {
                "type": "boolean",
                "description": "A source's sync, once done: false when the source had not "
                "changed (a 304, or the same SHA-256) and no new data was made",
            },
        },
    },
}
