"""Questions handed among the serving processes (streaming.web.share): to the first one free.

The unit tests run two ``Sharing`` sides in one process on a real shared socket, each with its
own answer, so which side answered shows; the last test serves a real burst with WORKERS=2.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bottle
import httpx
import orjson
import pytest

from server import Rillet
from streaming.web import reads, share
from streaming.web.exchange import Answer, Call
from streaming.web.share import Sharing, route_answer, shared_socket
from tests.conftest import (
    READ_KEY,
    WRITE_KEY,
    app_client,
    make_settings,
    start_server,
    stop,
    upload,
    wait_for,
)

TOKEN = "the parent's token"
CALL = Call("GET", "/datasets/ds_1/groupby", "by=a", {"by": "a"}, {"dataset_id": "ds_1"})


def answered_by(name: str, jobs: list[dict[str, Any]] | None = None) -> Any:
    def answer(job: dict[str, Any]) -> Answer:
        if jobs is not None:
            jobs.append(job)
        return Answer(orjson.dumps({"by": name, "route": job["route"]}), 200, {"X-Side": name})

    return answer


@pytest.fixture
def sides(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sharing, Sharing]]:
    monkeypatch.setattr(share, "HANDOFF_SECONDS", 5.0)  # a loaded CI machine is slow to switch
    monkeypatch.setattr(share, "POLL_SECONDS", 0.05)
    sock = shared_socket()
    assert sock is not None
    # Two processes' sides: each its own descriptor of the one listening socket.
    asker = Sharing(sock.dup(), answered_by("asker"), TOKEN)
    other = Sharing(sock.dup(), answered_by("other"), TOKEN)
    asker.start()
    other.start()
    yield asker, other
    asker.stop()
    other.stop()
    sock.close()


def here() -> Answer:
    """What the asker computes itself."""
    return Answer(orjson.dumps({"by": "here"}), 200, {})


def by(answer: Answer) -> str:
    assert isinstance(answer.body, bytes)
    found: str = orjson.loads(answer.body)["by"]
    return found


def test_an_idle_process_computes_its_own_question(sides: tuple[Sharing, Sharing]) -> None:
    asker, _ = sides
    assert by(asker.run("groupby", CALL, 1, here)) == "here"
    assert asker.asked == 0


def test_a_busy_process_hands_its_question_to_the_idle_one(
    sides: tuple[Sharing, Sharing],
) -> None:
    asker, other = sides
    for _ in range(20):  # counted before the asker reads the answer's last byte
        with asker.computing():
            got = asker.run("groupby", CALL, 7, here)
        assert orjson.loads(got.body) == {"by": "other", "route": "groupby"}  # type: ignore[arg-type]
        assert got.status == 200 and got.headers["X-Side"] == "other"
        assert asker.asked == other.answered
    assert asker.asked == 20


def test_of_requests_at_once_to_an_idle_process_one_computes_the_rest_are_handed_over(
    sides: tuple[Sharing, Sharing],
) -> None:
    """The claim of an idle process is atomic: never two questions computed at once here."""
    asker, other = sides
    inside, most = [0], [0]
    lock = threading.Lock()

    def slow() -> Answer:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
        return here()

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: asker.run("stats", CALL, 1, slow), range(4)))
    assert most[0] == 1
    assert sorted(map(by, answers)).count("here") >= 1 and other.answered >= 1


def test_a_question_waits_for_the_first_process_free(sides: tuple[Sharing, Sharing]) -> None:
    """Both busy: the question is taken by whichever frees first, here the asker itself."""
    asker, other = sides
    with other.computing():  # the other process busy throughout
        found: list[Answer] = []
        with asker.computing():
            worker = threading.Thread(target=lambda: found.append(asker.run("x", CALL, 1, here)))
            worker.start()
            time.sleep(0.1)  # the asker is still busy: nobody may take it yet
            assert not found
        worker.join(5)  # the asker's own computing ended: its helper takes the question
        assert by(found[0]) == "asker"


def test_no_process_free_in_time_means_the_asker_computes(
    sides: tuple[Sharing, Sharing], monkeypatch: pytest.MonkeyPatch
) -> None:
    asker, other = sides
    monkeypatch.setattr(share, "HANDOFF_SECONDS", 0.3)
    with other.computing(), asker.computing():
        started = time.monotonic()
        assert by(asker.run("chart", CALL, 1, here)) == "here"
        assert time.monotonic() - started >= share.HANDOFF_SECONDS * 0.9
    monkeypatch.setattr(share, "HANDOFF_SECONDS", 5.0)
    with asker.computing():  # the helper threw the abandoned question away and serves on
        assert by(asker.run("chart", CALL, 1, here)) == "other"


def test_a_failing_or_erring_answer_leaves_the_question_to_the_asker(
    monkeypatch: pytest.MonkeyPatch, sides: tuple[Sharing, Sharing]
) -> None:
    """A helper that fails, or answers an error (which the asker must raise itself, as
    without sharing, never relay with an ETag), leaves the question to the asker."""
    asker, other = sides
    answers = iter([RuntimeError("boom"), Answer(b'{"by": "x"}', 501, {}), None])

    def failing(job: dict[str, Any]) -> Answer:
        found = next(answers)
        if isinstance(found, Exception):
            raise found
        return found or Answer(orjson.dumps({"by": "other"}), 200, {})

    monkeypatch.setattr(other, "answer", failing)
    with asker.computing():
        assert by(asker.run("groupby", CALL, 1, here)) == "here"
        assert by(asker.run("groupby", CALL, 1, here)) == "here"
        assert by(asker.run("groupby", CALL, 1, here)) == "other"


def test_a_helper_that_dies_mid_answer_leaves_the_question_to_the_asker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(share, "HANDOFF_SECONDS", 2.0)
    sock = shared_socket()
    assert sock is not None
    asker = Sharing(sock.dup(), answered_by("asker"), TOKEN)

    def dying_helper() -> None:  # takes the question, says go, then is gone
        conn, _ = sock.accept()
        with conn:
            share._receive(conn)
            conn.sendall(share._ACK)
            conn.recv(1)

    helper = threading.Thread(target=dying_helper)
    helper.start()
    with asker.computing():
        assert by(asker.run("groupby", CALL, 1, here)) == "here"
    helper.join()
    asker.stop()
    sock.close()


def test_a_refusing_process_takes_no_more_questions(
    sides: tuple[Sharing, Sharing], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Draining, it neither answers nor asks (nor waits for an answer that will not come)."""
    asker, other = sides
    other.refuse()
    asker.refuse()
    time.sleep(0.2)  # the helpers' polls end
    with asker.computing():
        started = time.monotonic()
        assert by(asker.run("groupby", CALL, 1, here)) == "here"
        assert time.monotonic() - started < share.HANDOFF_SECONDS / 2
    assert other.answered == asker.asked == 0


