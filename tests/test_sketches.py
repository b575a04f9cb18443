"""Fixed-size sketches against exact answers: KLL quantiles, HyperLogLog, Misra–Gries, Reservoir.

Every random input comes from a seeded generator, and the sketches' own randomness is seeded, so
each test has one outcome: the tolerances are the documented bounds, never a retry.
"""

from __future__ import annotations

import math
import random
import zlib
from bisect import bisect_left, bisect_right
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.sketches import (
    EXACT_LIMIT,
    HyperLogLog,
    QuantileSketch,
    Reservoir,
    ValueCounts,
    hash64,
)
from streaming.stats import ColumnStats

N = 200_000
FRACTIONS = [i / 100 for i in range(1, 100)]


def batches(values: list, size: int = 4096):
    """``values`` in consecutive slices of ``size``, as the conversion feeds them."""
    return [values[i : i + size] for i in range(0, len(values), size)]


def split(values: list, cuts: list[int]) -> list[list]:
    """``values`` cut at the given positions (any order, repeats allowed)."""
    edges = [0, *sorted(c % (len(values) + 1) for c in cuts), len(values)]
    return [values[a:b] for a, b in zip(edges, edges[1:])]


def sketch_of(values: list, seed: int = 0) -> QuantileSketch:
    sketch = QuantileSketch(seed=seed)
    for batch in batches(values):
        sketch.update(batch)
    return sketch


def rank_error(ordered: list, value, q: float) -> float:
    """How far q lies outside the range of normalized ranks that ``value`` holds in ``ordered``."""
    low = bisect_left(ordered, value) / len(ordered)
    high = bisect_right(ordered, value) / len(ordered)
    return max(0.0, low - q, q - high)


def distribution(name: str) -> list:
    rng = random.Random(name)
    if name == "sorted":
        return list(range(N))
    if name == "reversed":
        return list(range(N, 0, -1))
    if name == "uniform":
        return [rng.random() for _ in range(N)]
    if name == "duplicates":
        return [rng.randrange(20) for _ in range(N)]
    if name == "skewed":
        return [rng.lognormvariate(0, 2) for _ in range(N)]
    if name == "sorted-runs":  # sorted batches: the order a time-ordered file arrives in
        return [rng.randrange(1000) + 1000 * (i // 4096) for i in range(N)]
    raise ValueError(name)


DISTRIBUTIONS = ["sorted", "reversed", "uniform", "duplicates", "skewed", "sorted-runs"]


# --- QuantileSketch ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_quantiles_are_within_the_rank_error_of_exact_ranks(name):
    values = distribution(name)
    sketch = sketch_of(values)
    ordered = sorted(values)
    assert not sketch.exact
    assert sketch.n == N
    got = sketch.quantiles(FRACTIONS)
    worst = max(rank_error(ordered, value, q) for value, q in zip(got, FRACTIONS))
    assert worst <= QuantileSketch.RANK_ERROR


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_stay_within_the_rank_error_for_other_seeds(seed):
    values = distribution("uniform")
    got = sketch_of(values, seed=seed).quantiles(FRACTIONS)
    ordered = sorted(values)
    assert (
        max(rank_error(ordered, v, q) for v, q in zip(got, FRACTIONS)) <= QuantileSketch.RANK_ERROR
    )


def test_the_sketch_keeps_a_bounded_number_of_items():
    for values in (distribution("uniform"), distribution("uniform") * 4):
        items, _ = sketch_of(values)._weighted()
        assert len(items) <= 4 * QuantileSketch.K


def nearest_rank(ordered: list, q: float):
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@given(
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=EXACT_LIMIT),
    st.lists(st.integers(0, EXACT_LIMIT), max_size=4),
)
@settings(max_examples=60, deadline=None)
def test_quantiles_are_exact_up_to_the_exact_limit(values, cuts):
    sketch = QuantileSketch()
    for part in split(values, cuts):
        sketch.update(part)
    ordered = sorted(values)
    assert sketch.exact
    fractions = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]
    assert sketch.quantiles(fractions) == [nearest_rank(ordered, q) for q in fractions]


def test_one_value_past_the_exact_limit_makes_the_sketch_approximate():
    sketch = QuantileSketch()
    sketch.update(list(range(EXACT_LIMIT)))
    assert sketch.exact
    sketch.update([0])
    assert not sketch.exact


def test_an_empty_sketch_has_no_quantiles_and_no_histogram():
    assert QuantileSketch().quantiles([0.5]) == [None]
    assert QuantileSketch().histogram(0, 1, 20, False) == []


