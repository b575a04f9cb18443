"""A load test: many clients at once for a while, with the server's memory watched throughout.

    python bench/load.py [--seconds 60] [--clients 16] [--rows 200000] [--seed 0] [--json FILE]

The script starts the real server as bench/serve.py does (``python server.py`` on a free port
of 127.0.0.1, a temporary DATA_DIR, a clean environment, RATE_LIMIT=0), uploads the generated
CSV (bench/make_csv.py, cached in bench/.data/) and waits for its sync. Then CLIENTS threads,
each with its own keep-alive ``httpx.Client``, send requests back to back for SECONDS, each
picking the next request at random with the weights in MIX:

    json page       GET /datasets/ID/rows?limit=L&offset=RANDOM          L is 10, 100 or 1,000
    csv page        the same with format=csv
    filtered page   GET /datasets/ID/rows?carrier=C&count=1 or ?price__gt=500&count=1  (a scan)
    next page       the filtered page's ``next`` link, followed once      (a cursor scan)
    stats           GET /datasets/ID/stats                                precomputed at sync
    filtered stats  GET /datasets/ID/stats?carrier=C                      (a scan)
    groupby         GET /datasets/ID/groupby?by=carrier&agg=count,mean:price   (a scan)
    probe           GET /datasets/ID, GET /datasets or /fetch-data?metadata_only=true
    insights        GET /datasets/ID/insights (no LLM: from the statistics and the sample)
    health          GET /health

Beside them one uploader thread sends exactly two small CSVs (5,000 rows, a raw ``text/csv``
body) at a third and two thirds of the run, and polls each job (``job``) until it is done.

Measured: requests and requests/s over the run; p50 and p99 latency (request sent to body
read, so client-side GIL waits with 16 threads are included) overall and per kind; every
answer that is not 2xx, and every transport error, by status (goal: none); the serving
processes' VmRSS (the largest, WORKERS of them) every SAMPLE_EVERY seconds (goal: max - min within
8 MB); and the two jobs' outcome. A short warm-up (WARMUP_SECONDS of the same mix, not
counted) comes first, so that the allocator's first growth is not read as a trend. The
syncs run in a child process of the server, so their memory is not in the RSS series.
Every loop ends at the deadline by itself (a request in flight finishes, within httpx's
60 s timeout); job polling may go on at most JOB_GRACE seconds past it.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from common import MIB, cached_csv, machine, print_machine, print_table, proc_status_mib, write_json
from make_csv import CARRIERS
from serve import Server, client, served_dataset

MIX = {  # weights: mostly cheap reads, as a dashboard sends, with a scan now and then
    "json page": 25,
    "csv page": 10,
    "filtered page": 8,  # always followed by one "next page"
    "stats": 10,
    "filtered stats": 4,
    "groupby": 4,
    "probe": 15,
    "insights": 4,
    "health": 10,
}
KINDS = [*MIX, "next page", "upload", "job"]
PAGE_LIMITS = (10, 100, 1000)
GROUPBY = "by=carrier&agg=count,mean:price"
UPLOAD_ROWS = 5_000
UPLOADS = 2
SAMPLE_EVERY = 5.0
WARMUP_SECONDS = 5.0
JOB_POLL = 0.25
JOB_GRACE = 60.0
MEMORY_GOAL_MIB = 8e6 / MIB  # the "8 MB"


@dataclass
class Log:
    """What one thread saw: (kind, seconds, status) per request; status is the HTTP status or
    the name of a transport error. One per thread, merged at the end, so no locks."""

    requests: list[tuple[str, float, int | str]] = field(default_factory=list)

    def send(
        self, c: httpx.Client, kind: str, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        """Send and time one request; the response, or None after a transport error."""
        started = time.perf_counter()
        try:
            response = c.request(method, url, **kw)
        except httpx.TransportError as exc:
            self.requests.append((kind, time.perf_counter() - started, type(exc).__name__))
            return None
        self.requests.append((kind, time.perf_counter() - started, response.status_code))
        return response


# -- the clients --


def random_url(rng: random.Random, kind: str, dataset_id: str, rows: int) -> str:
    """The URL of one request of ``kind`` (any in MIX but "next page")."""
    base = f"/datasets/{dataset_id}"
    carrier = rng.choice(CARRIERS)
    if kind in ("json page", "csv page"):
        limit = rng.choice(PAGE_LIMITS)
        csv = "&format=csv" if kind == "csv page" else ""
        return f"{base}/rows?limit={limit}&offset={rng.randrange(max(1, rows - limit))}{csv}"
    if kind == "filtered page":
        where = rng.choice((f"carrier={carrier}", "price__gt=500"))
        return f"{base}/rows?{where}&count=1&limit=100"
    if kind == "probe":
        return rng.choice((base, "/datasets", "/fetch-data?metadata_only=true"))
    return {
        "stats": f"{base}/stats",
        "filtered stats": f"{base}/stats?carrier={carrier}",
        "groupby": f"{base}/groupby?{GROUPBY}",
        "insights": f"{base}/insights",
        "health": "/health",
    }[kind]


def drive(server: Server, meta: dict[str, Any], seed: int, deadline: float, log: Log) -> None:
    """One client: random requests from MIX, back to back, until the deadline."""
    rng = random.Random(seed)
    kinds, weights = list(MIX), list(MIX.values())
    with client(server) as c:
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            response = log.send(c, kind, "GET", random_url(rng, kind, meta["id"], meta["rows"]))
            if kind == "filtered page":
                follow_next(c, response, log)


def follow_next(c: httpx.Client, response: httpx.Response | None, log: Log) -> None:
    """GET a page's ``next`` link, once, if it has one."""
    if response is not None and response.status_code == 200 and response.json()["next"]:
        log.send(c, "next page", "GET", response.json()["next"])


