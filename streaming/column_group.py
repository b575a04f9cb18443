"""Group-by from the columns: ``aggregate.group_by``'s answer, a block at a time, in C loops.

Each block's matching rows get a small integer group id from the ``by`` columns as stored
(a string's code, an integer's offset; a number's place in the block's own list of distinct
floats; one more id for null), two columns' ids combined as ``id1 * range2 + id2``. ``Counter``
counts the ids and ``dict.fromkeys`` gives them in order of first sight. An aggregated integer
column (dates, datetimes, booleans, and strings by their rank in the sorted dictionary too) is
folded by sorting ``id << shift | offset`` as plain integers, which puts each group's values in
one run, in value order: a run's sum, first, last and distinct count are one C call each.
Number columns sort the row order by id instead and fold each run with ``math.fsum``.

Groups, their order (first seen) and the ``max_groups`` cut are the row path's; the totals go
into the same ``aggregate._Group`` and come out through ``aggregate._result``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from itertools import compress, repeat
from operator import add, is_not, lshift, mul
from typing import Any

from streaming import column_store as fmt
from streaming.aggregate import Aggregate, _Group, _result
from streaming.column_filter import Selection
from streaming.column_read import ColumnReader, Segment, to_flags

_PRESENT = partial(is_not, None)
Decode = Callable[[int], Any]


def group_by(
    selection: Selection, by: Sequence[int], aggregates: Sequence[Aggregate], max_groups: int
) -> tuple[list[dict[str, Any]], bool]:
    """Every group's row and whether groups were left out, as ``aggregate.group_by``."""
    reader = selection.reader
    wanted: dict[int, set[str]] = {}
    for a in aggregates:
        if a.position is not None:
            wanted.setdefault(a.position, set()).add(a.function)
    groups: dict[Any, _Group] = {}
    truncated = False
    for block, mask in selection.masks():
        rows = reader.blocks[block][1]
        flags = to_flags(mask, rows)
        ids, decode = _ids(reader, by, block, flags)
        sizes = Counter(ids)
        kept: dict[int, _Group] = {}
        for local in dict.fromkeys(ids):  # first seen first
            key = decode(local)
            group = groups.get(key)
            if group is None:
                if len(groups) >= max_groups:
                    truncated = True
                    continue
                group = groups[key] = _Group()
            group.count += sizes[local]
            kept[local] = group
        for position, functions in wanted.items():
            _fold(reader, position, block, flags, ids, sizes, kept, functions)
    names = [reader.dataset.names[p] for p in by]
    pairs = groups.items()
    return [_result(names, k if len(by) > 1 else (k,), g, list(aggregates)) for k, g in pairs], (
        truncated
    )


def _ids(
    reader: ColumnReader, by: Sequence[int], block: int, flags: bytes
) -> tuple[list[int], Decode]:
    """Each matching row's group id, and the group key (a value, or a pair) of an id."""
    first_ids, first_decode, _ = _column_ids(reader, by[0], block, flags)
    if len(by) == 1:
        return first_ids, first_decode
    second_ids, second_decode, span = _column_ids(reader, by[1], block, flags)
    ids = list(map(add, map(mul, first_ids, repeat(span)), second_ids))

    def decode(local: int) -> tuple[Any, Any]:
        high, low = divmod(local, span)
        return first_decode(high), second_decode(low)

    return ids, decode


def _column_ids(
    reader: ColumnReader, position: int, block: int, flags: bytes
) -> tuple[list[int], Decode, int]:
    """One column's group ids of the matching rows, their key, and how many ids there can be."""
    segment = reader.segment(position, block)
    kind = reader.kinds[position]
    matched = flags.count(1)
    if segment.all_null:
        return [0] * matched, _none, 1
    if kind == "number":
        values = reader.values(position, block, to_mask_of(flags))
        distinct = list(dict.fromkeys(values))
        numbering = dict(zip(distinct, range(len(distinct))))
        return list(map(numbering.__getitem__, values)), distinct.__getitem__, len(distinct)
    if kind == "string":
        dictionary = reader.dictionary(position)
        null_id = len(dictionary)

        def decode(local: int) -> Any:
            return dictionary[local] if local != null_id else None

    else:
        null_id = (segment.high - segment.low) // segment.scale + 1
        decode = partial(_integral_value, reader, position, segment, null_id)
    stored: Any = segment.stored()
    if segment.null_flags is not None:  # nulls get the id after every value's
        present = segment.null_flags.translate(fmt._FLIP)
        stored = map(add, map(mul, stored, present), map(mul, segment.null_flags, repeat(null_id)))
    return list(compress(stored, flags)), decode, null_id + 1


