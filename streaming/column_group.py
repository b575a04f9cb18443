"""Group-by from the columns: ``aggregate.group_by``'s answer, a part of a block at a time, in
C loops.

Blocks are read in parts of PART_ROWS rows, so that what one part builds (arrays of ids, a
``Counter``) stays a few hundred kilobytes whatever the block size.

A part's rows get a group id made of bytes, never a Python statement per row: each ``by``
column gives its stored bytes as planes of one byte per row (a string's code, an integer's
offset from the block's low, a number's place in the part's own list of distinct floats), its
null flags as one more plane, and the planes of the column of fewer possible ids go above
the other's (``_id_size``: small ids make small pairs to sort, below). The planes
are interleaved into one ``bytearray`` by strided slice assignment and read as one
``array('H'/'I'/'Q')`` of ids; a top plane marks the rows the filters left out. ``Counter``
over the ids counts each group's rows and lists the groups in order of first sight.

An aggregated integer column (dates, datetimes, booleans, and strings by their rank in the
sorted dictionary too) puts its offset's planes below the id's and its null flags above: one
``sorted`` of these plain integers puts each group's values in one run, in value order, and a
run's sum, first, last and distinct count are one C call each. When every pair then fits in
30 bits without the null flags (no filter, a small id, a narrow value), the nulls stay in
their runs instead, as the offset 0 they hold: ``sorted`` compares one-digit integers a third
faster. A number column's floats are picked per group with ``bytes.translate`` and
``compress`` when the part holds few groups of a one-byte id, else by the rows sorted by id,
and each run is folded with ``math.fsum``.

Groups, their order (first seen) and the ``max_groups`` cut are the row path's; each group's
totals are kept in flat lists (a ``_Group`` per group costs ~370 bytes, 3.7 MiB for 10,000
groups) and come out through ``aggregate._result``. Counts come out of C maps for every
group in group order (through each group's id in the current layout, ``_Totals.order``) and
are added list to list: no Python statement per group per part. The sorted runs' totals are
added list to list in the order of the layout's ids instead (``_Waiting``), as few of them as
a part allows (the runs' sums of pairs and lengths; the values' sums are worked out once per
way of storing the column), and reach the groups when the layout's ids change: a 5,840-group
answer on 1M rows 420 -> 310 ms. A part whose ids are one byte of a key with few possible
values counts them by ``bytes.count``.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache, partial, reduce
from itertools import accumulate, compress, count, filterfalse, repeat
from operator import add, and_, ge, lshift, mul, not_, or_, rshift, sub
from typing import Any

from streaming import column_store as fmt
from streaming.aggregate import Aggregate, _Group, _result
from streaming.column_filter import ColumnSelection
from streaming.column_read import ColumnReader, Segment, to_flags

_NOT = bytes([1, 0]) + bytes(254)  # translates 0/1 flags to their opposite
PART_ROWS = 32768  # rows folded at once: a part's ids, sorts and floats stay ~2 MiB
FEW = 24  # up to this many groups of a one-byte id in a part, floats are picked per group
Decode = Callable[[int], Any]


class _Totals:
    """Every kept group's totals, by group number (first seen first), in flat lists.

    Least and greatest values are kept as numbers (an integral column's integers, a string's
    ranks, floats) and typed as the rows hold them once, by ``typed``, when the groups come
    out. ``order`` holds each group's local id in the current layout (``_ABSENT`` until met
    there), so a part's totals for every group come out of C maps in group order and are
    added list to list (``add_aligned``), no Python statement per group per part."""

    def __init__(self, positions: Iterable[int]) -> None:
        self.counts: list[int] = []
        self.order: list[int] = []
        self.sums: dict[int, list[Any]] = {p: [] for p in positions}
        self.values: dict[int, list[int]] = {p: [] for p in self.sums}  # non-null values
        self.lows: dict[int, list[Any]] = {p: [] for p in self.sums}
        self.highs: dict[int, list[Any]] = {p: [] for p in self.sums}
        self.sets: dict[int, list[set[Any] | None]] = {p: [] for p in self.sums}
        self.typed: dict[int, Decode] = {}  # a kept least or greatest number -> its value
        self.uncounted: set[int] = set()  # columns with too many (id, value) pairs to count
        # The sorted runs' totals wait here in the order of the layout's ids (``known``; of
        # those kept, ``kept_ids`` and their groups ``kept_groups``) and reach the groups'
        # lists when the ids change (``flush``): a part adds them list to list in id order.
        self.known: list[int] = []
        self.kept: bytes | None = None
        self.kept_ids: list[int] = []
        self.kept_groups: list[int] = []
        self.known_from: Any = None  # the ids ``known`` was made from
        self.pending: dict[int, _Waiting] = {}

    def new(self, local: int) -> int:
        self.counts.append(0)
        self.order.append(local)
        for p in self.sums:
            self.sums[p].append(0)
            self.values[p].append(0)
            self.lows[p].append(_HIGHEST)
            self.highs[p].append(_LOWEST)
            self.sets[p].append(None)
        return len(self.counts) - 1

    def forget_order(self) -> None:
        """Local ids mean other keys from here on (a new layout, or a number key's part)."""
        self.grown()
        self.order = [_ABSENT] * len(self.counts)

    def grown(self) -> None:
        """The layout has ids it did not have: ``known`` is made again when next asked."""
        self.flush()
        self.known_from = None

    def known_ids(self, seen: dict[int, int], sizes: Counter[int]) -> list[int]:
        """The ids whose runs a part's sorted pairs hold, in order: the layout's, those of
        ``seen`` (local id -> group, -1: left out), kept while they do not change; or the
        part's own (``sizes``) when it holds few of the layout's (a key of many values,
        most of them left out past max_groups: the layout's every id a part would cost more
        than the part), added into the groups after the part."""
        if len(seen) > 4 * len(sizes):
            self._know(sorted(filter(seen.__contains__, sizes)), seen)
            self.known_from = sizes  # not ``seen``: the next part makes its own
        elif self.known_from is not seen:
            self._know(sorted(seen), seen)
            self.known_from = seen
        return self.known

    def _know(self, ids: list[int], seen: dict[int, int]) -> None:
        """``ids`` hold the runs from now on. The runs of ids left out (past max_groups)
        hold their places but add to no group: the totals wait for the kept ids alone
        (``kept_ids``, their groups ``kept_groups``; ``kept`` picks them from ``known``)."""
        self.flush()
        self.known = ids
        groups = list(map(seen.__getitem__, ids))
        self.kept = bytes(map(ge, groups, repeat(0))) if -1 in groups else None
        self.kept_ids = ids if self.kept is None else list(compress(ids, self.kept))
        self.kept_groups = groups if self.kept is None else list(compress(groups, self.kept))

    def waiting(self, p: int, functions: set[str]) -> _Waiting:
        """Column ``p``'s sorted runs' totals waiting in the order of the known ids."""
        found = self.pending.get(p)
        if found is None:
            found = self.pending[p] = _Waiting(len(self.kept_ids), functions)
        return found

    def flush(self) -> None:
        """Add the waiting totals into their groups, list to list in group order."""
        if not self.pending:
            return
        absent = len(self.kept_ids)
        places = dict(zip(self.kept_groups, count()))
        where = list(map(places.get, range(len(self.counts)), repeat(absent)))  # by group

        def gathered(found: list[Any] | None, fill: Any) -> list[Any] | None:
            return None if found is None else list(map((found + [fill]).__getitem__, where))

        for p, waiting in self.pending.items():
            waiting.settle(self.kept_ids)
            self.add_aligned(
                p,
                gathered(waiting.sums, 0),
                list(map((waiting.ns + [0]).__getitem__, where)),
                gathered(waiting.lows, _HIGHEST),
                gathered(waiting.highs, _LOWEST),
            )
        self.pending = {}

    def add(
        self,
        p: int,
        groups: Iterable[int],
        sums: Iterable[Any],
        ns: Iterable[int],
        lows: Iterable[Any],
        highs: Iterable[Any],
    ) -> None:
        """More non-null values of column ``p`` in each of ``groups``: how many, their sum,
        least and most (numbers; None when not asked)."""
        kept_sums, kept_ns = self.sums[p], self.values[p]
        kept_lows, kept_highs = self.lows[p], self.highs[p]
        for g, total, n, low, high in zip(groups, sums, ns, lows, highs):
            kept_sums[g] += total
            kept_ns[g] += n
            if low is not None and low < kept_lows[g]:
                kept_lows[g] = low
            if high is not None and high > kept_highs[g]:
                kept_highs[g] = high

    def add_aligned(
        self, p: int, sums: Iterable[Any] | None, ns: list[int], lows: Any, highs: Any
    ) -> None:
        """``add`` with one entry per group, in group order (a least of ``_HIGHEST`` and a
        greatest of ``_LOWEST`` where a group has no value), list to list in C."""
        self.values[p] = list(map(add, self.values[p], ns))
        if sums is not None:
            self.sums[p] = list(map(add, self.sums[p], sums))
        if lows is not None:
            self.lows[p] = list(map(min, self.lows[p], lows))
        if highs is not None:
            self.highs[p] = list(map(max, self.highs[p], highs))

    def distinct(self, p: int, g: int, found: Iterable[Any]) -> None:
        kept = self.sets[p][g]
        if kept is None:
            kept = self.sets[p][g] = set()
        kept.update(found)

    def group(self, g: int) -> _Group:
        """Group ``g`` as the row path holds it (made one at a time, for ``_result``)."""
        group = _Group(self.counts[g])
        for p, values in self.values.items():
            if not values[g]:
                continue
            group.sums[p], group.counts[p] = self.sums[p][g], values[g]
            low, high = self.lows[p][g], self.highs[p][g]
            if low != _HIGHEST:
                group.lows[p] = self.typed[p](low)
            if high != _LOWEST:
                group.highs[p] = self.typed[p](high)
            if self.sets[p][g] is not None:
                group.sets[p] = self.sets[p][g]  # type: ignore[assignment]
        return group


class _Waiting:
    """One aggregated integral column's sorted runs' totals, in the order of the layout's
    known ids, until they change.

    While the column is stored alike (``regime``: its value's bits, low and scale) a part
    adds only its runs' sums of (id, value) pairs and their lengths (``raw``, ``runs``) and
    its count of values (``ns``): the values' sums are worked out once a regime
    (``settle``), less each id's part (id << bits, once per row of its runs), times the
    scale, plus the low once per value."""

    def __init__(self, size: int, functions: set[str]) -> None:
        self.ns = [0] * size  # values, every regime
        self.sums = [0] * size if functions & {"sum", "mean"} else None  # settled regimes
        self.lows = [_HIGHEST] * size if "min" in functions else None
        self.highs = [_LOWEST] * size if "max" in functions else None
        self.regime: tuple[int, int, int] | None = None
        self.raw: list[int] = []
        self.runs: list[int] = []
        self.ns_before: list[int] = []  # ns when the regime began

    def enter(self, regime: tuple[int, int, int], known: list[int]) -> None:
        if regime == self.regime:
            return
        self.settle(known)
        if self.sums is not None:
            self.regime, self.ns_before = regime, self.ns
            self.raw = [0] * len(known)  # replaced, never changed in place
            self.runs = [0] * len(known)

    def settle(self, known: list[int]) -> None:
        if self.regime is None or self.sums is None:
            return
        bits, low, scale = self.regime
        offsets = map(sub, self.raw, map(mul, map(lshift, known, repeat(bits)), self.runs))
        values = map(sub, self.ns, self.ns_before)
        found = map(add, map(mul, offsets, repeat(scale)), map(mul, values, repeat(low)))
        self.sums = list(map(add, self.sums, found))
        self.regime = None


_ABSENT = 1 << 256  # the local id of a group not met in the current layout: above every id
_HIGHEST, _LOWEST = math.inf, -math.inf  # no value yet (stored floats are finite)
_MISSING = (_LOWEST, _HIGHEST)  # by "no value here": a part's guard for its least
_FOUND = (_HIGHEST, _LOWEST)  # and for its greatest


def group_by(
    selection: ColumnSelection, by: Sequence[int], aggregates: Sequence[Aggregate], max_groups: int
) -> tuple[list[dict[str, Any]], bool]:
    """Every group's row and whether groups were left out, as ``aggregate.group_by``."""
    reader = selection.reader
    measured: dict[int, set[str]] = {}
    for a in aggregates:
        if a.position is not None:
            measured.setdefault(a.position, set()).add(a.function)
    totals = _Totals(measured)
    numbers: dict[Any, int] = {}  # group key -> group number, in order of first sight
    truncated = False
    ranked: dict[int, tuple[list[int], list[str]]] = {}
    # A group id means the same key in every part of a block, and in the next block too when
    # its key columns are stored alike (same low, scale and width: decoding every id again
    # cost a third of a 5,840-group answer), unless a key column is a number (its floats are
    # numbered part by part).
    numbered = any(reader.kinds[p] == "number" for p in by)
    seen: dict[int, int] = {}
    layout: Any = None
    for block, mask in selection.masks():
        rows = reader.blocks[block][1]
        flags = to_flags(mask, rows)
        if _layout(reader, by, block) != layout:
            seen, layout = {}, _layout(reader, by, block)
            totals.forget_order()
        # Each part costs Python work per group it holds, and memory by its length: without
        # a number key parts are half as long again (a 5,840-group answer 497 -> 450 ms at
        # +1.4 MiB); with one (its floats numbered part by part) a quarter shorter, to keep
        # 10,000 groups of floats under 8 MiB above idle (bench/columns.py).
        size = PART_ROWS * 3 // 4 if numbered else PART_ROWS * 3 // 2
        for start in range(0, rows, size):
            if numbered:
                seen = {}
                totals.forget_order()
            stop = min(rows, start + size)
            part = _Part(reader, block, start, stop, flags, ranked, seen)
            if part.matched:
                truncated |= _fold_part(part, by, measured, totals, numbers, max_groups)
    totals.flush()
    names = [reader.dataset.names[p] for p in by]
    keyed = numbers.items()
    pairs = len(by) > 1
    results = [
        _result(names, k if pairs else (k,), totals.group(g), list(aggregates)) for k, g in keyed
    ]
    return results, truncated


def _layout(reader: ColumnReader, by: Sequence[int], block: int) -> list[tuple[Any, ...]]:
    """What the group ids of a block mean: each key column's storage in it."""
    found = []
    for position in by:
        s = reader.segment(position, block)
        found.append((s.all_null, s.null_flags is None, s.width, s.low, s.scale))
    return found


class _Part:
    """Rows ``start:stop`` of one block, and which of them the filters keep."""

    def __init__(
        self,
        reader: ColumnReader,
        block: int,
        start: int,
        stop: int,
        flags: bytes,
        ranked: dict[int, tuple[list[int], list[str]]],
        seen: dict[int, int],
    ) -> None:
        self.seen = seen  # group ids already known -> group number (-1: left out)
        self.reader, self.block, self.start, self.stop = reader, block, start, stop
        self.ranked = ranked  # a string column's ranks and sorted values, once a query
        self.rows = stop - start
        self.flags = flags[start:stop]
        self.matched = self.flags.count(1)
        self.all = self.matched == self.rows
        self.missed = None if self.all else self.flags.translate(fmt._FLIP)

    def segment(self, position: int) -> Segment:
        return self.reader.segment(position, self.block)

    def planes(self, segment: Segment) -> list[bytes]:
        """The part's stored values of a segment, one byte plane per byte of width."""
        w = segment.width
        values = segment.values[self.start * w : self.stop * w]
        return [values[i::w] for i in range(w)] if w > 1 else [values] if w else []

    def nulls(self, segment: Segment) -> bytes | None:
        flags = segment.null_flags
        return None if flags is None else flags[self.start : self.stop]


def _fold_part(
    part: _Part,
    by: Sequence[int],
    measured: dict[int, set[str]],
    totals: _Totals,
    numbers: dict[Any, int],
    max_groups: int,
) -> bool:
    """Count one part's rows into their groups and fold its aggregated columns; True if a new
    group had to be left out."""
    planes, decode = _key_planes(part, by)
    ids = _packed(planes + ([part.missed] if part.missed is not None else []), part.rows)
    sizes = _sizes(ids, _id_bound(part, by) if isinstance(ids, bytes) else None)
    seen = part.seen  # id -> group number (-1: left out), kept while ids mean the same
    truncated = grown = False
    for local in filterfalse(seen.__contains__, sizes):
        if local >> (8 * len(planes)):
            continue  # left out by the filters
        grown = True
        key = decode(local)
        g = numbers.get(key)
        if g is None:
            if len(numbers) >= max_groups:
                seen[local] = -1
                continue
            g = numbers[key] = totals.new(local)
        else:
            totals.order[g] = local
        seen[local] = g
    if grown:
        totals.grown()
    # A group is left out (-1) only once max_groups are kept. (Rows the filters left out
    # are not in seen.)
    truncated = len(numbers) >= max_groups and -1 in map(seen.get, sizes)
    totals.counts = list(map(add, totals.counts, map(sizes.get, totals.order, repeat(0))))
    if truncated and not any(map(sizes.__contains__, totals.order)):
        return truncated  # every group of the part was left out
    for position, functions in measured.items():
        _fold(part, position, functions, planes, ids, sizes, totals)
    return truncated


SCANNED = 64  # ids of one byte below this many: counted by bytes.count, not by Counter


def _sizes(ids: Any, bound: int | None) -> Counter[int]:
    """Each id's rows, in the order of first sight (``Counter(ids)``). Ids of one byte each
    that are known to be below ``bound`` (at most SCANNED) are found and counted by
    ``bytes.find`` and ``bytes.count``, a C scan of the part per possible id, rather than a
    Python integer per row (a group-by carrier's counting: 0.8 -> 0.1 ms a part)."""
    if bound is None or bound > SCANNED:
        return Counter(ids)
    firsts = sorted((ids.find(b), b) for b in range(bound))
    return Counter({b: ids.count(b) for first, b in firsts if first >= 0})


def _id_bound(part: _Part, by: Sequence[int]) -> int | None:
    """How many ids a part's single byte plane of ids can hold, if its one key column says:
    a string's dictionary, an integer's span of offsets; else None."""
    if len(by) != 1:
        return None
    segment = part.segment(by[0])
    kind = part.reader.kinds[by[0]]
    if segment.all_null:
        return 1
    if kind == "string":
        return len(part.reader.dictionary(by[0]))
    if kind != "number" and segment.width == 1:
        return int((segment.high - segment.low) // segment.scale) + 1
    return None


def _key_planes(part: _Part, by: Sequence[int]) -> tuple[list[bytes], Decode]:
    """The byte planes of the group id, and the group key (a value, or a pair) of an id.

    Of two key columns the one of fewer possible ids goes on top (``_id_size``; the same
    choice for every part of a layout): ids stay small, and so do the (id, value) pairs a
    fold sorts (dest,carrier on flights: within 30 bits, compared a third faster)."""
    first, first_decode = _column_planes(part, by[0])
    if len(by) == 1:
        return first, first_decode
    second, second_decode = _column_planes(part, by[1])
    if _id_size(part, by[0]) <= _id_size(part, by[1]):
        bits, low = 8 * len(second), (1 << 8 * len(second)) - 1

        def decode(local: int) -> tuple[Any, Any]:
            return first_decode(local >> bits), second_decode(local & low)

        return second + first, decode
    bits, low = 8 * len(first), (1 << 8 * len(first)) - 1

    def swapped(local: int) -> tuple[Any, Any]:
        return first_decode(local & low), second_decode(local >> bits)

    return first + second, swapped


def _id_size(part: _Part, position: int) -> int:
    """At most how many ids a key column's planes give in a part, by what its layout says (a
    string's dictionary, else the planes' width; a plane of null flags doubles it)."""
    segment = part.segment(position)
    if segment.all_null:
        return 1
    if part.reader.kinds[position] == "string" and segment.null_flags is None:
        return len(part.reader.dictionary(position))
    width = 2 if part.reader.kinds[position] == "number" else segment.width
    return 1 << (8 * width + (segment.null_flags is not None))


def _column_planes(part: _Part, position: int) -> tuple[list[bytes], Decode]:
    """One column's planes of its ids (value planes, then the null flags), and the value of
    an id."""
    segment = part.segment(position)
    if segment.all_null:
        return [], _none
    kind = part.reader.kinds[position]
    if kind == "number":
        floats = segment.stored()[part.start : part.stop]
        # Numbered from the present values only: a null's stored 0.0 must not name the group
        # of a -0.0 that comes after it (equal keys: the first seen names the group).
        null_flags = part.nulls(segment)
        present = floats if null_flags is None else compress(floats, null_flags.translate(_NOT))
        distinct = list(dict.fromkeys(present))
        numbering = dict(zip(distinct, range(len(distinct))))
        local = array("H", map(numbering.get, floats, repeat(0)))  # a null's id: never decoded
        planes = _planes_of(local)
        value: Decode = distinct.__getitem__
    else:
        planes = part.planes(segment)
        value = _value_of(part.reader, position, segment)
    nulls = part.nulls(segment)
    if nulls is None:
        return planes, value
    null_bit = 1 << (8 * len(planes))
    return planes + [nulls], partial(_null_or, value, null_bit)


def _null_or(value: Decode, null_bit: int, local: int) -> Any:
    return None if local & null_bit else value(local)


def _value_of(reader: ColumnReader, position: int, segment: Segment) -> Decode:
    """The value of a stored number (code or offset) of this segment."""
    if reader.kinds[position] == "string":
        return reader.dictionary(position).__getitem__
    return partial(_integral_value, reader, position, segment)


def _planes_of(numbers: array[int]) -> list[bytes]:
    """An array's numbers as byte planes, least significant first."""
    if fmt._BIG:
        numbers.byteswap()
    data, w = numbers.tobytes(), numbers.itemsize
    return [data[i::w] for i in range(w)]


def _packed(planes: Sequence[bytes], rows: int) -> Any:
    """Each row's planes read as one unsigned integer (plane i is byte i, little-endian)."""
    if not planes:
        return bytes(rows)
    if len(planes) == 1:
        return planes[0]
    if len(planes) > 8:  # wider than any array: Python integers, still built in C
        shifted = (map(lshift, plane, repeat(8 * i)) for i, plane in enumerate(planes))
        return list(reduce(partial(map, or_), shifted))
    width = next(w for w in (2, 4, 8) if len(planes) <= w)
    packed = bytearray(width * rows)
    for i, plane in enumerate(planes):
        packed[i::width] = plane
    numbers = array(fmt.TYPECODES[width], packed)
    if fmt._BIG:
        numbers.byteswap()
    return numbers


def _none(_: int) -> None:
    return None


def _integral_value(reader: ColumnReader, position: int, segment: Segment, local: int) -> Any:
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


@lru_cache(maxsize=256)
def _equal(byte: int) -> bytes:
    """A translate table: ``byte`` becomes 1, every other byte 0."""
    return bytes(b == byte for b in range(256))


def _fold(
    part: _Part,
    position: int,
    functions: set[str],
    id_planes: list[bytes],
    ids: Any,
    sizes: Counter[int],
    totals: _Totals,
) -> None:
    """Add one aggregated column of one part into its groups (``sizes``: the part's rows by
    local id; ``part.seen``: local id -> group, -1 when left out)."""
    segment = part.segment(position)
    if segment.all_null:
        return
    if segment.floating:
        totals.typed[position] = _same
        kept = dict(compress(zip(totals.order, count()), map(sizes.__contains__, totals.order)))
        _fold_floats(part, position, functions, id_planes, ids, kept, totals)
        return
    value_planes, low, scale, value = _value_planes(part, position, segment)
    totals.typed[position] = _typed_of(part, position)
    bits = 8 * len(value_planes)
    nulls = part.nulls(segment)
    # Few distinct (id, value) pairs (a distance by carrier): count them in C and fold the
    # pairs, not the rows; measured 4x faster than the sort on flights. Else one sort.
    # A first look at a few thousand rows decides, so a column of many pairs never builds a
    # Counter the size of the part (measured: +2 MiB above idle on a 5,840-group group-by).
    if position not in totals.uncounted:
        skipped = [p for p in (part.missed, nulls) if p is not None]
        packed = _packed(value_planes + id_planes + skipped, part.rows)
        if len(Counter(packed[:_LOOK])) > _LOOK // 4:
            totals.uncounted.add(position)
        else:
            counted = Counter(packed)
            if len(counted) <= part.rows // _PAIRS_FEW:
                bytes_of_id = len(id_planes)
                _fold_counted(
                    counted, bits, bytes_of_id, low, scale, value, functions, part, totals, position
                )
                return
            del counted
            totals.uncounted.add(position)  # the next parts go straight to the sort
    # For the sort, a null of an integral column may stay in its group's run: it holds offset
    # 0, so its group's nulls sort first there and the run's values are its last ones. Without
    # a plane of null flags a pair of a small id and a one-byte value fits in 30 bits, and
    # sorted compares such integers a third faster (carrier,day: 5,840 groups). Else (wider
    # pairs, rows left out by the filters, a string's null whose code 0 may rank anywhere) the
    # null flags go above the id and the nulls sort after every run.
    small = (max(sizes, default=0) + 1) << bits <= 1 << 30
    integral = part.reader.kinds[position] != "string"
    inside = nulls if segment.nulls and integral and part.missed is None and small else None
    skipped = [p for p in (part.missed, None if inside is not None else nulls) if p is not None]
    pairs = sorted(_packed(value_planes + id_planes + skipped, part.rows))
    numbers = (bits, low, scale)
    _fold_sorted(
        part, position, functions, pairs, numbers, value, id_planes, ids, sizes, totals, inside
    )


def _fold_sorted(
    part: _Part,
    position: int,
    functions: set[str],
    pairs: list[int],
    numbers: tuple[int, int, int],
    value: Decode,
    id_planes: list[bytes],
    ids: Any,
    sizes: Counter[int],
    totals: _Totals,
    inside: bytes | None,
) -> None:
    """Fold an integral column's sorted (id, value) pairs (``numbers``: the value's bits at
    the bottom, and the low and scale that make its number; ``inside``: the part's null
    flags when its nulls sorted inside their groups' runs, as offset 0).

    One sort of (id, value) as plain integers: each group's values are one run, in order,
    and the rows left out (filtered, null) sort after every group's. The runs come in the
    order of their ids, each as long as its id's rows with a value (``sizes`` less the
    nulls, counted in C): the run of every id the layout knows (``totals.known``; an id
    absent here has an empty one), its sum, first and last come out of C maps in id order
    and wait there (``totals.waiting``) until the known ids change."""
    bits, low, scale = numbers
    segment = part.segment(position)
    known = totals.known_ids(part.seen, sizes)
    rows = list(map(sizes.get, known, repeat(0)))  # each id's rows here, nulls included
    nulls = part.nulls(segment) if segment.nulls else None
    empty_rows: Counter[int] = Counter()  # each id's rows without a value
    if inside is not None:  # (no rows left out by the filters: ids are the key's alone)
        empty_rows = Counter(compress(ids, inside))
    elif nulls is not None:  # the nulls kept by the filters sorted after every run, by id
        id_limit = 1 << (8 * len(id_planes))
        id_span = 1 << (bits + 8 * len(id_planes))
        null_bit = id_span << (8 if part.missed is not None else 0)
        first = bisect_left(pairs, null_bit)
        kept_nulls = pairs[first : bisect_left(pairs, null_bit + id_span, first)]
        empty_rows = Counter(map(and_, map(rshift, kept_nulls, repeat(bits)), repeat(id_limit - 1)))
    ns = list(map(sub, rows, map(empty_rows.get, known, repeat(0)))) if empty_rows else rows
    lengths = rows if inside is not None else ns  # each run's, nulls inside it included
    ends = list(accumulate(lengths))
    begins = [0, *ends[:-1]]
    kept = totals.kept
    if kept is not None:  # the runs of the groups kept
        ns, lengths, begins, ends = (list(compress(x, kept)) for x in (ns, lengths, begins, ends))
    ids = totals.kept_ids
    slices = map(slice, begins, ends)
    waiting = totals.waiting(position, functions)
    waiting.enter(numbers, ids)
    waiting.ns = list(map(add, waiting.ns, ns))
    if waiting.sums is not None:  # each run's sum of pairs, and its length
        waiting.raw = list(map(add, waiting.raw, map(sum, map(pairs.__getitem__, slices))))
        waiting.runs = list(map(add, waiting.runs, lengths))
    if waiting.lows is None and waiting.highs is None and "distinct" not in functions:
        return
    stops = ends
    starts = list(map(sub, stops, ns))  # a run's values: its last ns
    bases = list(map(lshift, ids, repeat(bits)))
    pairs.append(0)  # a run ending at 0 or starting at its end reads it; the guard drops it
    empty = list(map(not_, ns))
    if waiting.lows is not None:
        firsts = map(sub, map(pairs.__getitem__, starts), bases)
        lows = map(max, _numbers(firsts, low, scale), map(_MISSING.__getitem__, empty))
        waiting.lows = list(map(min, waiting.lows, lows))
    if waiting.highs is not None:
        lasts = map(sub, map(pairs.__getitem__, map(sub, stops, repeat(1))), bases)
        highs = map(min, _numbers(lasts, low, scale), map(_FOUND.__getitem__, empty))
        waiting.highs = list(map(max, waiting.highs, highs))
    if "distinct" in functions:
        for g, base, start, stop in zip(totals.kept_groups, bases, starts, stops):
            if stop > start:
                distinct = dict.fromkeys(pairs[start:stop])
                totals.distinct(position, g, map(value, map(sub, distinct, repeat(base))))


def _numbers(offsets: Iterable[int], low: int, scale: int) -> Iterable[int]:
    """Stored offsets as the integers they stand for."""
    return map(add, map(mul, offsets, repeat(scale)), repeat(low))


def _same(value: Any) -> Any:
    return value


def _typed_of(part: _Part, position: int) -> Decode:
    """An integral column's number (a string's rank) as the rows hold it."""
    if part.reader.kinds[position] == "string":
        return _ranks_of(part.reader, position, part.ranked)[1].__getitem__
    return partial(_typed, part.reader, position)


_LOOK = 4096  # rows of a part looked at before counting its pairs
_PAIRS_FEW = 16  # counted when there are at most a sixteenth as many (id, value) pairs as rows


def _fold_counted(
    counted: Counter[int],
    bits: int,
    id_bytes: int,
    low: int,
    scale: int,
    value: Decode,
    functions: set[str],
    part: _Part,
    totals: _Totals,
    position: int,
) -> None:
    """Fold a part's counted (id, value) pairs into their groups."""
    limit, mask = 1 << (bits + 8 * id_bytes), (1 << bits) - 1
    seen = part.seen
    found: dict[int, list[int]] = {}  # group -> [sum of offsets, n, lowest, highest]
    offsets: dict[int, set[int]] = {}
    for pair, n in counted.items():
        g = seen.get(pair >> bits, -1)
        if pair >= limit or g < 0:
            continue
        offset = pair & mask
        entry = found.get(g)
        if entry is None:
            found[g] = [offset * n, n, offset, offset]
        else:
            entry[0] += offset * n
            entry[1] += n
            entry[2] = min(entry[2], offset)
            entry[3] = max(entry[3], offset)
        if "distinct" in functions:
            offsets.setdefault(g, set()).add(offset)
    groups = list(found)
    entries = list(found.values())
    ns = [e[1] for e in entries]
    sums: Any = [e[0] * scale + e[1] * low for e in entries]
    lows: Any = _numbers((e[2] for e in entries), low, scale) if "min" in functions else None
    highs: Any = _numbers((e[3] for e in entries), low, scale) if "max" in functions else None
    totals.add(position, groups, sums, ns, lows or repeat(None), highs or repeat(None))
    for g, kept in offsets.items():
        totals.distinct(position, g, map(value, kept))


def _value_planes(
    part: _Part, position: int, segment: Segment
) -> tuple[list[bytes], int, int, Decode]:
    """The planes of an aggregated integral column, in value order (a string's codes become
    their ranks in the sorted dictionary), the low and scale that make a number of them, and
    the value of one."""
    if part.reader.kinds[position] != "string":
        value = _value_of(part.reader, position, segment)
        return part.planes(segment), segment.low, segment.scale, value
    ranks, ordered = _ranks_of(part.reader, position, part.ranked)
    planes = part.planes(segment)
    if len(ordered) <= 256 and len(planes) == 1:
        table = bytes(ranks) + bytes(256 - len(ranks))
        return [planes[0].translate(table)], 0, 1, ordered.__getitem__
    codes = segment.stored()[part.start : part.stop]
    return _planes_of(array("H", map(ranks.__getitem__, codes))), 0, 1, ordered.__getitem__


def _ranks_of(
    reader: ColumnReader, position: int, ranked: dict[int, tuple[list[int], list[str]]]
) -> tuple[list[int], list[str]]:
    """A string column's ranks and sorted values, worked out once a query."""
    found = ranked.get(position)
    if found is None:
        found = ranked[position] = _ranks(reader.dictionary(position))
    return found


def _ranks(dictionary: list[str]) -> tuple[list[int], list[str]]:
    """Each code's rank among the sorted values, and the sorted values."""
    order = sorted(range(len(dictionary)), key=dictionary.__getitem__)
    ranks = [0] * len(dictionary)
    for rank, code in enumerate(order):
        ranks[code] = rank
    return ranks, list(map(dictionary.__getitem__, order))


def _fold_floats(
    part: _Part,
    position: int,
    functions: set[str],
    id_planes: list[bytes],
    ids: Any,
    kept: dict[int, int],
    totals: _Totals,
) -> None:
    """A number column: each group's floats (picked by translate and compress when the part
    holds few groups of a one-byte id, else by the rows sorted by id), folded as the row path
    folds a batch (``math.fsum``, ``min``, ``max``, ``set``)."""
    segment = part.segment(position)
    floats: Any = segment.stored()[part.start : part.stop]
    keep = None if part.all else part.flags  # rows to fold: kept by the filters, not null
    nulls = part.nulls(segment)
    if nulls is not None:
        present = nulls.translate(fmt._FLIP)
        keep = present if keep is None else bytes(map(mul, keep, present))
    floats = list(floats) if keep is None else list(compress(floats, keep))
    groups = list(kept.values())
    if len(id_planes) == 1 and len(kept) <= FEW:
        plane = id_planes[0] if keep is None else bytes(compress(id_planes[0], keep))
        picks = map(plane.translate, map(_equal, kept))
        runs = [list(compress(floats, pick)) for pick in picks]
    else:
        numbers = list(ids) if keep is None else list(compress(ids, keep))
        order = sorted(range(len(numbers)), key=numbers.__getitem__)
        arranged = list(map(floats.__getitem__, order))
        numbers = list(map(numbers.__getitem__, order))
        starts = map(bisect_left, repeat(numbers), kept)
        stops = map(bisect_left, repeat(numbers), map(add, kept, repeat(1)))
        runs = list(map(arranged.__getitem__, map(slice, starts, stops)))
    if not all(runs):  # groups without a value here
        groups = list(compress(groups, runs))
        runs = list(filter(None, runs))
    asked = functions & {"sum", "mean"}
    sums = map(math.fsum, runs) if asked else repeat(0)
    lows = map(min, runs) if "min" in functions else repeat(None)
    highs = map(max, runs) if "max" in functions else repeat(None)
    totals.add(position, groups, sums, map(len, runs), lows, highs)
    if "distinct" in functions:
        for g, run in zip(groups, runs):
            totals.distinct(position, g, run)
