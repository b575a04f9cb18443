"""Draw README's example charts: three PNGs in docs/ from a generated flights-like dataset.

    python docs/make_charts.py        # needs the render extra: pip install '.[render]'

The data is bench/make_csv.py's 200,000-row CSV (ids, prices, 8 carriers, dates over two
years, free-text notes, delays with 10% missing), synced as the server syncs an upload; each
chart is the spec that GET /datasets/ID/chart answers for the query beside it, drawn by
vl-convert.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS.parent / "bench")]

from chart_specs import synced  # noqa: E402

import charts  # noqa: E402
from charts import render  # noqa: E402
from streaming.filter import parse  # noqa: E402

EXAMPLES = {
    "chart-bar.png": (
        "mark=bar&x=carrier&y=price&aggregate=sum",
        {"mark": "bar", "x": "carrier", "y": "price", "aggregate": "sum"},
    ),
    "chart-line.png": (
        "mark=line&x=day&color=carrier&carrier__in=AA,DL,UA",
        {"mark": "line", "x": "day", "color": "carrier"},
    ),
    "chart-histogram.png": ("mark=histogram&x=delay", {"mark": "histogram", "x": "delay"}),
}
FILTERS = {"chart-line.png": {"carrier__in": "AA,DL,UA"}}


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="rillet-docs-"))
    try:
        dataset = synced(200_000, root)
        columns = dataset.meta["columns"]
        for name, (query, asked) in EXAMPLES.items():
            spec = charts.chart(
                dataset,
                parse(FILTERS.get(name, {}), columns),
                asked.get("mark"),
                asked.get("x"),
                asked.get("y"),
                asked.get("color"),
                asked.get("aggregate"),
                None,
                max_groups=10_000,
            )
            picture, _ = render.image(spec, "png")
            (DOCS / name).write_bytes(picture)
            print(f"docs/{name}: GET /datasets/ID/chart?{query} ({len(picture):,} bytes)")
        dataset.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
