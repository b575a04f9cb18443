"""The HTTP API in-process, over httpx's WSGI transport: uploads, jobs, pages, exports, stats."""

from __future__ import annotations

import csv
import io
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import Rillet
from tests.conftest import (
    READ_KEY,
    ROOT,
    WRITE_KEY,
    app_client,
    assert_error,
    make_settings,
    sync_all,
    upload,
)

FLIGHTS = """carrier,origin,dep_delay,distance,day,on_time
UA,JFK,61,1400.5,2024-12-01,false
AA,LAX,-3,2475.0,2024-12-02,true
UA,JFK,,1400.5,2024-12-03,true
DL,ATL,12,760.25,2024-12-03,NA
"""


def numbered(rows: int) -> str:
    return "n,square,label\n" + "".join(f"{i},{i * i},row {i}\n" for i in range(rows))


def test_upload_answers_202_with_a_queued_job(client: httpx.Client) -> None:
    response = client.post("/datasets", files={"file": ("flights.csv", FLIGHTS.encode())})
    assert response.status_code == 202
    body = response.json()
    assert body["dataset"]["status"] == "queued" and body["dataset"]["name"] == "flights.csv"
    assert body["job"] == {
        "id": body["job"]["id"],
        "status": "queued",
        "url": f"/jobs/{body['job']['id']}",
    }
    job = client.get(body["job"]["url"]).json()
    assert job["status"] == "queued" and job["dataset_id"] == body["dataset"]["id"]
    assert job["progress"]["bytes_total"] == len(FLIGHTS.encode())


def test_job_reports_done_with_progress_after_sync(client: httpx.Client, rillet: Rillet) -> None:
    response = client.post("/datasets", files={"file": ("f.csv", FLIGHTS.encode())})
    sync_all(rillet.settings)
    job = client.get(response.json()["job"]["url"]).json()
    assert job["status"] == "done" and job["error"] is None
    assert job["progress"]["rows"] == 4 and job["progress"]["fraction"] == 1.0
    assert job["started_at"] and job["finished_at"]


