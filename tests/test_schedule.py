"""Sources on a schedule: fetched again when due (conditionally), caught up once after a
restart, backed off after failures, never synced twice at once.

The worker's clock is injected (``Clock``): the tests move time instead of sleeping through
intervals, and run the worker's own steps (``schedule_due``, ``step``) in this process. Every
source is a FakeOrigin on 127.0.0.1, so these apps allow private addresses.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import Rillet
from streaming.schedule import Schedules, backoff, epoch, iso
from sync_worker import Worker
from tests.conftest import ROOT, app_client, assert_error, make_settings
from tests.fake_origin import CSV, ETAG, LAST_MODIFIED, FakeOrigin

TOKEN = "tok-sched-8d2b-secret"
HOUR = 3600


class Clock:
    """A clock the test moves by hand (epoch seconds, whole)."""

    def __init__(self, start: float) -> None:
        self.t = float(int(start))

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def origin() -> Iterator[FakeOrigin]:
    with FakeOrigin(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Rillet]:
    rillet = Rillet(
        make_settings(
            tmp_path / "data", source_allow_private=True, source_timeout=2, max_upload_mb=1
        )
    )
    yield rillet
    rillet.close()


@pytest.fixture
def client(app: Rillet) -> Iterator[httpx.Client]:
    with app_client(app) as c:
        yield c


@pytest.fixture
def clock() -> Clock:
    # Well in the past: times the schedule computes from it are due for a real clock too.
    return Clock(time.time() - 100 * HOUR)


def _worker(app: Rillet, clock: Clock) -> Worker:
    return Worker(app.settings, in_process=True, now=clock)


def _run(worker: Worker) -> int:
    """Run the worker's step until the queue is empty; how many jobs it ran."""
    ran = 0
    while worker.step():
        ran += 1
    return ran


