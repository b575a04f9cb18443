"""Bad input against the real server: oversized requests, bad CSVs, clients that hang up.

DESIGN.md asks that every input a user can send gets a clear answer and leaves nothing broken,
so every case here ends by checking that the server process still runs and answers /health.
README's "What happens to awkward input" table lists the outcomes that ``BAD_CSVS`` pins.
"""

from __future__ import annotations

import codecs
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from streaming.convert import convert_csv
from streaming.errors import InvalidCSV
from tests.conftest import READ_KEY, WRITE_KEY, RunningServer, start_server, stop, wait_for

pytestmark = pytest.mark.integration

HEAD_BYTES = 65536  # the upload's binary sniff window (streaming/upload.py)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module, set up as the ``server`` fixture is (worker thread on)."""
    running = start_server(
        tmp_path_factory.mktemp("shared") / "data",
        API_KEYS=f"{READ_KEY}:read,{WRITE_KEY}:write",
        MAX_UPLOAD_MB="2",
        RATE_LIMIT="0",
        # The hang-up test drops ten exports back to back, faster than the server notices
        # each: past STREAMS_MAX the next would get a 429 (test_app tests that cap).
        STREAMS_MAX="32",
    )
    try:
        yield running
    finally:
        stop(running.process)


def api(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"X-API-Key": WRITE_KEY}, timeout=30)


