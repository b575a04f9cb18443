"""CSV to typed NDJSON: the round trip, the rules for awkward input, widening, and the row index."""

from __future__ import annotations

import csv
import io
import os
import struct
import tempfile
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming import column_store
from streaming.coerce import NULL_MARKERS, infer
from streaming.convert import (
    BATCH_ROWS,
    INDEX_FILE,
    ROWS_FILE,
    SAMPLE_FILE,
    SAMPLE_ROWS,
    STATS_FILE,
    Conversion,
    convert_csv,
    header_names,
)
from streaming.errors import BadRequest, InvalidCSV
from streaming.index import RowIndex


def convert(directory: Path, data: bytes | str, **options) -> tuple[Conversion, list[list]]:
    """Convert ``data`` as a CSV file in ``directory``; the conversion and the rows read back."""
    source = directory / "source.csv"
    source.write_bytes(data.encode() if isinstance(data, str) else data)
    out = directory / "out"
    out.mkdir(exist_ok=True)
    conversion = convert_csv(source, out, **options)
    return conversion, read_rows(out)


def read_rows(out: Path, name: str = ROWS_FILE) -> list[list]:
    """The rows of an NDJSON file that the conversion wrote."""
    data = (out / name).read_bytes()
    assert data == b"" or data.endswith(b"\n")
    return [orjson.loads(line) for line in data.split(b"\n")[:-1]]


def read_offsets(out: Path) -> list[int]:
    """The row index: little-endian unsigned 64-bit offsets."""
    return [offset for (offset,) in struct.iter_unpack("<Q", (out / INDEX_FILE).read_bytes())]


def types(conversion: Conversion) -> list[str]:
    return [column["type"] for column in conversion.columns]


def lines(header: str, rows: list[str]) -> str:
    """A CSV text with "\n" line ends."""
    return "\n".join([header, *rows]) + "\n"


@pytest.fixture
def field_limit_restored():
    """csv.field_size_limit is process-wide: put it back after a test that lowers it."""
    previous = csv.field_size_limit()
    yield
    csv.field_size_limit(previous)


# --- the round trip ------------------------------------------------------------------------

OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
# Not 1 nor 9999: an offset could move them out of range in UTC.
MOMENTS = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))
# Not near the largest float: a sum past it fails the conversion (test_stats has that xfail).
FLOATS = st.floats(-1e300, 1e300) | st.floats(-1e-300, 1e-300)
BOOLEAN_SPELLINGS = {True: ["true", "True", "TRUE"], False: ["false", "False", "FALSE"]}
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
# A value that fits no type but string: with one in a column, the column is a string column.
PLAIN_STRING = TEXT.filter(lambda text: infer([text]) == "string")


@st.composite
def typed_column(draw, rows: int) -> tuple[str, list[str], list]:
    """A column's type, its CSV texts and its typed values (None for null)."""
    kind = draw(st.sampled_from(["integer", "number", "boolean", "date", "datetime", "string"]))
    texts, values = [], []
    offset = draw(st.none() | OFFSETS)  # one per column: naive and aware never mix
    for _ in range(rows):
        if draw(st.integers(0, 4)) == 0:
            texts.append(draw(st.sampled_from(sorted(NULL_MARKERS))))
            values.append(None)
            continue
        if kind == "integer":
            value = draw(st.integers(-(2**63), 2**63 - 1) | st.integers(-1000, 1000))
            text = str(value)
        elif kind == "number":
            value = draw(FLOATS)
            text = repr(value)
        elif kind == "boolean":
            value = draw(st.booleans())
            text = draw(st.sampled_from(BOOLEAN_SPELLINGS[value]))
        elif kind == "date":
            day = draw(st.dates())
            value = text = day.isoformat()
        elif kind == "datetime":
            moment = draw(MOMENTS)
            if offset is None:
                value = text = moment.isoformat()
            else:
                aware = moment.replace(tzinfo=offset)
                text = aware.isoformat(sep=draw(st.sampled_from("T ")))
                value = aware.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
        else:
            # Anything at all, numbers and dates included: the plain string added below keeps
            # the column a string column, and every other value stays its own text.
            text = draw(TEXT | PLAIN_STRING)
            value = None if text in NULL_MARKERS else text
        texts.append(text)
        values.append(value)
    if kind == "string" and rows:
        at = draw(st.integers(0, rows - 1))
        texts[at] = values[at] = draw(PLAIN_STRING)
    if all(value is None for value in values):
        kind = "null"
    return kind, texts, values


