"""Column statistics against independent oracles: DuckDB, and Python's exact ``statistics``."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from datetime import datetime

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.sketches import EXACT_LIMIT, HyperLogLog, QuantileSketch
from streaming.stats import QUANTILES, TOP_MAX_LENGTH, TOP_VALUES, ColumnStats, NumericMoments


def column_stats(kind: str, values: list, batch: int = 4096) -> dict:
    """The STATS of a column holding ``values`` (None for null), fed in batches as convert does."""
    stats = ColumnStats(kind)
    for i in range(0, len(values), batch):
        part = values[i : i + batch]
        present = [v for v in part if v is not None]
        stats.update(present, len(part) - len(present))
    return stats.result()


def duckdb_summary(values: list, sql_type: str) -> dict:
    """DuckDB's answer for the same column."""
    row = duckdb.execute(
        "SELECT count(x), count(*) - count(x), min(x), max(x), sum(x), avg(x), stddev_samp(x)"
        f" FROM unnest(?::{sql_type}[]) AS t(x)",
        [values],
    ).fetchone()
    return dict(zip(["count", "nulls", "min", "max", "sum", "mean", "stddev"], row))


def with_nulls(values: list, every: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    return [None if rng.randrange(every) == 0 else v for v in values]


def integers(n: int, low: int, high: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(low, high) for _ in range(n)]


INTEGER_COLUMNS = {
    "small": [3, 1, 4, 1, 5, 9, 2, 6],
    "negative": [-5, -3, 0, 2, -(2**40)],
    "one value": [42],
    "with nulls": [None, 7, None, 8, 9, None],
    "many batches": with_nulls(integers(20_000, -(10**6), 10**6), every=10),
    "int64 extremes": [2**63 - 1, -(2**63), 0, 1, -1],
    "large magnitudes": integers(10_000, 2**61, 2**62, seed=1),
}


@pytest.mark.parametrize("values", INTEGER_COLUMNS.values(), ids=INTEGER_COLUMNS.keys())
def test_integer_columns_agree_with_duckdb(values):
    got = column_stats("integer", values, batch=1000)
    want = duckdb_summary(values, "HUGEINT")
    present = [v for v in values if v is not None]
    assert got["count"] == want["count"]
    assert got["nulls"] == want["nulls"]
    assert (got["min"], got["max"]) == (want["min"], want["max"])
    assert got["sum"] == (want["sum"] if -(2**63) <= want["sum"] < 2**63 else float(want["sum"]))
    assert got["mean"] == pytest.approx(float(want["mean"]), rel=1e-12)
    if len(present) > 1:
        # DuckDB's stddev works in doubles; statistics.stdev is exact, then rounded once.
        assert got["stddev"] == pytest.approx(want["stddev"], rel=1e-9)
        assert got["stddev"] == pytest.approx(statistics.stdev(present), rel=1e-14)
    else:
        assert got["stddev"] is None


NUMBER_COLUMNS = {
    "small": [0.5, -1.25, 3.0, 2.75],
    "with nulls": [None, 1.5, None, -2.5, 1e-3],
    "many batches": with_nulls([random.Random(2).gauss(50, 10) for _ in range(20_000)], every=7),
    "wide range": [random.Random(3).uniform(-1e12, 1e12) for _ in range(5_000)],
}


@pytest.mark.parametrize("values", NUMBER_COLUMNS.values(), ids=NUMBER_COLUMNS.keys())
def test_number_columns_agree_with_duckdb_and_exact_statistics(values):
    got = column_stats("number", values, batch=1000)
    want = duckdb_summary(values, "DOUBLE")
    present = [v for v in values if v is not None]
    assert (got["count"], got["nulls"]) == (want["count"], want["nulls"])
    assert (got["min"], got["max"]) == (want["min"], want["max"])
    assert got["sum"] == pytest.approx(want["sum"], rel=1e-9)
    assert got["sum"] == math.fsum(present)  # exact, then rounded once
    assert got["mean"] == pytest.approx(statistics.fmean(present), rel=1e-15)
    assert got["stddev"] == pytest.approx(want["stddev"], rel=1e-9)
    assert got["stddev"] == pytest.approx(statistics.stdev(present), rel=1e-13)


def test_stddev_of_large_values_with_small_noise_does_not_cancel():
    # Σx² − (Σx)²/n loses every digit here: x² ≈ 1e18 leaves no room for noise of 1e-3.
    rng = random.Random(4)
    values = [1e9 + rng.random() for _ in range(20_000)]
    got = column_stats("number", values, batch=3000)
    assert got["stddev"] == pytest.approx(statistics.stdev(values), rel=1e-9)
    assert got["stddev"] == pytest.approx(1 / math.sqrt(12), rel=0.02)
    assert got["mean"] == pytest.approx(statistics.fmean(values), rel=1e-15)


@given(
    # Magnitudes whose squares neither overflow nor underflow (the xfail below has those), some
    # with a large common offset.
    st.lists(st.integers(-(10**12), 10**12).map(lambda i: i / 1024), min_size=2),
    st.sampled_from([0.0, 1e9, -1e12]),
    st.lists(st.integers(1, 50), min_size=1, max_size=6),
)
@settings(max_examples=100, deadline=None)
def test_moments_do_not_depend_on_how_values_are_batched(values, offset, sizes):
    values = [v + offset for v in values]
    moments, at = NumericMoments(integral=False), 0
    for size in sizes * (len(values) // sum(sizes) + 1):
        if at < len(values):
            moments.update(values[at : at + size])
            at += size
    got = moments.result()
    assert got["sum"] == math.fsum(values)
    spread = statistics.stdev(values)
    # Each batch's mean is rounded: the merge may be off by a few ulps of the values' magnitude.
    ulps = 8 * 2**-52 * max(map(abs, values))
    assert math.isclose(got["stddev"], spread, rel_tol=1e-9, abs_tol=ulps)


@pytest.mark.parametrize(
    "values",
    [
        [2**62] * 4,  # exactly 2**64
        [2**63 - 1, 1],  # one past the largest int64
        [-(2**63), -1],
        [2**63 - 1] * 3 + [-5],
    ],
)
def test_integer_sums_beyond_64_bits_are_reported_as_float(values):
    got = column_stats("integer", values)
    assert type(got["sum"]) is float
    assert got["sum"] == float(sum(values))
    assert got["mean"] == sum(values) / len(values)
    assert got["stddev"] == pytest.approx(statistics.stdev(values), rel=1e-14)


def test_an_integer_sum_within_64_bits_stays_an_integer():
    got = column_stats("integer", [2**63 - 2, 1])
    assert got["sum"] == 2**63 - 1
    assert type(got["sum"]) is int


@pytest.mark.parametrize(
    "batches",
    [
        [[1e308, 1e308]],
        [[1e308], [1e308]],
        [[1.7e308, -1.7e308]],
        [[1e200, -1e200]],
    ],
    ids=["sum-overflow", "sum-overflow-across-batches", "range-overflow", "square-overflow"],
)
def test_numbers_beyond_the_float_range_give_null_moments_not_a_crash(batches):
    stats = ColumnStats("number")
    for batch in batches:
        stats.update(batch, 0)
    got = stats.result()
    values = [v for batch in batches for v in batch]
    assert got["count"] == len(values)
    assert (got["sum"], got["mean"], got["stddev"]) == (None, None, None)
    assert (got["min"], got["max"]) == (min(values), max(values))
    assert sum(b["count"] for b in got["histogram"]) == len(values)


# --- strings, datetimes, top values ----------------------------------------------------------


def test_string_lengths_are_the_shortest_and_longest_in_characters():
    values = ["abc", "é", None, "x" * 1000, "naïve", "日本"]
    got = column_stats("string", values, batch=2)
    assert (got["min_length"], got["max_length"]) == (1, 1000)
    assert got["count"] == 5 and got["nulls"] == 1
    assert got["distinct"] == 5


def test_texts_too_long_to_list_are_counted_but_never_top_values():
    long = "y" * (TOP_MAX_LENGTH + 1)
    got = column_stats("string", [long] * 50 + ["short"] * 3)
    assert got["top"] == [{"value": "short", "count": 3}]
    assert got["distinct"] == 2
    assert got["count"] == 53


def test_top_values_are_exact_for_a_small_column():
    counter = Counter({f"v{i}": 30 - i for i in range(25)})
    values = list(counter.elements())
    random.Random(5).shuffle(values)
    got = column_stats("string", values, batch=100)
    assert got["top"] == [{"value": v, "count": c} for v, c in counter.most_common(TOP_VALUES)]
    assert got["distinct"] == 25 and got["distinct_exact"] is True


def test_integer_top_values_agree_with_duckdb():
    values = integers(3000, 0, 40, seed=6)
    got = column_stats("integer", values, batch=512)
    rows = duckdb.execute(
        "SELECT x, count(*) AS c FROM unnest(?::BIGINT[]) AS t(x) GROUP BY x ORDER BY c DESC, x",
        [values],
    ).fetchall()
    assert [t["count"] for t in got["top"]] == [c for _, c in rows[:TOP_VALUES]]
    assert all(dict(rows)[t["value"]] == t["count"] for t in got["top"])
    assert got["distinct"] == len(rows)


@pytest.mark.parametrize(
    ("values", "low", "high"),
    [
        (
            ["2023-01-01T00:00:00Z", "2023-01-01T00:00:00.500000Z", "2022-12-31T23:59:59.999999Z"],
            "2022-12-31T23:59:59.999999Z",
            "2023-01-01T00:00:00.500000Z",
        ),
        (
            ["2023-06-01T12:00:00.000001", "2023-06-01T12:00:00", "2023-06-01T11:59:59"],
            "2023-06-01T11:59:59",
            "2023-06-01T12:00:00.000001",
        ),
    ],
)
def test_datetime_min_and_max_are_by_time_not_by_text(values, low, high):
    for batch in (1, 3):
        got = column_stats("datetime", values, batch=batch)
        assert (got["min"], got["max"]) == (low, high)
    moments = sorted(values, key=lambda text: datetime.fromisoformat(text))
    assert (moments[0], moments[-1]) == (low, high)


@given(
    moments=st.lists(  # a few seconds apart, some whole: "…:01Z" sorts after "…:01.5Z"
        st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2020, 1, 1, 0, 0, 3))
        | st.integers(0, 3).map(lambda s: datetime(2020, 1, 1, 0, 0, s)),
        min_size=1,
        max_size=40,
    ),
    zulu=st.booleans(),
    batch=st.integers(1, 8),
)
def test_datetime_extremes_of_batches_of_one_precision_or_many_are_by_time(moments, zulu, batch):
    """A batch of texts of one length is compared as text, any other by its moment."""
    values = [m.isoformat() + ("Z" if zulu else "") for m in moments]
    got = column_stats("datetime", values, batch=batch)
    assert (got["min"], got["max"]) == (
        min(values, key=lambda text: moments[values.index(text)]),
        max(values, key=lambda text: moments[values.index(text)]),
    )