def assert_still_serving(server: RunningServer) -> None:
    assert server.process.poll() is None, "the server process died"
    health = httpx.get(server.base_url + "/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"


def address(server: RunningServer) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").split(":")
    return host, int(port)


def exchange(server: RunningServer, request: bytes) -> tuple[int, str, bytes]:
    """Send a raw request, read until the server closes: (status, content type, body)."""
    with socket.create_connection(address(server), timeout=5) as raw:
        raw.sendall(request)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers.get("content-type", ""), body


def get_request(target: str, *extra_headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: rillet.test", f"X-API-Key: {WRITE_KEY}"]
    lines += [*extra_headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# 1. Request line and headers over MAX_HEADER_KB: waitress answers 431 before the app runs.


def test_request_line_and_headers_over_the_limit_get_a_431(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", API_KEYS=f"{WRITE_KEY}:write", MAX_HEADER_KB="1")
    try:
        for oversized in (
            get_request("/datasets", "X-Padding: " + "p" * 1100),  # one large header
            get_request("/datasets", *[f"X-Pad-{i}: {'p' * 40}" for i in range(30)]),  # many
            get_request("/datasets?name__contains=" + "u" * 1100),  # a long request line
        ):
            status, content_type, body = exchange(running, oversized)
            assert status == 431
            assert content_type.startswith("text/plain")  # waitress's own answer, not JSON
            assert b"Request Header Fields Too Large" in body
            # The next request, under the limit (the key is in a header), is served as ever.
            status, _, body = exchange(running, get_request("/datasets", "X-Padding: " + "p" * 800))
            assert (status, body) == (200, b'{"datasets":[]}')
        assert_still_serving(running)
    finally:
        stop(running.process)


def test_the_default_header_limit_takes_big_browser_headers_and_refuses_more(
    shared: RunningServer,
) -> None:
    # Browsers and curl send well under 8 KiB; MAX_HEADER_KB's default (32) leaves room for
    # long filter URLs. waitress's own default (256 KiB) would wait for the rest of the
    # headers below instead of answering.
    cookie = "Cookie: " + "; ".join(f"c{i}={'v' * 90}" for i in range(120))  # 11.5 KiB
    status, _, _ = exchange(shared, get_request("/health?id__in=" + "1," * 2000, cookie))
    assert status == 200
    # Exactly 32 KiB of request line and headers, the blank line that ends them not yet sent.
    # waitress answers once it has read that much and stops reading; it has read it all, so
    # it closes cleanly (bytes left unread would make the close a reset, losing the 431).
    start = get_request("/health").removesuffix(b"\r\n\r\n") + b"\r\nX-Padding: "
    status, content_type, _ = exchange(shared, start.ljust(32 * 1024, b"p"))
    assert (status, content_type) == (431, "text/plain; charset=utf-8")
    assert_still_serving(shared)


# 2. A corpus of bad CSVs, each with the outcome README documents.


@dataclass(frozen=True)
class Refused:
    """The upload itself is refused; nothing is queued or kept."""

    status: int
    code: str


@dataclass(frozen=True)
class Failed:
    """The upload is accepted (202); its sync fails with this error."""

    code: str
    line: int | None
    says: str  # a part of the message


@dataclass(frozen=True)
class Synced:
    """The sync succeeds: these columns (name, type), this many rows, ending with ``tail``."""

    columns: list[tuple[str, str]]
    rows: int
    tail: list[dict[str, Any]] = field(default_factory=list)


def _filler(rows: int) -> bytes:
    return b"".join(b"%d,filler %d\n" % (i, i) for i in range(rows))


FILLER = _filler(6000)  # 80 KiB: what follows it is past the binary sniff window
assert len(FILLER) > HEAD_BYTES
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06" + bytes(256)
LATIN_1 = "name,city\nJosé,Zürich\n".encode("latin-1")
LAST_FILLER = {"n": 5999, "label": "filler 5999"}

BAD_CSVS: list[tuple[str, bytes, dict[str, str], Refused | Failed | Synced]] = [
    ("empty file", b"", {}, Refused(422, "empty_file")),
    ("blank lines only", b"\n\r\n\n", {}, Failed("empty_file", None, "no header row")),
    ("header only", b"a,b,c\n", {}, Synced([("a", "null"), ("b", "null"), ("c", "null")], 0)),
    ("binary (PNG bytes with NUL)", PNG, {}, Refused(415, "not_csv")),
    (
        "UTF-16 with its BOM, without ?encoding",
        "a,é\n1,2\n".encode("utf-16"),
        {},
        Synced([("a", "integer"), ("é", "integer")], 1, [{"a": 1, "é": 2}]),
    ),
    (
        "UTF-16 big-endian with its BOM",
        codecs.BOM_UTF16_BE + "a,b\n1,x\n".encode("utf-16-be"),
        {},
        Synced([("a", "integer"), ("b", "string")], 1, [{"a": 1, "b": "x"}]),
    ),
    (
        "UTF-32 with its BOM",
        "a\n7\n".encode("utf-32"),
        {},
        Synced([("a", "integer")], 1, [{"a": 7}]),
    ),
    (
        "UTF-16 without a BOM or ?encoding",
        "a,b\n1,2\n".encode("utf-16-le"),
        {},
        Refused(415, "not_csv"),
    ),
    ("a NUL byte in a 3-byte file", b"a\x00\n", {}, Refused(415, "not_csv")),
    ("Latin-1 without ?encoding", LATIN_1, {}, Failed("bad_encoding", 2, "?encoding=cp1252")),
    (
        "Latin-1 with ?encoding=cp1252",
        LATIN_1,
        {"encoding": "cp1252"},
        Synced([("name", "string"), ("city", "string")], 1, [{"name": "José", "city": "Zürich"}]),
    ),
    (
        "a row with an extra field",
        b"a,b\n1,2\n3,4,5\n",
        {},
        Failed("ragged_row", 3, "3 fields, but the header has 2"),
    ),
    (
        "a row with extra empty fields",
        b"a,b\n1,2,,\n",
        {},
        Synced([("a", "integer"), ("b", "integer")], 1, [{"a": 1, "b": 2}]),
    ),
    (
        "a row with fewer fields",
        b"a,b,c\n1,2,3\n4\n",
        {},
        Synced(
            [("a", "integer"), ("b", "integer"), ("c", "integer")],
            2,
            [{"a": 1, "b": 2, "c": 3}, {"a": 4, "b": None, "c": None}],
        ),
    ),
    (
        "duplicate and empty header names",
        b"a,a,, a ,b\n1,2,3,4,5\n",
        {},
        Synced(
            [(name, "integer") for name in ("a", "a_2", "column_3", "a_3", "b")],
            1,
            [{"a": 1, "a_2": 2, "column_3": 3, "a_3": 4, "b": 5}],
        ),
    ),
    (
        "a 1 MB field (over CSV_FIELD_LIMIT_KB)",
        b"a,b\n1,ok\n2," + b"x" * 2**20 + b"\n",
        {},
        Failed("invalid_csv", 3, "field larger than field limit"),
    ),
    (
        "30-digit integers",
        b"n\n123456789012345678901234567890\n-1\n",
        {},
        Synced([("n", "string")], 2, [{"n": "123456789012345678901234567890"}, {"n": "-1"}]),
    ),
    (
        "a UTF-8 BOM",
        b"\xef\xbb\xbfid,name\n1,x\n",
        {},
        Synced([("id", "integer"), ("name", "string")], 1, [{"id": 1, "name": "x"}]),
    ),
    (
        "CRLF line ends",
        b'id,note\r\n1,"two\r\nlines"\r\n2,plain\r\n',
        {},
        Synced(
            [("id", "integer"), ("note", "string")],
            2,
            [{"id": 1, "note": "two\r\nlines"}, {"id": 2, "note": "plain"}],
        ),
    ),
    ("a NUL byte in the first 64 KiB", b"a,b\n1,x\x00y\n", {}, Refused(415, "not_csv")),
    (
        "a NUL byte after the first 64 KiB",
        b"n,label\n" + FILLER + b"6000,x\x00y\n",
        {},
        Synced(
            [("n", "integer"), ("label", "string")],
            6001,
            [LAST_FILLER, {"n": 6000, "label": "x\x00y"}],
        ),
    ),
    (
        "a quote never closed",
        b'a,b\n1,"open\n2,x\n3,y\n',
        {},
        Failed("invalid_csv", 2, "line 2: unexpected end of data; the record runs on to line 4"),
    ),
    (
        "a quote never closed, far from the end",
        b'n,label\n1,"open\n' + _filler(12_000),  # 170 KiB swallowed into one field
        {},
        Failed("invalid_csv", 2, "line 2: field larger than field limit"),
    ),
    (
        "text after a closing quote",
        b'a,b\n1,"x"y\n',
        {},
        Failed("invalid_csv", 2, "',' expected after '\"'"),
    ),
]


@pytest.mark.parametrize(
    ("body", "query", "expected"),
    [pytest.param(body, query, expected, id=name) for name, body, query, expected in BAD_CSVS],
)
def test_each_bad_csv_gets_its_documented_outcome_and_the_server_goes_on(
    shared: RunningServer,
    body: bytes,
    query: dict[str, str],
    expected: Refused | Failed | Synced,
) -> None:
    uploads = shared.data_dir / "uploads"
    kept_before = set(os.listdir(uploads)) if uploads.exists() else set()
    with api(shared) as client:
        response = client.post(
            "/datasets",
            params={"name": "bad.csv", **query},
            content=body,
            headers={"Content-Type": "text/csv"},
        )
        if isinstance(expected, Refused):
            assert response.status_code == expected.status, response.text
            assert response.json()["error"]["code"] == expected.code
            assert set(os.listdir(uploads)) == kept_before  # no spool file left behind
            assert client.get("/health").json()["jobs"] == {"queued": 0, "running": 0}
        else:
            assert response.status_code == 202, response.text
            job_url = response.json()["job"]["url"]
            dataset_id = response.json()["dataset"]["id"]
            job = wait_for(lambda: _finished(client.get(job_url).json()), timeout=15)
            metadata = client.get(f"/datasets/{dataset_id}").json()
            if isinstance(expected, Failed):
                assert job["status"] == "failed", job
                assert job["error"]["code"] == expected.code
                assert job["error"]["line"] == expected.line
                assert expected.says in job["error"]["message"]
                assert metadata["status"] == "failed"
            else:
                assert job["status"] == "done", job
                assert [(c["name"], c["type"]) for c in metadata["columns"]] == expected.columns
                assert metadata["rows"] == expected.rows
                offset = expected.rows - len(expected.tail)
                page = client.get(f"/datasets/{dataset_id}/rows", params={"offset": offset})
                assert page.json()["rows"] == expected.tail
    assert_still_serving(shared)


def _finished(job: dict[str, Any]) -> dict[str, Any] | None:
    return job if job["status"] in ("done", "failed") else None


@pytest.mark.parametrize(
    ("data", "line", "ends_on"),
    [
        pytest.param(b'a,b\n1,"open\n2,x\n3,y\n', 2, 4, id="unclosed quote"),
        pytest.param(b'"a,b\n1,2\n', 1, 2, id="unclosed quote in the header"),
        pytest.param(
            b'a,b\n\n1,"x\ny"\n2,"x"y\n3,z\n', 5, None, id="after a blank line and a quoted newline"
        ),
        pytest.param(b'a,b\n1,"x\ny"z\n', 2, 3, id="text after a quote closed on the next line"),
    ],
)
def test_a_record_the_csv_module_cannot_read_fails_naming_the_line_it_starts_on(
    tmp_path: Path, data: bytes, line: int, ends_on: int | None
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "in.csv").write_bytes(data)
    with pytest.raises(InvalidCSV) as failure:
        convert_csv(tmp_path / "in.csv", tmp_path / "out")
    assert failure.value.line == line
    assert failure.value.message.startswith(f"line {line}: ")
    assert (f"runs on to line {ends_on} " in failure.value.message) == (ends_on is not None)


# 3. Clients that hang up: no file, connection or thread is left behind.

STREAMS = {
    "export as CSV": "/datasets/{id}/export",
    "export as NDJSON": "/datasets/{id}/export?format=ndjson",
    "a 10,000-row NDJSON page": "/datasets/{id}/rows?limit=10000&offset=100000&format=ndjson",
    "a 10,000-row CSV page": "/datasets/{id}/rows?limit=10000&format=csv",
    "a sorted 10,000-row JSON page": "/datasets/{id}/rows?limit=10000&sort=-n",
}


@pytest.fixture(scope="module")
def big_dataset(shared: RunningServer) -> str:
    """150,000 rows, 1.9 MB of CSV: an export takes a while and overflows waitress's buffers."""
    text = "n,label\n" + "".join(f"{i},l{i}\n" for i in range(150_000))  # under 2 MB
    with api(shared) as client:
        response = client.post("/datasets", files={"file": ("big.csv", text)})
        assert response.status_code == 202, response.text
        job_url = response.json()["job"]["url"]
        job = wait_for(lambda: _finished(client.get(job_url).json()), timeout=30)
        assert job["status"] == "done", job
        return str(response.json()["dataset"]["id"])


def _hang_up(server: RunningServer, target: str, *, read_first: bool) -> None:
    """Ask for ``target`` and drop the connection: after its first bytes, or before any."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as raw:  # closed on a failure too
        # A small receive window, so the server is still writing when the client leaves.
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(10)
        raw.connect(address(server))
        raw.sendall(get_request(target))
        if read_first:
            received = b""
            while b"\r\n\r\n" not in received:
                received += raw.recv(1024)
            assert received.startswith(b"HTTP/1.1 200 "), received[:200]
        else:
            # Linger 0: close sends a RST at once, while the server still works on the answer.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _fewest_open_fds(pid: int) -> int:
    """The open fds at the quietest of a few looks (a closing connection may still count)."""
    counts = []
    for _ in range(5):
        counts.append(_open_fds(pid))
        time.sleep(0.02)
    return min(counts)


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.parametrize("target", STREAMS.values(), ids=STREAMS.keys())
def test_clients_hanging_up_mid_response_leave_no_fd_or_thread_behind(
    shared: RunningServer, big_dataset: str, target: str
) -> None:
    pid = shared.process.pid
    url = target.format(id=big_dataset)
    assert_still_serving(shared)
    fds_before = _fewest_open_fds(pid)
    threads_before = _threads(pid)
    # More hang-ups than waitress has threads (8): a thread left stuck by each would leave
    # none to answer /health below.
    for i in range(10):
        _hang_up(shared, url, read_first=i % 2 == 0)
    wait_for(lambda: _open_fds(pid) == fds_before, timeout=10)
    wait_for(lambda: _threads(pid) == threads_before, timeout=10)
    health = httpx.get(shared.base_url + "/health", timeout=10).json()
    assert health["open_streams"] == 0
    assert_still_serving(shared)