@st.composite
def typed_table(draw) -> tuple[list[str], list[list[str]], list[list]]:
    """Column types, CSV records (without the header) and the typed rows."""
    rows = draw(st.integers(0, 25))
    columns = [draw(typed_column(rows)) for _ in range(draw(st.integers(1, 5)))]
    kinds = [kind for kind, _, _ in columns]
    records = [list(record) for record in zip(*(texts for _, texts, _ in columns))]
    typed = [list(row) for row in zip(*(values for _, _, values in columns))]
    return kinds, records, typed


# csv.writer quotes a field holding "\r" only if "\r" is in its line terminator: with "\n" alone,
# quote every field.
DIALECTS = st.sampled_from([("\r\n", csv.QUOTE_MINIMAL), ("\n", csv.QUOTE_ALL)])


@given(typed_table(), st.sampled_from(",;\t|"), DIALECTS)
@settings(max_examples=150, deadline=None)
def test_typed_tables_round_trip_through_csv(table, delimiter, dialect):
    kinds, records, typed = table
    names = [f"c{i}" for i in range(len(kinds))]
    text = io.StringIO()
    line_end, quoting = dialect
    writer = csv.writer(text, delimiter=delimiter, lineterminator=line_end, quoting=quoting)
    writer.writerow(names)
    writer.writerows(records)
    with tempfile.TemporaryDirectory() as directory:
        conversion, rows = convert(Path(directory), text.getvalue(), delimiter=delimiter)
    assert rows == typed
    assert types(conversion) == kinds
    assert conversion.rows == len(typed)
    assert [c["nulls"] for c in conversion.columns] == [
        sum(row[j] is None for row in typed) for j in range(len(kinds))
    ]
    for row, expected in zip(rows, typed):
        assert list(map(type, row)) == list(map(type, expected))  # 1.0 stays a float, 1 an int


# --- the rules for awkward input -------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "id,name,score\n1,alpha,2.5\n2,beta,3.5\n",
        "id;name;score\n1;alpha;2,5\n2;beta;3,5\n",
        "id\tname\tscore\n1\talpha\t2.5\n2\tbeta\t3.5\n",
        "id|name|score\n1|alpha|2.5\n2|beta|3.5\n",
    ],
)
def test_the_delimiter_is_sniffed(tmp_path, data):
    delimiter = data[2]
    conversion, rows = convert(tmp_path, data)
    assert conversion.delimiter == delimiter
    assert [c["name"] for c in conversion.columns] == ["id", "name", "score"]
    assert [row[:2] for row in rows] == [[1, "alpha"], [2, "beta"]]


@pytest.mark.parametrize(
    ("data", "delimiter", "rows"),
    [
        ('id,note\n1,"a;b"\n2,"c;d"\n', ",", [[1, "a;b"], [2, "c;d"]]),
        ("id;note\n1;a,b\n2;c,d\n", ";", [[1, "a,b"], [2, "c,d"]]),
        ("name\nalice\nbob\n", ",", [["alice"], ["bob"]]),
    ],
)
def test_the_sniffer_is_not_fooled_by_other_delimiters_inside_values(
    tmp_path, data, delimiter, rows
):
    conversion, got = convert(tmp_path, data)
    assert conversion.delimiter == delimiter
    assert got == rows


def test_a_given_delimiter_is_used_as_is(tmp_path):
    conversion, rows = convert(tmp_path, "a;b\n1;2\n", delimiter=",")
    assert conversion.delimiter == ","
    assert [c["name"] for c in conversion.columns] == ["a;b"]
    assert rows == [["1;2"]]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    conversion, rows = convert(tmp_path, b"\xef\xbb\xbfid,name\r\n1,caf\xc3\xa9\r\n")
    assert [c["name"] for c in conversion.columns] == ["id", "name"]
    assert conversion.encoding == "utf-8"
    assert rows == [[1, "café"]]


def test_crlf_line_ends_are_dropped_and_quoted_newlines_kept(tmp_path):
    data = 'id,note\r\n1,"two\r\nlines"\r\n2,"bare\nnewline"\r\n3,"cr\ronly"\r\n4,plain\r\n'
    _, rows = convert(tmp_path, data)
    assert rows == [[1, "two\r\nlines"], [2, "bare\nnewline"], [3, "cr\ronly"], [4, "plain"]]