# -- the uploader --


def upload_twice(
    server: Server,
    paths: list[Path],
    start: float,
    deadline: float,
    log: Log,
    out: list[dict[str, Any]],
) -> None:
    """Upload each file at an even share of the run, and follow its job until it ends."""
    with client(server) as c:
        for n, path in enumerate(paths, start=1):
            wait_until(start + (deadline - start) * n / (len(paths) + 1))
            out.append(upload_one(c, path, deadline + JOB_GRACE, log))


def upload_one(c: httpx.Client, path: Path, give_up: float, log: Log) -> dict[str, Any]:
    """POST the CSV as a raw text/csv body, then poll its job; the job's outcome."""
    sent = time.monotonic()
    with open(path, "rb") as body:
        response = log.send(
            c,
            "upload",
            "POST",
            "/datasets",
            params={"name": path.name},
            content=body,
            headers={"Content-Type": "text/csv"},
        )
    if response is None or response.status_code != 202:
        return {"file": path.name, "status": "upload failed", "rows": None, "seconds": None}
    job_url = response.json()["job"]["url"]
    while time.monotonic() < give_up:
        job = log.send(c, "job", "GET", job_url)
        record = job.json() if job is not None and job.status_code == 200 else {}
        if record.get("status") in ("done", "failed"):
            return {
                "file": path.name,
                "status": record["status"],
                "rows": record.get("progress", {}).get("rows"),
                "error": record.get("error"),
                "seconds": time.monotonic() - sent,
            }
        time.sleep(JOB_POLL)
    return {"file": path.name, "status": "unfinished", "rows": None, "seconds": None}


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


# -- memory --


def sample_rss(server: Server, start: float, deadline: float, out: list[dict[str, float]]) -> None:
    """The server's VmRSS every SAMPLE_EVERY seconds from ``start`` to ``deadline``."""
    moment = start
    while moment <= deadline:
        wait_until(moment)
        out.append({"t": time.monotonic() - start, **proc_status_mib(server.pids)})
        moment += SAMPLE_EVERY


# -- the run --


def run(server: Server, meta: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """A warm-up, then the clients, the uploader and the sampler, all until the deadline."""
    uploads = [cached_csv(UPLOAD_ROWS, seed=args.seed + n) for n in range(1, UPLOADS + 1)]
    idle = proc_status_mib(server.pids)
    print(f"  warming up for {WARMUP_SECONDS:.0f} s ...", file=sys.stderr, flush=True)
    warmup_logs = [Log() for _ in range(args.clients)]
    run_threads(clients(server, meta, time.monotonic() + WARMUP_SECONDS, -1, warmup_logs))

    print(f"  {args.clients} clients for {args.seconds:.0f} s ...", file=sys.stderr, flush=True)
    logs = [Log() for _ in range(args.clients + 1)]  # the last one is the uploader's
    outcomes: list[dict[str, Any]] = []
    samples: list[dict[str, float]] = []
    start = time.monotonic()
    deadline = start + args.seconds
    run_threads(
        [
            *clients(server, meta, deadline, args.seed, logs[:-1]),
            lambda: upload_twice(server, uploads, start, deadline, logs[-1], outcomes),
            lambda: sample_rss(server, start, deadline, samples),
        ]
    )
    return {
        "idle": idle,
        "wall": time.monotonic() - start,
        "records": [r for log in logs for r in log.requests],
        "uploads": outcomes,
        "samples": samples,
        "final": proc_status_mib(server.pids),
    }


def clients(
    server: Server, meta: dict[str, Any], deadline: float, seed: int, logs: list[Log]
) -> list[Callable[[], None]]:
    """One client per log, each with a seed of its own."""
    return [
        functools.partial(drive, server, meta, seed * 1000 + n, deadline, log)
        for n, log in enumerate(logs)
    ]


def run_threads(targets: list[Callable[[], None]]) -> None:
    """Run each target in a thread of its own and wait for them all. An exception in one is a
    bug in the bench (the server's errors are logged, not raised) and stops the run."""
    failures: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"a bench thread failed: {failures[0]!r}")


