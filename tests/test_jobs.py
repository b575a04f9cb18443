"""The sync queue in-process: two ``Jobs`` on one data directory stand for two workers.

A flock belongs to an open file, not to a process, so two Jobs objects in one process contend
for a job's lock exactly as two worker processes do; closing a claim's descriptor is what a
worker's death does to it. No subprocess, no sleeping.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streaming.jobs import Jobs
from streaming.store import Store
from sync_worker import Worker
from tests.conftest import make_settings


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data")


def queue(jobs: Jobs, text: bytes = b"a\n1\n") -> str:
    ids = jobs.store.new_ids()
    jobs.store.upload_path(ids.job).write_bytes(text)
    source = {"filename": "t.csv", "bytes": len(text), "sha256": "0" * 64}
    jobs.create(ids.job, ids.dataset, "t.csv", source, {"delimiter": None, "encoding": None})
    return ids.job


def test_two_workers_never_claim_one_job(store: Store) -> None:
    one, two = Jobs(store), Jobs(store)
    first, second = queue(one), queue(one)
    a = one.claim()
    b = two.claim()
    assert a is not None and b is not None
    assert {a.job_id, b.job_id} == {first, second}
    assert one.claim() is None and two.claim() is None
    assert one.counts() == {"queued": 0, "running": 2}


def test_the_oldest_job_is_claimed_first_and_a_requeued_one_goes_last(store: Store) -> None:
    jobs = Jobs(store)
    first, second = queue(jobs), queue(jobs)
    claim = jobs.claim()
    assert claim is not None and claim.job_id == first
    jobs.start(claim)
    jobs.requeue(claim)
    assert jobs.get(first)["status"] == "queued" and jobs.get(first)["attempts"] == 0
    order = [jobs.claim(), jobs.claim()]
    assert [c.job_id for c in order if c] == [second, first]


def test_recovery_leaves_a_live_workers_job_alone(store: Store) -> None:
    worker, recoverer = Jobs(store), Jobs(store)
    job = queue(worker)
    claim = worker.claim()
    assert claim is not None
    worker.start(claim)
    assert recoverer.recover(attempts=2) == []
    assert recoverer.lock(job) is None  # not deletable while it runs
    assert worker.get(job)["status"] == "running"


def test_a_dead_workers_job_is_queued_again_then_failed(store: Store) -> None:
    jobs, survivor = Jobs(store), Jobs(store)
    job = queue(jobs)
    for attempt in (1, 2):
        claim = jobs.claim()
        assert claim is not None and claim.job_id == job
        jobs.start(claim)
        (store.tmp / f"{store.dataset_of(job)}.half").mkdir()  # what a dead sync leaves
        claim.release()  # the worker dies: the kernel drops its lock
        assert survivor.recover(attempts=2) == [job]
        assert not any(store.tmp.iterdir())
        record = survivor.get(job)
        if attempt == 1:
            assert record["status"] == "queued" and record["attempts"] == 1
    assert record["status"] == "failed" and record["error"]["code"] == "sync_interrupted"
    assert survivor.counts() == {"queued": 0, "running": 0}
    assert not store.upload_path(job).exists()


def test_a_job_whose_sync_published_is_done_whatever_its_process_did(store: Store) -> None:
    jobs = Jobs(store)
    job = queue(jobs)
    claim = jobs.claim()
    assert claim is not None
    jobs.start(claim)
    (store.datasets / store.dataset_of(job)).mkdir()
    (store.datasets / store.dataset_of(job) / "meta.json").write_text("{}")
    jobs.conclude(claim, attempts=2, why="killed after publishing")
    assert jobs.get(job)["status"] == "done" and jobs.counts() == {"queued": 0, "running": 0}


def test_the_worker_step_syncs_in_process_and_settles(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    worker = Worker(settings, in_process=True)
    job = queue(worker.jobs, b"a,b\n1,x\n2,y\n")
    assert worker.step() is True and worker.step() is False
    record = worker.jobs.get(job)
    assert record["status"] == "done" and record["progress"]["rows"] == 2
    assert worker.store.is_ready(worker.store.dataset_of(job))
    assert not worker.store.upload_path(job).exists()


def test_the_worker_step_records_a_failed_sync(tmp_path: Path) -> None:
    worker = Worker(make_settings(tmp_path / "data"), in_process=True)
    job = queue(worker.jobs, b"a,b\n1,2,3\n")
    assert worker.step() is True
    record = worker.jobs.get(job)
    assert record["status"] == "failed" and record["error"]["code"] == "ragged_row"
    assert worker.jobs.counts() == {"queued": 0, "running": 0}


def test_a_dataset_synced_before_columns_is_given_them_once(tmp_path: Path) -> None:
    worker = Worker(make_settings(tmp_path / "data"), in_process=True)
    job = queue(worker.jobs, b"a,b\n1,x\n2,y\n3,x\n")
    worker.step()
    _, folder = worker.store.resolve(worker.store.dataset_of(job))
    meta = orjson.loads((folder / "meta.json").read_bytes())
    del meta["columns_format"]  # as a dataset synced before columns existed
    (folder / "meta.json").write_bytes(orjson.dumps(meta))
    for name in ("columns.json", "columns.bin"):
        (folder / name).unlink()
    worker.give_columns()
    assert orjson.loads((folder / "meta.json").read_bytes())["columns_format"] == 1
    assert (folder / "columns.bin").exists()
    worker.give_columns()  # once: a second look leaves it alone
