"""Charts: every mark's Vega-Lite v6 spec on generated and flights-shaped data, validated
against the v6 JSON schema that altair ships and rendered to PNG by vl-convert; aggregated
values checked against the group-by engine (exact groups) and DuckDB (time buckets and bins);
the 100 KB cap on high-cardinality columns; the 400s; and the recommendations.
"""

from __future__ import annotations

import datetime
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import jsonschema
import orjson
import pytest
import vl_convert
from altair.vegalite.v6.schema import core as vega_lite

import charts.data
import streaming.aggregate
from charts.recommend import recommend
from charts.render import image
from charts.request import MARKS
from charts.spec import SCHEMA, chart, validate
from server import Rillet
from streaming import filter as filters
from streaming.aggregate import Aggregate, group_by
from streaming.errors import BadRequest, RenderUnavailable
from streaming.read import Dataset, open_dataset
from tests.conftest import app_client, make_settings, upload

MAX_GROUPS = 10_000
VALIDATOR = jsonschema.Draft7Validator(vega_lite.load_schema())

# --- Data: generated (nulls in every column), flights-shaped, high-cardinality, empty ----------

CATEGORIES = ("North", "South", "East", "West", "Central", "Remote")
REGION = {"North": "cold", "South": "warm", "East": "cold", "West": "warm", "Central": "mild"}
GENERATED_COLUMNS = [
    "id",
    "category",
    "region",
    "label",
    "qty",
    "price",
    "flag",
    "day",
    "ts",
    "const",
    "note",
    "a.b",
    "count",
]


def generated(n: int = 3000, seed: int = 11) -> tuple[list[dict[str, Any]], str]:
    """Typed rows and their CSV: every kind of column, each with nulls, plus an identifier, a
    constant, free text, a name with a dot and a column named ``count``."""
    rng = random.Random(seed)

    def maybe(p: float, value: Any) -> Any:
        return None if rng.random() < p else value

    rows = []
    for i in range(n):
        category = maybe(0.08, rng.choice(CATEGORIES))
        rows.append(
            {
                "id": i,
                "category": category,
                "region": REGION.get(category or "", "far") if rng.random() < 0.9 else "mild",
                "label": maybe(0.05, f"label-{int(rng.paretovariate(1.2)) % 120:03d}"),
                "qty": maybe(0.1, rng.randint(-20, 120)),
                "price": maybe(0.05, round(rng.uniform(0, 500), 2)),
                "flag": maybe(0.1, rng.random() < 0.3),
                "day": maybe(
                    0.05, (datetime.date(2024, 1, 1) + datetime.timedelta(rng.randrange(300)))
                ),
                "ts": maybe(
                    0.05,
                    datetime.datetime(2024, 1, 1)
                    + datetime.timedelta(seconds=rng.randrange(9_000_000)),
                ),
                "const": "same",
                "note": f"note {rng.random():.12f}",
                "a.b": rng.choice("xyz"),
                "count": rng.randint(0, 4),
            }
        )
    lines = [",".join(GENERATED_COLUMNS)]
    for row in rows:
        cells = []
        for name in GENERATED_COLUMNS:
            v = row[name]
            if v is None:
                cells.append("")
            elif isinstance(v, bool):
                cells.append("true" if v else "false")
            elif isinstance(v, datetime.datetime):
                cells.append(v.strftime("%Y-%m-%dT%H:%M:%S"))
            else:
                cells.append(str(v))
        lines.append(",".join(cells))
    return rows, "\n".join(lines) + "\n"


AIRPORTS = [
    "ATL",
    "LAX",
    "ORD",
    "DFW",
    "DEN",
    "JFK",
    "SFO",
    "SEA",
    "LAS",
    "MCO",
    "EWR",
    "CLT",
    "PHX",
    "IAH",
    "MIA",
    "BOS",
    "MSP",
    "DTW",
]
CARRIERS = {"WN": 20, "DL": 17, "AA": 16, "UA": 13, "B6": 7, "AS": 6, "NK": 5, "F9": 4, "OO": 7}


