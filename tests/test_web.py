"""The HTTP edge: the route table and its document, layers that show, gzip and HEAD."""

from __future__ import annotations

import ast
import gzip
import re
import zlib
from pathlib import Path

import httpx
import orjson
import pytest

from server import Rillet
from streaming.web import reads
from streaming.web.compress import MIN_BYTES, accepts_gzip
from streaming.web.exchange import Call
from streaming.web.openapi import document
from streaming.web.routes import ROUTES
from tests.conftest import ROOT, app_client, assert_error, upload

ENGINE = sorted(p for p in (ROOT / "streaming").glob("*.py"))
CHARTS = sorted((ROOT / "charts").glob("*.py"))
EDGE = sorted((ROOT / "streaming" / "web").glob("*.py"))
HTTP_MODULES = ("bottle", "waitress", "streaming.web")


def imported(path: Path) -> set[str]:
    """Every module a file imports, by its full dotted name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_the_engine_knows_no_http_and_no_charts(path: Path) -> None:
    wrong = {n for n in imported(path) if _under(n, (*HTTP_MODULES, "charts"))}
    assert not wrong, f"{path.name} imports {wrong}"


@pytest.mark.parametrize("path", CHARTS, ids=lambda p: p.name)
def test_charts_know_no_http(path: Path) -> None:
    wrong = {n for n in imported(path) if _under(n, HTTP_MODULES)}
    assert not wrong, f"{path.name} imports {wrong}"


def test_only_the_edge_imports_bottle() -> None:
    users = {
        p.relative_to(ROOT).as_posix()
        for p in [*ENGINE, *CHARTS, *EDGE, ROOT / "server.py", ROOT / "sync_worker.py"]
        if any(_under(n, ("bottle",)) for n in imported(p))
    }
    assert users == {"streaming/web/app.py"}


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    return [
        (node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_no_application_function_is_over_80_lines() -> None:
    files = [*ENGINE, *CHARTS, *EDGE, ROOT / "server.py", ROOT / "sync_worker.py"]
    long = [
        f"{p.relative_to(ROOT)}:{name} ({lines} lines)"
        for p in files
        for name, lines in _functions(p)
        if lines > 80
    ]
    assert not long


def test_the_document_is_the_table() -> None:
    doc = document(ROUTES, "t")
    served = sorted(
        (
            r.method.lower(),
            re.sub(r"<(\w+)(?::\w+)?>", r"{\1}", r.path),
        )
        for r in ROUTES
    )
    documented = sorted(
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    )
    assert documented == served
    for route in ROUTES:
        assert route.handler.__module__.startswith("streaming.web.")
        assert route.doc.summary and "200" in str(route.doc.responses) or route.method != "GET"


def test_secured_routes_say_so_in_the_document() -> None:
    doc = document(ROUTES, "t")
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            secured = path not in ("/health", "/", "/static/{path}")
            assert ("security" in op) is secured, (method, path)
            assert ("401" in op["responses"]) is secured


def test_a_handler_runs_alone_with_a_call_it_is_given(client: httpx.Client, rillet: Rillet) -> None:
    dataset = upload(client, rillet, "a,b\n1,x\n2,y\n3,x\n")
    call = Call(
        method="GET",
        path=f"/datasets/{dataset}/stats",
        query_string="b=x",
        params={"b": "x"},
        args={"dataset_id": dataset},
    )
    answer = reads.stats(rillet, call)
    assert answer.status == 200 and answer.headers["ETag"]
    body = orjson.loads(answer.body)  # type: ignore[arg-type]
    assert body["rows_matched"] == 2 and body["columns"]["a"]["sum"] == 4


# --- gzip ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, gzip;q=0.5", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, identity", False),
        ("identity", False),
        ("br, deflate", False),
        ("", False),
        ("gzip;q=nonsense", False),
        ("*;q=0, gzip", True),
        ("*, gzip;q=0", False),
    ],
)
def test_accept_encoding_is_read_with_its_q_values(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok


def numbers(rows: int) -> str:
    return "n,label,day\n" + "".join(
        f"{i},row number {i},2024-01-{1 + i % 28:02d}\n" for i in range(rows)
    )


@pytest.fixture
def big(client: httpx.Client, rillet: Rillet) -> str:
    return upload(client, rillet, numbers(3000))


def raw_get(client: httpx.Client, url: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body as it came over the wire (not decoded)."""
    with client.stream("GET", url, headers=headers) as response:
        return response, b"".join(response.iter_raw())


