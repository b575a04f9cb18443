"""The query layer: a read of a dataset, checked against it, then answered by a runner.

Every question a dashboard, a script or chat asks of a dataset is one of four queries, each
made from the request's parameter values (``COLUMN__OP=VALUE`` filters and the route's own
reserved words, as API.md defines them) and the open dataset::

    RowsQuery   a page of rows: filters, q, sort, columns, limit/offset or a cursor, count
    ExportQuery every matching row, streamed: filters, q, columns, format
    StatsQuery  statistics of the matching rows: filters, q, columns
    GroupQuery  groups of one or two columns with aggregates: by, agg, filters, sort, limit

(``charts.spec.ChartQuery`` is the fifth, in the same shape.) ``parse`` checks everything it
can without reading a row and raises BadRequest naming the mistake, so a route can answer 400
(or 304) before its first byte; ``run`` answers it. Both the HTTP routes and chat's proposed
queries go through here, so a query feature is written once.

A query says what it needs (its ``selection`` of rows, columns, aggregates, order, limit);
the ``Runner`` answers those needs, from the dataset's columns where they can answer
(``streaming.column_*``) and by scanning the stored rows where they cannot
(``streaming.scan``, ``streaming.aggregate``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from streaming import aggregate, column_group, column_query, pages, params, scan
from streaming.column_filter import ColumnSelection
from streaming.column_read import open_columns
from streaming.encode import Projection, decode
from streaming.errors import ColumnsDamaged
from streaming.filter import Selection
from streaming.filter import parse as parse_filters
from streaming.read import Dataset
from streaming.settings import Settings

log = logging.getLogger("rillet.query")
Values = Mapping[str, str]  # a request's parameters; a bottle FormsDict keeps repeated filters


class Runner:
    """Answers what queries need: from the columns where they can, else by scanning the rows.

    The columns (``streaming.column_*``) answer a question when the dataset has them and
    every column the question names is stored and every filter is one they can test
    (``ColumnSelection.possible``, ``column_query.answerable``); otherwise, or when the column
    files prove damaged (logged once per dataset), the row scan answers, as it did before the
    columns existed. Both give the same answers; the tests run them side by side.
    """

    def count(self, dataset: Dataset, selection: Selection) -> int:
        positions = _positions(selection)
        return self._either(
            dataset,
            selection,
            positions,
            column_query.count,
            lambda: scan.count(dataset, selection),
        )

    def statistics(
        self, dataset: Dataset, selection: Selection, wanted: list[str] | None
    ) -> tuple[int, bytes]:
        if not selection.active:  # computed at sync, as stored
            return scan.statistics_json(dataset, selection, wanted)
        names = wanted if wanted is not None else dataset.names
        positions = sorted({dataset.names.index(n) for n in names})  # the filters' own: not asked
        # The filters must be the columns' to test; a column they do not hold (free text) is
        # read from the matching rows alone.
        found = self._either(
            dataset,
            selection,
            _positions(selection),
            lambda chosen: _named(column_query.statistics(chosen, positions, dataset.lines), names),
            lambda: None,
        )
        if found is None:
            return scan.statistics_json(dataset, selection, wanted)
        matched, columns = found
        return matched, orjson.dumps(columns)

    def groups(
        self,
        dataset: Dataset,
        selection: Selection,
        by: list[int],
        aggregates: list[aggregate.Aggregate],
        max_groups: int,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Every group's row and whether groups were left out (``aggregate.group_by``)."""
        measured = [a.position for a in aggregates if a.position is not None]
        positions = sorted({*by, *measured, *_positions(selection)})
        return self._either(
            dataset,
            selection,
            positions,
            lambda chosen: column_group.group_by(chosen, by, aggregates, max_groups),
            lambda: aggregate.group_by(dataset, selection, by, aggregates, max_groups),
        )

    def group_by(self, dataset: Dataset, asked: aggregate.Request, max_groups: int) -> Any:
        found = self.groups(dataset, asked.selection, asked.by, asked.aggregates, max_groups)
        return aggregate.shaped(*found, asked)

    def page(
        self, dataset: Dataset, selection: Selection, start: int, skip: int, limit: int
    ) -> tuple[list[list[Any]], int | None]:
        found = self._either(
            dataset,
            selection,
            _positions(selection),
            lambda chosen: column_query.page_rows(chosen, start, skip, limit),
            lambda: None,
        )
        if found is None:
            return scan.page(dataset, selection, start, skip, limit)
        numbers, resume = found
        return rows_at(dataset, numbers), resume

    def sorted_page(
        self,
        dataset: Dataset,
        selection: Selection,
        position: int,
        descending: bool,
        kind: str,
        skip: int,
        limit: int,
    ) -> list[list[Any]]:
        positions = sorted({position, *_positions(selection)})
        numbers = self._either(
            dataset,
            selection,
            positions,
            lambda chosen: column_query.sorted_rows(chosen, position, descending, skip, limit),
            lambda: None,
        )
        if numbers is None:
            return scan.sorted_page(dataset, selection, position, descending, kind, skip, limit)
        return [dataset.row(n) for n in numbers]

    def rows_page(self, dataset: Dataset, plan: pages.Plan) -> pages.Result:
        return pages.fetch(dataset, plan, self)

    def row_blocks(self, dataset: Dataset, selection: Selection) -> Iterator[list[list[Any]]]:
        return (block.rows for block in scan.blocks(dataset, selection))

    def _either(
        self,
        dataset: Dataset,
        selection: Selection,
        positions: list[int],
        from_columns: Callable[[ColumnSelection], Any],
        from_rows: Callable[[], Any],
    ) -> Any:
        """``from_columns`` on the columns if they can answer, else ``from_rows``.

        Column files that prove damaged, or whose layout makes a kernel fail (columns.json
        has no checksum of its own), give way to the rows: logged once a dataset, never a
        wrong answer, never a 500 for what the rows can answer.
        """
        try:
            reader = open_columns(dataset)
            if reader is not None:
                with reader:
                    chosen = ColumnSelection(reader, selection)
                    if chosen.possible and column_query.answerable(reader, positions):
                        return from_columns(chosen)
        except _DAMAGE as exc:
            if dataset.id not in _DAMAGED:
                _DAMAGED.add(dataset.id)
                log.error(
                    "the columns of %s cannot answer (%r); answering from the rows", dataset.id, exc
                )
        return from_rows()


