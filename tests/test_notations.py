"""Numbers and dates as exports write them: random tables round-trip, and late batches.

A column is read in one notation chosen from its first batch; a later batch that contradicts
it widens the column through the conversion's restart, as a plain type does (convert.py).
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.corpus import convert_bytes

DATE_STYLES = {
    # pattern: (day first?, separator, year first?)
    "%Y/%m/%d": (False, "/", True),
    "%Y.%m.%d": (False, ".", True),
    "%d.%m.%Y": (True, ".", False),
    "%d/%m/%Y": (True, "/", False),
    "%m/%d/%Y": (False, "/", False),
    "%d-%m-%Y": (True, "-", False),
}
# ISO dates are the fast path (no format); written here for the datetimes built on them.
WRITTEN = DATE_STYLES | {"%Y-%m-%d": (False, "-", True)}
DAYS = st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31))


def write_date(day: date, style: str, padded: bool) -> str:
    day_first, sep, year_first = WRITTEN[style]
    d, m = (f"{day.day:02d}", f"{day.month:02d}") if padded else (str(day.day), str(day.month))
    if year_first:
        return f"{day.year:04d}{sep}{m}{sep}{d}"
    first, second = (d, m) if day_first else (m, d)
    return f"{first}{sep}{second}{sep}{day.year:04d}"


def read_as(style: str, days: list[date], order: str) -> tuple[str, list[date]]:
    """The pattern a person reading the column would choose, and the dates they would read:
    the style, unless no value tells day from month and the default order says otherwise."""
    day_first, sep, year_first = WRITTEN[style]
    if year_first or any(d.day > 12 for d in days):
        return style, days
    default_day_first = sep == "." or order == "dmy"
    if default_day_first == day_first:
        return style, days
    swapped = [date(d.year, d.day, d.month) for d in days]
    pattern = style.replace("%d", "#").replace("%m", "%d").replace("#", "%m")
    return pattern, swapped


def csv_text(header: list[str], columns: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(zip(*columns))
    return out.getvalue().encode()


@st.composite
def date_column(draw):  # type: ignore[no-untyped-def]
    style = draw(st.sampled_from(sorted(DATE_STYLES)))
    padded = draw(st.booleans())
    days = draw(st.lists(DAYS, min_size=1, max_size=20))
    return style, days, [write_date(d, style, padded) for d in days]


@given(st.lists(date_column(), min_size=1, max_size=4), st.sampled_from(["mdy", "dmy"]))
@settings(max_examples=150, deadline=None)
def test_dates_in_every_style_round_trip(columns, order):
    rows = min(len(days) for _, days, _ in columns)
    data = csv_text([f"c{i}" for i in range(len(columns))], [t[:rows] for _, _, t in columns])
    with tempfile.TemporaryDirectory() as directory:
        conversion, got = convert_bytes(Path(directory), data, {"date_order": order})
    for j, (style, days, _) in enumerate(columns):
        pattern, expected = read_as(style, days[:rows], order)
        assert conversion.columns[j]["type"] == "date"
        assert conversion.columns[j]["format"] == pattern
        assert [row[j] for row in got] == [d.isoformat() for d in expected]


OFFSETS = {
    "": None,
    "Z": UTC,
    " UTC": UTC,
    " -0500": timezone(timedelta(hours=-5)),
    "+01:00": timezone(timedelta(hours=1)),
    "+0530": timezone(timedelta(hours=5, minutes=30)),
}
MOMENTS = st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30))


def write_clock(moment: datetime, twelve: bool, seconds: bool) -> str:
    if twelve:
        hour = moment.hour % 12 or 12
        text = f"{hour}:{moment.minute:02d}"
    else:
        text = f"{moment.hour:02d}:{moment.minute:02d}"
    if seconds:
        text += f":{moment.second:02d}"
    return text + ((" PM" if moment.hour >= 12 else " AM") if twelve else "")


@given(
    moments=st.lists(MOMENTS, min_size=1, max_size=20),
    style=st.sampled_from(["%Y/%m/%d", "%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y"]),
    separator=st.sampled_from([" ", "T"]),
    twelve=st.booleans(),
    seconds=st.booleans(),
    offset=st.sampled_from(sorted(OFFSETS)),
)
@settings(max_examples=150, deadline=None)
def test_datetimes_in_every_style_round_trip(moments, style, separator, twelve, seconds, offset):
    if not seconds:
        moments = [m.replace(second=0, microsecond=0) for m in moments]
    moments = [m.replace(microsecond=0) for m in moments]
    texts = [
        write_date(m.date(), style, True) + separator + write_clock(m, twelve, seconds) + offset
        for m in moments
    ]
    with tempfile.TemporaryDirectory() as directory:
        conversion, got = convert_bytes(Path(directory), csv_text(["at"], [texts]))
    pattern, days = read_as(style, [m.date() for m in moments], "mdy")
    zone = OFFSETS[offset]
    expected = []
    for moment, day in zip(moments, days):
        read = datetime.combine(day, moment.time())
        if zone is None:
            expected.append(read.isoformat())
        else:
            utc = read.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
            expected.append(utc.isoformat() + "Z")
    plain_iso = style == "%Y-%m-%d" and not twelve and offset in ("", "Z", "+01:00", "+0530")
    assert conversion.columns[0]["type"] == "datetime"
    assert ("format" in conversion.columns[0]) is not plain_iso
    if not plain_iso:
        assert conversion.columns[0]["format"].startswith(pattern + separator)
    assert [row[0] for row in got] == expected


NUMBER_STYLES = ["grouped", "dollar-before", "euro-after", "pound-sign-first", "percent"]


@st.composite
def number_column(draw, decimal: str):  # type: ignore[no-untyped-def]
    style = draw(st.sampled_from(NUMBER_STYLES))
    with_fraction = draw(st.booleans())
    texts, plains = [], []
    for _ in range(draw(st.integers(1, 20))):
        whole = draw(st.integers(0, 10**12))
        sign = "-" if draw(st.booleans()) else ""
        fraction = f"{draw(st.integers(0, 99)):02d}" if with_fraction else ""
        grouped = f"{whole:,}"
        if decimal == ",":
            grouped = grouped.replace(",", ".")
        body = grouped + (decimal + fraction if fraction else "")
        plains.append(sign + str(whole) + ("." + fraction if fraction else ""))
        texts.append(
            {
                "grouped": sign + body,
                "dollar-before": sign + "$" + body,
                "euro-after": sign + body + " €",
                "pound-sign-first": "£" + sign + body,
                "percent": sign + body + "%",
            }[style]
        )
    unit = {"dollar-before": "$", "euro-after": "€", "pound-sign-first": "£", "percent": "%"}
    values = [float(p) for p in plains] if with_fraction else [int(p) for p in plains]
    return unit.get(style), texts, values


@given(st.data(), st.sampled_from([".", ","]))
@settings(max_examples=150, deadline=None)
def test_numbers_in_every_style_round_trip(data, decimal):
    columns = data.draw(st.lists(number_column(decimal), min_size=1, max_size=4))
    rows = min(len(texts) for _, texts, _ in columns)
    table = csv_text([f"c{i}" for i in range(len(columns))], [t[:rows] for _, t, _ in columns])
    with tempfile.TemporaryDirectory() as directory:
        conversion, got = convert_bytes(Path(directory), table, {"decimal": decimal})
    for j, (unit, _, values) in enumerate(columns):
        column = conversion.columns[j]
        assert column.get("unit") == unit
        assert column["type"] == ("number" if isinstance(values[0], float) else "integer")
        assert [row[j] for row in got] == values[:rows]
        assert all(type(row[j]) is type(values[0]) for row in got)


# --- one notation per column, and what a late batch does -------------------------------------


@pytest.mark.parametrize(
    ("values", "kind", "expected"),
    [
        (["$1", "$2.50"], "number", [1.0, 2.5]),
        (["$1", "€2"], "string", ["$1", "€2"]),  # two symbols
        (["$1", "2"], "string", ["$1", "2"]),  # a symbol and none
        (["12%", "1,5%"], "string", ["12%", "1,5%"]),  # "1,5" is no grouping
        (["1,234", "12,34"], "string", ["1,234", "12,34"]),
        (["31/01/2024", "31/02/2024"], "string", ["31/01/2024", "31/02/2024"]),  # impossible
        (["13/01/2024", "01/13/2024"], "string", ["13/01/2024", "01/13/2024"]),  # both orders
        (["1/5/2024 1:30 PM", "1/5/2024 13:30 PM"], "string", None),  # hour 13 with PM
        (["2024/01/05 10:00", "2024/01/05 10:00 +0100"], "string", None),  # naive and aware
        (["2024/01/05", "2024/01/06 10:30"], "datetime", ["2024-01-05T00:00:00", None]),
    ],
)
def test_one_notation_reads_every_value_of_a_column_or_it_is_a_string(
    tmp_path, values, kind, expected
):
    conversion, rows = convert_bytes(tmp_path, csv_text(["v"], [values]))
    assert conversion.columns[0]["type"] == kind
    got = [row[0] for row in rows]
    if expected is None:
        expected = values
    assert got[: len(expected)] == [e if e is not None else got[i] for i, e in enumerate(expected)]


def numbered(values: list[str]) -> bytes:
    return csv_text(["n", "v"], [[str(i) for i in range(len(values))], values])


def test_a_late_batch_that_decides_day_first_turns_an_undecided_column(tmp_path):
    early = [f"{1 + i % 12}/{1 + i % 12}/2024" for i in range(3000)]  # never decides
    values = early + ["25/01/2024", "3/4/2024"]
    conversion, rows = convert_bytes(tmp_path, numbered(values))
    assert conversion.columns[1]["format"] == "%d/%m/%Y"
    assert conversion.restarts == 1
    assert rows[-2:] == [[3000, "2024-01-25"], [3001, "2024-04-03"]]
    assert rows[0] == [0, "2024-01-01"]


def test_a_late_batch_against_a_decided_order_makes_the_column_a_string(tmp_path):
    values = ["1/13/2024"] * 3000 + ["25/01/2024"]
    conversion, rows = convert_bytes(tmp_path, numbered(values))
    assert conversion.columns[1]["type"] == "string" and "format" not in conversion.columns[1]
    assert [row[1] for row in rows] == values  # nothing lost


def test_an_impossible_date_in_a_late_batch_keeps_every_text(tmp_path):
    values = ["28/02/2024"] * 3000 + ["31/02/2024"]
    conversion, rows = convert_bytes(tmp_path, numbered(values))
    assert conversion.columns[1]["type"] == "string"
    assert [row[1] for row in rows] == values


def test_a_late_other_symbol_makes_the_column_a_string(tmp_path):
    values = ["$1,000"] * 3000 + ["€5"]
    conversion, rows = convert_bytes(tmp_path, numbered(values))
    assert conversion.columns[1]["type"] == "string" and "unit" not in conversion.columns[1]
    assert [row[1] for row in rows] == values


def test_a_late_decimal_widens_grouped_integers_to_numbers(tmp_path):
    values = ["1,000"] * 3000 + ["2.5", "1e3"]
    conversion, rows = convert_bytes(tmp_path, numbered(values))
    assert conversion.columns[1]["type"] == "number"
    assert [row[1] for row in rows] == [1000.0] * 3000 + [2.5, 1000.0]


def test_late_datetimes_in_the_same_pattern_make_the_dates_midnights(tmp_path):
    values = ["2024/01/05"] * 3000 + ["2024/01/06 10:30"]
    conversion, rows = convert_bytes(tmp_path, numbered(values))
    assert conversion.columns[1] | {"nulls": 0} == {
        "name": "v",
        "type": "datetime",
        "nulls": 0,
        "format": "%Y/%m/%d %H:%M",
    }
    assert rows[0][1] == "2024-01-05T00:00:00" and rows[-1][1] == "2024-01-06T10:30:00"


@pytest.mark.parametrize("order", ["mdy", "dmy"])
def test_date_order_reads_the_undecided_columns(tmp_path, order):
    conversion, rows = convert_bytes(
        tmp_path, csv_text(["v"], [["01/02/2024", "03/04/2024"]]), {"date_order": order}
    )
    assert conversion.columns[0]["format"] == ("%m/%d/%Y" if order == "mdy" else "%d/%m/%Y")
    first = "2024-01-02" if order == "mdy" else "2024-02-01"
    assert rows[0] == [first]


MONTH_NAMES = (
    "January February March April May June July August September October November December"
)


@given(
    st.lists(DAYS, min_size=1, max_size=20),
    st.sampled_from(["%b %d %Y", "%d %b %Y"]),
    st.sampled_from(["short", "full", "upper"]),
)
@settings(max_examples=100, deadline=None)
def test_dates_with_month_names_round_trip(days, style, spelling):
    """``Jan 1 2000`` (vega's stocks.csv) and ``1 January 2000``: dates, any case."""

    def month(d: date) -> str:
        name = MONTH_NAMES.split()[d.month - 1]
        return {"short": name[:3], "full": name, "upper": name.upper()}[spelling]

    texts = [
        f"{month(d)} {d.day} {d.year:04d}"
        if style == "%b %d %Y"
        else f"{d.day} {month(d)} {d.year:04d}"
        for d in days
    ]
    with tempfile.TemporaryDirectory() as directory:
        conversion, got = convert_bytes(Path(directory), csv_text(["day"], [texts]))
    assert conversion.columns[0]["type"] == "date"
    assert conversion.columns[0]["format"] == style
    assert [row[0] for row in got] == [d.isoformat() for d in days]


def test_a_word_that_is_no_month_keeps_the_column_text(tmp_path):
    conversion, got = convert_bytes(tmp_path, b"day\nJan 1 2000\nFoo 2 2000\n")
    assert conversion.columns[0]["type"] == "string"
    assert [row[0] for row in got] == ["Jan 1 2000", "Foo 2 2000"]
