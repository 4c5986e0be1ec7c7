"""The /error-monitor/ JSON API on a real loopback server, over an InMemoryView."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from watcher.http import security
from watcher.http.app import AppState, make_app
from watcher.http.security import ApiError, RateLimiter, SecurityConfig, identity, token_matches
from watcher.http.serialize import diff_by_file
from watcher.http.view import InMemoryView, healthy_source
from watcher.metrics import Metrics
from watcher.model import ErrorGroup, Fix, Frame, Sample

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOSTILE = "<img src=x onerror=alert(1)>"
NOW = time.time()
DIFF = "".join(
    f"diff --git a/{p} b/{p}\n--- a/{p}\n+++ b/{p}\n@@ -1 +1 @@\n-a\n+b\n"
    for p in ("app/db.py", "app/pool.py")
)

MakeClient = Callable[..., Awaitable[TestClient]]


def seeded_view() -> InMemoryView:
    """Three patterns (a critical fixable trace with a fix and a PR, a hostile sample, an old
    one), two sources (one down) and a rate series: enough for every route and the page."""
    db = ErrorGroup(
        id="a1b2c3d4e5f6",
        kind="trace",
        template="OperationalError: connection pool exhausted after <NUM> s",
        category="database_error",
        severity="critical",
        fixable=True,
        suggested_fix="connection pooling",
        exception_type="OperationalError",
        top_frame=Frame("app/db.py", 42, "get_conn"),
        frames=[
            Frame("lib/pool.py", 7, "checkout", in_app=False),
            Frame("app/db.py", 42, "get_conn"),
        ],
        count=40,
        first_seen=NOW - 3000,
        last_seen=NOW - 20,
        sources={"api": 30, "worker": 10},
        samples=[
            Sample(
                NOW - 20,
                "api",
                "Traceback (most recent call last):\n  File app/db.py\n"
                "OperationalError: connection pool exhausted after 30 s",
                12,
            ),
        ],
        window_counts={"1m": 2, "5m": 9, "1h": 40},
        trend="rising",
    )
    hostile = ErrorGroup(
        id="0badc0ffee00",
        kind="template",
        template="render failed for <*>",
        category="internal_error",
        severity="high",
        fixable=False,
        count=3,
        first_seen=NOW - 600,
        last_seen=NOW - 60,
        sources={"web": 3},
        samples=[Sample(NOW - 60, "web", f"ERROR render failed for {HOSTILE}", 3)],
        window_counts={"1m": 0, "5m": 1, "1h": 3},
        trend="new",
    )
    old = ErrorGroup(
        id="feedfacecafe",
        kind="template",
        template="cache miss storm on <*>",
        category="cache_error",
        severity="low",
        fixable=True,
        suggested_fix="fallback",
        count=5,
        first_seen=NOW - 5 * 86400,
        last_seen=NOW - 3 * 86400,
        trend="flat",
    )
    fix = Fix(
        id="fix-db-1",
        group_id=db.id,
        status="pr_open",
        created=NOW - 100,
        root_cause="The pool is smaller than the worker count.",
        confidence=0.8,
        diff=DIFF,
        branch="auto-fix/database_error/a1b2c3d4e5f6",
        pr_url="https://github.com/acme/api/pull/7",
        details={"summary": "Raise the pool size", "evidence": ["40 timeouts"], "risk": "low"},
    )
    return InMemoryView(
        group_list=[db, hostile, old],
        fix_list=[fix],
        source_status={
            "api": healthy_source(1200),
            "loki": {"up": False, "lines": 0, "error": "connection refused", "lag_seconds": None},
        },
        rates={"database_error": [0, 1, 3, 9, 2], "internal_error": [0, 0, 1, 0, 2]},
    )


async def start_client(
    view: Any = None,
    *,
    token: str | None = TOKEN,
    redact: Callable[[Any], Any] = identity,
    **security: Any,
) -> TestClient:
    """A started TestClient on 127.0.0.1 for a view (default: seeded) and security settings."""
    app = make_app(
        AppState(Metrics()),
        view=seeded_view() if view is None else view,
        security=SecurityConfig(token=token, **security),
        redact_obj=redact,
    )
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Factory for started clients (see start_client), all closed after the test."""
    clients: list[TestClient] = []

    async def make(view: Any = None, **kw: Any) -> TestClient:
        clients.append(await start_client(view, **kw))
        return clients[-1]

    yield make
    for client in clients:
        await client.close()


