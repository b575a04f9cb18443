"""How fast Rillet answers questions about a synced dataset, against a bare NDJSON decoding loop.

    python bench/query.py [--rows 1000000] [--repeat 3] [--seed 0] [--json FILE]

The script starts the real server (``python server.py``, as bench/serve.py does: a free port of
127.0.0.1, a temporary DATA_DIR, a clean environment, settings at their defaults), uploads the
generated CSV (bench/make_csv.py, cached in bench/.data/) and waits for its sync. Then, over
the synced dataset:

1. Engine. A child process opens the dataset in-process (``Store`` + ``Dataset``) and times
   the engine's calls directly, with the baseline in the same process:

       bare loop    the baseline: read rows.ndjson line by line, ``orjson.loads`` every line
       count        ``scan.count``: an id equality (1 row), an equality on the rarest carrier,
                    a range (price__gt=500), a search (q=weather), no filter
       group-by     ``aggregate.group_by`` with agg=count,sum:price,mean:delay, by carrier
                    (8 groups), by carrier,day (5,840) and by carrier,price (more groups than
                    GROUPBY_MAX: the answer is truncated)
       stats        ``scan.statistics`` over the rows of the rarest carrier
       sort         ``scan.sorted_page``: sort=-price, limit=100, over every row
       pages        ``scan.page`` with carrier=RAREST&delay__gt=40, limit=100: the first page,
                    then 50 more following the resume row (the cursor), and the same 51st page
                    asked by offset (which scans from the start)

   Each is run REPEAT times, in rounds that start at a different workload; the fastest time is
   kept. Memory: the child's VmRSS once the dataset is open and idle (the rows file read once
   into the page cache), and its high-water mark (VmHWM) over all the runs above that. Then
   each workload runs once more in a fresh child of its own, so that its peak above idle is
   its own and not memory an earlier workload left behind.

2. HTTP. The same questions to the server, one client: ``/rows?...&count=1&limit=1``,
   ``/groupby``, ``/stats``, ``/rows?sort=-price&limit=100``, and the pages following ``next``.
   The server's VmRSS before and after, its peak while answering, and for each request how
   far its VmHWM rose above the VmRSS it held just before.

Read ``time x baseline`` as "this many times the cost of decoding every stored row once":
below 1 means the engine skipped work (bytes tests on raw lines, one decode per block).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from common import (
    MIB,
    REPO,
    machine,
    print_machine,
    print_table,
    proc_status_mib,
    ratio,
    write_json,
)
from serve import client, served_dataset

AGG = "count,sum:price,mean:delay"
PAGE = 100
FOLLOWS = 50  # next links followed after the first page
PAGE_FILTER_DELAY = "40"
SEARCH = "weather"
ID_VALUE = 500_000
MEMORY_GOAL_MIB = 8e6 / MIB  # the "8 MB"
SETTLE = 0.5


@dataclass(frozen=True)
class Goal:
    text: str
    test: Callable[[dict[str, Any]], bool]


SELECTIVE = Goal(">= 1.5x faster", lambda r: r["time_x_baseline"] <= 1 / 1.5)
RANGE = Goal("<= 1.2x time", lambda r: r["time_x_baseline"] <= 1.2)
GROUPBY = Goal("<= 1.5 s", lambda r: r["seconds"] <= 1.5)


@dataclass(frozen=True)
class Workload:
    kind: str  # count, groupby, stats, sorted
    name: str
    params: dict[str, str]
    goal: Goal | None = None


def workloads(carrier: str, rows: int) -> list[Workload]:
    """The questions asked of the engine and of the server; ``carrier`` is the rarest one."""
    id_value = str(min(ID_VALUE, max(1, rows // 2)))
    return [
        Workload("count", f"id={id_value}", {"id": id_value}, SELECTIVE),
        Workload("count", f"carrier={carrier}", {"carrier": carrier}, SELECTIVE),
        Workload("count", "price__gt=500", {"price__gt": "500"}, RANGE),
        Workload("count", f"q={SEARCH}", {"q": SEARCH}),
        Workload("count", "no filter", {}),
        Workload("groupby", "by=carrier", {"by": "carrier", "agg": AGG}, GROUPBY),
        Workload("groupby", "by=carrier,day", {"by": "carrier,day", "agg": AGG}),
        Workload("groupby", "by=carrier,price", {"by": "carrier,price", "agg": AGG}),
        Workload("stats", f"carrier={carrier}", {"carrier": carrier}),
        Workload("sorted", "sort=-price&limit=100", {"sort": "-price", "limit": str(PAGE)}),
    ]


def page_filter(carrier: str) -> dict[str, str]:
    return {"carrier": carrier, "delay__gt": PAGE_FILTER_DELAY}


# -- the child: the engine in-process --


def reset_peak(pid: int | str | list[int] = "self") -> bool:
    """Reset a process's VmHWM to its current VmRSS (Linux >= 4.0); False if not allowed."""
    if isinstance(pid, list):
        return all([reset_peak(p) for p in pid])
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def bare_loop(path: Path) -> dict[str, Any]:
    import orjson

    rows = 0
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
            rows += 1
    return {"rows": rows}