def test_date_min_and_max():
    got = column_stats("date", ["2023-05-01", None, "1999-12-31", "2024-02-29"], batch=2)
    assert (got["min"], got["max"]) == ("1999-12-31", "2024-02-29")
    assert "sum" not in got and "quantiles" not in got


# --- the shape of STATS, and when it is approximate ------------------------------------------


COMMON = {"type", "count", "nulls", "distinct", "distinct_exact", "top", "approximate"}
NUMERIC = {"min", "max", "sum", "mean", "stddev", "quantiles", "histogram"}
SHAPES = [
    ("integer", [1, 2, 3], COMMON | NUMERIC),
    ("number", [1.5, 2.5], COMMON | NUMERIC),
    ("date", ["2023-01-01"], COMMON | {"min", "max"}),
    ("datetime", ["2023-01-01T00:00:00"], COMMON | {"min", "max"}),
    ("string", ["a", "bb"], COMMON | {"min_length", "max_length"}),
    ("boolean", [True, False, True], COMMON),
    ("null", [None, None], COMMON),
]


@pytest.mark.parametrize(("kind", "values", "fields"), SHAPES)
def test_stats_have_the_fields_the_api_names_for_the_type(kind, values, fields):
    got = column_stats(kind, values)
    assert set(got) == fields
    assert got["type"] == kind
    assert got["approximate"] is False
    if "quantiles" in fields:
        assert list(got["quantiles"]) == ["p05", "p25", "p50", "p75", "p95"] == list(QUANTILES)


