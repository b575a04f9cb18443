"""The web page's server side: GET / and /static/ (no key, CSP, caching, no way out of the
directory), and a job's progress as server-sent events (tests/test_browser.py drives the page)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from server import Rillet
from streaming.web import datasets, page
from streaming.web.exchange import Call
from sync_worker import sync_all
from tests.conftest import (
    READ_KEY,
    WRITE_KEY,
    app_client,
    assert_error,
    start_server,
    stop,
    wait_for,
)

# --- the page and its files ---------------------------------------------------------------


def test_the_page_is_served_without_a_key_with_a_strict_policy(rillet: Rillet) -> None:
    with app_client(rillet, key=None) as bare:
        got = bare.get("/")
    assert got.status_code == 200
    assert got.headers["content-type"] == "text/html; charset=utf-8"
    policy = got.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    scripts = re.search(r"script-src ([^;]*)", policy)
    assert scripts and scripts.group(1) == "'self'"  # the render extra is installed in tests
    assert "unsafe" not in policy
    # No inline script: every <script> names a file of this release under /static/.
    tags = re.findall(r"<script[^>]*>(.*?)</script>", got.text, re.S)
    assert tags == [""]
    assert re.search(r'<script type="module" src="/static/v-[0-9a-f]{16}/app\.js">', got.text)
    assert bare_304(rillet, "/", got.headers["etag"])


def bare_304(rillet: Rillet, path: str, etag: str) -> bool:
    with app_client(rillet, key=None) as bare:
        return bare.get(path, headers={"If-None-Match": etag}).status_code == 304


def test_versioned_files_are_kept_a_year_and_plain_names_revalidate(rillet: Rillet) -> None:
    version = page.version()
    with app_client(rillet, key=None) as bare:
        kept = bare.get(f"/static/{version}/app.js")
        plain = bare.get("/static/app.js")
        old = bare.get("/static/v-0000000000000000/app.js")
        css = bare.get("/static/app.css")
    assert kept.status_code == plain.status_code == old.status_code == 200
    assert kept.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert plain.headers["cache-control"] == old.headers["cache-control"] == "no-cache"
    assert kept.headers["content-type"].startswith("text/javascript")
    assert css.headers["content-type"].startswith("text/css")
    assert kept.content == plain.content == (page.STATIC / "app.js").read_bytes()
    assert bare_304(rillet, "/static/app.js", plain.headers["etag"])


@pytest.mark.parametrize(
    "path",
    [
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2Fpage.py",
        "/static/v-1/../../page.py",
        "/static/page.py",
        "/static//etc/passwd",
        "/static/nope.js",
        "/static/",
    ],
)
def test_nothing_but_the_pages_files_is_served(rillet: Rillet, path: str) -> None:
    with app_client(rillet, key=None) as bare:
        got = bare.get(path)
    assert got.status_code == 404
    assert b"import" not in got.content and b"root:" not in got.content


def test_vega_embed_is_served_from_the_render_extra(rillet: Rillet) -> None:
    with app_client(rillet, key=None) as bare:
        got = bare.get(f"/static/{page.version()}/vega-embed.js")
    assert got.status_code == 200
    assert b"window.vegaEmbed" in got.content and len(got.content) > 500_000
    assert page.CDN.encode() not in got.content


def test_without_the_render_extra_vega_embed_comes_from_its_cdn(
    monkeypatch: pytest.MonkeyPatch, rillet: Rillet
) -> None:
    for cached in (page.bundled_vega, page.assets, page.version):
        cached.cache_clear()
    monkeypatch.setattr(page, "bundled_vega", lambda: False)
    try:
        with app_client(rillet, key=None) as bare:
            module = bare.get("/static/vega-embed.js")
            policy = bare.get("/").headers["content-security-policy"]
        assert module.status_code == 200 and page.CDN.encode() in module.content
        assert f"script-src 'self' {page.CDN};" in policy
    finally:
        for cached in (page.assets, page.version):
            cached.cache_clear()


def test_every_answer_to_a_key_says_its_scope(rillet: Rillet) -> None:
    """The page learns what a key may do from GET /datasets, trying nothing."""
    with app_client(rillet, key=READ_KEY) as reader, app_client(rillet, key=WRITE_KEY) as writer:
        assert reader.get("/datasets").headers["X-Key-Scope"] == "read"
        assert writer.get("/datasets").headers["X-Key-Scope"] == "write"
        refused = reader.post("/datasets")
        assert_error(refused, 403)  # a read key still cannot upload, and is told what it is
        assert refused.headers["X-Key-Scope"] == "read"
    with app_client(rillet, key=None) as bare:
        assert "X-Key-Scope" not in bare.get("/health").headers
        assert "X-Key-Scope" not in bare.get("/datasets").headers  # no key, no scope


# --- a job's progress as server-sent events -----------------------------------------------


def parse(chunks: bytes) -> list[tuple[str, dict[str, object]]]:
    found = []
    for block in chunks.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if line[:1] != ":")
        if "event" in lines:
            found.append((lines["event"], orjson.loads(lines["data"])))
    return found


def events_of(rillet: Rillet, job_id: str) -> Iterator[bytes]:
    call = Call(
        "GET", f"/jobs/{job_id}", "", {}, {"job_id": job_id}, {"Accept": "text/event-stream"}
    )
    answer = datasets.job(rillet, call)
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    return iter(answer.body)  # type: ignore[arg-type]


def queued(client: httpx.Client, text: str = "a,b\n1,2\n3,4\n", **params: str) -> str:
    created = client.post(
        "/datasets", params=params, files={"file": ("t.csv", text.encode(), "text/csv")}
    )
    assert created.status_code == 202
    job_id: str = created.json()["job"]["id"]
    return job_id


@pytest.fixture
def fast_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "POLL_SECONDS", 0.01)


def test_job_events_show_progress_while_it_runs_then_one_done_then_the_end(
    client: httpx.Client, rillet: Rillet, fast_poll: None
) -> None:
    job_id = queued(client)
    stream = events_of(rillet, job_id)
    assert parse(next(stream)) == [("progress", client.get(f"/jobs/{job_id}").json())]
    assert rillet.streams.taken == 1
    progress = {"bytes_read": 4, "bytes_total": 12, "rows": 1, "fraction": 0.33}
    rillet.jobs.update(job_id, status="running", progress=progress)
    [(name, running)] = parse(next(stream))
    assert name == "progress" and running["status"] == "running"
    assert running["progress"] == progress
    sync_all(rillet.settings)
    rest = parse(b"".join(stream))  # the stream ends by itself
    assert [name for name, _ in rest] == ["done"]
    assert rest[0][1]["status"] == "done" and rest[0][1]["progress"]["rows"] == 2
    assert rillet.streams.taken == 0


def test_a_failed_sync_ends_the_stream_with_failed_and_its_line(
    client: httpx.Client, rillet: Rillet, fast_poll: None
) -> None:
    job_id = queued(client, "a,b\n1,2\nx,4\n", types="a:integer")
    stream = events_of(rillet, job_id)
    next(stream)
    sync_all(rillet.settings)
    [(name, job)] = parse(b"".join(stream))
    assert name == "failed"
    assert job["error"]["code"] == "type_mismatch" and job["error"]["line"] == 3  # type: ignore[index]
    assert rillet.streams.taken == 0


def test_a_finished_job_answers_one_event_and_ends(client: httpx.Client, rillet: Rillet) -> None:
    job_id = queued(client)
    sync_all(rillet.settings)
    got = client.get(f"/jobs/{job_id}", headers={"Accept": "text/event-stream"})
    assert got.headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in got.headers
    assert [name for name, _ in parse(got.content)] == ["done"]


def test_a_client_that_leaves_mid_stream_frees_its_slot(
    client: httpx.Client, rillet: Rillet
) -> None:
    job_id = queued(client)
    stream = events_of(rillet, job_id)
    next(stream)
    assert rillet.streams.taken == 1
    stream.close()  # what waitress does when the client goes away  # type: ignore[attr-defined]
    assert rillet.streams.taken == 0


def test_job_events_need_a_read_key_and_a_slot(client: httpx.Client, rillet: Rillet) -> None:
    job_id = queued(client)
    with app_client(rillet, key=None) as bare:
        assert (
            bare.get(f"/jobs/{job_id}", headers={"Accept": "text/event-stream"}).status_code == 401
        )
    held = [rillet.streams.take() for _ in range(rillet.settings.streams_max)]
    try:
        busy = client.get(f"/jobs/{job_id}", headers={"Accept": "text/event-stream"})
        assert busy.status_code == 429 and busy.json()["error"]["code"] == "too_many_streams"
    finally:
        for release in held:
            release()


@pytest.mark.integration
def test_job_events_over_the_real_server_and_a_leaving_client_frees_its_slot(
    tmp_path: Path,
) -> None:
    """With the worker off the job waits in the queue: the stream says so and keeps the
    connection tested, so a client that leaves is noticed within seconds."""
    running = start_server(
        tmp_path / "data", API_KEYS=f"{WRITE_KEY}:write", RATE_LIMIT="0", SYNC_WORKER="off"
    )
    try:
        with httpx.Client(base_url=running.base_url, headers={"X-API-Key": WRITE_KEY}) as http:
            job_id = queued(http)
            sse = {"Accept": "text/event-stream"}
            with http.stream("GET", f"/jobs/{job_id}", headers=sse) as response:
                first = next(response.iter_lines())
                assert first == "event: progress"
                assert http.get("/health").json()["open_streams"] == 1
            wait_for(lambda: http.get("/health").json()["open_streams"] == 0, timeout=10)
            done = threading.Event()

            def sync() -> None:
                done.wait(5)
                from sync_worker import sync_all as run
                from tests.conftest import make_settings

                run(make_settings(tmp_path / "data"))

            worker = threading.Thread(target=sync)
            worker.start()
            with http.stream("GET", f"/jobs/{job_id}", headers=sse) as response:
                lines = response.iter_lines()
                assert next(lines) == "event: progress"
                done.set()
                rest = "\n".join(lines)  # ends when the job is done
            worker.join()
            assert (
                rest.count("event: done") == 1
                and "event: progress" not in rest.split("event: done")[1]
            )
            wait_for(lambda: http.get("/health").json()["open_streams"] == 0, timeout=5)
    finally:
        output = stop(running.process)
    assert "Traceback" not in output
