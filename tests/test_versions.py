"""Versions: each new data makes version N+1 beside N, reads pin a kept version, old ones go."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from charts.insights import cache_key
from server import Rillet
from streaming.read import Dataset
from streaming.store import CURRENT
from sync_worker import Worker, sync_all
from tests.conftest import app_client, assert_error, make_settings, upload

FIRST = "city,n\nOslo,1\nLima,2\nOslo,3\n"
SECOND = "city,n\nRome,10\nKyiv,20\n"
THIRD = "city,n\nPune,7\n"


def send(client: httpx.Client, dataset: str, text: str, **params: str) -> httpx.Response:
    """POST new data for a dataset as a raw CSV body."""
    return client.post(
        f"/datasets/{dataset}/sync",
        params=params,
        content=text.encode(),
        headers={"Content-Type": "text/csv"},
    )


def new_version(
    client: httpx.Client, rillet: Rillet, dataset: str, text: str, **params: str
) -> int:
    """New data, synced by the worker's own step; the version it made."""
    response = send(client, dataset, text, **params)
    assert response.status_code == 202, response.text
    sync_all(rillet.settings)
    job = client.get(response.json()["job"]["url"]).json()
    assert job["status"] == "done", job
    return int(client.get(f"/datasets/{dataset}").json()["version"])


