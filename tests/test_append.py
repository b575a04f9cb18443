"""Append: rows added as the next version, equal to a fresh sync of the whole, old rows unread."""

from __future__ import annotations

import math
import os
import signal
from bisect import bisect_left, bisect_right
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import Rillet
from streaming import column_store
from streaming.column_read import open_columns
from streaming.read import Dataset
from streaming.sketches import EXACT_LIMIT, HyperLogLog
from sync_worker import sync_all
from tests.conftest import (
    READ_KEY,
    WRITE_KEY,
    app_client,
    assert_error,
    make_settings,
    start_server,
    stop,
    upload,
    wait_for,
)
from tests.test_versions import _flatten, new_version, send

HEADER = "id,amount,price,day,at,ok,city,note\n"


def typed_rows(start: int, count: int) -> str:
    """Rows of every type, with nulls here and there."""
    out = []
    for i in range(start, start + count):
        amount = "" if i % 7 == 3 else str((i * 37) % 1000 - 300)
        price = "NA" if i % 11 == 5 else f"{(i * 13) % 97 / 4:.2f}"
        day = f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}"
        at = f"2024-03-{i % 28 + 1:02d}T{i % 24:02d}:{i % 60:02d}:00Z"
        ok = ("true", "false", "")[i % 3]
        out.append(f"{i},{amount},{price},{day},{at},{ok},c{i % 9},note {i * 31 % 1000}\n")
    return "".join(out)


def export(client: httpx.Client, dataset: str, **params: str) -> list[Any]:
    response = client.get(f"/datasets/{dataset}/export", params={"format": "ndjson", **params})
    assert response.status_code == 200, response.text
    return [orjson.loads(line) for line in response.content.splitlines()]