def test_garbage_and_oversized_questions_do_not_stop_the_helper(
    sides: tuple[Sharing, Sharing],
) -> None:
    asker, other = sides
    oversized = share._SIZE.pack(share.JOB_BYTES + 1) + b"{"
    for junk in (b"", b"\x05\x00\x00\x00{nope", b"\xff" * 3, oversized):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(asker.address)
            conn.sendall(junk)
    time.sleep(0.2)
    with asker.computing():
        assert by(asker.run("groupby", CALL, 1, here)) == "other"


def test_a_process_holding_many_descriptors_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process serving many connections holds descriptors past 1024, which select() cannot
    watch: the helper polls."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip("cannot open descriptors past 1024 here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    monkeypatch.setattr(share, "POLL_SECONDS", 0.05)
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        sock = shared_socket()
        assert sock is not None
        asker, other = (
            Sharing(sock.dup(), answered_by("asker"), TOKEN),
            Sharing(sock.dup(), answered_by("other"), TOKEN),
        )
        assert other.sock.fileno() > 1024
        other.start()
        with asker.computing():
            assert by(asker.run("groupby", CALL, 1, here)) == "other"
        other.stop()
        asker.stop()
        sock.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_question_keeps_its_repeated_filters_and_names_its_version() -> None:
    seen: list[Call] = []

    def route(rillet: Any, call: Call) -> Answer:
        seen.append(call)
        return Answer(b"", 200, {})

    params = bottle.FormsDict()
    params.append("a__gt", "1")
    params.append("a__gt", "5")
    params.append("by", "b")
    params.append("version", "9")
    call = Call("GET", "/datasets/x/groupby", "a__gt=1&a__gt=5&by=b", params, {"dataset_id": "x"})
    job = orjson.loads(orjson.dumps(share.job_of("groupby", call, 3)))  # as it crosses
    route_answer(None, {"groupby": route})(job)
    (got,) = seen
    assert [v for k, v in got.params.allitems() if k == "a__gt"] == ["1", "5"]  # type: ignore[attr-defined]
    assert got.params["version"] == "3" and got.params["by"] == "b"
    assert got.args == {"dataset_id": "x"} and got.query_string == call.query_string