def test_a_column_of_nulls_alone_has_no_extremes_or_moments():
    got = column_stats("integer", [None] * 5)
    assert (got["count"], got["nulls"], got["distinct"]) == (0, 5, 0)
    assert got["min"] is got["max"] is got["mean"] is got["stddev"] is got["quantiles"] is None
    assert got["histogram"] == [] and got["top"] == []


def nearest_rank(ordered: list, q: float):
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_small_columns_have_exact_quantiles_and_histograms_and_no_error_bounds():
    values = integers(EXACT_LIMIT, -500, 500, seed=7)
    got = column_stats("integer", values, batch=1000)
    ordered = sorted(values)
    assert got["quantiles"] == {name: nearest_rank(ordered, q) for name, q in QUANTILES.items()}
    assert got["approximate"] is False and "error_bounds" not in got
    bins = got["histogram"]
    assert bins[0]["start"] == got["min"] and bins[-1]["end"] == got["max"]
    assert sum(b["count"] for b in bins) == len(values)
    inside = [sum(b["start"] <= v < b["end"] for v in values) for b in bins[:-1]]
    assert [b["count"] for b in bins[:-1]] == inside


def test_an_integer_histogram_never_reaches_past_the_maximum():
    got = column_stats("integer", list(range(21)))
    assert got["histogram"][-1]["end"] == 20
    assert all(b["start"] <= 20 for b in got["histogram"])
    assert sum(b["count"] for b in got["histogram"]) == 21