@pytest.mark.parametrize(
    ("record", "names"),
    [
        (["a", "", "b"], ["a", "column_2", "b"]),
        (["", "", ""], ["column_1", "column_2", "column_3"]),
        (["a", "a", "a"], ["a", "a_2", "a_3"]),
        ([" a ", "b\t", " b"], ["a", "b", "b_2"]),
        (["a", "a_2", "a"], ["a", "a_2", "a_3"]),
        (["x", "  "], ["x", "column_2"]),
        (["column_2", ""], ["column_2", "column_2_2"]),
    ],
)
def test_header_names_are_stripped_never_empty_never_repeated(record, names):
    assert header_names(record) == names


def test_the_header_rules_apply_in_a_conversion(tmp_path):
    conversion, rows = convert(tmp_path, " id ,,id\n1,2,3\n")
    assert [c["name"] for c in conversion.columns] == ["id", "column_2", "id_2"]
    assert rows == [[1, 2, 3]]


def test_blank_lines_are_skipped_wherever_they_are(tmp_path):
    conversion, rows = convert(tmp_path, "\n\na,b\n\n1,2\n\n\n3,4\n\n")
    assert [c["name"] for c in conversion.columns] == ["a", "b"]
    assert rows == [[1, 2], [3, 4]]
    assert conversion.rows == 2


def test_short_rows_are_padded_with_null(tmp_path):
    conversion, rows = convert(tmp_path, "a,b,c\n1\n1,2\n1,2,3\n")
    assert rows == [[1, None, None], [1, 2, None], [1, 2, 3]]
    assert [c["nulls"] for c in conversion.columns] == [0, 1, 2]


def test_trailing_empty_extra_fields_are_dropped(tmp_path):
    conversion, rows = convert(tmp_path, "a,b\n1,2,\n3,4,,,\n5,6\n")
    assert rows == [[1, 2], [3, 4], [5, 6]]
    assert len(conversion.columns) == 2


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ("a,b\n1,2\n3,4,5\n", 3),
        ("a,b\n1,2,x\n", 2),
        ('a,b\n1,"x\ny"\n3,4,5\n', 4),
        ('a,b\n1,"x\ny\nz"\n\n3,4,5\n', 6),
        ('a,b\r\n1,"x\r\ny"\r\n3,4,5\r\n', 4),
        ('a,b\n1,2\n"x\ny",2,3\n', 3),  # the record starts on line 3
        ("\n\na,b\n1,2\n3,4,5\n", 5),  # blank lines above the header are lines too
        (lines("a,b", ["1,2"] * 5000 + ["3,4,5"]), 5002),  # beyond the first batch
        (lines("a,b", ['1,"x\ny"'] * 5000 + ["3,4,5"]), 10002),
    ],
)
def test_an_extra_non_empty_field_fails_naming_its_line(tmp_path, data, line):
    with pytest.raises(InvalidCSV) as failure:
        convert(tmp_path, data)
    assert failure.value.line == line
    assert failure.value.code == "ragged_row"
    assert f"line {line}:" in failure.value.message
    assert failure.value.to_dict()["error"]["line"] == line


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"a,b\n1,\xff\n", 2),
        (b"a,b\n1,ok\n2,caf\xe9\n", 3),
        (b"\xef\xbb\xbfa,b\n\xe9cole,1\n", 2),  # after a byte order mark
        (b'a,b\n1,"x\ny"\n2,\xc3\x28\n', 4),
        (b"a,b\n" + b"1,abcdefghij\n" * 20000 + b"2,\xff\n", 20002),  # several 64 KiB reads
        # a character cut by a 64 KiB read, then bytes that cannot finish it
        (b"a,b\n1," + b"y" * (65536 - 7) + b"\xe2\n\x82\n", 2),
    ],
)
def test_invalid_utf8_fails_naming_the_line_and_suggesting_an_encoding(tmp_path, data, line):
    with pytest.raises(InvalidCSV) as failure:
        convert(tmp_path, data)
    assert failure.value.line == line
    assert failure.value.code == "bad_encoding"
    assert f"line {line}:" in failure.value.message
    assert "encoding=" in failure.value.message


