"""Webhooks: a signed event after each sync of a source, sent from the outbox by the worker's
notifier (never by the sync), retried with backoff, its secret kept out of sight.

The receiver is FakeOrigin's ``POST /hook`` on 127.0.0.1; the notifier's clock is injected, so
retries are tested by moving it.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from server import Rillet
from streaming.notify import signature
from streaming.settings import Settings
from sync_worker import Worker
from tests.conftest import (
    WRITE_KEY,
    app_client,
    assert_error,
    make_settings,
    start_server,
    stop,
    wait_for,
)
from tests.fake_origin import FakeOrigin
from tests.test_schedule import Clock

SECRET = "whsec-71c4-never-shown"
TOKEN = "tok-hook-5e0a-secret"
_JSON = {"Content-Type": "application/json"}


@pytest.fixture
def origin() -> Iterator[FakeOrigin]:
    with FakeOrigin(token=TOKEN) as fake:
        yield fake


def _app(tmp_path: Path, **overrides: Any) -> Rillet:
    settings = make_settings(
        tmp_path / "data", source_allow_private=True, source_timeout=2, **overrides
    )
    return Rillet(settings)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Rillet]:
    rillet = _app(tmp_path)
    yield rillet
    rillet.close()


@pytest.fixture
def client(app: Rillet) -> Iterator[httpx.Client]:
    with app_client(app) as c:
        yield c


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000)


def _create(client: httpx.Client, origin: FakeOrigin, path: str = "/data.csv") -> str:
    body = {
        "source": {"url": origin.url(path), "headers": {"X-Token": TOKEN}, "every": 60},
        "notify": {"url": origin.url("/hook"), "secret": SECRET},
    }
    created = client.post("/datasets", content=orjson.dumps(body), headers=_JSON)
    assert created.status_code == 202, created.text
    dataset: str = created.json()["dataset"]["id"]
    return dataset


def _run(worker: Worker) -> None:
    while worker.step():
        pass


def _outbox(app: Rillet) -> list[str]:
    return os.listdir(app.settings.data_dir / "outbox")


def _verified(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The event, once its signature is checked as a receiver would check it."""
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Rillet-Signature"], expected)
    assert headers["Content-Type"] == "application/json"
    event: dict[str, Any] = orjson.loads(body)
    return event