def test_only_the_servers_own_processes_are_answered(
    monkeypatch: pytest.MonkeyPatch, sides: tuple[Sharing, Sharing]
) -> None:
    """A question is answered without a key: it must come from a process of this user and
    carry the parent's token. Another process of the same user without it, and a peer of
    another user, are refused."""
    asker, other = sides
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert share._same_user(a)
        monkeypatch.setattr(share.os, "getuid", lambda: 12345)
        assert not share._same_user(a)
    monkeypatch.undo()
    monkeypatch.setattr(share, "HANDOFF_SECONDS", 5.0)
    job = {**share.job_of("groupby", CALL, 1), "token": "a guess"}
    frame = share._SIZE.pack(len(orjson.dumps(job))) + orjson.dumps(job)
    script = (
        "import socket, sys\n"
        "c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        f"c.connect({asker.address!r})\n"
        f"c.sendall({frame!r})\n"
        "c.settimeout(5)\n"
        "sys.stdout.write(repr(c.recv(1)))\n"
    )
    stranger = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert stranger.stdout == "b''"  # closed without an acknowledgement
    assert other.answered == 0 and asker.answered == 0
    with asker.computing():  # the server's own question, with the token, is answered
        assert by(asker.run("groupby", CALL, 1, here)) == "other"


SHARED_PATHS = [
    "/groupby?by=carrier,day&agg=count,mean:price,max:id",
    "/groupby?by=carrier&agg=count,sum:price&price__gt=10&sort=-count&limit=3",
    "/stats?columns=price,day&carrier=c",
    "/stats?carrier__in=a,b&carrier__in=c&price__lt=40",
    "/chart?mark=bar&x=carrier&y=price&aggregate=mean",
    "/chart?mark=line&x=day&y=price&aggregate=sum&carrier=b",
    "/rows?carrier=a&price__lt=50&count=1&limit=3",
    "/rows?sort=-price&limit=5&carrier__in=b,d&format=csv",
    "/rows?price__gte=90&limit=2&format=ndjson",
    "/rows?carrier=zzz&count=1",
    "/groupby?by=nope",
]


