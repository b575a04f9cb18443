"""The dataset's METADATA record (API.md), built here and nowhere else.

A ready dataset's record is written once, into its meta.json, when its sync publishes it
(``ready``); a dataset still queued, running or failed has no meta.json, and its record is
made from its job whenever it is asked for (``pending``). Both start from the same fields, so
the two can never disagree on what a client sees.
"""

from __future__ import annotations

from typing import Any

# A 'done' job whose dataset is not there is one whose dataset was just deleted, or one caught
# between its publishing and its recording: "running" is the honest word for both.
_PENDING_STATUS = {"queued": "queued", "running": "running", "failed": "failed"}


def ready(
    job: dict[str, Any],
    *,
    rows: int,
    columns: list[dict[str, Any]],
    delimiter: str | None,
    encoding: str | None,
    size: int,
    ready_at: str,
    columns_format: int | None,
    source_format: str,
) -> dict[str, Any]:
    """The record of a dataset whose sync has just finished; ``columns_format`` says which
    layout its column files have (``streaming.column_store``), None for rows alone."""
    record = _record(
        job,
        status="ready",
        rows=rows,
        columns=columns,
        source={"delimiter": delimiter, "encoding": encoding, "format": source_format},
        size=size,
        ready_at=ready_at,
    )
    return {**record, "columns_format": columns_format}


def with_roles(record: dict[str, Any], roles: dict[str, str]) -> dict[str, Any]:
    """A ready record with what charts and insights take each column for (``roles``:
    ``{NAME: ROLE}``, decided at sync by ``streaming.roles``)."""
    return {**record, "roles": roles}


def pending(job: dict[str, Any]) -> dict[str, Any]:
    """The record of a dataset whose sync has not (or not successfully) finished."""
    options = job["options"]
    record = _record(
        job,
        status=_PENDING_STATUS.get(job["status"], "running"),
        rows=None,
        columns=[],
        source={
            "delimiter": options.get("delimiter"),
            "encoding": options.get("encoding") or "utf-8",
        },
        size=None,
        ready_at=None,
    )
    return {**record, "version": None, "job": job["id"], "error": job["error"]}


def _record(
    job: dict[str, Any],
    *,
    status: str,
    rows: int | None,
    columns: list[dict[str, Any]],
    source: dict[str, Any],
    size: int | None,
    ready_at: str | None,
) -> dict[str, Any]:
    return {
        "id": job["dataset_id"],
        "name": job["name"],
        "status": status,
        "rows": rows,
        "columns": columns,
        "source": {**job["source"], **source},
        "bytes": size,
        "created_at": job["created_at"],
        "ready_at": ready_at,
    }
