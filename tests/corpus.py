"""Real-world files for the format tests, made here: what people's tools export.

Each entry is the file's bytes, how to read it, and what a person expects from it, value by
value, so a test can compare the sync's typed rows with them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streaming.convert import ROWS_FILE, Conversion, Reading, convert_csv
from streaming.jobs import Jobs
from streaming.settings import Settings
from streaming.store import Store
from sync_worker import sync_job


@dataclass(frozen=True)
class Export:
    """A file as a tool writes it, and the dataset a person expects from it."""

    data: bytes
    columns: list[dict[str, Any]]  # name, type and, where read in a notation, unit or format
    rows: list[list[Any]]
    delimiter: str = ","
    options: dict[str, Any] = field(default_factory=dict)  # upload options (types, decimal...)


# Excel's "Save as CSV" from a US workbook: m/d/yyyy dates, $ amounts, %, thousands separators.
EXCEL_US = Export(
    data=(
        b"Order Date,Customer,Amount,Discount,Quantity,Paid\r\n"
        b'1/5/2024,"Smith, John","$1,234.50",10%,"1,200",TRUE\r\n'
        b"1/15/2024,Jane Doe,$99.99,5%,3,FALSE\r\n"
        b'12/31/2023,O\'Brien,$0.50,0%,"12,345",TRUE\r\n'
        b'2/29/2024,Acme Corp.,"$12,000.00",12.5%,7,\r\n'
    ),
    columns=[
        {"name": "Order Date", "type": "date", "nulls": 0, "format": "%m/%d/%Y"},
        {"name": "Customer", "type": "string", "nulls": 0},
        {"name": "Amount", "type": "number", "nulls": 0, "unit": "$"},
        {"name": "Discount", "type": "number", "nulls": 0, "unit": "%"},
        {"name": "Quantity", "type": "integer", "nulls": 0},
        {"name": "Paid", "type": "boolean", "nulls": 1},
    ],
    rows=[
        ["2024-01-05", "Smith, John", 1234.5, 10.0, 1200, True],
        ["2024-01-15", "Jane Doe", 99.99, 5.0, 3, False],
        ["2023-12-31", "O'Brien", 0.5, 0.0, 12345, True],
        ["2024-02-29", "Acme Corp.", 12000.0, 12.5, 7, None],
    ],
)

# A shop's order export: datetimes with " -0500" offsets, quoted multi-line addresses.
SHOP_ORDERS = Export(
    data=(
        b"Name,Email,Created at,Total,Currency,Shipping Address\r\n"
        b"#1001,a@example.com,2024-03-01 14:05:09 -0500,45.00,USD,"
        b'"12 Main St\nApt 4\nSpringfield, IL 62701"\r\n'
        b'#1002,b@example.com,2024-03-02 09:15:00 -0500,"1,045.50",USD,'
        b'"1 Infinite Loop\nCupertino, CA 95014"\r\n'
        b"#1003,,2024-03-03 23:59:59 -0500,0.00,USD,\r\n"
    ),
    columns=[
        {"name": "Name", "type": "string", "nulls": 0},
        {"name": "Email", "type": "string", "nulls": 1},
        {"name": "Created at", "type": "datetime", "nulls": 0, "format": "%Y-%m-%d %H:%M:%S %z"},
        {"name": "Total", "type": "number", "nulls": 0},
        {"name": "Currency", "type": "string", "nulls": 0},
        {"name": "Shipping Address", "type": "string", "nulls": 1},
    ],
    rows=[
        [
            "#1001",
            "a@example.com",
            "2024-03-01T19:05:09Z",
            45.0,
            "USD",
            "12 Main St\nApt 4\nSpringfield, IL 62701",
        ],
        [
            "#1002",
            "b@example.com",
            "2024-03-02T14:15:00Z",
            1045.5,
            "USD",
            "1 Infinite Loop\nCupertino, CA 95014",
        ],
        ["#1003", None, "2024-03-04T04:59:59Z", 0.0, "USD", None],
    ],
)

# A European spreadsheet: ";" between fields, decimal commas, DD.MM.YYYY, euro amounts.
EUROPEAN = Export(
    data=(
        "Datum;Betrag;Menge;Preis;Kommentar\n"
        "01.02.2024;1.234,56;3;3,50 €;Miete, Februar\n"
        "15.02.2024;-12,50;1.000;1.200,00 €;Kaffee\n"
        "29.02.2024;0,99;12;0,99 €;\n"
    ).encode(),
    columns=[
        {"name": "Datum", "type": "date", "nulls": 0, "format": "%d.%m.%Y"},
        {"name": "Betrag", "type": "number", "nulls": 0},
        {"name": "Menge", "type": "integer", "nulls": 0},
        {"name": "Preis", "type": "number", "nulls": 0, "unit": "€"},
        {"name": "Kommentar", "type": "string", "nulls": 1},
    ],
    rows=[
        ["2024-02-01", 1234.56, 3, 3.5, "Miete, Februar"],
        ["2024-02-15", -12.5, 1000, 1200.0, "Kaffee"],
        ["2024-02-29", 0.99, 12, 0.99, None],
    ],
    delimiter=";",
    options={"decimal": ","},
)

# A file without a header line: the first line is data.
HEADERLESS = Export(
    data=b"2024-01-01,alpha,1\n2024-01-02,beta,2\n2024-01-03,gamma,\n",
    columns=[
        {"name": "column_1", "type": "date", "nulls": 0},
        {"name": "column_2", "type": "string", "nulls": 0},
        {"name": "column_3", "type": "integer", "nulls": 1},
    ],
    rows=[["2024-01-01", "alpha", 1], ["2024-01-02", "beta", 2], ["2024-01-03", "gamma", None]],
    options={"header": False},
)

EXPORTS = {
    "excel-us": EXCEL_US,
    "shop-orders": SHOP_ORDERS,
    "european": EUROPEAN,
    "headerless": HEADERLESS,
}
WRAPPINGS = ("csv", "csv.gz", "zip")


def wrap(data: bytes, how: str, name: str = "export.csv") -> bytes:
    """``data`` as uploaded: as is, gzip-compressed, or the one file of a zip archive."""
    if how == "csv":
        return data
    if how == "csv.gz":
        return gzip.compress(data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def reading_of(options: dict[str, Any]) -> Reading:
    return Reading(
        decimal=options.get("decimal", "."),
        types=options.get("types"),
        header=options.get("header", True),
        sheet=options.get("sheet"),
        date_order=options.get("date_order", "mdy"),
    )


def convert_bytes(
    directory: Path, data: bytes, options: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[Conversion, list[list[Any]]]:
    """Convert an upload's bytes with the engine; the conversion and its rows read back."""
    source = directory / "upload.bin"
    source.write_bytes(data)
    out = directory / "out"
    out.mkdir(exist_ok=True)
    conversion = convert_csv(source, out, reading=reading_of(options or {}), **kwargs)
    return conversion, read_rows(out)


def read_rows(out: Path) -> list[list[Any]]:
    data = (out / ROWS_FILE).read_bytes()
    return [orjson.loads(line) for line in data.splitlines()]


def sync_bytes(
    settings: Settings, data: bytes, **options: Any
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Spool ``data`` as an upload with job ``options``, run the worker's step on it; the
    job record and the published METADATA (None if nothing was published)."""
    store = Store(settings.data_dir)
    jobs = Jobs(store)
    ids = store.new_ids()
    store.upload_path(ids.job).write_bytes(data)
    source = {"filename": "upload", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    jobs.create(ids.job, ids.dataset, "upload", source, {"delimiter": None, **options})
    claim = jobs.claim()
    assert claim is not None and claim.job_id == ids.job
    jobs.start(claim)
    sync_job(settings, claim.job_id)
    jobs.settle(claim)
    meta = store.meta_bytes(ids.dataset)
    return jobs.get(ids.job), orjson.loads(meta) if meta else None