def test_an_answer_relayed_from_a_sibling_is_the_one_computed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every shared route, with repeated filters, formats, a cursor, an empty answer and an
    error: handed to a sibling (another Rillet on the same data, its own helper), the client
    gets what it gets when this process computes it, body, status and headers."""
    monkeypatch.setattr(share, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(share, "HANDOFF_SECONDS", 5.0)  # a loaded CI machine is slow to switch
    settings = make_settings(tmp_path / "data")
    here, sibling = Rillet(settings), Rillet(settings)
    sock = shared_socket()
    assert sock is not None
    here.sharing = Sharing(sock.dup(), route_answer(here, reads.SHARED), TOKEN)
    sibling.sharing = Sharing(sock.dup(), route_answer(sibling, reads.SHARED), TOKEN)
    sibling.sharing.start()
    lines = [f"{i},{'abcd'[i % 4]},{i % 97}.5,2024-01-{1 + i % 28:02d}" for i in range(3000)]
    try:
        with app_client(here) as client:
            dataset = upload(client, here, "id,carrier,price,day\n" + "\n".join(lines) + "\n")
            for path in SHARED_PATHS:
                url = f"/datasets/{dataset}{path}"
                computed = client.get(url)
                with here.sharing.computing():  # busy: the question goes to the sibling
                    relayed = client.get(url)
                assert relayed.status_code == computed.status_code, path
                assert relayed.content == computed.content, path
                for name in ("Content-Type", "ETag", "Link", "X-Key-Scope"):
                    assert relayed.headers.get(name) == computed.headers.get(name), (path, name)
    finally:
        sibling.sharing.stop()
        here.sharing.stop()
        sock.close()
    assert sibling.sharing.answered == here.sharing.asked == len(SHARED_PATHS) - 1  # not a 400


@pytest.mark.integration
def test_a_burst_of_questions_on_two_processes_answers_as_one_at_a_time(tmp_path: Path) -> None:
    """Twelve questions at once, each on its own connection: every answer is the one asked
    alone, and the processes handed some of them to each other."""
    running = start_server(
        tmp_path / "data",
        WORKERS="2",
        API_KEYS=f"{READ_KEY}:read,{WRITE_KEY}:write",
        RATE_LIMIT="0",
    )
    try:
        lines = [
            f"{i},{'abcdefgh'[i % 8]},{i % 97}.5,2024-01-{1 + i % 28:02d}" for i in range(60000)
        ]
        body = ("id,carrier,price,day\n" + "\n".join(lines) + "\n").encode()
        with httpx.Client(base_url=running.base_url, headers={"X-API-Key": WRITE_KEY}) as c:
            created = c.post(
                "/datasets",
                params={"name": "s"},
                content=body,
                headers={"Content-Type": "text/csv"},
            )
            job = created.json()["job"]["url"]
            wait_for(lambda: c.get(job).json()["status"] == "done", timeout=60)
            dataset = created.json()["dataset"]["id"]
        paths = [
            f"/datasets/{dataset}/groupby?by=carrier,day&agg=count,mean:price",
            f"/datasets/{dataset}/groupby?by=carrier&agg=count,sum:price&price__gt=10",
            f"/datasets/{dataset}/stats?columns=price&carrier=c",
            f"/datasets/{dataset}/chart?mark=bar&x=carrier&y=price&aggregate=mean",
            f"/datasets/{dataset}/rows?carrier=a&price__lt=50&count=1&limit=3",
            f"/datasets/{dataset}/rows?sort=-price&limit=5&carrier__in=b,d",
        ] * 2
        headers = {"X-API-Key": READ_KEY}
        alone = {p: httpx.get(running.base_url + p, headers=headers) for p in paths}

        def ask(path: str) -> httpx.Response:
            return httpx.get(running.base_url + path, headers=headers, timeout=60)

        handed = 0
        for _ in range(5):
            with ThreadPoolExecutor(len(paths)) as pool:
                burst = list(pool.map(ask, paths))
            for path, got in zip(paths, burst):
                assert got.status_code == 200, got.text
                assert got.json() == alone[path].json()
                assert got.headers["ETag"] == alone[path].headers["ETag"]
            healths = [httpx.get(running.base_url + "/health").json() for _ in range(20)]
            handed = max(h["shared"]["asked"] + h["shared"]["answered"] for h in healths)
            if handed:
                break
        assert handed > 0
    finally:
        log = stop(running.process)
    assert "shared question failed" not in log and "Traceback" not in log
