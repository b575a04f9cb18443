"""Upload options (types, decimal, header, sheet) and DATE_ORDER: parsed, then applied."""

from __future__ import annotations

import os

import httpx
import pytest

from server import Rillet
from streaming.convert import Reading
from streaming.errors import BadRequest, InvalidCSV, SettingError
from streaming.options import reading, upload_options
from streaming.settings import Settings
from tests.conftest import assert_error, upload
from tests.corpus import convert_bytes, sync_bytes

DEFAULTS = {"types": None, "decimal": ".", "header": True, "sheet": None, "roles": None}


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ({}, DEFAULTS),
        ({"types": ""}, DEFAULTS),
        ({"types": "zip:string"}, DEFAULTS | {"types": {"zip": "string"}}),
        (
            {"types": " zip : String , amount:number"},
            DEFAULTS | {"types": {"zip": "string", "amount": "number"}},
        ),
        ({"types": "a:b:date"}, DEFAULTS | {"types": {"a:b": "date"}}),  # the last ":" splits
        ({"decimal": ","}, DEFAULTS | {"decimal": ","}),
        ({"header": "false"}, DEFAULTS | {"header": False}),
        ({"header": "TRUE"}, DEFAULTS),
        ({"header": "0"}, DEFAULTS | {"header": False}),
        ({"sheet": "Sales 2024"}, DEFAULTS | {"sheet": "Sales 2024"}),
        ({"name": "x", "delimiter": ";"}, DEFAULTS),  # others are the route's
    ],
)
def test_upload_options_are_read_from_the_query(query, options):
    assert upload_options(query) == options


@pytest.mark.parametrize(
    ("query", "parameter", "message"),
    [
        ({"types": "zip:text"}, "types", "unknown type 'text' for column 'zip'"),
        ({"types": "zip"}, "types", "COLUMN:TYPE pairs"),
        ({"types": ":integer"}, "types", "COLUMN:TYPE pairs"),
        ({"types": "a:integer,a:number"}, "types", "two types"),
        ({"decimal": ";"}, "decimal", "'.' or ','"),
        ({"decimal": ""}, "decimal", "'.' or ','"),
        ({"header": "maybe"}, "header", "true or false"),
    ],
)
def test_a_wrong_upload_option_is_a_400_naming_it(query, parameter, message):
    with pytest.raises(BadRequest, match=message) as caught:
        upload_options(query)
    assert caught.value.status == 400
    assert caught.value.to_dict()["error"]["parameter"] == parameter


def test_the_message_for_an_unknown_type_lists_the_types():
    with pytest.raises(BadRequest) as caught:
        upload_options({"types": "n:float"})
    assert "use one of integer, number, boolean, date, datetime, string, null" in (
        caught.value.message
    )


def test_job_options_recorded_before_these_options_read_as_defaults():
    assert reading({"delimiter": None, "encoding": None}, "mdy") == Reading()


# --- types: forced, or a type_mismatch naming the column, the line and the value ----------


def table(rows: list[str]) -> bytes:
    return ("id,zip,score,day\n" + "".join(row + "\n" for row in rows)).encode()


def test_forced_types_read_the_columns_as_asked(tmp_path):
    data = table(["1,02134,3,2024-01-05", "2,90210,4,2024-01-06"])
    types = {"zip": "string", "score": "number", "day": "datetime", "id": "string"}
    conversion, rows = convert_bytes(tmp_path, data, {"types": types})
    assert [c["type"] for c in conversion.columns] == ["string", "string", "number", "datetime"]
    assert rows == [
        ["1", "02134", 3.0, "2024-01-05T00:00:00"],
        ["2", "90210", 4.0, "2024-01-06T00:00:00"],
    ]


def test_a_forced_type_keeps_the_notation_it_finds(tmp_path):
    data = b"amount,day\n$1,05/01/2024\n$2.50,31/01/2024\n"
    types = {"amount": "number", "day": "date"}
    conversion, rows = convert_bytes(tmp_path, data, {"types": types})
    assert conversion.columns[0] | {"nulls": 0} == {
        "name": "amount",
        "type": "number",
        "nulls": 0,
        "unit": "$",
    }
    assert conversion.columns[1]["format"] == "%d/%m/%Y"
    assert rows == [[1.0, "2024-01-05"], [2.5, "2024-01-31"]]


