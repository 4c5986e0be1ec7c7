"""The web dashboard at `/`: one static page (plain JS, no build step) reading the JSON API.

The page holds no data of its own, so it is served without a token; the data it fetches is
behind the same auth as any other API client (it asks for the token when reads need one).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
INDEX = STATIC_DIR / "index.html"


async def index(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(INDEX, headers={"Content-Type": "text/html; charset=utf-8"})


def add_dashboard(app: web.Application) -> None:
    """Mount `/` and the page's assets under `/static/`."""
    app.router.add_get("/", index, allow_head=False)
    # No directory listing, and symlinks are not followed out of the package.
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
