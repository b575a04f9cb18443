"""The page in a real browser: headless Chromium from the system's packages (Debian `chromium`
and `chromium-driver`), driven by selenium, against the real waitress server and the fake Groq.

One walk of a person through every view, the browser's console read after each step; and
screenshots of each view at 1280×800 on a real dataset (vega_datasets' seattle-weather).
Skipped, saying why, where Chromium or chromedriver is not installed (`.ci/run` installs both).
Selenium is given both paths, so it never downloads a browser or a driver.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ROOT, WRITE_KEY, start_server, stop, wait_for
from tests.fake_groq import FakeGroq, Reply

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(missing),
        reason=f"no {' or '.join(missing)}: install Debian's chromium and chromium-driver "
        "(.ci/run does) to run the browser tests",
    ),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra)")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

INSIGHTS = orjson.dumps(
    {"insights": [{"title": "Delays vary by carrier", "detail": "UA 30, AA 20.", "columns": []}]}
).decode()


@dataclass
class Browser:
    driver: Any
    base_url: str
    groq: FakeGroq
    http: httpx.Client

    def wait(self, condition: Any, timeout: float = 15) -> Any:
        # An element the page re-renders between finding it and reading it (the grid after a
        # sort) is looked for again, not a failure: seen once on a loaded machine.
        waiting = WebDriverWait(
            self.driver, timeout, ignored_exceptions=[StaleElementReferenceException]
        )
        return waiting.until(lambda d: condition(d))

    def find(self, css: str) -> Any:
        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, css))

    def text_of(self, css: str, words: str, timeout: float = 15) -> None:
        self.wait(lambda d: words in d.find_element(By.CSS_SELECTOR, css).text, timeout)

    def console_errors(self) -> list[dict[str, Any]]:
        """Errors in the browser's console since the last read (the log is drained)."""
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


def chrome(profile: Path) -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    root = tmp_path_factory.mktemp("browser")
    with FakeGroq(lambda request: INSIGHTS) as groq:
        running = start_server(
            root / "data",
            API_KEYS=f"{WRITE_KEY}:write",
            RATE_LIMIT="0",
            GROQ_API_KEY="gsk_browser_test",
            GROQ_BASE_URL=groq.base_url,
        )
        driver = None
        try:
            driver = chrome(root / "profile")
            with httpx.Client(base_url=running.base_url, headers={"X-API-Key": WRITE_KEY}) as http:
                yield Browser(driver, running.base_url, groq, http)
        finally:
            if driver is not None:
                driver.quit()
            output = stop(running.process)
    assert "Traceback" not in output
    assert WRITE_KEY not in output  # the key is never logged


def flights_csv(path: Path) -> Path:
    lines = ["day,carrier,delay"]
    for i in range(450):
        day = f"2024-{1 + i % 3:02d}-{1 + i % 28:02d}"
        lines.append(f"{day},{('AA', 'UA', 'DL')[i % 3 if i % 7 else 1]},{(i * 37) % 120 - 10}")
    path.write_text("\n".join(lines) + "\n")
    return path


def sign_in(b: Browser) -> None:
    """Sign in, once per tab: the key stays in the tab's session storage."""
    b.driver.get(b.base_url + "/")
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#key, #datasets"))
    if b.driver.find_elements(By.CSS_SELECTOR, "#key"):
        b.find("#key").send_keys(WRITE_KEY + "\n")
    b.text_of("#who", "can read and write")