def _create(client: httpx.Client, url: str, **fields: Any) -> dict[str, Any]:
    source = {"url": url, "headers": {"X-Token": TOKEN}, **fields.pop("source", {})}
    body = {"source": source, **fields}
    created = client.post(
        "/datasets", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert created.status_code == 202, created.text
    answer: dict[str, Any] = created.json()
    return answer


def _synced(client: httpx.Client, worker: Worker, url: str, every: int | None) -> str:
    """A source created and synced once; its dataset id."""
    dataset: str = _create(client, url, source={"every": every})["dataset"]["id"]
    assert _run(worker) == 1
    assert _job(client, dataset)["status"] == "done"
    return dataset


def _job(client: httpx.Client, dataset: str) -> dict[str, Any]:
    job: dict[str, Any] = client.get(f"/jobs/job_{dataset.removeprefix('ds_')}").json()
    return job


def _source(client: httpx.Client, dataset: str) -> dict[str, Any]:
    source: dict[str, Any] = client.get(f"/datasets/{dataset}").json()["source"]
    return source


def test_a_source_is_fetched_again_when_due_and_not_before(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    worker = _worker(app, clock)
    dataset = _synced(client, worker, origin.url("/data.csv"), every=HOUR)
    first = _job(client, dataset)
    assert first["changed"] is True
    source = _source(client, dataset)
    assert source["every"] == HOUR and source["failures"] == 0 and source["last_error"] is None
    assert (source["etag"], source["last_modified"]) == (ETAG, LAST_MODIFIED)
    assert source["checked_at"] == iso(clock.t)
    assert source["next_sync_at"] == iso(clock.t + HOUR)
    probe_tag = client.get(f"/datasets/{dataset}").headers["ETag"]
    assert "If-None-Match" not in origin.requests[0][1]  # nothing to keep yet: unconditional

    clock.advance(HOUR - 1)
    assert worker.schedule_due() == 0
    clock.advance(1)
    assert worker.schedule_due() == 1
    assert worker.schedule_due() == 0  # queued already: never a second sync job
    assert _job(client, dataset)["status"] == "queued"
    assert "changed" not in _job(client, dataset)  # said again once the fetch has run
    assert _run(worker) == 1

    job = _job(client, dataset)
    assert (job["status"], job["changed"]) == ("done", False)
    sent = origin.requests[-1][1]
    assert (sent["If-None-Match"], sent["If-Modified-Since"]) == (ETAG, LAST_MODIFIED)
    assert sent["X-Token"] == TOKEN
    source = _source(client, dataset)
    assert source["checked_at"] == iso(clock.t)
    assert source["next_sync_at"] == iso(clock.t + HOUR)
    assert client.get(f"/datasets/{dataset}").headers["ETag"] != probe_tag
    assert client.get(f"/datasets/{dataset}/rows").json()["rows"][0] == {
        "city": "Lyon",
        "visits": 3,
    }
    data = app.settings.data_dir
    assert not os.listdir(data / "uploads") and not os.listdir(data / "running")


def test_a_body_with_the_same_sha256_is_unchanged(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    """An origin without validators: the hash of what it sends decides."""
    worker = _worker(app, clock)
    dataset = _synced(client, worker, origin.url("/open.csv"), every=60)
    clock.advance(60)
    assert worker.schedule_due() == 1 and _run(worker) == 1
    job = _job(client, dataset)
    assert (job["status"], job["changed"]) == ("done", False)
    assert "If-None-Match" not in origin.requests[-1][1]
    assert len(origin.requests) == 2
    assert not os.listdir(app.settings.data_dir / "uploads")
    assert client.get(f"/datasets/{dataset}").json()["source"]["sha256"] == (
        hashlib.sha256(CSV).hexdigest()
    )


def test_a_changed_body_is_synced(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    """A new body at the origin goes to the sync with ``changed: true`` and is served as the
    dataset's next version; the one before stays readable with ``version=1``."""
    worker = _worker(app, clock)
    dataset = _synced(client, worker, origin.url("/data.csv"), every=60)
    new = CSV + b"Paris,13\n"
    origin.change(new)
    clock.advance(60)
    assert worker.schedule_due() == 1 and _run(worker) == 1
    assert origin.requests[-1][1]["If-None-Match"] == ETAG  # asked with the old tag
    job = _job(client, dataset)
    assert (job["status"], job["changed"]) == ("done", True)
    record = orjson.loads((app.settings.data_dir / "jobs" / f"{job['id']}.json").read_bytes())
    assert record["source"]["sha256"] == hashlib.sha256(new).hexdigest()
    assert record["source"]["bytes"] == len(new)
    assert client.get(f"/datasets/{dataset}").json()["version"] == 2
    rows = client.get(f"/datasets/{dataset}/rows").json()["rows"]
    assert rows[-1]["city"] == "Paris" and len(rows) == CSV.count(b"\n")
    before = client.get(f"/datasets/{dataset}/rows", params={"version": 1}).json()["rows"]
    assert before == rows[:-1]
    versions = client.get(f"/datasets/{dataset}/versions").json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    # The next fetch asks with the new tag, and is a 304.
    assert _source(client, dataset)["etag"] == origin.etag
    clock.advance(60)
    assert worker.schedule_due() == 1 and _run(worker) == 1
    assert origin.requests[-1][1]["If-None-Match"] == origin.etag
    assert _job(client, dataset)["changed"] is False


def test_a_restarted_worker_catches_up_once(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    dataset = _synced(client, _worker(app, clock), origin.url("/data.csv"), every=60)
    clock.advance(10 * 60 + 5)  # ten intervals missed while no worker ran
    restarted = _worker(app, clock)
    assert restarted.schedule_due() == 1 and _run(restarted) == 1
    assert restarted.schedule_due() == 0
    assert len(origin.requests) == 2  # once, not ten times
    assert _source(client, dataset)["next_sync_at"] == iso(clock.t + 60)
    # The schedule is on disk, not in a worker: another one reads the same.
    state = Schedules(app.settings.data_dir).get(dataset)
    assert state is not None and epoch(state["next_sync_at"]) == clock.t + 60


def test_failures_back_off_and_metadata_says_so(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    worker = _worker(app, clock)
    dataset = _synced(client, worker, origin.url("/data.csv"), every=60)
    origin.fail_status = 500
    waits = []
    for failures in (1, 2, 3):
        clock.advance(waits[-1] if waits else 60)
        assert worker.schedule_due() == 1 and _run(worker) == 1
        assert _job(client, dataset)["status"] == "failed"
        source = _source(client, dataset)
        assert source["failures"] == failures
        assert source["last_error"]["code"] == "source_failed"
        assert "500" in source["last_error"]["message"]
        wait = epoch(source["next_sync_at"]) - clock.t
        waits.append(wait)
        clock.advance(wait - 1)
        assert worker.schedule_due() == 0  # not a second early
        clock.advance(-(wait - 1))
        # The data synced before stays served through the failures.
        meta = client.get(f"/datasets/{dataset}").json()
        assert meta["status"] == "ready" and meta["rows"] == 3
    assert waits == [120, 240, 480]
    origin.fail_status = None
    clock.advance(waits[-1])
    assert worker.schedule_due() == 1 and _run(worker) == 1
    source = _source(client, dataset)
    assert (source["failures"], source["last_error"]) == (0, None)
    assert source["next_sync_at"] == iso(clock.t + 60)


@pytest.mark.parametrize(
    ("every", "failures", "cap", "wait"),
    [(60, 1, 86400, 120), (60, 10, 86400, 61440), (60, 11, 86400, 86400), (3600, 40, 600, 3600)],
)
def test_backoff_doubles_and_is_capped(every: int, failures: int, cap: int, wait: int) -> None:
    assert backoff(every, failures, cap) == wait


def test_the_backoff_cap_is_a_setting(tmp_path: Path, origin: FakeOrigin, clock: Clock) -> None:
    app = Rillet(
        make_settings(tmp_path / "data", source_allow_private=True, source_backoff_max=150)
    )
    with app_client(app) as client:
        worker = _worker(app, clock)
        dataset = _synced(client, worker, origin.url("/data.csv"), every=60)
        origin.fail_status = 503
        for _ in range(3):
            clock.advance(150)
            assert worker.schedule_due() == 1 and _run(worker) == 1
        source = _source(client, dataset)
        assert source["failures"] == 3
        assert epoch(source["next_sync_at"]) - clock.t == 150
    app.close()


def test_two_workers_never_sync_one_dataset_at_once(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    first = _worker(app, clock)
    dataset = _synced(client, first, origin.url("/data.csv"), every=60)
    clock.advance(60)
    # Eight workers look at once: one queues the sync.
    workers = [_worker(app, clock) for _ in range(8)]
    start = threading.Barrier(len(workers))
    counts: list[int] = []

    def look(worker: Worker) -> None:
        start.wait()
        counts.append(worker.schedule_due())

    threads = [threading.Thread(target=look, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == [0] * 7 + [1]
    # One worker holds the job; nobody else can take it, queue it again, or sync it now.
    claim = workers[0].jobs.claim()
    assert claim is not None
    assert workers[1].jobs.claim() is None and not workers[1].step()
    clock.advance(10 * 60)
    assert workers[2].schedule_due() == 0
    assert_error(client.post(f"/datasets/{dataset}/sync"), 409, "sync_running")
    workers[0].run_claimed(claim)
    assert _job(client, dataset)["status"] == "done"
    assert len(origin.requests) == 2


@pytest.mark.integration
def test_two_worker_processes_queue_a_due_source_once(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    """Two processes on the real clock: the schedule, made on a clock far behind, is due."""
    dataset = _synced(client, _worker(app, clock), origin.url("/data.csv"), every=60)
    script = (
        "import sys, time\n"
        "from streaming.settings import Settings\n"
        "from sync_worker import Worker\n"
        "worker = Worker(Settings.from_env())\n"
        "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
        "print(worker.schedule_due())\n"
    )
    env = {**os.environ, "DATA_DIR": str(app.settings.data_dir)}
    at = str(time.time() + 1.5)  # both start, then look at the same moment
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, at], cwd=ROOT, env=env, stdout=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [int(p.communicate(timeout=30)[0]) for p in processes]
    assert sorted(outputs) == [0, 1]
    assert _job(client, dataset)["status"] == "queued"


def test_sync_now_of_a_scheduled_source_keeps_the_schedule_going(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    worker = _worker(app, clock)
    dataset = _synced(client, worker, origin.url("/data.csv"), every=HOUR)
    clock.advance(600)
    assert client.post(f"/datasets/{dataset}/sync").status_code == 202
    assert worker.schedule_due() == 0 and _run(worker) == 1
    assert _job(client, dataset)["changed"] is False
    assert _source(client, dataset)["next_sync_at"] == iso(clock.t + HOUR)


def test_a_source_without_every_is_never_fetched_on_its_own(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    worker = _worker(app, clock)
    dataset = _synced(client, worker, origin.url("/data.csv"), every=None)
    assert _source(client, dataset)["next_sync_at"] is None
    clock.advance(365 * 24 * HOUR)
    assert worker.schedule_due() == 0
    assert client.delete(f"/datasets/{dataset}").status_code == 204
    assert not (app.settings.data_dir / "schedule" / f"{dataset}.json").exists()
    assert worker.schedule_due() == 0


@given(
    every=st.integers(60, 7 * 24 * HOUR),
    failures=st.integers(1, 200),
    cap=st.integers(1, 30 * 24 * HOUR),
)
def test_backoff_grows_from_twice_every_and_never_passes_its_cap(
    every: int, failures: int, cap: int
) -> None:
    wait = backoff(every, failures, cap)
    assert every <= wait <= max(every, cap)
    assert wait >= min(2 * every, max(every, cap))
    assert backoff(every, failures + 1, cap) >= wait


@settings(max_examples=30, deadline=None)
@given(gaps=st.lists(st.integers(0, 10 * HOUR), min_size=1, max_size=8))
def test_a_schedule_is_due_once_per_sync_however_long_the_gap(
    tmp_path_factory: pytest.TempPathFactory, gaps: list[int]
) -> None:
    """Whatever the clock does between looks, a source is due only once its time has come,
    and a sync that ends puts the next time ``every`` after it: never a backlog."""
    clock = Clock(1_800_000_000)
    schedules = Schedules(tmp_path_factory.mktemp("data"), clock)
    schedules.create("ds_000000000001", 600)
    schedules.succeeded("ds_000000000001", None, None)
    for gap in gaps:
        clock.advance(gap)
        state = schedules.get("ds_000000000001")
        assert state is not None
        due = epoch(state["next_sync_at"]) <= clock.t
        assert schedules.due() == (["ds_000000000001"] if due else [])
        assert schedules.reserve("ds_000000000001") is due
        assert schedules.due() == []  # reserved: nobody queues it again
        if due:
            schedules.succeeded("ds_000000000001", None, None)
            state = schedules.get("ds_000000000001")
            assert state is not None and epoch(state["next_sync_at"]) == clock.t + 600


def test_a_sync_whose_worker_kept_dying_fails_into_the_backoff(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    """Recovery's verdict counts as the sync's end. (A source that has never synced: for one
    that has, recovery takes the published dataset for this job's, which versions change.)"""
    worker = _worker(app, clock)
    origin.fail_status = 500
    dataset = _create(client, origin.url("/data.csv"), source={"every": 60})["dataset"]["id"]
    assert _run(worker) == 1
    assert _source(client, dataset)["failures"] == 1
    origin.fail_status = None
    clock.advance(120)
    assert worker.schedule_due() == 1
    for _ in range(app.settings.sync_attempts):
        claim = worker.jobs.claim()
        assert claim is not None
        worker.jobs.start(claim)
        claim.release()  # its worker died: the kernel drops the lock, the marker stays
        worker.recover()
    assert _job(client, dataset)["error"]["code"] == "sync_interrupted"
    source = _source(client, dataset)
    assert source["failures"] == 2 and source["last_error"]["code"] == "sync_interrupted"
    assert source["next_sync_at"] == iso(clock.t + 240)


def test_a_source_made_before_schedules_were_kept_is_adopted_once_and_due(
    app: Rillet, client: httpx.Client, origin: FakeOrigin, clock: Clock
) -> None:
    """A source created by a server that kept ``every`` in the job record alone (no schedule
    file) gets its schedule when a worker starts, due at once: it catches up, then keeps time.
    Uploads get none."""
    dataset = _synced(client, _worker(app, clock), origin.url("/data.csv"), every=HOUR)
    uploaded = client.post(
        "/datasets", params={"name": "u"}, content=b"a\n1\n", headers={"Content-Type": "text/csv"}
    ).json()["dataset"]["id"]
    _run(_worker(app, clock))
    schedules = app.settings.data_dir / "schedule"
    (schedules / f"{dataset}.json").unlink()  # as the earlier server left it
    started = _worker(app, clock)
    started.recover()
    state = Schedules(app.settings.data_dir).get(dataset)
    assert state is not None and state["every"] == HOUR
    assert state["next_sync_at"] == iso(clock.t)
    assert Schedules(app.settings.data_dir).get(uploaded) is None
    assert started.schedule_due() == 1 and _run(started) == 1
    assert _source(client, dataset)["next_sync_at"] == iso(clock.t + HOUR)
    # Once a process, and never over a schedule that exists.
    assert Schedules(app.settings.data_dir).adopt(dataset, 60) is False
