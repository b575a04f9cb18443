"""The real server: ``python server.py`` under waitress on 127.0.0.1, spoken to over sockets."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import WRITE_KEY, RunningServer, start_server, stop, wait_for

pytestmark = pytest.mark.integration


def api(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"X-API-Key": WRITE_KEY}, timeout=30)


def sync(client: httpx.Client, response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    job_url = response.json()["job"]["url"]
    wait_for(lambda: client.get(job_url).json()["status"] in ("done", "failed"))
    job = client.get(job_url).json()
    assert job["status"] == "done", job
    return str(response.json()["dataset"]["id"])


def test_upload_sync_and_page_over_http(server: RunningServer) -> None:
    with api(server) as client:
        text = "city,temp\n" + "".join(f"c{i},{i / 2}\n" for i in range(5000))
        dataset_id = sync(client, client.post("/datasets", files={"file": ("t.csv", text)}))
        page = client.get(f"/datasets/{dataset_id}/rows", params={"offset": 4998}).json()
        assert page["rows"] == [
            {"city": "c4998", "temp": 2499.0},
            {"city": "c4999", "temp": 2499.5},
        ]
        export = client.get(f"/datasets/{dataset_id}/export").text.splitlines()
        assert len(export) == 5001 and export[0] == "city,temp" and export[-1] == "c4999,2499.5"


def test_chunked_upload_is_streamed_to_disk(server: RunningServer) -> None:
    def body() -> Iterator[bytes]:
        yield b"n\n"
        for start in range(0, 20000, 1000):
            yield "".join(f"{i}\n" for i in range(start, start + 1000)).encode()

    with api(server) as client:
        response = client.post(
            "/datasets",
            params={"name": "chunks"},
            content=body(),
            headers={"Content-Type": "text/csv"},
        )
        dataset_id = sync(client, response)
        assert client.get(f"/datasets/{dataset_id}").json()["rows"] == 20000


def test_upload_over_the_cap_is_a_json_413(server: RunningServer) -> None:
    big = b"n\n" + b"123456789\n" * 300_000  # 3 MB, over MAX_UPLOAD_MB=2
    with api(server) as client:
        response = client.post("/datasets", files={"file": ("big.csv", big)})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
        assert client.get("/health").json()["jobs"] == {"queued": 0, "running": 0}
    assert os.listdir(server.data_dir / "uploads") == []


def test_client_dropping_mid_export_leaves_no_open_file(server: RunningServer) -> None:
    with api(server) as client:
        text = "n,label\n" + "".join(f"{i},l{i}\n" for i in range(150_000))  # under 2 MB
        dataset_id = sync(client, client.post("/datasets", files={"file": ("t.csv", text)}))
        pid = server.process.pid
        fds_before = len(os.listdir(f"/proc/{pid}/fd"))
        for _ in range(5):
            with client.stream("GET", f"/datasets/{dataset_id}/export") as response:
                next(response.iter_bytes())  # read a little, then hang up
        host, port = server.base_url.removeprefix("http://").split(":")
        for _ in range(5):
            raw = socket.create_connection((host, int(port)))
            raw.sendall(
                f"GET /datasets/{dataset_id}/export HTTP/1.1\r\nHost: x\r\n"
                f"X-API-Key: {WRITE_KEY}\r\n\r\n".encode()
            )
            raw.recv(1000)
            raw.close()
        wait_for(lambda: len(os.listdir(f"/proc/{pid}/fd")) <= fds_before, timeout=15)
        assert client.get("/health").status_code == 200


def test_first_start_prints_a_write_key_and_stores_only_its_hash(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data")
    output = stop(running.process)
    keys = re.findall(r"rk_[A-Za-z0-9_-]{20,}", output)
    assert len(keys) == 1
    stored = (tmp_path / "data" / "keys.json").read_text()
    assert keys[0] not in stored and '"scope": "write"' in stored
    again = start_server(tmp_path / "data")
    try:
        assert (
            httpx.get(again.base_url + "/datasets", headers={"X-API-Key": keys[0]}).status_code
            == 200
        )
    finally:
        assert "rk_" not in stop(again.process)  # not printed twice


def test_a_bad_request_never_takes_the_server_down(server: RunningServer) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    for garbage in (
        b"\x00\x01\x02\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
        b"POST /datasets HTTP/1.1\r\nContent-Length: 10\r\n\r\nab",
    ):
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(garbage)
            raw.shutdown(socket.SHUT_WR)
            raw.recv(1000)
    assert httpx.get(server.base_url + "/health").json()["status"] == "ok"


def test_the_served_app_logs_each_request_and_answers_cors(tmp_path: Path) -> None:
    running = start_server(
        tmp_path / "data", API_KEYS=f"{WRITE_KEY}:write", CORS_ORIGINS="https://dash.example.com"
    )
    try:
        response = httpx.get(
            running.base_url + "/datasets",
            headers={"X-API-Key": WRITE_KEY, "Origin": "https://dash.example.com"},
        )
        assert response.headers["access-control-allow-origin"] == "https://dash.example.com"
        preflight = httpx.options(
            running.base_url + "/datasets",
            headers={"Origin": "https://dash.example.com", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 204
    finally:
        output = stop(running.process)
    assert "GET /datasets 200 " in output and "OPTIONS /datasets 204 " in output
    assert WRITE_KEY not in output
