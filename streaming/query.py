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
the ``Runner`` answers those needs. ``ROW_SCAN`` answers them by scanning the stored rows
(``streaming.scan``, ``streaming.aggregate``); a runner that reads columns can take its place
without a query or a route changing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from streaming import aggregate, pages, params, scan
from streaming.encode import Projection
from streaming.filter import Query as Selection
from streaming.filter import parse as parse_filters
from streaming.read import Dataset
from streaming.settings import Settings

Values = Mapping[str, str]  # a request's parameters; a bottle FormsDict keeps repeated filters


class Runner:
    """Answers what queries need from a dataset's rows. This one scans the stored rows."""

    def count(self, dataset: Dataset, selection: Selection) -> int:
        return scan.count(dataset, selection)

    def statistics(
        self, dataset: Dataset, selection: Selection, wanted: list[str] | None
    ) -> tuple[int, bytes]:
        return scan.statistics_json(dataset, selection, wanted)

    def group_by(self, dataset: Dataset, asked: aggregate.Request, max_groups: int) -> Any:
        return aggregate.answer(dataset, asked, max_groups)

    def page(self, dataset: Dataset, plan: pages.Plan) -> pages.Result:
        return pages.fetch(dataset, plan)

    def row_blocks(self, dataset: Dataset, selection: Selection) -> Iterator[list[list[Any]]]:
        return (block.rows for block in scan.blocks(dataset, selection))


ROW_SCAN = Runner()


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

    def run(self, dataset: Dataset, runner: Runner = ROW_SCAN) -> pages.Result:
        return runner.page(dataset, self.plan)

    def result(self, dataset: Dataset, runner: Runner = ROW_SCAN) -> dict[str, Any]:
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

    def run(self, dataset: Dataset, runner: Runner = ROW_SCAN) -> Iterator[list[list[Any]]]:
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

    def run(self, dataset: Dataset, runner: Runner = ROW_SCAN) -> tuple[int, bytes]:
        """The number of matching rows, and ``{NAME: STATS}`` as JSON."""
        return runner.statistics(dataset, self.selection, self.wanted)

    def result(self, dataset: Dataset, runner: Runner = ROW_SCAN) -> dict[str, Any]:
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

    def run(self, dataset: Dataset, runner: Runner = ROW_SCAN) -> dict[str, Any]:
        """``{"groups", "truncated"}``."""
        found: dict[str, Any] = runner.group_by(dataset, self.asked, self.max_groups)
        return found

    result = run
