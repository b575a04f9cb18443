"""Schemathesis over the served OpenAPI document: no request may get a 500 or a traceback.

Every GET route is fuzzed in-process (WSGI) against a small real dataset, with a key; every
response must be a non-5xx, and a 2xx must match its documented schema.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from server import Rillet, create_app
from streaming.settings import Settings
from sync_worker import sync_all

KEY = "fuzz-key"
_DATA = Path(tempfile.mkdtemp(prefix="rillet-fuzz-"))
_RILLET = Rillet(
    Settings.from_env({}, data_dir=_DATA, api_keys=f"{KEY}:write", sync_worker=False, rate_limit=0)
)
APP = create_app(_RILLET)


def _dataset() -> tuple[str, str]:
    ids = _RILLET.store.new_ids()
    upload = _RILLET.store.upload_path(ids.job)
    rows = "".join(
        f"{i},{i * 0.5},{'ab'[i % 2]},2024-01-{1 + i % 28:02d},{i % 3 == 0}\n" for i in range(300)
    )
    upload.write_text("n,x,cat,day,flag\n" + rows)
    source = {"filename": "f.csv", "bytes": upload.stat().st_size, "sha256": "0" * 64}
    _RILLET.jobs.create(ids.job, ids.dataset, "f", source, {"delimiter": None, "encoding": None})
    assert sync_all(_RILLET.settings) == 1
    return ids.dataset, ids.job


DATASET, JOB = _dataset()
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, headers={"X-API-Key": KEY})


@pytest.mark.slow
@schema.include(method="GET").parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    if "dataset_id" in (case.path_parameters or {}):
        case.path_parameters["dataset_id"] = DATASET
    if "job_id" in (case.path_parameters or {}):
        case.path_parameters["job_id"] = JOB
    case.call_and_validate(
        headers={"X-API-Key": KEY}, checks=[not_a_server_error, response_schema_conformance]
    )


@schemathesis.check
def only_the_llm_may_fail(ctx: object, response: schemathesis.Response, case: object) -> None:
    """Chat fuzzed with no LLM configured: 503 llm_unavailable is its documented answer to a
    well-formed question; any other 5xx, or a body outside the error shape, is a failure."""
    if response.status_code >= 500:
        body = response.json()
        assert response.status_code == 503, body
        assert body["error"]["code"] == "llm_unavailable", body


@pytest.mark.slow
@schema.include(method="POST", path_regex="/chat$").parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_chat_body_gets_a_server_error(case: schemathesis.Case) -> None:
    case.path_parameters = {"dataset_id": DATASET}
    case.call_and_validate(
        headers={"X-API-Key": KEY}, checks=[only_the_llm_may_fail, response_schema_conformance]
    )
