"""The dashboard page in headless Chromium (Playwright), served by a real app on 127.0.0.1.

Needs the `playwright` package and Debian's chromium at /usr/bin/chromium (no browser download).
Without them the tests skip, or fail when CI is set. Screenshots go to $WATCHER_ARTIFACTS_DIR
(default: the test's tmp_path, printed); WATCHER_UPDATE_SCREENSHOT=1 also writes
docs/dashboard.png for the README.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from watcher.http.app import AppState, bound_port, make_app, start
from watcher.http.security import SecurityConfig
from watcher.http.view import InMemoryView
from watcher.metrics import Metrics
from watcher.model import ErrorGroup, Sample

from .test_http_api import HOSTILE, TOKEN, seeded_view

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "dashboard.png"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
DB_GROUP, HOSTILE_GROUP = "a1b2c3d4e5f6", "0badc0ffee00"


def require_browser() -> None:
    """Skip without Playwright or Chromium; in CI (CI set) that is a failure instead."""
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install playwright)")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:
        reason = "dashboard tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def artifact(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("WATCHER_ARTIFACTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@pytest.fixture
def view() -> InMemoryView:
    """The seeded view the page shows; tests may change it while the page is open."""
    return seeded_view()


@pytest.fixture
async def server(view: InMemoryView) -> AsyncIterator[str]:
    """The app with a seeded view, reads behind the token, on a free loopback port."""
    # A long unbroken line must wrap, not widen the page on a phone.
    view.group_list[1].samples.append(Sample(view.group_list[1].last_seen - 5, "web", "x" * 400))
    security = SecurityConfig(token=TOKEN, protect_reads=True)
    app = make_app(AppState(Metrics()), view=view, security=security)
    runner: web.AppRunner = await start(app, "127.0.0.1:0")
    yield f"http://127.0.0.1:{bound_port(runner)}"
    await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Debian Chromium driven by Playwright."""
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


async def open_page(browser: Any, url: str, viewport: dict[str, int]) -> Any:
    """A page that records dialogs and script errors, loaded and past its first refresh."""
    page = await browser.new_page(viewport=viewport)
    page.dialogs, page.errors = [], []
    page.on("dialog", lambda dialog: page.dialogs.append(dialog.message))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    await page.goto(url)
    await page.wait_for_selector("#patterns tbody tr")
    return page


async def test_dashboard_renders_table_chart_sources_and_detail(
    browser: Any, server: str, tmp_path: Path
) -> None:
    """Token from the fragment; table, chart, sources and a pattern's detail all render."""
    page = await open_page(browser, f"{server}/#token={TOKEN}", DESKTOP)
    assert TOKEN not in page.url  # taken out of the address bar and history
    rows = page.locator("#patterns tbody tr")
    assert await rows.count() == 3
    first = await rows.nth(0).inner_text()
    assert "OperationalError: connection pool exhausted" in first and "40" in first
    assert "pr_open" in first
    assert await page.locator("#chart svg polyline").count() == 2
    assert await page.locator("#legend li").count() == 2
    sources = await page.locator("#sources").inner_text()
    assert "loki" in sources and "down" in sources and "connection refused" in sources
    await page.click(f'a[href="#pattern={DB_GROUP}"]')
    await page.wait_for_selector("#detail:not([hidden]) #detail-frames li")
    detail = await page.locator("#detail").inner_text()
    assert "The pool is smaller than the worker count." in detail
    assert "app/db.py:42" in detail
    pr = page.locator('#detail-analysis a[href="https://github.com/acme/api/pull/7"]')
    assert await pr.count() == 1
    path = artifact(tmp_path, "dashboard.png")
    await page.screenshot(path=str(path), full_page=True)
    print(f"dashboard screenshot: {path}")
    if os.environ.get("WATCHER_UPDATE_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(DOCS_SCREENSHOT), full_page=True)
    assert page.errors == []


async def test_hostile_sample_is_shown_as_text(browser: Any, server: str) -> None:
    """A sample holding an <img onerror> tag appears literally and creates no element."""
    page = await browser.new_page(viewport=DESKTOP)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await page.goto(f"{server}/#token={TOKEN}&pattern={HOSTILE_GROUP}")
    await page.wait_for_selector("#detail:not([hidden]) #detail-samples pre")
    samples = await page.locator("#detail-samples pre").all_text_contents()
    assert any(HOSTILE in text for text in samples)
    assert HOSTILE in await page.locator("#patterns tbody").inner_text()
    assert await page.evaluate("document.querySelectorAll('img').length") == 0
    assert dialogs == []


async def test_page_polls_for_new_patterns(browser: Any, server: str, view: InMemoryView) -> None:
    """A pattern that appears after the page loaded shows up without a reload."""
    page = await open_page(browser, f"{server}/#token={TOKEN}", DESKTOP)
    fresh = ErrorGroup(
        "0123456789ab", "template", "brand new failure", "internal_error", "high", False
    )
    fresh.count, fresh.first_seen, fresh.last_seen = 1, time.time(), time.time()
    view.group_list.append(fresh)
    await page.wait_for_selector("#patterns >> text=brand new failure", timeout=15000)
    assert await page.locator("#patterns tbody tr").count() == 4


async def test_token_input_when_reads_need_it(browser: Any, server: str) -> None:
    """Without a token the page asks for one; entering it loads the data."""
    page = await browser.new_page(viewport=DESKTOP)
    await page.goto(server)
    await page.wait_for_selector("#token-form:not([hidden])")
    assert "token" in (await page.locator("#status").inner_text()).lower()
    await page.fill("#token-input", TOKEN)
    await page.click("#token-form button")
    await page.wait_for_selector("#patterns tbody tr")
    assert await page.evaluate("sessionStorage.getItem('watcher.token')") == TOKEN


async def test_phone_width_has_no_horizontal_overflow(
    browser: Any, server: str, tmp_path: Path
) -> None:
    """At 390x844 nothing is wider than the screen, with the detail view open."""
    page = await open_page(browser, f"{server}/#token={TOKEN}&pattern={HOSTILE_GROUP}", PHONE)
    await page.wait_for_selector("#detail:not([hidden]) #detail-samples pre")
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
    )
    assert max(widths[:2]) <= widths[2], widths
    path = artifact(tmp_path, "dashboard-phone.png")
    await page.screenshot(path=str(path), full_page=True)
    print(f"phone screenshot: {path}")