def flights(n: int = 20_000, seed: int = 7) -> str:
    """A flights export: skewed delays that correlate, distances that fix air times, a
    high-cardinality tail number, an identifier and a constant column."""
    rng = random.Random(seed)
    where = {a: (rng.uniform(0, 2500), rng.uniform(0, 1200)) for a in AIRPORTS}
    tails = [f"N{rng.randint(100, 999)}{rng.choice('ABCDEFGHJK')}" for _ in range(1500)]
    lines = [
        "flight_id,date,dep_time,carrier,origin,dest,tail_num,dep_delay,arr_delay,"
        "distance,air_time,cancelled,source"
    ]
    for i in range(n):
        day = datetime.date(2024, 1, 1) + datetime.timedelta(rng.randrange(366))
        origin, dest = rng.sample(AIRPORTS, 2)
        (x1, y1), (x2, y2) = where[origin], where[dest]
        distance = int(((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5) + 80
        delay = int(rng.expovariate(1 / 15)) - 5 if rng.random() > 0.03 else None
        arrival = None if delay is None else delay + int(rng.gauss(0, 8))
        cancelled = rng.random() < 0.02
        air = "" if cancelled else str(int(distance / 7.5 + rng.gauss(20, 6)))
        cells = [
            i + 1,
            day,
            f"{day}T{rng.randint(5, 22):02d}:{rng.choice([0, 15, 30, 45]):02d}:00",
            rng.choices(list(CARRIERS), list(CARRIERS.values()))[0],
            origin,
            dest,
            rng.choice(tails),
            "" if delay is None else delay,
            "" if arrival is None else arrival,
            distance,
            air,
            "true" if cancelled else "false",
            "BTS",
        ]
        lines.append(",".join(map(str, cells)))
    return "\n".join(lines) + "\n"


def high_cardinality(n: int = 4000, seed: int = 3) -> str:
    """Long unique texts, unique datetimes with offsets and a long column name."""
    rng = random.Random(seed)
    long_name = "measurement_" + "x" * 150
    lines = [f"text,other,at,{long_name}"]
    start = datetime.datetime(2020, 1, 1)
    for i in range(n):
        at = start + datetime.timedelta(seconds=i * 7919 + rng.randrange(60))
        lines.append(
            f"{'lorem ipsum ' * 12}{i},{'dolor sit ' * 10}{rng.randrange(n)},"
            f"{at:%Y-%m-%dT%H:%M:%S}+02:00,{rng.gauss(0, 1):.6f}"
        )
    return "\n".join(lines) + "\n"


GENERATED_ROWS, GENERATED_CSV = generated()
LONG_NAME = "measurement_" + "x" * 150


@dataclass
class Data:
    rillet: Rillet
    ids: dict[str, str]

    def open(self, name: str) -> Dataset:
        return open_dataset(self.rillet.store, self.rillet.jobs, self.ids[name])


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    """One app and four datasets for the whole module (a sync each, once)."""
    rillet = Rillet(make_settings(tmp_path_factory.mktemp("charts") / "data"))
    with app_client(rillet) as client:
        texts = {
            "generated": GENERATED_CSV,
            "flights": flights(),
            "wide": high_cardinality(),
            "empty": "a,b,c\n",
        }
        yield Data(
            rillet, {k: upload(client, rillet, v, name=f"{k}.csv") for k, v in texts.items()}
        )


def make(
    data: Data, name: str, mark: str, filters_: dict[str, str] | None = None, **params: Any
) -> dict[str, Any]:
    with data.open(name) as dataset:
        query = filters.parse(filters_ or {}, dataset.meta["columns"])
        return chart(
            dataset,
            query,
            mark,
            params.get("x"),
            params.get("y"),
            params.get("color"),
            params.get("aggregate"),
            params.get("bins"),
            max_groups=MAX_GROUPS,
        )


def assert_valid(spec: dict[str, Any]) -> bytes:
    """Valid against the Vega-Lite v6 schema, under 100 KB, described; returns the JSON."""
    errors = list(VALIDATOR.iter_errors(spec))
    assert not errors, jsonschema.exceptions.best_match(errors).message[:2000]
    assert spec["$schema"] == SCHEMA
    assert spec["description"] and spec["title"]
    encoded = orjson.dumps(spec)
    assert len(encoded) < 100_000
    return encoded


def assert_renders(spec: dict[str, Any]) -> None:
    png = vl_convert.vegalite_to_png(spec)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


# --- Every mark: valid Vega-Lite v6 that renders ---------------------------------------------

CASES: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
    ("generated", "bar", {"x": "category"}, {}),
    ("generated", "bar", {"x": "category", "y": "price", "aggregate": "sum"}, {}),
    ("generated", "bar", {"x": "category", "y": "price", "color": "flag", "aggregate": "mean"}, {}),
    ("generated", "bar", {"x": "label", "y": "qty", "aggregate": "max"}, {}),
    ("generated", "bar", {"x": "qty", "y": "price", "bins": "12"}, {}),
    ("generated", "bar", {"x": "day", "color": "region"}, {"flag": "true"}),
    ("generated", "line", {"x": "day", "y": "qty"}, {}),
    ("generated", "line", {"x": "ts", "y": "price", "color": "category"}, {}),
    ("generated", "line", {"x": "category", "y": "price", "aggregate": "min"}, {}),
    ("generated", "area", {"x": "ts", "color": "flag"}, {}),
    ("generated", "area", {"x": "day", "y": "price", "color": "region", "aggregate": "mean"}, {}),
    ("generated", "arc", {"x": "category", "y": "qty"}, {}),
    ("generated", "arc", {"x": "label"}, {"price__gt": "100"}),
    ("generated", "rect", {"x": "category", "y": "region"}, {}),
    ("generated", "rect", {"x": "qty", "y": "price", "color": "price", "aggregate": "mean"}, {}),
    ("generated", "rect", {"x": "day", "y": "category"}, {"q": "note 0.1"}),
    ("generated", "histogram", {"x": "price"}, {}),
    ("generated", "histogram", {"x": "qty", "bins": "7", "color": "flag"}, {}),
    ("generated", "histogram", {"x": "ts"}, {"category__in": "North,South"}),
    ("generated", "point", {"x": "price", "y": "qty", "color": "category"}, {}),
    ("generated", "point", {"x": "ts", "y": "price", "color": "qty"}, {"flag__isnull": "1"}),
    ("generated", "boxplot", {"x": "category", "y": "price"}, {}),
    ("generated", "boxplot", {"y": "qty"}, {"category": "North"}),
    ("flights", "bar", {"x": "carrier", "y": "distance", "aggregate": "sum"}, {}),
    ("flights", "bar", {"x": "origin", "y": "dep_delay", "color": "carrier"}, {}),
    ("flights", "line", {"x": "date", "y": "arr_delay"}, {}),
    ("flights", "line", {"x": "dep_time", "y": "dep_delay", "color": "carrier"}, {}),
    ("flights", "area", {"x": "date", "color": "cancelled"}, {}),
    ("flights", "arc", {"x": "carrier"}, {"origin": "JFK"}),
    ("flights", "rect", {"x": "origin", "y": "dest", "color": "air_time"}, {}),
    ("flights", "histogram", {"x": "dep_delay"}, {}),
    ("flights", "histogram", {"x": "distance", "bins": "40"}, {"carrier": "UA"}),
    ("flights", "point", {"x": "distance", "y": "air_time", "color": "carrier"}, {}),
    ("flights", "boxplot", {"x": "carrier", "y": "arr_delay"}, {"dep_delay__gt": "30"}),
    ("empty", "bar", {"x": "a"}, {}),
    ("empty", "point", {"x": "a", "y": "b"}, {}),
]


@pytest.mark.parametrize(
    ("name", "mark", "params", "where"),
    CASES,
    ids=[f"{n}-{m}-{'-'.join(p.values())}{'-filtered' if w else ''}" for n, m, p, w in CASES],
)
def test_every_mark_is_valid_vega_lite_v6_and_renders(
    datasets: Data, name: str, mark: str, params: dict[str, str], where: dict[str, str]
) -> None:
    spec = make(datasets, name, mark, where, **params)
    assert_valid(spec)
    assert_renders(spec)
    assert spec["usermeta"]["rillet"]["mark"] == mark
    if where:
        assert spec["title"]["subtitle"].startswith("Where ")


def test_every_mark_is_covered() -> None:
    assert {mark for _, mark, _, _ in CASES} == set(MARKS)


# --- Values: the group-by engine's, DuckDB's ---------------------------------------------------


def as_label(value: Any) -> Any:
    """A category as a chart shows it."""
    if value is None:
        return "(null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


EXACT = [
    ("bar", {"x": "category"}, {}),
    ("bar", {"x": "category", "y": "price", "aggregate": "sum"}, {}),
    ("bar", {"x": "category", "y": "qty", "color": "flag", "aggregate": "mean"}, {}),
    ("line", {"x": "qty", "y": "price", "aggregate": "max"}, {}),
    ("area", {"x": "flag", "color": "region"}, {"qty__gte": "10"}),
    ("arc", {"x": "region", "y": "qty", "aggregate": "sum"}, {}),
    ("rect", {"x": "category", "y": "region", "color": "price", "aggregate": "min"}, {}),
    ("bar", {"x": "label", "y": "price", "aggregate": "mean"}, {"flag": "true"}),
]


@pytest.mark.parametrize(("mark", "params", "where"), EXACT)
def test_aggregated_values_equal_the_group_by_engine(
    datasets: Data, mark: str, params: dict[str, str], where: dict[str, str]
) -> None:
    spec = make(datasets, "generated", mark, where, **params)
    meta = spec["usermeta"]["rillet"]
    assert meta["source"] in ("groupby", "statistics")
    second = params.get("y") if mark == "rect" else params.get("color")
    dims = [params["x"], *([second] if second else [])]
    measured = params.get("color") if mark == "rect" else params.get("y")
    function = params.get("aggregate", "count")
    with datasets.open("generated") as dataset:
        query = filters.parse(where, dataset.meta["columns"])
        aggregates = [Aggregate("count", None, None)]
        if measured:
            aggregates.append(Aggregate(function, measured, dataset.names.index(measured)))
        groups, truncated = group_by(
            dataset, query, [dataset.names.index(d) for d in dims], aggregates, MAX_GROUPS
        )
    assert not truncated
    name = aggregates[-1].name
    expected = {
        tuple(as_label(g[d]) for d in dims): (g["count"], g[name])
        for g in groups
        if not ("qty" in dims and g["qty"] is None)  # a line leaves out rows with no x
    }
    shown = {tuple(v[d] for d in dims): (v["count"], v[name]) for v in spec["data"]["values"]}
    if meta.get("folded"):  # the label column keeps its 50 most frequent values
        assert "mean" in name and len(shown) == 50
        expected = {k: v for k, v in expected.items() if k in shown}
    assert shown == expected


def duck() -> duckdb.DuckDBPyConnection:
    """The generated rows in DuckDB, typed as generated (no CSV inference)."""
    con = duckdb.connect()
    con.execute(
        "create table t (category varchar, qty bigint, price double, flag boolean, "
        "day date, ts timestamp)"
    )
    con.executemany(
        "insert into t values (?, ?, ?, ?, ?, ?)",
        [
            [r["category"], r["qty"], r["price"], r["flag"], r["day"], r["ts"]]
            for r in GENERATED_ROWS
        ],
    )
    return con


def test_time_buckets_equal_duckdb(datasets: Data) -> None:
    spec = make(datasets, "generated", "line", {"category": "North"}, x="ts", y="price")
    unit = spec["usermeta"]["rillet"]["time_units"]["ts"]
    assert unit in ("day", "week", "month")
    assert spec["encoding"]["x"]["title"] == f"Ts ({unit})"
    # Vega-Lite's weeks start on Sunday, DuckDB's on Monday: shift by a day to compare.
    bucket = (
        "date_trunc('week', ts + interval 1 day) - interval 1 day"
        if unit == "week"
        else f"date_trunc('{unit}', ts)"
    )
    rows = (
        duck()
        .execute(
            f"select strftime({bucket}, '%Y-%m-%d'), count(*), avg(price) from t "
            "where category = 'North' and ts is not null group by 1"
        )
        .fetchall()
    )
    expected = {day: (n, mean) for day, n, mean in rows}
    shown = {v["ts"]: (v["count"], v["mean_price"]) for v in spec["data"]["values"]}
    assert shown.keys() == expected.keys()
    for key, (n, mean) in shown.items():
        assert n == expected[key][0]
        assert mean == pytest.approx(expected[key][1], rel=1e-9)


def test_bins_equal_duckdb(datasets: Data) -> None:
    con = duck()
    spec = make(datasets, "generated", "histogram", {"flag": "false"}, x="price", bins="25")
    assert spec["usermeta"]["rillet"]["source"] == "buckets"
    values = spec["data"]["values"]
    assert 20 <= len(values) <= 30
    for v in values:
        (n,) = con.execute(
            "select count(*) from t where flag = false and price >= ? and price < ?",
            [v["price"], v["price_end"]],
        ).fetchone() or (None,)
        assert v["count"] == n, v
    total = con.execute("select count(price) from t where flag = false").fetchone()
    assert total is not None and sum(v["count"] for v in values) == total[0]

    bar = make(datasets, "generated", "bar", x="qty", y="price", aggregate="sum", bins="10")
    for v in bar["data"]["values"]:
        (total_price,) = con.execute(
            "select sum(price) from t where qty >= ? and qty < ?", [v["qty"], v["qty_end"]]
        ).fetchone() or (None,)
        assert v["sum_price"] == pytest.approx(total_price, rel=1e-9)


def test_histogram_without_filters_is_the_stats_histogram(datasets: Data) -> None:
    spec = make(datasets, "flights", "histogram", x="dep_delay")
    with datasets.open("flights") as dataset:
        stored = orjson.loads(dataset.stats_bytes())["dep_delay"]["histogram"]
    assert spec["usermeta"]["rillet"]["source"] == "statistics"
    assert [(v["dep_delay"], v["dep_delay_end"], v["count"]) for v in spec["data"]["values"]] == [
        (b["start"], b["end"], b["count"]) for b in stored
    ]


def test_charts_from_statistics_and_the_sample_read_no_rows(
    datasets: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_scan(*_: Any) -> Any:
        raise AssertionError("this chart should not scan the rows")

    monkeypatch.setattr(charts.data, "blocks", no_scan)
    monkeypatch.setattr(streaming.aggregate, "blocks", no_scan)
    assert make(datasets, "flights", "histogram", x="distance")["data"]["values"]
    assert make(datasets, "flights", "bar", x="cancelled")["data"]["values"]
    assert make(datasets, "flights", "point", x="distance", y="air_time")["data"]["values"]
    assert make(datasets, "flights", "boxplot", x="carrier", y="dep_delay")["data"]["values"]


# --- Bounds: categories, samples, bytes --------------------------------------------------------


WIDE = [
    ("bar", {"x": "text"}),
    ("bar", {"x": "text", "y": LONG_NAME, "color": "other", "aggregate": "sum"}),
    ("line", {"x": "at", "y": LONG_NAME, "color": "text"}),
    ("area", {"x": "text", "color": "other"}),
    ("arc", {"x": "other", "y": LONG_NAME, "aggregate": "max"}),
    ("rect", {"x": "text", "y": "other"}),
    ("rect", {"x": "at", "y": LONG_NAME}),
    ("histogram", {"x": "at", "color": "text"}),
    ("point", {"x": "text", "y": "other", "color": "at"}),
    ("point", {"x": "at", "y": LONG_NAME, "color": "text"}),
    ("boxplot", {"x": "other", "y": LONG_NAME}),
]


@pytest.mark.parametrize(("mark", "params"), WIDE)
def test_specs_stay_under_100_kb_on_high_cardinality_columns(
    datasets: Data, mark: str, params: dict[str, str]
) -> None:
    spec = make(datasets, "wide", mark, None, **params)
    encoded = assert_valid(spec)
    meta = spec["usermeta"]["rillet"]
    assert len(encoded) < 100_000
    assert len(spec["data"]["values"]) <= 1000
    assert LONG_NAME not in orjson.dumps(spec["data"]["values"]).decode()  # a short field name
    if mark in ("bar", "arc", "rect") and params["x"] in ("text", "other"):
        assert meta.get("folded") and "Other (" in encoded.decode()


def test_a_crowded_chart_still_renders(datasets: Data) -> None:
    spec = make(datasets, "wide", "bar", x="text", y=LONG_NAME, color="other", aggregate="sum")
    assert_renders(spec)


def test_bars_keep_the_most_frequent_categories_and_fold_the_rest(datasets: Data) -> None:
    spec = make(datasets, "flights", "bar", x="tail_num")
    values = spec["data"]["values"]
    assert len(values) == 50
    other = values[-1] if values[-1]["tail_num"].startswith("Other (") else None
    assert other is not None and sum(v["count"] for v in values) == 20_000
    assert "folded into 'Other (" in spec["description"]
    assert spec["encoding"]["y"]["sort"][-1] == other["tail_num"]  # horizontal, Other last


def test_point_and_boxplot_say_they_draw_a_sample(datasets: Data) -> None:
    spec = make(datasets, "flights", "point", x="distance", y="air_time")
    assert "uniform random sample" in spec["description"]
    assert (
        spec["usermeta"]["rillet"] | {"source": "sample", "rows": 20_000, "sampled": 1000}
        == (spec["usermeta"]["rillet"])
    )
    filtered = make(
        datasets, "flights", "point", {"carrier": "UA"}, x="distance", y="air_time", color="carrier"
    )
    assert {v["carrier"] for v in filtered["data"]["values"]} == {"UA"}
    assert filtered["usermeta"]["rillet"]["sampled"] == 1000
    assert "drawn in a scan" in filtered["description"]


def test_dates_are_read_as_utc_and_bucketed_to_fit(datasets: Data) -> None:
    line = make(datasets, "generated", "line", x="ts", y="price")
    assert (
        line["encoding"]["x"] | {"type": "temporal", "scale": {"type": "utc"}}
        == (line["encoding"]["x"])
    )
    assert all(v["ts"].endswith("Z") or len(v["ts"]) == 10 for v in line["data"]["values"])
    days = make(datasets, "flights", "line", x="date", y="dep_delay")
    assert days["usermeta"]["rillet"]["time_units"] == {"date": "week"}  # a year: 53 points
    assert len(days["data"]["values"]) == 53
    bars = make(datasets, "flights", "bar", x="date")
    assert bars["usermeta"]["rillet"]["time_units"] == {"date": "month"}  # 53 weeks > 50 bars
    assert bars["encoding"]["x"]["timeUnit"] == "utcyearmonth"
    with_offset = make(datasets, "wide", "histogram", x="at")
    assert all(not v["at"].endswith("+02:00") for v in with_offset["data"]["values"])


def test_column_names_like_paths_and_aggregates_are_safe(datasets: Data) -> None:
    spec = make(datasets, "generated", "bar", x="a.b", color="count")
    assert spec["encoding"]["x"]["field"] == "a\\.b"
    assert spec["encoding"]["color"]["field"] == "count (value)"
    counts = {(v["a.b"], v["count (value)"]): v["count"] for v in spec["data"]["values"]}
    expected: dict[tuple[str, int], int] = {}
    for r in GENERATED_ROWS:
        expected[r["a.b"], r["count"]] = expected.get((r["a.b"], r["count"]), 0) + 1
    assert counts == expected
    assert_renders(spec)


# --- Mistakes: 400s that say why -------------------------------------------------------------

BAD = [
    ({}, "bad_parameter", "mark is required"),
    ({"mark": "pie", "x": "category"}, "bad_parameter", "unknown mark 'pie'"),
    ({"mark": "bar"}, "bad_parameter", "mark=bar needs x"),
    ({"mark": "bar", "x": "nope"}, "unknown_column", "unknown column 'nope' in x"),
    ({"mark": "bar", "x": "category", "y": "nope"}, "unknown_column", "'nope' in y"),
    ({"mark": "bar", "x": "category", "y": "label"}, "bad_parameter", "needs a numeric y"),
    ({"mark": "bar", "x": "category", "aggregate": "sum"}, "bad_parameter", "needs y"),
    (
        {"mark": "bar", "x": "category", "y": "qty", "aggregate": "median"},
        "bad_parameter",
        "median",
    ),
    ({"mark": "bar", "x": "category", "y": "qty", "aggregate": "count"}, "bad_parameter", "no y"),
    ({"mark": "bar", "x": "category", "color": "category"}, "bad_parameter", "another column"),
    ({"mark": "bar", "x": "category", "color": "price"}, "bad_parameter", "at most 10"),
    ({"mark": "rect", "x": "category"}, "bad_parameter", "needs y"),
    ({"mark": "arc", "x": "category", "color": "flag"}, "bad_parameter", "takes no color"),
    ({"mark": "histogram", "x": "category"}, "bad_parameter", "numeric or date x"),
    ({"mark": "histogram", "x": "price", "y": "qty"}, "bad_parameter", "takes no y"),
    ({"mark": "histogram", "x": "price", "bins": "0"}, "bad_parameter", "from 1 to 100"),
    ({"mark": "histogram", "x": "price", "bins": "ten"}, "bad_parameter", "bins"),
    ({"mark": "bar", "x": "category", "bins": "5"}, "bad_parameter", "numeric x"),
    ({"mark": "point", "x": "price"}, "bad_parameter", "needs y"),
    ({"mark": "point", "x": "price", "y": "qty", "aggregate": "sum"}, "bad_parameter", "draws"),
    ({"mark": "boxplot", "x": "category", "y": "label"}, "bad_parameter", "numeric y"),
    ({"mark": "boxplot", "x": "price", "y": "qty"}, "bad_parameter", "one box"),
]


@pytest.mark.parametrize(("params", "code", "fragment"), BAD)
def test_bad_parameters_are_400s_that_say_why(
    datasets: Data, params: dict[str, str], code: str, fragment: str
) -> None:
    params = dict(params)
    with pytest.raises(BadRequest) as raised:
        make(datasets, "generated", params.pop("mark", ""), None, **params)
    assert raised.value.status == 400 and raised.value.code == code
    assert fragment in raised.value.message


# --- Recommendations -------------------------------------------------------------------------


def used_columns(spec: dict[str, Any]) -> set[str]:
    fields = set()
    for channel in spec["encoding"].values():
        for item in channel if isinstance(channel, list) else [channel]:
            fields.add(item.get("field", "").replace("\\", ""))
    return fields


@pytest.mark.parametrize("name", ["generated", "flights"])
def test_recommendations_skip_identifiers_constants_and_free_text(
    datasets: Data, name: str
) -> None:
    with datasets.open(name) as dataset:
        found = recommend(dataset, limit=8)
    assert 5 <= len(found) <= 8
    scores = [r["score"] for r in found]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    skipped = {"id", "const", "note", "flight_id", "source", "tail_num"}
    for item in found:
        assert set(item) == {"title", "reason", "score", "spec"}
        assert item["title"] and item["reason"]
        assert not used_columns(item["spec"]) & skipped, item["title"]
        assert_valid(item["spec"])
        assert_renders(item["spec"])


def test_recommendations_cover_the_kinds_of_chart(datasets: Data) -> None:
    marks = set()
    reasons = []
    for name in ("generated", "flights"):
        with datasets.open(name) as dataset:
            for item in recommend(dataset, limit=8):
                marks.add(item["spec"]["mark"]["type"])
                reasons.append(item["reason"])
                # Air time follows from distance (r > 0.98): derived, never charted together.
                assert used_columns(item["spec"]) != {"distance", "air_time"}, item["title"]
    assert {"bar", "line", "point", "rect"} <= marks  # histograms are bars
    assert any("rise together" in r for r in reasons)  # the delays
    assert any("How dep delay is distributed" in r or "distributed" in r for r in reasons)


def test_no_recommendations_for_a_dataset_without_rows(datasets: Data) -> None:
    with datasets.open("empty") as dataset:
        assert recommend(dataset) == []


def test_recommend_reads_at_most_three_scans(
    datasets: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = []
    real = streaming.aggregate.blocks

    def counted(*args: Any) -> Any:
        scans.append(1)
        return real(*args)

    monkeypatch.setattr(streaming.aggregate, "blocks", counted)
    monkeypatch.setattr(charts.data, "blocks", counted)
    with datasets.open("flights") as dataset:
        recommend(dataset, limit=8)
    assert len(scans) <= 3


# --- Pictures --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_a_chart_renders_as_an_image(datasets: Data, fmt: str) -> None:
    body, media_type = image(make(datasets, "flights", "bar", x="carrier"), fmt)
    assert media_type == f"image/{'svg+xml' if fmt == 'svg' else 'png'}"
    assert body.startswith(b"<svg" if fmt == "svg" else b"\x89PNG")


def test_without_vl_convert_images_are_a_clear_501(
    datasets: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make(datasets, "flights", "bar", x="carrier")
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # import fails as if not installed
    with pytest.raises(RenderUnavailable) as raised:
        image(spec, "png")
    assert raised.value.status == 501 and "vl-convert-python" in raised.value.message
    with pytest.raises(BadRequest):
        image(spec, "gif")


def test_parameters_are_checked_without_reading_rows(
    datasets: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_scan(*_: Any) -> Any:
        raise AssertionError("validate should not scan the rows")

    monkeypatch.setattr(charts.data, "blocks", no_scan)
    monkeypatch.setattr(streaming.aggregate, "blocks", no_scan)
    with datasets.open("generated") as dataset:
        query = filters.parse({"flag": "true"}, dataset.meta["columns"])
        validate(dataset, query, "line", "ts", "price", "category", "mean", None)
        with pytest.raises(BadRequest, match="needs x"):
            validate(dataset, query, "line", None, "price", None, None, None)


@pytest.mark.parametrize(
    ("mark", "params", "filters_"),
    [
        ("line", {"x": "date"}, {}),
        ("line", {"x": "date", "y": "distance", "aggregate": "sum"}, {"carrier": "UA"}),
        ("bar", {"x": "date", "y": "distance", "aggregate": "max"}, {}),
        ("bar", {"x": "date", "y": "distance", "aggregate": "min", "color": "carrier"}, {}),
        ("line", {"x": "date", "y": "arr_delay", "aggregate": "mean"}, {}),
        ("line", {"x": "date", "y": "distance", "aggregate": "mean"}, {"origin": "JFK"}),
    ],
)
def test_buckets_folded_from_exact_groups_equal_the_bucket_scan(
    datasets: Data,
    monkeypatch: pytest.MonkeyPatch,
    mark: str,
    params: dict[str, str],
    filters_: dict[str, str],
) -> None:
    """Weeks and months made by folding the days' groups (from the columns) into buckets are
    the buckets one scan of the rows makes."""
    spec = make(datasets, "flights", mark, filters_, **params)
    folded = spec["data"]["values"]
    nulls = params.get("y") == "arr_delay"  # a mean over a column with nulls is not folded
    assert spec["usermeta"]["rillet"]["source"] == ("buckets" if nulls else "groupby")
    monkeypatch.setattr(charts.data, "_folded_groups", lambda *args: None)
    scanned = make(datasets, "flights", mark, filters_, **params)["data"]["values"]
    assert len(folded) == len(scanned)
    for a, b in zip(folded, scanned):
        assert a.keys() == b.keys()
        for name in a:
            if isinstance(a[name], float):
                assert a[name] == pytest.approx(b[name], rel=1e-9), name
            else:
                assert a[name] == b[name], name
