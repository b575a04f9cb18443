"""The worker as its own process: crash safety (SIGKILL mid-sync), recovery, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server import Rillet
from tests.conftest import ROOT, stop, wait_for

pytestmark = pytest.mark.integration

ROWS = 300_000


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    lines = ["id,amount,city,day"]
    lines += [
        f"{i},{i % 997}.25,city {i % 31},2024-{1 + i % 12:02d}-{1 + i % 28:02d}"
        for i in range(ROWS)
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def huge_csv(big_csv: bytes) -> bytes:
    """Three times big_csv's rows (ids repeat): a sync of some seconds, so progress reports
    (every half second) reach the points where the kill test strikes."""
    header, _, body = big_csv.partition(b"\n")
    return header + b"\n" + body * 3


def start_worker(data_dir: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "sync_worker.py")],
        cwd=ROOT,
        env={**os.environ, "DATA_DIR": str(data_dir), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so a test can kill it with its child
    )


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def queue_upload(client: httpx.Client, data: bytes) -> tuple[str, str]:
    body = client.post("/datasets", files={"file": ("big.csv", data)}).json()
    return body["dataset"]["id"], body["job"]["id"]


def syncing(rillet: Rillet, job_id: str, past: float = 0.0) -> bool:
    """Whether the job is running with rows written, past ``past`` of its file."""
    job = rillet.jobs.get(job_id)
    progress = job["progress"]
    return job["status"] == "running" and progress["rows"] > 0 and progress["fraction"] >= past


@pytest.mark.parametrize("past", [0.0, 0.35, 0.65], ids=["start", "middle", "late"])
def test_sigkill_mid_sync_leaves_no_dataset_and_the_restart_finishes_it(
    client: httpx.Client, rillet: Rillet, huge_csv: bytes, past: float
) -> None:
    dataset_id, job_id = queue_upload(client, huge_csv)
    worker = start_worker(rillet.settings.data_dir)
    try:
        wait_for(lambda: syncing(rillet, job_id, past), interval=0.01)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        stop(worker)
    assert rillet.jobs.get(job_id)["status"] == "running"  # as the dead worker left it
    assert client.get(f"/datasets/{dataset_id}").json()["status"] == "running"
    assert client.get(f"/datasets/{dataset_id}/rows").status_code == 409
    assert not rillet.store.dataset_dir(dataset_id).exists()

    restarted = start_worker(rillet.settings.data_dir)
    try:
        wait_for(lambda: rillet.jobs.get(job_id)["status"] in ("done", "failed"), timeout=60)
    finally:
        log = stop(restarted)
    job = rillet.jobs.get(job_id)
    assert job["status"] == "done", log
    assert job["attempts"] == 2
    assert client.get(f"/datasets/{dataset_id}").json()["rows"] == 3 * ROWS
    assert os.listdir(rillet.store.tmp) == []
    assert client.get("/health").json()["jobs"] == {"queued": 0, "running": 0}


@pytest.mark.parametrize(("attempts", "outcome"), [("1", "failed"), ("2", "done")])
def test_a_killed_sync_process_is_retried_until_its_attempts_run_out(
    client: httpx.Client, rillet: Rillet, big_csv: bytes, attempts: str, outcome: str
) -> None:
    dataset_id, job_id = queue_upload(client, big_csv)
    worker = start_worker(rillet.settings.data_dir, SYNC_ATTEMPTS=attempts)
    try:
        wait_for(lambda: syncing(rillet, job_id))
        (child,) = children(worker.pid)
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: rillet.jobs.get(job_id)["status"] in ("done", "failed"), timeout=60)
    finally:
        stop(worker)
    job = rillet.jobs.get(job_id)
    assert job["status"] == outcome
    if outcome == "failed":
        assert job["error"]["code"] == "sync_interrupted"
        assert not rillet.store.dataset_dir(dataset_id).exists()
    else:
        assert client.get(f"/datasets/{dataset_id}").json()["rows"] == ROWS
    assert not rillet.jobs.is_running(job_id)


def test_two_workers_never_take_the_same_job(client: httpx.Client, rillet: Rillet) -> None:
    ids = [queue_upload(client, b"n\n" + b"1\n" * 1000) for _ in range(6)]
    workers = [start_worker(rillet.settings.data_dir) for _ in range(2)]
    try:
        wait_for(lambda: all(rillet.jobs.get(j)["status"] == "done" for _, j in ids), timeout=60)
    finally:
        for w in workers:
            stop(w)
    assert all(rillet.jobs.get(j)["attempts"] == 1 for _, j in ids)


def test_cli_converts_one_file_with_a_progress_bar(tmp_path: Path, big_csv: bytes) -> None:
    source = tmp_path / "big.csv"
    source.write_bytes(big_csv)
    done = subprocess.run(
        [sys.executable, str(ROOT / "sync_worker.py"), str(source), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "100.0%" in done.stderr and f"{ROWS:,} rows" in done.stderr
    lines = (tmp_path / "out" / "rows.ndjson").read_bytes().count(b"\n")
    assert lines == ROWS


def test_cli_reports_a_bad_file_and_exits_nonzero(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_bytes(b"a,b\n1,2\n\xff\xfe,3\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "sync_worker.py"), str(source), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "line 3" in done.stderr and "encoding" in done.stderr


def test_sigterm_stops_the_worker_and_requeues_its_job_without_an_attempt(
    client: httpx.Client, rillet: Rillet, big_csv: bytes
) -> None:
    _, job_id = queue_upload(client, big_csv)
    worker = start_worker(rillet.settings.data_dir)
    try:
        wait_for(lambda: syncing(rillet, job_id))
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
    finally:
        stop(worker)
    job = rillet.jobs.get(job_id)
    assert job["status"] == "queued" and job["attempts"] == 0
    assert client.get("/health").json()["jobs"] == {"queued": 1, "running": 0}


def test_a_sync_killed_after_publishing_is_done_not_retried(
    client: httpx.Client, rillet: Rillet
) -> None:
    from sync_worker import sync_job

    _, job_id = queue_upload(client, b"a\n1\n2\n")
    claim = rillet.jobs.claim()
    assert claim is not None
    rillet.jobs.start(claim)
    sync_job(rillet.settings, job_id)
    rillet.jobs.update(job_id, status="running")  # as if killed before recording 'done'
    rillet.jobs.conclude(claim, attempts=2, why="killed")
    job = rillet.jobs.get(job_id)
    assert job["status"] == "done" and job["attempts"] == 1
    assert client.get("/health").json()["jobs"] == {"queued": 0, "running": 0}
    assert len(client.get("/datasets").json()["datasets"]) == 1


def test_a_sync_process_does_not_load_openssl() -> None:
    """hashlib's OpenSSL is 4 MiB of a sync's RSS; the sync needs no hash of it (the upload's
    SHA-256 is computed by the server)."""
    probe = "import sys, sync_worker; print('_hashlib' in sys.modules, 'httpx' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "False"]
