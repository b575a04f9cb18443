"""A chart's time buckets and extents from the columns (charts.buckets) against one scan of
the rows: the same groups, in the same order, with the same counts and measures."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charts.data
from charts import buckets
from charts.data import Key, Measure
from streaming import column_store
from streaming import filter as filters
from streaming.convert import convert_csv
from streaming.read import Dataset
from streaming.store import Store
from tests.test_charts import MAX_GROUPS, Data, datasets, make  # noqa: F401 (the fixture)

DATASET = "ds_00000000c0de"
UNITS = ("minute", "hour", "day", "week", "month", "year")


def by_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buckets, "batches", lambda *args: None)
    monkeypatch.setattr(buckets, "extent", lambda *args: None)


def assert_same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert [list(r) for r in a] == [list(r) for r in b]
    for x, y in zip(a, b):
        for name, value in x.items():
            if isinstance(value, float):
                assert value == pytest.approx(y[name], rel=1e-9), name
            else:
                assert value == y[name], name


@pytest.mark.parametrize(
    ("name", "mark", "params", "filters_"),
    [
        ("generated", "line", {"x": "ts", "y": "price"}, {}),
        ("generated", "line", {"x": "ts", "y": "price", "color": "category"}, {}),
        ("generated", "line", {"x": "ts", "y": "qty", "aggregate": "max"}, {"category": "North"}),
        ("generated", "bar", {"x": "ts"}, {"price__gt": "50"}),
        ("generated", "area", {"x": "ts", "y": "price", "aggregate": "sum"}, {"flag": "true"}),
        ("flights", "line", {"x": "dep_time"}, {}),
        ("flights", "line", {"x": "dep_time", "y": "arr_delay", "aggregate": "mean"}, {}),
        ("flights", "line", {"x": "dep_time", "y": "distance", "color": "carrier"}, {}),
        ("flights", "bar", {"x": "date", "y": "dep_delay", "aggregate": "mean"}, {}),
        ("flights", "line", {"x": "dep_time", "y": "dep_delay"}, {"origin": "JFK"}),
        ("wide", "line", {"x": "at", "y": "measurement_" + "x" * 150}, {}),
    ],
)
def test_chart_buckets_from_the_columns_are_the_row_scans(
    datasets: Data,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    mark: str,
    params: dict[str, str],
    filters_: dict[str, str],
) -> None:
    answered = []
    batches = buckets.batches

    def spy(*args: Any) -> Any:
        found = batches(*args)
        answered.append(found is not None)
        return found

    with monkeypatch.context() as m:
        m.setattr(buckets, "batches", spy)
        spec = make(datasets, name, mark, filters_, **params)
    assert answered == [True]  # the columns answered: compare them with the rows
    by_rows(monkeypatch)
    scanned = make(datasets, name, mark, filters_, **params)
    assert spec["usermeta"]["rillet"] == scanned["usermeta"]["rillet"]
    assert_same(spec["data"]["values"], scanned["data"]["values"])


# --- Random datetimes and dates, every unit -----------------------------------------------------

MOMENTS = st.datetimes(
    min_value=datetime.datetime(1960, 1, 1), max_value=datetime.datetime(2030, 12, 31)
)


@st.composite
def tables(draw: Any) -> tuple[str, list[str]]:
    """A CSV of a datetime (naive or with Z, some with fractions), a date, a category and a
    number, with nulls; rows often in time order, as logs are."""
    zulu = draw(st.booleans())
    rows = draw(st.integers(1, 120))
    moments = draw(st.lists(MOMENTS, min_size=rows, max_size=rows))
    if draw(st.booleans()):  # a schedule: a few instants, each many times
        pool = moments[: draw(st.integers(1, 4))]
        moments = [pool[i % len(pool)] for i in range(rows)]
    if draw(st.booleans()):
        moments.sort()
    if draw(st.booleans()):  # on the hour
        moments = [m.replace(minute=0, second=0, microsecond=0) for m in moments]
    lines = ["at,day,group,value"]
    for m in moments:
        at = "" if draw(st.integers(0, 9)) == 0 else m.isoformat() + ("Z" if zulu else "")
        day = "" if draw(st.integers(0, 9)) == 0 else m.date().isoformat()
        group = draw(st.sampled_from(["a", "b", "c", ""]))
        value = draw(st.sampled_from(["", "1", "2.5", "-7", "1e3", "0.1", "0.3", "99.99"]))
        lines.append(f"{at},{day},{group},{value}")
    return "\n".join(lines) + "\n", draw(st.lists(st.sampled_from(UNITS), min_size=1, max_size=3))


@given(
    table=tables(),
    function=st.sampled_from(["count", "sum", "mean", "min", "max"]),
    block=st.sampled_from([3, 16, 65536]),  # many blocks, each stored its own way, or one
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_random_time_buckets_equal_the_row_scan(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    table: tuple[str, list[str]],
    function: str,
    block: int,
) -> None:
    text, units = table
    monkeypatch.setattr(column_store, "BLOCK_ROWS", block)
    store = Store(tmp_path / str(abs(hash(text))))
    source = tmp_path / "t.csv"
    source.write_text(text)
    folder = store.new_tmp_dir(DATASET)
    done = convert_csv(source, folder, columns=True)
    meta = {"id": DATASET, "name": "t.csv", "rows": done.rows, "columns": done.columns}
    store.publish(folder, DATASET, {**meta, "columns_format": done.columns_format})
    with Dataset(store, DATASET) as dataset:
        kinds = {c["name"]: c["type"] for c in dataset.meta["columns"]}
        position = dataset.names.index("value") if kinds["value"] != "null" else None
        measure = Measure(function if position is not None else "count", "value", position)
        for column in ("at", "day"):
            if kinds[column] not in ("date", "datetime"):
                continue
            for unit in units:
                if kinds[column] == "date" and unit in ("minute", "hour"):
                    continue
                keys = [Key(column, dataset.names.index(column), kinds[column], unit)]
                for more in ([], [Key("group", dataset.names.index("group"), kinds["group"])]):
                    for where in ({}, {"group": "a"}):
                        query = filters.parse(where, dataset.meta["columns"])
                        found = charts.data._buckets(dataset, query, keys + more, measure, 10_000)
                        extent = buckets.extent(dataset, query, keys[0])
                        assert extent is not None  # the columns answered: compare them
                        assert buckets.batches(dataset, query, keys + more, None) is not None
                        with monkeypatch.context() as m:
                            by_rows(m)
                            scanned = charts.data._buckets(
                                dataset, query, keys + more, measure, 10_000
                            )
                            assert extent == charts.data.extent(dataset, query, keys[0])
                        assert found[1] == scanned[1]
                        assert_same(found[0], scanned[0])
        if position is None:
            return
        low, high = charts.data.extent(
            dataset,
            filters.parse({}, dataset.meta["columns"]),
            Key("value", position, kinds["value"]),
        )
        for count in (3, 7, 20):  # numeric bins, found by bisect among a block's edges
            start, step, decimals = charts.data.bins(low, high, count, kinds["value"] == "integer")
            key = Key("value", position, kinds["value"], None, start, step, decimals)
            for where in ({}, {"group": "b"}):
                query = filters.parse(where, dataset.meta["columns"])
                found = charts.data._buckets(dataset, query, [key], Measure("count"), 10_000)
                assert buckets.batches(dataset, query, [key], None) is not None
                with monkeypatch.context() as m:
                    by_rows(m)
                    scanned = charts.data._buckets(dataset, query, [key], Measure("count"), 10_000)
                assert_same(found[0], scanned[0])


def test_a_batches_generator_dropped_unstarted_or_halfway_closes_its_reader(
    datasets: Data,  # noqa: F811
) -> None:
    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    with datasets.open("generated") as dataset:
        key = Key("ts", dataset.names.index("ts"), "datetime", "day")
        query = filters.parse({}, dataset.meta["columns"])
        before = descriptors()
        for _ in range(30):
            assert buckets.batches(dataset, query, [key], None) is not None  # dropped
            found = buckets.batches(dataset, query, [key], None)
            assert found is not None
            next(found)  # halfway
            del found
        assert descriptors() == before


def synced(folder: Path, text: str, damage: bool = False) -> Store:
    """A dataset ``DATASET`` of ``text``, its first column segment damaged if asked."""
    source = folder / "t.csv"
    source.write_text(text)
    store = Store(folder / "store")
    tmp = store.new_tmp_dir(DATASET)
    done = convert_csv(source, tmp, columns=True)
    if damage:
        described = orjson.loads((tmp / "columns.json").read_bytes())
        offset = described["columns"][0]["blocks"][0][0]
        data = bytearray((tmp / "columns.bin").read_bytes())
        data[offset + 3] ^= 0xFF
        (tmp / "columns.bin").write_bytes(bytes(data))
    meta = {"id": DATASET, "name": "t.csv", "rows": done.rows, "columns": done.columns}
    store.publish(tmp, DATASET, {**meta, "columns_format": done.columns_format})
    return store


def test_bins_of_filtered_rows_ignore_an_outlier_the_filter_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bins are the kept rows': an outlier in the block asks for no edges of its own
    (it once asked for a million, seconds and a gigabyte)."""
    edges = []
    edge = Key.edge

    def counted(self: Key, i: int) -> float:
        edges.append(i)
        return edge(self, i)

    monkeypatch.setattr(Key, "edge", counted)
    text = "price\n" + "".join(f"{i / 100:.2f}\n" for i in range(100)) + "10000000.0\n"
    with Dataset(synced(tmp_path, text), DATASET) as dataset:
        query = filters.parse({"price__lt": "1"}, dataset.meta["columns"])
        low, high = charts.data.extent(dataset, query, Key("price", 0, "number"))
        start, step, decimals = charts.data.bins(low, high, 20, False)
        key = Key("price", 0, "number", None, start, step, decimals)
        found = charts.data._buckets(dataset, query, [key], Measure("count"), 10_000)
        assert len(edges) < 100  # a few edges around the kept values, not a million
        assert sum(row["count"] for row in found[0]) == 100


def test_a_damaged_segment_gives_way_to_the_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [f"2020-01-{1 + i % 28:02d}T{i % 24:02d}:00:00,{i}" for i in range(500)]
    text = "at,v\n" + "\n".join(lines) + "\n"
    with Dataset(synced(tmp_path, text, damage=True), DATASET) as dataset:
        query = filters.parse({}, dataset.meta["columns"])
        key = Key("at", 0, "datetime", "week")
        assert buckets.extent(dataset, query, key) is None  # the columns decline
        assert charts.data.extent(dataset, query, key) == (
            "2020-01-01T00:00:00",
            "2020-01-28T23:00:00",
        )
        rows, _ = charts.data._buckets(dataset, query, [key], Measure("count"), 100)
        assert sum(r["count"] for r in rows) == 500
    assert "cannot answer a chart" in caplog.text