@pytest.mark.parametrize(
    ("encoding", "canonical"), [("latin-1", "iso8859-1"), ("cp1252", "cp1252")]
)
def test_a_single_byte_encoding_is_read_when_given(tmp_path, encoding, canonical):
    data = "name,city,price\nJosé,Zürich,3\nRenée,Malmö,4\n".encode(encoding)
    conversion, rows = convert(tmp_path, data, encoding=encoding)
    assert conversion.encoding == canonical
    assert rows == [["José", "Zürich", 3], ["Renée", "Malmö", 4]]


def test_an_unknown_encoding_or_a_long_delimiter_is_a_bad_request(tmp_path):
    with pytest.raises(BadRequest) as failure:
        convert(tmp_path, "a\n1\n", encoding="no-such-codec")
    assert failure.value.code == "bad_encoding"
    with pytest.raises(BadRequest) as failure:
        convert(tmp_path, "a\n1\n", delimiter=";;")
    assert failure.value.code == "bad_parameter"


def test_a_field_over_the_limit_fails_naming_its_line(tmp_path, field_limit_restored):
    data = "a,b\n1,ok\n2," + "x" * 101 + "\n3,ok\n"
    with pytest.raises(InvalidCSV) as failure:
        convert(tmp_path, data, field_limit=100)
    assert failure.value.line == 3
    assert failure.value.code == "invalid_csv"
    assert "line 3:" in failure.value.message


def test_a_field_at_the_limit_is_kept_whole(tmp_path, field_limit_restored):
    _, rows = convert(tmp_path, "a,b\n1," + "x" * 100 + "\n", field_limit=100)
    assert rows == [[1, "x" * 100]]


@pytest.mark.parametrize("data", ["", "\n", "\r\n\r\n\n"])
def test_a_file_without_a_header_fails(tmp_path, data):
    with pytest.raises(InvalidCSV) as failure:
        convert(tmp_path, data)
    assert failure.value.code == "empty_file"


def test_a_header_alone_is_a_dataset_of_no_rows_and_null_columns(tmp_path):
    conversion, rows = convert(tmp_path, "a,b,c\r\n")
    assert rows == []
    assert conversion.rows == 0
    assert types(conversion) == ["null", "null", "null"]
    assert read_offsets(tmp_path / "out") == [0]
    stats = orjson.loads((tmp_path / "out" / STATS_FILE).read_bytes())
    assert [stats[name]["count"] for name in "abc"] == [0, 0, 0]
    assert (tmp_path / "out" / SAMPLE_FILE).read_bytes() == b""


# --- a type that changes late ------------------------------------------------------------------


def numbered(values: list[str]) -> str:
    """A CSV of two columns: the row number ``n``, then ``values`` as ``k``."""
    return lines("n,k", [f"{i},{v}" for i, v in enumerate(values)])


@pytest.mark.parametrize(
    ("texts", "kind", "expected"),
    [
        # row 10,000 of an integer column is not a number
        (
            [str(i) for i in range(9999)] + ["abc"] + ["5"] * 100,
            "string",
            [str(i) for i in range(9999)] + ["abc"] + ["5"] * 100,
        ),
        # a decimal after 5,000 integers
        (
            [str(i) for i in range(5000)] + ["2.5"] + ["7"] * 10,
            "number",
            [float(i) for i in range(5000)] + [2.5] + [7.0] * 10,
        ),
        # an integer beyond 64 bits late in an integer column: never rounded
        (["1"] * 6000 + [str(2**64)], "string", ["1"] * 6000 + [str(2**64)]),
        # booleans, then something else: the original spellings are kept
        (["True", "false"] * 3000 + ["maybe"], "string", ["True", "false"] * 3000 + ["maybe"]),
        # dates, then datetimes: the dates become their midnights
        pytest.param(
            ["2023-01-05"] * 5000 + ["2023-01-06T10:30:00"],
            "datetime",
            ["2023-01-05T00:00:00"] * 5000 + ["2023-01-06T10:30:00"],
        ),
        # dates, then datetimes in batches of their own
        (
            ["2023-01-05"] * 4096 + ["2023-01-06T10:30:00"] * 5000,
            "datetime",
            ["2023-01-05T00:00:00"] * 4096 + ["2023-01-06T10:30:00"] * 5000,
        ),
        # naive datetimes, then ones with an offset: no common type but text
        (
            ["2023-01-05T10:00:00"] * 5000 + ["2023-01-06T10:30:00+01:00"],
            "string",
            ["2023-01-05T10:00:00"] * 5000 + ["2023-01-06T10:30:00+01:00"],
        ),
    ],
    ids=[
        "string-late",
        "number-late",
        "int64-overflow-late",
        "boolean",
        "date-then-datetime-in-one-batch",
        "date-then-datetime",
        "offset",
    ],
)
def test_a_late_value_widens_the_whole_column(tmp_path, texts, kind, expected):
    conversion, rows = convert(tmp_path, numbered(texts))
    assert types(conversion) == ["integer", kind]
    assert conversion.restarts > 0
    assert [row[1] for row in rows] == expected
    assert all(type(row[1]) is type(expected[0]) for row in rows)
    assert [row[0] for row in rows] == list(range(len(texts)))
    stats = orjson.loads((tmp_path / "out" / STATS_FILE).read_bytes())
    assert stats["k"]["type"] == kind
    assert stats["k"]["count"] == len(texts)