def child(
    data_dir: Path, dataset_id: str, carrier: str, groupby_max: int, repeat: int, only: str
) -> None:
    """Time every workload (or ``only`` one) and the baseline in this process, ``repeat``
    rounds; print the figures as JSON."""
    sys.path.insert(0, str(REPO))
    from streaming import aggregate, filter, scan
    from streaming.convert import ROWS_FILE
    from streaming.read import Dataset
    from streaming.store import Store

    dataset = Dataset(Store(data_dir), dataset_id)
    columns = dataset.meta["columns"]
    rows_file = dataset.folder / ROWS_FILE

    def run(w: Workload) -> dict[str, Any]:
        query = filter.parse(w.params, columns)
        if w.kind == "count":
            return {"matched": scan.count(dataset, query)}
        if w.kind == "groupby":
            by, aggregates = aggregate.parse(w.params["by"], w.params["agg"], columns)
            groups, truncated = aggregate.group_by(dataset, query, by, aggregates, groupby_max)
            counted = sum(g["count"] for g in groups)
            return {"groups": len(groups), "truncated": truncated, "rows_counted": counted}
        if w.kind == "stats":
            matched, _ = scan.statistics(dataset, query)
            return {"matched": matched}
        position = dataset.names.index(w.params["sort"].lstrip("-"))
        kind = columns[position]["type"]
        descending = w.params["sort"].startswith("-")
        page = scan.sorted_page(dataset, query, position, descending, kind, 0, PAGE)
        return {"rows": len(page), "first_value": page[0][position] if page else None}

    def pages() -> dict[str, Any]:
        query = filter.parse(page_filter(carrier), columns)
        seconds, start, last = [], 0, []
        for _ in range(FOLLOWS + 1):
            started = time.perf_counter()
            last, resume = scan.page(dataset, query, start, 0, PAGE)
            seconds.append(time.perf_counter() - started)
            if resume is None:
                break
            start = resume
        started = time.perf_counter()
        by_offset, _ = scan.page(dataset, query, 0, PAGE * (len(seconds) - 1), PAGE)
        offset_seconds = time.perf_counter() - started
        return {
            "page_seconds": seconds,
            "offset_seconds": offset_seconds,
            "depth_rows": start,
            "offset_same_rows": by_offset == last,
        }

    plan: dict[str, Callable[[], dict[str, Any]]] = {"bare loop": lambda: bare_loop(rows_file)}
    for w in workloads(carrier, dataset.rows):
        plan[f"{w.kind} {w.name}"] = functools.partial(run, w)
    plan["pages"] = pages
    names = [only] if only else list(plan)

    with open(rows_file, "rb") as f:  # into the page cache: no run pays for the disk
        while f.read(MIB):
            pass
    gc.collect()
    idle = proc_status_mib()["VmRSS"]
    resettable = reset_peak()  # the high-water mark from here on: the scans' alone
    best: dict[str, dict[str, Any]] = {}
    for n in range(repeat):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            started = time.perf_counter()
            info = plan[name]()
            record = {**info, "seconds": time.perf_counter() - started}
            if (old := best.get(name)) is not None:  # keep the fastest run
                if old["seconds"] <= record["seconds"]:
                    record = {**old}
                if name == "pages":  # and the fastest of each page over the rounds
                    pairs = zip(old["page_seconds"], info["page_seconds"])
                    record["page_seconds"] = [min(a, b) for a, b in pairs]
                    record["offset_seconds"] = min(old["offset_seconds"], info["offset_seconds"])
            best[name] = record
    final = proc_status_mib()
    dataset.close()
    figures = {
        "runs": best,
        "idle_rss_mib": idle,
        "peak_rss_mib": final["VmHWM"],
        "peak_above_idle_mib": final["VmHWM"] - idle,
        "final_rss_mib": final["VmRSS"],
        "peak_from_idle": resettable,  # False: VmHWM also covers the start-up
    }
    print(json.dumps(figures))


