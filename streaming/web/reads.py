"""The read routes: rows, exports, statistics, group-bys and charts of a ready dataset.

Each is the same walk (``_read``): open the dataset, parse the request into its query
(``streaming.query``: a 400 names any mistake before the first byte), answer 304 if the client
holds this response already, run the query, encode the answer. Only the encoding differs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Any, Protocol

import orjson

from charts import render
from charts.recommend import recommend
from charts.spec import ChartQuery
from streaming import params
from streaming.encode import MEDIA_TYPES, Projection, csv_header, csv_rows, ndjson, stream
from streaming.errors import NotFound
from streaming.memory import release_memory
from streaming.query import ExportQuery, GroupQuery, RowsQuery, StatsQuery, Values
from streaming.read import Dataset, open_dataset
from streaming.settings import Settings
from streaming.web.datasets import metadata_bytes
from streaming.web.exchange import (
    Answer,
    Call,
    Streamed,
    attachment,
    etag_of,
    json_answer,
    not_modified,
    raw_json,
    url,
)
from streaming.web.openapi import (
    COLUMNS,
    CURSOR,
    FILTERS,
    PAGE,
    ROW_STREAMS,
    SORT,
    VERSION,
    Doc,
    errors,
    json_content,
    param,
    ref,
)
from streaming.web.state import Rillet


class Parsed(Protocol):
    @property
    def scans(self) -> bool:
        """Whether answering reads more than the answer holds (its garbage is then released)."""


Respond = Callable[[Dataset, Any, ExitStack], Answer]


def _read(
    rillet: Rillet,
    call: Call,
    dataset_id: str,
    parse: Callable[[Dataset, Values, Settings], Parsed],
    respond: Respond,
    shared: str | None = None,
) -> Answer:
    """Open, parse (400s), 304 if the client has it, run and encode; ``respond`` may keep the
    held resources for a streamed body (``held.pop_all()``). A question that computes, asked
    while this process computes another, goes to the first process free (``shared``: the
    route's name in SHARED; ``streaming.web.share``)."""
    version = params.version(call.params)
    with ExitStack() as held:  # closed here on any error; else the stream owns them
        dataset = held.enter_context(open_dataset(rillet.store, rillet.jobs, dataset_id, version))
        query = parse(dataset, call.params, rillet.settings)
        etag = etag_of(dataset_id, call, dataset.version)
        if (cached := not_modified(etag, call)) is not None:
            return cached
        sharing = rillet.sharing if query.scans else None
        if sharing is None:
            answer = respond(dataset, query, held)
        else:
            compute = partial(respond, dataset, query, held)
            answer = sharing.run(shared, call, dataset.version, compute)
        if query.scans and not isinstance(answer.body, Streamed):  # a stream releases its own
            release_memory()  # a scan's garbage, handed back to the system
        answer.headers["ETag"] = etag
        return answer


ROWS = Doc(
    "A page of rows",
    {
        "200": {
            "description": "A page of rows (ndjson and csv give the rows alone).",
            "content": {"application/json": {"schema": ref("RowsPage")}, **ROW_STREAMS},
        },
        **errors(400, 404, 409),
    },
    (*PAGE, SORT, CURSOR, *FILTERS),
)


def rows(rillet: Rillet, call: Call) -> Answer:
    dataset_id = call.args["dataset_id"]
    respond = _page_of(rillet, call, {})
    return _read(rillet, call, dataset_id, RowsQuery.parse, respond, shared="rows")


def _page_of(rillet: Rillet, call: Call, keep: dict[str, str]) -> Respond:
    """Encode a page as its format asks, with the next page's URL (which keeps ``keep``, and
    the version this page was read from: paging goes on in one version, as it began)."""

    def respond(dataset: Dataset, query: RowsQuery, held: ExitStack) -> Answer:
        found = query.run(dataset)
        page = found.page
        following = None
        if found.next is not None:
            following = url(call.path, {**keep, "version": str(dataset.version), **found.next})
        projection = Projection(dataset.names, page.columns)
        if page.format == "json":
            body = {
                "dataset": dataset.id,
                "offset": page.offset,
                "limit": page.limit,
                "rows": projection.objects(found.rows),
                "total": found.total,
                "next": following,
            }
            return json_answer(body)
        headers = {"Content-Type": MEDIA_TYPES[page.format]}
        if following:
            headers["Link"] = f'<{following}>; rel="next"'
        if page.format == "csv":
            safe = rillet.settings.csv_safe
            return Answer(
                csv_header(projection, safe) + csv_rows(projection, found.rows, safe), 200, headers
            )
        return Answer(ndjson(projection, found.rows), 200, headers)

    return respond


FETCH_DATA = Doc(
    "Rows or metadata of a dataset (older clients)",
    {
        "200": {
            "description": "Rows, or the metadata with metadata_only",
            "content": {
                "application/json": {"schema": {"anyOf": [ref("RowsPage"), ref("Metadata")]}},
                **ROW_STREAMS,
            },
        },
        **errors(400, 404, 409),
    },
    (
        param("dataset", {"type": "string"}, "Dataset id (default: latest ready)."),
        param(
            "metadata_only",
            {"type": "string", "enum": ["true", "false", "1", "0"]},
            "Answer the metadata only.",
        ),
        *PAGE,
        SORT,
        CURSOR,
        *FILTERS,
    ),
)


def fetch_data(rillet: Rillet, call: Call) -> Answer:
    values = call.params
    dataset_id = values.get("dataset") or rillet.store.latest_ready()
    if dataset_id is None:
        raise NotFound("there is no ready dataset yet; upload one with POST /datasets")
    if params.flag(values, "metadata_only"):
        params.no_filters(values)  # page words are harmless here; a filter would mislead
        return raw_json(metadata_bytes(rillet, dataset_id, params.version(values)))
    respond = _page_of(rillet, call, {"dataset": dataset_id})
    return _read(rillet, call, dataset_id, RowsQuery.parse, respond)


EXPORT = Doc(
    "Every row, streamed",
    {
        "200": {
            "description": "CSV or NDJSON",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
        **errors(400, 404, 409),
    },
    (
        param(
            "format", {"type": "string", "enum": ["csv", "ndjson"]}, "Output format (default csv)."
        ),
        COLUMNS,
        *FILTERS,
    ),
)


def export(rillet: Rillet, call: Call) -> Answer:
    def respond(dataset: Dataset, query: ExportQuery, held: ExitStack) -> Answer:
        held.callback(rillet.streams.take())
        name = dataset.meta["name"].rsplit(".", 1)[0] or dataset.id
        headers = {
            "Content-Type": MEDIA_TYPES[query.format],
            "Content-Disposition": attachment(f"{name}.{query.format}"),
        }
        chunks = stream(
            query.projection, query.format, query.run(dataset), rillet.settings.csv_safe
        )
        return Answer(Streamed(chunks, held.pop_all()), 200, headers)

    return _read(rillet, call, call.args["dataset_id"], ExportQuery.parse, respond)


STATS = Doc(
    "Column statistics",
    {"200": json_content(ref("Stats"), "Statistics"), **errors(400, 404, 409)},
    (COLUMNS, *FILTERS),
)


def stats(rillet: Rillet, call: Call) -> Answer:
    def respond(dataset: Dataset, query: StatsQuery, held: ExitStack) -> Answer:
        matched, stored = query.run(dataset)
        head = orjson.dumps({"dataset": dataset.id, "rows_matched": matched})
        return raw_json(head[:-1] + b',"columns":' + stored + b"}")

    return _read(rillet, call, call.args["dataset_id"], StatsQuery.parse, respond, "stats")


GROUPBY = Doc(
    "One row per group",
    {"200": json_content(ref("Groups"), "Groups"), **errors(400, 404, 409)},
    (
        {
            **param("by", {"type": "string"}, "One or two columns, comma-separated."),
            "required": True,
        },
        param(
            "agg",
            {"type": "string"},
            "count, sum:COL, mean:COL, min:COL, max:COL, distinct:COL, comma-separated.",
        ),
        param("sort", {"type": "string"}, "A group field, - for descending."),
        param("limit", {"type": "integer", "minimum": 1}, "Most groups."),
        *FILTERS,
    ),
)


def groupby(rillet: Rillet, call: Call) -> Answer:
    def respond(dataset: Dataset, query: GroupQuery, held: ExitStack) -> Answer:
        return json_answer({"dataset": dataset.id, **query.run(dataset)})

    return _read(rillet, call, call.args["dataset_id"], GroupQuery.parse, respond, "groupby")


CHART = Doc(
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
        **errors(400, 404, 409, 501),
    },
    (
        param(
            "mark",
            {
                "type": "string",
                "enum": ["bar", "line", "area", "point", "arc", "rect", "boxplot", "histogram"],
            },
            "The mark.",
        ),
        param("x", {"type": "string"}, "Column on x."),
        param("y", {"type": "string"}, "Column on y."),
        param("color", {"type": "string"}, "Column on color."),
        param(
            "aggregate",
            {"type": "string", "enum": ["count", "sum", "mean", "min", "max"]},
            "How y is aggregated.",
        ),
        param("bins", {"type": "integer", "minimum": 1}, "Histogram bins."),
        param(
            "format",
            {"type": "string", "enum": ["json", "svg", "png"]},
            "The spec, or a picture of it.",
        ),
        *FILTERS,
    ),
)


def chart(rillet: Rillet, call: Call) -> Answer:
    fmt = params.output_format(call.params, ("json", "svg", "png"), default="json")

    def respond(dataset: Dataset, query: ChartQuery, held: ExitStack) -> Answer:
        spec = query.run(dataset)
        if fmt == "json":
            return json_answer(spec)
        body, media_type = render.image(spec, fmt)
        return Answer(body, 200, {"Content-Type": media_type})

    return _read(rillet, call, call.args["dataset_id"], ChartQuery.parse, respond, "chart")


RECOMMENDED = Doc(
    "Recommended charts, best first",
    {
        "200": json_content(
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
        **errors(400, 404, 409),
    },
    (param("limit", {"type": "integer", "minimum": 1, "maximum": 20}, "How many."), VERSION),
)


def recommended(rillet: Rillet, call: Call) -> Answer:
    max_groups = rillet.settings.groupby_max

    def respond(dataset: Dataset, limit: _Limit, held: ExitStack) -> Answer:
        found = recommend(dataset, limit.value, max_groups=max_groups)
        return json_answer({"dataset": dataset.id, "charts": found})

    return _read(rillet, call, call.args["dataset_id"], _Limit.parse, respond)


class _Limit:
    """How many recommended charts: the route takes no filters."""

    scans = True

    def __init__(self, value: int) -> None:
        self.value = value

    @classmethod
    def parse(cls, dataset: Dataset, values: Values, settings: Settings) -> _Limit:
        params.no_filters(values)
        return cls(params.integer(values, "limit", 8, 1, 20))


# The routes a busy process may hand to another (``streaming.web.share``): their answers are
# bodies of bounded size.
SHARED = {"rows": rows, "stats": stats, "groupby": groupby, "chart": chart}