def test_a_column_null_for_its_first_rows_is_typed_by_its_first_values_without_restart(tmp_path):
    texts = [""] * 5000 + [str(i) for i in range(3000)]
    conversion, rows = convert(tmp_path, numbered(texts))
    assert types(conversion) == ["integer", "integer"]
    assert conversion.restarts == 0
    assert conversion.columns[1]["nulls"] == 5000
    assert [row[1] for row in rows] == [None] * 5000 + list(range(3000))


def test_two_columns_widening_in_different_batches_both_end_consistent(tmp_path):
    records = [f"{i},{i}" for i in range(12000)]
    records[6000] = "6000,x"
    records[11000] = "1.5,11000"
    conversion, rows = convert(tmp_path, lines("a,b", records))
    assert types(conversion) == ["number", "string"]
    assert conversion.restarts == 2
    assert all(type(a) is float and type(b) is str for a, b in rows)
    assert rows[5] == [5.0, "5"]


# --- the row index, batches, sample and progress ---------------------------------------------


def test_the_row_index_points_at_every_row_and_ends_at_the_file_size(tmp_path):
    count = 2 * BATCH_ROWS + 123
    data = lines(
        "id,word,when", [f"{i},{'é' * (i % 7)}w,2023-01-{1 + i % 28:02d}" for i in range(count)]
    )
    conversion, rows = convert(tmp_path, data)
    out = tmp_path / "out"
    offsets = read_offsets(out)
    content = (out / ROWS_FILE).read_bytes()
    assert conversion.rows == len(rows) == count
    assert len(offsets) == count + 1
    assert offsets[0] == 0
    assert offsets[-1] == len(content) == os.path.getsize(out / ROWS_FILE)
    for i in (0, 1, BATCH_ROWS - 1, BATCH_ROWS, BATCH_ROWS + 1, count - 1):
        line = content[offsets[i] : offsets[i + 1]]
        assert line.endswith(b"\n")
        assert orjson.loads(line) == rows[i]
        assert rows[i][0] == i
    fd = os.open(out / INDEX_FILE, os.O_RDONLY)
    try:
        index = RowIndex(fd)
        assert index.rows == count
        middle = BATCH_ROWS
        assert index.span(middle, middle + 2) == (offsets[middle], offsets[middle + 2])
        assert index.span(count - 1, count + 50) == (offsets[count - 1], offsets[count])
    finally:
        os.close(fd)


def test_rows_keep_their_order_across_batches_and_progress_is_reported(tmp_path):
    count = 10_000
    reports = []
    data = lines("id,value", [f"{i},{i * 0.5}" for i in range(count)])
    conversion, rows = convert(tmp_path, data, progress=lambda done, n: reports.append((done, n)))
    assert conversion.rows == count
    assert rows == [[i, i * 0.5] for i in range(count)]
    assert len(reports) >= count // BATCH_ROWS
    assert reports == sorted(reports)
    assert reports[-1] == (len(data), count)


