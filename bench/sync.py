"""How fast a sync converts a CSV, and how much memory it takes, against a bare csv.reader.

    python bench/sync.py [--rows 1000000] [--repeat 1] [--json FILE]

Two generated files (bench/make_csv.py, cached in bench/.data/): ROWS rows and 3 x ROWS rows.
Over each file, each workload runs in a fresh Python process, so that its peak resident memory
(``VmHWM`` in /proc/self/status, read by the child as it finishes) is its own:

    csv.reader   the baseline: a bare ``csv.reader`` loop that only counts records
    convert_csv  the sync: ``streaming.convert.convert_csv`` into a fresh directory, as the
                 server runs it (its statistics in a second process: SYNC_STATS_PROCESS=auto)
    convert_csv 1p  the same with the statistics in its own process (SYNC_STATS_PROCESS=off)
    convert_csv rows  the sync without its columns (``columns=False``): what the columns cost
    pandas       ``pandas.read_csv`` into a DataFrame (reference; skipped if not installed)
    duckdb       ``CREATE TABLE AS SELECT * FROM read_csv_auto(...)`` in an in-memory DuckDB
                 database (reference; skipped if not installed)

Time is wall time of the work alone, measured inside the child (interpreter start-up and
imports excluded); peak RSS includes the interpreter and the workload's imports. With
``--repeat N`` each run is repeated and the fastest time and the largest peak are kept.

A sync of a large file keeps its statistics in a forked process of its own (streaming.tally),
so one process's peak is not the sync's memory. Three figures:

- peak RSS: the workload process's own ``VmHWM``;
- RSS bound: that plus the largest peak RSS among its child processes once they ended
  (``RUSAGE_CHILDREN``): an exact upper bound, which counts every page the two share twice;
- PSS: every SAMPLE_SECONDS the proportional set size summed over the process and its
  children (a page shared by n processes counts 1/n in each, so the sum counts it once); the
  peak of the samples. Pages shared with other programs (libc) count in part, so a
  one-process workload's PSS is below its RSS.

Read ``x baseline`` as "this many times the cost of just parsing the CSV with the csv module"
over the same file. Rillet's promise is the last line: the sync's peak RSS on the 3x file is
the same (within 5 MiB) as on the 1x file.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    DATA,
    MIB,
    REPO,
    cached_csv,
    machine,
    print_machine,
    print_table,
    proc_status_mib,
    ratio,
    write_json,
)

RSS_TOLERANCE_MIB = 5.0
SAMPLE_SECONDS = 0.02


# -- workloads: each runs in a child process and returns the number of data rows it read --


def read_with_csv_module(path: Path) -> int:
    with open(path, newline="", encoding="utf-8") as f:
        records = 0
        for _ in csv.reader(f):
            records += 1
    return records - 1  # the header


def sync_with_convert_csv(path: Path, parallel: bool | None = None) -> int:
    from streaming.convert import convert_csv

    out = Path(tempfile.mkdtemp(prefix="sync-", dir=DATA))
    try:
        return convert_csv(path, out, parallel=parallel).rows
    finally:
        shutil.rmtree(out, ignore_errors=True)


def sync_in_one_process(path: Path) -> int:
    return sync_with_convert_csv(path, parallel=False)


def sync_rows_only(path: Path) -> int:
    from streaming.convert import convert_csv

    out = Path(tempfile.mkdtemp(prefix="sync-", dir=DATA))
    try:
        return convert_csv(path, out, columns=False).rows
    finally:
        shutil.rmtree(out, ignore_errors=True)


def load_with_pandas(path: Path) -> int:
    import pandas

    return len(pandas.read_csv(path))


def load_with_duckdb(path: Path) -> int:
    import duckdb

    with duckdb.connect() as con:
        con.execute("CREATE TABLE t AS SELECT * FROM read_csv_auto(?)", [str(path)])
        (count,) = con.execute("SELECT count(*) FROM t").fetchone()
    return int(count)


WORKLOADS: dict[str, Callable[[Path], int]] = {
    "csv.reader": read_with_csv_module,
    "convert_csv": sync_with_convert_csv,
    "convert_csv 1p": sync_in_one_process,
    "convert_csv rows": sync_rows_only,
    "pandas": load_with_pandas,
    "duckdb": load_with_duckdb,
}
BASELINE = "csv.reader"
IMPORTS = {
    "convert_csv": "streaming.convert",
    "convert_csv 1p": "streaming.convert",
    "convert_csv rows": "streaming.convert",
    "pandas": "pandas",
    "duckdb": "duckdb",
}
REFERENCES = ("pandas", "duckdb")  # skipped when their module is not installed


class TreeMemory:
    """Peak PSS summed over this process and its children, sampled in a thread."""

    def __init__(self) -> None:
        self.peak_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            pss = 0.0
            for pid in ["self", *_children()]:
                try:
                    pss += _rollup_mib(pid, "Pss")
                except (FileNotFoundError, ProcessLookupError):
                    continue  # a child that just ended
            self.peak_pss = max(self.peak_pss, pss)


def _children() -> list[str]:
    found: list[str] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            found += (task / "children").read_text().split()
        except FileNotFoundError:
            continue
    return found


def _rollup_mib(pid: str, field: str) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(workload: str, path: Path) -> None:
    """Run one workload in this (fresh) process; print its figures as one JSON line.

    The workload's module is imported before the clock starts: its import is in the peak RSS
    but not in the time."""
    sys.path.insert(0, str(REPO))
    if workload in IMPORTS:
        importlib.import_module(IMPORTS[workload])
    with TreeMemory() as tree:
        started = time.perf_counter()
        rows = WORKLOADS[workload](path)
        seconds = time.perf_counter() - started
    peak = proc_status_mib()["VmHWM"]
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux
    figures = {"rows": rows, "seconds": seconds, "peak_rss_mib": peak}
    figures |= {"rss_bound_mib": peak + children, "peak_pss_tree_mib": tree.peak_pss}
    print(json.dumps(figures))


# -- the parent: runs each workload in a child and tabulates --


def measure_once(workload: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", workload, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{workload} on {path.name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(workload: str, label: str, path: Path, repeat: int) -> dict[str, Any]:
    """The fastest of ``repeat`` runs, with the largest peak RSS among them."""
    runs = [measure_once(workload, path) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["seconds"])
    size_mib = path.stat().st_size / MIB
    return {
        "workload": workload,
        "file": label,
        "path": str(path.relative_to(REPO)),
        "file_mib": round(size_mib, 1),
        "rows": best["rows"],
        "seconds": best["seconds"],
        "rows_per_s": best["rows"] / best["seconds"],
        "mib_per_s": size_mib / best["seconds"],
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "rss_bound_mib": max(r["rss_bound_mib"] for r in runs),
        "peak_pss_tree_mib": max(r["peak_pss_tree_mib"] for r in runs),
    }


def workloads_to_run() -> list[str]:
    names = []
    for name in WORKLOADS:
        if name in REFERENCES and importlib.util.find_spec(IMPORTS[name]) is None:
            print(f"({name} is not installed: its reference column is skipped)")
            continue
        names.append(name)
    return names


def add_ratios(results: list[dict[str, Any]]) -> None:
    """Each run's time and peak RSS as multiples of the baseline's over the same file."""
    baselines = {r["file"]: r for r in results if r["workload"] == BASELINE}
    for r in results:
        base = baselines[r["file"]]
        r["time_x_baseline"] = ratio(r["seconds"], base["seconds"])
        r["rss_x_baseline"] = ratio(r["rss_bound_mib"], base["rss_bound_mib"])


def print_results(results: list[dict[str, Any]]) -> None:
    headers = [
        "workload",
        "file",
        "MiB",
        "rows",
        "seconds",
        "rows/s",
        "MiB/s",
        "peak RSS MiB",
        "RSS bound MiB",
        "PSS MiB",
        "time x baseline",
        "RSS bound x baseline",
    ]
    rows = [
        [
            r["workload"],
            r["file"],
            r["file_mib"],
            r["rows"],
            r["seconds"],
            int(r["rows_per_s"]),
            r["mib_per_s"],
            r["peak_rss_mib"],
            r["rss_bound_mib"],
            r["peak_pss_tree_mib"],
            r["time_x_baseline"],
            r["rss_x_baseline"],
        ]
        for r in results
    ]
    print_table(headers, rows, title=f"Sync vs a bare csv.reader loop (baseline: {BASELINE})")
    for label in dict.fromkeys(r["file"] for r in results):
        path = next(r["path"] for r in results if r["file"] == label)
        print(f"  {label}: {path}")


def rss_growth(results: list[dict[str, Any]]) -> dict[str, Any]:
    """How much more peak memory (the RSS bound, exact) each workload took on the 3x file than
    on the 1x file."""
    peaks = {(r["workload"], r["file"]): r["rss_bound_mib"] for r in results}
    growth = {}
    for workload in dict.fromkeys(r["workload"] for r in results):
        before, after = peaks[workload, "1x"], peaks[workload, "3x"]
        growth[workload] = {"1x_mib": before, "3x_mib": after, "growth_mib": after - before}
    return growth


def print_growth(growth: dict[str, Any]) -> None:
    rows = [
        [name, g["1x_mib"], g["3x_mib"], f"{g['growth_mib']:+.1f}"] for name, g in growth.items()
    ]
    print_table(
        ["workload", "RSS bound 1x MiB", "RSS bound 3x MiB", "growth MiB"],
        rows,
        title="Peak memory (RSS bound over the workload's processes), 3x file vs 1x file",
    )
    sync = growth["convert_csv"]["growth_mib"]
    verdict = "within" if abs(sync) <= RSS_TOLERANCE_MIB else "OUTSIDE"
    print(
        f"\nconvert_csv peak memory grew {sync:+.1f} MiB on 3x the rows: "
        f"{verdict} the +/-{RSS_TOLERANCE_MIB:.0f} MiB the design promises."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the 1x file")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (best kept)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated files")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return 0

    context = machine()
    files = {"1x": cached_csv(args.rows, args.seed), "3x": cached_csv(3 * args.rows, args.seed)}
    workloads = workloads_to_run()
    results = []
    for label, path in files.items():
        for workload in workloads:
            print(f"  {workload} over {path.name} ...", file=sys.stderr, flush=True)
            results.append(measure(workload, label, path, args.repeat))
    add_ratios(results)
    print_machine(context)
    print_results(results)
    growth = rss_growth(results)
    print_growth(growth)
    figures = {"machine": context, "repeat": args.repeat, "runs": results, "growth": growth}
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