_DAMAGE = (ColumnsDamaged, ValueError, IndexError, KeyError, OverflowError)
_DAMAGED: set[str] = set()  # datasets whose damaged columns were logged, once each


def _positions(selection: Selection) -> list[int]:
    """The columns a selection's filters read (``q`` is the selection's own business)."""
    return sorted({f.position for f in selection.filters})


def _named(found: tuple[int, dict[str, Any]], names: list[str]) -> tuple[int, dict[str, Any]]:
    matched, columns = found
    return matched, {name: columns[name] for name in names}


def rows_at(dataset: Dataset, numbers: list[int]) -> list[list[Any]]:
    """The rows of these row numbers (ascending), read by the index a run of neighbours at
    a time."""
    rows: list[list[Any]] = []
    run_start = 0
    for i in range(1, len(numbers) + 1):
        if i == len(numbers) or numbers[i] != numbers[i - 1] + 1:
            first, last = numbers[run_start], numbers[i - 1]
            rows += decode(dataset.lines(first, last + 1))
            run_start = i
    return rows


RUNNER = Runner()


@dataclass(frozen=True)
class RowsQuery:
    plan: pages.Plan

    @classmethod
    def parse(cls, dataset: Dataset, values: Values, settings: Settings) -> RowsQuery:
        return cls(pages.plan(dataset, values, settings))

    @property
    def scans(self) -> bool:
        """Whether answering reads more than the page's own rows."""
        return self.plan.order is not None or self.plan.selection.active

    def run(self, dataset: Dataset, runner: Runner = RUNNER) -> pages.Result:
        return runner.rows_page(dataset, self.plan)

    def result(self, dataset: Dataset, runner: Runner = RUNNER) -> dict[str, Any]:
        """The page as chat shows it: rows as objects, and the total."""
        found = self.run(dataset, runner)
        rows = Projection(dataset.names, self.plan.page.columns).objects(found.rows)
        return {"rows": rows, "total": found.total}


@dataclass(frozen=True)
class ExportQuery:
    selection: Selection
    projection: Projection
    format: str
    scans = True

    @classmethod
    def parse(cls, dataset: Dataset, values: Values, settings: Settings) -> ExportQuery:
        fmt = params.output_format(values, ("csv", "ndjson"), default="csv")
        projection = Projection(dataset.names, params.columns(values, dataset.names))
        return cls(parse_filters(values, dataset.meta["columns"]), projection, fmt)

    def run(self, dataset: Dataset, runner: Runner = RUNNER) -> Iterator[list[list[Any]]]:
        """The matching rows, a block at a time (header order; ``projection`` cuts them)."""
        return runner.row_blocks(dataset, self.selection)


@dataclass(frozen=True)
class StatsQuery:
    selection: Selection
    wanted: list[str] | None  # None: every column

    @classmethod
    def parse(cls, dataset: Dataset, values: Values, settings: Settings) -> StatsQuery:
        wanted = params.columns(values, dataset.names)
        return cls(parse_filters(values, dataset.meta["columns"]), wanted)

    @property
    def scans(self) -> bool:
        return self.selection.active

    def run(self, dataset: Dataset, runner: Runner = RUNNER) -> tuple[int, bytes]:
        """The number of matching rows, and ``{NAME: STATS}`` as JSON."""
        return runner.statistics(dataset, self.selection, self.wanted)

    def result(self, dataset: Dataset, runner: Runner = RUNNER) -> dict[str, Any]:
        matched, stored = self.run(dataset, runner)
        return {"rows_matched": matched, "columns": orjson.loads(stored)}


@dataclass(frozen=True)
class GroupQuery:
    asked: aggregate.Request
    max_groups: int

    @classmethod
    def parse(cls, dataset: Dataset, values: Values, settings: Settings) -> GroupQuery:
        columns = dataset.meta["columns"]
        asked = aggregate.request(values, columns, settings.groupby_max)
        return cls(asked, settings.groupby_max)

    scans = True

    def run(self, dataset: Dataset, runner: Runner = RUNNER) -> dict[str, Any]:
        """``{"groups", "truncated"}``."""
        found: dict[str, Any] = runner.group_by(dataset, self.asked, self.max_groups)
        return found

    result = run
