"""Running statistics of a column, fed one batch of typed values at a time.

Exact where it is cheap: count, nulls, min, max, sum, mean and the sample standard deviation.
Integer columns keep exact integer sums of values and squares, so their variance is the exact
rational ``(n·Σx² − (Σx)²) / (n(n−1))``. Number columns merge each batch's count, mean and
squared deviations into the running ones with Chan et al.'s pairwise form of Welford's update,
and sum with ``math.fsum`` per batch and Shewchuk's exact partials across batches.

Numbers near the float limit (|x| around 1e154 and beyond, whose squares or sums pass
1.8e308) make a column's sum, mean and stddev null rather than infinite, which JSON cannot
hold; deviations below about 1e-154 square to zero, so such a column's stddev reads 0.

Sketched where it is not (see ``streaming.sketches``): distinct count, top values, quantiles and
the histogram, each in fixed memory, reported with ``approximate`` and ``error_bounds`` once
they are estimates.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from operator import mul
from typing import Any

from streaming.coerce import NUMERIC
from streaming.sketches import HyperLogLog, QuantileSketch, ValueCounts

QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
HISTOGRAM_BINS = 20
TOP_VALUES = 10
TOP_MAX_LENGTH = 256  # longer strings are counted everywhere but never listed as top values


class ColumnStats:
    """Statistics of one column of one type; ``update`` takes a batch, ``result`` reports."""

    def __init__(self, kind: str, nulls: int = 0) -> None:
        self.kind = kind
        self.count = 0
        self.nulls = nulls
        self.values = ValueCounts(mix=kind not in ("string", "date", "datetime"))
        self.low: Any = None
        self.high: Any = None
        if kind in NUMERIC:
            self.numeric: NumericMoments | None = NumericMoments(kind == "integer")
            self.quantiles: QuantileSketch | None = QuantileSketch()
        else:
            self.numeric = None
            self.quantiles = None
        self.min_length: int | None = None
        self.max_length: int | None = None

    def update(self, values: Sequence[Any], nulls: int) -> None:
        """Add a batch of non-null typed values and the number of nulls beside them."""
        self.nulls += nulls
        if not values:
            return
        self.count += len(values)
        if self.kind == "string":
            lengths = list(map(len, values))
            self._lengths(min(lengths), max(lengths))
            if max(lengths) > TOP_MAX_LENGTH:
                # Counted by a stand-in: a long text costs a fixed few bytes.
                self.values.update([v if len(v) <= TOP_MAX_LENGTH else _long(v) for v in values])
            else:
                self.values.update(values)
        else:
            self.values.update(values)
        if self.kind == "datetime":
            # ISO text orders by time only at one precision: "…:00Z" sorts after "…:00.5Z".
            # A batch of one length is of one precision (and all with "Z" or all without).
            if len(set(map(len, values))) == 1:
                self._extremes(min(values), max(values))
            else:
                self._extremes(min(values, key=moment), max(values, key=moment))
        elif self.kind in ("integer", "number", "date"):
            self._extremes(min(values), max(values))
        if self.numeric is not None and self.quantiles is not None:
            self.numeric.update(values)
            self.quantiles.update(values)

    def state(self) -> dict[str, Any]:
        """Everything ``result`` is made from, as plain values (``marshal`` keeps them)."""
        return {
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "values": self.values.state(),
            "low": self.low,
            "high": self.high,
            "numeric": None if self.numeric is None else self.numeric.state(),
            "quantiles": None if self.quantiles is None else self.quantiles.state(),
            "lengths": [self.min_length, self.max_length],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ColumnStats:
        stats = cls(state["kind"], state["nulls"])
        stats.count = state["count"]
        stats.values = ValueCounts.from_state(state["values"])
        stats.low, stats.high = state["low"], state["high"]
        if state["numeric"] is not None:
            stats.numeric = NumericMoments.from_state(state["numeric"])
        if state["quantiles"] is not None:
            stats.quantiles = QuantileSketch.from_state(state["quantiles"])
        stats.min_length, stats.max_length = state["lengths"]
        return stats

    def merge(self, other: ColumnStats) -> ColumnStats:
        """The statistics of both columns' values, one after the other: exact fields exactly
        (moments by Chan et al.'s pairwise update), sketches merged within their bounds. A
        column with no values takes the other's type; else the types must be the same."""
        if self.count == 0 and other.kind != self.kind:
            merged = ColumnStats.from_state(other.state())
            merged.nulls += self.nulls
            return merged
        if other.count == 0:
            self.nulls += other.nulls
            return self
        if other.kind != self.kind:
            raise ValueError(f"{self.kind} statistics cannot take {other.kind} values")
        self.count += other.count
        self.nulls += other.nulls
        self.values.merge(other.values)
        self._extremes(other.low, other.high)
        if self.numeric is not None and other.numeric is not None:
            self.numeric.merge(other.numeric)
        if self.quantiles is not None and other.quantiles is not None:
            self.quantiles.merge(other.quantiles)
        if other.min_length is not None and other.max_length is not None:
            self._lengths(other.min_length, other.max_length)
        return self

    def _top(self) -> list[dict[str, Any]]:
        pairs = self.values.top(TOP_VALUES + 1 if self.kind == "string" else TOP_VALUES)
        if self.kind == "string":  # drop a long text's stand-in
            pairs = [(v, c) for v, c in pairs if not str(v).startswith(_LONG)][:TOP_VALUES]
        return [{"value": v, "count": c} for v, c in pairs]

    def _extremes(self, low: Any, high: Any) -> None:
        key = moment if self.kind == "datetime" else None
        if self.low is None:
            self.low, self.high = low, high
        elif key is None:
            self.low, self.high = min(self.low, low), max(self.high, high)
        else:
            self.low, self.high = min(self.low, low, key=key), max(self.high, high, key=key)

    def _lengths(self, shortest: int, longest: int) -> None:
        if self.min_length is None or self.max_length is None:
            self.min_length, self.max_length = shortest, longest
        else:
            self.min_length = min(self.min_length, shortest)
            self.max_length = max(self.max_length, longest)

    def result(self) -> dict[str, Any]:
        """The STATS object of the API (``GET /datasets/ID/stats``)."""
        out: dict[str, Any] = {
            "type": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            # An estimate may overshoot; there are never more distinct values than values.
            "distinct": min(self.values.distinct(), self.count),
            "distinct_exact": self.values.exact,
            "top": self._top(),
        }
        bounds: dict[str, float] = {}
        if not self.values.exact:
            bounds["distinct"] = round(HyperLogLog.RELATIVE_ERROR, 4)
            bounds["top"] = self.values.top_error
        if self.kind in ("integer", "number", "date", "datetime"):
            out["min"], out["max"] = self.low, self.high
        if self.numeric is not None and self.quantiles is not None:
            out.update(self.numeric.result())
            sketch = self.quantiles
            picks = sketch.quantiles(list(QUANTILES.values()))
            out["quantiles"] = dict(zip(QUANTILES, picks)) if self.count else None
            out["histogram"] = (
                sketch.histogram(self.low, self.high, HISTOGRAM_BINS, self.kind == "integer")
                if self.count
                else []
            )
            if not sketch.exact:
                bounds["quantiles"] = round(QuantileSketch.RANK_ERROR, 4)
                bounds["histogram"] = round(QuantileSketch.HISTOGRAM_ERROR, 4)
        if self.kind == "string":
            out["min_length"], out["max_length"] = self.min_length, self.max_length
        out["approximate"] = bool(bounds)
        if bounds:
            out["error_bounds"] = bounds
        return out


_LONG = "\x00long:"


def _long(text: str) -> str:
    """A short stand-in for a long text: counted as itself, never listed as a top value; the
    same in every process (CRC-32 and length: statistics saved by one sync merge with
    another's)."""
    data = text.encode("utf-8", "surrogatepass")
    return f"{_LONG}{zlib.crc32(data):08x}{len(data):x}"


def moment(text: str) -> str:
    """A sort key for canonical datetime text that ignores its fractional-second width."""
    zulu = text.endswith("Z")
    body = text[:-1] if zulu else text
    if "." not in body:
        body += ".000000"
    return body


class NumericMoments:
    """Exact sum, mean and sample standard deviation of numbers seen in batches."""

    def __init__(self, integral: bool) -> None:
        self.integral = integral
        self.n = 0
        self.total = 0  # exact integer sum (integer columns)
        self.squares = 0  # exact integer sum of squares (integer columns)
        self.partials: list[float] = []  # Shewchuk partials of the sum (number columns)
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the mean (number columns)
        self.overflow = False  # a sum or a square went beyond the float range

    def state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _MOMENTS}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NumericMoments:
        moments = cls(state["integral"])
        for name in _MOMENTS:
            setattr(moments, name, state[name])
        moments.partials = list(moments.partials)
        return moments

    def merge(self, other: NumericMoments) -> None:
        """Both sets of numbers: integer sums added exactly; for floats the exact partials of
        the sum merged, and mean and squared deviations by Chan et al.'s pairwise update."""
        before, n = self.n, self.n + other.n
        self.n = n
        if self.integral:
            self.total += other.total
            self.squares += other.squares
            return
        if self.overflow or other.overflow or not n:
            self.overflow = self.overflow or other.overflow
            return
        for partial in other.partials:
            _add_partial(self.partials, partial)
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * before * other.n / n
        if not (math.isfinite(self.m2) and math.isfinite(self.mean)):
            self.overflow = True

    def update(self, values: Sequence[Any]) -> None:
        n = len(values)
        if self.integral:
            self.total += sum(values)
            self.squares += sum(map(mul, values, values))
            self.n += n
            return
        self.n, before = self.n + n, self.n
        if self.overflow:
            return
        try:
            batch_sum = math.fsum(values)
            batch_mean = batch_sum / n
            deviations = [v - batch_mean for v in values]
            batch_m2 = math.fsum(map(mul, deviations, deviations))
            _add_sum(self.partials, values, batch_sum)
            delta = batch_mean - self.mean
            self.mean += delta * n / self.n
            self.m2 += batch_m2 + delta * delta * before * n / self.n
        except (OverflowError, ValueError):  # a sum beyond the float range: inf, then nan
            self.overflow = True
        if not (math.isfinite(self.m2) and math.isfinite(self.mean)):
            self.overflow = True

    def result(self) -> dict[str, Any]:
        n = self.n
        if n == 0:
            return {"sum": 0, "mean": None, "stddev": None}
        if self.integral:
            spread = n * self.squares - self.total * self.total  # n(n-1)·variance, exactly
            stddev = math.sqrt(spread / (n * (n - 1))) if n > 1 else None
            total: int | float = self.total
            if not -(2**63) <= total < 2**63:
                total = float(total)  # JSON encoders stop at 64 bits
            return {"sum": total, "mean": self.total / n, "stddev": stddev}
        if self.overflow:
            return {"sum": None, "mean": None, "stddev": None}
        stddev = math.sqrt(max(self.m2, 0.0) / (n - 1)) if n > 1 else None
        try:
            total_sum = math.fsum(self.partials)
        except OverflowError:
            return {"sum": None, "mean": None, "stddev": None}
        return {"sum": total_sum, "mean": total_sum / n, "stddev": stddev}


_MOMENTS = ("integral", "n", "total", "squares", "partials", "mean", "m2", "overflow")


def _add_sum(partials: list[float], values: Sequence[float], rounded: float) -> None:
    """Add the exact sum of ``values`` to the partials, given ``rounded``, its fsum.

    The rounded sum alone may be half an ulp off, and those halves would add up batch after
    batch: add what rounding lost too, itself summed by fsum, until nothing is left (two or
    three rounds: each rest is at most 2**-53 of the one before).
    """
    rest = list(values)
    while rounded:
        _add_partial(partials, rounded)
        rest.append(-rounded)
        rounded = math.fsum(rest)


def _add_partial(partials: list[float], x: float) -> None:
    """Add x to Shewchuk's non-overlapping partials (the algorithm behind math.fsum)."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]
