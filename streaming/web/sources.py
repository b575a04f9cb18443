"""Datasets from a source URL: create one (``POST /datasets`` with a JSON body) and fetch it
again now (``POST /datasets/ID/sync``). The worker fetches (``streaming.fetch``) and keeps the
schedule (``streaming.schedule``); these only check and queue, and load no httpx."""

from __future__ import annotations

from typing import Any

from streaming import params, sources
from streaming.errors import NotFound, NotReady
from streaming.store import Store, check_dataset_id
from streaming.web import versions
from streaming.web.exchange import Answer, Call, json_answer
from streaming.web.openapi import Doc, errors, json_content, param, ref
from streaming.web.state import Rillet
from streaming.web.uploads import UPLOAD_CONTENT, UPLOAD_PARAMETERS

SOURCE_BODY = {
    "type": "object",
    "required": ["source"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "source": {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "format": "uri"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "every": {"type": ["integer", "null"], "minimum": sources.MIN_EVERY},
                **{name: {"type": "string"} for name in sources.READING_FIELDS},
                "header": {"type": ["string", "boolean"]},
            },
        },
        "notify": {
            "type": ["object", "null"],
            "required": ["url", "secret"],
            "additionalProperties": False,
            "description": "A webhook told of each sync's end, signed with the secret",
            "properties": {
                "url": {"type": "string", "format": "uri"},
                "secret": {"type": "string", "minLength": 1, "maxLength": sources.MAX_SECRET},
            },
        },
    },
}


def create(rillet: Rillet, call: Call) -> Answer:
    """Check a source request whole, keep its secrets 0600, queue its fetch; 202."""
    request = sources.parse_request(
        call.body(sources.BODY_LIMIT), allow_private=rillet.settings.source_allow_private
    )
    ids = rillet.store.new_ids()
    root = rillet.store.root
    sources.save_secrets(root, ids.dataset, request.url, request.headers, request.notify)
    rillet.schedules.create(ids.dataset, request.every)
    source = {
        "url": sources.mask_url(request.url),
        "every": request.every,
        "etag": None,
        "last_modified": None,
        "checked_at": None,
        "filename": request.name,
        "bytes": 0,
        "sha256": None,
    }
    rillet.jobs.create(ids.job, ids.dataset, request.name, source, request.options)
    rillet.wake()
    return _accepted(ids.dataset, request.name, ids.job)


SYNC = Doc(
    "Sync now: fetch the source again, or take new data from the body (write scope)",
    {
        "202": json_content(ref("Accepted"), "Queued for sync"),
        **errors(400, 404, 409, 413, 415, 422),
    },
    (
        param(
            "mode",
            {"type": "string", "enum": ["replace", "append"]},
            "With a body: replace the data (default), or append rows of the same header.",
        ),
        *UPLOAD_PARAMETERS,
    ),
    body={"required": False, "content": UPLOAD_CONTENT},
)


def sync(rillet: Rillet, call: Call) -> Answer:
    """Queue a fetch of the dataset's source now, conditional as a scheduled one is (409
    ``no_source`` for a dataset without one, ``sync_running`` while its sync is queued or
    runs: one dataset never has two), or with a CSV body its new data
    (``streaming.web.versions``)."""
    dataset_id = check_dataset_id(call.args["dataset_id"])
    if versions.has_body(call):
        return versions.new_data(rillet, call, dataset_id)
    params.only(call.params, ())
    store, jobs = rillet.store, rillet.jobs
    job_id = Store.job_of(dataset_id)
    job = jobs.find(job_id)
    if job is None and not store.is_ready(dataset_id):
        raise NotFound(f"dataset {dataset_id!r} does not exist")
    if sources.load_secrets(store.root, dataset_id) is None or job is None:
        raise NotReady(f"dataset {dataset_id!r} has no source to fetch", code="no_source")
    claim = jobs.lock_settled(job_id)  # held while deciding: no worker claims it meanwhile
    if claim is not None:
        job = jobs.get(job_id)  # as it stands now that no worker can change it
    if claim is None or job["status"] in ("queued", "running"):
        if claim:
            claim.release()
        raise NotReady(f"dataset {dataset_id!r} is being synced", code="sync_running")
    try:
        jobs.retry(job_id)  # its sync makes the next version
    finally:
        claim.release()
    rillet.wake()
    return _accepted(dataset_id, job["name"], job_id)


def _accepted(dataset_id: str, name: str, job_id: str) -> Answer:
    body: dict[str, Any] = {
        "dataset": {"id": dataset_id, "name": name, "status": "queued"},
        "job": {"id": job_id, "status": "queued", "url": f"/jobs/{job_id}"},
    }
    return json_answer(body, status=202)
