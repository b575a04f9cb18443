"""Answers from the columns: the same answers as the row scan (``streaming.scan``,
``streaming.aggregate``), read from only the columns a question names, a block at a time.

Each kernel takes a ``ColumnSelection`` (a ``filter.Selection`` compiled against a reader's
columns; ``ColumnSelection.possible`` says whether the columns can answer it) and returns what
its row-path twin returns, so a caller can swap one for the other::

    reader = open_columns(dataset)          # None: no columns, use the row scan
    selection = ColumnSelection(reader, query)
    if selection.possible:
        total = count(selection)

``group_by`` is in ``streaming.column_group``.

Per-value work runs in C: masks are integers (``int.bit_count`` counts them), values are
picked with ``itertools.compress`` and reduced with ``sum``/``min``/``max``/``sorted``/
``Counter``. Memory is one block of the named columns, whatever the dataset's size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from itertools import compress, islice, repeat
from operator import is_not, le, lt, neg
from typing import Any

import orjson

from streaming.column_filter import ColumnSelection
from streaming.column_read import ColumnReader, to_flags
from streaming.scan import STATS_BATCH
from streaming.stats import ColumnStats


def count(selection: ColumnSelection) -> int:
    """The number of matching rows (``scan.count``)."""
    return sum(mask.bit_count() for _, mask in selection.masks())


def page_rows(
    selection: ColumnSelection, start: int, skip: int, limit: int
) -> tuple[list[int], int | None]:
    """Row numbers of up to ``limit`` matching rows from row ``start`` on, after skipping
    ``skip`` of them; and the row to resume from, None at the end (as ``scan.page``)."""
    reader = selection.reader
    found: list[int] = []
    for block, mask in selection.masks(start):
        matched = mask.bit_count()
        if skip >= matched:
            skip -= matched
            continue
        first, rows = reader.blocks[block]
        numbers = compress(range(first, first + rows), to_flags(mask, rows))
        found += islice(numbers, skip, skip + limit - len(found))
        skip = 0
        if len(found) == limit:
            resume = found[-1] + 1
            return found, resume if resume < reader.rows else None
    return found, None


def sorted_rows(
    selection: ColumnSelection, position: int, descending: bool, skip: int, limit: int
) -> list[int]:
    """Row numbers of a page of matching rows in the order of one column, nulls last, ties in
    file order (as ``scan.sorted_page``, whose rows are then fetched by the index)."""
    reader = selection.reader
    wanted = skip + limit
    best: list[tuple[Any, int]] = []  # (key, row), keys negated when descending
    nulls: list[int] = []
    ranks = _ranks(reader, position)
    for block, mask in selection.masks():
        first, rows = reader.blocks[block]
        segment = reader.segment(position, block)
        if segment.null_flags is not None or segment.all_null:
            null_mask = mask & ~segment.present()
            if null_mask and len(nulls) < wanted:
                null_flags = to_flags(null_mask, rows)
                nulls += islice(compress(range(first, first + rows), null_flags), wanted)
        mask &= segment.present()
        if not mask:
            continue
        if len(best) == wanted and ranks is None:  # a block that cannot beat the worst kept
            worst = best[-1][0]
            if (-segment.high if descending else segment.low) >= worst:
                continue
        keys = _keys(reader, position, block, ranks)
        if descending:
            keys = list(map(neg, keys))
        flags = to_flags(mask, rows)
        keys = list(compress(keys, flags))
        numbers = list(compress(range(first, first + rows), flags))
        if len(best) == wanted:  # only keys below the worst kept can enter (ties: file order)
            better = bytes(map(lt, keys, repeat(best[-1][0])))
            keys, numbers = list(compress(keys, better)), list(compress(numbers, better))
        if len(keys) > wanted:
            cut = sorted(keys)[wanted - 1]
            near = bytes(map(le, keys, repeat(cut)))
            keys, numbers = list(compress(keys, near)), list(compress(numbers, near))
        best = sorted(best + list(zip(keys, numbers)))[:wanted]
    ordered = [number for _, number in best] + nulls[: wanted - len(best)]
    return ordered[skip:wanted]


def _ranks(reader: ColumnReader, position: int) -> list[int] | None:
    """For a string column, each code's rank in the sorted dictionary (codes sort as texts)."""
    if reader.kinds[position] != "string":
        return None
    values = reader.dictionary(position)
    ranks = [0] * len(values)
    for rank, code in enumerate(sorted(range(len(values)), key=values.__getitem__)):
        ranks[code] = rank
    return ranks


def _keys(reader: ColumnReader, position: int, block: int, ranks: list[int] | None) -> list[Any]:
    """Sort keys of one block of a column: numbers in value order (nulls hold junk)."""
    segment = reader.segment(position, block)
    if ranks is not None:
        return list(map(ranks.__getitem__, segment.stored()))
    if segment.floating:
        return list(segment.stored())
    return segment.integers()


def statistics(
    selection: ColumnSelection, positions: Sequence[int], rows: RowReader | None = None
) -> tuple[int, dict[str, Any]]:
    """The number of matching rows and the STATS of the columns at ``positions`` over them
    (``scan.statistics``, for the columns asked). A column the columns do not hold (free text)
    is read from the matching rows alone, by ``rows`` (``rows(first, stop)``: the stored rows
    ``[first, stop)``), a slice of a block at a time: only those rows are decoded."""
    reader = selection.reader
    kinds = reader.kinds
    stats = {p: ColumnStats(kinds[p]) for p in positions}
    unstored = [p for p in positions if not reader.coded(p)]
    if unstored and rows is None:
        raise ValueError("columns that are not stored need a reader of the rows")
    matched = 0
    for block, mask in selection.masks():
        matched += mask.bit_count()
        for p, column_stats in stats.items():
            if p not in unstored:
                _feed(column_stats, reader.values(p, block, mask))
        if unstored and rows is not None:
            _feed_from_rows(reader, block, mask, rows, {p: stats[p] for p in unstored})
    names = reader.dataset.names
    return matched, {names[p]: s.result() for p, s in stats.items()}


RowReader = Callable[[int, int], list[bytes]]


def _feed(column_stats: ColumnStats, values: list[Any]) -> None:
    # In batches the size the row path feeds: the quantile sketch keeps a share of each batch,
    # and a whole block at once measured coarser quantiles.
    for start in range(0, len(values), STATS_BATCH):
        batch = values[start : start + STATS_BATCH]
        present = list(filter(_PRESENT, batch)) if None in batch else batch
        column_stats.update(present, len(batch) - len(present))


def _feed_from_rows(
    reader: ColumnReader, block: int, mask: int, rows: RowReader, stats: dict[int, ColumnStats]
) -> None:
    """Feed columns from the matching rows of one block, STATS_BATCH rows of the file at a time."""
    first, count = reader.blocks[block]
    flags = to_flags(mask, count)
    for start in range(0, count, STATS_BATCH):
        keep = flags[start : start + STATS_BATCH]
        if not keep.count(1):
            continue
        lines = list(compress(rows(first + start, first + start + len(keep)), keep))
        decoded: list[list[Any]] = orjson.loads(b"[" + b",".join(lines) + b"]")
        for p, column_stats in stats.items():
            _feed(column_stats, [row[p] for row in decoded])


_PRESENT = partial(is_not, None)  # filter(_PRESENT, values): the non-null ones, in C


def answerable(reader: ColumnReader, positions: Sequence[int]) -> bool:
    """Whether every column at ``positions`` is stored in the columns."""
    return all(map(reader.coded, positions))