async def get_json(client: TestClient, path: str, status: int = 200, **kw: Any) -> Any:
    response = await client.get(path, **kw)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def post_json(client: TestClient, path: str, status: int = 200, **kw: Any) -> Any:
    kw.setdefault("headers", AUTH)
    response = await client.post(path, **kw)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


# --- read routes ---------------------------------------------------------------------------------


async def test_health_reports_patterns_and_degraded_sources(make_client: MakeClient) -> None:
    """health: status, monitoring_enabled, error_patterns_tracked; a down source degrades it."""
    body = await get_json(await make_client(), "/error-monitor/health")
    assert body["status"] == "degraded"
    assert body["monitoring_enabled"] is False
    assert body["error_patterns_tracked"] == 3
    assert body["sources_down"] == ["loki"]


async def test_recent_errors_filter_by_hours_newest_first(make_client: MakeClient) -> None:
    """errors/recent keeps groups last seen within `hours`, newest first, original fields set."""
    client = await make_client()
    body = await get_json(client, "/error-monitor/errors/recent?hours=1")
    assert [e["id"] for e in body["errors"]] == ["a1b2c3d4e5f6", "0badc0ffee00"]
    assert body["count"] == 2 and body["hours"] == 1
    first = body["errors"][0]
    assert first["error_type"] == "OperationalError"
    assert (first["file"], first["line"], first["function"]) == ("app/db.py", 42, "get_conn")
    assert first["fixable"] is True and first["suggested_fix"] == "connection pooling"
    assert first["message"] == "OperationalError: connection pool exhausted after 30 s"
    assert first["stack_trace"].endswith("exhausted after 30 s")
    assert first["window_counts"] == {"1m": 2, "5m": 9, "1h": 40}
    assert first["fix_status"] == "pr_open" and first["pr_url"].endswith("/pull/7")
    week = await get_json(client, "/error-monitor/errors/recent?hours=168")
    assert week["count"] == 3


async def test_critical_and_fixable_lists(make_client: MakeClient) -> None:
    """errors/critical holds critical groups only (not high: "critical" means critical);
    errors/fixable only fixable ones."""
    client = await make_client()
    critical = await get_json(client, "/error-monitor/errors/critical?hours=2")
    assert [e["id"] for e in critical["critical_errors"]] == ["a1b2c3d4e5f6"]
    fixable = await get_json(client, "/error-monitor/errors/fixable?hours=720")
    assert [e["id"] for e in fixable["fixable_errors"]] == ["a1b2c3d4e5f6", "feedfacecafe"]


async def test_patterns_worst_first_with_limit(make_client: MakeClient) -> None:
    """errors/patterns lists every group worst first; limit cuts the list, not the total."""
    client = await make_client()
    body = await get_json(client, "/error-monitor/errors/patterns")
    assert body["total_patterns"] == 3
    assert [p["severity"] for p in body["patterns"]] == ["critical", "high", "low"]
    cut = await get_json(client, "/error-monitor/errors/patterns?limit=1")
    assert cut["total_patterns"] == 3 and len(cut["patterns"]) == 1


async def test_pattern_detail_has_samples_frames_and_analysis(make_client: MakeClient) -> None:
    """errors/patterns/{id} adds samples, frames, fixes and the analysis with its PR link."""
    client = await make_client()
    body = await get_json(client, "/error-monitor/errors/patterns/a1b2c3d4e5f6")
    pattern = body["pattern"]
    assert pattern["frames"][1] == {
        "file": "app/db.py",
        "line": 42,
        "function": "get_conn",
        "in_app": True,
        "url": None,  # no [report] repo_url configured
    }
    assert pattern["samples"][0]["source"] == "api"
    assert pattern["analysis"]["root_cause"].startswith("The pool")
    assert pattern["analysis"]["pr_url"] == "https://github.com/acme/api/pull/7"
    assert [f["id"] for f in pattern["fixes"]] == ["fix-db-1"]
    missing = await get_json(client, "/error-monitor/errors/patterns/nope", 404)
    assert missing["error"] == "not found"