def test_a_person_walks_through_every_view(browser: Browser, tmp_path: Path) -> None:
    b = browser
    sign_in(b)
    assert b.console_errors() == []

    # Upload by the picker; the upload's progress, then the sync's, until it is ready.
    b.find("#file").send_keys(str(flights_csv(tmp_path / "flights.csv")))
    b.text_of(".progress-area", "flights.csv is ready: 450 rows.")
    b.find("#datasets a").click()
    b.text_of(".where", "rows 1–100 of 450")
    # Each column's role from METADATA, beside its type (in the folded list of columns).
    roles = b.driver.find_elements(By.CSS_SELECTOR, ".about ul.columns .role")
    assert [r.get_attribute("textContent") for r in roles] == ["time, ", "category, ", "measure, "]
    assert b.console_errors() == []

    # Page forward, then sort by clicking a header (twice: descending).
    b.find("#next").click()
    b.text_of(".where", "rows 101–200 of 450")
    b.find('button.sort[data-column="delay"]').click()
    b.wait(lambda d: "sort=delay" in d.current_url)
    b.find('button.sort[data-column="delay"]').click()
    b.wait(lambda d: "sort=-delay" in d.current_url)
    b.text_of("#grid tbody tr td:nth-child(3)", "109")
    assert b.console_errors() == []

    # Filter by a date range with the date pickers: February only.
    for op, day in (("gte", "2024-02-01"), ("lt", "2024-03-01")):
        Select(b.find(".add-filter .column")).select_by_value("day")
        Select(b.find(".add-filter .op")).select_by_value(op)
        picker = b.find(".add-filter input[type=date]")
        b.driver.execute_script("arguments[0].value = arguments[1]", picker, day)
        b.find(".add-filter button[type=submit]").click()
        b.wait(lambda d, op=op: f"day__{op}=" in d.current_url)
    b.find("#count").click()
    b.text_of(".total", "150 matching rows")
    days = [td.text for td in b.driver.find_elements(By.CSS_SELECTOR, "#grid td:first-child")]
    assert days and all(d.startswith("2024-02") for d in days)
    assert len(b.driver.find_elements(By.CSS_SELECTOR, ".chip")) == 2
    assert b.console_errors() == []

    # Stats over the filtered rows.
    b.find("#tab-stats").click()
    b.text_of("#view", "150 rows match the filters")
    assert len(b.driver.find_elements(By.CSS_SELECTOR, ".card.stat")) == 3
    assert b.driver.find_elements(By.CSS_SELECTOR, '.card[data-column="delay"] svg.hist rect')
    assert b.console_errors() == []

    # Charts: a recommended one drawn by vega-embed, and a built one.
    b.find("#tab-charts").click()
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".recommended .vega svg"), timeout=30)
    Select(b.find(".builder select[name=mark]")).select_by_value("bar")
    Select(b.find(".builder select[name=x]")).select_by_value("carrier")
    Select(b.find(".builder select[name=aggregate]")).select_by_value("count")
    b.find(".builder button[type=submit]").click()
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#built .vega svg .mark-rect path"))
    assert b.console_errors() == []

    # Ask: insights, then chat whose reply streams in, with its query's result as a table.
    reply = {"reply": "UA is the latest carrier on average.", "query": None}
    reply["query"] = {"route": "groupby", "params": {"by": "carrier", "agg": "mean:delay"}}
    content = orjson.dumps(reply).decode()
    pieces = [content[:24], content[24:36], content[36:]]
    b.find("#tab-ask").click()
    b.text_of(".insights", "Delays vary by carrier")
    b.groq.script(Reply(content=content, pieces=pieces, piece_delay=0.4))
    b.find("#message").send_keys("Which carrier is latest?")
    b.find(".chat button[type=submit]").click()
    partial = b.wait(
        lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, ".turn.streaming") if e.text]
    )
    assert partial[0] and partial[0] in reply["reply"] and partial[0] != reply["reply"]
    b.text_of(".turn.assistant", "UA is the latest carrier on average.")
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".answer table tbody tr"))
    assert "groupby" in b.find(".answer .query").text
    assert b.console_errors() == []

    # Every view has a URL: the bookmark opens it again (the key stays in the tab's session).
    url = b.driver.current_url.replace("/ask", "/table")
    assert WRITE_KEY not in url
    b.driver.get(url)
    b.text_of(".where", "rows 1–")
    assert b.console_errors() == []

    # New rows appended meanwhile are a new version: opened again from the list, it shows it.
    dataset = url.split("#/d/")[1].split("/")[0]
    appended = b.http.post(
        f"/datasets/{dataset}/sync",
        params={"mode": "append"},
        content=b"day,carrier,delay\n2024-03-05,AA,12\n2024-03-06,UA,7\n",
        headers={"Content-Type": "text/csv"},
    )
    assert appended.status_code == 202, appended.text
    job = appended.json()["job"]["url"]
    wait_for(lambda: b.http.get(job).json()["status"] == "done")
    b.find(".crumbs a").click()
    b.find("#datasets a").click()
    b.text_of(".where", "rows 1–100 of 452")
    b.text_of(".about", "version 2")
    assert b.console_errors() == []


