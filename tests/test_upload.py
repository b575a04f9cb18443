"""Spooling request bodies to disk: multipart parsing, caps, binary and empty files, cleanup."""

from __future__ import annotations

import hashlib
import io
import itertools
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from streaming.errors import BadRequest, InvalidCSV, PayloadTooLarge, UnsupportedMediaType
from streaming.upload import MAX_HEADER_BLOCK, MultipartParser, Spooled, spool_upload

BOUNDARY = "rillet-boundary-7f3a"
CSV = b"id,name\r\n1,alpha\r\n2,beta\r\n"


class ChunkedReader(io.RawIOBase):
    """A body stream that returns at most ``size`` bytes per read, as a socket may."""

    def __init__(self, body: bytes, size: int) -> None:
        self.body, self.size, self.at = body, size, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        piece = self.body[self.at : self.at + min(n, self.size)]
        self.at += len(piece)
        return piece


class DisconnectingReader(io.BytesIO):
    """A body stream whose client goes away after the first read."""

    reads = 0

    def read(self, n: int | None = -1) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise ConnectionResetError("client disconnected")
        return super().read(n)


def environ(
    body: bytes, content_type: str = "text/csv", *, length: bool = True, stream=None
) -> dict:
    env = {
        "CONTENT_TYPE": content_type,
        "wsgi.input": stream if stream is not None else io.BytesIO(body),
    }
    if length:
        env["CONTENT_LENGTH"] = str(len(body))
    return env


