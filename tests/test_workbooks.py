"""Excel workbooks, gzip and zip uploads: read as streams, every cell type, and bad input.

Workbooks are written by openpyxl (what Excel-compatible tools write) or, for the cell kinds
openpyxl does not write (inline strings, cached formula values, errors, rows left out, the
1904 date system), put together here part by part.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from datetime import date, datetime, time

import openpyxl
import pytest

from streaming import xlsx
from streaming.errors import InvalidCSV, PayloadTooLarge
from streaming.xlsx import SharedStrings, date_kind
from sync_worker import sync_all
from tests.corpus import EXCEL_US, convert_bytes, sync_bytes, wrap


def openpyxl_workbook() -> bytes:
    """Two sheets: Orders (every cell type openpyxl writes) and Notes."""
    book = openpyxl.Workbook()
    orders = book.active
    orders.title = "Orders"
    orders.append(["id", "name", "amount", "paid", "day", "at", "clock", "note", "total"])
    orders.append(
        [1, "alpha", 2.5, True, date(2024, 1, 5), datetime(2024, 1, 5, 10, 30), time(7, 15)]
        + [None, "=C2*2"]
    )
    orders.append(
        [2, "beta", 3, False, date(2024, 2, 29), datetime(2024, 2, 29, 23, 59, 59), time(18)]
        + ["x", "=C3*2"]
    )
    notes = book.create_sheet("Notes")
    notes.append(["key", "value"])
    notes.append(["a", 1])
    notes.append(["b", 2])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


ORDERS_COLUMNS = [
    ("id", "integer"),
    ("name", "string"),
    ("amount", "number"),
    ("paid", "boolean"),
    ("day", "date"),
    ("at", "datetime"),
    ("clock", "string"),  # a time of day alone is no date: its text
    ("note", "string"),
    ("total", "string"),  # formulas openpyxl saved without a cached value: their text
]
ORDERS_ROWS = [
    [1, "alpha", 2.5, True, "2024-01-05", "2024-01-05T10:30:00", "07:15:00", None, "=C2*2"],
    [2, "beta", 3.0, False, "2024-02-29", "2024-02-29T23:59:59", "18:00:00", "x", "=C3*2"],
]


def test_an_openpyxl_workbook_gives_every_cell_its_type(tmp_path):
    conversion, rows = convert_bytes(tmp_path, openpyxl_workbook())
    assert conversion.format == "xlsx"
    assert conversion.delimiter is None and conversion.encoding is None
    assert [(c["name"], c["type"]) for c in conversion.columns] == ORDERS_COLUMNS
    assert conversion.columns[7]["nulls"] == 1
    assert rows == ORDERS_ROWS


def test_a_sheet_is_chosen_by_name(tmp_path):
    conversion, rows = convert_bytes(tmp_path, openpyxl_workbook(), {"sheet": "Notes"})
    assert [c["name"] for c in conversion.columns] == ["key", "value"]
    assert rows == [["a", 1], ["b", 2]]


def test_an_unknown_sheet_fails_naming_the_sheets_there_are(tmp_path):
    with pytest.raises(InvalidCSV, match="no sheet 'Sales'; its sheets: 'Orders', 'Notes'") as e:
        convert_bytes(tmp_path, openpyxl_workbook(), {"sheet": "Sales"})
    assert e.value.code == "unknown_sheet"


def replace_part(data: bytes, part: str, edit) -> bytes:  # type: ignore[no-untyped-def]
    """The zip ``data`` with one member's text changed by ``edit``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == part:
                content = edit(content.decode()).encode()
            target.writestr(info, content)
    return out.getvalue()


def test_a_formula_gives_its_cached_value_when_the_file_has_one(tmp_path):
    def cache(sheet: str) -> str:
        assert "<f>C2*2</f><v></v>" in sheet or "<f>C2*2</f><v />" in sheet
        return sheet.replace("<f>C2*2</f><v></v>", "<f>C2*2</f><v>5</v>").replace(
            "<f>C2*2</f><v />", "<f>C2*2</f><v>5</v>"
        )

    data = replace_part(openpyxl_workbook(), "xl/worksheets/sheet1.xml", cache)
    _, rows = convert_bytes(tmp_path, data)
    assert [row[8] for row in rows] == ["5", "=C3*2"]


# --- workbooks put together part by part ---------------------------------------------------

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def hand_workbook(
    sheet_rows: str, shared: list[str] = (), date1904: bool = False, styles: str = ""
) -> bytes:
    """An .xlsx of one sheet whose <sheetData> holds ``sheet_rows``."""
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types/>',
        "xl/workbook.xml": (
            f'<workbook xmlns="{MAIN}" xmlns:r="{RELS}">'
            f'<workbookPr date1904="{int(date1904)}"/>'
            '<sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{MAIN}"><sheetData>{sheet_rows}</sheetData></worksheet>'
        ),
    }
    if shared:
        items = "".join(f"<si><t>{text}</t></si>" for text in shared)
        parts["xl/sharedStrings.xml"] = f'<sst xmlns="{MAIN}">{items}</sst>'
    if styles:
        parts["xl/styles.xml"] = f'<styleSheet xmlns="{MAIN}">{styles}</styleSheet>'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


