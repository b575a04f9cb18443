"""Every route on one screen: method, path, handler, the key scope it needs, its document.

The app factory (``streaming.web.app``) serves exactly this table, ``/openapi.json`` documents
exactly this table (``streaming.web.openapi``), and the auth tests walk it, so a route cannot
be added without its document and its key check. ``scope`` None: no key (``/health``, and
the page, ``/`` and ``/static/``, which hold no data).
Bottle answers HEAD on every GET route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streaming.web import ask, datasets, page, reads, service, sources, versions
from streaming.web.exchange import Answer, Call
from streaming.web.openapi import Doc
from streaming.web.state import Rillet

Handler = Callable[[Rillet, Call], Answer]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # bottle's syntax: <dataset_id>, <column:path>
    handler: Handler
    scope: str | None  # "read", "write", or None for no key
    doc: Doc


DATASET = "/datasets/<dataset_id>"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/", page.index, None, page.INDEX),
    Route("GET", "/static/<path:path>", page.static, None, page.STATIC_DOC),
    Route("GET", "/health", service.health, None, service.HEALTH),
    Route("GET", "/openapi.json", service.openapi, "read", service.OPENAPI),
    Route("GET", "/datasets", datasets.listing, "read", datasets.LISTING),
    Route("POST", "/datasets", datasets.upload, "write", datasets.UPLOAD),
    Route("GET", DATASET, datasets.probe, "read", datasets.PROBE),
    Route("DELETE", DATASET, datasets.delete, "write", datasets.DELETE),
    Route("POST", f"{DATASET}/sync", sources.sync, "write", sources.SYNC),
    Route("GET", f"{DATASET}/versions", versions.listing, "read", versions.VERSIONS),
    Route("GET", f"{DATASET}/rows", reads.rows, "read", reads.ROWS),
    Route("GET", "/fetch-data", reads.fetch_data, "read", reads.FETCH_DATA),
    Route("GET", f"{DATASET}/export", reads.export, "read", reads.EXPORT),
    Route("GET", f"{DATASET}/stats", reads.stats, "read", reads.STATS),
    Route("GET", f"{DATASET}/groupby", reads.groupby, "read", reads.GROUPBY),
    Route("GET", f"{DATASET}/chart", reads.chart, "read", reads.CHART),
    Route("GET", f"{DATASET}/charts", reads.recommended, "read", reads.RECOMMENDED),
    Route("GET", f"{DATASET}/insights", ask.insights, "read", ask.INSIGHTS),
    Route(
        "GET",
        f"{DATASET}/columns/<column:path>/insights",
        ask.insights,
        "read",
        ask.COLUMN_INSIGHTS,
    ),
    Route("POST", f"{DATASET}/chat", ask.chat, "read", ask.CHAT),
    Route("GET", "/jobs/<job_id>", datasets.job, "read", datasets.JOB),
)