def test_the_sample_holds_whole_rows_of_the_dataset(tmp_path):
    count = 3 * SAMPLE_ROWS
    _, rows = convert(tmp_path, lines("id,name", [f"{i},n{i}" for i in range(count)]))
    sample = read_rows(tmp_path / "out", SAMPLE_FILE)
    assert len(sample) == SAMPLE_ROWS
    assert len({row[0] for row in sample}) == SAMPLE_ROWS
    assert all(rows[row[0]] == row for row in sample)


def test_the_sample_is_every_row_of_a_small_dataset(tmp_path):
    _, rows = convert(tmp_path, "a\n1\n2\n3\n")
    assert read_rows(tmp_path / "out", SAMPLE_FILE) == rows


def test_statistics_are_written_for_every_column(tmp_path):
    conversion, _ = convert(tmp_path, "n,x,s\n1,2.5,a\n2,,b\n3,4.5,a\n")
    stats = orjson.loads((tmp_path / "out" / STATS_FILE).read_bytes())
    assert list(stats) == ["n", "x", "s"]
    assert [stats[name]["type"] for name in stats] == types(conversion)
    assert stats["n"]["sum"] == 6
    assert stats["x"]["nulls"] == 1
    assert stats["s"]["top"] == [{"value": "a", "count": 2}, {"value": "b", "count": 1}]


def test_dates_in_the_round_trip_keep_their_calendar(tmp_path):
    days = [date(1, 1, 1), date(2024, 2, 29), date(9999, 12, 31)]
    _, rows = convert(tmp_path, lines("d", [d.isoformat() for d in days]))
    assert rows == [[d.isoformat()] for d in days]


def test_a_column_of_numbers_near_the_largest_float_converts(tmp_path):
    conversion, rows = convert(tmp_path, "x\n1e308\n1.5e308\n")
    assert types(conversion) == ["number"]
    assert rows == [[1e308], [1.5e308]]


def test_an_unclosed_quote_fails_naming_its_line_instead_of_swallowing_the_rest(tmp_path):
    with pytest.raises(InvalidCSV) as failure:
        convert(tmp_path, 'a,b\n1,2\n"3,4\n5,6\n')
    assert failure.value.line is not None and failure.value.line >= 3


def test_an_integer_a_float_would_round_keeps_a_decimal_column_a_string(tmp_path):
    conversion, rows = convert(tmp_path, "x\n1.5\n12345678901234567\n")
    assert types(conversion) == ["string"]
    assert rows == [["1.5"], ["12345678901234567"]]


# --- Statistics in a second process -----------------------------------------------------------


def _awkward_table(rows: int) -> str:
    """Columns that widen late (a restart), stay null for a while, and hold many values."""
    out = ["id,amount,late,nully,word,when"]
    for i in range(rows):
        late = "x" if i == rows - 3 else str(i % 50)  # integer until near the end: a restart
        nully = "" if i < 3000 else f"{i / 7:.3f}"  # typed after 3,000 nulls, no restart
        out.append(f"{i},{i % 997}.5,{late},{nully},w{i % 5000},2024-01-{1 + i % 28:02d}T10:00:00Z")
    return "\n".join(out) + "\n"


SECOND_PROCESS_TABLES = {
    "awkward": _awkward_table(12_000),
    "header only": "a,b\n",
    "all null": "a,b\n" + "NA,\n" * 3000,
    "null, then integers, then a decimal": "a\n" + "\n" * 2500 + "1\n" * 2500 + "1.5\n",
    "datetimes, then one with an offset": "t\n"
    + "2024-01-01T10:00:00\n" * 3000
    + "2024-01-01T10:00:00Z\n",
    "booleans and dates": "f,d\n"
    + "".join(f"{i % 3 == 0},2024-02-{1 + i % 28:02d}\n" for i in range(5000)),
    "floats, datetimes with Z, free text, nulls": "x,t,s\n"
    + "".join(
        f"{'' if i % 7 == 0 else -i / 3},2024-03-01T{i % 24:02d}:{i % 60:02d}:00.{i:06d}Z,"
        f"{'NA' if i % 11 == 0 else f'free text {i}'}\n"
        for i in range(9000)
    ),
}
COLUMN_FILES = (column_store.META_NAME, column_store.DATA_NAME)