async def test_dashboard_summary(make_client: MakeClient) -> None:
    """dashboard: totals, last hour's critical (only)/fixable, fixes made (a failed attempt is
    not a fix) and fixes by status, event counts per category."""
    view = seeded_view()
    view.fix_list.append(Fix("fix-db-0", "a1b2c3d4e5f6", "failed", NOW - 200, error="timeout"))
    body = await get_json(await make_client(view), "/error-monitor/dashboard")
    assert body["summary"] == {
        "total_patterns": 3,
        "critical_errors": 1,
        "fixable_errors": 1,
        "generated_fixes": 1,
        "fixes_by_status": {"pr_open": 1, "failed": 1},
        "patterns_by_category": {"database_error": 40, "internal_error": 3, "cache_error": 5},
    }
    assert [f["id"] for f in body["recent_fixes"]] == ["fix-db-1", "fix-db-0"]


async def test_fixes_list_and_detail(make_client: MakeClient) -> None:
    """fixes/generated lists fixes in the original shape; fixes/{id} returns one or 404."""
    client = await make_client()
    listed = await get_json(client, "/error-monitor/fixes/generated")
    assert listed["total_fixes"] == 1
    fix = listed["fixes"][0]
    assert fix["error_pattern_id"] == "a1b2c3d4e5f6" and fix["error_category"] == "database_error"
    assert fix["files_affected"] == ["app/db.py", "app/pool.py"]
    assert fix["proposed_fix"] == "Raise the pool size"
    one = await get_json(client, "/error-monitor/fixes/fix-db-1")
    assert one["fix"]["status"] == "pr_open"
    await get_json(client, "/error-monitor/fixes/unknown-fix", 404)


async def test_rates_and_sources(make_client: MakeClient) -> None:
    """rates pads each category's series to the window; sources lists each source's health."""
    client = await make_client()
    rates = await get_json(client, "/error-monitor/rates?window=1h")
    assert rates["bucket_seconds"] == 60 and rates["buckets"] == 60
    assert rates["series"]["database_error"][-5:] == [0, 1, 3, 9, 2]
    assert len(rates["series"]["database_error"]) == 60
    day = await get_json(client, "/error-monitor/rates?window=1d")
    assert day["buckets"] * day["bucket_seconds"] == 86400
    sources = await get_json(client, "/error-monitor/sources")
    assert sources["sources"][1] == {
        "name": "loki",
        "up": False,
        "ready": False,
        "lines": 0,
        "error_events": 0,
        "error": "connection refused",
        "problem": None,
        "lag_seconds": None,
        "targets": [],
        "shared": None,
    }


