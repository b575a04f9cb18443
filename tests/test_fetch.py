"""The fetch itself: https through the guarded backend (a local TLS origin with a certificate
made for the test) and the deadline that ends an origin that trickles."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from server import Rillet
from streaming.fetch import SourceFailed, fetch, guarded_client
from streaming.sources import SourceNotAllowed
from sync_worker import sync_all
from tests.conftest import app_client, make_settings
from tests.fake_origin import CSV, FakeOrigin

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture
def tls_origin(certificate: tuple[str, str]) -> Iterator[FakeOrigin]:
    with FakeOrigin(token=None, tls=certificate) as origin:
        yield origin


def test_an_https_source_is_fetched_when_its_authority_is_trusted(
    tmp_path: Path, tls_origin: FakeOrigin, certificate: tuple[str, str]
) -> None:
    url = tls_origin.url("/data.csv")
    assert url.startswith("https://127.0.0.1:")
    dest = tmp_path / "body.csv"
    got = fetch(
        url, {}, dest, max_bytes=2**20, allow_private=True, timeout=5, ca_file=certificate[0]
    )
    assert dest.read_bytes() == CSV and got.bytes == len(CSV) and got.etag == '"v1"'


def test_an_https_source_with_an_untrusted_certificate_fails(
    tmp_path: Path, tls_origin: FakeOrigin
) -> None:
    with pytest.raises(SourceFailed, match="certificate is not trusted"):
        fetch(tls_origin.url("/data.csv"), {}, tmp_path / "x", max_bytes=2**20,
              allow_private=True, timeout=5)  # fmt: skip
    assert not (tmp_path / "x").exists()


def test_https_connections_are_checked_by_the_guarded_backend_too(
    tls_origin: FakeOrigin, certificate: tuple[str, str]
) -> None:
    with (
        guarded_client(allow_private=False, timeout=2, ca_file=certificate[0]) as client,
        pytest.raises(SourceNotAllowed),
    ):
        client.get(tls_origin.url("/open.csv"))
    assert tls_origin.requests == []


def test_a_trickling_origin_meets_the_deadline(tmp_path: Path) -> None:
    """Never quiet for the per-read timeout (0.5 s), yet ended by the 1 s deadline."""
    with FakeOrigin(token=None) as origin:
        started = time.monotonic()
        with pytest.raises(SourceFailed, match="SOURCE_DEADLINE") as failed:
            fetch(origin.url("/trickle"), {}, tmp_path / "t.csv", max_bytes=2**20,
                  allow_private=True, timeout=0.5, deadline=1.0)  # fmt: skip
        elapsed = time.monotonic() - started
    assert failed.value.code == "source_timeout"
    assert 1.0 <= elapsed < 3.0
    assert not (tmp_path / "t.csv").exists() and not (tmp_path / "t.csv.part").exists()


def test_the_worker_fetches_an_https_source_with_source_ca_file(
    tmp_path: Path, tls_origin: FakeOrigin, certificate: tuple[str, str]
) -> None:
    app = Rillet(
        make_settings(tmp_path / "data", source_allow_private=True, source_ca_file=certificate[0])
    )
    with app_client(app) as client:
        body = {"source": {"url": tls_origin.url("/data.csv")}}
        created = client.post(
            "/datasets", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert created.status_code == 202, created.text
        sync_all(app.settings)
        job = client.get(created.json()["job"]["url"]).json()
        assert job["status"] == "done", job
        rows = client.get(f"/datasets/{job['dataset_id']}/rows").json()["rows"]
    app.close()
    assert [r["city"] for r in rows] == ["Lyon", "Nantes", "Lille"]