@pytest.mark.parametrize(
    ("rows", "types", "line", "value"),
    [
        (["1,a,3,2024-01-05"], {"zip": "integer"}, 2, "a"),
        (["1,1,x,2024-01-05"], {"score": "number"}, 2, "x"),
        (["1,1,1,2024-01-05", "2,1,1,someday"], {"day": "date"}, 3, "someday"),
        # a value far down the file, after a record spanning lines: its physical line
        (
            ['1,"multi\nline",1,2024-01-05'] + ["2,x,1,2024-01-05"] * 4000 + ["3,x,1,never"],
            {"day": "date"},
            4004,  # header, a record of two lines, 4,000 lines, then this one
            "never",
        ),
        # the values fit the type one by one, but not in one notation
        (["1,1,$3,2024-01-05", "2,1,€4,2024-01-05"], {"score": "number"}, 3, "€4"),
    ],
)
def test_a_value_that_does_not_fit_its_forced_type_fails_naming_column_line_and_value(
    tmp_path, rows, types, line, value
):
    with pytest.raises(InvalidCSV) as caught:
        convert_bytes(tmp_path, table(rows), {"types": types})
    error = caught.value
    (column,) = types
    assert error.code == "type_mismatch" and error.line == line
    assert error.message == f"line {line}: column {column!r} must be {types[column]}, " + (
        f"and {value!r} is not"
    )


def test_types_naming_a_column_the_file_lacks_fails(tmp_path):
    with pytest.raises(InvalidCSV, match="column 'zipcode', which the file does not have") as e:
        convert_bytes(tmp_path, table(["1,1,1,2024-01-05"]), {"types": {"zipcode": "string"}})
    assert e.value.code == "unknown_column"


def test_reading_options_are_checked_by_the_engine_too(tmp_path):
    with pytest.raises(BadRequest, match="unknown type 'text'"):
        convert_bytes(tmp_path, b"a\n1\n", {"types": {"a": "text"}})
    with pytest.raises(BadRequest, match="decimal must be"):
        convert_bytes(tmp_path, b"a\n1\n", {"decimal": ";"})


def test_a_type_mismatch_fails_the_job_with_its_line(settings):
    options = upload_options({"types": "score:integer"})
    job, meta = sync_bytes(settings, table(["1,1,1,2024-01-05", "2,1,1.5,2024-01-05"]), **options)
    assert job["status"] == "failed" and meta is None
    assert job["error"] == {
        "code": "type_mismatch",
        "message": "line 3: column 'score' must be integer, and '1.5' is not",
        "line": 3,
    }


# --- DATE_ORDER ----------------------------------------------------------------------------


@pytest.mark.parametrize(("order", "first"), [("mdy", "2024-03-04"), ("dmy", "2024-04-03")])
def test_date_order_reaches_the_sync(settings, order, first):
    settings = Settings.from_env({"DATE_ORDER": order.upper()}, data_dir=settings.data_dir)
    job, meta = sync_bytes(settings, b"day\n03/04/2024\n05/06/2024\n")
    assert job["status"] == "done" and meta is not None
    assert meta["columns"][0]["format"] == ("%m/%d/%Y" if order == "mdy" else "%d/%m/%Y")


def test_a_date_order_other_than_mdy_or_dmy_is_a_setting_error():
    with pytest.raises(SettingError, match="DATE_ORDER: expected mdy or dmy"):
        Settings.from_env({"DATE_ORDER": "ymd"})


def test_without_a_header_an_empty_file_says_it_has_no_rows(tmp_path):
    with pytest.raises(InvalidCSV, match="^the file has no rows$") as caught:
        convert_bytes(tmp_path, b"\n\r\n", {"header": False})
    assert caught.value.code == "empty_file"


# --- Over HTTP: the upload route checks the options before anything is stored -------------------


def test_an_unknown_type_is_a_400_before_anything_is_stored(
    client: httpx.Client, rillet: Rillet
) -> None:
    response = client.post(
        "/datasets",
        params={"types": "a:money"},
        files={"file": ("t.csv", b"a\n1\n", "text/csv")},
    )
    error = assert_error(response, 400, "bad_parameter")
    assert "money" in error["message"] and error["parameter"] == "types"
    assert os.listdir(rillet.store.root / "uploads") == []
    assert os.listdir(rillet.store.root / "jobs") == []


def test_upload_options_reach_the_sync_over_http(client: httpx.Client, rillet: Rillet) -> None:
    text = "1;1.234,5;01.02.2024\n2;-3,25;31.12.2024\n"
    dataset = upload(
        client, rillet, text, delimiter=";", decimal=",", header="false", types="column_1:string"
    )
    meta = client.get(f"/datasets/{dataset}").json()
    kinds = {c["name"]: (c["type"], c.get("format")) for c in meta["columns"]}
    assert kinds == {
        "column_1": ("string", None),
        "column_2": ("number", None),
        "column_3": ("date", "%d.%m.%Y"),
    }
    rows = client.get(f"/datasets/{dataset}/rows").json()["rows"]
    assert rows[0] == {"column_1": "1", "column_2": 1234.5, "column_3": "2024-02-01"}
    assert meta["source"]["format"] == "csv"
