"""Column roles in METADATA: decided by the sync from the data and the names, corrected by an
upload's ``roles`` parameter, refused when they do not fit, and obeyed by charts and insights."""

from __future__ import annotations

import os
import random

import httpx
import pytest

from charts.findings import findings
from charts.profile import survey
from charts.recommend import recommend
from server import Rillet
from streaming.errors import BadRequest
from streaming.options import ROLES, upload_options
from streaming.read import open_dataset
from streaming.settings import Settings
from tests.conftest import assert_error, upload
from tests.corpus import sync_bytes
from tests.test_versions import new_version


def table(rows: int = 400, seed: int = 4) -> str:
    """``tag`` (an integer code no name gives away), ``dep`` HHMM times, ``amount`` and a
    ``region``: the tag's mean differs by region, as flight numbers by carrier would."""
    rnd = random.Random(seed)
    lines = ["tag,dep,region,amount"]
    for _ in range(rows):
        region = rnd.choice(["north", "south", "east"])
        tag = rnd.randrange(1, 900) + (2000 if region == "north" else 0)
        dep = rnd.randrange(6, 22) * 100 + rnd.randrange(60)
        lines.append(f"{tag},{dep},{region},{round(rnd.gauss(50, 10), 2)}")
    return "\n".join(lines) + "\n"


def test_the_sync_keeps_every_columns_role_in_metadata(
    client: httpx.Client, rillet: Rillet
) -> None:
    dataset = upload(client, rillet, table())
    meta = client.get(f"/datasets/{dataset}").json()
    assert meta["roles"] == {
        "tag": "measure",  # nothing in its name or values says it is a code
        "dep": "clock",
        "region": "category",
        "amount": "measure",
    }


def test_an_uploads_roles_correct_what_the_data_suggests(
    client: httpx.Client, rillet: Rillet
) -> None:
    dataset = upload(client, rillet, table(), roles="tag:identifier,dep:category")
    meta = client.get(f"/datasets/{dataset}").json()
    assert meta["roles"]["tag"] == "identifier" and meta["roles"]["dep"] == "category"
    with open_dataset(rillet.store, rillet.jobs, dataset) as opened:
        said = findings(survey(opened))
        charts = recommend(opened, limit=10)
    assert not any(
        f["columns"] and f["columns"][0] == "tag" and f["kind"] != "identifier" for f in said
    ), said
    for item in charts:
        channels = item["spec"]["encoding"].values()
        fields = {e.get("field") for c in channels for e in (c if isinstance(c, list) else [c])}
        assert not fields & {"tag", "mean_tag", "sum_tag"}, item["title"]


def test_roles_are_read_like_types() -> None:
    assert upload_options({"roles": " tag : Identifier ,dep:clock"})["roles"] == {
        "tag": "identifier",
        "dep": "clock",
    }
    assert upload_options({})["roles"] is None
    for wrong, message in (
        ("tag:key", "unknown role 'key' for column 'tag' in roles; use one of "),
        ("tag", "COLUMN:ROLE pairs"),
        ("a:measure,a:category", "two roles"),
    ):
        with pytest.raises(BadRequest, match=message):
            upload_options({"roles": wrong})
    assert "date_part" in ROLES and "clock" in ROLES


def test_a_wrong_role_name_is_a_400_and_stores_nothing(
    client: httpx.Client, rillet: Rillet
) -> None:
    response = client.post(
        "/datasets",
        params={"roles": "tag:money"},
        files={"file": ("t.csv", table().encode(), "text/csv")},
    )
    error = assert_error(response, 400, "bad_parameter")
    assert error["parameter"] == "roles" and "money" in error["message"]
    assert os.listdir(rillet.store.root / "uploads") == []


@pytest.mark.parametrize(
    ("roles", "code", "words"),
    [
        ("zip:identifier", "unknown_column", "roles names column 'zip', which the file does not"),
        ("region:measure", "role_mismatch", "column 'region' is string: it cannot be a measure"),
        ("amount:clock", "role_mismatch", "column 'amount' is number: it cannot be a clock"),
    ],
)
def test_roles_that_do_not_fit_the_columns_fail_the_job(
    settings: Settings, roles: str, code: str, words: str
) -> None:
    job, meta = sync_bytes(settings, table(50).encode(), **upload_options({"roles": roles}))
    assert job["status"] == "failed" and meta is None
    assert job["error"]["code"] == code and words in job["error"]["message"], job["error"]


def test_roles_are_decided_again_for_each_version(client: httpx.Client, rillet: Rillet) -> None:
    """A version made by new data, replaced or appended, has its columns' roles too."""
    dataset = upload(client, rillet, table(100))
    assert new_version(client, rillet, dataset, table(200, seed=9), mode="append") == 2
    meta = client.get(f"/datasets/{dataset}").json()
    assert meta["rows"] == 300
    assert meta["roles"] == {
        "tag": "measure",
        "dep": "clock",
        "region": "category",
        "amount": "measure",
    }
    assert new_version(client, rillet, dataset, "n,city\n1,Oslo\n2,Rome\n3,Oslo\n") == 3
    assert client.get(f"/datasets/{dataset}").json()["roles"] == {
        "n": "category",
        "city": "category",
    }