DATE_STYLES = (
    '<numFmts><numFmt numFmtId="164" formatCode="dd/mm/yyyy\\ hh:mm"/></numFmts>'
    '<cellXfs><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/></cellXfs>'
)


def test_inline_strings_rich_text_errors_and_left_out_rows_and_cells(tmp_path):
    rows_xml = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>word</t></is></c>'
        '<c r="B1" t="s"><v>0</v></c><c r="C1" t="inlineStr"><is><t>when</t></is></c></row>'
        '<row r="3"><c r="A3" t="inlineStr"><is><r><t>ri</t></r><r><t>ch</t></r>'
        "<rPh><t>ignored</t></rPh></is></c>"
        '<c r="C3" s="1"><v>45292</v></c></row>'  # B3 left out: null
        '<row r="4"><c r="A4" t="e"><v>#DIV/0!</v></c><c r="B4"><v>1.5</v></c>'
        '<c r="C4" s="2"><v>45292.4375</v></c></row>'
        '<row r="5"><c r="A5" t="str"><f>"p"&amp;"q"</f><v>pq</v></c><c r="B5"><v>2</v></c></row>'
    )
    data = hand_workbook(rows_xml, shared=["count"], styles=DATE_STYLES)
    conversion, rows = convert_bytes(tmp_path, data)
    assert [(c["name"], c["type"]) for c in conversion.columns] == [
        ("word", "string"),
        ("count", "number"),
        ("when", "datetime"),  # a date (style 14) and a datetime (custom format) join
    ]
    assert rows == [
        ["rich", None, "2024-01-01T00:00:00"],
        ["#DIV/0!", 1.5, "2024-01-01T10:30:00"],
        ["pq", 2.0, None],
    ]


def test_row_numbers_name_the_sheets_row_in_errors(tmp_path):
    rows_xml = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>n</t></is></c></row>'
        '<row r="2"><c r="A2"><v>1</v></c></row>'
        '<row r="7"><c r="A7" t="inlineStr"><is><t>seven</t></is></c></row>'
    )
    with pytest.raises(InvalidCSV, match="row 7: column 'n' must be integer, and 'seven'") as e:
        convert_bytes(tmp_path, hand_workbook(rows_xml), {"types": {"n": "integer"}})
    assert e.value.code == "type_mismatch" and e.value.line == 7


def test_the_1904_date_system_is_honoured(tmp_path):
    rows_xml = '<row r="1"><c r="A1" t="inlineStr"><is><t>d</t></is></c></row>' + (
        '<row r="2"><c r="A2" s="1"><v>0</v></c></row>'
    )
    data = hand_workbook(rows_xml, date1904=True, styles=DATE_STYLES)
    _, rows = convert_bytes(tmp_path, data)
    assert rows == [["1904-01-01"]]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("yyyy-mm-dd", "date"),
        ("m/d/yy", "date"),
        ("[$-409]mmmm d, yyyy", "date"),
        ("dd/mm/yyyy hh:mm", "datetime"),
        ("h:mm AM/PM", "time"),
        ("[h]:mm:ss", "time"),
        ("mm:ss", "time"),
        ("0.00%", None),
        ('#,##0 "days"', None),
        ("[Red]#,##0.00", None),
        ("General", None),
    ],
)
def test_a_number_format_says_whether_a_cell_shows_a_date(code, kind):
    assert date_kind(code) == kind


def test_shared_strings_spill_to_disk_and_read_back_the_same(tmp_path, monkeypatch):
    table = SharedStrings(tmp_path, spill_bytes=1000)
    texts = [f"text {i} é" * (i % 5) for i in range(500)]
    for text in texts:
        table.append(text)
    table.finish()
    assert table.spilled and table.strings == []
    assert [table[i] for i in range(len(texts))] == texts
    with pytest.raises(InvalidCSV, match="shared string 500"):
        table[500]
    table.close()


def test_a_workbook_of_many_strings_reads_the_same_when_its_table_spills(tmp_path, monkeypatch):
    names = [f"name {i}" for i in range(300)]
    rows_xml = '<row r="1"><c r="A1" t="s"><v>0</v></c></row>' + "".join(
        f'<row r="{i + 2}"><c r="A{i + 2}" t="s"><v>{i + 1}</v></c></row>' for i in range(300)
    )
    data = hand_workbook(rows_xml, shared=["who", *names])
    monkeypatch.setattr(xlsx, "SPILL_BYTES", 256)
    spilled: list[bool] = []
    finish = SharedStrings.finish
    monkeypatch.setattr(
        SharedStrings, "finish", lambda self: (spilled.append(self.spilled), finish(self))
    )
    _, rows = convert_bytes(tmp_path, data)
    assert spilled == [True]
    assert rows == [[name] for name in names]


