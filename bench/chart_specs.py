"""How long charts take on a large dataset, and how big their specs are.

    python bench/chart_specs.py [--rows 1000000] [--json FILE]

Syncs the generated CSV (bench/make_csv.py, cached in bench/.data/) into a temporary data
directory in this process, then times, in this process, ``charts.chart`` for one bar chart of a
sum per carrier, a line of rows per day, a histogram (from the stored statistics) and a
filtered histogram (a scan), ``charts.recommend`` (what GET /datasets/ID/charts answers) and
the statistics-only findings (what GET /datasets/ID/insights answers without an LLM); and
prints each spec's size in bytes (goal: under 100 KB for any request).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from common import REPO, cached_csv, print_table, write_json

sys.path.insert(0, str(REPO))

import charts  # noqa: E402
from charts.findings import findings  # noqa: E402
from charts.profile import survey  # noqa: E402
from streaming.convert import convert_csv  # noqa: E402
from streaming.filter import parse  # noqa: E402
from streaming.read import Dataset  # noqa: E402
from streaming.store import Store  # noqa: E402

CASES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    (
        "bar: sum of price by carrier",
        {"mark": "bar", "x": "carrier", "y": "price", "aggregate": "sum"},
        {},
    ),
    ("line: rows per day", {"mark": "line", "x": "day"}, {}),
    ("histogram of price (stats)", {"mark": "histogram", "x": "price"}, {}),
    ("histogram of price, carrier=NK", {"mark": "histogram", "x": "price"}, {"carrier": "NK"}),
    ("point: price by delay (sample)", {"mark": "point", "x": "price", "y": "delay"}, {}),
]


def synced(rows: int, root: Path) -> Dataset:
    """The generated CSV as a ready dataset in a data directory under ``root``."""
    store = Store(root)
    ids = store.new_ids()
    tmp = store.new_tmp_dir(ids.dataset)
    done = convert_csv(cached_csv(rows), tmp)
    meta = {
        "id": ids.dataset,
        "name": "bench",
        "status": "ready",
        "rows": done.rows,
        "columns": done.columns,
        "ready_at": "-",
        "columns_format": done.columns_format,  # without it the columns are not read
    }
    store.publish(tmp, ids.dataset, meta)
    return Dataset(store, ids.dataset)


def timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = call()
    return value, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="rillet-bench-charts-"))
    try:
        dataset = synced(args.rows, root)
        columns = dataset.meta["columns"]
        figures = []
        for label, asked, filters in CASES:
            spec, seconds = timed(
                lambda a=asked, f=filters: charts.chart(
                    dataset,
                    parse(f, columns),
                    a.get("mark"),
                    a.get("x"),
                    a.get("y"),
                    None,
                    a.get("aggregate"),
                    None,
                    max_groups=10_000,
                )
            )
            figures.append(
                {
                    "request": label,
                    "seconds": round(seconds, 3),
                    "spec_bytes": len(orjson.dumps(spec)),
                }
            )
        found, seconds = timed(lambda: charts.recommend(dataset, 8, max_groups=10_000))
        figures.append(
            {
                "request": f"/charts: {len(found)} recommendations",
                "seconds": round(seconds, 3),
                "spec_bytes": max(len(orjson.dumps(c["spec"])) for c in found),
            }
        )
        said, seconds = timed(lambda: findings(survey(dataset)))
        figures.append(
            {
                "request": f"/insights without an LLM: {len(said)} findings",
                "seconds": round(seconds, 3),
                "spec_bytes": 0,
            }
        )
        dataset.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"Charts on {args.rows:,} rows (spec bytes: the largest for /charts)")
    print_table(
        ["request", "seconds", "spec bytes"],
        [[f["request"], f"{f['seconds']:.2f}", f"{f['spec_bytes']:,}"] for f in figures],
    )
    largest = max(f["spec_bytes"] for f in figures)
    print(
        f"\nlargest spec: {largest:,} bytes (goal: under 100 KB: "
        f"{'met' if largest < 100_000 else 'NOT met'})"
    )
    if args.json:
        write_json(args.json, {"rows": args.rows, "charts": figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
