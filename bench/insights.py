"""What insights cost: building the LLM's profile, and the insights routes, by dataset size.

    python bench/insights.py [--rows 10000,100000,1000000] [--repeat 30] [--json FILE]

For each size, the generated CSV (bench/make_csv.py) is uploaded to and synced by the real
server (``python server.py`` on 127.0.0.1, temporary DATA_DIR), then:

1. In this process, on the synced dataset: the time to build the profile the LLM is sent
   (``charts.profile.profile``: meta.json, stats.json and the 1,000-row sample; no rows), and
   the statistics-only findings (``charts.findings``), best and median of REPEAT. The baseline,
   measured in the same run, is what reading the rows would cost: one pass of ``orjson.loads``
   over rows.ndjson. The profile holds facts of a few group-bys over all rows (trends, means
   by category: ``charts.patterns``), which stop at 0.6 s and fall back to the sample; the
   goal: the profile, and so /insights without an LLM, in under 1 s at any size.
2. Over HTTP, with 1 client: ``GET /health`` (the baseline, median of REPEAT) and
   ``GET /datasets/ID/insights`` without an LLM (the statistics-only answer): the first
   request, which computes it (a miss), then the median of REPEAT more, answered from the
   cache it is kept in per version (hits).
3. With a local Groq look-alike (tests/fake_groq.py, answering at once) set as GROQ_BASE_URL:
   the first LLM insights request (a cache miss: profile, one call) and the next (a hit), and
   the size of what was sent to the model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from common import REPO, cached_csv, machine, print_machine, print_table, ratio, write_json
from serve import KEY, running_server, upload_and_sync

sys.path.insert(0, str(REPO))

from charts.findings import findings  # noqa: E402
from charts.profile import BUDGET, profile, survey  # noqa: E402
from streaming.read import Dataset  # noqa: E402
from streaming.store import Store  # noqa: E402
from tests.fake_groq import FakeGroq  # noqa: E402

GOAL_MS = 1000.0
ANSWER = orjson.dumps(
    {"insights": [{"title": "A finding", "detail": "With numbers: 42.", "columns": []}]}
).decode()


def timed(work: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Best and median milliseconds of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return {"best_ms": min(times), "median_ms": statistics.median(times)}


def read_rows(dataset: Dataset) -> None:
    """The baseline: decode every stored row once, as a profile that read the rows would."""
    with open(dataset.folder / "rows.ndjson", "rb") as f:
        for line in f:
            orjson.loads(line)


def http_median(client: httpx.Client, path: str, repeat: int) -> float:
    for _ in range(3):
        client.get(path)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(times)


def engine(data_dir: Path, dataset_id: str, repeat: int) -> dict[str, Any]:
    with Dataset(Store(data_dir), dataset_id) as dataset:
        built = profile(dataset)
        return {
            "profile": timed(lambda: profile(dataset), repeat),
            "findings": timed(lambda: findings(survey(dataset)), repeat),
            "read_rows": timed(lambda: read_rows(dataset), 1),
            "profile_bytes": len(orjson.dumps(built)),
        }


def over_http(rows: int, repeat: int) -> dict[str, Any]:
    csv_path = cached_csv(rows, 0)
    with tempfile.TemporaryDirectory(prefix="rillet-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        with running_server(data_dir) as server:
            print(f"  {rows:,} rows: uploading and syncing ...", file=sys.stderr, flush=True)
            dataset_id = upload_and_sync(server, csv_path)["id"]
            figures = engine(data_dir, dataset_id, repeat)
            with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}) as client:
                figures["health_ms"] = http_median(client, "/health", repeat)
                path = f"/datasets/{dataset_id}/insights"
                start = time.perf_counter()  # the first: computed, then cached per version
                assert client.get(path).json()["cached"] is False
                figures["insights_miss_ms"] = (time.perf_counter() - start) * 1000
                figures["insights_ms"] = http_median(client, path, repeat)
        figures["llm"] = with_llm(data_dir, dataset_id)
    return figures


def with_llm(data_dir: Path, dataset_id: str) -> dict[str, Any]:
    """The LLM path against a Groq look-alike that answers at once: a miss, then a hit."""
    with FakeGroq(lambda request: ANSWER) as groq:
        extra = {"GROQ_API_KEY": "gsk_bench", "GROQ_BASE_URL": groq.base_url}
        with (
            running_server(data_dir, **extra) as server,
            httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}) as client,
        ):
            path = f"/datasets/{dataset_id}/insights"
            start = time.perf_counter()
            miss = client.get(path).json()
            miss_ms = (time.perf_counter() - start) * 1000
            start = time.perf_counter()
            hit = client.get(path).json()
            hit_ms = (time.perf_counter() - start) * 1000
        assert (miss["cached"], hit["cached"]) == (False, True), (miss, hit)
        return {"miss_ms": miss_ms, "hit_ms": hit_ms, "sent_bytes": len(groq.requests[0].raw)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    context = machine()
    print_machine(context)
    sizes = [int(n) for n in args.rows.split(",")]
    results = {rows: over_http(rows, args.repeat) for rows in sizes}
    print_table(
        ["rows", "profile ms", "(median)", "bytes", "findings ms", "read rows ms", "profile/read"],
        [
            [
                f"{rows:,}",
                r["profile"]["best_ms"],
                r["profile"]["median_ms"],
                r["profile_bytes"],
                r["findings"]["median_ms"],
                r["read_rows"]["best_ms"],
                ratio(r["profile"]["median_ms"], r["read_rows"]["best_ms"]),
            ]
            for rows, r in results.items()
        ],
        title=f"Profile for the LLM (budget {BUDGET:,} bytes; goal <= {GOAL_MS:g} ms at any size)",
    )
    print_table(
        [
            "rows",
            "/health ms",
            "/insights miss ms",
            "hit ms",
            "hit ratio",
            "LLM miss ms",
            "LLM hit ms",
            "sent B",
        ],
        [
            [
                f"{rows:,}",
                r["health_ms"],
                r["insights_miss_ms"],
                r["insights_ms"],
                ratio(r["insights_ms"], r["health_ms"]),
                r["llm"]["miss_ms"],
                r["llm"]["hit_ms"],
                r["llm"]["sent_bytes"],
            ]
            for rows, r in results.items()
        ],
        title="Over HTTP, 1 client, medians (statistics-only insights; then a Groq look-alike)",
    )
    worst = max(r["profile"]["median_ms"] for r in results.values())
    print(f"\nslowest median profile: {worst:.2f} ms -> {'met' if worst <= GOAL_MS else 'MISSED'}")
    write_json(args.json, {"machine": context, "sizes": {str(k): v for k, v in results.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