async def test_ready_reports_per_source_status(make_client: MakeClient) -> None:
    """health/ready carries every source's status from the view; live and metrics still work."""
    client = await make_client()
    ready = await get_json(client, "/health/ready")
    assert ready["ready"] is True
    assert ready["sources"]["loki"]["error"] == "connection refused"
    assert (await get_json(client, "/health/live")) == {"status": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status == 200 and "watcher_" in await metrics.text()


# --- mutating routes -----------------------------------------------------------------------------


async def test_generate_fix_for_error(make_client: MakeClient) -> None:
    """generate-for-error queues a fix for the group and reports it as processing."""
    view = seeded_view()
    client = await make_client(view)
    path = "/error-monitor/fixes/generate-for-error?error_id=a1b2c3d4e5f6&create_pr=true"
    body = await post_json(client, path)
    assert body["status"] == "processing"
    assert body["fix"]["group_id"] == "a1b2c3d4e5f6" and body["fix"]["status"] == "pending"
    assert view.calls[-1] == ("generate_fix", {"group_id": "a1b2c3d4e5f6", "create_pr": True})


async def test_generate_fix_by_error_type_like_the_original(make_client: MakeClient) -> None:
    """An error_id that is no group id but an exception type resolves to that type's group."""
    view = seeded_view()
    client = await make_client(view)
    await post_json(client, "/error-monitor/fixes/generate-for-error?error_id=OperationalError")
    assert view.calls[-1][1]["group_id"] == "a1b2c3d4e5f6"


async def test_generate_fix_unknown_and_refused(make_client: MakeClient) -> None:
    """Unknown ids are 404; a view refusing (auto-fix off, no budget) is 403 with its message."""
    client = await make_client()
    await post_json(client, "/error-monitor/fixes/generate-for-error?error_id=nope", 404)
    refusing = seeded_view()
    refusing.refuse_fixes = "auto-fix is disabled"
    client = await make_client(refusing)
    body = await post_json(
        client, "/error-monitor/fixes/generate-for-error?error_id=a1b2c3d4e5f6", 403
    )
    assert body == {"error": "fix generation refused", "detail": "auto-fix is disabled"}


async def test_generate_batch(make_client: MakeClient) -> None:
    """generate-batch takes a comma list (or repeated ids), reports unknown ids alongside."""
    view = seeded_view()
    client = await make_client(view)
    path = "/error-monitor/fixes/generate-batch?error_ids=a1b2c3d4e5f6,nope&error_ids=feedfacecafe"
    body = await post_json(client, path)
    assert body["count"] == 2 and body["not_found"] == ["nope"]
    assert {f["group_id"] for f in body["fixes"]} == {"a1b2c3d4e5f6", "feedfacecafe"}
    await post_json(client, "/error-monitor/fixes/generate-batch?error_ids=x,y", 404)


async def test_monitor_start_and_scan(make_client: MakeClient) -> None:
    """monitor/start and monitor/scan pass their parameters to the view and return its result."""
    view = seeded_view()
    client = await make_client(view)
    started = await post_json(client, "/error-monitor/monitor/start?interval=30")
    assert started["status"] == "started" and started["interval_seconds"] == 30
    assert view.monitoring_enabled is True
    scanned = await post_json(client, "/error-monitor/monitor/scan?hours=2&auto_fix=true")
    assert scanned == {
        "status": "scanned",
        "hours": 2,
        "errors_found": 2,
        "critical_errors": 1,
        "auto_fixes_started": 1,
    }


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Bearer "}],
)
async def test_post_without_the_right_token_is_401(
    make_client: MakeClient, headers: dict[str, str]
) -> None:
    """A missing, wrong, scheme-less or empty bearer token is refused with 401 and a challenge."""
    view = seeded_view()
    client = await make_client(view)
    response = await client.post("/error-monitor/monitor/start", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["error"] == "unauthorized"
    assert view.calls == []


async def test_posts_disabled_without_a_configured_token(make_client: MakeClient) -> None:
    """With no token configured every POST is 403 naming the variable to set; reads still work."""
    client = await make_client(token=None)
    body = await post_json(client, "/error-monitor/monitor/start", 403)
    assert body["error"] == "mutating routes disabled"
    assert "WATCHER_API_TOKEN" in body["detail"]
    await get_json(client, "/error-monitor/health")


async def test_blank_token_counts_as_none(make_client: MakeClient) -> None:
    """An empty token (an env var set to "") never authenticates anything."""
    client = await make_client(token="  ")
    response = await client.post(
        "/error-monitor/monitor/start", headers={"Authorization": "Bearer "}
    )
    assert response.status == 403


async def test_protected_reads_need_the_token(make_client: MakeClient) -> None:
    """With protect_reads, GETs under /error-monitor/ need the token; probes and docs do not."""
    client = await make_client(protect_reads=True)
    await get_json(client, "/error-monitor/errors/patterns", 401)
    await get_json(client, "/error-monitor/errors/patterns", 200, headers=AUTH)
    await get_json(client, "/error-monitor/openapi.json")
    await get_json(client, "/health/ready")
    assert (await client.get("/")).status == 200
    no_token = await make_client(token=None, protect_reads=True)
    await get_json(no_token, "/error-monitor/health", 403)


def test_token_comparison() -> None:
    """Only "Bearer <token>" with the exact token matches (scheme case-insensitive)."""
    assert token_matches("Bearer abc", "abc")
    assert token_matches("bearer  abc ", "abc")
    assert not token_matches("Bearer abd", "abc")
    assert not token_matches("Basic abc", "abc")
    assert not token_matches(None, "abc")
    assert not token_matches("Bearer \udcff", "abc")


# --- limits and validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/error-monitor/errors/recent?hours=0",
        "/error-monitor/errors/recent?hours=-1",
        "/error-monitor/errors/recent?hours=721",
        "/error-monitor/errors/recent?hours=nan",
        "/error-monitor/errors/recent?hours=inf",
        "/error-monitor/errors/critical?hours=abc",
        "/error-monitor/errors/patterns?limit=0",
        "/error-monitor/errors/patterns?limit=1001",
        "/error-monitor/errors/patterns?limit=%C2%B2",
        "/error-monitor/errors/patterns?limit=" + "9" * 5000,
        "/error-monitor/errors/recent?hours=" + "9" * 400,
        "/error-monitor/errors/recent?hours=%00",
        "/error-monitor/rates?window=1y",
        "/error-monitor/errors/patterns/bad%20id",
    ],
)
async def test_invalid_query_is_400(make_client: MakeClient, path: str) -> None:
    """Out-of-range or malformed parameters are a 400 naming the parameter, not a 500."""
    body = await get_json(await make_client(), path, 400)
    assert body["error"] == "invalid parameter"
    assert body["detail"]["parameter"] in {"hours", "limit", "window", "group_id"}


