"""A dataset's versions: the list of those kept, and new data for the next one.

``GET /datasets/ID/versions`` lists the kept versions, newest first. ``POST
/datasets/ID/sync`` with a CSV body (``new_data``, called by ``streaming.web.sources.sync``)
queues the body as the dataset's next version: ``mode=replace`` (the default) makes it the
data, ``mode=append`` adds its rows after the current ones (``streaming.append``). Everything
that can be refused is refused before the job is queued, and leaves the dataset as it was: a
dataset syncing (409 ``sync_running``), an append to a dataset with no rows yet (409
``not_ready``), another header (422 ``header_mismatch``, read from the spooled body).
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from streaming import params
from streaming.append import check_header, header_of
from streaming.errors import BadRequest, NotFound, NotReady
from streaming.jobs import Claim, Jobs
from streaming.options import OPTIONS
from streaming.store import INCOMING, Store, check_dataset_id
from streaming.web.exchange import Answer, Call, json_answer
from streaming.web.openapi import Doc, errors, json_content, ref
from streaming.web.state import Rillet
from streaming.web.uploads import Received, receive

MODES = ("replace", "append")
SYNC_PARAMETERS = ("mode", "name", "delimiter", "encoding", *OPTIONS)

VERSIONS = Doc(
    "The dataset's kept versions, newest first",
    {"200": json_content(ref("Versions"), "Versions"), **errors(404)},
)


def listing(rillet: Rillet, call: Call) -> Answer:
    """``{"versions": [{"version", "rows", "bytes", "sha256", "created_at", "mode"}]}``; empty
    while the dataset's first sync has not ended."""
    params.only(call.params, ())
    dataset_id = check_dataset_id(call.args["dataset_id"])
    store = rillet.store
    if not store.is_ready(dataset_id) and rillet.jobs.find(Store.job_of(dataset_id)) is None:
        raise NotFound(f"dataset {dataset_id!r} does not exist")
    found = []
    for number in reversed(store.versions(dataset_id)):
        try:
            meta = orjson.loads(store.meta_bytes(dataset_id, number) or b"null")
        except NotFound:  # pruned while we listed
            continue
        if meta is not None:
            found.append(_entry(meta))
    return json_answer({"versions": found})


def _entry(meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": meta["version"],
        "rows": meta["rows"],
        "bytes": meta["bytes"],
        "sha256": meta["source"].get("sha256"),  # of the body this version was made from
        "created_at": meta["ready_at"],
        "mode": meta.get("mode", "replace"),
    }


def has_body(call: Call) -> bool:
    return bool(
        call.header("Content-Length").strip() not in ("", "0") or call.header("Transfer-Encoding")
    )


def new_data(rillet: Rillet, call: Call, dataset_id: str) -> Answer:
    """Spool the body and queue it as the dataset's next version; 202."""
    values = call.params
    params.only(values, SYNC_PARAMETERS)
    mode = values.get("mode") or "replace"
    if mode not in MODES:
        raise BadRequest(f"mode must be replace or append, not {mode!r}", code="bad_parameter")
    store, jobs = rillet.store, rillet.jobs
    job_id = Store.job_of(dataset_id)
    _check_idle(store, jobs, dataset_id, mode)  # before reading the body: a 409 at once
    incoming = store.upload_path(job_id).with_name(f"{job_id}.{os.urandom(4).hex()}{INCOMING}")
    try:
        received = receive(rillet, call, incoming)
        claim = jobs.lock_settled(job_id)  # held while deciding: no worker claims it meanwhile
        if claim is None:
            raise _syncing(dataset_id)
        try:
            return _queue(rillet, claim, dataset_id, mode, received, incoming)
        finally:
            claim.release()
    finally:
        incoming.unlink(missing_ok=True)


def _check_idle(store: Store, jobs: Jobs, dataset_id: str, mode: str) -> dict[str, Any] | None:
    """The dataset's job record (None: a dataset published without one); 404, or 409 while
    it syncs, or for an append to a dataset with no rows yet."""
    job = jobs.find(Store.job_of(dataset_id))
    ready = store.is_ready(dataset_id)
    if job is None and not ready:
        raise NotFound(f"dataset {dataset_id!r} does not exist")
    if job is not None and job["status"] in ("queued", "running"):
        raise _syncing(dataset_id)
    if mode == "append" and not ready:
        raise NotReady(
            f"dataset {dataset_id!r} has no rows to append to yet (its first sync failed); "
            "send the data with mode=replace",
        )
    return job


def _syncing(dataset_id: str) -> NotReady:
    return NotReady(
        f"dataset {dataset_id!r} is being synced; send new data when its sync ends",
        code="sync_running",
    )


def _queue(
    rillet: Rillet, claim: Claim, dataset_id: str, mode: str, received: Received, incoming: Any
) -> Answer:
    """Under the job's lock: check again, then move the body in and queue the job."""
    store, jobs = rillet.store, rillet.jobs
    job = _check_idle(store, jobs, dataset_id, mode)
    options = received.options
    if mode == "append":
        before = (job or {}).get("sync_options") or (job or {}).get("options") or {}
        options = {**before, **{n: options[n] for n in received.given}}
        meta = orjson.loads(store.meta_bytes(dataset_id) or b"{}")
        names = [c["name"] for c in meta["columns"]]
        limit = rillet.settings.max_upload_mb * 2**20
        check_header(names, header_of(incoming, options, limit, store.tmp))
    os.replace(incoming, store.upload_path(claim.job_id))
    fields = {"mode": mode, "sync_options": options}
    if job is None:  # published without a job record (a benchmark's): give it one
        meta = orjson.loads(store.meta_bytes(dataset_id) or b"{}")
        job = jobs.create(claim.job_id, dataset_id, meta["name"], received.source, options)
        publishes = store.current_version(dataset_id) + 1
        job = jobs.update(claim.job_id, publishes=publishes, **fields)  # still locked
    else:
        job = jobs.retry(claim.job_id, source={**job["source"], **received.source}, **fields)
    rillet.wake()
    body = {
        "dataset": {"id": dataset_id, "name": job["name"], "status": "queued"},
        "job": {"id": claim.job_id, "status": "queued", "url": f"/jobs/{claim.job_id}"},
    }
    return json_answer(body, status=202)
