"""Shared fixtures: an app in-process over httpx's WSGI transport, a real server, a worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import Rillet, wsgi_app
from streaming.settings import Settings
from sync_worker import sync_all

ROOT = Path(__file__).resolve().parent.parent
READ_KEY = "test-read-key"
WRITE_KEY = "test-write-key"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for an in-process app: the test keys, no worker thread, no rate limit."""
    defaults: dict[str, Any] = {
        "api_keys": f"{READ_KEY}:read,{WRITE_KEY}:write",
        "sync_worker": False,
        "page_max": 1000,
        "workers": 1,  # in-process: one app holds the whole rate limit and LLM slots
        "rate_limit": 0,  # test_auth and test_app's rate-limit tests set their own
    }
    return Settings.from_env({}, data_dir=data_dir, **{**defaults, **overrides})


def app_client(rillet: Rillet, key: str | None = WRITE_KEY) -> httpx.Client:
    """A client of the app in-process, the WSGI stack whole as ``python server.py`` serves it
    (gzip, CORS, the access log), over httpx's WSGI transport."""
    headers = {"X-API-Key": key} if key else {}
    return httpx.Client(
        transport=httpx.WSGITransport(app=wsgi_app(rillet)),
        base_url="http://rillet.test",
        headers=headers,
    )


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape: {"error": {"code", "message"}} with a JSON content type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def rillet(settings: Settings) -> Iterator[Rillet]:
    app = Rillet(settings)
    yield app
    app.close()


@pytest.fixture
def client(rillet: Rillet) -> Iterator[httpx.Client]:
    with app_client(rillet) as c:
        yield c


def upload(
    client: httpx.Client, rillet: Rillet, text: str, name: str = "t.csv", **params: str
) -> str:
    """Upload CSV text, sync it by the worker's own step, and return the dataset id."""
    response = client.post(
        "/datasets", params=params, files={"file": (name, text.encode("utf-8"), "text/csv")}
    )
    assert response.status_code == 202, response.text
    sync_all(rillet.settings)
    dataset_id: str = response.json()["dataset"]["id"]
    return dataset_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


class RunningServer:
    def __init__(self, process: subprocess.Popen[str], base_url: str, data_dir: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.data_dir = data_dir


def start_server(data_dir: Path, **env: str) -> RunningServer:
    """Start ``python server.py`` on a free port of 127.0.0.1 and wait until it answers."""
    port = free_port()
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(data_dir),
        "WORKERS": "1",  # one process unless a test asks for more (test_workers.py)
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "server.py")],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stdout.read() if process.stdout else ''}")
        try:
            return httpx.get(base_url + "/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up)
    return RunningServer(process, base_url, data_dir)


def stop(process: subprocess.Popen[str]) -> str:
    """Stop a process (if it still runs) and return what it printed."""
    if process.poll() is None:
        process.terminate()
    try:
        out, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out or ""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path / "data",
        API_KEYS=f"{READ_KEY}:read,{WRITE_KEY}:write",
        MAX_UPLOAD_MB="2",
        RATE_LIMIT="0",
    )
    try:
        yield running
    finally:
        stop(running.process)