PARSERS = [
    security.hours_param,
    security.limit_param,
    lambda r: security.bool_param(r, "create_pr"),
    security.ids_param,
    lambda r: security.required_id(r, "error_id"),
    lambda r: security.number_param(r, "interval", None, security.MAX_INTERVAL),
]


@given(st.text(max_size=40))
def test_parameter_parsers_accept_or_refuse_any_text(value: str) -> None:
    """Whatever text a parameter holds, parsing returns a value or raises a 400, nothing else."""
    names = ("hours", "limit", "create_pr", "error_ids", "error_id", "interval")
    request = make_mocked_request("GET", "/x?" + urlencode({name: value for name in names}))
    for parse in PARSERS:
        try:
            parse(request)
        except ApiError as exc:
            assert exc.status == 400


@pytest.mark.parametrize(
    "path",
    [
        "/error-monitor/fixes/generate-for-error",
        "/error-monitor/fixes/generate-for-error?error_id=a/b",
        "/error-monitor/fixes/generate-for-error?error_id=a1b2c3d4e5f6&create_pr=maybe",
        "/error-monitor/fixes/generate-batch",
        "/error-monitor/fixes/generate-batch?error_ids=,,",
        "/error-monitor/fixes/generate-batch?error_ids=" + ",".join(f"g{i}" for i in range(51)),
        "/error-monitor/monitor/start?interval=0",
        "/error-monitor/monitor/scan?hours=1000",
        "/error-monitor/monitor/scan?auto_fix=2",
    ],
)
async def test_invalid_post_is_400(make_client: MakeClient, path: str) -> None:
    """Mutations validate ids, id lists (at most 50), booleans, hours and intervals."""
    view = seeded_view()
    body = await post_json(await make_client(view), path, 400)
    assert body["error"] == "invalid parameter"
    assert view.calls == []


async def test_post_rate_limit_is_429(make_client: MakeClient) -> None:
    """The eleventh POST within a minute from one client is 429 with Retry-After."""
    client = await make_client()
    for _ in range(10):
        await post_json(client, "/error-monitor/monitor/start")
    response = await client.post("/error-monitor/monitor/start", headers=AUTH)
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert (await response.json())["error"] == "rate limited"
    await get_json(client, "/error-monitor/health")  # reads are not limited


async def test_wrong_tokens_cannot_lock_the_operator_out(make_client: MakeClient) -> None:
    """Wrong tokens spend their address's guess budget (401, then 429), but the right token
    has its own bucket and still works; a request with no token at all is always 401."""
    client = await make_client(post_burst=2)
    wrong = {"Authorization": "Bearer not-the-token"}
    codes = [(await client.post("/error-monitor/monitor/start", headers=wrong)).status
             for _ in range(3)]
    assert codes == [401, 401, 429]
    assert (await client.post("/error-monitor/monitor/start", headers=AUTH)).status == 200
    for _ in range(5):
        assert (await client.post("/error-monitor/monitor/start")).status == 401


async def test_the_right_token_is_rate_limited_per_token(make_client: MakeClient) -> None:
    """POSTs with the token are limited by the token's bucket (429 with Retry-After)."""
    client = await make_client(post_burst=2)
    codes = [(await client.post("/error-monitor/monitor/start", headers=AUTH)).status
             for _ in range(3)]
    assert codes == [200, 200, 429]


async def test_host_header_must_name_this_server(make_client: MakeClient) -> None:
    """With allowed_hosts, a request whose Host names another site (DNS rebinding: a page on
    evil.example resolved to 127.0.0.1) gets 421 on every route; this server's names work."""
    client = await make_client(allowed_hosts=frozenset({"127.0.0.1", "localhost", "::1"}))
    for path in ("/health/live", "/error-monitor/errors/patterns", "/metrics"):
        bad = await client.get(path, headers={"Host": "evil.example:9464", **AUTH})
        assert bad.status == 421, path
    for host in ("localhost:9464", "127.0.0.1", "[::1]:9464", "LOCALHOST."):
        assert (await client.get("/health/live", headers={"Host": host})).status == 200, host


