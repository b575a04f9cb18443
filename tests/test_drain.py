"""SIGTERM lets the answers in flight finish, refuses new connections, and is bounded."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import READ_KEY, WRITE_KEY, RunningServer, start_server, stop, wait_for
from tests.test_insights import synced_over_http

pytestmark = pytest.mark.integration

ROWS = 60_000


def _csv() -> bytes:
    lines = ["n,text"] + [f"{i},{'some words of text ' * 4}{i}" for i in range(ROWS)]
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def _served(tmp_path: Path, **env: str) -> Iterator[tuple[RunningServer, httpx.Client, str]]:
    running = start_server(
        tmp_path / "data", API_KEYS=f"{READ_KEY}:read,{WRITE_KEY}:write", RATE_LIMIT="0", **env
    )
    try:
        with httpx.Client(
            base_url=running.base_url, headers={"X-API-Key": WRITE_KEY}, timeout=30
        ) as http:
            dataset = synced_over_http(http, "big.csv", _csv())
            yield running, http, dataset
    finally:
        stop(running.process)


def _export_after_sigterm(running: RunningServer, dataset: str) -> tuple[bytes, float]:
    """Start an export, read a little of it, SIGTERM the server, then read the rest slowly."""
    with httpx.stream(
        "GET",
        f"{running.base_url}/datasets/{dataset}/export",
        params={"format": "ndjson"},
        headers={"X-API-Key": READ_KEY},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes(16_384)
        body = next(chunks)
        running.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the server has had time to act on the signal
        with pytest.raises(httpx.ConnectError):  # no new connection is taken meanwhile
            httpx.get(running.base_url + "/health", timeout=5)
        for chunk in chunks:
            body += chunk
        finished = time.monotonic()
    return body, finished


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_an_export_in_flight_finish(tmp_path: Path, workers: str) -> None:
    with _served(tmp_path, WORKERS=workers, DRAIN_SECONDS="30") as (running, _, dataset):
        body, finished = _export_after_sigterm(running, dataset)
        lines = body.splitlines()
        assert len(lines) == ROWS
        assert lines[-1].startswith(b'{"n":' + str(ROWS - 1).encode())
        assert running.process.wait(timeout=20) == 0
        assert time.monotonic() - finished < 15  # it stopped once drained, not at the grace's end


def test_an_idle_server_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", DRAIN_SECONDS="60")
    with httpx.Client(base_url=running.base_url) as keep_alive:
        assert keep_alive.get("/health").status_code == 200  # an idle keep-alive connection
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=20) == 0  # far below the 60 s it could wait
    stop(running.process)


def test_a_client_that_stops_reading_cannot_hold_the_stop(tmp_path: Path) -> None:
    with _served(tmp_path, DRAIN_SECONDS="1") as (running, _, dataset):
        with httpx.stream(
            "GET",
            f"{running.base_url}/datasets/{dataset}/export",
            params={"format": "ndjson"},
            # Uncompressed, its 7 MB cannot all wait in the sockets' buffers.
            headers={"X-API-Key": READ_KEY, "Accept-Encoding": "identity"},
            timeout=30,
        ) as response:
            assert response.status_code == 200
            chunks = response.iter_raw(1024)  # kept: a dropped iterator closes the response
            next(chunks)  # then reads no more
            running.process.send_signal(signal.SIGTERM)
            wait_for(lambda: running.process.poll() is not None, timeout=20)
        out = stop(running.process)
        assert "unfinished after 1 s" in out