def run_child(
    data_dir: Path,
    dataset_id: str,
    carrier: str,
    groupby_max: int,
    repeat: int,
    only: str | None = None,
) -> dict[str, Any]:
    args = [str(data_dir), dataset_id, carrier, str(groupby_max), str(repeat), only or ""]
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the engine child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_pass(
    data_dir: Path, dataset_id: str, carrier: str, groupby_max: int, names: list[str]
) -> dict[str, float]:
    """Each workload once in a fresh child: its own peak above idle, nothing left by others."""
    return {
        name: run_child(data_dir, dataset_id, carrier, groupby_max, 1, name)["peak_above_idle_mib"]
        for name in names
    }


# -- the parent: the server over HTTP --


def url_of(dataset_id: str, w: Workload) -> str:
    base = f"/datasets/{dataset_id}"
    if w.kind == "count":
        return f"{base}/rows?{urlencode({**w.params, 'count': '1', 'limit': '1'})}"
    if w.kind == "groupby":
        return f"{base}/groupby?{urlencode(w.params)}"
    if w.kind == "stats":
        return f"{base}/stats?{urlencode(w.params)}"
    return f"{base}/rows?{urlencode(w.params)}"


def answer(w: Workload, body: dict[str, Any]) -> dict[str, Any]:
    """What an HTTP answer says, in the engine's terms (to check they agree)."""
    if w.kind == "count":
        return {"matched": body["total"]}
    if w.kind == "groupby":
        counted = sum(g["count"] for g in body["groups"])
        return {
            "groups": len(body["groups"]),
            "truncated": body["truncated"],
            "rows_counted": counted,
        }
    if w.kind == "stats":
        return {"matched": body["rows_matched"]}
    first = body["rows"][0][w.params["sort"].lstrip("-")] if body["rows"] else None
    return {"rows": len(body["rows"]), "first_value": first}


