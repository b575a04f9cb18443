"""Column typing: the text each type accepts, null markers, 64-bit limits, and the join lattice."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.coerce import NULL_MARKERS, TYPES, Mismatch, convert, infer, join

TYPED = ("boolean", "integer", "number", "date", "datetime")

# (text, the type of a batch holding it alone)
INFERRED = [
    # booleans: three spellings of each, nothing else
    ("true", "boolean"),
    ("False", "boolean"),
    ("TRUE", "boolean"),
    ("tRUE", "string"),
    ("yes", "string"),
    ("t", "string"),
    # integers: -?[0-9]+ within 64 bits
    ("0", "integer"),
    ("-0", "integer"),
    ("42", "integer"),
    ("-17", "integer"),
    (str(2**63 - 1), "integer"),
    (str(-(2**63)), "integer"),
    ("1_000", "string"),
    ("1,000", "integer:#"),  # thousands separator (streaming.numbers)
    (" 1", "string"),
    ("1 ", "string"),
    ("0x1F", "string"),
    ("١٢", "string"),  # Arabic-Indic digits: int() reads them, a CSV reader should not
    ("-", "string"),
    ("--1", "string"),
    # numbers: decimal or exponent notation, finite
    ("+5", "number"),
    ("1.5", "number"),
    ("-0.25", "number"),
    (".5", "number"),
    ("5.", "number"),
    ("1e5", "number"),
    ("1E-5", "number"),
    ("1e05", "number"),
    ("1e+16", "number"),
    ("1e400", "string"),
    ("-1e400", "string"),
    ("inf", "string"),
    ("-inf", "string"),
    ("Infinity", "string"),
    ("nan", "string"),
    ("1.2.3", "string"),
    ("e5", "string"),
    ("1e", "string"),
    # leading zeros are codes
    ("007", "string"),
    ("-01", "string"),
    ("00.5", "string"),
    ("00", "string"),
    # beyond 64 bits
    (str(2**63), "string"),
    (str(-(2**63) - 1), "string"),
    ("123456789012345678901234567890", "string"),
    # dates: YYYY-MM-DD, a real calendar date
    ("2024-02-29", "date"),
    ("0001-01-01", "date"),
    ("2023-02-29", "string"),
    ("2023-02-30", "string"),
    ("2023-13-01", "string"),
    ("2023-1-5", "date:%Y-%m-%d"),  # not ISO: read with a pattern
    ("2023/01/05", "date:%Y/%m/%d"),
    ("20230105", "integer"),
    # datetimes: ISO 8601 date and time
    ("2023-01-05T10:30", "datetime"),
    ("2023-01-05 10:30:00", "datetime"),
    ("2023-01-05T10:30:00.5", "datetime"),
    ("2023-01-05T10:30:00.123456", "datetime"),
    ("2023-01-05T10:30:00Z", "datetime"),
    ("2023-01-05T10:30:00+02:00", "datetime"),
    ("2023-01-05T10:30:00-0530", "datetime"),
    ("2023-01-05T25:00:00", "string"),
    ("2023-02-30T10:00:00", "string"),
    ("2023-01-05T10:30:00.1234567", "string"),
    ("2023-01-05T10", "string"),
    ("2023-W01-1", "string"),
    ("20230105T103000", "string"),
    ("0001-01-01T00:00:00+01:00", "string"),  # before year 1 in UTC
    ("9999-12-31T23:00:00-01:00", "string"),  # after year 9999 in UTC
    # a value's own line break is part of the value (int() and float() would strip it)
    ("1\n", "string"),
    ("\n1", "string"),
    ("1.5\n", "string"),
    ("true\n", "string"),
    ("2023-01-05\n", "string"),
    ("2023-01-05T10:30:00\n", "string"),
]


@pytest.mark.parametrize(("text", "kind"), INFERRED)
def test_a_value_alone_gets_the_narrowest_type_it_fits(text, kind):
    assert infer([text]) == kind


@pytest.mark.parametrize("text", [text for text, kind in INFERRED if kind == "string"])
@pytest.mark.parametrize("kind", TYPED)
def test_text_that_is_only_a_string_is_rejected_by_every_typed_converter(text, kind):
    # A column typed by its first batch converts later batches with convert(kind, ...): it must
    # refuse what inference refuses, or a later batch would be typed by different rules.
    with pytest.raises(Mismatch):
        convert(kind, [text])


# (type, text, typed value)
VALUES = [
    ("boolean", "true", True),
    ("boolean", "FALSE", False),
    ("boolean", "True", True),
    ("integer", "-17", -17),
    ("integer", "-0", 0),
    ("integer", str(2**63 - 1), 2**63 - 1),
    ("integer", str(-(2**63)), -(2**63)),
    ("number", "1.5", 1.5),
    ("number", "1e5", 100000.0),
    ("number", "-.5", -0.5),
    ("number", "3", 3.0),
    ("number", "1e19", 1e19),
    ("date", "2024-02-29", "2024-02-29"),
    ("datetime", "2023-01-05T10:30", "2023-01-05T10:30:00"),
    ("datetime", "2023-01-05 10:30:00", "2023-01-05T10:30:00"),
    ("datetime", "2023-01-05T10:30:00.5", "2023-01-05T10:30:00.500000"),
    ("datetime", "2023-01-05T10:30:00Z", "2023-01-05T10:30:00Z"),
    ("datetime", "2023-01-05T10:30:00+02:00", "2023-01-05T08:30:00Z"),
    ("datetime", "2023-01-01T01:00:00+0530", "2022-12-31T19:30:00Z"),
    ("datetime", "2023-01-05T22:00:00-05:00", "2023-01-06T03:00:00Z"),
    ("datetime", "2023-01-05T10:30:00.25+01:00", "2023-01-05T09:30:00.250000Z"),
    ("datetime", "2023-01-05", "2023-01-05T00:00:00"),  # a date widened to datetime: midnight
    ("string", " padded ", " padded "),
    ("string", "007", "007"),
]


@pytest.mark.parametrize(("kind", "text", "value"), VALUES)
def test_converted_values_have_the_types_json_value(kind, text, value):
    values, present = convert(kind, [text])
    assert values == present == [value]
    assert type(values[0]) is type(value)


def test_datetimes_with_offsets_are_converted_to_utc_z():
    texts = ["2023-06-30T23:30:00-01:00", "2023-07-01T09:00:00+09:00", "2023-07-01T00:00:00Z"]
    assert infer(texts) == "datetime"
    assert convert("datetime", texts)[0] == ["2023-07-01T00:30:00Z", *["2023-07-01T00:00:00Z"] * 2]


@pytest.mark.parametrize(
    "texts",
    [
        ["2023-01-05T10:00:00", "2023-01-05T10:00:00Z"],
        ["2023-01-05T10:00:00+01:00", "2023-01-05 11:00:00"],
    ],
)
def test_mixed_naive_and_aware_datetimes_make_a_string_column(texts):
    assert infer(texts) == "string"
    with pytest.raises(Mismatch):
        convert("datetime", texts)
    assert convert("string", texts)[0] == texts


@pytest.mark.parametrize("kind", TYPES)
def test_null_markers_are_null_in_every_type(kind):
    samples = {
        "null": [],
        "boolean": ["true"],
        "integer": ["7"],
        "number": ["7.5"],
        "date": ["2023-01-05"],
        "datetime": ["2023-01-05T10:00:00"],
        "string": ["x"],
    }
    raw = ["", "NA", *samples[kind], "N/A", "null", "NULL", "NaN"]
    values, present = convert(kind, raw)
    assert [v is None for v in values] == [text in NULL_MARKERS for text in raw]
    assert len(present) == len(samples[kind])


def test_a_batch_of_null_markers_alone_is_null():
    assert infer(sorted(NULL_MARKERS)) == "null"
    assert infer([]) == "null"


@pytest.mark.parametrize("text", ["nan", "None", "n/a", "na", " NA", "NA ", "Null", "-", "NAN"])
def test_other_spellings_of_nothing_are_text(text):
    assert infer([text]) == "string"
    assert convert("string", [text])[0] == [text]


@pytest.mark.parametrize(
    "texts",
    [
        ["01234", "02134", "10001"],
        ["1", "2", "007"],
        ["1.5", "-02.5"],
        ["0", "00"],
    ],
)
def test_leading_zero_codes_stay_strings(texts):
    assert infer(texts) == "string"
    assert convert("string", texts)[0] == texts


@pytest.mark.parametrize(
    "texts",
    [
        ["1", "2", str(2**63)],
        ["1", str(-(2**63) - 1)],
        ["1.5", str(2**64)],  # as a float it would be rounded
        ["1.5", "-99999999999999999999999"],
    ],
)
def test_integers_beyond_64_bits_make_a_string_column_never_rounded(texts):
    assert infer(texts) == "string"
    for kind in ("integer", "number"):
        with pytest.raises(Mismatch):
            convert(kind, texts)
    assert convert("string", texts)[0] == texts


def test_a_batch_mixing_integers_and_decimals_is_a_number_column():
    assert infer(["1", "2.5", "", "-3"]) == "number"
    assert convert("number", ["1", "2.5", "", "-3"])[0] == [1.0, 2.5, None, -3.0]


@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50))
@settings(max_examples=100, deadline=None)
def test_any_64_bit_integers_round_trip(numbers):
    texts = list(map(str, numbers))
    assert infer(texts) == "integer"
    assert convert("integer", texts)[0] == numbers


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
@settings(max_examples=100, deadline=None)
def test_any_finite_floats_round_trip(numbers):
    texts = list(map(repr, numbers))
    assert infer(texts) == "number"
    assert convert("number", texts)[0] == numbers


@given(st.lists(st.text(alphabet="0123456789-+.eE \n", max_size=6), min_size=1, max_size=6))
@settings(max_examples=300, deadline=None)
def test_a_number_is_read_from_the_whole_text(texts):
    kind = infer(texts)
    if kind not in ("integer", "number"):
        return
    for text, value in zip(texts, convert(kind, texts)[0]):
        if value is None:
            continue
        assert text.strip() == text  # nothing that float() or int() would quietly drop
        assert float(text) == value
        if kind == "integer":
            assert int(text) == value


JOINS = [
    ("null", "string", "string"),
    ("null", "integer", "integer"),
    ("boolean", "boolean", "boolean"),
    ("integer", "number", "number"),
    ("date", "datetime", "datetime"),
    ("boolean", "integer", "string"),
    ("boolean", "number", "string"),
    ("integer", "date", "string"),
    ("number", "datetime", "string"),
    ("date", "string", "string"),
    ("string", "null", "string"),
]


@pytest.mark.parametrize(("old", "new", "expected"), JOINS)
def test_join_is_the_narrowest_type_holding_both(old, new, expected):
    assert join(old, new) == expected
    assert join(new, old) == expected


def test_join_is_a_lattice_with_null_at_the_bottom_and_string_at_the_top():
    for a in TYPES:
        assert join(a, a) == a
        assert join("null", a) == join(a, "null") == a
        assert join(a, "string") == "string"
    for a, b, c in itertools.product(TYPES, repeat=3):
        assert join(a, b) == join(b, a)
        assert join(join(a, b), c) == join(a, join(b, c))


SAMPLES = {
    "null": ["", "NA"],
    "boolean": ["true", "False"],
    "integer": ["1", "-2"],
    "number": ["1.5", "2e3"],
    "date": ["2023-01-05", "2024-02-29"],
    "datetime": ["2023-01-05T10:00:00", "2023-01-05 11:30"],
    "string": ["abc", "007"],
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(TYPES, repeat=2)))
def test_the_joined_type_converts_the_batches_of_both(old, new):
    # What a restart relies on: the earlier batches convert again as the widened type.
    assert infer(SAMPLES[old]) == old and infer(SAMPLES[new]) == new
    wider = join(old, new)
    for raw in (SAMPLES[old], SAMPLES[new]):
        values, _ = convert(wider, raw)
        assert [v is None for v in values] == [text in NULL_MARKERS for text in raw]


def test_a_batch_mixing_dates_and_datetimes_is_typed_as_their_join():
    assert infer(["2023-01-05", "2023-01-05T10:00:00"]) == join("date", "datetime")


def test_converters_reject_a_whole_batch_for_one_bad_value():
    batch = ["1"] * 1000 + ["x"]
    for kind in ("integer", "number", "boolean", "date", "datetime"):
        with pytest.raises(Mismatch):
            convert(kind, batch)