def check_bins(bins: list[dict], low, high, n: int, most: int = 20) -> None:
    """Bins are ordered, adjacent, cover [low, high] and count n values in all."""
    assert 1 <= len(bins) <= most
    assert bins[0]["start"] == low
    assert bins[-1]["end"] == high
    for a, b in zip(bins, bins[1:]):
        assert a["end"] == b["start"]
    assert all(b["start"] <= b["end"] for b in bins)
    assert all(b["count"] >= 0 for b in bins)
    assert sum(b["count"] for b in bins) == n


def exact_counts(ordered: list, bins: list[dict]) -> list[int]:
    """Values in each [start, end), the last bin closed."""
    edges = [bisect_left(ordered, b["start"]) for b in bins] + [len(ordered)]
    return [b - a for a, b in zip(edges, edges[1:])]


@given(
    st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-50, 50), min_size=1, max_size=300),
    st.integers(1, 30),
)
@settings(max_examples=150, deadline=None)
def test_an_integer_histogram_has_whole_bins_covering_min_to_max(values, bins):
    sketch = QuantileSketch()
    sketch.update(values)
    low, high = min(values), max(values)
    result = sketch.histogram(low, high, bins, integral=True)
    check_bins(result, low, high, len(values), most=bins)
    assert all(isinstance(b["start"], int) for b in result)
    assert [b["count"] for b in result] == exact_counts(sorted(values), result)


@given(
    st.lists(st.floats(-1e300, 1e300), min_size=1, max_size=300),
    st.integers(1, 30),
)
@settings(max_examples=150, deadline=None)
def test_a_number_histogram_covers_min_to_max(values, bins):
    sketch = QuantileSketch()
    sketch.update(values)
    result = sketch.histogram(min(values), max(values), bins, integral=False)
    check_bins(result, min(values), max(values), len(values), most=bins)


@pytest.mark.parametrize("integral", [True, False])
def test_a_histogram_of_one_value_is_one_bin(integral):
    sketch = QuantileSketch()
    sketch.update([7] * 10)
    assert sketch.histogram(7, 7, 20, integral) == [{"start": 7, "end": 7, "count": 10}]


@pytest.mark.parametrize("name", ["sorted", "reversed", "duplicates", "sorted-runs"])
def test_sketched_histogram_bins_are_within_the_histogram_error(name):
    values = distribution(name)
    low, high = min(values), max(values)
    result = sketch_of(values).histogram(low, high, 20, integral=True)
    check_bins(result, low, high, N)
    exact = exact_counts(sorted(values), result)
    worst = max(abs(b["count"] - e) for b, e in zip(result, exact)) / N
    assert worst <= QuantileSketch.HISTOGRAM_ERROR


# --- HyperLogLog -----------------------------------------------------------------------------


def estimate(values: list) -> int:
    hll = HyperLogLog()
    for batch in batches(values):
        hll.update(hash64(batch, mix=True))
    return hll.estimate()


@pytest.mark.parametrize("n", [1, 10, 100, 1_000, 5_000, 20_000, 40_000, 60_000, 100_000, 300_000])
def test_distinct_integers_are_counted_within_five_standard_errors(n):
    assert abs(estimate(list(range(n))) - n) <= 5 * HyperLogLog.RELATIVE_ERROR * n


@pytest.mark.parametrize("n", [3_000, 50_000, 200_000])
def test_distinct_floats_and_spread_integers_are_counted_within_five_standard_errors(n):
    for values in ([i * 0.25 - 1e6 for i in range(n)], [i * 7919 - 2**62 for i in range(n)]):
        assert abs(estimate(values) - n) <= 5 * HyperLogLog.RELATIVE_ERROR * n


def test_the_relative_error_is_the_documented_one():
    assert round(HyperLogLog.RELATIVE_ERROR, 4) == 0.0081


def test_repeats_and_order_do_not_change_the_estimate():
    values = list(range(30_000))
    once = estimate(values)
    assert estimate(values * 3) == once
    shuffled = values[:]
    random.Random(7).shuffle(shuffled)
    assert estimate(shuffled) == once


def test_numbers_hash_alike_in_every_run_and_every_batch():
    def h(values):
        return hash64(values, mix=True)

    assert h([1, 2.5, True]) == h([1]) + h([2.5]) + h([True])
    assert len(set(h(range(10_000)))) == 10_000
    assert all(0 <= x < 2**64 for x in h([-1, 0, 2**63 - 1, -(2**63), 1e308]))


