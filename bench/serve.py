"""Latency of the server's reads against GET /health, and the server's memory under load.

    python bench/serve.py [--rows 1000000] [--requests 400] [--mixed 10000] [--json FILE]

The script starts the real server (``python server.py``: waitress, the sync worker thread on)
on a free port of 127.0.0.1 with a temporary DATA_DIR and the key ``benchkey:write``, uploads
the generated CSV (bench/make_csv.py, cached in bench/.data/) with ``POST /datasets`` as a raw
``text/csv`` body, polls ``GET /jobs/ID`` until the sync is done, then measures:

1. Latency. For each endpoint, with 1 client and then 16 concurrent clients (threads, each with
   its own keep-alive ``httpx.Client``), a warm-up and then about REQUESTS timed requests;
   median and p95 milliseconds, and requests per second across all clients:

       health      GET /health                                  the baseline: no data touched
       probe       GET /datasets/ID                             metadata, one small file
       first page  GET /datasets/ID/rows?limit=100&offset=0
       last page   GET /datasets/ID/rows?limit=100&offset=ROWS-100
       stats       GET /datasets/ID/stats                       precomputed at sync

   The ratios to read: last page / first page (seek, don't scan: should be about 1), and last
   page, probe and stats over health (what a dataset costs above the bare HTTP round trip).

2. Memory. The server process's VmRSS (from /proc/PID/status) once warmed up and idle, then
   again after MIXED requests from 16 clients (pages at random offsets and limits in JSON and
   CSV, probes, stats, health); the growth should be near zero. The sync runs in a child
   process of the server, so its memory is not in these figures.

3. Compression. A 1,000-row and a 10,000-row page and the full export, each asked plain
   (``Accept-Encoding: identity``) and gzipped: bytes on the wire and the median time to
   receive the whole body (not decoded), as ratios gzip / plain. Sections 1 and 2 ask plain,
   so they compare with figures from before gzip.

4. Whether httpx (imported lazily, only for LLM requests) is loaded in the server, from
   GET /health's ``llm_client_loaded``.

The clients run in this process, so at 16 clients part of each latency is client-side Python
waiting for the GIL; comparing endpoints at the same concurrency cancels most of it.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from common import (
    MIB,
    REPO,
    cached_csv,
    machine,
    print_machine,
    print_table,
    proc_status_mib,
    ratio,
    serving_pids,
    write_json,
)

KEY = "benchkey"
CONCURRENCY = (1, 16)
WARMUP_PER_CLIENT = 10
ROUNDS = 10
MIXED_WARMUP = 2_000
MEMORY_CHECKPOINTS = 4
PAGE = 100
START_TIMEOUT = 30.0
SYNC_TIMEOUT = 600.0


# -- the server under test --


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def pids(self) -> list[int]:
        """The processes that answer requests (WORKERS of them, or the server itself)."""
        return serving_pids(self.process.pid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served_dataset(rows: int, seed: int) -> Iterator[tuple[Server, dict[str, Any], Path]]:
    """The generated CSV uploaded to and synced by a real server in a temporary data directory:
    the server, the dataset's metadata, the data directory."""
    csv_path = cached_csv(rows, seed)
    with tempfile.TemporaryDirectory(prefix="rillet-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        with running_server(data_dir) as server:
            print(f"  uploading {csv_path.name} and syncing ...", file=sys.stderr, flush=True)
            yield server, upload_and_sync(server, csv_path), data_dir


@contextmanager
def running_server(data_dir: Path, **extra: str) -> Iterator[Server]:
    """``python server.py`` on a free port of 127.0.0.1, stopped (SIGTERM) on the way out;
    ``extra`` adds settings to its environment."""
    port = free_port()
    env = {  # a clean environment: settings in the caller's shell do not change the figures
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(data_dir),
        "API_KEYS": f"{KEY}:write",
        "SYNC_WORKER": "on",
        "RATE_LIMIT": "0",  # the load here is the measurement, not abuse
        **extra,
    }
    log = data_dir.parent / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "server.py")],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_until_up(server)
        yield server
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_up(server: Server, path: str = "/health") -> None:
    """Until ``path`` answers 200, or SystemExit if the server exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"the server exited at start:\n{server.log.read_text()}")
        try:
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server did not answer within {START_TIMEOUT:.0f} s")


def client(server: Server, encoding: str = "identity") -> httpx.Client:
    headers = {"X-API-Key": KEY, "Accept-Encoding": encoding}
    return httpx.Client(base_url=server.url, headers=headers, timeout=120)


def upload_and_sync(server: Server, csv_path: Path) -> dict[str, Any]:
    """POST the CSV as a raw text/csv body and wait for its sync; the ready dataset's metadata."""
    with client(server) as c, open(csv_path, "rb") as body:
        started = time.perf_counter()
        response = c.post(
            "/datasets",
            params={"name": csv_path.name},
            content=body,
            headers={"Content-Type": "text/csv"},
        )
        upload_seconds = time.perf_counter() - started
        if response.status_code != 202:
            raise SystemExit(f"upload failed: {response.status_code} {response.text}")
        job_id = response.json()["job"]["id"]
        dataset_id = response.json()["dataset"]["id"]
        wait_for_job(c, job_id)
        sync_seconds = time.perf_counter() - started - upload_seconds
        meta = c.get(f"/datasets/{dataset_id}").json()
    meta["upload_seconds"], meta["sync_seconds"] = upload_seconds, sync_seconds
    return meta


