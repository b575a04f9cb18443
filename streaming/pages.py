"""A page of rows, as GET /rows and /fetch-data ask for it: seek, scan or sort.

Three ways to a page, cheapest first:

- nothing filters or sorts: seek with the row index, whatever the offset;
- filters or a search: scan from the start, or from where a cursor says the last page ended,
  and hand back a cursor for the next page, so every page costs about what the first did;
- a sort: keep the best ``offset + limit`` keys in a heap over one scan (SORT_MAX), then fetch
  the page's rows by the index; the next page is the next offset (a scan again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from streaming import params, scan
from streaming.encode import decode
from streaming.errors import BadRequest
from streaming.filter import Selection, parse
from streaming.read import Dataset
from streaming.settings import Settings

# Parameters a next link sets itself; every other one (filters, q, count) is carried over.
_OWN = frozenset(["limit", "offset", "cursor", "columns", "format", "dataset", "sort"])


@dataclass(frozen=True)
class Result:
    page: params.Page
    rows: list[list[Any]]
    total: int | None
    next: dict[str, str] | None  # the query string of the next page, or None at the end


@dataclass(frozen=True)
class Plan:
    """A validated page request: what to fetch, not yet fetched."""

    page: params.Page
    selection: Selection
    order: tuple[int, bool] | None
    cursor: str | None
    sort: str | None
    link: dict[str, str]  # what the next page's query keeps
    sort_max: int


def plan(dataset: Dataset, query: Mapping[str, str], settings: Settings) -> Plan:
    """Check a page request against the dataset; BadRequest names any mistake."""
    columns = dataset.meta["columns"]
    page = params.page(query, dataset.names, settings.page_max)
    link = {k: v for k, v in query.items() if k not in _OWN}
    link["limit"] = str(page.limit)
    if page.columns:
        link["columns"] = ",".join(page.columns)
    if page.format != "json":
        link["format"] = page.format
    order = params.sort(query, columns)
    cursor = query.get("cursor") or None
    if order is not None and cursor:
        raise BadRequest(
            "cursor does not go with sort: page sorted rows with offset", code="bad_cursor"
        )
    if order is not None and page.offset + page.limit > settings.sort_max:
        raise BadRequest(
            f"a sorted page reaches {page.offset + page.limit} rows deep; the "
            f"ceiling is SORT_MAX={settings.sort_max}: narrow the filters",
            code="sort_too_deep",
        )
    selection = parse(query, columns)
    return Plan(page, selection, order, cursor, query.get("sort"), link, settings.sort_max)


class Finder(Protocol):
    """What finds a page's rows when they must be searched for: the row scan (``ROWS``), or
    the columns (``streaming.query.Runner``)."""

    def count(self, dataset: Dataset, selection: Selection) -> int: ...

    def page(
        self, dataset: Dataset, selection: Selection, start: int, skip: int, limit: int
    ) -> tuple[list[list[Any]], int | None]: ...

    def sorted_page(
        self,
        dataset: Dataset,
        selection: Selection,
        position: int,
        descending: bool,
        kind: str,
        skip: int,
        limit: int,
    ) -> list[list[Any]]: ...


class _RowScan:
    """Pages found by scanning the stored rows (``streaming.scan``)."""

    count = staticmethod(scan.count)
    page = staticmethod(scan.page)
    sorted_page = staticmethod(scan.sorted_page)


ROWS = _RowScan()


def fetch(dataset: Dataset, plan: Plan, finder: Finder = ROWS) -> Result:
    """Find a planned page's rows, its total and the next page's query."""
    page, link = plan.page, plan.link
    if plan.order is not None:
        return _sorted(dataset, plan, finder)
    if plan.selection.active or plan.cursor:
        return _scanned(dataset, page, plan.selection, plan.cursor, link, finder)
    rows = decode(dataset.lines(page.offset, page.offset + page.limit))
    end = page.offset + len(rows)
    following = {**link, "offset": str(end)} if end < dataset.rows else None
    return Result(page, rows, dataset.rows, following)


def _scanned(
    dataset: Dataset,
    page: params.Page,
    selection: Selection,
    cursor: str | None,
    link: dict[str, str],
    finder: Finder,
) -> Result:
    start = scan.read_cursor(cursor, dataset.key, selection) if cursor else 0
    skip = 0 if cursor else page.offset
    rows, resume = finder.page(dataset, selection, start, skip, page.limit)
    total: int | None = dataset.rows
    if selection.active:
        total = finder.count(dataset, selection) if page.count else None
    following = None
    if resume is not None:
        following = {**link, "cursor": scan.make_cursor(dataset.key, selection, resume)}
    return Result(page, rows, total, following)


def _sorted(dataset: Dataset, plan: Plan, finder: Finder) -> Result:
    page, selection = plan.page, plan.selection
    assert plan.order is not None and plan.sort is not None
    position, descending = plan.order
    kind = dataset.meta["columns"][position]["type"]
    rows = finder.sorted_page(
        dataset, selection, position, descending, kind, page.offset, page.limit
    )
    total: int | None = dataset.rows
    if selection.active:
        total = finder.count(dataset, selection) if page.count else None
    depth = page.offset + page.limit
    more = len(rows) == page.limit and (total is None or depth < total)
    following = {**plan.link, "sort": plan.sort, "offset": str(depth)} if more else None
    return Result(page, rows, total, following)