def fmix64(value: object, mix: bool) -> int:
    """hash64 of one value, written out one step at a time: what saved sketches were made
    with, so a faster hash64 must give the very same numbers."""
    if not mix:
        value = zlib.crc32(str(value).encode("utf-8", "surrogatepass"))
    h = hash(value) * 0x9E3779B97F4A7C15 & (2**64 - 1)
    return (h ^ h >> 32) * 0xD6E8FEB86659FD93 & (2**64 - 1)


NUMBERS = st.integers() | st.floats(allow_nan=False) | st.booleans()
TEXTS = st.text() | st.text(st.characters(codec="utf-8")) | st.sampled_from(["\ud800", ""])


@given(values=st.lists(NUMBERS, max_size=70))
def test_numbers_hash_as_the_finalizer_written_out_says(values):
    assert hash64(values, mix=True) == [fmix64(v, True) for v in values]


@given(values=st.lists(TEXTS, max_size=70))
def test_texts_hash_as_the_finalizer_written_out_says(values):
    assert hash64(values, mix=False) == [fmix64(v, False) for v in values]


@given(
    sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=12),
    start=st.integers(-(2**62), 2**62),
    step=st.integers(1, 2**40),
    filled=st.none() | st.tuples(st.integers(0, 2**32), st.integers(20, 51)),
)
@settings(max_examples=40, deadline=None)
def test_adding_values_lowers_the_registers_their_hashes_lower(sizes, start, step, filled):
    """``add`` makes its cut on the hashes' lanes: the registers end as ``update`` leaves them,
    from empty registers or from registers that a long column filled (then most of the cut
    happens on the lanes: the largest bit length kept is below 51)."""
    added, updated = HyperLogLog(), HyperLogLog()
    if filled is not None:
        seed, highest = filled
        rng = random.Random(seed)
        registers = bytes(rng.randint(highest - 12, highest) for _ in range(1 << HyperLogLog.P))
        added, updated = HyperLogLog.from_state(registers), HyperLogLog.from_state(registers)
    for i, size in enumerate(sizes):
        values = range(start + i * 3000 * step, start + (i * 3000 + size) * step, step)
        added.add(values, mix=True)
        updated.update([fmix64(v, True) for v in values])
        assert added.state() == updated.state()


def test_a_value_hashes_alike_whatever_its_batch_holds():
    # A string column's batches mix texts with the SipHash of texts too long to keep.
    texts, numbers = ["a", "b", "c"], [hash("x" * 300), hash("y" * 300)]
    mixed = hash64(texts + numbers, mix=False)
    assert mixed == hash64(texts, mix=False) + hash64(numbers, mix=False)


def test_long_texts_are_counted_apart_by_their_hash():
    texts = [f"{i:0300d}" for i in range(6_000)]  # past the exact limit: into HyperLogLog
    stats = ColumnStats("string")
    for batch in batches(texts * 2):
        stats.update(batch, 0)
    got = stats.result()
    assert abs(got["distinct"] - 6_000) <= 5 * HyperLogLog.RELATIVE_ERROR * 6_000
    assert got["top"] == [] and got["max_length"] == 300


# --- ValueCounts -----------------------------------------------------------------------------


def top_by_count(counter: Counter, limit: int) -> list[tuple]:
    """The reference order: count descending, then the value's text."""
    return sorted(counter.items(), key=lambda item: (-item[1], str(item[0])))[:limit]


@given(
    st.lists(st.integers(0, 300) | st.sampled_from(["x", "y"]), max_size=2000),
    st.lists(st.integers(0, 2000), max_size=5),
)
@settings(max_examples=80, deadline=None)
def test_value_counts_are_exact_below_the_limit(values, cuts):
    counts = ValueCounts()
    for part in split(values, cuts):
        counts.update(part)
    truth = Counter(values)
    assert counts.exact
    assert counts.distinct() == len(truth)
    assert counts.top_error == 0
    assert counts.top(10) == top_by_count(truth, 10)
    assert counts.top(1000) == top_by_count(truth, 1000)


def test_counts_stay_exact_at_the_limit_and_are_sketched_past_it():
    counts = ValueCounts()
    counts.update(range(EXACT_LIMIT))
    assert counts.exact and counts.distinct() == EXACT_LIMIT
    counts.update([EXACT_LIMIT])
    assert not counts.exact
    assert abs(counts.distinct() - (EXACT_LIMIT + 1)) <= 5 * HyperLogLog.RELATIVE_ERROR * 4097