def wait_for_job(c: httpx.Client, job_id: str) -> None:
    deadline = time.monotonic() + SYNC_TIMEOUT
    while time.monotonic() < deadline:
        job = c.get(f"/jobs/{job_id}").json()
        if job["status"] == "done":
            return
        if job["status"] == "failed":
            raise SystemExit(f"the sync failed: {job['error']}")
        time.sleep(0.25)
    raise SystemExit(f"the sync did not finish within {SYNC_TIMEOUT:.0f} s")


# -- clients --


def get(c: httpx.Client, url: str) -> None:
    response = c.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: {response.status_code} {response.text[:300]}")


def run_clients(
    server: Server, urls_per_client: list[list[str]], warmup: int = WARMUP_PER_CLIENT
) -> tuple[list[float], float]:
    """Each client (a thread with its own keep-alive connection) sends its first ``warmup``
    URLs untimed, then all clients GET their URLs at once. Returns each timed request's
    seconds and the wall time of the timed part."""
    clients = len(urls_per_client)
    barrier = threading.Barrier(clients + 1)
    times: list[float] = []  # list.append is atomic under the GIL
    failures: list[BaseException] = []

    def work(urls: list[str]) -> None:
        try:
            with client(server) as c:
                for url in urls[:warmup]:
                    get(c, url)
                barrier.wait()
                for url in urls:
                    started = time.perf_counter()
                    get(c, url)
                    times.append(time.perf_counter() - started)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(urls,)) for urls in urls_per_client]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"a client failed: {failures[0]!r}")
    return times, wall


def summarize(times: list[float], wall: float) -> dict[str, float]:
    return {
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": statistics.quantiles(times, n=20)[-1] * 1000,
        "requests": len(times),
        "req_per_s": len(times) / wall,
    }


def endpoints(dataset_id: str, rows: int) -> dict[str, str]:
    pages = f"/datasets/{dataset_id}/rows?limit={PAGE}&offset="
    return {
        "health": "/health",
        "probe": f"/datasets/{dataset_id}",
        "first page": f"{pages}0",
        "last page": f"{pages}{max(0, rows - PAGE)}",
        "stats": f"/datasets/{dataset_id}/stats",
    }


