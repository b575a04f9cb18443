"""The column kernels give the row path's answers: counts, pages, sorts, group-bys, statistics.

A realistic table of every type is synced with blocks shrunk to 64 rows, so that ~50 blocks
meet every skip rule, and each kernel is compared with its row-path twin over many filters.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from streaming import aggregate, column_group, column_store, scan
from streaming.column_filter import ColumnSelection
from streaming.column_group import group_by
from streaming.column_query import count, page_rows, sorted_rows, statistics
from streaming.column_read import ColumnReader
from streaming.filter import parse
from streaming.read import Dataset
from tests.columns_helpers import columns_of, flights_text, same

ROWS = 3000

FILTERS = [
    {},
    {"carrier": "UA"},
    {"carrier__not": "UA"},
    {"carrier__in": "UA,DL,XX"},
    {"carrier__notin": "UA,DL"},
    {"carrier__isnull": "1"},
    {"carrier__notnull": "1"},
    {"carrier__gt": "DL"},
    {"carrier__icontains": "ün"},
    {"carrier__startswith": "A"},
    {"carrier__endswith": "L"},
    {"id": "300"},
    {"id__gt": "4500"},
    {"id__gte": "4500", "id__lt": "4600"},
    {"id__lte": "191"},
    {"id__in": "0,3,6,1000,8997"},
    {"id__notin": "0,3"},
    {"id__gt": "191.5"},
    {"id": "3.5"},
    {"price__gt": "100"},
    {"price__lte": "0"},
    {"price__not": "12.5"},
    {"price__isnull": "1"},
    {"price__in": "1,2,3.5"},
    {"delay__gte": "0", "delay__lt": "30"},
    {"delay__not": "0"},
    {"delay__notin": "1,2,3"},
    {"delay__isnull": "true"},
    {"day__gt": "2023-06-15"},
    {"day": "2023-02-03"},
    {"day__in": "2023-02-03,2023-05-05"},
    {"at__gte": "2023-03-10T10:00:00"},
    {"at__lt": "2023-03-02T00:00:00.5"},
    {"at": "2023-03-04T10:30:00"},
    {"at__isnull": "1"},
    {"ok": "true"},
    {"ok__not": "1"},
    {"ok__isnull": "1"},
    {"empty__isnull": "1"},
    {"empty": "x"},
    {"late_int__gt": "2"},
    {"late_int__isnull": "1"},
    {"carrier": "DL", "delay__gt": "100", "price__notnull": "1"},
]
IDS = ["&".join(f"{k}={v}" for k, v in f.items()) or "none" for f in FILTERS]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dataset, ColumnReader]]:
    root = tmp_path_factory.mktemp("columns")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(column_store, "BLOCK_ROWS", 64)
        patch.setattr(column_store, "DICTIONARY_MAX", 200)  # "note" is free text: not coded
        with columns_of(root, flights_text(ROWS)) as opened:
            yield opened


def test_table_has_many_blocks_and_an_uncoded_column(table: tuple[Dataset, ColumnReader]) -> None:
    dataset, reader = table
    assert len(reader.blocks) == -(-ROWS // 64)
    assert not reader.coded(dataset.names.index("note"))
    assert all(reader.coded(p) for p, n in enumerate(dataset.names) if n != "note")


@pytest.mark.parametrize("query", FILTERS, ids=IDS)
def test_count_and_pages_match_the_row_scan(
    table: tuple[Dataset, ColumnReader], query: dict[str, str]
) -> None:
    dataset, reader = table
    selection_query = parse(query, dataset.meta["columns"])
    selection = ColumnSelection(reader, selection_query)
    assert selection.possible
    assert count(selection) == scan.count(dataset, selection_query)
    for start, skip, limit in [(0, 0, 7), (130, 5, 40), (2990, 0, 100), (0, 2500, 10)]:
        rows, resume = scan.page(dataset, selection_query, start, skip, limit)
        numbers, resume_here = page_rows(selection, start, skip, limit)
        assert [dataset.row(n) for n in numbers] == rows
        assert resume_here == resume


@pytest.mark.parametrize("query", FILTERS[::3], ids=IDS[::3])
@pytest.mark.parametrize("column", ["id", "price", "carrier", "day", "at", "ok", "delay"])
def test_sorted_pages_match_the_row_scan(
    table: tuple[Dataset, ColumnReader], query: dict[str, str], column: str
) -> None:
    dataset, reader = table
    selection_query = parse(query, dataset.meta["columns"])
    position = dataset.names.index(column)
    kind = dataset.meta["columns"][position]["type"]
    for descending in (False, True):
        for skip, limit in [(0, 10), (25, 300)]:
            rows = scan.sorted_page(
                dataset, selection_query, position, descending, kind, skip, limit
            )
            selection = ColumnSelection(reader, selection_query)
            numbers = sorted_rows(selection, position, descending, skip, limit)
            assert [dataset.row(n) for n in numbers] == rows


GROUPINGS = [
    ("carrier", "count"),
    ("carrier", "count,sum:delay,mean:price,min:day,max:at,distinct:id"),
    ("ok", "sum:price,min:carrier,max:carrier,distinct:carrier"),
    ("day", "count,mean:delay"),
    ("price", "count"),
    ("carrier,ok", "count,sum:price,mean:delay,min:price,max:delay"),
    ("delay,carrier", "count,distinct:ok"),
    ("at", "count,min:id"),
    ("empty,carrier", "count,max:empty"),
    ("late_int", "count,sum:late_int,min:late_int"),
]


@pytest.mark.parametrize("query", FILTERS[::2], ids=IDS[::2])
@pytest.mark.parametrize(("by", "agg"), GROUPINGS)
def test_group_by_matches_the_row_path(
    table: tuple[Dataset, ColumnReader], query: dict[str, str], by: str, agg: str
) -> None:
    dataset, reader = table
    columns = dataset.meta["columns"]
    selection_query = parse(query, columns)
    positions, aggregates = aggregate.parse(by, agg, columns)
    for max_groups in (10_000, 5):
        expected = aggregate.group_by(dataset, selection_query, positions, aggregates, max_groups)
        found = group_by(
            ColumnSelection(reader, selection_query), positions, aggregates, max_groups
        )
        same(found, expected)


@pytest.mark.parametrize("query", FILTERS, ids=IDS)
def test_statistics_match_the_row_path(
    table: tuple[Dataset, ColumnReader], query: dict[str, str]
) -> None:
    dataset, reader = table
    selection_query = parse(query, dataset.meta["columns"])
    positions = [p for p, name in enumerate(dataset.names) if name != "note"]
    matched, expected = scan.statistics(dataset, selection_query)
    found_matched, found = statistics(ColumnSelection(reader, selection_query), positions)
    assert found_matched == matched
    same(found, {name: expected[name] for name in found})


def test_uncoded_columns_are_left_to_the_row_scan(table: tuple[Dataset, ColumnReader]) -> None:
    dataset, reader = table
    columns = dataset.meta["columns"]
    assert not ColumnSelection(reader, parse({"note__contains": "late"}, columns)).possible
    assert not ColumnSelection(reader, parse({"note": "x"}, columns)).possible
    # q searches every string column, the uncoded one too.
    assert not ColumnSelection(reader, parse({"q": "late"}, columns)).possible
    # Dates as text are not answered from their numbers.
    assert not ColumnSelection(reader, parse({"day__startswith": "2023-0"}, columns)).possible


@pytest.mark.parametrize("query", FILTERS[::4], ids=IDS[::4])
@pytest.mark.parametrize(("by", "agg"), GROUPINGS)
def test_group_by_folds_parts_of_blocks_as_the_row_path(
    table: tuple[Dataset, ColumnReader],
    query: dict[str, str],
    by: str,
    agg: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Parts of 24 rows: groups cross part and block edges, a part may hold no matching row.
    monkeypatch.setattr(column_group, "PART_ROWS", 24)
    dataset, reader = table
    columns = dataset.meta["columns"]
    selection_query = parse(query, columns)
    positions, aggregates = aggregate.parse(by, agg, columns)
    for max_groups in (10_000, 7):
        expected = aggregate.group_by(dataset, selection_query, positions, aggregates, max_groups)
        found = group_by(
            ColumnSelection(reader, selection_query), positions, aggregates, max_groups
        )
        same(found, expected)


def test_ten_thousand_groups_are_cut_as_the_row_path_cuts_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(column_store, "BLOCK_ROWS", 4096)
    monkeypatch.setattr(column_group, "PART_ROWS", 1000)
    rng = random.Random(3)
    lines = ["carrier,price,day,delay"]
    for i in range(30_000):
        delay = "" if i % 7 == 0 else str(rng.randint(-20, 200))
        day = f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        lines.append(f"{rng.choice('ABCDEFGH')},{rng.randint(0, 4000) / 4},{day},{delay}")
    with columns_of(tmp_path, "\n".join(lines) + "\n") as (dataset, reader):
        columns = dataset.meta["columns"]
        for by, agg in [
            ("carrier,price", "count,mean:delay"),
            ("carrier,day", "count,sum:delay,mean:price,min:delay,max:day"),
            ("price", "count,sum:price,distinct:carrier"),
        ]:
            positions, aggregates = aggregate.parse(by, agg, columns)
            for query in ({}, {"delay__gt": "50"}):
                parsed = parse(query, columns)
                expected = aggregate.group_by(dataset, parsed, positions, aggregates, 10_000)
                found = group_by(ColumnSelection(reader, parsed), positions, aggregates, 10_000)
                assert found[1] == expected[1]
                same(found, expected)
        positions, aggregates = aggregate.parse("carrier,price", "count", columns)
        assert group_by(ColumnSelection(reader, parse({}, columns)), positions, aggregates, 10_000)[
            1
        ]