def timed_get(c: httpx.Client, url: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = c.get(url)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: {response.status_code} {response.text[:300]}")
    return seconds, response.json()


def measure_http(
    server: Any, dataset_id: str, carrier: str, rows: int, repeat: int
) -> tuple[dict[str, Any], float]:
    """Each workload's fastest time over ``repeat`` rounds from one client, and how far the
    server's resident memory rose above what it held just before (the largest rise seen); and
    the server's peak resident memory over all the requests."""
    plan = {f"{w.kind} {w.name}": w for w in workloads(carrier, rows)}
    best: dict[str, dict[str, Any]] = {}
    server_peak = 0.0  # the largest VmHWM read after a request
    names = [*plan, "pages"]
    first_url = f"/datasets/{dataset_id}/rows?{urlencode({**page_filter(carrier), 'limit': PAGE})}"
    with client(server) as c:
        timed_get(c, "/health")  # open the connection
        for n in range(repeat):
            for name in names[n % len(names) :] + names[: n % len(names)]:
                held = proc_status_mib(server.pids)["VmRSS"]
                reset_peak(server.pids)
                if name == "pages":
                    record = http_pages(c, first_url)
                else:
                    url = url_of(dataset_id, plan[name])
                    seconds, body = timed_get(c, url)
                    record = {**answer(plan[name], body), "seconds": seconds, "url": url}
                peak = proc_status_mib(server.pids)["VmHWM"]
                server_peak = max(server_peak, peak)
                record["server_rise_mib"] = peak - held
                if (old := best.get(name)) is not None:
                    rise = max(old["server_rise_mib"], record["server_rise_mib"])
                    if old["seconds"] <= record["seconds"]:
                        record = {**old}
                    record["server_rise_mib"] = rise
                    if name == "pages":
                        pairs = zip(old["page_seconds"], record["page_seconds"])
                        record["page_seconds"] = [min(a, b) for a, b in pairs]
                        record["offset_seconds"] = min(
                            old["offset_seconds"], record["offset_seconds"]
                        )
                best[name] = record
    return best, server_peak


def http_pages(c: httpx.Client, first_url: str) -> dict[str, Any]:
    """The first filtered page, FOLLOWS pages by their next links, the last again by offset."""
    seconds_list, url = [], first_url
    for _ in range(FOLLOWS + 1):
        seconds, body = timed_get(c, url)
        seconds_list.append(seconds)
        if not body["next"]:
            break
        url = body["next"]
    offset = PAGE * (len(seconds_list) - 1)
    offset_seconds, by_offset = timed_get(c, f"{first_url}&offset={offset}")
    return {
        "page_seconds": seconds_list,
        "offset_seconds": offset_seconds,
        "seconds": sum(seconds_list) + offset_seconds,
        "offset_same_rows": by_offset["rows"] == body["rows"],
    }


def settled(pid: int | list[int]) -> dict[str, float]:
    time.sleep(SETTLE)
    return proc_status_mib(pid)


def rarest_carrier(server: Any, dataset_id: str) -> tuple[str, int]:
    """The least frequent carrier, from the stored statistics (exact for 8 values)."""
    with client(server) as c:
        top = c.get(f"/datasets/{dataset_id}/stats").json()["columns"]["carrier"]["top"]
    rarest = min(top, key=lambda t: (t["count"], t["value"]))
    return rarest["value"], rarest["count"]


def groupby_max_default() -> int:
    sys.path.insert(0, str(REPO))
    from streaming.settings import Settings

    return int(Settings.from_env({}).groupby_max)


# -- report --


def describe(kind: str, info: dict[str, Any]) -> str:
    if kind in ("count", "stats"):
        return f"{info['matched']:,} rows"
    if kind == "groupby":
        text = f"{info['groups']:,} groups"
        return text + (", truncated" if info["truncated"] else "")
    return f"{info['rows']:,} rows"


def engine_table(
    engine: dict[str, Any], peaks: dict[str, float], plan: list[Workload], rows: int
) -> list[dict[str, Any]]:
    runs = engine["runs"]
    base = runs["bare loop"]["seconds"]
    out = []
    for w in [None, *plan]:
        name = "bare loop" if w is None else f"{w.kind} {w.name}"
        r = runs[name]
        figures = {
            "workload": "bare loop (baseline)" if w is None else name,
            "kind": "baseline" if w is None else w.kind,
            "params": {} if w is None else w.params,
            "result": describe("baseline" if w is None else w.kind, r),
            "seconds": r["seconds"],
            "rows_per_s": rows / r["seconds"],
            "time_x_baseline": ratio(r["seconds"], base),
            "speed_x_baseline": ratio(base, r["seconds"]),
            "peak_above_idle_mib": peaks[name],
            "details": {k: v for k, v in r.items() if k != "seconds"},
        }
        figures["goal"] = w.goal.text if w and w.goal else None
        figures["goal_met"] = w.goal.test(figures) if w and w.goal else None
        out.append(figures)
    return out


def http_table(
    http: dict[str, Any], engine: dict[str, Any], plan: list[Workload], rows: int
) -> list[dict[str, Any]]:
    runs = engine["runs"]
    base = runs["bare loop"]["seconds"]
    out = []
    for w in plan:
        name = f"{w.kind} {w.name}"
        h, e = http[name], runs[name]
        facts = {k: v for k, v in h.items() if k not in ("seconds", "url", "server_rise_mib")}
        figures = {
            "workload": name,
            "url": h["url"],
            "result": describe(w.kind, h),
            "seconds": h["seconds"],
            "rows_per_s": rows / h["seconds"],
            "time_x_baseline": ratio(h["seconds"], base),
            "time_x_engine": ratio(h["seconds"], e["seconds"]),
            "server_rise_mib": h["server_rise_mib"],
            "details": facts,
            "agrees_with_engine": all(e.get(k) == v for k, v in facts.items()),
        }
        figures["goal"] = w.goal.text if w.goal else None
        figures["goal_met"] = w.goal.test(figures) if w.goal else None
        out.append(figures)
    return out


def paging(engine: dict[str, Any], http: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    depth = engine["runs"]["pages"]["depth_rows"]
    for where, p in (("engine", engine["runs"]["pages"]), ("HTTP", http["pages"])):
        pages = p["page_seconds"]
        first, following = pages[0], sorted(pages[1:]) or pages
        out.append(
            {
                "where": where,
                "pages": len(pages),
                "depth_rows": depth,
                "first_ms": first * 1000,
                "median_following_ms": following[len(following) // 2] * 1000,
                "last_ms": pages[-1] * 1000,
                "last_x_first": ratio(pages[-1], first),
                "offset_ms": p["offset_seconds"] * 1000,
                "offset_x_first": ratio(p["offset_seconds"], first),
                "offset_same_rows": p["offset_same_rows"],
            }
        )
    return out


def verdict(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def print_engine(table: list[dict[str, Any]], repeat: int, rows: int) -> None:
    print_table(
        ["workload", "result", "seconds", "rows/s", "time x baseline", "goal", "met", "peak MiB"],
        [
            [
                r["workload"],
                r["result"],
                r["seconds"],
                int(r["rows_per_s"]),
                r["time_x_baseline"],
                r["goal"] or "",
                verdict(r["goal_met"]),
                r["peak_above_idle_mib"],
            ]
            for r in table
        ],
        title=(
            f"Engine in-process (child process, best of {repeat}; baseline: read rows.ndjson "
            "line by line and orjson.loads every line)"
        ),
    )
    print(
        "  rows/s: the dataset's rows over the time. peak MiB: VmHWM above idle (dataset open) "
        "of a fresh process running that workload once."
    )
    for r in table:
        d = r["details"]
        if r["kind"] == "groupby" and d["truncated"]:
            print(
                f"  {r['workload']}: truncated at GROUPBY_MAX = {d['groups']:,} groups; "
                f"{d['rows_counted']:,} rows counted, {rows - d['rows_counted']:,} left out"
            )


def print_http(table: list[dict[str, Any]], repeat: int) -> None:
    print_table(
        [
            "request",
            "result",
            "seconds",
            "rows/s",
            "time x baseline",
            "x engine",
            "goal",
            "met",
            "server +MiB",
        ],
        [
            [
                r["workload"],
                r["result"] + ("" if r["agrees_with_engine"] else " (DIFFERS from engine)"),
                r["seconds"],
                int(r["rows_per_s"]),
                r["time_x_baseline"],
                r["time_x_engine"],
                r["goal"] or "",
                verdict(r["goal_met"]),
                r["server_rise_mib"],
            ]
            for r in table
        ],
        title=f"Over HTTP, one client (best of {repeat}; the same baseline)",
    )
    print(
        "  count: GET /rows?FILTER&count=1&limit=1 (without a filter the total is the metadata's: "
        "no scan).\n  server +MiB: the server's VmHWM during the request above its VmRSS just "
        "before (largest over the rounds)."
    )


def print_paging(table: list[dict[str, Any]], carrier: str) -> None:
    print_table(
        [
            "where",
            "pages",
            "first ms",
            "median next ms",
            "last ms",
            "last x first",
            "by offset ms",
            "offset x first",
            "same rows",
        ],
        [
            [
                r["where"],
                r["pages"],
                r["first_ms"],
                r["median_following_ms"],
                r["last_ms"],
                r["last_x_first"],
                r["offset_ms"],
                r["offset_x_first"],
                r["offset_same_rows"],
            ]
            for r in table
        ],
        title=(
            f"Filtered pages, carrier={carrier}&delay__gt={PAGE_FILTER_DELAY}&limit={PAGE}: the "
            f"first, then following next (the cursor) {FOLLOWS} times"
        ),
    )
    print(
        f"  the last page ends at row {table[0]['depth_rows']:,}; 'by offset' asks for that "
        "same page with offset= instead of the cursor (a filtered offset scans from row 0)"
    )


def print_memory(engine: dict[str, Any], peaks: dict[str, float], server: dict[str, Any]) -> None:
    idle, peak = engine["idle_rss_mib"], engine["peak_above_idle_mib"]
    worst = max(peaks, key=lambda name: peaks[name])
    before = server["before"]["VmRSS"]
    rows = [
        ["engine child: idle, dataset open", idle, ""],
        ["engine child: peak over all runs", engine["peak_rss_mib"], f"{peak:+.1f}"],
        ["engine child: after all runs", engine["final_rss_mib"], ""],
        [f"fresh child, worst: {worst}", "", f"{peaks[worst]:+.1f}"],
        ["server: before HTTP queries", before, ""],
        [
            "server: peak during HTTP queries",
            server["peak_mib"],
            f"{server['peak_mib'] - before:+.1f}",
        ],
        [
            "server: after HTTP queries",
            server["after"]["VmRSS"],
            f"{server['after']['VmRSS'] - before:+.1f}",
        ],
    ]
    print_table(["process", "RSS MiB", "above idle MiB"], rows, title="Memory")
    goal = f"the 8 MB ({MEMORY_GOAL_MIB:.2f} MiB) goal"
    print(
        f"\nengine peak over all runs: {peak:+.1f} MiB above idle, "
        f"{'within' if peak <= MEMORY_GOAL_MIB else 'OVER'} {goal}"
        + ("" if engine["peak_from_idle"] else " (VmHWM includes start-up)")
    )
    over = [name for name, mib in peaks.items() if mib > MEMORY_GOAL_MIB]
    print(
        "workloads over it in a fresh process: "
        + (", ".join(f"{n} ({peaks[n]:+.1f})" for n in over) if over else "none")
    )
    if not server["peak_from_before"]:
        print("(the server's peak is its VmHWM since it started: /proc/PID/clear_refs refused)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the dataset")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated file")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        data_dir, dataset_id, carrier, groupby_max, repeat, only = args.child
        child(Path(data_dir), dataset_id, carrier, int(groupby_max), int(repeat), only)
        return 0

    context = machine()
    groupby_max = groupby_max_default()
    with served_dataset(args.rows, args.seed) as (server, meta, data_dir):
        dataset_id, rows = meta["id"], meta["rows"]
        carrier, carrier_rows = rarest_carrier(server, dataset_id)
        print("  engine, in a child process ...", file=sys.stderr, flush=True)
        engine = run_child(data_dir, dataset_id, carrier, groupby_max, args.repeat)
        print("  engine memory, one fresh child a workload ...", file=sys.stderr, flush=True)
        peaks = memory_pass(data_dir, dataset_id, carrier, groupby_max, list(engine["runs"]))
        print("  the same over HTTP ...", file=sys.stderr, flush=True)
        before = settled(server.pids)
        resettable = reset_peak(server.pids)
        http, server_peak = measure_http(server, dataset_id, carrier, rows, args.repeat)
        after = settled(server.pids)
    plan = workloads(carrier, rows)
    server_memory = {
        "before": before,
        "after": after,
        "peak_mib": max(after["VmHWM"], server_peak),
        "peak_from_before": resettable,
    }
    engine_rows = engine_table(engine, peaks, plan, rows)
    http_rows = http_table(http, engine, plan, rows)
    pages = paging(engine, http)

    print_machine(context)
    print(
        f"Dataset: {rows:,} rows, {meta['source']['bytes'] / MIB:.1f} MiB CSV, "
        f"{meta['bytes'] / MIB:.1f} MiB stored; sync {meta['sync_seconds']:.1f} s; "
        f"rarest carrier {carrier} ({carrier_rows:,} rows); GROUPBY_MAX {groupby_max:,}"
    )
    print_engine(engine_rows, args.repeat, rows)
    print_http(http_rows, args.repeat)
    print_paging(pages, carrier)
    print_memory(engine, peaks, server_memory)
    figures = {
        "machine": context,
        "dataset": {
            "id": dataset_id,
            "rows": rows,
            "csv_bytes": meta["source"]["bytes"],
            "stored_bytes": meta["bytes"],
            "sync_seconds": meta["sync_seconds"],
            "rarest_carrier": carrier,
            "rarest_carrier_rows": carrier_rows,
            "groupby_max": groupby_max,
        },
        "repeat": args.repeat,
        "engine": engine_rows,
        "http": http_rows,
        "paging": pages,
        "memory": {
            "goal_mib": MEMORY_GOAL_MIB,
            "engine_idle_rss_mib": engine["idle_rss_mib"],
            "engine_peak_rss_mib": engine["peak_rss_mib"],
            "engine_peak_above_idle_mib": engine["peak_above_idle_mib"],
            "engine_final_rss_mib": engine["final_rss_mib"],
            "engine_peak_from_idle": engine["peak_from_idle"],
            "fresh_process_peak_above_idle_mib": peaks,
            "server_before_rss_mib": before["VmRSS"],
            "server_peak_rss_mib": server_memory["peak_mib"],
            "server_after_rss_mib": after["VmRSS"],
            "server_peak_from_before": resettable,
        },
    }
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
