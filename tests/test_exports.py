"""Real-world exports load with the types a person expects, value by value (issue 12).

Each export of ``tests/corpus.py`` is read as uploaded, gzip-compressed and zipped; the
vega-datasets files are read as they ship. The engine is tested directly (``convert_csv``),
and through the worker's step (``sync_job``) where the job's options and METADATA matter.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import datetime
from pathlib import Path

import pytest
import vega_datasets

from tests.corpus import EXPORTS, WRAPPINGS, Export, convert_bytes, sync_bytes, wrap

VEGA = Path(vega_datasets.__file__).parent / "_data"  # the CSV files the package ships


@pytest.mark.parametrize("how", WRAPPINGS)
@pytest.mark.parametrize("name", list(EXPORTS))
def test_an_export_loads_with_the_expected_values(tmp_path, name, how):
    export: Export = EXPORTS[name]
    conversion, rows = convert_bytes(tmp_path, wrap(export.data, how), export.options)
    assert conversion.columns == export.columns
    assert rows == export.rows
    assert conversion.delimiter == export.delimiter
    assert conversion.format == how
    assert conversion.restarts == 0


@pytest.mark.parametrize("name", list(EXPORTS))
def test_the_sync_records_the_source_format_and_each_columns_notation(settings, name):
    export: Export = EXPORTS[name]
    data = wrap(export.data, "csv.gz")
    job, meta = sync_bytes(settings, data, **export.options)
    assert job["status"] == "done", job["error"]
    assert meta is not None
    assert meta["source"]["format"] == "csv.gz"
    assert meta["source"]["sha256"] == hashlib.sha256(data).hexdigest()  # of the bytes sent
    assert meta["columns"] == export.columns
    assert meta["rows"] == len(export.rows)
    assert job["progress"]["fraction"] == 1.0


def test_without_decimal_comma_the_european_amounts_stay_strings(tmp_path):
    """Without ?decimal=, "1.234,56" is no number: the column stays text, nothing is lost."""
    conversion, rows = convert_bytes(tmp_path, EXPORTS["european"].data)
    kinds = {c["name"]: c["type"] for c in conversion.columns}
    assert kinds["Betrag"] == "string" and kinds["Preis"] == "string"
    assert [row[1] for row in rows] == ["1.234,56", "-12,50", "0,99"]
    assert kinds["Datum"] == "date"  # the dates do not depend on the decimal mark


# --- vega-datasets, as they ship --------------------------------------------------------------


def vega_records(name: str) -> list[dict[str, str]]:
    with open(VEGA / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_seattle_weather_dates_are_dates_every_one(tmp_path):
    """The issue's first finding: YYYY/MM/DD came out as a string."""
    conversion, rows = convert_bytes(tmp_path, (VEGA / "seattle-weather.csv").read_bytes())
    records = vega_records("seattle-weather.csv")
    assert conversion.rows == len(records) == 1461
    assert conversion.columns[0] == {
        "name": "date",
        "type": "date",
        "nulls": 0,
        "format": "%Y/%m/%d",
    }
    assert [c["type"] for c in conversion.columns[1:]] == ["number"] * 4 + ["string"]
    for row, record in zip(rows, records):
        day = datetime.strptime(record["date"], "%Y/%m/%d").date().isoformat()
        assert row == [
            day,
            float(record["precipitation"]),
            float(record["temp_max"]),
            float(record["temp_min"]),
            float(record["wind"]),
            record["weather"],
        ]


@pytest.mark.parametrize(
    ("name", "column", "pattern"),
    [
        ("seattle-temps.csv", "date", "%Y/%m/%d %H:%M"),
        ("sf-temps.csv", "date", "%Y/%m/%d %H:%M:%S"),
    ],
)
def test_vega_hourly_temperatures_have_datetimes(tmp_path, name, column, pattern):
    conversion, rows = convert_bytes(tmp_path, (VEGA / name).read_bytes())
    records = vega_records(name)
    position = [c["name"] for c in conversion.columns].index(column)
    assert conversion.columns[position]["type"] == "datetime"
    assert conversion.columns[position]["format"] == pattern
    expected = [datetime.strptime(r[column], pattern).isoformat() for r in records]
    assert [row[position] for row in rows] == expected


@pytest.mark.parametrize(
    ("name", "types"),
    [
        ("iowa-electricity.csv", ["date", "string", "integer"]),
        ("airports.csv", ["string"] * 5 + ["number", "number"]),
    ],
)
def test_other_vega_files_keep_their_types(tmp_path, name, types):
    conversion, rows = convert_bytes(tmp_path, (VEGA / name).read_bytes())
    assert [c["type"] for c in conversion.columns] == types
    assert conversion.rows == len(vega_records(name))
    assert all("format" not in c and "unit" not in c for c in conversion.columns)


def test_stocks_dates_written_with_month_names_are_dates(tmp_path):
    """vega's stocks.csv writes "Jan 1 2000": a date with its month's name (%b %d %Y)."""
    conversion, rows = convert_bytes(tmp_path, (VEGA / "stocks.csv").read_bytes())
    assert [c["type"] for c in conversion.columns] == ["string", "date", "number"]
    assert conversion.columns[1]["format"] == "%b %d %Y"
    expected = [
        datetime.strptime(r["date"], "%b %d %Y").date().isoformat()
        for r in vega_records("stocks.csv")
    ]
    assert [row[1] for row in rows] == expected
