"""README keeps up with the code: every setting, the two commands, the error codes."""

from __future__ import annotations

import re

import pytest

from streaming.settings import SETTINGS, Setting
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented_with_its_default(setting: Setting) -> None:
    row = re.search(rf"^\| `{setting.name}` \| (.*?) \|", README, re.M)
    assert row, f"{setting.name} is missing from README's settings table"
    shown = row.group(1)
    assert (f"`{setting.default}`" in shown) if setting.default else shown == "(none)"


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in README


def test_readme_run_command_starts_the_server() -> None:
    assert "pip install -q . && .venv/bin/python server.py" in README
