"""WORKERS processes on one listening socket: each answers, one dying leaves the rest serving."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from streaming.web import workers
from tests.conftest import (
    READ_KEY,
    ROOT,
    WRITE_KEY,
    RunningServer,
    start_server,
    stop,
    wait_for,
)
from tests.fake_groq import Reply
from tests.test_insights import chat_reply, served_with_llm, synced_over_http

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pids(server: RunningServer, tries: int = 200) -> set[int]:
    """The serving processes seen answering /health, each request on a new connection."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(httpx.get(server.base_url + "/health", timeout=10).json()["pid"])
        if len(seen) == 2:
            break
    return seen


@pytest.fixture
def two(tmp_path: Path) -> RunningServer:
    running = start_server(
        tmp_path / "data",
        WORKERS="2",
        API_KEYS=f"{READ_KEY}:read,{WRITE_KEY}:write",
        RATE_LIMIT="0",
    )
    yield running  # type: ignore[misc]
    stop(running.process)


def test_two_processes_answer_and_the_parent_syncs(two: RunningServer) -> None:
    pids = _pids(two)
    assert len(pids) == 2 and two.process.pid not in pids
    assert httpx.get(two.base_url + "/health").json()["workers"] == 2
    with httpx.Client(base_url=two.base_url, headers={"X-API-Key": WRITE_KEY}) as c:
        created = c.post(
            "/datasets",
            params={"name": "t"},
            content=b"a,b\n1,x\n2,y\n",
            headers={"Content-Type": "text/csv"},
        )
        assert created.status_code == 202
        job = created.json()["job"]["url"]
        wait_for(lambda: c.get(job).json()["status"] == "done")
        dataset = created.json()["dataset"]["id"]
        stats = f"{two.base_url}/datasets/{dataset}/stats"
        for _ in range(6):  # a new connection each: whichever process answers, the same data
            got = httpx.get(stats, headers={"X-API-Key": WRITE_KEY}).json()
            assert got["columns"]["a"]["sum"] == 3


def test_a_killed_process_leaves_the_other_serving_and_is_replaced(two: RunningServer) -> None:
    victim, survivor = sorted(_pids(two))
    os.kill(victim, signal.SIGKILL)
    answered = [httpx.get(two.base_url + "/health", timeout=10).status_code for _ in range(20)]
    assert answered == [200] * 20
    replaced = wait_for(lambda: (_pids(two, 50) - {survivor}) - {victim}, timeout=20)
    assert replaced and survivor in _pids(two, 200) | {survivor}


def test_stopping_the_parent_stops_its_processes(two: RunningServer) -> None:
    pids = _pids(two)
    stop(two.process)
    assert not any(_alive(p) for p in pids)


def test_a_parent_killed_outright_takes_its_processes_with_it(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", WORKERS="2", RATE_LIMIT="0")
    pids = _pids(running)
    running.process.kill()
    running.process.wait()
    wait_for(lambda: not any(_alive(p) for p in pids), timeout=10)
    stop(running.process)


def test_a_process_killed_mid_answer_leaves_the_other_serving(tmp_path: Path) -> None:
    gate = threading.Event()  # the model's last words wait: the answer is in flight meanwhile
    with served_with_llm(tmp_path, WORKERS="2") as (groq, http):
        dataset = synced_over_http(http, "t.csv", b"a,b\n1,x\n2,y\n")
        content = chat_reply("All fine here.")
        groq.script(Reply(content=content, pieces=[content[:14], content[14:]], gate=gate))
        chat = f"/datasets/{dataset}/chat"
        headers = {"Accept": "text/event-stream"}
        with http.stream("POST", chat, json={"message": "?"}, headers=headers) as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("event: delta")

            def answering() -> int | None:  # a new connection each time: either process
                health = httpx.get(http.base_url.join("/health"), timeout=10).json()
                return int(health["pid"]) if health["open_streams"] == 1 else None

            victim = wait_for(answering)
            os.kill(victim, signal.SIGKILL)
            with pytest.raises(httpx.HTTPError):
                list(lines)  # the killed process's answer ends short
        gate.set()
        assert [http.get("/health").status_code for _ in range(10)] == [200] * 10
        groq.script(Reply(content=chat_reply("Still here.")))
        assert http.post(chat, json={"message": "?"}).json()["reply"] == "Still here."


def test_processes_that_die_as_they_start_stop_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deploy that breaks the serving processes ends the server (exit 1 from server.py),
    rather than leave clients waiting in a backlog nobody serves."""
    monkeypatch.setattr(workers, "RESTART_PAUSE", 0.01)
    monkeypatch.setattr(workers, "CHECK_SECONDS", 0.01)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    supervisor = workers.Supervisor([sys.executable, "-c", "raise SystemExit(3)"], sock, 2)
    supervisor.run()
    assert supervisor.failed and supervisor.quick_deaths >= workers.GIVE_UP
    assert sock.fileno() == -1  # closed: new connections are refused, not left waiting


def test_a_process_whose_parent_died_while_it_started_exits() -> None:
    """The parent's pid comes from the parent: a child that starts after its death (its
    getppid() already 1) still sees it is gone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    code = (
        "import time; from streaming.web.workers import exit_with_parent; "
        "exit_with_parent(); time.sleep(30)"
    )
    env = {**os.environ, workers.PARENT_PID: str(dead.pid)}
    child = subprocess.run([sys.executable, "-c", code], env=env, timeout=20, cwd=ROOT)
    assert child.returncode == 0