def httpx_form(
    data: bytes, filename: str = "a.csv", fields: dict | None = None
) -> tuple[str, bytes]:
    """Content-Type and body as httpx encodes a form with a `file` part (the reference encoder)."""
    request = httpx.Request(
        "POST",
        "http://x/",
        data=fields,
        files={"file": (filename, data, "text/csv")},
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    return request.headers["Content-Type"], request.read()


def hand_form(*parts: tuple[str, bytes], close: bool = True) -> tuple[str, bytes]:
    """A multipart body from (header lines, content) pairs, for headers httpx would not write."""
    b = BOUNDARY.encode()
    body = b"".join(
        b"--" + b + b"\r\n" + headers.encode() + b"\r\n\r\n" + content + b"\r\n"
        for headers, content in parts
    )
    if close:
        body += b"--" + b + b"--\r\n"
    return f"multipart/form-data; boundary={BOUNDARY}", body


def events_of(body: bytes, *cuts: int) -> list[tuple]:
    """Parser events for ``body`` fed in pieces split at ``cuts``, adjacent data merged."""
    parser = MultipartParser(BOUNDARY.encode())
    edges = [0, *cuts, len(body)]
    raw = [
        e for start, end in itertools.pairwise(edges) for e in parser.feed(body[start:end])
    ] + parser.flush()
    merged: list[tuple] = []
    for event in raw:
        if event[0] == "data" and merged and merged[-1][0] == "data":
            merged[-1] = ("data", merged[-1][1] + event[1])
        else:
            merged.append(event)
    return merged


def expect_stored(spooled: Spooled, dest: Path, data: bytes, filename: str) -> None:
    assert dest.read_bytes() == data
    assert spooled == Spooled(filename, len(data), hashlib.sha256(data).hexdigest(), data[:65536])


# Multipart round trips


@pytest.mark.parametrize("chunk_size", range(1, 21))
def test_multipart_round_trips_at_every_chunk_size(tmp_path, chunk_size):
    content_type, body = httpx_form(CSV, fields={"note": "before the file"})
    dest = tmp_path / "up"
    spooled = spool_upload(environ(body, content_type), dest, max_bytes=1000, chunk_size=chunk_size)
    expect_stored(spooled, dest, CSV, "a.csv")


# Content that looks like, but is not, a delimiter: the boundary without the CRLF, dashes, CRs.
tricky_pieces = st.sampled_from(
    [
        b"\r\n--",
        b"\r\n",
        b"\r",
        b"\n",
        b"-",
        b"--",
        BOUNDARY.encode(),
        BOUNDARY.encode()[:-1],  # after b"\r\n--", a delimiter that falls one byte short
        b"--" + BOUNDARY.encode(),
        b"a,b\n",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(
        tricky_pieces | st.binary(max_size=20).filter(lambda b: b"\x00" not in b), min_size=1
    ),
    chunk_size=st.integers(1, 64),
    filename=st.text(
        st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters='"'),
        min_size=1,
        max_size=12,
    ),
)
def test_multipart_round_trips_any_content_and_chunk_size(tmp_path, pieces, chunk_size, filename):
    data = b"".join(pieces)
    assume(data and b"\r\n--" + BOUNDARY.encode() not in data)
    expected_name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    assume(expected_name not in ("", ".", ".."))
    content_type, body = httpx_form(data, filename=filename)
    dest = tmp_path / "up"
    spooled = spool_upload(
        environ(body, content_type), dest, max_bytes=10_000, chunk_size=chunk_size
    )
    expect_stored(spooled, dest, data, expected_name)


def test_boundary_crlf_and_header_block_split_anywhere_give_the_same_events():
    _, body = hand_form(
        ('Content-Disposition: form-data; name="note"', b"hi"),
        (
            'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            "Content-Type: text/csv",
            CSV,
        ),
    )
    whole = events_of(body)
    assert [e[0] for e in whole] == ["part", "data", "end_part", "part", "data", "end_part", "end"]
    assert whole[4] == ("data", CSV)
    for cut in range(1, len(body)):
        assert events_of(body, cut) == whole, cut


def test_dashed_boundary_not_after_crlf_is_content():
    data = b"--" + BOUNDARY.encode() + b"\n--" + BOUNDARY.encode() + b"--\r--" + BOUNDARY.encode()
    _, body = httpx_form(data)
    assert events_of(body)[1] == ("data", data)


def test_preamble_and_epilogue_are_ignored(tmp_path):
    content_type, body = httpx_form(CSV)
    body = b"this is a preamble\r\n" + body + b"and an epilogue"
    spooled = spool_upload(environ(body, content_type), tmp_path / "up", max_bytes=1000)
    assert spooled.bytes == len(CSV)


def test_parser_passes_data_on_as_it_arrives():
    parser = MultipartParser(BOUNDARY.encode())
    parser.feed(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n\r\n'.encode())
    for _ in range(50):
        released = b"".join(e[1] for e in parser.feed(b"x" * 4096) if e[0] == "data")
        # Only a tail that could begin a delimiter is held back.
        assert len(released) >= 4096 - len(BOUNDARY) - 4


def test_header_block_over_limit_is_bad_multipart():
    parser = MultipartParser(BOUNDARY.encode())
    parser.feed(f"--{BOUNDARY}\r\nX-Long: ".encode())
    with pytest.raises(BadRequest) as caught:
        for _ in range(MAX_HEADER_BLOCK // 1000 + 2):
            parser.feed(b"y" * 1000)
    assert caught.value.code == "bad_multipart"


def test_other_parts_are_read_and_ignored(tmp_path):
    content_type, body = hand_form(
        ('Content-Disposition: form-data; name="before"', b"x" * 200_000),
        ('Content-Disposition: form-data; name="file"; filename="data.csv"', CSV),
        ('Content-Disposition: form-data; name="file"; filename="second.csv"', b"ignored"),
        ('Content-Disposition: form-data; name="after"', b"y"),
    )
    dest = tmp_path / "up"
    expect_stored(
        spool_upload(environ(body, content_type), dest, max_bytes=1000), dest, CSV, "data.csv"
    )


@pytest.mark.parametrize(
    "disposition, filename",
    [
        ('filename="../../etc/passwd"', "passwd"),
        ('filename="C:\\x\\y.csv"', "y.csv"),  # raw path, as old Windows browsers send it
        ('filename="C:\\\\x\\\\y.csv"', "y.csv"),  # backslashes escaped, as httpx sends them
        ('filename="semi;colon \\"quoted\\".csv"', 'semi;colon "quoted".csv'),
        ("filename=plain.csv", "plain.csv"),
        ("filename=\"fallback.csv\"; filename*=UTF-8''na%C3%AFve%20data.csv", "naïve data.csv"),
        ("filename*=utf-8'en'..%2Fdir%2Fb.csv", "b.csv"),
        ('filename="/"', "given.csv"),
        ("", "given.csv"),
    ],
)
def test_filename_is_parsed_and_stripped_to_its_basename(tmp_path, disposition, filename):
    content_type, body = hand_form(
        (f'Content-Disposition: form-data; name="file"; {disposition}', CSV)
    )
    spooled = spool_upload(
        environ(body, content_type), tmp_path / "up", max_bytes=1000, name="dir/given.csv"
    )
    assert spooled.filename == filename


# Raw bodies


@pytest.mark.parametrize(
    "content_type", ["text/csv", "text/csv; charset=utf-8", "application/csv", "TEXT/PLAIN"]
)
def test_raw_body_is_the_file(tmp_path, content_type):
    dest = tmp_path / "up"
    spooled = spool_upload(
        environ(CSV, content_type), dest, max_bytes=1000, name="../sales.csv", chunk_size=7
    )
    expect_stored(spooled, dest, CSV, "sales.csv")


def test_raw_body_without_name_is_upload_csv(tmp_path):
    assert spool_upload(environ(CSV), tmp_path / "up", max_bytes=1000).filename == "upload.csv"


@pytest.mark.parametrize("read_size", [1, 5, 1000])
def test_chunked_body_without_content_length_is_read_to_the_end(tmp_path, read_size):
    dest = tmp_path / "up"
    stream = ChunkedReader(CSV, read_size)
    spooled = spool_upload(
        environ(CSV, length=False, stream=stream), dest, max_bytes=1000, chunk_size=8
    )
    expect_stored(spooled, dest, CSV, "upload.csv")


# Limits and rejections; every failure leaves no file at dest


@pytest.mark.parametrize("multipart", [False, True])
def test_content_length_over_the_cap_is_rejected_before_reading(tmp_path, multipart):
    content_type, body = hand_form(
        ('Content-Disposition: form-data; name="file"', b"x" * (2**20 + 200))
    )
    if not multipart:
        content_type, body = "text/csv", b"x" * 200
    env = environ(body, content_type)
    dest = tmp_path / "up"
    with pytest.raises(PayloadTooLarge) as caught:
        spool_upload(env, dest, max_bytes=100)
    assert env["wsgi.input"].tell() == 0
    assert not dest.exists()
    assert caught.value.to_dict()["error"] == {
        "code": "too_large",
        "message": f"upload exceeds the limit of {100 / 2**20:g} MiB",
        "limit_bytes": 100,
    }


@pytest.mark.parametrize("form", [httpx_form, None])
def test_body_over_the_cap_without_content_length_is_rejected_and_removed(tmp_path, form):
    data = b"a,b\n" * 300
    content_type, body = form(data) if form else ("text/csv", data)
    dest = tmp_path / "up"
    with pytest.raises(PayloadTooLarge):
        spool_upload(
            environ(body, content_type, length=False), dest, max_bytes=1000, chunk_size=100
        )
    assert not dest.exists()


def test_many_other_parts_count_against_the_cap(tmp_path):
    content_type, body = hand_form(
        ('Content-Disposition: form-data; name="padding"', b"p" * (2**20 + 10)),
        ('Content-Disposition: form-data; name="file"', CSV),
    )
    with pytest.raises(PayloadTooLarge):
        spool_upload(environ(body, content_type, length=False), tmp_path / "up", max_bytes=100)


@pytest.mark.parametrize("offset", [0, 5, 65535])
def test_nul_byte_in_the_head_is_rejected_as_binary(tmp_path, offset):
    data = b"a" * offset + b"\x00" + b"b" * 10
    content_type, body = httpx_form(data)
    dest = tmp_path / "up"
    with pytest.raises(UnsupportedMediaType, match=f"NUL byte at offset {offset}"):
        spool_upload(environ(body, content_type), dest, max_bytes=10**6, chunk_size=1000)
    assert not dest.exists()


def test_nul_byte_after_the_head_is_not_checked(tmp_path):
    data = b"a" * 65536 + b"\x00"
    spooled = spool_upload(environ(data), tmp_path / "up", max_bytes=10**6)
    assert spooled.bytes == len(data) and spooled.head == data[:65536]


@pytest.mark.parametrize("form", [httpx_form, None])
def test_empty_file_is_invalid_csv(tmp_path, form):
    content_type, body = form(b"") if form else ("text/csv", b"")
    dest = tmp_path / "up"
    with pytest.raises(InvalidCSV) as caught:
        spool_upload(environ(body, content_type), dest, max_bytes=1000)
    assert caught.value.code == "empty_file"
    assert not dest.exists()


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/octet-stream",
        "multipart/mixed; boundary=x",
        "text/csvx",
    ],
)
def test_other_content_types_are_unsupported(tmp_path, content_type):
    env = environ(CSV)
    if content_type is None:
        del env["CONTENT_TYPE"]
    else:
        env["CONTENT_TYPE"] = content_type
    with pytest.raises(UnsupportedMediaType, match="text/csv, application/csv, text/plain"):
        spool_upload(env, tmp_path / "up", max_bytes=1000)
    assert not (tmp_path / "up").exists()


def test_form_without_a_file_part_is_missing_file(tmp_path):
    content_type, body = hand_form(
        ('Content-Disposition: form-data; name="csv"; filename="a.csv"', CSV)
    )
    with pytest.raises(BadRequest, match="no part named 'file'") as caught:
        spool_upload(environ(body, content_type), tmp_path / "up", max_bytes=1000)
    assert caught.value.code == "missing_file"
    assert not (tmp_path / "up").exists()


_, FORM = httpx_form(CSV)


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("multipart/form-data", FORM),  # no boundary parameter
        (f"multipart/form-data; boundary={BOUNDARY}", FORM[:-8]),  # final boundary cut short
        (f"multipart/form-data; boundary={BOUNDARY}", FORM[: FORM.index(CSV) + 5]),  # ends mid-part
        (f"multipart/form-data; boundary={BOUNDARY}", FORM[:30]),  # ends in the header block
        (f"multipart/form-data; boundary={BOUNDARY}", b"no boundary at all"),
        (f"multipart/form-data; boundary={BOUNDARY}", f"--{BOUNDARY}junk\r\n\r\n".encode()),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            f"--{BOUNDARY}\r\nno colon\r\n\r\nx".encode(),
        ),
    ],
)
def test_malformed_multipart_is_bad_multipart(tmp_path, content_type, body):
    with pytest.raises(BadRequest) as caught:
        spool_upload(environ(body, content_type), tmp_path / "up", max_bytes=1000)
    assert caught.value.code == "bad_multipart"
    assert not (tmp_path / "up").exists()


def test_body_shorter_than_content_length_is_incomplete(tmp_path):
    env = environ(CSV)
    env["CONTENT_LENGTH"] = str(len(CSV) + 10)
    with pytest.raises(BadRequest) as caught:
        spool_upload(env, tmp_path / "up", max_bytes=1000)
    assert caught.value.code == "incomplete_body"
    assert not (tmp_path / "up").exists()


@pytest.mark.parametrize("length", [True, False])
def test_client_disconnect_removes_the_partial_file_and_propagates(tmp_path, length):
    content_type, body = httpx_form(CSV * 10)
    dest = tmp_path / "up"
    env = environ(body, content_type, length=length, stream=DisconnectingReader(body))
    with pytest.raises(ConnectionResetError):
        spool_upload(env, dest, max_bytes=1000, chunk_size=200)
    assert not dest.exists()
