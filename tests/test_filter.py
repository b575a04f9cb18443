"""The filter engine's byte search: candidates() finds exactly the lines holding a needle."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.filter import parse

COLUMNS = [{"name": "s", "type": "string"}, {"name": "n", "type": "integer"}]
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


def block_of(rows: list[list[object]], final_newline: bool = True) -> bytes:
    data = b"\n".join(map(orjson.dumps, rows))
    return data + b"\n" if final_newline else data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(texts, st.integers(-50, 50)), max_size=30), texts, st.booleans())
def test_candidates_are_the_lines_holding_the_equal_string(rows, wanted, final_newline) -> None:
    block = block_of([list(r) for r in rows], final_newline)
    numbers, lines = parse({"s": wanted}, COLUMNS).candidates(block)
    expected = [i for i, r in enumerate(rows) if orjson.dumps(wanted) in orjson.dumps(list(r))]
    assert numbers == expected
    assert lines == [orjson.dumps(list(rows[i])) for i in expected]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(texts, st.integers(-50, 50)), max_size=30), texts)
def test_every_row_that_matches_is_a_candidate(rows, needle) -> None:
    query = parse({"s__contains": needle}, COLUMNS)
    block = block_of([list(r) for r in rows])
    found = query.candidates(block)
    numbers = found[0] if found is not None else list(range(len(rows)))
    assert [i for i, (s, _) in enumerate(rows) if needle in s] == [
        i for i in numbers if needle in rows[i][0]
    ]


def test_a_needle_twice_on_a_line_and_quotes_inside_values() -> None:
    rows = [['say "x"', 1], ["x", 2], ["x", 3]]
    block = block_of(rows, final_newline=False)
    numbers, _ = parse({"s__contains": '"x'}, COLUMNS).candidates(block)
    assert numbers == [0]
    numbers, lines = parse({"s": "x"}, COLUMNS).candidates(block)
    assert numbers == [1, 2] and lines[-1] == b'["x",3]'
