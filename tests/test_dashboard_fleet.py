"""The dashboard's Fleet panel in headless Chromium: on a shared state it lists every watcher
(state, host, pid, heartbeat, leader, what each reads); a watcher on its own file shows none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from watcher.fleet.board import fleet_object
from watcher.http.app import AppState, bound_port, make_app, start
from watcher.http.view import InMemoryView
from watcher.metrics import Metrics
from watcher.store.instances import Instance

from .test_dashboard import DESKTOP, artifact, browser, open_page
from .test_http_api import seeded_view

__all__ = ["browser"]  # the fixture, shared with test_dashboard


@dataclass
class FleetView(InMemoryView):
    """The seeded view, answering for a fleet of three as a daemon on PostgreSQL would."""

    fleet_body: dict[str, Any] | None = None

    def fleet(self) -> dict[str, Any]:
        assert self.fleet_body is not None
        return self.fleet_body


def three_watchers(now: float) -> dict[str, Any]:
    """web-1 leads and holds the Loki lease, web-2 is up, web-3 went silent 40 s ago."""
    rows = [
        Instance("web-1", "r1", "pod-web-1", "n", 11, "0.1.0", now - 600, now - 2,
                 sources=("app",), leader=True),
        Instance("web-2", "r2", "pod-web-2", "n", 12, "0.1.0", now - 600, now - 1,
                 sources=("app",), leader=False),
        Instance("web-3", "r3", "pod-web-3", "n", 13, "0.1.0", now - 900, now - 40,
                 sources=("app",), leader=False),
    ]  # fmt: skip
    return fleet_object("web-2", rows, now, 15.0, shared=True, holders={"loki": "web-1"})


async def serve(view: InMemoryView) -> tuple[web.AppRunner, str]:
    runner = await start(make_app(AppState(Metrics()), view=view), "127.0.0.1:0")
    return runner, f"http://127.0.0.1:{bound_port(runner)}"


@pytest.fixture
async def fleet_server() -> AsyncIterator[str]:
    """The dashboard of a watcher in a fleet of three."""
    import time

    base = seeded_view()
    view = FleetView(**{f: getattr(base, f) for f in ("group_list", "fix_list", "source_status",
                                                       "rates", "activity_list")})  # fmt: skip
    view.fleet_body = three_watchers(time.time())
    runner, url = await serve(view)
    yield url
    await runner.cleanup()


async def test_the_fleet_panel_lists_every_watcher_with_leader_and_leases(
    browser: Any, fleet_server: str, tmp_path: Path
) -> None:
    """Three watchers: "2 of 3 up", the leader and the Loki lease named on web-1, web-3 lost,
    this instance marked; a watcher on its own state (no fleet) shows no panel; no script
    errors."""
    page = await open_page(browser, fleet_server, DESKTOP)
    await page.wait_for_selector("#fleet-panel:not([hidden]) #fleet li")
    assert await page.locator("#fleet-count").inner_text() == "2 of 3 up"
    items = [await page.locator("#fleet li").nth(i).inner_text() for i in range(3)]
    assert "web-1" in items[0] and "leader" in items[0] and "loki (lease)" in items[0]
    assert "pod-web-1" in items[0] and "pid 11" in items[0]
    assert "web-2 (this one)" in items[1] and "leader" not in items[1]
    assert "lost" in items[2] and "40 s ago" in items[2]
    await page.screenshot(path=str(artifact(tmp_path, "fleet.png")), full_page=True)
    assert page.errors == []
    runner, alone = await serve(seeded_view())
    try:
        page = await open_page(browser, alone, DESKTOP)
        assert await page.locator("#fleet-panel").is_hidden()
        assert page.errors == []
    finally:
        await runner.cleanup()
