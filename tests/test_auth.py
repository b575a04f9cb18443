"""Keys: every route but /health needs one; scopes; hashed at rest; constant-time compare."""

from __future__ import annotations

import hmac
from pathlib import Path

import httpx
import pytest

import server
from server import Rillet
from streaming.settings import Settings
from streaming.web.auth import KeyRing
from streaming.web.routes import ROUTES as TABLE
from tests.conftest import READ_KEY, WRITE_KEY, upload


# Every route of the table the app serves, so a new route is covered the day it is added.
def _template(path: str) -> str:
    for bottle_name, name in (("<dataset_id>", "{id}"), ("<job_id>", "{job}")):
        path = path.replace(bottle_name, name)
    return path.replace("<column:path>", "{column}")


ROUTES = sorted((r.method, _template(r.path)) for r in TABLE if r.scope is not None)
WRITE_ROUTES = sorted((r.method, _template(r.path)) for r in TABLE if r.scope == "write")
OPEN_ROUTES = [(r.method, r.path) for r in TABLE if r.scope is None]


def test_only_health_and_the_page_go_without_a_key() -> None:
    """The page and its files hold no data: it asks for a key before it shows any."""
    assert OPEN_ROUTES == [("GET", "/"), ("GET", "/static/<path:path>"), ("GET", "/health")]
    assert WRITE_ROUTES == [
        ("DELETE", "/datasets/{id}"),
        ("POST", "/datasets"),
        ("POST", "/datasets/{id}/sync"),
    ]


@pytest.fixture
def dataset(client: httpx.Client, rillet: Rillet) -> str:
    return upload(client, rillet, "a,b\n1,2\n")


def _url(path: str, dataset_id: str) -> str:
    job = "job_" + dataset_id.removeprefix("ds_")
    return path.format(id=dataset_id, job=job, column="a")


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_key"),
        ({"X-API-Key": WRITE_KEY[:-1]}, "invalid_key"),
        ({"X-API-Key": WRITE_KEY + "x"}, "invalid_key"),
        ({"Authorization": "Bearer nope"}, "invalid_key"),
        ({"Authorization": f"Basic {WRITE_KEY}"}, "missing_key"),
    ],
)
def test_every_route_but_health_needs_a_valid_key(
    client: httpx.Client, dataset: str, method: str, path: str, headers: dict[str, str], code: str
) -> None:
    bare = httpx.Client(transport=client._transport, base_url="http://rillet.test")
    response = bare.request(method, _url(path, dataset), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert WRITE_KEY not in response.text


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
def test_read_key_gets_403_on_write_routes(
    client: httpx.Client, dataset: str, method: str, path: str
) -> None:
    response = client.request(method, _url(path, dataset), headers={"X-API-Key": READ_KEY})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_health_needs_no_key(client: httpx.Client) -> None:
    bare = httpx.Client(transport=client._transport, base_url="http://rillet.test")
    assert bare.get("/health").status_code == 200


def test_keys_file_holds_hashes_only(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys.json")
    key_id, key = ring.create("write")
    stored = (tmp_path / "keys.json").read_text()
    assert key not in stored and key_id in stored
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    assert ring.authenticate(key) == "write"


def test_revoked_key_stops_working_without_restart(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys.json")
    old_id, old = ring.create("read")
    _, new = ring.create("read")
    other = KeyRing(tmp_path / "keys.json")  # as another process (the CLI) would
    other.revoke(old_id)
    assert ring.authenticate(new) == "read"
    with pytest.raises(Exception, match="not valid"):
        ring.authenticate(old)


def test_compare_runs_over_every_key_whichever_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = KeyRing(tmp_path / "keys.json", "k1:read,k2:read,k3:write")
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    for key in ("k1", "k3", "wrong"):
        calls.clear()
        try:
            ring.authenticate(key)
        except Exception:
            pass
        assert len(calls) == 3


def test_first_start_creates_one_write_key(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys.json")
    key = ring.ensure_one()
    assert key is not None and ring.authenticate(key) == "write"
    assert ring.ensure_one() is None


def test_keys_cli_creates_lists_and_revokes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert server.main(["keys", "create", "read"]) == 0
    created = capsys.readouterr().out
    key_id, key = created.split(" ")[0], created.split(": ")[1].split()[0]
    assert server.main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "read" in listing and key not in listing
    assert server.main(["keys", "revoke", key_id]) == 0
    assert KeyRing(tmp_path / "keys.json").listing() == []


def test_bad_api_keys_setting_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="scope 'admin'"):
        Rillet(Settings.from_env({}, api_keys="k:admin", data_dir=Path("/tmp/rillet-unused")))


def test_a_key_past_its_rate_gets_429_with_retry_after_and_others_do_not(
    tmp_path: Path,
) -> None:
    from server import create_app

    settings = Settings.from_env(
        {}, data_dir=tmp_path / "d", sync_worker=False, api_keys="a:read,b:read", rate_limit=60
    )  # bursts of 10
    app = create_app(Rillet(settings))
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://r.test") as c:
        codes = [c.get("/datasets", headers={"X-API-Key": "a"}).status_code for _ in range(12)]
        assert codes[:10] == [200] * 10 and codes[10:] == [429, 429]
        limited = c.get("/datasets", headers={"X-API-Key": "a"})
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert c.get("/datasets", headers={"X-API-Key": "b"}).status_code == 200
        assert c.get("/health").status_code == 200  # no key, no limit
