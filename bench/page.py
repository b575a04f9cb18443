"""The web page's numbers: its own bytes, the time from navigation to the first table rows of a
1M-row dataset, and the server's memory while five browser tabs page that dataset.

    python bench/page.py [--rows 1000000] [--pages 20] [--json out.json]

Needs Debian's chromium and chromium-driver and selenium (the test extra). The server runs as
``python server.py`` with WORKERS=1 on 127.0.0.1, so one process answers every tab; its memory
is read from /proc (VmRSS now, VmHWM the peak) and from /health.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import cached_csv, print_table, proc_status_mib, write_json  # noqa: E402

from streaming.web.page import STATIC  # noqa: E402
from tests.conftest import start_server, stop, wait_for  # noqa: E402
from tests.test_browser import FLAGS  # noqa: E402  the browser as the tests start it

KEY = "bench-page-key"


def own_bytes() -> dict[str, int]:
    files = [p for p in STATIC.iterdir() if p.suffix in (".html", ".css", ".js", ".svg")]
    raw = sum(p.stat().st_size for p in files)
    zipped = sum(len(gzip.compress(p.read_bytes(), 6)) for p in files)
    js = sum(p.stat().st_size for p in files if p.suffix == ".js")
    css = sum(p.stat().st_size for p in files if p.suffix == ".css")
    return {"files": len(files), "bytes": raw, "gzip_bytes": zipped, "js": js, "css": css}


def chrome(profile: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1280,800"):
        options.add_argument(flag)
    return webdriver.Chrome(
        options=options, service=webdriver.ChromeService("/usr/bin/chromedriver")
    )


def first_rows_ms(driver, base: str, dataset: str) -> float:  # type: ignore[no-untyped-def]
    """Milliseconds from navigation start to the first page of rows in the table (a mark the
    page sets when it has put them in the document), with a cold page load each time."""
    driver.get("about:blank")
    driver.get(f"{base}/#/d/{dataset}/table")
    mark = "return performance.getEntriesByName('rillet:rows').map(e => e.startTime)[0]"
    return float(wait_for(lambda: driver.execute_script(mark), timeout=30))


def sign_in(driver, base: str) -> None:  # type: ignore[no-untyped-def]
    """The key in this tab's session storage, as the sign-in form leaves it (each tab has its
    own session storage, so each tab signs in)."""
    driver.get(base + "/")
    driver.execute_script("sessionStorage.setItem('rillet.key', arguments[0]);", KEY)
    driver.execute_script("sessionStorage.setItem('rillet.scope', 'write');")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=20, help="pages each tab goes forward")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    source = cached_csv(args.rows)
    root = Path(tempfile.mkdtemp(prefix="rillet-page-"))
    running = start_server(root / "data", API_KEYS=f"{KEY}:write", RATE_LIMIT="0")
    driver = None
    try:
        http = httpx.Client(base_url=running.base_url, headers={"X-API-Key": KEY}, timeout=60)
        with source.open("rb") as f:
            created = http.post("/datasets", files={"file": (source.name, f, "text/csv")}).json()
        wait_for(lambda: http.get(created["job"]["url"]).json()["status"] == "done", timeout=600)
        dataset = created["dataset"]["id"]
        driver = chrome(root / "profile")
        sign_in(driver, running.base_url)
        first_rows_ms(driver, running.base_url, dataset)  # warm: the files in the cache
        times = [first_rows_ms(driver, running.base_url, dataset) for _ in range(5)]
        rss = _five_tabs(driver, running, dataset, args.pages, http)
    finally:
        if driver is not None:
            driver.quit()
        stop(running.process)
    figures = {
        "rows": args.rows,
        "first_rows_ms": {"median": statistics.median(times), "max": max(times), "runs": times},
        "page": own_bytes(),
        "five_tabs": rss,
    }
    print_table(
        ["figure", "value"],
        [
            [
                "navigation to first rows, median of 5 (ms)",
                f"{figures['first_rows_ms']['median']:.0f}",
            ],
            [
                "the page's own files (bytes, gzip)",
                f"{figures['page']['bytes']:,} ({figures['page']['gzip_bytes']:,})",
            ],
            ["server RSS while 5 tabs page (MiB, peak)", f"{rss['rss_mib_max']:.1f}"],
            ["server VmHWM over its life (MiB)", f"{rss['hwm_mib']:.1f}"],
        ],
        title=f"web page, {args.rows:,}-row dataset",
    )
    write_json(args.json, figures)


def _five_tabs(driver, running, dataset: str, pages: int, http: httpx.Client) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Five tabs on the table, each going forward ``pages`` pages in turn; the server's
    memory read after each round."""
    from selenium.webdriver.common.by import By

    tabs = [driver.current_window_handle]
    for _ in range(4):
        driver.switch_to.new_window("tab")
        tabs.append(driver.current_window_handle)
    for tab in tabs:
        driver.switch_to.window(tab)
        sign_in(driver, running.base_url)
        first_rows_ms(driver, running.base_url, dataset)
    seen: list[float] = []
    started = time.perf_counter()
    for round_ in range(pages):
        for tab in tabs:
            driver.switch_to.window(tab)
            driver.find_element(By.ID, "next").click()
            wait_for(
                lambda r=round_: (
                    f"rows {(r + 1) * 100 + 1:,}–"
                    in driver.find_element(By.CSS_SELECTOR, ".where").text
                ),
                timeout=30,
            )
        seen.append(proc_status_mib(running.process.pid)["VmRSS"])
    return {
        "tabs": len(tabs),
        "pages_each": pages,
        "seconds": round(time.perf_counter() - started, 1),
        "rss_mib_max": max(seen),
        "rss_mib_last": seen[-1],
        "hwm_mib": proc_status_mib(running.process.pid)["VmHWM"],
        "health_rss_mib": http.get("/health").json()["rss_bytes"] / 2**20,
    }


if __name__ == "__main__":
    main()