def rows(client: httpx.Client, dataset: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(f"/datasets/{dataset}/rows", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["rows"])


@pytest.fixture
def kept_two(tmp_path: Path) -> Any:
    app = Rillet(make_settings(tmp_path / "data", versions_kept=2))
    with app_client(app) as client:
        yield app, client
    app.close()


def test_a_new_dataset_is_version_1_in_its_own_directory(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    meta = client.get(f"/datasets/{dataset}").json()
    assert meta["version"] == 1 and meta["rows"] == 3
    folder = rillet.store.dataset_dir(dataset)
    assert os.readlink(folder / CURRENT) == "v1" and (folder / "v1" / "meta.json").is_file()
    listed = client.get(f"/datasets/{dataset}/versions").json()["versions"]
    assert listed == [
        {
            "version": 1,
            "rows": 3,
            "bytes": meta["bytes"],
            "sha256": meta["source"]["sha256"],
            "created_at": meta["ready_at"],
            "mode": "replace",
        }
    ]
    assert client.get("/datasets").json()["datasets"][0]["version"] == 1


def test_new_data_makes_the_next_version_and_every_read_can_pin_either(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    assert new_version(client, rillet, dataset, SECOND) == 2
    assert [r["city"] for r in rows(client, dataset)] == ["Rome", "Kyiv"]
    assert [r["city"] for r in rows(client, dataset, version="1")] == ["Oslo", "Lima", "Oslo"]
    assert [r["city"] for r in rows(client, dataset, version="2")] == ["Rome", "Kyiv"]
    stats = client.get(f"/datasets/{dataset}/stats", params={"version": "1"}).json()
    assert stats["columns"]["n"]["sum"] == 6 and stats["rows_matched"] == 3
    assert client.get(f"/datasets/{dataset}/stats").json()["columns"]["n"]["sum"] == 30
    filtered = client.get(f"/datasets/{dataset}/stats", params={"version": "1", "city": "Oslo"})
    assert filtered.json()["rows_matched"] == 2
    groups = client.get(f"/datasets/{dataset}/groupby", params={"by": "city", "version": "1"})
    assert {g["city"]: g["count"] for g in groups.json()["groups"]} == {"Oslo": 2, "Lima": 1}
    chart = client.get(
        f"/datasets/{dataset}/chart", params={"x": "city", "mark": "bar", "version": "1"}
    ).json()
    assert sorted(v["city"] for v in chart["data"]["values"]) == ["Lima", "Oslo"]
    export = client.get(f"/datasets/{dataset}/export", params={"version": "1"})
    assert export.text.splitlines() == FIRST.strip().splitlines()
    assert client.get(f"/datasets/{dataset}", params={"version": "1"}).json()["rows"] == 3
    assert client.get(f"/datasets/{dataset}/charts", params={"version": "1"}).status_code == 200
    insights = client.get(f"/datasets/{dataset}/insights", params={"version": "1"})
    assert insights.status_code == 200, insights.text
    fetched = client.get("/fetch-data", params={"dataset": dataset, "version": "1"}).json()
    assert len(fetched["rows"]) == 3
    listed = client.get(f"/datasets/{dataset}/versions").json()["versions"]
    assert [v["version"] for v in listed] == [2, 1] and [v["rows"] for v in listed] == [2, 3]


def test_an_etag_names_the_version_it_was_answered_from(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    paths = [f"/datasets/{dataset}/rows", f"/datasets/{dataset}/stats", f"/datasets/{dataset}"]
    before = {p: client.get(p).headers["etag"] for p in paths}
    assert all(
        client.get(p, headers={"If-None-Match": before[p]}).status_code == 304 for p in paths
    )
    new_version(client, rillet, dataset, SECOND)
    for path in paths:
        now = client.get(path, headers={"If-None-Match": before[path]})
        assert now.status_code == 200 and now.headers["etag"] != before[path]
        pinned = client.get(path, params={"version": "1"})
        assert pinned.headers["etag"] not in (before[path], now.headers["etag"])


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "99999999999"])
def test_a_version_that_is_not_a_number_is_a_400(client, rillet, value: str) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    for path in ("rows", "stats", "groupby?by=city&", "export", "chart?x=city&", "versions"):
        route = f"/datasets/{dataset}/{path}"
        joiner = "" if route.endswith("&") else "?"
        assert_error(client.get(f"{route}{joiner}version={value}"), 400)


def test_a_version_never_made_is_a_404_naming_the_kept_ones(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    for path in ("", "/rows", "/stats", "/export", "/insights"):
        error = assert_error(
            client.get(f"/datasets/{dataset}{path}", params={"version": "2"}),
            404,
            "version_not_found",
        )
        assert "kept: 1" in error["message"]
    assert_error(client.get("/datasets/ds_000000000000/rows?version=1"), 404, "not_found")


def test_version_is_a_reserved_word_so_a_column_of_that_name_takes_an_operator(
    client, rillet
) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, "version,n\n1,a\n2,b\n")
    assert [r["n"] for r in rows(client, dataset, version__exact="2")] == ["b"]
    assert len(rows(client, dataset, version="1")) == 2  # the dataset's version, not a filter


def test_versions_beyond_the_kept_count_are_removed(kept_two) -> None:  # type: ignore[no-untyped-def]
    app, client = kept_two
    dataset = upload(client, app, FIRST)
    new_version(client, app, dataset, SECOND)
    assert new_version(client, app, dataset, THIRD) == 3
    listed = client.get(f"/datasets/{dataset}/versions").json()["versions"]
    assert [v["version"] for v in listed] == [3, 2]
    assert_error(client.get(f"/datasets/{dataset}/rows?version=1"), 404, "version_not_found")
    assert [r["city"] for r in rows(client, dataset, version="2")] == ["Rome", "Kyiv"]
    folder = app.store.dataset_dir(dataset)
    assert sorted(os.listdir(folder)) == [CURRENT, "v2", "v3"]
    assert os.listdir(app.settings.data_dir / "trash") == []


def test_a_reader_streaming_a_version_finishes_it_while_it_is_removed(tmp_path: Path) -> None:
    app = Rillet(make_settings(tmp_path / "data", versions_kept=1))
    text = "n,label\n" + "".join(f"{i},old{i}\n" for i in range(60_000))
    with app_client(app) as client:
        dataset = upload(client, app, text)
        folder = app.store.dataset_dir(dataset)
        url = f"/datasets/{dataset}/export?format=ndjson"
        with client.stream("GET", url) as response:
            chunks = response.iter_bytes()
            got = [next(chunks)]
            # Version 2 lands and version 1 is removed while the export is under way.
            assert new_version(client, app, dataset, "n,label\n1,new\n") == 2
            assert not (folder / "v1").exists()
            got += list(chunks)
        lines = b"".join(got).splitlines()
        assert len(lines) == 60_000 and lines[-1] == b'{"n":59999,"label":"old59999"}'
        assert rows(client, dataset) == [{"n": 1, "label": "new"}]
    app.close()


def test_a_page_chain_stays_in_the_version_it_began_in(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    first = client.get(f"/datasets/{dataset}/rows", params={"limit": "2"}).json()
    assert "version=1" in first["next"]
    filtered = client.get(f"/datasets/{dataset}/rows", params={"limit": "1", "city": "Oslo"})
    new_version(client, rillet, dataset, SECOND)
    assert [r["n"] for r in client.get(first["next"]).json()["rows"]] == [3]  # still version 1
    following = filtered.json()["next"]
    assert [r["n"] for r in client.get(following).json()["rows"]] == [3]
    cursor = httpx.URL(following).params["cursor"]
    stale = client.get(f"/datasets/{dataset}/rows", params={"city": "Oslo", "cursor": cursor})
    assert_error(stale, 400, "bad_cursor")  # made on version 1, asked of version 2


def test_insights_are_cached_per_version(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    new_version(client, rillet, dataset, FIRST.replace("Lima", "Lomé"))
    new_version(client, rillet, dataset, "city,n\nRome,4\n", mode="append")
    keys = set()
    for version in (1, 2, 3):
        with Dataset(rillet.store, dataset, version) as opened:
            keys.add(cache_key(opened, "model", None))
    assert len(keys) == 3


def _flatten(folder: Path) -> None:
    """Give a dataset the layout of one synced before versions: its files in its directory,
    no ``current``, no "version" in meta.json, no saved statistics."""
    for entry in os.listdir(folder / "v1"):
        os.rename(folder / "v1" / entry, folder / entry)
    os.rmdir(folder / "v1")
    os.unlink(folder / CURRENT)
    os.unlink(folder / "stats.state")
    meta = orjson.loads((folder / "meta.json").read_bytes())
    del meta["version"]
    (folder / "meta.json").write_bytes(orjson.dumps(meta))


def test_a_dataset_synced_before_versions_is_version_1_where_it_lies(kept_two) -> None:  # type: ignore[no-untyped-def]
    app, client = kept_two
    dataset = upload(client, app, FIRST)
    folder = app.store.dataset_dir(dataset)
    _flatten(folder)
    assert client.get(f"/datasets/{dataset}").json()["version"] == 1
    assert [
        v["version"] for v in client.get(f"/datasets/{dataset}/versions").json()["versions"]
    ] == [1]
    assert len(rows(client, dataset, version="1")) == 3
    assert new_version(client, app, dataset, SECOND) == 2
    assert {"meta.json", "rows.ndjson", "v2", CURRENT} <= set(os.listdir(folder))  # v1 flat
    assert [r["city"] for r in rows(client, dataset, version="1")] == ["Oslo", "Lima", "Oslo"]
    assert new_version(client, app, dataset, THIRD) == 3  # VERSIONS_KEPT=2: the flat v1 goes
    assert sorted(os.listdir(folder)) == [CURRENT, "v2", "v3"]
    assert_error(client.get(f"/datasets/{dataset}/rows?version=1"), 404, "version_not_found")


def test_a_sync_that_died_before_the_switch_leaves_the_current_version_serving(
    client, rillet
) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    folder = rillet.store.dataset_dir(dataset)
    shutil.copytree(folder / "v1", folder / "v2")  # renamed into place, never switched to
    (folder / "v2" / "rows.ndjson").write_bytes(b"garbage")
    assert client.get(f"/datasets/{dataset}").json()["version"] == 1
    assert [
        v["version"] for v in client.get(f"/datasets/{dataset}/versions").json()["versions"]
    ] == [1]
    assert_error(client.get(f"/datasets/{dataset}/rows?version=2"), 404, "version_not_found")
    assert len(rows(client, dataset)) == 3
    assert new_version(client, rillet, dataset, SECOND) == 2  # the leftover is replaced
    assert [r["city"] for r in rows(client, dataset)] == ["Rome", "Kyiv"]


def test_a_sync_that_died_after_publishing_is_done_not_made_twice(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    response = send(client, dataset, SECOND)
    job_id = response.json()["job"]["id"]
    sync_all(rillet.settings)
    # As if the sync had died between publishing version 2 and recording its job done.
    rillet.jobs.update(job_id, status="running")
    claim = rillet.jobs.lock(job_id)
    assert claim is not None
    rillet.jobs.conclude(claim, rillet.settings.sync_attempts, "a test")
    assert rillet.jobs.get(job_id)["status"] == "done"
    assert client.get(f"/datasets/{dataset}/versions").json()["versions"][0]["version"] == 2


def test_new_data_is_refused_while_the_dataset_syncs_and_for_bad_words(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    assert send(client, dataset, SECOND).status_code == 202  # queued, not yet synced
    assert_error(send(client, dataset, THIRD), 409, "sync_running")
    assert_error(send(client, dataset, THIRD, mode="append"), 409, "sync_running")
    sync_all(rillet.settings)
    assert_error(send(client, dataset, THIRD, mode="merge"), 400, "bad_parameter")
    assert_error(send(client, dataset, THIRD, colour="red"), 400, "bad_parameter")
    assert_error(send(client, dataset, THIRD, types="n:money"), 400)
    assert_error(send(client, "ds_000000000000", THIRD), 404)
    assert_error(
        client.post(
            f"/datasets/{dataset}/sync",
            content=b"\x00\x01\x02",
            headers={"Content-Type": "text/csv"},
        ),
        415,
    )
    listed = client.get(f"/datasets/{dataset}/versions").json()["versions"]
    assert [v["version"] for v in listed] == [2, 1]
    assert [p.name for p in (rillet.settings.data_dir / "uploads").iterdir()] == []


def test_new_data_replaces_a_dataset_whose_first_sync_failed(client, rillet) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/datasets", files={"file": ("t.csv", b"a\n1,2\n")})  # ragged
    dataset = response.json()["dataset"]["id"]
    sync_all(rillet.settings)
    assert client.get(f"/datasets/{dataset}").json()["status"] == "failed"
    assert_error(send(client, dataset, FIRST, mode="append"), 409, "not_ready")
    assert new_version(client, rillet, dataset, FIRST) == 1
    assert len(rows(client, dataset)) == 3


def test_deleting_a_dataset_deletes_every_version(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    new_version(client, rillet, dataset, SECOND)
    assert client.delete(f"/datasets/{dataset}").status_code == 204
    assert not rillet.store.dataset_dir(dataset).exists()
    assert_error(client.get(f"/datasets/{dataset}/rows?version=1"), 404)
    assert_error(client.get(f"/datasets/{dataset}/versions"), 404)


def test_new_data_left_by_a_request_that_died_is_swept(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, FIRST)
    uploads = rillet.settings.data_dir / "uploads"
    stale = uploads / f"{rillet.store.job_of(dataset)}.0badc0de.incoming"
    fresh = uploads / f"{rillet.store.job_of(dataset)}.0000beef.incoming"
    for path in (stale, fresh):
        path.write_bytes(b"city,n\n")
    os.utime(stale, (0, 0))
    Worker(rillet.settings, in_process=True).recover()
    assert not stale.exists() and fresh.exists()  # a live request may be writing this one


def test_a_dataset_with_a_source_takes_new_data_and_fetches_again(tmp_path: Path) -> None:
    from tests.fake_origin import FakeOrigin

    app = Rillet(make_settings(tmp_path / "data", source_allow_private=True))
    with FakeOrigin(token=None) as origin, app_client(app) as client:
        body = orjson.dumps({"source": {"url": origin.url("/data.csv")}})
        created = client.post(
            "/datasets", content=body, headers={"Content-Type": "application/json"}
        )
        dataset = created.json()["dataset"]["id"]
        sync_all(app.settings)
        fetched = rows(client, dataset)
        assert client.get(f"/datasets/{dataset}").json()["version"] == 1 and fetched
        assert new_version(client, app, dataset, SECOND) == 2  # new data from the body
        meta = client.get(f"/datasets/{dataset}").json()
        assert [r["city"] for r in rows(client, dataset)] == ["Rome", "Kyiv"]
        assert meta["source"]["url"] == origin.url("/data.csv")  # the source stays its own
        again = client.post(f"/datasets/{dataset}/sync")  # no body: the source, fetched again
        assert again.status_code == 202, again.text
        sync_all(app.settings)
        assert client.get(f"/datasets/{dataset}").json()["version"] == 3
        assert rows(client, dataset) == fetched
        assert [r["city"] for r in rows(client, dataset, version="2")] == ["Rome", "Kyiv"]
    app.close()
