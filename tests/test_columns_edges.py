"""The columns at their edges: block boundaries, empty and tiny datasets, damaged or missing
files, a sync that restarts, random tables against the row path, and DuckDB as an oracle."""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import tempfile
import zlib
from array import array
from collections import Counter
from pathlib import Path

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming import aggregate, column_group, column_store, convert, scan
from streaming.column_backfill import build_columns
from streaming.column_filter import ColumnSelection, floats_above, offsets_above
from streaming.column_group import group_by
from streaming.column_query import count, page_rows, sorted_rows, statistics
from streaming.column_read import Segment, open_columns, to_flags
from streaming.errors import BadRequest, ColumnsDamaged
from streaming.filter import parse
from streaming.read import Dataset
from streaming.store import Store
from tests.columns_helpers import columns_of, flights_text, same, synced
from tests.conftest import upload

BLOCK = 64


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(column_store, "BLOCK_ROWS", BLOCK)


def _csv(header: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _agree(root: Path, text: str, queries: list[dict[str, str]], tolerant: bool = False) -> int:
    """Every kernel agrees with the row path over these queries; how many were compared
    (``tolerant``: a query whose value does not read as its column's type is left out)."""
    compared = 0
    with columns_of(root, text) as (dataset, reader):
        columns = dataset.meta["columns"]
        for query in queries:
            try:
                parsed = parse(query, columns)
            except BadRequest:
                if not tolerant:
                    raise
                continue
            compared += 1
            selection = ColumnSelection(reader, parsed)
            assert selection.possible, query
            assert count(selection) == scan.count(dataset, parsed), query
            rows, resume = scan.page(dataset, parsed, 0, 0, 50)
            numbers, resume_here = page_rows(selection, 0, 0, 50)
            assert ([dataset.row(n) for n in numbers], resume_here) == (rows, resume), query
            for position, column in enumerate(columns):
                kind = column["type"]
                expected = scan.sorted_page(dataset, parsed, position, True, kind, 0, 20)
                found = sorted_rows(selection, position, True, 0, 20)
                assert [dataset.row(n) for n in found] == expected, (query, column)
            matched, stats = scan.statistics(dataset, parsed)
            found_matched, found_stats = statistics(selection, list(range(len(columns))))
            assert found_matched == matched
            same(found_stats, stats)
            for column in columns:
                by, aggs = aggregate.parse(column["name"], f"count,min:{column['name']}", columns)
                same(
                    group_by(selection, by, aggs, 1000),
                    aggregate.group_by(dataset, parsed, by, aggs, 1000),
                )
    return compared


@pytest.mark.parametrize("rows", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK])
def test_block_sizes_at_their_edges(tmp_path: Path, rows: int) -> None:
    data = [[i, f"c{i % 3}", i * 0.5, "" if i % 5 == 0 else i % 7] for i in range(rows)]
    queries = [{}, {"n__gte": str(BLOCK - 1)}, {"n__lt": str(BLOCK)}, {"s": "c1"}, {"x__gt": "3"}]
    _agree(tmp_path, _csv(["n", "s", "f", "x"], data), queries)


