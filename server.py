"""Rillet's HTTP API: a Bottle app served by waitress.

    python server.py                     # serve on HOST:PORT (127.0.0.1:5000) with DATA_DIR
    python server.py keys create write   # print a new key (shown once) and store its hash
    python server.py keys list           # key ids and scopes, never the keys
    python server.py keys revoke ID
    python server.py settings            # every setting, its value and what it does

Routes parse the request, call the engine in ``streaming/`` and stream its answer. Errors are
``RilletError`` subclasses, turned into the one JSON error shape by ``ErrorsAndAuth`` below,
the only place that writes an error response.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlencode

import bottle
import orjson

import charts
from charts import chat, render
from charts.insights import AnswerCache, insights
from charts.llm import SharedClient
from charts.spec import parameters as spec_parameters
from streaming import aggregate, pages, params, scan
from streaming.auth import KeyRing, RateLimiter
from streaming.convert import WIDE_ENCODINGS, resolve_encoding
from streaming.encode import MEDIA_TYPES, Projection, csv_header, csv_rows, ndjson, stream
from streaming.errors import (
    BadRequest,
    LLMUnavailable,
    MethodNotAllowed,
    NotFound,
    NotReady,
    PayloadTooLarge,
    RilletError,
)
from streaming.filter import parse as parse_filters
from streaming.jobs import PUBLIC_FIELDS, Jobs
from streaming.limits import Slots
from streaming.memory import limit_malloc_arenas, release_memory, rss_bytes
from streaming.openapi import openapi_document
from streaming.read import open_dataset, pending_meta
from streaming.settings import Settings
from streaming.store import Store, check_dataset_id
from streaming.upload import spool_upload
from streaming.wsgi import AccessLog, Cors

VERSION = "0.1.0"
JSON = "application/json; charset=utf-8"
log = logging.getLogger("rillet")


class Rillet:
    """The application's state: settings, the data directory, keys, and the worker to wake."""

    def __init__(self, settings: Settings, wake: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.store = Store(settings.data_dir)
        self.jobs = Jobs(self.store)
        self.keys = KeyRing(settings.data_dir / "keys.json", settings.api_keys)
        self.limiter = RateLimiter(settings.rate_limit)
        self.insights_cache = AnswerCache(settings.data_dir / "cache" / "insights")
        self.llm = SharedClient(settings)  # built when an LLM route first runs
        self.wake = wake
        self.started = time.monotonic()
        # Work that holds a thread for long, each capped below THREADS (streaming.limits).
        self.streams = Slots(
            settings.streams_max, "responses are streaming", "STREAMS_MAX", "too_many_streams"
        )
        self.llm_calls = Slots(
            settings.llm_max, "LLM calls are running", "LLM_MAX", "too_many_llm_calls"
        )

    def close(self) -> None:
        """Release what the app holds open between requests (the LLM's connections)."""
        self.llm.close()


class ErrorsAndAuth:
    """Bottle plugin: checks the key and scope of each route, and maps errors to JSON."""

    name = "errors_and_auth"
    api = 2

    def __init__(self, rillet: Rillet) -> None:
        self.rillet = rillet

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        scope = route.config.get("scope")

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                if scope is not None:
                    key = self.rillet.keys.identify(_presented_key())
                    KeyRing.require(key.scope, scope)
                    self.rillet.limiter.take(key.id)
                return callback(*args, **kwargs)
            except RilletError as exc:
                return error_response(exc)
            except bottle.HTTPResponse:
                raise
            except Exception:
                log.error(
                    "unhandled error in %s %s\n%s",
                    bottle.request.method,
                    bottle.request.path,
                    traceback.format_exc(),
                )
                return error_response(RilletError("internal error"))

        return wrapper


def _query() -> bottle.FormsDict:
    """The query string, decoded as UTF-8 (bottle's own gives Latin-1 text)."""
    try:
        query: bottle.FormsDict = bottle.request.query.decode()
    except UnicodeError:
        raise BadRequest("the query string is not valid UTF-8", code="bad_parameter") from None
    return query


def _presented_key() -> str | None:
    headers = bottle.request.headers
    key = headers.get("X-API-Key")
    if key:
        return str(key)
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return str(auth[7:].strip())
    return None


def error_response(exc: RilletError) -> bottle.HTTPResponse:
    headers = {"Content-Type": JSON, **getattr(exc, "headers", {})}
    return bottle.HTTPResponse(orjson.dumps(exc.to_dict()), status=exc.status, headers=headers)


def json_body(data: Any, status: int = 200) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(orjson.dumps(data), status=status, headers={"Content-Type": JSON})


def raw_json(body: bytes) -> bytes:
    bottle.response.content_type = JSON
    return body


def create_app(rillet: Rillet) -> bottle.Bottle:
    """The Bottle app for one Rillet; ``python server.py`` serves it with waitress."""
    app = bottle.Bottle()
    app.config["json.enable"] = False
    app.install(ErrorsAndAuth(rillet))
    store, jobs, settings = rillet.store, rillet.jobs, rillet.settings

    @app.get("/health")
    def health() -> bytes:
        return raw_json(
            orjson.dumps(
                {
                    "status": "ok",
                    "version": VERSION,
                    "datasets": store.count_ready(),
                    "jobs": jobs.counts(),
                    "rss_bytes": rss_bytes(),
                    "uptime_seconds": round(time.monotonic() - rillet.started, 1),
                    "open_streams": rillet.streams.taken,
                    "llm_calls": rillet.llm_calls.taken,
                    # httpx is imported only by the LLM routes: the memory they cost shows here.
                    "llm_client_loaded": "httpx" in sys.modules,
                }
            )
        )

    @app.get("/openapi.json", scope="read")
    def openapi() -> bytes:
        return raw_json(orjson.dumps(openapi_document(VERSION)))

    @app.post("/datasets", scope="write")
    def upload() -> bottle.HTTPResponse:
        query = _query()
        params.only(query, ("name", "delimiter", "encoding"))
        delimiter = params.delimiter(query)
        encoding = resolve_encoding(query.get("encoding")) if query.get("encoding") else None
        name = query.get("name") or None
        ids = store.new_ids()
        spooled = spool_upload(
            bottle.request.environ,
            store.upload_path(ids.job),
            max_bytes=settings.max_upload_mb * 2**20,
            name=name,
            # UTF-16 and UTF-32 text is full of NUL bytes: no binary sniffing for them.
            binary_check=not (encoding or "").startswith(WIDE_ENCODINGS),
        )
        source = {"filename": spooled.filename, "bytes": spooled.bytes, "sha256": spooled.sha256}
        options = {"delimiter": delimiter, "encoding": encoding}
        job = jobs.create(ids.job, ids.dataset, name or spooled.filename, source, options)
        rillet.wake()
        return json_body(
            {
                "dataset": {"id": ids.dataset, "name": job["name"], "status": "queued"},
                "job": {"id": ids.job, "status": "queued", "url": f"/jobs/{ids.job}"},
            },
            status=202,
        )

    @app.get("/jobs/<job_id>", scope="read")
    def job(job_id: str) -> bytes:
        record = jobs.get(job_id)
        public = {field: record[field] for field in PUBLIC_FIELDS}
        return raw_json(orjson.dumps(public))

    @app.get("/datasets", scope="read")
    def datasets() -> bytes:
        ready = [store.meta_bytes(i) for i in store.ready_ids()]
        pending = [orjson.dumps(pending_meta(j)) for j in _pending_jobs(rillet)]
        return raw_json(b'{"datasets":[' + b",".join(m for m in ready + pending if m) + b"]}")

    @app.get("/datasets/<dataset_id>", scope="read")
    def metadata(dataset_id: str) -> Any:
        body = _metadata(rillet, dataset_id)
        if store.is_ready(dataset_id) and (not_modified := _not_modified(dataset_id)):
            return not_modified
        return raw_json(body)

    @app.delete("/datasets/<dataset_id>", scope="write")
    def delete(dataset_id: str) -> bottle.HTTPResponse:
        job_id = store.job_of(check_dataset_id(dataset_id))
        # Under the job's lock, so no worker can claim the upload while it is deleted.
        claim = jobs.lock(job_id)
        if claim is None:
            raise NotReady(
                f"dataset {dataset_id!r} is being synced; delete it when the sync ends",
                code="sync_running",
            )
        try:
            deleted = store.delete(dataset_id)
            if jobs.find(job_id) is not None:
                jobs.delete(job_id)  # a queued upload, or the record of a finished one
                deleted = True
        finally:
            claim.release()
        if not deleted:
            raise NotFound(f"dataset {dataset_id!r} does not exist")
        return bottle.HTTPResponse(status=204)

    @app.get("/datasets/<dataset_id>/rows", scope="read")
    def rows(dataset_id: str) -> Any:
        path = f"/datasets/{dataset_id}/rows"
        return _rows(rillet, dataset_id, _query(), path, {})

    @app.get("/fetch-data", scope="read")
    def fetch_data() -> Any:
        query = _query()
        dataset_id = query.get("dataset") or store.latest_ready()
        if dataset_id is None:
            raise NotFound("there is no ready dataset yet; upload one with POST /datasets")
        if params.flag(query, "metadata_only"):
            params.no_filters(query)  # page words are harmless here; a filter would mislead
            return raw_json(_metadata(rillet, dataset_id))
        return _rows(rillet, dataset_id, query, "/fetch-data", {"dataset": dataset_id})

    @app.get("/datasets/<dataset_id>/export", scope="read")
    def export(dataset_id: str) -> Any:
        query = _query()
        fmt = params.output_format(query, ("csv", "ndjson"), default="csv")
        with ExitStack() as resources:  # closed here on any error; else the stream owns them
            dataset = resources.enter_context(open_dataset(store, jobs, dataset_id))
            projection = Projection(dataset.names, params.columns(query, dataset.names))
            selection = parse_filters(query, dataset.meta["columns"])
            if not_modified := _not_modified(dataset_id):
                return not_modified
            resources.callback(rillet.streams.take())
            bottle.response.content_type = MEDIA_TYPES[fmt]
            filename = f"{dataset.meta['name'].rsplit('.', 1)[0] or dataset_id}.{fmt}"
            bottle.response.set_header("Content-Disposition", _attachment(filename))
            row_blocks = (block.rows for block in scan.blocks(dataset, selection))
            chunks = stream(projection, fmt, row_blocks, settings.csv_safe)
            return _Stream(chunks, resources.pop_all())

    @app.get("/datasets/<dataset_id>/stats", scope="read")
    def stats(dataset_id: str) -> Any:
        query = _query()
        with open_dataset(store, jobs, dataset_id) as dataset:
            wanted = params.columns(query, dataset.names)
            selection = parse_filters(query, dataset.meta["columns"])
            if not_modified := _not_modified(dataset_id):
                return not_modified
            matched, stored = scan.statistics_json(dataset, selection, wanted)
            if selection.active:
                release_memory()
            head = {"dataset": dataset_id, "rows_matched": matched}
            return raw_json(orjson.dumps(head)[:-1] + b',"columns":' + stored + b"}")

    @app.get("/datasets/<dataset_id>/groupby", scope="read")
    def groupby(dataset_id: str) -> Any:
        query = _query()
        with open_dataset(store, jobs, dataset_id) as dataset:
            asked = aggregate.request(query, dataset.meta["columns"], settings.groupby_max)
            if not_modified := _not_modified(dataset_id):
                return not_modified
            found = aggregate.answer(dataset, asked, settings.groupby_max)
            release_memory()
            return raw_json(orjson.dumps({"dataset": dataset_id, **found}))

    @app.get("/datasets/<dataset_id>/chart", scope="read")
    def chart(dataset_id: str) -> Any:
        query = _query()
        fmt = params.output_format(query, ("json", "svg", "png"), default="json")
        with open_dataset(store, jobs, dataset_id) as dataset:
            selection = parse_filters(query, dataset.meta["columns"])
            asked = spec_parameters(query)
            charts.validate(dataset, selection, *asked)  # a mistake is a 400 before any 304
            if not_modified := _not_modified(dataset_id):
                return not_modified
            spec = charts.chart(dataset, selection, *asked, max_groups=settings.groupby_max)
            release_memory()
        if fmt == "json":
            return raw_json(orjson.dumps(spec))
        body, media_type = render.image(spec, fmt)
        bottle.response.content_type = media_type
        return body

    @app.get("/datasets/<dataset_id>/charts", scope="read")
    def recommended(dataset_id: str) -> Any:
        query = _query()
        params.no_filters(query)
        limit = params.integer(query, "limit", 8, 1, 20)
        with open_dataset(store, jobs, dataset_id) as dataset:
            if not_modified := _not_modified(dataset_id):
                return not_modified
            found = charts.recommend(dataset, limit, max_groups=settings.groupby_max)
            release_memory()
        return raw_json(orjson.dumps({"dataset": dataset_id, "charts": found}))

    @app.get("/datasets/<dataset_id>/insights", scope="read")
    @app.get("/datasets/<dataset_id>/columns/<column:path>/insights", scope="read")
    def dataset_insights(dataset_id: str, column: str | None = None) -> Any:
        params.only(_query(), ())
        with open_dataset(store, jobs, dataset_id) as dataset:
            found = insights(
                dataset,
                rillet.llm.get(),
                rillet.insights_cache,
                column,
                admit=rillet.llm_calls.take,
            )
        return raw_json(orjson.dumps(found))

    @app.post("/datasets/<dataset_id>/chat", scope="read")
    def chat_route(dataset_id: str) -> Any:
        params.only(_query(), ())
        with ExitStack() as resources:  # closed here on any error; else the stream owns them
            dataset = resources.enter_context(open_dataset(store, jobs, dataset_id))
            asked = chat.question(_body(chat.BODY_MAX))
            client = rillet.llm.get()
            if client is None:
                raise LLMUnavailable(
                    "chat needs an LLM: set GROQ_API_KEY (insights work without one)"
                )
            resources.callback(rillet.llm_calls.take())
            if "text/event-stream" not in bottle.request.headers.get("Accept", ""):
                return raw_json(orjson.dumps(chat.answer(client, dataset, asked, settings)))
            resources.callback(rillet.streams.take())
            events = chat.stream(client, dataset, asked, settings)
            resources.callback(events.close)
            bottle.response.content_type = "text/event-stream; charset=utf-8"
            bottle.response.set_header("Cache-Control", "no-cache")
            bottle.response.set_header("X-Accel-Buffering", "no")  # proxies: relay as it comes
            return _Stream(iter(events), resources.pop_all())

    for code in (400, 404, 405, 500):
        app.error(code)(_bottle_error)
    return app


def _body(limit: int) -> bytes:
    """The request body, up to ``limit`` bytes; 413 past it (whatever Content-Length says)."""
    too_large = PayloadTooLarge(f"the body is over {limit // 1024} KiB", code="too_large")
    if bottle.request.content_length > limit:
        raise too_large
    body: bytes = bottle.request.body.read(limit + 1)
    if len(body) > limit:
        raise too_large
    return body


def _bottle_error(error: bottle.HTTPError) -> bytes:
    """Bottle's own 400 (a body it could not read), 404 (no route), 405 (wrong method) and 500
    (an error raised while bottle read a response's first chunk, past the plugin), in the one
    error shape."""
    exc: RilletError
    if error.status_code == 400:
        exc = BadRequest(f"the request could not be read: {error.body}", code="bad_body")
    elif error.status_code == 405:
        exc = MethodNotAllowed(f"{bottle.request.method} is not allowed on {bottle.request.path}")
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


def _metadata(rillet: Rillet, dataset_id: str) -> bytes:
    check_dataset_id(dataset_id)
    meta = rillet.store.meta_bytes(dataset_id)
    if meta is not None:
        return meta
    job = rillet.jobs.find(Store.job_of(dataset_id))
    if job is None:
        raise NotFound(f"dataset {dataset_id!r} does not exist")
    return orjson.dumps(pending_meta(job))


def _pending_jobs(rillet: Rillet) -> list[dict[str, Any]]:
    """Jobs whose dataset is not ready: queued, running or failed."""
    out = []
    for entry in sorted(rillet.store.root.joinpath("jobs").iterdir()):
        record = rillet.jobs.find(entry.stem)
        if (
            record
            and record["status"] != "done"
            and not rillet.store.is_ready(record["dataset_id"])
        ):
            out.append(record)
    return out


def _rows(rillet: Rillet, dataset_id: str, query: Any, path: str, keep: dict[str, str]) -> Any:
    """A page of rows, filtered, searched and sorted as asked (GET /rows and /fetch-data)."""
    with open_dataset(rillet.store, rillet.jobs, dataset_id) as dataset:
        plan = pages.plan(dataset, query, rillet.settings)
        if not_modified := _not_modified(dataset_id):
            return not_modified
        found = pages.fetch(dataset, plan)
        if plan.order is not None or plan.selection.active:
            release_memory()
        page = found.page
        next_url = _url(path, {**keep, **found.next}) if found.next is not None else None
        projection = Projection(dataset.names, page.columns)
        if page.format == "json":
            body = {
                "dataset": dataset_id,
                "offset": page.offset,
                "limit": page.limit,
                "rows": projection.objects(found.rows),
                "total": found.total,
                "next": next_url,
            }
            return raw_json(orjson.dumps(body))
        bottle.response.content_type = MEDIA_TYPES[page.format]
        if next_url:
            bottle.response.set_header("Link", f'<{next_url}>; rel="next"')
        if page.format == "csv":
            safe = rillet.settings.csv_safe
            return csv_header(projection, safe) + csv_rows(projection, found.rows, safe)
        return ndjson(projection, found.rows)


def _url(path: str, query: dict[str, str]) -> str:
    return f"{path}?{urlencode(query)}"


def _not_modified(dataset_id: str) -> bottle.HTTPResponse | None:
    """Set a strong ETag on a response about a ready dataset; a 304 if the client has it.

    A ready dataset never changes (a new upload is a new dataset), so the ETag is the request
    itself: the dataset, the path and the query.
    """
    request = bottle.request
    seed = f"{dataset_id}\n{request.path}\n{request.query_string}".encode()
    etag = '"' + hashlib.sha256(seed).hexdigest()[:32] + '"'
    bottle.response.set_header("ETag", etag)
    asked = request.headers.get("If-None-Match", "")
    if etag in (t.strip() for t in asked.split(",")) or asked.strip() == "*":
        return bottle.HTTPResponse(status=304, headers={"ETag": etag})
    return None


class _Stream:
    """A streamed response that releases what it holds (its dataset's files, its stream slot,
    an upstream call) when done or when the client goes away.

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


def _attachment(filename: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return f'attachment; filename="{safe}"'


def serve(settings: Settings) -> None:
    """Start the worker thread (unless SYNC_WORKER=off) and serve with waitress."""
    import waitress

    import sync_worker

    limit_malloc_arenas()
    rillet = Rillet(settings)
    new_key = rillet.keys.ensure_one()
    if new_key:
        print(
            f"Created a write key (shown once, only its hash is stored):\n\n    {new_key}\n",
            flush=True,
        )
    if settings.sync_worker:
        worker = sync_worker.run_in_thread(settings)
        rillet.wake = worker.wake
    app = AccessLog(Cors(create_app(rillet), settings.cors_origins))
    print(
        f"Rillet {VERSION} on http://{settings.host}:{settings.port} (data in {settings.data_dir})",
        flush=True,
    )
    waitress.serve(
        app,
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        ident="rillet",
        # Both limits are checked by waitress before the app sees the request, so they answer
        # in waitress's plain text (431, 413), not in the JSON error shape. The header limit
        # covers the request line too: a long URL counts against it.
        max_request_header_size=settings.max_header_kb * 1024,
        max_request_body_size=settings.max_upload_mb * 2**20 + 16 * 2**20,
        clear_untrusted_proxy_headers=True,
        expose_tracebacks=False,
    )


def keys_command(settings: Settings, argv: list[str]) -> int:
    ring = KeyRing(settings.data_dir / "keys.json", settings.api_keys)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    action = argv[0] if argv else "list"
    if action == "create":
        scope = argv[1] if len(argv) > 1 else "read"
        key_id, key = ring.create(scope)
        print(f"{key_id} ({scope}): {key}\nStore it now: only its hash is kept.")
    elif action == "list":
        for entry in ring.listing():
            print(
                f"{entry['id']}\t{entry['scope']}\t{entry['created_at'] or '-'}\t{entry['source']}"
            )
    elif action == "revoke" and len(argv) == 2:
        ring.revoke(argv[1])
        print(f"revoked {argv[1]}")
    else:
        print(
            "usage: python server.py keys create [read|write] | list | revoke ID", file=sys.stderr
        )
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
        if argv[:1] == ["keys"]:
            return keys_command(settings, argv[1:])
        if argv[:1] == ["settings"]:
            for name, value, help_text in settings.describe():
                print(f"{name}={value}\n    {help_text}")
            return 0
        if argv:
            print(__doc__, file=sys.stderr)
            return 2
        serve(settings)
    except RilletError as exc:
        print(f"rillet: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