def test_token_bucket_refills() -> None:
    """A bucket refills at its rate; buckets beyond the client cap are forgotten oldest first."""
    now = [0.0]
    limiter = RateLimiter(per_second=0.5, burst=2, max_clients=2, clock=lambda: now[0])
    assert limiter.take("a") == 0 and limiter.take("a") == 0
    assert limiter.take("a") == pytest.approx(2.0)
    now[0] = 2.0
    assert limiter.take("a") == 0
    limiter.take("b")
    limiter.take("c")
    assert limiter.take("a") == 0  # "a" was forgotten: a fresh bucket


def test_security_config_refuses_nonsense() -> None:
    """A zero rate or burst, or a zero body cap, is a configuration error, not a crash later."""
    for bad in ({"posts_per_minute": 0}, {"post_burst": 0}, {"max_body_bytes": 0}):
        with pytest.raises(ValueError):
            SecurityConfig(**bad)


async def test_large_body_is_413(make_client: MakeClient) -> None:
    """A POST body over the cap is 413, announced by length or sent chunked."""
    client = await make_client(max_body_bytes=1024)
    body = await post_json(client, "/error-monitor/monitor/start", 413, data=b"x" * 4096)
    assert body["error"] == "request body too large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 512

    chunked = await client.post("/error-monitor/monitor/start", headers=AUTH, data=chunks())
    assert chunked.status == 413
    assert (await chunked.json())["error"].startswith("request entity too large")


async def test_unknown_route_and_method_are_json(make_client: MakeClient) -> None:
    """404 and 405 come back as JSON errors too."""
    client = await make_client()
    assert (await get_json(client, "/error-monitor/nothing", 404))["error"] == "not found"
    response = await client.get("/error-monitor/monitor/start")
    assert response.status == 405
    assert (await response.json())["error"] == "method not allowed"


# --- failures and redaction ----------------------------------------------------------------------


class BrokenView(InMemoryView):
    """A view whose reads fail: the error middleware must hide the trace."""

    def groups(self, *, since: float | None = None) -> list[ErrorGroup]:
        raise RuntimeError("database is locked at /var/lib/watcher/state.db")


async def test_unexpected_failure_is_a_bare_500(make_client: MakeClient) -> None:
    """An exception in a handler becomes a 500 JSON without the trace or message; it is logged."""
    client = await make_client(BrokenView())
    with capture_logs() as logs:
        response = await client.get("/error-monitor/errors/patterns")
        text = await response.text()
    assert response.status == 500
    assert "Traceback" not in text and "database is locked" not in text
    assert (await response.json())["error"] == "internal error"
    assert [entry["event"] for entry in logs] == ["Request failed."]
    assert logs[0]["path"] == "/error-monitor/errors/patterns" and logs[0]["exc_info"]


async def test_every_body_is_redacted(make_client: MakeClient) -> None:
    """The redaction function sees every JSON body: data, errors and readiness alike."""
    view = seeded_view()
    view.group_list[0].samples[0].text = "token=SECRET-MARKER failed"
    view.source_status["loki"]["error"] = "auth SECRET-MARKER rejected"

    def redact(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("SECRET-MARKER", "[REDACTED]")
        if isinstance(value, dict):
            return {k: redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [redact(v) for v in value]
        return value

    client = await make_client(view, redact=redact)
    paths = [
        "/error-monitor/errors/patterns/a1b2c3d4e5f6",
        "/error-monitor/errors/recent",
        "/error-monitor/sources",
        "/health/ready",
    ]
    for path in paths:
        text = await (await client.get(path)).text()
        assert "SECRET-MARKER" not in text and "[REDACTED]" in text, path
    missing = await (await client.get("/error-monitor/errors/patterns/SECRET-MARKER")).json()
    assert missing["detail"] == "no error pattern with id [REDACTED]"


def test_diff_split_per_file() -> None:
    """A multi-file diff is cut per file (git or plain headers), keyed by the new path."""
    assert list(diff_by_file(DIFF)) == ["app/db.py", "app/pool.py"]
    plain = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"
    assert diff_by_file(plain) == {"x.py": plain}
    assert diff_by_file("") == {}