def test_values_equal_to_a_blocks_min_or_max(tmp_path: Path) -> None:
    # Block i holds 100*i .. 100*i + 63: filters at each edge, and just past it.
    numbers = [100 * (i // BLOCK) + i % BLOCK for i in range(256)]
    data = [[n, n + 0.5] for n in numbers]
    queries = []
    for block in range(4):
        for edge in (100 * block, 100 * block + BLOCK - 1):
            for op in ("exact", "not", "gt", "gte", "lt", "lte"):
                for value in (edge, edge + 1, edge - 1):
                    queries.append({f"n__{op}": str(value)})
                    queries.append({f"f__{op}": str(value + 0.5)})
    _agree(tmp_path, _csv(["n", "f"], data), queries)


def test_all_null_blocks_and_a_column_typed_late(tmp_path: Path) -> None:
    # The second column is null for two whole blocks, then integers; the third is null throughout.
    data = [[i, "" if i < 2 * BLOCK + 3 else i, ""] for i in range(3 * BLOCK)]
    queries = [{}, {"v__isnull": "1"}, {"v__notnull": "1"}, {"v__gt": "150"}, {"e__isnull": "1"}]
    _agree(tmp_path, _csv(["n", "v", "e"], data), queries)


def test_q_searches_coded_string_columns(tmp_path: Path) -> None:
    data = [["Alpha" if i % 3 else "beta", "GAMMA" if i % 4 else "", i] for i in range(200)]
    _agree(tmp_path, _csv(["a", "b", "n"], data), [{"q": "ALP"}, {"q": "mm"}, {"q": "zz"}])


def test_datetimes_with_z_compare_by_their_moment(tmp_path: Path) -> None:
    fractions = ["", ".25", ""]
    data = [[f"2024-05-0{1 + i % 5}T0{i % 10}:00:00{fractions[i % 3]}Z"] for i in range(150)]
    queries = [
        {},
        {"t__gt": "2024-05-03T04:00:00Z"},
        {"t": "2024-05-01T00:00:00.250000Z"},
        {"t__lte": "2024-05-02T03:00:00+02:00"},
    ]
    _agree(tmp_path, _csv(["t"], data), queries)


def test_a_restarted_sync_writes_columns_of_the_final_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(convert, "BATCH_ROWS", 16)
    data = [[i, "x" if i == 100 else i] for i in range(150)]  # b turns string at row 100
    with columns_of(tmp_path, _csv(["a", "b"], data)) as (dataset, reader):
        assert reader.kinds == ["integer", "string"]
        parsed = parse({"b__in": "x,5"}, dataset.meta["columns"])
        assert count(ColumnSelection(reader, parsed)) == scan.count(dataset, parsed) == 2


def test_a_dataset_without_columns_answers_none(tmp_path: Path) -> None:
    with synced(tmp_path, flights_text(10)) as dataset:
        dataset.meta.pop("columns_format")
        assert open_columns(dataset) is None
        dataset.meta["columns_format"] = column_store.FORMAT
        os.remove(dataset.folder / column_store.DATA_NAME)
        reader = open_columns(dataset)  # opened with the dataset: its reader keeps them
        assert reader is not None
        reader.close()
    with Dataset(Store(tmp_path), "ds_0000000000c1") as dataset:  # opened after: none
        assert open_columns(dataset) is None


def test_a_damaged_segment_is_refused_not_answered(tmp_path: Path) -> None:
    with synced(tmp_path, flights_text(300)) as dataset:
        path = dataset.folder / column_store.DATA_NAME
        data = bytearray(path.read_bytes())
        data[10] ^= 0xFF  # a flipped byte in the first segment of the first column
        path.write_bytes(bytes(data))
        reader = open_columns(dataset)
        assert reader is not None
        with reader, pytest.raises(ColumnsDamaged):
            count(ColumnSelection(reader, parse({"id__gt": "5"}, dataset.meta["columns"])))


def test_truncated_or_mismatched_column_files_are_refused(tmp_path: Path) -> None:
    with synced(tmp_path, flights_text(300)) as dataset:
        path = dataset.folder / column_store.DATA_NAME
        path.write_bytes(path.read_bytes()[:-1])
        with pytest.raises(ColumnsDamaged):
            open_columns(dataset)
        described = dataset.folder / column_store.META_NAME
        described.write_bytes(b'{"format": 1, "rows": ')
        with pytest.raises(ColumnsDamaged):
            open_columns(dataset)
        described.write_bytes(orjson.dumps({"format": 99}))
        with pytest.raises(ColumnsDamaged):
            open_columns(dataset)


def test_the_worker_records_the_columns_format(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset_id = upload(client, rillet, "a,b\n1,x\n2,y\n")
    meta = client.get(f"/datasets/{dataset_id}").json()
    assert meta["columns_format"] == column_store.FORMAT
    _, folder = rillet.store.resolve(dataset_id)
    described = orjson.loads((folder / column_store.META_NAME).read_bytes())
    assert described["rows"] == 2 and [c["type"] for c in described["columns"]] == [
        "integer",
        "string",
    ]


def test_counts_agree_with_duckdb(tmp_path: Path) -> None:
    text = flights_text(1000)
    source = tmp_path / "oracle.csv"
    source.write_text(text)
    checks = [
        ({"carrier": "UA"}, "carrier = 'UA'"),
        ({"price__gt": "100"}, "price > 100"),
        ({"delay__gte": "0", "delay__lt": "30"}, "delay >= 0 AND delay < 30"),
        ({"delay__not": "0"}, "delay <> 0"),
        ({"day__gt": "2023-06-15"}, "day > DATE '2023-06-15'"),
        ({"carrier__notin": "UA,DL"}, "carrier NOT IN ('UA', 'DL')"),
        ({"price__isnull": "1"}, "price IS NULL"),
    ]
    with duckdb.connect() as con:
        con.execute(
            "CREATE TABLE t AS SELECT * FROM read_csv(?, nullstr=['', 'NA'], "
            "types={'carrier': 'VARCHAR', 'delay': 'BIGINT', 'price': 'DOUBLE'})",
            [str(source)],
        )
        with columns_of(tmp_path / "data", text) as (dataset, reader):
            for query, where in checks:
                parsed = parse(query, dataset.meta["columns"])
                (expected,) = con.execute(f"SELECT count(*) FROM t WHERE {where}").fetchone()
                assert count(ColumnSelection(reader, parsed)) == expected, query


_VALUES = {
    "i": st.one_of(st.just(""), st.integers(-5, 5), st.integers(-(2**62), 2**62)),
    "f": st.one_of(st.just(""), st.floats(-1e6, 1e6).map(lambda x: round(x, 3))),
    "s": st.one_of(st.just(""), st.sampled_from(["a", "b", "Bb", "ç", "a,b"])),
    "d": st.one_of(st.just(""), st.dates().map(lambda d: d.isoformat())),
    "b": st.sampled_from(["", "true", "false"]),
}
_OPS = ["exact", "not", "gt", "gte", "lt", "lte", "in", "notin", "isnull", "notnull"]


@st.composite
def tables_and_queries(draw: st.DrawFn) -> tuple[str, list[dict[str, str]]]:
    rows = draw(st.lists(st.tuples(*_VALUES.values()), max_size=3 * BLOCK // 2))
    text = _csv(list(_VALUES), [list(r) for r in rows])
    queries = []
    for _ in range(3):
        query = {}
        for column in draw(st.lists(st.sampled_from(list(_VALUES)), max_size=2, unique=True)):
            op = draw(st.sampled_from(_OPS))
            present = [r[list(_VALUES).index(column)] for r in rows]
            present = [v for v in present if v != ""] or ["1"]
            value = draw(st.sampled_from(present))
            if op in ("isnull", "notnull"):
                value = "1"
            elif op in ("in", "notin"):
                value = f"{value},{draw(st.sampled_from(present))}"
            query[f"{column}__{op}"] = value
        queries.append(query)
    return text, queries


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables_and_queries())
def test_random_tables_and_filters_agree_with_the_row_path(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, list[dict[str, str]]]
) -> None:
    text, queries = case
    _agree(tmp_path_factory.mktemp("random"), text, queries, tolerant=True)


def test_an_old_dataset_gets_the_columns_the_sync_would_write(tmp_path: Path) -> None:
    text = flights_text(500)
    with synced(tmp_path / "new", text) as fresh:
        expected = (fresh.folder / column_store.DATA_NAME).read_bytes()
    old_root = tmp_path / "old"
    with synced(old_root, text) as old:
        for name in (column_store.DATA_NAME, column_store.META_NAME):
            os.remove(old.folder / name)
        meta = {**old.meta}
        meta.pop("columns_format")
        (old.folder / "meta.json").write_bytes(orjson.dumps(meta))
    store = Store(old_root)
    with Dataset(store, "ds_0000000000c1") as old:
        assert open_columns(old) is None
    assert build_columns(store, "ds_0000000000c1")
    assert not build_columns(store, "ds_0000000000c1")
    with Dataset(store, "ds_0000000000c1") as old:
        assert (old.folder / column_store.DATA_NAME).read_bytes() == expected
        reader = open_columns(old)
        assert reader is not None
        parsed = parse({"carrier": "UA", "delay__gt": "10"}, old.meta["columns"])
        with reader:
            assert count(ColumnSelection(reader, parsed)) == scan.count(old, parsed)


_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_NEAR = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.0, -1.0, 2.5, -2.5, 1e308, -1e308])


def _segment_of(values: list[float | None]) -> Segment:
    present = [v for v in values if v is not None]
    flags = bytes(v is None for v in values)
    stored = array("d", [0.0 if v is None else v for v in values])
    if sys.byteorder == "big":
        stored.byteswap()
    return Segment(
        rows=len(values),
        nulls=flags.count(1),
        low=min(present),
        high=max(present),
        width=8,
        scale=1,
        values=stored.tobytes(),
        null_flags=flags if None in values else None,
        floating=True,
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(_FLOATS, _NEAR, st.none()), min_size=1, max_size=40).filter(
        lambda vs: any(v is not None for v in vs)
    ),
    st.one_of(_FLOATS, _NEAR),
    st.sampled_from([1.0, -1.0, 0.0]),
)
def test_floats_compare_by_their_bits_as_by_their_values(
    values: list[float | None], target: float, sign: float
) -> None:
    # A block of one sign (most: sign 1 or -1 folds every value to it) or of both (sign 0).
    if sign:
        values = [None if v is None else math.copysign(v, sign) for v in values]
    segment = _segment_of(values)
    present = segment.present()
    one_sign = all(v is None or (math.copysign(1, v) > 0) for v in values) or all(
        math.copysign(1, 0.0 if v is None else v) < 0 for v in values
    )
    for strict in (True, False):
        found = floats_above(segment, target, strict)
        if found is None:
            assert not one_sign
            continue
        expected = bytes(v is not None and (v > target if strict else v >= target) for v in values)
        assert to_flags(found & present, len(values)) == expected, (strict, values, target)


