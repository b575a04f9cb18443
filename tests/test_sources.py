"""Datasets from a source URL: created, fetched by the worker, refused when they should be.

Every fetch goes to a FakeOrigin on 127.0.0.1, so the tests that fetch set
SOURCE_ALLOW_PRIVATE=1 (``allowed``); the refusal tests leave it unset and never connect
(a refused address is refused before any socket opens).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from server import Rillet
from streaming import sources
from streaming.fetch import GuardedBackend, guarded_client
from streaming.settings import Settings
from sync_worker import sync_all
from tests.conftest import (
    WRITE_KEY,
    app_client,
    assert_error,
    make_settings,
    start_server,
    stop,
    upload,
    wait_for,
)
from tests.fake_origin import CSV, ETAG, LAST_MODIFIED, FakeOrigin

TOKEN = "tok-3f1e-very-secret"
SIG = "sig-9a7c-also-secret"
ROWS = [
    {"city": "Lyon", "visits": 3},
    {"city": "Nantes", "visits": 5},
    {"city": "Lille", "visits": 8},
]


@pytest.fixture
def origin() -> Iterator[FakeOrigin]:
    with FakeOrigin(token=TOKEN, big_bytes=2 * 2**20) as fake:
        fake.slow_seconds = 2.0
        yield fake


def _rillet(tmp_path: Path, **overrides: Any) -> Rillet:
    return Rillet(make_settings(tmp_path / "data", max_upload_mb=1, **overrides))


@pytest.fixture
def allowed(tmp_path: Path) -> Iterator[tuple[Rillet, httpx.Client]]:
    """An app that may fetch from 127.0.0.1 (SOURCE_ALLOW_PRIVATE=1), with a short timeout."""
    app = _rillet(tmp_path, source_allow_private=True, source_timeout=0.5)
    with app_client(app) as client:
        yield app, client
    app.close()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[Rillet, httpx.Client]]:
    """An app with the default rules: nothing but public addresses."""
    app = _rillet(tmp_path)
    with app_client(app) as client:
        yield app, client
    app.close()


def _create(client: httpx.Client, url: str, **source: Any) -> httpx.Response:
    body = {"source": {"url": url, **source}}
    return client.post("/datasets", content=orjson.dumps(body), headers=_JSON)


_JSON = {"Content-Type": "application/json"}


def _sync(app: Rillet, client: httpx.Client, url: str, **source: Any) -> dict[str, Any]:
    """Create from ``url``, run the worker's step, return the job's record."""
    created = _create(client, url, **source)
    assert created.status_code == 202, created.text
    sync_all(app.settings)
    job: dict[str, Any] = client.get(created.json()["job"]["url"]).json()
    return job


def _stored_nothing(data_dir: Path) -> bool:
    return not any(
        os.listdir(data_dir / name) for name in ("jobs", "queue", "uploads", "datasets")
    ) and not any((data_dir / "secrets").glob("*"))


def test_a_source_becomes_a_dataset_with_its_rows_and_masked_url(
    allowed: tuple[Rillet, httpx.Client], origin: FakeOrigin, caplog: pytest.LogCaptureFixture
) -> None:
    app, client = allowed
    url = origin.url(f"/data.csv?sig={SIG}&v=2")
    with caplog.at_level(logging.DEBUG):
        job = _sync(app, client, url, headers={"X-Token": TOKEN}, every=3600, delimiter=",")
    assert job["status"] == "done", job
    dataset = job["dataset_id"]
    assert client.get(f"/datasets/{dataset}/rows").json()["rows"] == ROWS
    meta = client.get(f"/datasets/{dataset}").json()
    source = meta["source"]
    assert source["url"] == origin.url("/data.csv?sig=***&v=***")
    assert (source["every"], source["etag"], source["last_modified"]) == (
        3600,
        ETAG,
        LAST_MODIFIED,
    )
    assert source["checked_at"] and source["bytes"] == len(CSV)
    assert origin.requests[0][1]["X-Token"] == TOKEN  # the origin got its token
    # The secrets: nowhere but the 0600 secrets file.
    data = app.settings.data_dir
    secret_file = sources.secrets_path(data, dataset)
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert TOKEN in secret_file.read_text()
    shown = [
        client.get(p).text for p in ("/datasets", f"/datasets/{dataset}", f"/jobs/{job['id']}")
    ]
    stored = [p.read_text() for p in data.rglob("*.json") if p != secret_file]
    logged = [r.getMessage() for r in caplog.records]
    for text in shown + stored + logged:
        assert TOKEN not in text and SIG not in text


def test_a_redirect_chain_is_followed_with_the_token_kept_on_the_origin(
    allowed: tuple[Rillet, httpx.Client], origin: FakeOrigin
) -> None:
    app, client = allowed
    job = _sync(app, client, origin.url("/redirect/3"), headers={"X-Token": TOKEN})
    assert job["status"] == "done", job
    assert [path for path, _ in origin.requests] == [
        "/redirect/3",
        "/redirect/2",
        "/redirect/1",
        "/data.csv",
    ]


def test_a_redirect_to_another_origin_does_not_carry_the_headers(
    allowed: tuple[Rillet, httpx.Client], origin: FakeOrigin
) -> None:
    app, client = allowed
    job = _sync(app, client, origin.url("/away"), headers={"X-Token": TOKEN})
    assert job["status"] == "done", job
    (first, sent), (second, elsewhere) = origin.requests
    assert (first, sent["X-Token"]) == ("/away", TOKEN)
    assert second == "/open.csv" and "X-Token" not in elsewhere
    assert elsewhere["Host"] == f"localhost:{origin.port}"


@pytest.mark.parametrize(
    ("path", "headers", "code", "words"),
    [
        ("/data.csv", {}, "source_failed", "401"),
        ("/error", {}, "source_failed", "500"),
        ("/page", {}, "source_not_csv", "HTML"),
        ("/sneaky", {}, "source_not_csv", "HTML"),
        ("/big", {}, "too_large", "1 MiB"),
        ("/loop", {}, "source_redirects", "more than 5"),
        ("/cut", {}, "source_failed", "cut"),
        ("/slow", {}, "source_timeout", "0.5 seconds"),
        ("/nothing-here", {"X-Token": TOKEN}, "source_failed", "404"),
    ],
)
def test_a_source_that_fails_fails_its_job_and_leaves_nothing_half_visible(
    allowed: tuple[Rillet, httpx.Client],
    origin: FakeOrigin,
    path: str,
    headers: dict[str, str],
    code: str,
    words: str,
) -> None:
    app, client = allowed
    job = _sync(app, client, origin.url(path), headers=headers)
    assert job["status"] == "failed", job
    assert job["error"]["code"] == code and words in job["error"]["message"], job["error"]
    data = app.settings.data_dir
    assert not os.listdir(data / "datasets") and not os.listdir(data / "uploads")
    assert not os.listdir(data / "tmp") and not os.listdir(data / "running")
    meta = client.get(f"/datasets/{job['dataset_id']}").json()
    assert meta["status"] == "failed" and meta["error"]["code"] == code


BAD_SOURCES = [
    ({"every": 59}, "bad_parameter"),
    ({"every": "3600"}, "bad_parameter"),
    ({"every": 90.5}, "bad_parameter"),
    ({"every": True}, "bad_parameter"),
    ({"url": "http://user:pass@example.invalid/a.csv"}, "bad_source"),
    ({"url": "ftp://example.invalid/a.csv"}, "bad_source"),
    ({"url": "file:///etc/passwd"}, "bad_source"),
    ({"url": "http:///a.csv"}, "bad_source"),
    ({"url": 5}, "bad_source"),
    ({"cron": "* * * * *"}, "bad_source"),
    ({"headers": {"X-Token": 5}}, "bad_source"),
    ({"headers": {"Host": "elsewhere"}}, "bad_source"),
    ({"headers": {"X-Token": "a\r\nX-Evil: 1"}}, "bad_source"),
    ({"headers": {f"X-H{n}": "v" for n in range(21)}}, "bad_source"),
    ({"types": "a:color"}, "bad_parameter"),
    ({"delimiter": ";;"}, "bad_parameter"),
]


@pytest.mark.parametrize(("source", "code"), BAD_SOURCES)
def test_bad_source_input_is_a_400_with_nothing_stored(
    guarded: tuple[Rillet, httpx.Client], source: dict[str, Any], code: str
) -> None:
    app, client = guarded
    # A public literal address: the rules pass it without resolving or connecting.
    response = _create(client, **{"url": "http://8.8.8.8/a.csv", **source})
    assert_error(response, 400, code)
    assert _stored_nothing(app.settings.data_dir)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        b'{"source": {"url": "http://8.8.8.8/a.csv"}, "extra": 1}',
        b'{"name": "x"}',
        b'{"source": {"url": "http://8.8.8.8/a.csv"}, "notify": {"url": "http://8.8.8.8/"}}',
    ],
)
def test_a_malformed_create_body_is_a_400(
    guarded: tuple[Rillet, httpx.Client], body: bytes
) -> None:
    app, client = guarded
    response = client.post("/datasets", content=body, headers=_JSON)
    assert response.status_code == 400, response.text
    assert _stored_nothing(app.settings.data_dir)


REFUSED = [
    "http://127.0.0.1/a.csv",
    "http://localhost/a.csv",  # a name: resolved, to 127.0.0.1
    "http://2130706433/a.csv",  # 127.0.0.1 in decimal
    "http://0177.0.0.1/a.csv",  # in octal
    "http://0x7f.1/a.csv",
    "http://[::1]/a.csv",
    "http://[::ffff:127.0.0.1]/a.csv",  # IPv4-mapped IPv6
    "http://[::ffff:a00:1]/a.csv",  # 10.0.0.1, mapped
    "http://10.0.0.1/a.csv",
    "http://172.16.0.1/a.csv",
    "http://192.168.1.1/a.csv",
    "http://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
    "http://[fe80::1]/a.csv",
    "http://[fc00::1]/a.csv",
    "http://224.0.0.1/a.csv",
    "http://[ff02::1]/a.csv",
    "http://0.0.0.0/a.csv",
    "http://[::]/a.csv",
    "http://240.0.0.1/a.csv",  # reserved
    "https://100.64.0.1/a.csv",  # shared address space
]


@pytest.mark.parametrize("url", REFUSED)
def test_sources_on_non_public_addresses_are_refused_at_create(
    guarded: tuple[Rillet, httpx.Client], url: str
) -> None:
    app, client = guarded
    assert_error(_create(client, url), 400, "source_not_allowed")
    assert _stored_nothing(app.settings.data_dir)


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("10.1.2.3", True),
        ("::ffff:192.168.0.1", True),
        ("2002:7f00:1::", True),  # 6to4 around 127.0.0.1
        ("fd12::1", True),
        ("198.18.0.1", True),
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
        ("::ffff:8.8.8.8", False),
    ],
)
def test_check_address_on_literal_addresses(address: str, refused: bool) -> None:
    ip = ipaddress.ip_address(address)
    if refused:
        with pytest.raises(sources.SourceNotAllowed):
            sources.check_address(ip)
    else:
        sources.check_address(ip)


def test_the_connect_time_check_refuses_a_name_the_url_check_never_saw(
    origin: FakeOrigin,
) -> None:
    """The client alone, with no check before it: the network backend refuses as it connects,
    so a name whose answer changes after the check still lands on the rules."""
    with (
        guarded_client(allow_private=False, timeout=2) as client,
        pytest.raises(sources.SourceNotAllowed),
    ):
        client.get(origin.url("/open.csv", host="localhost"))
    assert origin.requests == []
    with guarded_client(allow_private=True, timeout=2) as client:
        assert client.get(origin.url("/open.csv", host="localhost")).content == CSV
    with pytest.raises(sources.SourceNotAllowed):
        GuardedBackend(allow_private=False).connect_tcp("0177.0.0.1", origin.port)


def test_a_source_allowed_at_create_but_refused_at_fetch_fails_its_job(
    tmp_path: Path, origin: FakeOrigin
) -> None:
    app = _rillet(tmp_path, source_allow_private=True)
    with app_client(app) as client:
        created = _create(client, origin.url("/open.csv"))
        assert created.status_code == 202
        strict = Settings.from_env({}, **{**_fields(app.settings), "source_allow_private": False})
        sync_all(strict)
        job = client.get(created.json()["job"]["url"]).json()
    app.close()
    assert job["status"] == "failed" and job["error"]["code"] == "source_not_allowed"
    assert origin.requests == []


def _fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


def test_sync_now_fetches_a_source_again_and_refuses_the_rest(
    allowed: tuple[Rillet, httpx.Client], origin: FakeOrigin
) -> None:
    app, client = allowed
    job = _sync(app, client, origin.url("/data.csv"))  # no token yet: 401, failed
    assert job["status"] == "failed"
    dataset = job["dataset_id"]
    origin.token = None  # the origin now answers without one
    again = client.post(f"/datasets/{dataset}/sync")
    assert again.status_code == 202, again.text
    assert again.json()["job"]["id"] == job["id"]
    assert_error(client.post(f"/datasets/{dataset}/sync"), 409, "sync_running")
    sync_all(app.settings)
    assert client.get(f"/jobs/{job['id']}").json()["status"] == "done"
    assert client.get(f"/datasets/{dataset}/rows").json()["rows"] == ROWS
    # Synced: fetched again, conditionally; the origin's 304 changes nothing.
    assert client.post(f"/datasets/{dataset}/sync").status_code == 202
    body = {"content": b"a,b\n", "headers": {"Content-Type": "text/csv"}}
    assert_error(client.post(f"/datasets/{dataset}/sync", **body), 409, "sync_running")
    sync_all(app.settings)
    again_job = client.get(f"/jobs/{job['id']}").json()
    assert (again_job["status"], again_job["changed"]) == ("done", False)
    assert origin.requests[-1][1]["If-None-Match"] == ETAG
    assert client.get(f"/datasets/{dataset}/rows").json()["rows"] == ROWS
    plain = upload(client, app, "a,b\n1,2\n")
    assert_error(client.post(f"/datasets/{plain}/sync"), 409, "no_source")
    assert_error(client.post("/datasets/ds_000000000000/sync"), 404)
    assert client.delete(f"/datasets/{dataset}").status_code == 204
    assert not sources.secrets_path(app.settings.data_dir, dataset).exists()


def test_a_source_through_the_real_server_keeps_its_secrets_out_of_the_log(
    tmp_path: Path, origin: FakeOrigin
) -> None:
    running = start_server(
        tmp_path / "data",
        API_KEYS=f"{WRITE_KEY}:write",
        SOURCE_ALLOW_PRIVATE="1",
        RATE_LIMIT="0",
    )
    try:
        with httpx.Client(base_url=running.base_url, headers={"X-API-Key": WRITE_KEY}) as client:
            url = origin.url(f"/data.csv?sig={SIG}")
            created = _create(client, url, headers={"X-Token": TOKEN})
            assert created.status_code == 202, created.text
            job_url = created.json()["job"]["url"]
            job = wait_for(lambda: _finished(client.get(job_url).json()))
            assert job["status"] == "done", job
            rows = client.get(f"/datasets/{job['dataset_id']}/rows").json()["rows"]
            assert rows == ROWS
            failing = _create(client, origin.url(f"/error?sig={SIG}"), headers={"X-Token": TOKEN})
            failed = wait_for(lambda: _finished(client.get(failing.json()["job"]["url"]).json()))
            assert failed["status"] == "failed"
            answers = client.get("/datasets").text + created.text + failing.text
    finally:
        output = stop(running.process)
    assert "/datasets" in output  # the access log was captured
    for text in (output, answers, str(failed)):
        assert TOKEN not in text and SIG not in text


def _finished(job: dict[str, Any]) -> dict[str, Any] | None:
    return job if job["status"] in ("done", "failed") else None


def test_a_source_takes_the_upload_options(
    allowed: tuple[Rillet, httpx.Client], origin: FakeOrigin
) -> None:
    app, client = allowed
    job = _sync(app, client, origin.url("/open.csv"), header=False, types="column_2:string")
    assert job["status"] == "done", job
    meta = client.get(f"/datasets/{job['dataset_id']}").json()
    columns = {c["name"]: c["type"] for c in meta["columns"]}
    assert columns == {"column_1": "string", "column_2": "string"}
    assert meta["rows"] == 4 and meta["name"] == "open.csv"
