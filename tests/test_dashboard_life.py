"""The dashboard an on-call engineer wants: search and filters, resolve/ignore/merge buttons, the
activity list, breakdowns by source/host/release, and frames linked to the code.

Playwright drives Debian's /usr/bin/chromium (never a downloaded browser) at desktop and phone
widths. WATCHER_UPDATE_SCREENSHOT=1 also writes docs/dashboard-life.png and
docs/dashboard-life-phone.png.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from watcher.http.app import AppState, bound_port, make_app, start
from watcher.http.links import linker
from watcher.http.security import SecurityConfig
from watcher.http.view import InMemoryView
from watcher.metrics import Metrics

from .test_dashboard import DB_GROUP, DESKTOP, PHONE, TOKEN, artifact, browser, open_page
from .test_http_api import seeded_view

__all__ = ["browser"]  # the fixture, imported for its name

DOCS = Path(__file__).resolve().parents[1] / "docs"
OLD_GROUP = "feedfacecafe"


@pytest.fixture
def view() -> InMemoryView:
    """The seeded patterns, the database one with host and release breakdowns."""
    view = seeded_view()
    view.group_list[0].tags = {"host": {"web-1": 30, "web-2": 10}, "release": {"3f2a9c1": 40}}
    return view


@pytest.fixture
async def server(view: InMemoryView) -> AsyncIterator[str]:
    """The app over the view, frames linked to a GitHub blob URL, reads behind the token."""
    security = SecurityConfig(token=TOKEN, protect_reads=True, post_burst=30)
    link = linker("https://github.com/acme/api/blob/{ref}/{path}#L{line}", "main")
    app = make_app(AppState(Metrics()), view=view, security=security, link=link)
    runner: web.AppRunner = await start(app, "127.0.0.1:0")
    yield f"http://127.0.0.1:{bound_port(runner)}"
    await runner.cleanup()


async def rows_text(page: Any) -> list[str]:
    return await page.locator("#patterns tbody tr").all_inner_texts()


async def test_filter_resolve_ignore_merge_and_activity_from_the_page(
    browser: Any, server: str, view: InMemoryView, tmp_path: Path
) -> None:
    """Search and the category/state filters narrow the table; in a pattern's detail the
    breakdowns show hosts and releases and the in-app frame links to the code at the release;
    Resolve, Ignore and Merge change the pattern (the API view says so) and each change is in
    the activity list with who made it."""
    page = await open_page(browser, f"{server}/#token={TOKEN}", DESKTOP)
    assert len(await rows_text(page)) == 3
    await page.fill("#f-text", "pool exhausted")
    assert len(await rows_text(page)) == 1
    await page.fill("#f-text", "")
    await page.select_option("#f-category", "cache_error")
    assert [r.split("\t")[0] for r in await rows_text(page)] == ["cache miss storm on <*>"]
    await page.select_option("#f-category", "")

    await page.click(f'a[href="#pattern={DB_GROUP}"]')
    await page.wait_for_selector("#detail:not([hidden]) .by-host li")
    breakdown = await page.locator("#detail-breakdown").inner_text()
    assert "web-1" in breakdown and "3f2a9c1" in breakdown
    blob = "https://github.com/acme/api/blob/3f2a9c1/app/db.py#L42"
    code = page.locator(f'#detail-frames a[href="{blob}"]')
    assert await code.count() == 1

    await page.click("#act-resolve")
    await page.wait_for_selector("#act-result >> text=now resolved")
    assert view.group(DB_GROUP).state == "resolved"  # type: ignore[union-attr]
    pool_row = "#patterns tbody >> text=connection pool exhausted"
    await page.wait_for_selector(pool_row, state="detached")  # the default filter: active only
    await page.select_option("#f-state", "resolved")
    assert len(await rows_text(page)) == 1

    await page.select_option("#act-ignore-for", "count=100")
    await page.click("#act-ignore")
    await page.wait_for_selector("#act-result >> text=now ignored")
    assert view.group(DB_GROUP).ignore_count == 140  # type: ignore[union-attr]

    await page.select_option("#act-merge-with", OLD_GROUP)
    await page.click("#act-merge")
    await page.wait_for_selector("#act-result >> text=merge: now ignored")
    assert view.group(OLD_GROUP) is None and view.group(DB_GROUP).count == 45  # type: ignore[union-attr]
    await page.wait_for_selector("#detail-activity li >> nth=2")
    activity = await page.locator("#detail-activity").inner_text()
    for said in ("api:dashboard resolved", "api:dashboard ignored", f"merged {OLD_GROUP} in"):
        assert said in activity, activity
    await page.select_option("#f-state", "")
    path = artifact(tmp_path, "dashboard-life.png")
    await page.screenshot(path=str(path), full_page=True)
    if os.environ.get("WATCHER_UPDATE_SCREENSHOT") == "1":
        await page.screenshot(path=str(DOCS / "dashboard-life.png"), full_page=True)
    assert page.errors == []


async def test_filters_and_buttons_fit_a_phone(browser: Any, server: str, tmp_path: Path) -> None:
    """At 390x844, with the filter bar, the detail's buttons and breakdowns on screen, nothing
    is wider than the screen."""
    page = await open_page(browser, f"{server}/#token={TOKEN}&pattern={DB_GROUP}", PHONE)
    await page.wait_for_selector("#detail:not([hidden]) .by-host li")
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
    )
    assert max(widths[:2]) <= widths[2], widths
    assert await page.locator("#act-resolve").is_visible()
    assert await page.locator("#f-text").is_visible()
    path = artifact(tmp_path, "dashboard-life-phone.png")
    await page.screenshot(path=str(path), full_page=True)
    if os.environ.get("WATCHER_UPDATE_SCREENSHOT") == "1":
        await page.screenshot(path=str(DOCS / "dashboard-life-phone.png"), full_page=True)
    assert page.errors == []