def test_raw_text_csv_body_is_accepted_with_a_name(client: httpx.Client, rillet: Rillet) -> None:
    response = client.post(
        "/datasets",
        params={"name": "flights"},
        content=FLIGHTS.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 202
    sync_all(rillet.settings)
    meta = client.get(f"/datasets/{response.json()['dataset']['id']}").json()
    assert meta["name"] == "flights" and meta["rows"] == 4


def test_metadata_probe_has_types_nulls_and_source(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload(client, rillet, FLIGHTS, name="flights.csv")
    meta = client.get(f"/datasets/{dataset_id}").json()
    assert meta["status"] == "ready" and meta["rows"] == 4
    assert meta["columns"] == [
        {"name": "carrier", "type": "string", "nulls": 0},
        {"name": "origin", "type": "string", "nulls": 0},
        {"name": "dep_delay", "type": "integer", "nulls": 1},
        {"name": "distance", "type": "number", "nulls": 0},
        {"name": "day", "type": "date", "nulls": 0},
        {"name": "on_time", "type": "boolean", "nulls": 1},
    ]
    source = meta["source"]
    assert source["filename"] == "flights.csv" and source["bytes"] == len(FLIGHTS)
    assert (
        len(source["sha256"]) == 64 and source["delimiter"] == "," and source["encoding"] == "utf-8"
    )
    assert meta["bytes"] > 0 and meta["created_at"].endswith("Z") and meta["ready_at"].endswith("Z")
    assert client.get("/fetch-data", params={"metadata_only": "true"}).json() == meta


def test_metadata_of_a_queued_dataset_says_queued(client: httpx.Client) -> None:
    response = client.post("/datasets", files={"file": ("f.csv", FLIGHTS.encode())})
    dataset_id = response.json()["dataset"]["id"]
    meta = client.get(f"/datasets/{dataset_id}").json()
    assert meta["status"] == "queued" and meta["rows"] is None
    assert_error(client.get(f"/datasets/{dataset_id}/rows"), 409, "not_ready")
    listed = client.get("/datasets").json()["datasets"]
    assert [m["id"] for m in listed] == [dataset_id]


def test_rows_are_typed_in_csv_column_order(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload(client, rillet, FLIGHTS)
    page = client.get(f"/datasets/{dataset_id}/rows").json()
    assert page["dataset"] == dataset_id and page["offset"] == 0 and page["limit"] == 100
    assert page["total"] == 4 and page["next"] is None
    assert page["rows"][0] == {
        "carrier": "UA",
        "origin": "JFK",
        "dep_delay": 61,
        "distance": 1400.5,
        "day": "2024-12-01",
        "on_time": False,
    }
    assert list(page["rows"][0]) == ["carrier", "origin", "dep_delay", "distance", "day", "on_time"]
    assert page["rows"][2]["dep_delay"] is None and page["rows"][3]["on_time"] is None


def test_next_walks_every_row_exactly_once(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload(client, rillet, numbered(1234))
    seen, url = [], f"/datasets/{dataset_id}/rows?limit=100"
    while url:
        page = client.get(url).json()
        seen.extend(row["n"] for row in page["rows"])
        url = page["next"]
    assert seen == list(range(1234))


@pytest.mark.parametrize("offset", [0, 1, 999, 1233])
def test_page_at_any_offset_starts_at_that_row(
    client: httpx.Client, rillet: Rillet, offset: int
) -> None:
    dataset_id = upload(client, rillet, numbered(1234))
    rows = client.get(f"/datasets/{dataset_id}/rows", params={"offset": offset, "limit": 3}).json()[
        "rows"
    ]
    assert [r["n"] for r in rows] == list(range(offset, min(offset + 3, 1234)))
    assert rows[0]["square"] == offset * offset


def test_page_past_the_end_is_empty(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload(client, rillet, numbered(10))
    page = client.get(f"/datasets/{dataset_id}/rows", params={"offset": 50}).json()
    assert page["rows"] == [] and page["next"] is None and page["total"] == 10


def test_columns_projects_in_the_order_asked(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload(client, rillet, FLIGHTS)
    rows = client.get(
        f"/datasets/{dataset_id}/rows", params={"columns": "day,carrier", "limit": 1}
    ).json()["rows"]
    assert rows == [{"day": "2024-12-01", "carrier": "UA"}]
    assert list(rows[0]) == ["day", "carrier"]


def test_ndjson_and_csv_pages_carry_the_next_link(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload(client, rillet, numbered(10))
    response = client.get(f"/datasets/{dataset_id}/rows", params={"limit": 4, "format": "ndjson"})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert [orjson.loads(line)["n"] for line in response.content.splitlines()] == [0, 1, 2, 3]
    assert 'rel="next"' in response.headers["link"] and "offset=4" in response.headers["link"]
    response = client.get(
        f"/datasets/{dataset_id}/rows", params={"limit": 4, "offset": 8, "format": "csv"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(response.text))) == [
        ["n", "square", "label"],
        ["8", "64", "row 8"],
        ["9", "81", "row 9"],
    ]
    assert "link" not in response.headers


def test_fetch_data_serves_the_latest_dataset(client: httpx.Client, rillet: Rillet) -> None:
    upload(client, rillet, FLIGHTS)
    latest = upload(client, rillet, numbered(5))
    page = client.get("/fetch-data", params={"limit": 2, "offset": 1}).json()
    assert page["dataset"] == latest and [r["n"] for r in page["rows"]] == [1, 2]
    assert page["next"] == f"/fetch-data?dataset={latest}&version=1&limit=2&offset=3"
    assert client.get(page["next"]).json()["rows"][0]["n"] == 3


def test_fetch_data_without_datasets_is_404(client: httpx.Client) -> None:
    assert_error(client.get("/fetch-data"), 404, "not_found")


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_export_streams_every_row(client: httpx.Client, rillet: Rillet, fmt: str) -> None:
    dataset_id = upload(client, rillet, numbered(3000))
    response = client.get(f"/datasets/{dataset_id}/export", params={"format": fmt})
    assert response.status_code == 200
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [int(r["n"]) for r in rows] == list(range(3000))
    else:
        rows = [orjson.loads(line) for line in response.content.splitlines()]
        assert rows[2999] == {"n": 2999, "square": 2999 * 2999, "label": "row 2999"}
    assert "attachment" in response.headers["content-disposition"]


def test_export_csv_writes_nulls_empty_and_booleans_as_words(
    client: httpx.Client, rillet: Rillet
) -> None:
    dataset_id = upload(client, rillet, FLIGHTS)
    text = client.get(
        f"/datasets/{dataset_id}/export", params={"columns": "dep_delay,on_time"}
    ).text
    assert text.splitlines() == ["dep_delay,on_time", "61,false", "-3,true", ",true", "12,"]


def test_stats_answer_the_precomputed_fields(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload(client, rillet, FLIGHTS)
    body = client.get(f"/datasets/{dataset_id}/stats").json()
    assert body["dataset"] == dataset_id and body["rows_matched"] == 4
    delay = body["columns"]["dep_delay"]
    assert delay["type"] == "integer" and delay["count"] == 3 and delay["nulls"] == 1
    assert (delay["min"], delay["max"], delay["sum"]) == (-3, 61, 70)
    assert delay["mean"] == pytest.approx(70 / 3)
    assert delay["stddev"] == pytest.approx(statistics.stdev([61, -3, 12]))
    assert set(delay["quantiles"]) == {"p05", "p25", "p50", "p75", "p95"}
    assert sum(b["count"] for b in delay["histogram"]) == 3
    assert delay["approximate"] is False and delay["distinct"] == 3 and delay["distinct_exact"]
    carrier = body["columns"]["carrier"]
    assert carrier["top"][0] == {"value": "UA", "count": 2}
    assert carrier["min_length"] == 2 and carrier["max_length"] == 2
    only = client.get(f"/datasets/{dataset_id}/stats", params={"columns": "day"}).json()
    assert list(only["columns"]) == ["day"] and only["columns"]["day"]["min"] == "2024-12-01"


def test_health_counts_datasets_and_jobs(client: httpx.Client, rillet: Rillet) -> None:
    upload(client, rillet, FLIGHTS)
    client.post("/datasets", files={"file": ("f.csv", FLIGHTS.encode())})
    health = httpx.Client(transport=client._transport, base_url="http://rillet.test").get("/health")
    body = health.json()
    assert body["status"] == "ok" and body["datasets"] == 1
    assert body["jobs"] == {"queued": 1, "running": 0}
    assert body["version"]


def test_delete_removes_a_dataset(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload(client, rillet, FLIGHTS)
    assert client.delete(f"/datasets/{dataset_id}").status_code == 204
    assert_error(client.get(f"/datasets/{dataset_id}"), 404, "not_found")
    assert_error(client.get(f"/datasets/{dataset_id}/rows"), 404, "not_found")
    assert_error(client.delete(f"/datasets/{dataset_id}"), 404, "not_found")
    assert client.get("/datasets").json() == {"datasets": []}


def test_delete_of_a_queued_upload_cancels_it(client: httpx.Client, rillet: Rillet) -> None:
    response = client.post("/datasets", files={"file": ("f.csv", FLIGHTS.encode())})
    dataset_id = response.json()["dataset"]["id"]
    assert client.delete(f"/datasets/{dataset_id}").status_code == 204
    assert sync_all(rillet.settings) == 0
    assert_error(client.get(f"/datasets/{dataset_id}"), 404)


def test_a_stream_survives_deletion_of_its_dataset(client: httpx.Client, rillet: Rillet) -> None:
    from streaming import scan
    from streaming.encode import Projection, stream
    from streaming.filter import parse
    from streaming.read import open_dataset

    dataset_id = upload(client, rillet, numbered(20000))
    dataset = open_dataset(rillet.store, rillet.jobs, dataset_id)
    everything = parse({}, dataset.meta["columns"])
    blocks = (block.rows for block in scan.blocks(dataset, everything))
    chunks = stream(Projection(dataset.names), "ndjson", blocks)
    first = next(chunks)
    assert client.delete(f"/datasets/{dataset_id}").status_code == 204
    rest = b"".join(chunks)
    dataset.close()
    assert len((first + rest).splitlines()) == 20000


def test_failed_sync_is_reported_on_the_job_and_the_probe(
    client: httpx.Client, rillet: Rillet
) -> None:
    response = client.post("/datasets", files={"file": ("bad.csv", b"a,b\n1,2\n3,4,5\n")})
    sync_all(rillet.settings)
    job = client.get(response.json()["job"]["url"]).json()
    assert job["status"] == "failed"
    assert job["error"] == {
        "code": "ragged_row",
        "message": "line 3: 3 fields, but the header has 2",
        "line": 3,
    }
    dataset_id = response.json()["dataset"]["id"]
    assert client.get(f"/datasets/{dataset_id}").json()["status"] == "failed"
    assert_error(client.get(f"/datasets/{dataset_id}/rows"), 409, "dataset_failed")


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "code"),
    [
        ("GET", "/datasets/ds_000000000000", {}, 404, "not_found"),
        ("GET", "/datasets/..%2F..%2Fetc", {}, 404, "not_found"),
        ("GET", "/datasets/ds_000000000000/rows", {}, 404, "not_found"),
        ("GET", "/jobs/job_000000000000", {}, 404, "not_found"),
        ("GET", "/jobs/%2E%2E", {}, 404, "not_found"),  # "/jobs/.." is "/" once normalized
        ("GET", "/no/such/route", {}, 404, "not_found"),
        ("PUT", "/datasets", {}, 405, "method_not_allowed"),
        (
            "POST",
            "/datasets",
            {"content": b"x", "headers": {"Content-Type": "image/png"}},
            415,
            "not_csv",
        ),
        (
            "POST",
            "/datasets",
            {"content": b"", "headers": {"Content-Type": "text/csv"}},
            422,
            "empty_file",
        ),
        (
            "POST",
            "/datasets",
            {"content": b"a\x00b", "headers": {"Content-Type": "text/csv"}},
            415,
            "not_csv",
        ),
        (
            "POST",
            "/datasets?encoding=klingon",
            {"content": b"a\n1\n", "headers": {"Content-Type": "text/csv"}},
            400,
            "bad_encoding",
        ),
        (
            "POST",
            "/datasets?delimiter=ab",
            {"content": b"a\n1\n", "headers": {"Content-Type": "text/csv"}},
            400,
            "bad_parameter",
        ),
    ],
)
def test_every_error_has_the_one_shape(
    client: httpx.Client, method: str, url: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    assert_error(client.request(method, url, **kwargs), status, code)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, "bad_parameter"),
        ({"limit": "1001"}, "bad_parameter"),
        ({"limit": "ten"}, "bad_parameter"),
        ({"offset": "-1"}, "bad_parameter"),
        ({"format": "xml"}, "bad_parameter"),
        ({"columns": "carrier,nope"}, "unknown_column"),
        ({"nope": "UA"}, "unknown_column"),
        ({"carrier__like": "UA"}, "unknown_operator"),
        ({"dep_delay__gt": "soon"}, "bad_value"),
        ({"sort": "-nope"}, "unknown_column"),
        ({"cursor": "not-a-cursor"}, "bad_cursor"),
        ({"count": "maybe"}, "bad_parameter"),
    ],
)
def test_bad_page_parameters_are_400s_naming_them(
    client: httpx.Client, rillet: Rillet, params: dict[str, str], code: str
) -> None:
    dataset_id = upload(client, rillet, FLIGHTS)
    error = assert_error(client.get(f"/datasets/{dataset_id}/rows", params=params), 400, code)
    name = next(iter(params))
    assert name in error["message"] or params[name] in error["message"]


def test_openapi_lists_every_served_route(client: httpx.Client) -> None:
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").json()
    validate(document)  # a valid OpenAPI 3.1 document
    assert document["openapi"].startswith("3.1")
    assert {
        "/health",
        "/datasets",
        "/datasets/{dataset_id}",
        "/datasets/{dataset_id}/rows",
        "/fetch-data",
        "/datasets/{dataset_id}/export",
        "/datasets/{dataset_id}/stats",
        "/jobs/{job_id}",
        "/openapi.json",
        "/datasets/{dataset_id}/groupby",
    } <= set(document["paths"])


def test_read_key_can_read_but_not_write(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload(client, rillet, FLIGHTS)
    headers = {"X-API-Key": READ_KEY}
    assert client.get(f"/datasets/{dataset_id}", headers=headers).status_code == 200
    assert_error(
        client.delete(f"/datasets/{dataset_id}", headers=headers), 403, "insufficient_scope"
    )
    assert_error(client.post("/datasets", headers=headers, content=b"a\n1\n"), 403)
    assert (
        client.get("/datasets", headers={"Authorization": f"Bearer {WRITE_KEY}"}).status_code == 200
    )


# --- a round trip through the whole app ------------------------------------------------------

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
).map(lambda s: "t" + s.strip() + "x")
_columns = st.fixed_dictionaries(
    {
        "i": st.integers(-(2**63), 2**63 - 1),
        "f": st.floats(allow_nan=False, allow_infinity=False, width=64).map(lambda x: x + 0.5),
        "s": _text,
        "b": st.booleans(),
        "maybe": st.none() | st.integers(0, 10**6),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_columns, min_size=1, max_size=40))
def test_upload_round_trip_returns_the_typed_table(
    client: httpx.Client, rillet: Rillet, table: list[dict[str, Any]]
) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["i", "f", "s", "b", "maybe"])
    for row in table:
        writer.writerow(
            [
                row["i"],
                repr(row["f"]),
                row["s"],
                "true" if row["b"] else "false",
                "" if row["maybe"] is None else row["maybe"],
            ]
        )
    dataset_id = upload(client, rillet, out.getvalue())
    page = client.get(f"/datasets/{dataset_id}/rows", params={"limit": 100}).json()
    assert page["rows"] == table


def test_serving_never_imports_httpx(tmp_path: Path) -> None:
    """httpx is for the LLM: upload, sync, probe, pages, stats and the insights computed from
    statistics (no GROQ_API_KEY) leave it unloaded."""
    driver = f"""
import io, sys
import orjson
from wsgiref.util import setup_testing_defaults
import server, sync_worker
from streaming.settings import Settings
settings = Settings.from_env({{}}, data_dir={str(tmp_path)!r}, api_keys="k:write")
rillet = server.Rillet(settings)
app = server.create_app(rillet)

def call(path, method="GET", body=b"", query=""):
    env = {{"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
           "HTTP_X_API_KEY": "k", "CONTENT_TYPE": "text/csv",
           "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}}
    setup_testing_defaults(env)
    status = []
    out = b"".join(app(env, lambda s, h, e=None: status.append(s)))
    return status[0], out

status, out = call("/datasets", "POST", b"a,b\\n1,x\\n2,y\\n", "name=t")
assert status.startswith("202"), out
dataset = orjson.loads(out)["dataset"]["id"]
sync_worker.sync_all(settings)
for path, query in [("/health", ""), ("/datasets", ""), ("/fetch-data", "limit=1"),
                    ("/fetch-data", "metadata_only=true"), (f"/datasets/{{dataset}}/stats", ""),
                    (f"/datasets/{{dataset}}/insights", ""),
                    (f"/datasets/{{dataset}}/columns/a/insights", "")]:
    status, out = call(path, query=query)
    assert status.startswith("200"), (path, out)
print("httpx" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", driver],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_an_empty_export_still_closes_its_files(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload(client, rillet, "a,b\n")
    for fmt in ("ndjson", "csv"):
        response = client.get(f"/datasets/{dataset_id}/export", params={"format": fmt})
        assert response.status_code == 200
    assert rillet.streams.taken == 0


def test_non_ascii_names_and_columns_arrive_as_utf8(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload_bytes(client, rillet, "café,n\nnoir,1\n".encode(), name="crème")
    assert client.get(f"/datasets/{dataset_id}").json()["name"] == "crème"
    rows = client.get(f"/datasets/{dataset_id}/rows", params={"columns": "café"}).json()["rows"]
    assert rows == [{"café": "noir"}]
    assert_error(client.get(f"/datasets/{dataset_id}/rows?columns=%FF"), 400, "bad_parameter")


def test_utf16_uploads_with_their_encoding(client: httpx.Client, rillet: Rillet) -> None:
    dataset_id = upload_bytes(
        client, rillet, "city,n\nZürich,1\n".encode("utf-16"), encoding="utf-16"
    )
    rows = client.get(f"/datasets/{dataset_id}/rows").json()["rows"]
    assert rows == [{"city": "Zürich", "n": 1}]


def test_routes_without_filters_reject_unknown_parameters(
    client: httpx.Client, rillet: Rillet
) -> None:
    upload(client, rillet, FLIGHTS)
    assert_error(
        client.post(
            "/datasets?colour=red", content=b"a\n1\n", headers={"Content-Type": "text/csv"}
        ),
        400,
        "bad_parameter",
    )
    assert_error(
        client.get("/fetch-data", params={"metadata_only": "1", "carrier": "UA"}),
        400,
        "bad_parameter",
    )


def test_delete_waits_for_a_sync_holding_its_job(client: httpx.Client, rillet: Rillet) -> None:
    response = client.post("/datasets", files={"file": ("f.csv", FLIGHTS.encode())})
    dataset_id, job_id = response.json()["dataset"]["id"], response.json()["job"]["id"]
    claim = rillet.jobs.claim()
    assert claim is not None and claim.job_id == job_id
    assert_error(client.delete(f"/datasets/{dataset_id}"), 409, "sync_running")
    claim.release()


def upload_bytes(client: httpx.Client, rillet: Rillet, data: bytes, **params: str) -> str:
    response = client.post("/datasets", params=params, files={"file": ("f.csv", data)})
    assert response.status_code == 202, response.text
    sync_all(rillet.settings)
    job = client.get(response.json()["job"]["url"]).json()
    assert job["status"] == "done", job
    return str(response.json()["dataset"]["id"])


def test_access_log_has_one_line_per_request_and_never_a_key(
    rillet: Rillet, caplog: pytest.LogCaptureFixture
) -> None:
    from server import create_app
    from streaming.web.wsgi import AccessLog

    transport = httpx.WSGITransport(app=AccessLog(create_app(rillet)))
    with (
        httpx.Client(transport=transport, base_url="http://rillet.test") as logged,
        caplog.at_level("INFO", logger="rillet.access"),
    ):
        logged.post(
            "/datasets?name=x",
            content=b"a\n1\n",
            headers={"Content-Type": "text/csv", "X-API-Key": WRITE_KEY},
        )
        logged.get("/datasets", headers={"Authorization": f"Bearer {READ_KEY}"})
        logged.get("/datasets", headers={"X-API-Key": "wrong-key"})
        logged.get("/health")
    lines = [r.getMessage() for r in caplog.records if r.name == "rillet.access"]
    assert len(lines) == 4
    assert lines[0].startswith("POST /datasets?name=x 202 ")
    assert lines[2].startswith("GET /datasets 401 ") and lines[3].startswith("GET /health 200 ")
    assert all(line.endswith("ms") and "B " in line for line in lines)
    assert not any(key in line for line in lines for key in (WRITE_KEY, READ_KEY, "wrong-key"))


@pytest.mark.parametrize("safe", [True, False])
def test_csv_cells_that_would_start_a_formula_are_neutralised(tmp_path: Path, safe: bool) -> None:

    rillet = Rillet(make_settings(tmp_path / "d", csv_safe=safe))
    with app_client(rillet) as c:
        dataset_id = upload(c, rillet, "cmd,n\n=SUM(A1),-5\n@x,3\nplain,1\n")
        exported = c.get(f"/datasets/{dataset_id}/export").text.splitlines()
        page = c.get(f"/datasets/{dataset_id}/rows", params={"format": "csv"}).text.splitlines()
    expected = (
        ["cmd,n", "'=SUM(A1),-5", "'@x,3", "plain,1"]
        if safe
        else ["cmd,n", "=SUM(A1),-5", "@x,3", "plain,1"]
    )
    assert exported == expected and page == expected


def test_cors_answers_preflights_and_marks_responses_for_allowed_origins(
    rillet: Rillet,
) -> None:
    from server import create_app
    from streaming.web.wsgi import Cors

    app = Cors(create_app(rillet), "https://dash.example.com, https://other.example.com/")
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://rillet.test") as c:
        preflight = c.options(
            "/datasets",
            headers={
                "Origin": "https://dash.example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-api-key",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://dash.example.com"
        assert "X-API-Key" in preflight.headers["access-control-allow-headers"]
        assert "access-control-allow-credentials" not in preflight.headers
        stranger = c.options(
            "/datasets",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in stranger.headers
        response = c.get(
            "/datasets", headers={"Origin": "https://other.example.com", "X-API-Key": READ_KEY}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://other.example.com"
        assert "ETag" in response.headers["access-control-expose-headers"]
        plain = c.get("/datasets", headers={"X-API-Key": READ_KEY})
        assert "access-control-allow-origin" not in plain.headers
    anywhere = Cors(create_app(rillet), "*")
    with httpx.Client(
        transport=httpx.WSGITransport(app=anywhere), base_url="http://rillet.test"
    ) as c:
        response = c.get("/health", headers={"Origin": "https://any.example"})
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers


def test_chart_routes_answer_specs_images_and_recommendations(
    client: httpx.Client, rillet: Rillet
) -> None:
    dataset_id = upload(client, rillet, FLIGHTS)
    spec = client.get(
        f"/datasets/{dataset_id}/chart",
        params={"mark": "bar", "x": "carrier", "y": "distance", "aggregate": "sum"},
    ).json()
    assert spec["$schema"] == "https://vega.github.io/schema/vega-lite/v6.json"
    totals = {row["carrier"]: row for row in spec["data"]["values"]}
    assert set(totals) == {"UA", "AA", "DL"}
    svg = client.get(
        f"/datasets/{dataset_id}/chart", params={"mark": "bar", "x": "carrier", "format": "svg"}
    )
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg")
    assert_error(client.get(f"/datasets/{dataset_id}/chart", params={"mark": "pie"}), 400)
    found = client.get(f"/datasets/{dataset_id}/charts").json()
    assert found["dataset"] == dataset_id and isinstance(found["charts"], list)
    for item in found["charts"]:
        assert {"title", "reason", "score", "spec"} <= set(item)


def test_streams_past_streams_max_get_429_and_free_their_slot_when_done(
    client: httpx.Client, rillet: Rillet
) -> None:
    dataset = upload(client, rillet, "a,b\n1,2\n")
    held = [rillet.streams.take() for _ in range(rillet.settings.streams_max)]
    response = client.get(f"/datasets/{dataset}/export")
    body = assert_error(response, 429, "too_many_streams")
    assert response.headers["Retry-After"] == "5" and body["retry_after"] == 5
    assert client.get(f"/datasets/{dataset}/rows").status_code == 200  # pages are not streams
    held.pop()()
    held[0]()  # ending a stream twice frees one slot, not two
    held[0]()
    assert client.get(f"/datasets/{dataset}/export").text == "a,b\r\n1,2\r\n"
    assert rillet.streams.taken == len(held) - 1  # the export's slot was freed when it ended