# -- figures --


def latency(seconds: list[float]) -> dict[str, Any]:
    """Requests, p50, p99 and max in milliseconds, of at least one request."""
    ms = sorted(s * 1000 for s in seconds)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[-1] if len(ms) > 1 else ms[0]
    return {"requests": len(ms), "p50_ms": statistics.median(ms), "p99_ms": p99, "max_ms": ms[-1]}


def figures(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The run's figures: throughput, latency per kind, errors, uploads and memory."""
    records = result["records"]
    by_kind = {kind: [s for k, s, _ in records if k == kind] for kind in KINDS}
    errors = Counter((str(status), kind) for kind, _, status in records if not is_2xx(status))
    rss = [s["VmRSS"] for s in result["samples"]]
    return {
        "run": {
            "clients": args.clients,
            "seconds": result["wall"],
            "requests": len(records),
            "req_per_s": len(records) / result["wall"],
        },
        "latency": {"all": latency([s for _, s, _ in records])}
        | {kind: latency(times) for kind, times in by_kind.items() if times},
        "errors": [
            {"status": status, "kind": kind, "count": n}
            for (status, kind), n in sorted(errors.items())
        ],
        "uploads": result["uploads"],
        "memory": {
            "idle_before_warmup_mib": result["idle"]["VmRSS"],
            "samples": result["samples"],
            "spread_mib": max(rss) - min(rss),
            "goal_mib": MEMORY_GOAL_MIB,
            "goal_met": max(rss) - min(rss) <= MEMORY_GOAL_MIB,
            "peak_hwm_mib": result["final"]["VmHWM"],
        },
    }


def is_2xx(status: int | str) -> bool:
    return isinstance(status, int) and 200 <= status < 300


# -- report --


def print_run(fig: dict[str, Any], meta: dict[str, Any]) -> None:
    run_ = fig["run"]
    print(
        f"Dataset: {meta['rows']:,} rows, sync {meta['sync_seconds']:.1f} s. Load: "
        f"{run_['clients']} clients for {run_['seconds']:.1f} s: {run_['requests']:,} "
        f"requests, {run_['req_per_s']:,.1f} requests/s"
    )


def print_latency(fig: dict[str, Any]) -> None:
    rows = [
        [kind, f["requests"], f["p50_ms"], f["p99_ms"], f["max_ms"]]
        for kind, f in fig["latency"].items()
    ]
    print_table(["kind", "requests", "p50 ms", "p99 ms", "max ms"], rows, title="Latency")


def print_errors(fig: dict[str, Any]) -> None:
    if not fig["errors"]:
        print("\nErrors: none (every answer 2xx; goal 0)")
        return
    rows = [[e["status"], e["kind"], e["count"]] for e in fig["errors"]]
    total = sum(e["count"] for e in fig["errors"])
    print_table(["status", "kind", "count"], rows, title=f"Errors: {total:,} (goal 0)")


def print_uploads(fig: dict[str, Any]) -> None:
    rows = [[u["file"], u["status"], u.get("rows"), u["seconds"]] for u in fig["uploads"]]
    print_table(["upload", "job", "rows", "seconds to done"], rows, title="Uploads during the run")
    if len(fig["uploads"]) != UPLOADS or any(u["status"] != "done" for u in fig["uploads"]):
        print(f"NOT as expected: {UPLOADS} uploads whose jobs are all done")


def print_memory(fig: dict[str, Any]) -> None:
    memory = fig["memory"]
    first = memory["samples"][0]["VmRSS"]
    rows = [[f"{s['t']:.0f}", s["VmRSS"], f"{s['VmRSS'] - first:+.1f}"] for s in memory["samples"]]
    print_table(
        ["t s", "VmRSS MiB", "vs t=0"],
        rows,
        title=(
            f"Server memory every {SAMPLE_EVERY:.0f} s "
            f"(idle before warm-up: {memory['idle_before_warmup_mib']:.1f} MiB)"
        ),
    )
    verdict = "met" if memory["goal_met"] else "NOT met"
    print(
        f"\nserver RSS max - min over the run: {memory['spread_mib']:.1f} MiB "
        f"(goal: within {memory['goal_mib']:.2f} MiB = 8 MB: {verdict}); "
        f"peak VmHWM {memory['peak_hwm_mib']:.1f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the dataset")
    parser.add_argument("--seed", type=int, default=0, help="seed of the files and the mix")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    context = machine()
    with served_dataset(args.rows, args.seed) as (server, meta, _):
        result = run(server, meta, args)
    fig = figures(result, args)
    print_machine(context)
    print_run(fig, meta)
    print_latency(fig)
    print_errors(fig)
    print_uploads(fig)
    print_memory(fig)
    dataset = {"rows": meta["rows"], "csv_bytes": meta["source"]["bytes"]}
    write_json(args.json, {"machine": context, "dataset": dataset, **fig})
    return 0


if __name__ == "__main__":
    sys.exit(main())