def _written(out: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in names}


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The ForkedTally objects built, as if this machine had two CPUs whatever it has (else a
    test of the second process would compare one process with itself)."""
    from streaming import tally

    built: list[object] = []
    real = tally.ForkedTally

    def counted(*args: object) -> object:
        built.append(real(*args))
        return built[-1]

    monkeypatch.setattr(tally.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(tally, "ForkedTally", counted)
    return built


@pytest.mark.parametrize("table", SECOND_PROCESS_TABLES, ids=list(SECOND_PROCESS_TABLES))
def test_statistics_and_columns_in_a_second_process_are_the_same(
    tmp_path: Path, table: str, forks: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Byte for byte: stats.json, columns.json and columns.bin (blocks of 4,096 rows, so the
    tables cross blocks and a restart rewrites several)."""
    monkeypatch.setattr(column_store, "BLOCK_ROWS", 4096)
    outputs = {}
    for parallel in (False, True):
        directory = tmp_path / str(parallel)
        directory.mkdir()
        conversion, rows = convert(directory, SECOND_PROCESS_TABLES[table], parallel=parallel)
        files = _written(directory / "out", (STATS_FILE, *COLUMN_FILES))
        outputs[parallel] = (conversion, rows, files[STATS_FILE], files)
    assert forks  # the parallel run really had a second process
    assert outputs[True] == outputs[False]
    if table == "awkward":
        conversion = outputs[True][0]
        assert conversion.restarts == 1 and types(conversion)[2:4] == ["string", "number"]
        assert orjson.loads(outputs[True][2])["word"]["distinct_exact"] is False  # sketched


def _children() -> list[str]:
    """This process's children, running or zombies (read, not reaped)."""
    found: list[str] = []
    for task in Path("/proc/self/task").iterdir():
        found += (task / "children").read_text().split()
    return found


def test_a_failing_sync_leaves_no_statistics_process_behind(
    tmp_path: Path, forks: list[object]
) -> None:
    fds = len(os.listdir("/proc/self/fd"))
    text = _awkward_table(6000) + "1,2,3,4,5,6,7\n"  # a ragged row at the very end
    with pytest.raises(InvalidCSV):
        convert(tmp_path, text, parallel=True)
    assert len(forks) == 1 and _children() == []
    assert len(os.listdir("/proc/self/fd")) == fds  # pipes and files closed


def test_a_statistics_process_that_dies_costs_only_time(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    forks: list[object],
) -> None:
    """Killed, or out of memory: the pass is done again with the statistics in this process."""
    from streaming import tally

    def die(*args: object) -> None:  # what the forked child runs instead of its loop
        os._exit(3)

    text = _awkward_table(20_000)
    (tmp_path / "one").mkdir()
    expected = convert(tmp_path / "one", text, parallel=False)
    monkeypatch.setattr(tally, "_serve", die)
    (tmp_path / "two").mkdir()
    assert convert(tmp_path / "two", text, parallel=True) == expected
    assert len(forks) == 1 and "in one process" in caplog.text
    names = (ROWS_FILE, STATS_FILE, *COLUMN_FILES)
    assert _written(tmp_path / "one/out", names) == _written(tmp_path / "two/out", names)
    assert _children() == []


def test_a_statistics_process_that_dies_mid_file_leaves_whole_columns(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    forks: list[object],
) -> None:
    """The child writes some blocks, then dies: the pass in one process writes them again."""
    from streaming import tally

    monkeypatch.setattr(column_store, "BLOCK_ROWS", 1024)
    text = _awkward_table(20_000)
    (tmp_path / "one").mkdir()
    convert(tmp_path / "one", text, parallel=False)
    real_end_batch, batches = tally.Tally.end_batch, [0]

    def end_batch_then_die(self: tally.Tally) -> None:
        real_end_batch(self)
        batches[0] += 1
        if self.writer is not None and batches[0] == 4 and os.getpid() != parent:
            os._exit(3)

    parent = os.getpid()
    monkeypatch.setattr(tally.Tally, "end_batch", end_batch_then_die)
    (tmp_path / "two").mkdir()
    convert(tmp_path / "two", text, parallel=True)
    assert len(forks) == 1 and "in one process" in caplog.text
    assert _written(tmp_path / "one/out", COLUMN_FILES) == _written(
        tmp_path / "two/out", COLUMN_FILES
    )
    # Nothing of the dead child's is left, its column writer's scratch file included.
    assert sorted(os.listdir(tmp_path / "two/out")) == sorted(os.listdir(tmp_path / "one/out"))