SHOTS = ("table", "stats", "charts", "ask")
# What the look-alike model says of seattle-weather in the Ask shot; the numbers in the shot's
# table are the server's own, from the query the reply carries.
WEATHER_INSIGHTS = orjson.dumps(
    {
        "insights": [
            {
                "title": "Sun is the most common weather",
                "detail": "Fog and rain follow it; drizzle and snow are rare.",
                "columns": ["weather"],
            },
            {
                "title": "Precipitation is skewed",
                "detail": "Most days have none; a few wet days carry most of it.",
                "columns": ["precipitation"],
            },
        ]
    }
).decode()
WEATHER_CHAT = orjson.dumps(
    {
        "reply": "Here are the days of each weather, most common first.",
        "query": {
            "route": "groupby",
            "params": {"by": "weather", "agg": "count,mean:temp_max", "sort": "-count"},
        },
    }
).decode()


def test_screenshots_of_each_view_on_a_real_dataset(browser: Browser, tmp_path: Path) -> None:
    """Writes docs/page-*.png when RILLET_SCREENSHOTS=docs (README shows them)."""
    vega_datasets = pytest.importorskip("vega_datasets")
    source = Path(vega_datasets.local_data.seattle_weather.filepath)
    b = browser
    with source.open("rb") as f:
        created = b.http.post("/datasets", files={"file": ("seattle-weather.csv", f, "text/csv")})
    wait_for(lambda: b.http.get(created.json()["job"]["url"]).json()["status"] == "done")
    dataset = created.json()["dataset"]["id"]
    sign_in(b)
    out = ROOT / "docs" if os.environ.get("RILLET_SCREENSHOTS") == "docs" else tmp_path
    b.driver.get(f"{b.base_url}/#/")
    b.text_of("#datasets", "seattle-weather.csv")
    b.driver.save_screenshot(str(out / "page-datasets.png"))
    ready = {
        "table": lambda d: d.find_elements(By.CSS_SELECTOR, "#grid tbody tr"),
        "stats": lambda d: d.find_elements(By.CSS_SELECTOR, ".card.stat"),
        "charts": lambda d: len(d.find_elements(By.CSS_SELECTOR, ".recommended .vega svg")) >= 2,
        "ask": lambda d: d.find_elements(By.CSS_SELECTOR, ".insights li"),
    }
    b.groq.script(Reply(content=WEATHER_INSIGHTS))
    for view in SHOTS:
        b.driver.get(f"{b.base_url}/#/d/{dataset}/{view}?date__gte=2015-01-01")
        b.wait(ready[view], timeout=30)
        if view == "ask":  # a question asked, its answer and its query's result on screen
            b.groq.script(Reply(content=WEATHER_CHAT))
            b.find("#message").send_keys("Which weather is most common?")
            b.find(".chat button[type=submit]").click()
            b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".answer table tbody tr"))
        b.driver.save_screenshot(str(out / f"page-{view}.png"))
    assert b.console_errors() == []
    for name in ("datasets", *SHOTS):
        assert (out / f"page-{name}.png").stat().st_size > 10_000
    shutil.rmtree(tmp_path / "unused", ignore_errors=True)