def test_a_sketched_numeric_column_is_approximate_with_the_documented_bounds():
    values = list(range(20_000))
    random.Random(8).shuffle(values)
    got = column_stats("integer", values)
    assert got["approximate"] is True
    assert got["distinct_exact"] is False
    bounds = got["error_bounds"]
    assert set(bounds) == {"distinct", "top", "quantiles", "histogram"}
    assert bounds["distinct"] == round(HyperLogLog.RELATIVE_ERROR, 4) == 0.0081
    assert bounds["quantiles"] == round(QuantileSketch.RANK_ERROR, 4) == 0.0133
    assert bounds["histogram"] == round(QuantileSketch.HISTOGRAM_ERROR, 4) == 0.0165
    assert 0 <= bounds["top"] <= len(values) / 65
    assert abs(got["distinct"] - 20_000) <= 5 * bounds["distinct"] * 20_000
    for name, q in QUANTILES.items():
        assert abs(got["quantiles"][name] / 20_000 - q) <= bounds["quantiles"] + 1 / 20_000
    # Exact parts stay exact.
    assert (got["count"], got["min"], got["max"], got["sum"]) == (20_000, 0, 19_999, sum(values))


def test_many_values_but_few_distinct_sketch_only_the_quantiles():
    got = column_stats("integer", [1, 2, 3] * 2000)
    assert got["distinct_exact"] is True and got["distinct"] == 3
    assert set(got["error_bounds"]) == {"quantiles", "histogram"}
    assert got["top"] == [{"value": v, "count": 2000} for v in (1, 2, 3)]


def test_a_high_cardinality_string_column_has_distinct_and_top_bounds():
    values = [f"id-{i}" for i in range(EXACT_LIMIT + 500)] + ["common"] * 300
    got = column_stats("string", values)
    assert got["approximate"] is True
    assert set(got["error_bounds"]) == {"distinct", "top"}
    assert got["top"][0]["value"] == "common"
    assert 300 - got["error_bounds"]["top"] <= got["top"][0]["count"] <= 300


def test_an_estimated_distinct_count_never_exceeds_the_count() -> None:
    """Past the exact limit HyperLogLog estimates; for all-distinct values it may overshoot."""
    stats = ColumnStats("integer")
    values = list(range(20_000))
    stats.update(values, 0)
    result = stats.result()
    assert result["distinct_exact"] is False
    assert result["distinct"] <= result["count"] == 20_000