def test_each_sync_sends_a_signed_event_after_it_ends(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    worker = Worker(app.settings, in_process=True, now=clock)
    dataset = _create(client, origin)
    job = "job_" + dataset.removeprefix("ds_")
    _run(worker)
    # The sync is done and the event waits in the outbox: the sync never sent it itself.
    assert client.get(f"/jobs/{job}").json()["status"] == "done"
    assert origin.hooks == [] and len(_outbox(app)) == 1
    assert worker.deliver_notifications() == 1
    assert _outbox(app) == []
    headers, body = origin.hooks[0]
    event = {"event": "sync.done", "dataset": dataset, "version": 1, "job": job}
    assert _verified(headers, body) == event

    origin.fail_status = 500  # a failed sync is told too
    clock.advance(60)
    assert worker.schedule_due() == 1
    _run(worker)
    assert worker.deliver_notifications() == 1
    assert _verified(*origin.hooks[1])["event"] == "sync.failed"

    origin.fail_status = None  # and an unchanged one (304): sync.done
    clock.advance(120)
    assert worker.schedule_due() == 1
    _run(worker)
    assert client.get(f"/jobs/{job}").json()["changed"] is False
    assert worker.deliver_notifications() == 1
    assert _verified(*origin.hooks[2]) == event


def test_a_failing_receiver_is_retried_with_backoff_until_it_accepts(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    worker = Worker(app.settings, in_process=True, now=clock)
    _create(client, origin)
    _run(worker)
    origin.hook_statuses = [500, 502]
    assert worker.deliver_notifications() == 0  # 500
    assert worker.deliver_notifications() == 0 and len(origin.hooks) == 1  # not due yet
    clock.advance(2)
    assert worker.deliver_notifications() == 0  # 502
    clock.advance(3)
    assert worker.deliver_notifications() == 0 and len(origin.hooks) == 2  # waits 4 now
    clock.advance(1)
    assert worker.deliver_notifications() == 1
    assert len(origin.hooks) == 3 and _outbox(app) == []
    # Every attempt sent the same bytes, signed the same.
    assert len({(h["X-Rillet-Signature"], b) for h, b in origin.hooks}) == 1
    assert worker.deliver_notifications() == 0 and len(origin.hooks) == 3


def test_an_event_is_given_up_after_its_attempts_and_survives_a_restart_until_then(
    tmp_path: Path, origin: FakeOrigin, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(tmp_path, notify_attempts=2)
    with app_client(app) as client:
        _create(client, origin)
        _run(Worker(app.settings, in_process=True, now=clock))
        origin.hook_statuses = [500] * 5
        with caplog.at_level(logging.DEBUG):
            assert Worker(app.settings, now=clock).deliver_notifications() == 0
            assert len(_outbox(app)) == 1  # kept on disk for the next try
            clock.advance(2)
            restarted = Worker(app.settings, now=clock)  # a new process reads the same outbox
            assert restarted.deliver_notifications() == 0
        assert _outbox(app) == [] and len(origin.hooks) == 2
        assert "given up after 2 attempts" in caplog.text
        assert SECRET not in caplog.text and TOKEN not in caplog.text
    app.close()


def test_a_receiver_on_a_refused_address_is_never_connected(
    tmp_path: Path, origin: FakeOrigin, clock: Clock
) -> None:
    """Allowed when the dataset was made, refused as the notifier connects: never reached."""
    app = _app(tmp_path, notify_attempts=1)
    with app_client(app) as client:
        _create(client, origin)
        _run(Worker(app.settings, in_process=True, now=clock))
    strict = Settings.from_env(
        {}, data_dir=app.settings.data_dir, source_allow_private=False, notify_attempts=1
    )
    assert Worker(strict, now=clock).deliver_notifications() == 0
    assert origin.hooks == [] and _outbox(app) == []
    app.close()


def test_deleting_the_dataset_drops_its_pending_events(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    worker = Worker(app.settings, in_process=True, now=clock)
    dataset = _create(client, origin)
    _run(worker)
    assert client.delete(f"/datasets/{dataset}").status_code == 204
    assert worker.deliver_notifications() == 0
    assert origin.hooks == [] and _outbox(app) == []


def test_the_secrets_are_in_the_0600_file_only(
    app: Rillet,
    client: httpx.Client,
    origin: FakeOrigin,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Worker(app.settings, in_process=True, now=clock)
    with caplog.at_level(logging.DEBUG):
        dataset = _create(client, origin)
        _run(worker)
        origin.hook_statuses = [500]
        worker.deliver_notifications()
        clock.advance(2)
        worker.deliver_notifications()
    data = app.settings.data_dir
    secret_file = data / "secrets" / f"{dataset}.json"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert SECRET in secret_file.read_text()
    shown = [client.get(p).text for p in ("/datasets", f"/datasets/{dataset}", "/openapi.json")]
    stored = [p.read_text() for p in data.rglob("*.json") if p != secret_file]
    sent = [body.decode() for _, body in origin.hooks]
    for text in [*shown, *stored, *sent, caplog.text]:
        assert SECRET not in text and TOKEN not in text


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"event":"sync.done","dataset":"ds_000000000001","version":1,"job":"j"}'
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature("k", body) == f"sha256={expected}"
    assert signature("k", body + b" ") != signature("k", body)


BAD_NOTIFY = [
    ({"url": "ftp://8.8.8.8/hook", "secret": "s"}, "bad_source"),
    ({"url": "http://u:p@8.8.8.8/hook", "secret": "s"}, "bad_source"),
    ({"url": "http://8.8.8.8/hook"}, "bad_source"),
    ({"url": "http://8.8.8.8/hook", "secret": ""}, "bad_source"),
    ({"url": "http://8.8.8.8/hook", "secret": 5}, "bad_source"),
    ({"url": "http://8.8.8.8/hook", "secret": "s" * 1025}, "bad_source"),
    ({"url": "http://8.8.8.8/hook", "secret": "s", "events": ["x"]}, "bad_source"),
    ({"url": 7, "secret": "s"}, "bad_source"),
    ("http://8.8.8.8/hook", "bad_source"),
    ({"url": "http://127.0.0.1/hook", "secret": "s"}, "source_not_allowed"),
    ({"url": "http://[::1]/hook", "secret": "s"}, "source_not_allowed"),
    ({"url": "http://0177.0.0.1/hook", "secret": "s"}, "source_not_allowed"),
    ({"url": "http://169.254.169.254/hook", "secret": "s"}, "source_not_allowed"),
]


@pytest.mark.parametrize(("notify", "code"), BAD_NOTIFY)
def test_a_bad_notify_is_a_400_with_nothing_stored(tmp_path: Path, notify: Any, code: str) -> None:
    app = Rillet(make_settings(tmp_path / "data"))  # the default address rules
    with app_client(app) as client:
        body = {"source": {"url": "http://8.8.8.8/a.csv"}, "notify": notify}
        error = assert_error(
            client.post("/datasets", content=orjson.dumps(body), headers=_JSON), 400, code
        )
    app.close()
    assert "s" * 1025 not in error["message"]
    data = app.settings.data_dir
    assert not os.listdir(data / "jobs") and not any((data / "secrets").glob("*"))


@pytest.mark.integration
def test_through_the_real_server_the_webhook_arrives_and_no_secret_is_logged(
    tmp_path: Path, origin: FakeOrigin
) -> None:
    """The server's own worker thread syncs, its notifier thread sends; sync now works too."""
    running = start_server(
        tmp_path / "data", API_KEYS=f"{WRITE_KEY}:write", SOURCE_ALLOW_PRIVATE="1", RATE_LIMIT="0"
    )
    try:
        with httpx.Client(base_url=running.base_url, headers={"X-API-Key": WRITE_KEY}) as client:
            dataset = _create(client, origin)
            wait_for(lambda: len(origin.hooks) == 1)
            assert _verified(*origin.hooks[0])["event"] == "sync.done"
            assert client.post(f"/datasets/{dataset}/sync").status_code == 202
            wait_for(lambda: len(origin.hooks) == 2)
            job = client.get(f"/jobs/job_{dataset.removeprefix('ds_')}").json()
            assert (job["status"], job["changed"]) == ("done", False)
            source = client.get(f"/datasets/{dataset}").json()["source"]
            assert source["next_sync_at"] is not None and source["failures"] == 0
            answers = client.get("/datasets").text + str(job) + str(source)
    finally:
        output = stop(running.process)
    assert f"/datasets/{dataset}/sync" in output  # the log was captured
    for text in (output, answers):
        assert SECRET not in text and TOKEN not in text


def test_an_event_another_sender_holds_is_left_to_it(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    """Two workers' notifiers (the server's and ``python sync_worker.py``): the one holding an
    event's file sends it; the other passes it by."""
    worker = Worker(app.settings, in_process=True, now=clock)
    _create(client, origin)
    _run(worker)
    (entry,) = _outbox(app)
    fd = os.open(app.settings.data_dir / "outbox" / entry, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a sender holds it
        assert Worker(app.settings, now=clock).deliver_notifications() == 0
        assert origin.hooks == [] and _outbox(app) == [entry]
    finally:
        os.close(fd)
    assert Worker(app.settings, now=clock).deliver_notifications() == 1
    assert len(origin.hooks) == 1