@st.composite
def skewed_stream(draw) -> tuple[list[int], list[int]]:
    """A stream past the exact limit with some frequent values, in a drawn order and batching."""
    heavy = draw(st.lists(st.integers(1, 3000), min_size=1, max_size=80))
    filler = draw(st.integers(EXACT_LIMIT + 1, 3 * EXACT_LIMIT))
    stream = [10**6 + i for i in range(filler)]
    for value, count in enumerate(heavy):
        stream += [value] * count
    random.Random(draw(st.integers(0, 2**32))).shuffle(stream)
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=8))
    return stream, cuts


@given(skewed_stream())
@settings(max_examples=40, deadline=None)
def test_sketched_top_counts_keep_the_misra_gries_guarantee(case):
    stream, cuts = case
    counts = ValueCounts()
    for part in split(stream, cuts):
        counts.update(part)
    truth, n = Counter(stream), len(stream)
    reported = dict(counts.top(ValueCounts.COUNTERS))
    assert not counts.exact
    assert counts.top_error <= n / (ValueCounts.COUNTERS + 1)
    for value, count in reported.items():
        assert truth[value] - counts.top_error <= count <= truth[value]
    frequent = {value for value, count in truth.items() if count > n / (ValueCounts.COUNTERS + 1)}
    assert frequent <= set(reported)
    assert abs(counts.distinct() - len(truth)) <= 5 * HyperLogLog.RELATIVE_ERROR * len(truth)


def test_a_dominant_value_is_first_with_a_count_close_to_its_own():
    stream = list(range(50_000)) + [-1] * 20_000
    random.Random(3).shuffle(stream)
    counts = ValueCounts()
    for batch in batches(stream):
        counts.update(batch)
    (value, count), *_ = counts.top(10)
    assert value == -1
    assert 20_000 - counts.top_error <= count <= 20_000


def test_long_texts_counted_by_hash_are_counted_once_in_every_batch():
    # The shape ColumnStats gives a string column with texts over its listing limit: short
    # texts as themselves, long ones as an integer hash; either may start a batch.
    short = [f"s{i}" for i in range(6000)]
    long = [hash(f"long text {i}" * 30) for i in range(3000)]
    counts = ValueCounts()
    counts.update(short[:1] + long + short[1:])
    first = counts.distinct()
    counts.update(long[:1] + short + long[1:])
    assert counts.distinct() == first
    assert abs(first - 9000) <= 5 * HyperLogLog.RELATIVE_ERROR * 9000


# --- Reservoir -------------------------------------------------------------------------------


@given(st.integers(0, 3000), st.integers(1, 200), st.lists(st.integers(0, 3000), max_size=6))
@settings(max_examples=80, deadline=None)
def test_the_reservoir_keeps_its_size_and_only_stream_items(length, size, cuts):
    stream = list(range(length))
    reservoir = Reservoir(size, seed=length)
    for part in split(stream, cuts):
        reservoir.update(part)
    assert reservoir.seen == length
    assert len(reservoir.items) == min(size, length)
    assert len(set(reservoir.items)) == len(reservoir.items)  # without replacement
    assert set(reservoir.items) <= set(stream)
    if length <= size:
        assert reservoir.items == stream


def test_the_reservoir_is_reproducible_from_its_seed():
    def sample(seed: int) -> list[int]:
        reservoir = Reservoir(100, seed=seed)
        for batch in batches(list(range(20_000)), 333):
            reservoir.update(batch)
        return reservoir.items

    assert sample(5) == sample(5)
    assert sample(5) != sample(6)


def test_the_reservoir_samples_every_part_of_the_stream_alike():
    # 400 seeded runs of a 50-item sample from 1,000 items fed in batches of 37: each tenth of
    # the stream should hold a tenth of the 20,000 picks. Chi-square with 9 degrees of freedom
    # stays below 27.88 with probability 0.999; the seeds fix the outcome.
    buckets = Counter()
    runs, size, length = 400, 50, 1000
    for seed in range(runs):
        reservoir = Reservoir(size, seed=seed)
        for batch in batches(list(range(length)), 37):
            reservoir.update(batch)
        buckets.update(item * 10 // length for item in reservoir.items)
    expected = runs * size / 10
    chi_square = sum((buckets[b] - expected) ** 2 / expected for b in range(10))
    assert chi_square < 27.88
    first_and_last = [0, length - 1]
    inclusion = Counter()
    for seed in range(runs):
        reservoir = Reservoir(size, seed=seed)
        reservoir.update(list(range(length)))
        inclusion.update(x for x in reservoir.items if x in first_and_last)
    # Each item is kept with probability 0.05: about 20 of 400 runs, far from 0 and from 400.
    assert all(5 <= inclusion[x] <= 45 for x in first_and_last)