def measure_latency(server: Server, urls: dict[str, str], requests: int) -> dict[str, Any]:
    """Median, p95 and throughput of each endpoint at each concurrency.

    The requests are sent in ROUNDS rounds that each visit every endpoint in turn, each round
    starting at a different one, so that a drift in the machine's speed (another process, CPU
    frequency) or an order effect is shared by all endpoints rather than landing on one."""
    figures: dict[str, Any] = {}
    for clients in CONCURRENCY:
        print(f"  latency with {clients} client(s) ...", file=sys.stderr, flush=True)
        per_client = max(1, -(-requests // (clients * ROUNDS)))
        times: dict[str, list[float]] = {name: [] for name in urls}
        walls = dict.fromkeys(urls, 0.0)
        names = list(urls)
        for n in range(ROUNDS):
            warmup = WARMUP_PER_CLIENT if n == 0 else 1  # 1: each round opens new connections
            for name in names[n:] + names[:n]:  # each round starts at a different endpoint
                url = urls[name]
                taken, wall = run_clients(server, [[url] * per_client] * clients, warmup)
                times[name] += taken
                walls[name] += wall
        for name, url in urls.items():
            figures[f"{name} x{clients}"] = {
                "endpoint": name,
                "clients": clients,
                "url": url,
                **summarize(times[name], walls[name]),
            }
    return figures


def latency_ratios(figures: dict[str, Any]) -> list[dict[str, Any]]:
    pairs = [
        ("last page", "first page"),
        ("last page", "health"),
        ("probe", "health"),
        ("stats", "health"),
    ]
    out = []
    for clients in CONCURRENCY:
        for top, bottom in pairs:
            a, b = figures[f"{top} x{clients}"], figures[f"{bottom} x{clients}"]
            out.append(
                {
                    "ratio": f"{top} / {bottom}",
                    "clients": clients,
                    "median": ratio(a["median_ms"], b["median_ms"]),
                    "p95": ratio(a["p95_ms"], b["p95_ms"]),
                }
            )
    return out


# -- memory --


MIX = {"json page": 40, "csv page": 15, "probe": 15, "stats": 15, "health": 15}  # weights


def mixed_urls(dataset_id: str, rows: int, count: int, seed: int) -> list[str]:
    """A reproducible mix of the requests a dashboard sends (weights in MIX); pages have a
    random offset and a limit of 10, 100 or 1,000 rows."""
    rng = random.Random(seed)
    base = f"/datasets/{dataset_id}"

    def url(kind: str) -> str:
        if kind.endswith("page"):
            limit = rng.choice((10, 100, 1000))
            offset = rng.randrange(max(1, rows - limit))
            csv = "&format=csv" if kind == "csv page" else ""
            return f"{base}/rows?limit={limit}&offset={offset}{csv}"
        return {"probe": base, "stats": f"{base}/stats", "health": "/health"}[kind]

    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=count)
    return [url(kind) for kind in kinds]


def measure_memory(server: Server, dataset_id: str, rows: int, count: int) -> dict[str, Any]:
    """The server's VmRSS once warmed up and idle, then after each part of ``count`` mixed
    requests from 16 clients. A leak grows at every checkpoint; a warm-up effect does not."""
    clients = max(CONCURRENCY)
    print(f"  {MIXED_WARMUP:,} mixed requests to warm up ...", file=sys.stderr, flush=True)
    warmup = mixed_urls(dataset_id, rows, MIXED_WARMUP, seed=2)
    run_clients(server, [warmup[i::clients] for i in range(clients)], warmup=0)
    idle = settled_rss(server)
    urls = mixed_urls(dataset_id, rows, count, seed=1)
    print(f"  {count:,} mixed requests with {clients} clients ...", file=sys.stderr, flush=True)
    seconds, sent, checkpoints = 0.0, 0, []
    for part in range(MEMORY_CHECKPOINTS):
        chunk = urls[part::MEMORY_CHECKPOINTS]
        _, wall = run_clients(server, [chunk[i::clients] for i in range(clients)], warmup=0)
        seconds, sent = seconds + wall, sent + len(chunk)
        checkpoints.append({"after_requests": sent, **settled_rss(server)})
    after = checkpoints[-1]
    return {
        "requests": count,
        "clients": clients,
        "seconds": seconds,
        "idle_rss_mib": idle["VmRSS"],
        "idle_hwm_mib": idle["VmHWM"],
        "checkpoints": checkpoints,
        "after_rss_mib": after["VmRSS"],
        "growth_mib": after["VmRSS"] - idle["VmRSS"],
        "peak_rss_mib": after["VmHWM"],
    }


def settled_rss(server: Server) -> dict[str, float]:
    """VmRSS and VmHWM of the server once the last responses have gone out."""
    time.sleep(0.5)
    return proc_status_mib(server.pids)


def measure_compression(server: Server, dataset_id: str, repeat: int) -> list[dict[str, Any]]:
    """Each body plain and gzipped: wire bytes and the median seconds to receive it whole."""
    bodies = {
        "1,000-row page": (f"/datasets/{dataset_id}/rows?limit=1000", repeat),
        "10,000-row page": (f"/datasets/{dataset_id}/rows?limit=10000", max(3, repeat // 4)),
        "full export (csv)": (f"/datasets/{dataset_id}/export", 3),
    }
    out = []
    for name, (url, times) in bodies.items():
        figures: dict[str, Any] = {"body": name}
        for encoding in ("identity", "gzip"):
            with client(server, encoding) as c:
                size, seconds = 0, []
                for _ in range(times + 1):  # the first is a warm-up
                    started = time.perf_counter()
                    with c.stream("GET", url) as response:
                        size = sum(len(chunk) for chunk in response.iter_raw())
                    seconds.append(time.perf_counter() - started)
            figures[encoding] = {"bytes": size, "median_ms": statistics.median(seconds[1:]) * 1000}
        plain, packed = figures["identity"], figures["gzip"]
        figures["bytes_ratio"] = ratio(packed["bytes"], plain["bytes"])
        figures["time_ratio"] = ratio(packed["median_ms"], plain["median_ms"])
        out.append(figures)
    return out


def print_compression(rows: list[dict[str, Any]]) -> None:
    print_table(
        ["body", "plain bytes", "gzip bytes", "bytes ratio", "plain ms", "gzip ms", "time ratio"],
        [
            [
                r["body"],
                r["identity"]["bytes"],
                r["gzip"]["bytes"],
                r["bytes_ratio"],
                r["identity"]["median_ms"],
                r["gzip"]["median_ms"],
                r["time_ratio"],
            ]
            for r in rows
        ],
        title="Compression (gzip / plain; loopback, so time is the server's CPU, not the wire)",
    )


def httpx_loaded(server: Server) -> bool | None:
    """Whether the server has imported httpx (GET /health's ``llm_client_loaded``)."""
    with client(server) as c:
        loaded = c.get("/health").json().get("llm_client_loaded")
    return loaded if isinstance(loaded, bool) else None


# -- report --


def print_dataset(meta: dict[str, Any]) -> None:
    size = meta["source"]["bytes"] / MIB
    print(
        f"Dataset: {meta['rows']:,} rows, {size:.1f} MiB CSV; upload "
        f"{meta['upload_seconds']:.2f} s, sync {meta['sync_seconds']:.1f} s "
        f"({meta['rows'] / meta['sync_seconds']:,.0f} rows/s)"
    )


def print_latency(lat: dict[str, Any]) -> None:
    columns = ["endpoint", "clients", "requests", "median_ms", "p95_ms", "req_per_s"]
    print_table(
        ["endpoint", "clients", "requests", "median ms", "p95 ms", "req/s"],
        [[f[c] for c in columns] for f in lat.values()],
        title="Latency (health is the baseline)",
    )
    print_table(
        ["ratio", "clients", "median", "p95"],
        [[r["ratio"], r["clients"], r["median"], r["p95"]] for r in latency_ratios(lat)],
        title="Ratios (last page / first page should be ~1: pages seek, they do not scan)",
    )


def print_memory(memory: dict[str, Any]) -> None:
    idle = memory["idle_rss_mib"]
    rows = [["idle, after warm-up", 0, idle, "", memory["idle_hwm_mib"]]]
    for n, point in enumerate(memory["checkpoints"], start=1):
        growth = f"{point['VmRSS'] - idle:+.1f}"
        rows.append(
            [f"after part {n}", point["after_requests"], point["VmRSS"], growth, point["VmHWM"]]
        )
    print_table(
        ["server process", "requests", "VmRSS MiB", "growth MiB", "VmHWM MiB"],
        rows,
        title=(
            f"Server memory: {memory['requests']:,} mixed requests from {memory['clients']} "
            f"clients in {memory['seconds']:.1f} s"
        ),
    )
    print(
        f"\nserver RSS growth over {memory['requests']:,} requests: {memory['growth_mib']:+.1f} MiB"
    )


def print_httpx(loaded: bool | None) -> None:
    if loaded is None:
        print("\nhttpx loaded: unknown (GET /health has no llm_client_loaded)")
    else:
        print(f"\nhttpx loaded: {'yes' if loaded else 'no'} (from GET /health)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the dataset")
    parser.add_argument(
        "--requests", type=int, default=400, help="timed requests per endpoint and concurrency"
    )
    parser.add_argument("--mixed", type=int, default=10_000, help="mixed requests for memory")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated file")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    context = machine()
    with served_dataset(args.rows, args.seed) as (server, meta, _):
        urls = endpoints(meta["id"], meta["rows"])
        lat = measure_latency(server, urls, args.requests)
        memory = measure_memory(server, meta["id"], meta["rows"], args.mixed)
        compression = measure_compression(server, meta["id"], repeat=20)
        loaded = httpx_loaded(server)
    print_machine(context)
    print_dataset(meta)
    print_latency(lat)
    print_memory(memory)
    print_compression(compression)
    print_httpx(loaded)
    figures = {
        "machine": context,
        "dataset": {
            "rows": meta["rows"],
            "csv_bytes": meta["source"]["bytes"],
            "stored_bytes": meta["bytes"],
            "upload_seconds": meta["upload_seconds"],
            "sync_seconds": meta["sync_seconds"],
        },
        "latency": lat,
        "ratios": latency_ratios(lat),
        "memory": memory,
        "compression": compression,
        "httpx_loaded": loaded,
    }
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
