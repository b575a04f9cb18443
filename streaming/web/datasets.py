"""Datasets and their sync jobs: upload, list, probe, delete, and a job's progress."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import orjson

from charts.chat import event
from streaming import metadata, params, sources
from streaming.errors import NotFound, NotReady, VersionNotFound
from streaming.jobs import PUBLIC_FIELDS
from streaming.options import OPTIONS
from streaming.schedule import with_schedule
from streaming.store import Store, check_dataset_id
from streaming.web.exchange import (
    EVENT_HEADERS,
    Answer,
    Call,
    Streamed,
    etag_of,
    json_answer,
    not_modified,
    raw_json,
)
from streaming.web.openapi import VERSION, Doc, errors, json_content, param, ref
from streaming.web.sources import SOURCE_BODY, create
from streaming.web.state import Rillet
from streaming.web.uploads import UPLOAD_CONTENT, UPLOAD_PARAMETERS, receive

UPLOAD = Doc(
    "Upload a CSV, or name a source URL to fetch (JSON body; write scope)",
    {"202": json_content(ref("Accepted"), "Queued for sync"), **errors(400, 413, 415, 422)},
    (param("name", {"type": "string"}, "Dataset name (raw bodies)."), *UPLOAD_PARAMETERS),
    body={
        "required": True,
        "content": {**UPLOAD_CONTENT, "application/json": {"schema": SOURCE_BODY}},
    },
)


def upload(rillet: Rillet, call: Call) -> Answer:
    """Spool the body to disk (capped, hashed on the way), queue its sync, answer 202. A JSON
    body names a source URL instead (``streaming.web.sources``)."""
    values = call.params
    if call.header("Content-Type").partition(";")[0].strip().lower() == "application/json":
        params.only(values, ())
        return create(rillet, call)
    params.only(values, ("name", "delimiter", "encoding", *OPTIONS))
    ids = rillet.store.new_ids()
    received = receive(rillet, call, rillet.store.upload_path(ids.job))
    name = received.name
    job = rillet.jobs.create(ids.job, ids.dataset, name, received.source, received.options)
    rillet.wake()
    return json_answer(
        {
            "dataset": {"id": ids.dataset, "name": job["name"], "status": "queued"},
            "job": {"id": ids.job, "status": "queued", "url": f"/jobs/{ids.job}"},
        },
        status=202,
    )


LISTING = Doc(
    "All datasets",
    {
        "200": json_content(
            {
                "type": "object",
                "required": ["datasets"],
                "properties": {"datasets": {"type": "array", "items": ref("Metadata")}},
            },
            "Metadata of every dataset",
        )
    },
)


def listing(rillet: Rillet, call: Call) -> Answer:
    store, schedules = rillet.store, rillet.schedules
    ready = [(i, store.meta_bytes(i)) for i in store.ready_ids()]
    pending = [(j["dataset_id"], orjson.dumps(metadata.pending(j))) for j in _pending_jobs(rillet)]
    records = [with_schedule(m, schedules.get(i)) for i, m in ready + pending if m]
    return raw_json(b'{"datasets":[' + b",".join(records) + b"]}")


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


PROBE = Doc(
    "Metadata probe (reads no rows)",
    {"200": json_content(ref("Metadata"), "Metadata"), **errors(400, 404)},
    (VERSION,),
)


def probe(rillet: Rillet, call: Call) -> Answer:
    dataset_id = call.args["dataset_id"]
    body = metadata_bytes(rillet, dataset_id, params.version(call.params))
    if not rillet.store.is_ready(dataset_id):
        return raw_json(body)  # still syncing: it will change, so no ETag
    etag = etag_of(dataset_id, call, orjson.loads(body).get("version"))
    if rillet.schedules.get(dataset_id):  # a source's fields change as it syncs
        etag = etag[:-1] + hashlib.sha256(body).hexdigest()[:16] + '"'
    return not_modified(etag, call) or raw_json(body, ETag=etag)


def metadata_bytes(rillet: Rillet, dataset_id: str, version: int | None = None) -> bytes:
    """A dataset's METADATA as JSON, ready or not (of ``version`` if given: 404 if it is not
    kept); 404 if there is no such dataset."""
    check_dataset_id(dataset_id)
    meta = rillet.store.meta_bytes(dataset_id, version)
    if meta is None:
        job = rillet.jobs.find(Store.job_of(dataset_id))
        if job is None:
            raise NotFound(f"dataset {dataset_id!r} does not exist")
        if version is not None:
            raise VersionNotFound(f"dataset {dataset_id!r} has no version {version} yet")
        meta = orjson.dumps(metadata.pending(job))
    return with_schedule(meta, rillet.schedules.get(dataset_id))


DELETE = Doc(
    "Delete a dataset (write scope)", {"204": {"description": "Deleted"}, **errors(404, 409)}
)


def delete(rillet: Rillet, call: Call) -> Answer:
    dataset_id = call.args["dataset_id"]
    store, jobs = rillet.store, rillet.jobs
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
        sources.forget(store.root, dataset_id)
        rillet.schedules.forget(dataset_id)
        if jobs.find(job_id) is not None:
            jobs.delete(job_id)  # a queued upload, or the record of a finished one
            deleted = True
    finally:
        claim.release()
    if not deleted:
        raise NotFound(f"dataset {dataset_id!r} does not exist")
    return Answer(b"", 204)


JOB = Doc(
    "A sync job; its progress as server-sent events when Accept is text/event-stream",
    {
        "200": {
            "description": "The job (JSON), or server-sent events: progress while it is queued "
            "or runs, then one done or failed, then the stream ends",
            "content": {
                "application/json": {"schema": ref("Job")},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        },
        **errors(404, 429),
    },
)
POLL_SECONDS = 0.25  # how often a job's stream reads its record
KEEPALIVE_SECONDS = 2.0  # a comment when nothing changed: a client that left is noticed
STREAM_SECONDS = 600.0  # then the stream ends; a client that still waits asks again


def job(rillet: Rillet, call: Call) -> Answer:
    record = rillet.jobs.get(call.args["job_id"])
    if not call.wants_events():
        return json_answer(_public(record))
    held = ExitStack()
    held.callback(rillet.streams.take())  # a 429 here, before the stream, if all are taken
    events = _job_events(rillet, record, time.monotonic() + STREAM_SECONDS)
    return Answer(Streamed(events, held), 200, dict(EVENT_HEADERS))


def _public(record: dict[str, Any]) -> dict[str, Any]:
    public = {field: record[field] for field in PUBLIC_FIELDS}
    if record.get("changed") is not None:  # a source's sync, once its fetch has said
        public["changed"] = record["changed"]
    return public


def _job_events(rillet: Rillet, record: dict[str, Any], until: float) -> Iterator[bytes]:
    """``progress`` each time the record changes, then ``done`` or ``failed``; comments keep
    the connection tested (a write is how the server learns the client left)."""
    last, quiet = b"", 0.0
    while True:
        public = _public(record)
        if public["status"] in ("done", "failed"):
            yield event(public["status"], public)
            return
        body = orjson.dumps(public)
        if body != last:
            last, quiet = body, 0.0
            yield event("progress", public)
        elif quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield b": waiting\n\n"
        if time.monotonic() >= until:
            return
        time.sleep(POLL_SECONDS)
        quiet += POLL_SECONDS
        record = rillet.jobs.find(public["id"]) or {**record, "status": "failed"}