def to_mask_of(flags: bytes) -> int:
    return int.from_bytes(flags, "little")


def _none(_: int) -> None:
    return None


def _integral_value(
    reader: ColumnReader, position: int, segment: Segment, null_id: int, local: int
) -> Any:
    if local == null_id:
        return None
    return _typed(reader, position, segment.low + local * segment.scale)


def _typed(reader: ColumnReader, position: int, number: int) -> Any:
    """A stored integer as the rows hold it."""
    kind = reader.kinds[position]
    if kind == "boolean":
        return bool(number)
    if kind == "date":
        return fmt.date_text(number)
    if kind == "datetime":
        return fmt.datetime_text(number, reader.zulu(position))
    return number


def _fold(
    reader: ColumnReader,
    position: int,
    block: int,
    flags: bytes,
    ids: list[int],
    sizes: Counter[int],
    kept: dict[int, _Group],
    functions: set[str],
) -> None:
    """Add one aggregated column of one block into its groups (``sizes``: rows per id)."""
    segment = reader.segment(position, block)
    if segment.all_null or not kept:
        return
    if segment.floating:
        _fold_floats(reader, position, block, flags, ids, sizes, kept, functions)
        return
    keep = flags
    if segment.null_flags is not None:  # only the values: nulls count for nothing
        keep = bytes(map(mul, flags, segment.null_flags.translate(fmt._FLIP)))
        ids = list(compress(ids, compress(segment.null_flags.translate(fmt._FLIP), flags)))
        sizes = Counter(ids)
    kind = reader.kinds[position]
    stored: Any = segment.stored()
    if kind == "string":  # by rank, so that the first of a run is its least
        ranks, values = _ranks(reader.dictionary(position))
        stored = map(ranks.__getitem__, stored)
        span = len(ranks)
    else:
        span = (segment.high - segment.low) // segment.scale + 1
        values = []

    def value(offset: int) -> Any:
        if kind == "string":
            return values[offset]
        return _typed(reader, position, segment.low + offset * segment.scale)

    offsets = list(compress(stored, keep))
    shift = max(1, span.bit_length())
    ordered = sorted(map(add, map(lshift, ids, repeat(shift)), offsets))
    for local, group in kept.items():
        n = sizes.get(local)
        if not n:
            continue
        base = local << shift
        start = bisect_left(ordered, base)
        run = ordered[start : start + n]
        if functions & {"sum", "mean"}:
            total = (sum(run) - base * n) * segment.scale + segment.low * n
            group.sums[position] = group.sums.get(position, 0) + total
            group.counts[position] = group.counts.get(position, 0) + n
        if "min" in functions:
            low = value(run[0] - base)
            group.lows[position] = min(group.lows.get(position, low), low)
        if "max" in functions:
            high = value(run[-1] - base)
            group.highs[position] = max(group.highs.get(position, high), high)
        if "distinct" in functions:
            found = group.sets.setdefault(position, set())
            found.update(value(offset - base) for offset in set(run))


def _ranks(dictionary: list[str]) -> tuple[list[int], list[str]]:
    """Each code's rank among the sorted values, and the sorted values."""
    order = sorted(range(len(dictionary)), key=dictionary.__getitem__)
    ranks = [0] * len(dictionary)
    for rank, code in enumerate(order):
        ranks[code] = rank
    return ranks, list(map(dictionary.__getitem__, order))


def _fold_floats(
    reader: ColumnReader,
    position: int,
    block: int,
    flags: bytes,
    ids: list[int],
    sizes: Counter[int],
    kept: dict[int, _Group],
    functions: set[str],
) -> None:
    """A number column: the rows in group order, then each group's run as the row path folds
    a batch (``math.fsum``, ``min``, ``max``, ``set``)."""
    values = reader.values(position, block, to_mask_of(flags))
    order = sorted(range(len(ids)), key=ids.__getitem__)
    arranged = list(map(values.__getitem__, order))
    arranged_ids = list(map(ids.__getitem__, order))
    for local, group in kept.items():
        n = sizes.get(local)
        if not n:
            continue
        start = bisect_left(arranged_ids, local)
        run = list(filter(_PRESENT, arranged[start : start + n]))
        if not run:
            continue
        if functions & {"sum", "mean"}:
            group.sums[position] = group.sums.get(position, 0) + math.fsum(run)
            group.counts[position] = group.counts.get(position, 0) + len(run)
        if "min" in functions:
            low = min(run)
            group.lows[position] = min(group.lows.get(position, low), low)
        if "max" in functions:
            high = max(run)
            group.highs[position] = max(group.highs.get(position, high), high)
        if "distinct" in functions:
            group.sets.setdefault(position, set()).update(run)