@pytest.mark.parametrize("width", [1, 2, 4, 8])
def test_offsets_above_reads_planes_from_the_top_and_stops_when_none_are_tied(
    width: int,
) -> None:
    top = (1 << (8 * width)) - 1
    edges = {0, 1, 255, 256, 257, top, top - 1, top // 2, top // 2 + 1, top // 256 * 7}
    offsets = sorted(n for n in edges if n <= top)
    data = b"".join(n.to_bytes(width, "little") for n in offsets)
    for target in offsets + [top // 3]:
        for strict in (True, False):
            found = to_flags(offsets_above(data, width, target, strict), len(offsets))
            expected = bytes(n > target if strict else n >= target for n in offsets)
            assert found == expected, (width, target, strict)


def test_float_ranges_on_blocks_of_one_sign_or_both_agree_with_the_row_path(
    tmp_path: Path,
) -> None:
    # Block 0 positive (with nulls), block 1 negative with -0.0, block 2 both signs, block 3
    # zeros of both signs and nulls.
    positive = [f"{i * 1.25 + 0.5}" if i % 9 else "" for i in range(BLOCK)]
    negative = ["-0.0" if i % 7 == 0 else f"{-i * 3.5}" for i in range(BLOCK)]
    mixed = [f"{(i - BLOCK // 2) * 0.75}" for i in range(BLOCK)]
    zeros = ["0.0" if i % 3 == 0 else "-0.0" if i % 3 == 1 else "" for i in range(BLOCK)]
    data = [[i, v] for i, v in enumerate(positive + negative + mixed + zeros)]
    queries = []
    for value in ("0", "-0.0", "0.5", "1.75", "-3.5", "-1e-300", "1e-300", "80.5", "-224"):
        for op in ("gt", "gte", "lt", "lte"):
            queries.append({f"f__{op}": value})
    _agree(tmp_path, _csv(["n", "f"], data), queries)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(-(2**40), 2**40)), min_size=1, max_size=30).filter(
        lambda vs: any(v is not None for v in vs)
    ),
    st.sampled_from([1, 7, 3600, 10**6]),
    st.sampled_from([1, 2, 5, 64]),
    st.sampled_from([1, 3, 8, 30]),
)
def test_integers_are_stored_as_offsets_by_the_gcd_a_chunk_at_a_time(
    numbers: list[int | None], step: int, chunk: int, batch: int
) -> None:
    # Frame-of-reference worked CHUNK values at a time, read back from the scratch file the
    # batches were spilled to: the same bytes as the whole block at once, whichever chunk
    # first shows a gcd of 1.
    values = [None if n is None else n * step for n in numbers]
    present = [v for v in values if v is not None]
    low, high = min(present), max(present)
    flags = bytes(v is None for v in values)
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(column_store, "CHUNK", chunk)
        writer = column_store.ColumnWriter(Path(folder), 1)
        for start in range(0, len(values), batch):
            writer.add([values[start : start + batch]], ["integer"])
        writer.close()
        data = (Path(folder) / column_store.DATA_NAME).read_bytes()
        described = orjson.loads((Path(folder) / column_store.META_NAME).read_bytes())
    [[offset, length, crc, *entry]] = described["columns"][0]["blocks"]
    differences = [0 if v is None else v - low for v in values]
    scale = math.gcd(*differences) or 1
    width = column_store.width_of((high - low) // scale)
    assert entry == [flags.count(1), low, high, width, scale]
    expected = b"".join((d // scale).to_bytes(width, "little") for d in differences)
    if 0 < flags.count(1) < len(values):
        expected += column_store.pack_bits(flags)
    assert data[offset : offset + length] == expected and zlib.crc32(expected) == crc


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=300).map(bytes), st.integers(0, 3))
def test_one_byte_ids_are_counted_by_scans_in_the_order_first_seen(data: bytes, spare: int) -> None:
    bound = max(data, default=0) + 1 + spare  # every id below it, some possible ids absent
    assert bound <= column_group.SCANNED
    found = column_group._sizes(data, bound)
    assert list(found.items()) == list(Counter(data).items())


@pytest.mark.parametrize("query", [{}, {"k__not": "C"}])
@pytest.mark.parametrize("column", ["small", "wide"])
def test_nulls_sorted_inside_or_after_the_groups_runs_agree_with_the_row_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: dict[str, str], column: str
) -> None:
    # An integral column with nulls folded by the sort: its nulls stay in their groups' runs
    # (offset 0, pairs within 30 bits: no filter, a one-byte value) or go after every run
    # (a filter leaves rows out, or a four-byte value), over parts and blocks.
    monkeypatch.setattr(column_group, "PART_ROWS", 24)
    monkeypatch.setattr(column_group, "_LOOK", 8)  # the sort, not the counted pairs
    layouts = []
    fold = column_group._fold_sorted

    def spy(*args: object) -> None:
        layouts.append(args[-1] is not None)
        fold(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(column_group, "_fold_sorted", spy)
    data = []
    for i in range(3 * BLOCK):
        null = i % 5 == 0
        small = "" if null else (i * 37) % 200 - 100
        wide = "" if null else (i * i * 7919 + i) % 5_000_000 - 2_500_000
        data.append([i, "ABC"[i % 3], f"2023-01-{1 + i % 9:02d}", small, wide])
    text = _csv(["n", "k", "day", "small", "wide"], data)
    with columns_of(tmp_path, text) as (dataset, reader):
        columns = dataset.meta["columns"]
        parsed = parse(query, columns)
        agg = f"count,sum:{column},mean:{column},min:{column},max:{column},distinct:{column}"
        for by in ("k", "k,day"):
            positions, aggregates = aggregate.parse(by, agg, columns)
            found = group_by(ColumnSelection(reader, parsed), positions, aggregates, 1000)
            same(found, aggregate.group_by(dataset, parsed, positions, aggregates, 1000))
    assert layouts
    assert all(layouts) if column == "small" and not query else not any(layouts)