def stats(client: httpx.Client, dataset: str, **params: str) -> dict[str, Any]:
    response = client.get(f"/datasets/{dataset}/stats", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_same_stats(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Equal, field for field; stddev (of float columns, by Welford's update in another
    order) to the last bits of a double."""
    assert got["rows_matched"] == want["rows_matched"]
    assert got["columns"].keys() == want["columns"].keys()
    for name, column in want["columns"].items():
        mine = dict(got["columns"][name])
        theirs = dict(column)
        a, b = mine.pop("stddev", None), theirs.pop("stddev", None)
        assert (a is None) == (b is None), name
        if a is not None:
            assert math.isclose(a, b, rel_tol=1e-12), (name, a, b)
        assert mine == theirs, name


EXACT_FIELDS = ("type", "count", "nulls", "min", "max", "sum", "mean", "min_length", "max_length")


def assert_within_bounds(got: dict[str, Any], want: dict[str, Any], rows: list[Any]) -> None:
    """Exact fields equal to a fresh sync's; the sketches within their bounds of the truth,
    counted here from the rows."""
    for name, column in want["columns"].items():
        mine = got["columns"][name]
        assert {k: mine.get(k) for k in EXACT_FIELDS} == {k: column.get(k) for k in EXACT_FIELDS}
        values = [r[name] for r in rows if r[name] is not None]
        truth = Counter(values)
        bounds = mine.get("error_bounds", {})
        if mine["distinct_exact"]:
            assert mine["distinct"] == len(truth), name
        else:
            assert abs(mine["distinct"] - len(truth)) <= 5 * bounds["distinct"] * len(truth), name
        for top in mine["top"]:
            assert truth[top["value"]] - bounds.get("top", 0) <= top["count"] <= truth[top["value"]]
        if mine.get("quantiles"):
            ordered = sorted(values)
            for key, value in mine["quantiles"].items():
                rank = bisect_right(ordered, value) / len(ordered)
                wanted = int(key[1:]) / 100
                slack = bounds.get("quantiles", 0) + 1 / len(ordered)
                assert bisect_left(ordered, value) / len(ordered) - slack <= wanted <= rank + slack


QUESTIONS = (  # answered from the columns
    ("groupby", {"by": "city", "agg": "count,sum:amount,mean:price,min:day,max:at"}),
    ("groupby", {"by": "ok,city", "agg": "count,distinct:day"}),
    ("stats", {"amount__gt": "0", "columns": "amount,price,day"}),
    ("rows", {"price__lt": "5", "limit": "1000", "count": "1", "columns": "id"}),
    ("rows", {"sort": "-amount", "limit": "20"}),
)


def assert_same_answers(client: httpx.Client, dataset: str, whole: str) -> None:
    for route, params in QUESTIONS:
        got = client.get(f"/datasets/{dataset}/{route}", params=params).json()
        want = client.get(f"/datasets/{whole}/{route}", params=params).json()
        for answer in (got, want):
            answer.pop("dataset"), answer.pop("next", None)  # they name their dataset
        assert got == want, (route, params)


def test_appended_rows_follow_the_old_ones_and_equal_a_fresh_sync(client, rillet) -> None:  # type: ignore[no-untyped-def]
    base, more = typed_rows(0, 300), typed_rows(300, 120)
    dataset = upload(client, rillet, HEADER + base)
    assert new_version(client, rillet, dataset, HEADER + more, mode="append") == 2
    whole = upload(client, rillet, HEADER + base + more)
    assert export(client, dataset) == export(client, whole)
    assert len(export(client, dataset, version="1")) == 300
    assert_same_stats(stats(client, dataset), stats(client, whole))
    assert_same_answers(client, dataset, whole)
    meta = client.get(f"/datasets/{dataset}").json()
    fresh = client.get(f"/datasets/{whole}").json()
    assert meta["columns"] == fresh["columns"] and meta["rows"] == 420
    assert meta["columns_format"] == 1 and meta["version"] == 2
    versions = client.get(f"/datasets/{dataset}/versions").json()["versions"]
    assert [(v["version"], v["rows"], v["mode"]) for v in versions] == [
        (2, 420, "append"),
        (1, 300, "replace"),
    ]
    # The old rows were not copied: the two versions share the file, each reading its own part.
    one, two = (rillet.store.resolve(dataset, n)[1] / "rows.ndjson" for n in (1, 2))
    assert os.stat(one).st_ino == os.stat(two).st_ino
    for number in (1, 2):  # each answers from the columns, as far as its block table goes
        with Dataset(rillet.store, dataset, number) as opened:
            reader = open_columns(opened)
            assert reader is not None and reader.rows == opened.rows
            reader.close()
    assert_same_stats(
        stats(client, dataset, version="1"), stats(client, upload(client, rillet, HEADER + base))
    )


def test_what_a_crashed_append_left_after_the_ends_is_cut_off(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, HEADER + typed_rows(0, 50))
    folder = rillet.store.resolve(dataset)[1]
    for name in ("rows.ndjson", "rows.idx", "columns.bin"):  # a sync killed mid-append
        with open(folder / name, "ab") as f:
            f.write(b"\x00half-written\n" * 100)
    assert len(export(client, dataset)) == 50  # the current version reads its own part alone
    assert_same_answers(client, dataset, upload(client, rillet, HEADER + typed_rows(0, 50)))
    new_version(client, rillet, dataset, HEADER + typed_rows(50, 30), mode="append")
    whole = upload(client, rillet, HEADER + typed_rows(0, 80))
    assert export(client, dataset) == export(client, whole)
    assert_same_answers(client, dataset, whole)


def test_appends_cut_the_partial_last_block_again(client, rillet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(column_store, "BLOCK_ROWS", 64)
    dataset = upload(client, rillet, HEADER + typed_rows(0, 100))
    for start, count in ((100, 50), (150, 3), (153, 200)):
        new_version(client, rillet, dataset, HEADER + typed_rows(start, count), mode="append")
        whole = upload(client, rillet, HEADER + typed_rows(0, start + count))
        assert_same_answers(client, dataset, whole)
        assert_same_stats(stats(client, dataset), stats(client, whole))
        table = orjson.loads((rillet.store.resolve(dataset)[1] / "columns.json").read_bytes())
        sizes = [rows for _, rows in table["blocks"]]
        assert sizes[:-1] == [64] * (len(sizes) - 1) and sum(sizes) == start + count
    # An older version still answers from its own part of the shared columns.bin.
    for number in (2, 3, 4):
        with Dataset(rillet.store, dataset, number) as opened:
            reader = open_columns(opened)  # checked against its own block table: not damaged
            assert reader is not None and reader.rows == opened.rows
            reader.close()
    first = upload(client, rillet, HEADER + typed_rows(0, 150))
    for route, params in QUESTIONS:
        got = client.get(f"/datasets/{dataset}/{route}", params={**params, "version": "2"})
        want = client.get(f"/datasets/{first}/{route}", params=params)
        assert {**got.json(), "dataset": 0, "next": 0} == {**want.json(), "dataset": 0, "next": 0}


@pytest.mark.parametrize(
    "header",
    [
        "amount,id,price,day,at,ok,city,note",  # another order
        "id,amount,price,day,at,ok,city",  # a column missing
        "id,amount,price,day,at,ok,city,note,extra",  # one more
        "ID,amount,price,day,at,ok,city,note",  # another name
    ],
)
def test_another_header_is_a_422_and_changes_nothing(client, rillet, header: str) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, HEADER + typed_rows(0, 10))
    error = assert_error(
        send(client, dataset, header + "\n" + typed_rows(10, 2), mode="append"),
        422,
        "header_mismatch",
    )
    assert "'id'" in error["message"] and error["line"] == 1
    assert client.get("/health").json()["jobs"] == {"queued": 0, "running": 0}
    assert os.listdir(rillet.settings.data_dir / "uploads") == []
    assert [
        v["version"] for v in client.get(f"/datasets/{dataset}/versions").json()["versions"]
    ] == [1]
    assert len(export(client, dataset)) == 10


def test_the_header_is_read_as_the_sync_reads_it(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, "a;b\n1;x\n", delimiter=";")
    semicolons = "a;b\n2;y\n"
    assert new_version(client, rillet, dataset, semicolons, mode="append") == 2  # sniffed
    headless = upload(client, rillet, "1,x\n", header="false")
    assert new_version(client, rillet, headless, "2,y\n3,z\n", mode="append", header="false") == 2
    assert [r["column_2"] for r in export(client, headless)] == ["x", "y", "z"]
    assert_error(
        send(client, headless, "2,y,9\n", mode="append", header="false"), 422, "header_mismatch"
    )


def test_a_value_that_does_not_fit_its_column_fails_the_job_and_changes_nothing(
    client, rillet
) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, HEADER + typed_rows(0, 10))
    folder = rillet.store.resolve(dataset)[1]
    size = os.stat(folder / "rows.ndjson").st_size
    response = send(
        client, dataset, HEADER + typed_rows(10, 3) + "13,1.5,1,2024-01-01,,,c,n\n", mode="append"
    )
    assert response.status_code == 202
    sync_all(rillet.settings)
    job = client.get(response.json()["job"]["url"]).json()
    assert job["status"] == "failed" and job["error"]["code"] == "type_mismatch"
    assert "'amount'" in job["error"]["message"] and "'1.5'" in job["error"]["message"]
    assert job["error"]["line"] == 5
    assert client.get(f"/datasets/{dataset}").json()["version"] == 1
    assert len(export(client, dataset)) == 10 and os.stat(folder / "rows.ndjson").st_size == size
    assert os.listdir(rillet.settings.data_dir / "tmp") == []


def test_datetimes_keep_their_offset_style(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, "at\n2024-01-01T10:00:00Z\n")
    response = send(client, dataset, "at\n2024-01-02T10:00:00\n", mode="append")
    sync_all(rillet.settings)
    job = client.get(response.json()["job"]["url"]).json()
    assert job["status"] == "failed" and job["error"]["code"] == "type_mismatch", job


def test_a_column_of_nulls_takes_the_appended_type(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, "a,b\n1,\n2,\n")
    assert new_version(client, rillet, dataset, "a,b\n3,2024-05-01\n4,\n", mode="append") == 2
    whole = upload(client, rillet, "a,b\n1,\n2,\n3,2024-05-01\n4,\n")
    assert_same_stats(stats(client, dataset), stats(client, whole))
    assert client.get(f"/datasets/{dataset}").json()["columns"][1] == {
        "name": "b",
        "type": "date",
        "nulls": 3,
    }
    groups = client.get(f"/datasets/{dataset}/groupby", params={"by": "b"}).json()
    assert groups == {
        **client.get(f"/datasets/{whole}/groupby", params={"by": "b"}).json(),
        "dataset": dataset,
    }


def test_an_append_to_a_dataset_synced_before_versions(client, rillet) -> None:  # type: ignore[no-untyped-def]
    base, more = typed_rows(0, 200), typed_rows(200, 50)
    dataset = upload(client, rillet, HEADER + base)
    _flatten(rillet.store.dataset_dir(dataset))  # no stats.state either: rebuilt once
    assert new_version(client, rillet, dataset, HEADER + more, mode="append") == 2
    whole = upload(client, rillet, HEADER + base + more)
    assert export(client, dataset) == export(client, whole)
    assert_same_stats(stats(client, dataset), stats(client, whole))
    assert_same_answers(client, dataset, whole)
    assert len(export(client, dataset, version="1")) == 200


def test_a_multipart_append_with_a_gzip_body(client, rillet) -> None:  # type: ignore[no-untyped-def]
    import gzip

    dataset = upload(client, rillet, "a,b\n1,x\n")
    body = gzip.compress(b"a,b\n2,y\n")
    response = client.post(
        f"/datasets/{dataset}/sync",
        params={"mode": "append"},
        files={"file": ("more.csv.gz", body, "application/gzip")},
    )
    assert response.status_code == 202, response.text
    sync_all(rillet.settings)
    assert export(client, dataset) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    meta = client.get(f"/datasets/{dataset}").json()
    assert meta["source"]["filename"] == "more.csv.gz" and meta["source"]["format"] == "csv.gz"


# --- a random split -------------------------------------------------------------------------

NUMBERS = st.one_of(st.integers(-(10**6), 10**6).map(lambda n: f"{n / 8:.3f}"), st.just(""))
INTEGERS = st.one_of(st.integers(-(2**40), 2**40).map(str), st.just(""))
DATES = st.one_of(st.dates().map(lambda d: d.isoformat()), st.just(""))
WORDS = st.one_of(st.text("abcxyz ", min_size=1, max_size=6).map(lambda t: "w" + t), st.just("NA"))
ROW = st.tuples(INTEGERS, NUMBERS, DATES, WORDS, st.sampled_from(["true", "false", ""]))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(ROW, min_size=2, max_size=60), cut=st.floats(0.01, 0.99))
def test_any_split_into_a_base_and_an_append_equals_the_whole(tmp_path_factory, rows, cut) -> None:  # type: ignore[no-untyped-def]
    # Each column's first value is not null, so a base part is never a column of nulls alone
    # that a fresh sync would type from values the base lacks.
    rows[0] = ("1", "0.500", "2024-01-01", "wfirst", "true")
    lines = [",".join(r) + "\n" for r in rows]
    split = max(1, min(len(lines) - 1, int(len(lines) * cut)))
    head = "n,x,d,w,b\n"
    app = Rillet(make_settings(tmp_path_factory.mktemp("split") / "data"))
    with app_client(app) as client:
        dataset = upload(client, app, head + "".join(lines[:split]))
        assert new_version(client, app, dataset, head + "".join(lines[split:]), mode="append") == 2
        whole = upload(client, app, head + "".join(lines))
        assert export(client, dataset) == export(client, whole)
        assert_same_stats(stats(client, dataset), stats(client, whole))
        for params in ({"by": "w", "agg": "count,sum:n,mean:x"}, {"by": "b,d", "agg": "max:x"}):
            got = client.get(f"/datasets/{dataset}/groupby", params=params).json()
            want = client.get(f"/datasets/{whole}/groupby", params=params).json()
            assert got["groups"] == want["groups"]
    app.close()


# --- across processes -------------------------------------------------------------------------


@pytest.mark.integration
def test_sketches_merge_across_sync_processes(tmp_path: Path) -> None:
    """The base and the append are synced by two processes of the real server's worker, each
    with its own string-hash salt: distinct counts of the merged sketches still hold."""
    words = [f"word-{i}" for i in range(2 * EXACT_LIMIT)]  # past the exact limit: sketched
    base = "w,n\n" + "".join(f"{w},{i}\n" for i, w in enumerate(words))
    more = "w,n\n" + "".join(f"{w},{i}\n" for i, w in enumerate(reversed(words)))  # the same
    running = start_server(tmp_path / "data", API_KEYS=f"{READ_KEY}:read,{WRITE_KEY}:write")
    try:
        with httpx.Client(
            base_url=running.base_url, headers={"X-API-Key": WRITE_KEY}, timeout=30
        ) as client:
            created = client.post("/datasets", files={"file": ("w.csv", base)})
            dataset = created.json()["dataset"]["id"]
            job_url = created.json()["job"]["url"]
            wait_for(lambda: client.get(job_url).json()["status"] == "done")
            appended = send(client, dataset, more, mode="append")
            assert appended.status_code == 202, appended.text
            wait_for(lambda: client.get(f"/datasets/{dataset}").json()["version"] == 2)
            column = client.get(f"/datasets/{dataset}/stats").json()["columns"]["w"]
        assert column["count"] == 4 * EXACT_LIMIT and column["distinct_exact"] is False
        bound = 4 * HyperLogLog.RELATIVE_ERROR * len(words)
        assert abs(column["distinct"] - len(words)) <= bound, column["distinct"]
    finally:
        stop(running.process)


def test_values_written_another_way_are_a_type_mismatch(client, rillet) -> None:  # type: ignore[no-untyped-def]
    dataset = upload(client, rillet, "day,price\n31/01/2024,$5\n")
    for body in ("day,price\n01/31/2024,$6\n", "day,price\n31/01/2024,7\n"):
        response = send(client, dataset, body, mode="append")
        sync_all(rillet.settings)
        job = client.get(response.json()["job"]["url"]).json()
        assert job["status"] == "failed" and job["error"]["code"] == "type_mismatch", job
    assert new_version(client, rillet, dataset, "day,price\n01/02/2024,$8\n", mode="append") == 2
    assert export(client, dataset) == [
        {"day": "2024-01-31", "price": 5},
        {"day": "2024-02-01", "price": 8},
    ]


@pytest.mark.integration
def test_an_append_killed_mid_sync_leaves_the_current_version_serving(client, rillet) -> None:  # type: ignore[no-untyped-def]
    from tests.test_worker import children, start_worker

    dataset = upload(client, rillet, HEADER + typed_rows(0, 100))
    response = send(client, dataset, HEADER + typed_rows(100, 60_000), mode="append")
    job_id = response.json()["job"]["id"]
    worker = start_worker(rillet.settings.data_dir)
    try:
        wait_for(lambda: rillet.jobs.get(job_id)["progress"]["rows"] > 0, interval=0.01)
        (child,) = children(worker.pid)
        os.kill(child, signal.SIGKILL)  # the sync process, mid-append
        wait_for(lambda: rillet.jobs.get(job_id)["status"] in ("done", "failed"), timeout=60)
    finally:
        stop(worker)
    job = rillet.jobs.get(job_id)
    assert job["status"] == "done" and job["attempts"] == 2, job
    assert len(export(client, dataset, version="1")) == 100
    whole = upload(client, rillet, HEADER + typed_rows(0, 60_100))
    assert export(client, dataset) == export(client, whole)
    assert_within_bounds(stats(client, dataset), stats(client, whole), export(client, whole))
    assert os.listdir(rillet.store.tmp) == []
