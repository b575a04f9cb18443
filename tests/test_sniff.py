"""The delimiter sniffer: records read with the csv module, the same width on every one."""

from __future__ import annotations

import csv
import io

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.sniff import SAMPLE_BYTES, record_widths, sniff_delimiter
from tests.corpus import EXPORTS, convert_bytes

CASES = {
    # The issue's two-line file: a quoted ";" made csv.Sniffer choose it, and the sync failed.
    "quoted-semicolon": (b'c0,c1\n"s"";",0\n', ","),
    "one-column": (b"name\nalice\nbob\n", ","),
    "one-column-with-commas-in-quotes": (b'note\n"a, b"\n"c, d"\n', ","),
    "header-only": (b"a;b;c\n", ";"),
    "two-lines-tab": (b"a\tb\n1\t2\n", "\t"),
    "two-lines-pipe": (b"a|b\n1|2\n", "|"),
    "semicolons-with-decimal-commas": (b"id;amount\n1;2,5\n2;3,25\n", ";"),
    "commas-with-quoted-semicolons": (b'id,note\n1,"a;b"\n2,"c;d"\n', ","),
    "quoted-newlines": (b'id,address\n1,"1 Main St\nApt 2; rear"\n2,"x"\n', ","),
    "tie-goes-to-comma": (b"a,b;c\n1,2;3\n", ","),
    "ragged-rows-still-comma": (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", ","),
}


@pytest.mark.parametrize(("data", "delimiter"), list(CASES.values()), ids=list(CASES))
def test_the_sniffer_finds_the_delimiter(data, delimiter):
    assert sniff_delimiter(data, "utf-8") == delimiter


def test_the_issues_two_line_file_now_syncs(tmp_path):
    conversion, rows = convert_bytes(tmp_path, CASES["quoted-semicolon"][0])
    assert [c["name"] for c in conversion.columns] == ["c0", "c1"]
    assert rows == [['s";', 0]]


def test_every_sampled_record_counts_not_the_first_lines(tmp_path):
    """Sixty lines that read as two fields either way, then one that only ';' reads evenly."""
    data = b"a,b;c\n" + b"1,2;3\n" * 60 + b"4,5,6;7\n"
    assert sniff_delimiter(data, "utf-8") == ";"


def test_a_head_cut_inside_a_quoted_field_is_judged_on_its_whole_records():
    record = b'1;"a long note\nover two lines, with commas, and more, commas"\n'
    data = b"id;note\n" + record * (SAMPLE_BYTES // len(record) + 10)
    head = data[:SAMPLE_BYTES]
    assert sniff_delimiter(head, "utf-8") == ";"


def test_a_delimiter_the_csv_module_cannot_read_is_out():
    assert record_widths('c0,c1\n"s"";",0\n', ";") is None
    assert record_widths('c0,c1\n"s"";",0\n', ",") == [2, 2]


@pytest.mark.parametrize("name", list(EXPORTS))
def test_duckdbs_sniffer_agrees_on_the_corpus(tmp_path, name):
    """A second opinion: DuckDB's sniff_csv finds the same delimiter for every export."""
    path = tmp_path / "export.csv"
    path.write_bytes(EXPORTS[name].data)
    with duckdb.connect() as con:
        (theirs,) = con.execute("SELECT Delimiter FROM sniff_csv(?)", [str(path)]).fetchone()
    assert sniff_delimiter(EXPORTS[name].data, "utf-8") == theirs == EXPORTS[name].delimiter


FIELD = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)


@given(
    delimiter=st.sampled_from(",;\t|"),
    width=st.integers(2, 6),
    rows=st.lists(st.lists(FIELD, min_size=6, max_size=6), max_size=30),
)
@settings(max_examples=300, deadline=None)
def test_the_sniffer_finds_the_delimiter_of_any_table_the_csv_module_writes(delimiter, width, rows):
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter)
    writer.writerow([f"c{i}" for i in range(width)])
    writer.writerows(row[:width] for row in rows)
    assert sniff_delimiter(text.getvalue().encode(), "utf-8") == delimiter