# --- bad input: a failed job with a clear error, and nothing half-visible -------------------


def assert_failed_cleanly(settings, data: bytes, code: str, message: str, **options) -> None:  # type: ignore[no-untyped-def]
    job, meta = sync_bytes(settings, data, **options)
    assert job["status"] == "failed"
    assert job["error"]["code"] == code
    assert message in job["error"]["message"]
    assert meta is None
    assert list((settings.data_dir / "tmp").iterdir()) == []  # no half-written dataset
    assert list((settings.data_dir / "datasets").iterdir()) == []


def test_an_encrypted_workbook_fails_saying_what_to_do(settings):
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
    assert_failed_cleanly(settings, ole, "unsupported_workbook", "without a password")


def test_a_cut_workbook_fails_as_a_damaged_archive(settings):
    data = openpyxl_workbook()
    assert_failed_cleanly(settings, data[: len(data) // 2], "bad_archive", "damaged")


def test_a_workbook_with_broken_sheet_xml_fails(settings):
    data = replace_part(openpyxl_workbook(), "xl/worksheets/sheet1.xml", lambda s: s[:-40])
    assert_failed_cleanly(settings, data, "bad_workbook", "sheet1.xml is damaged")


def test_a_gzip_stream_that_ends_early_fails(settings):
    data = gzip.compress(EXCEL_US.data * 50)
    assert_failed_cleanly(settings, data[:-30], "bad_archive", "gzip stream ends early")


def test_a_zip_of_several_files_fails_naming_them(settings):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("jan.csv", "a\n1\n")
        archive.writestr("feb.csv", "a\n2\n")
        archive.writestr("__MACOSX/._jan.csv", "junk")  # what a Mac adds: not counted
    message = "exactly one CSV file; this one holds 2: 'jan.csv', 'feb.csv'"
    assert_failed_cleanly(settings, out.getvalue(), "bad_archive", message)


@pytest.mark.parametrize("how", ["csv.gz", "zip"])
def test_a_zip_bomb_fails_once_it_inflates_past_the_upload_cap(settings, how):
    settings = type(settings).from_env({}, data_dir=settings.data_dir, max_upload_mb=1)
    bomb = wrap(b"a\n" + b"0\n" * (3 << 20), how)  # 6 MiB of CSV in a few KiB
    assert len(bomb) < 64 * 1024
    assert_failed_cleanly(settings, bomb, "too_large", "more than 1 MiB, the upload limit")


def test_a_cap_is_checked_while_inflating_not_after(tmp_path):
    """The gzip header claims nothing; the stream is stopped at the cap, not read to its end."""
    bomb = gzip.compress(b"a\n" + b"0\n" * (8 << 20))
    with pytest.raises(PayloadTooLarge):
        convert_bytes(tmp_path, bomb, max_bytes=1 << 20)


# --- through the upload route ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "content_type"),
    [
        ("csv.gz", "application/gzip"),
        ("zip", "application/zip"),
        ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ],
)
@pytest.mark.parametrize("multipart", [True, False])
def test_compressed_and_workbook_uploads_are_accepted_and_kept_as_sent(
    client, rillet, how, content_type, multipart
):
    data = openpyxl_workbook() if how == "xlsx" else wrap(EXCEL_US.data, how)
    if multipart:
        response = client.post("/datasets", files={"file": ("upload.bin", data, content_type)})
    else:
        response = client.post(
            "/datasets",
            params={"name": "upload"},
            content=data,
            headers={"Content-Type": content_type},
        )
    assert response.status_code == 202, response.text
    sync_all(rillet.settings)
    dataset_id = response.json()["dataset"]["id"]
    meta = client.get(f"/datasets/{dataset_id}").json()
    assert meta["status"] == "ready", meta
    assert meta["source"]["format"] == how
    assert meta["source"]["bytes"] == len(data)
    assert meta["source"]["sha256"] == hashlib.sha256(data).hexdigest()
    rows = client.get(f"/datasets/{dataset_id}/rows").json()["rows"]
    if how == "xlsx":
        assert rows[0]["day"] == "2024-01-05" and rows[1]["paid"] is False
    else:
        assert rows[0] == dict(zip([c["name"] for c in EXCEL_US.columns], EXCEL_US.rows[0]))
        assert meta["columns"] == EXCEL_US.columns


def test_a_binary_upload_that_is_no_archive_is_still_refused(client):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    response = client.post("/datasets", files={"file": ("x.png", png, "image/png")})
    assert response.status_code == 415