@pytest.mark.parametrize(
    "route",
    [
        "rows?limit=1000",
        "rows?limit=1000&format=ndjson",
        "rows?limit=1000&format=csv",
        "export",
        "export?format=ndjson&n__gt=10",
        "stats",
        "groupby?by=day&agg=count,sum:n",
        "chart?mark=bar&x=day&y=n",
    ],
)
def test_bodies_are_gzipped_when_the_client_accepts_it(
    client: httpx.Client, big: str, route: str
) -> None:
    url = f"/datasets/{big}/{route}"
    plain, plain_bytes = raw_get(client, url, **{"Accept-Encoding": "identity"})
    packed, packed_bytes = raw_get(client, url, **{"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert plain.headers["vary"] == packed.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(packed_bytes) == plain_bytes
    assert len(packed_bytes) < len(plain_bytes) / 3
    assert packed.headers["etag"] == plain.headers["etag"][:-1] + '-gzip"'
    if "content-length" in packed.headers:
        assert int(packed.headers["content-length"]) == len(packed_bytes)


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0", "br", "compress, x-unknown", ""])
def test_a_client_that_does_not_accept_gzip_gets_plain_bodies(
    client: httpx.Client, big: str, accept: str
) -> None:
    response, body = raw_get(
        client, f"/datasets/{big}/rows?limit=500", **{"Accept-Encoding": accept}
    )
    assert response.status_code == 200 and "content-encoding" not in response.headers
    assert len(orjson.loads(body)["rows"]) == 500


def test_small_bodies_and_streams_that_end_short_go_plain(client: httpx.Client, big: str) -> None:
    gz = {"Accept-Encoding": "gzip"}
    small, body = raw_get(client, f"/datasets/{big}/rows?limit=1", **gz)
    assert len(body) < MIN_BYTES and "content-encoding" not in small.headers
    short, body = raw_get(client, f"/datasets/{big}/export?n=5", **gz)
    assert "content-encoding" not in short.headers and body.startswith(b"n,label,day")
    assert short.headers["content-length"] == str(len(body))


def test_events_and_errors_are_never_gzipped(client: httpx.Client, big: str) -> None:
    response, body = raw_get(client, f"/datasets/{big}/rows?nope=1", **{"Accept-Encoding": "gzip"})
    assert response.status_code == 400 and "content-encoding" not in response.headers
    assert orjson.loads(body)["error"]["code"] == "unknown_column"


def test_a_gzip_etag_gets_its_304_and_the_plain_one_too(client: httpx.Client, big: str) -> None:
    url = f"/datasets/{big}/rows?limit=1000"
    first, _ = raw_get(client, url, **{"Accept-Encoding": "gzip"})
    tag = first.headers["etag"]
    again, body = raw_get(client, url, **{"Accept-Encoding": "gzip", "If-None-Match": tag})
    assert again.status_code == 304 and body == b"" and again.headers["etag"] == tag
    plain_tag = tag.replace("-gzip", "")
    plain, _ = raw_get(client, url, **{"Accept-Encoding": "identity", "If-None-Match": plain_tag})
    assert plain.status_code == 304 and plain.headers["etag"] == plain_tag
    assert plain.headers["vary"] == "Accept-Encoding"
    # A cache asking for a client without gzip may hold both copies: only the plain one fits.
    both = f"{plain_tag}, {tag}"
    cached, _ = raw_get(client, url, **{"Accept-Encoding": "identity", "If-None-Match": both})
    assert cached.status_code == 304 and cached.headers["etag"] == plain_tag
    gzip_only, body = raw_get(client, url, **{"Accept-Encoding": "identity", "If-None-Match": tag})
    assert gzip_only.status_code == 200 and "content-encoding" not in gzip_only.headers


def test_a_gzipped_export_streams_in_pieces(client: httpx.Client, rillet: Rillet) -> None:
    dataset = upload(client, rillet, numbers(20_000))
    with client.stream(
        "GET", f"/datasets/{dataset}/export", headers={"Accept-Encoding": "gzip"}
    ) as response:
        pieces = list(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert "content-length" not in response.headers
    text = zlib.decompress(b"".join(pieces), 16 + zlib.MAX_WBITS).decode()
    assert text.count("\r\n") == 20_001


# --- HEAD ---------------------------------------------------------------------------------------

GET_PATHS = [r.path for r in ROUTES if r.method == "GET"]


QUERIES = {"groupby": "?by=day&agg=sum:n", "chart": "?mark=bar&x=day&y=n"}


def _concrete(path: str, dataset: str) -> str:
    job = "job_" + dataset.removeprefix("ds_")
    filled = (
        path.replace("<dataset_id>", dataset)
        .replace("<job_id>", job)
        .replace("<column:path>", "n")
        .replace("<path:path>", "app.css")
    )
    return filled + QUERIES.get(path.rsplit("/", 1)[-1], "")


@pytest.mark.parametrize("accept", ["gzip", "identity"])
@pytest.mark.parametrize("path", GET_PATHS)
def test_every_get_route_answers_head_with_its_headers_and_no_body(
    client: httpx.Client, big: str, path: str, accept: str
) -> None:
    url = _concrete(path, big)
    headers = {"Accept-Encoding": accept}
    client.get(url, headers=headers)  # what a first call keeps (insights' cache) is kept
    got = client.get(url, headers=headers)
    head = client.head(url, headers=headers)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    for name in ("content-type", "etag", "vary", "content-encoding", "link"):
        assert head.headers.get(name) == got.headers.get(name), name
    if "content-encoding" not in got.headers and "content-length" in got.headers:
        assert head.headers["content-length"] == got.headers["content-length"]


def test_head_needs_a_key_like_get(rillet: Rillet) -> None:
    with app_client(rillet, key=None) as bare:
        assert_error(bare.get("/datasets"), 401)
        assert bare.head("/datasets").status_code == 401
        assert bare.head("/health").status_code == 200
