"""Alerts: which updates alert, cooldown, batching, payload shapes, retries, drain, redaction.

Delivery tests post real HTTP to the local receiver in tests/fakes/webhook_receiver.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from watcher.alerts import Alerter, RetryPolicy, WebhookTarget, build_payload, parse_target
from watcher.alerts.alert import digest, from_group
from watcher.alerts.delivery import parse_retry_after, scrub
from watcher.alerts.payloads import SLACK_SAMPLE_CHARS
from watcher.alerts.rules import Route
from watcher.alerts.webhook import WebhookDestination
from watcher.metrics import Metrics
from watcher.model import Classification, ErrorGroup, Frame, GroupUpdate, LogEvent

if TYPE_CHECKING:
    from tests.fakes.webhook_receiver import WebhookReceiver

# loaded as a plugin (not imported) so pytest registers the `webhook_receiver` fixture
pytest_plugins = ["tests.fakes.webhook_receiver"]

FAST = RetryPolicy(initial=0.01, cap=0.05, request_timeout=1.0)
ALERT_KEYS = {
    "group_id",
    "category",
    "severity",
    "count",
    "window_counts",
    "template",
    "exception_type",
    "top_frame",
    "first_seen",
    "last_seen",
    "sample",
    "pr_url",
    "fix_id",
    "service",
    "link",
}


class Clock:
    """A settable clock for the cooldown."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def group(gid: str = "g1", severity: str = "high", **fields: Any) -> ErrorGroup:
    values: dict[str, Any] = {
        "kind": "trace",
        "template": "connection to <*> refused",
        "category": "database_error",
        "fixable": True,
        "exception_type": "OperationalError",
        "top_frame": Frame("app/db.py", 42, "connect"),
        "count": 12,
        "first_seen": 1_700_000_000.0,
        "last_seen": 1_700_000_060.0,
        "window_counts": {"1m": 3, "5m": 12},
        **fields,
    }
    return ErrorGroup(id=gid, severity=severity, **values)


def update(
    g: ErrorGroup, *, new: bool = False, crossed: bool = False, text: str = ""
) -> GroupUpdate:
    text = text or f"OperationalError: connection to db-{g.id} refused"
    cls = Classification(g.category, g.severity, g.fixable)
    return GroupUpdate(g, LogEvent(message=text, text=text), cls, new, crossed)


def make(urls: list[str | WebhookTarget], **kw: Any) -> Alerter:
    kw.setdefault("batch_window", 0.05)
    kw.setdefault("retry", FAST)
    kw.setdefault("metrics", Metrics())
    return Alerter(urls, **kw)


def outcome(alerter: Alerter, name: str) -> float:
    assert isinstance(alerter.metrics, Metrics)
    value = alerter.metrics.registry.get_sample_value(
        "watcher_alerts_sent_total", {"outcome": name}
    )
    return value or 0.0


@contextlib.asynccontextmanager
async def running(alerter: Alerter) -> AsyncIterator[asyncio.Event]:
    """Run the sender for the block; on exit set shutdown and wait for the drain."""
    shutdown = asyncio.Event()
    task = asyncio.create_task(alerter.run(shutdown))
    try:
        yield shutdown
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 10)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- what fires ---------------------------------------------------------------------------------


async def test_threshold_fires_once_then_again_after_cooldown(
    webhook_receiver: WebhookReceiver,
) -> None:
    """A crossing alerts; a repeat inside the cooldown is suppressed; after it, it alerts again."""
    clock = Clock()
    alerter = make([webhook_receiver.url()], clock=clock, cooldown=900.0)
    g = group()
    async with running(alerter):
        alerter.observe([update(g, crossed=True)])
        first = await webhook_receiver.wait_for(1)
        clock.now += 899
        alerter.observe([update(g, crossed=True)])
        assert alerter.pending == 0
        clock.now += 2
        alerter.observe([update(g, crossed=True)])
        await webhook_receiver.wait_for(2)
    assert len(webhook_receiver.requests) == 2
    assert first[0].json["kind"] == "threshold"
    assert outcome(alerter, "suppressed") == 1
    assert outcome(alerter, "sent") == 2


async def test_new_critical_pattern_fires(webhook_receiver: WebhookReceiver) -> None:
    """A group seen for the first time at or above min_severity alerts as kind new."""
    alerter = make([webhook_receiver.url()])
    async with running(alerter):
        alerter.observe([update(group(severity="critical"), new=True)])
        (request,) = await webhook_receiver.wait_for(1)
    assert request.json["kind"] == "new"
    assert request.json["summary"] == "New error pattern"


async def test_below_min_severity_or_not_critical_does_not_fire(
    webhook_receiver: WebhookReceiver,
) -> None:
    """A medium crossing (minimum high), a new medium group and a plain update send nothing."""
    alerter = make([webhook_receiver.url()], min_severity="high")
    async with running(alerter):
        alerter.observe(
            [
                update(group("a", "medium"), crossed=True),
                update(group("b", "medium"), new=True),
                update(group("c", "critical")),
            ]
        )
        assert alerter.pending == 0
    assert webhook_receiver.requests == []


def test_no_webhooks_is_a_no_op() -> None:
    """With no webhooks configured observe queues nothing."""
    alerter = Alerter([])
    alerter.observe([update(group(severity="critical"), new=True, crossed=True)])
    assert alerter.pending == 0


async def test_run_without_webhooks_returns_on_shutdown() -> None:
    """run() with no webhooks just waits for shutdown."""
    shutdown = asyncio.Event()
    task = asyncio.create_task(Alerter([]).run(shutdown))
    shutdown.set()
    await asyncio.wait_for(task, 1)


def test_invalid_settings_are_rejected() -> None:
    """An unknown severity or a negative cooldown is a ValueError at construction."""
    with pytest.raises(ValueError, match="min_severity"):
        Alerter(["http://x/h"], min_severity="urgent")
    with pytest.raises(ValueError):
        Alerter(["http://x/h"], cooldown=-1)


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.floats(0, 400), st.booleans(), st.booleans()),
        max_size=40,
    )
)
def test_at_most_one_alert_per_pattern_per_cooldown(
    steps: list[tuple[int, float, bool, bool]],
) -> None:
    """Whatever the sequence of updates, a pattern's queued alerts are >= cooldown apart."""
    clock = Clock(0.0)
    alerter = Alerter(["http://127.0.0.1:9/h"], cooldown=900.0, clock=clock, max_queue=10_000)
    queued_at: dict[str, list[float]] = {}
    for gid, advance, new, crossed in steps:
        clock.now += advance
        before = alerter.pending
        alerter.observe([update(group(str(gid), "critical"), new=new, crossed=crossed)])
        if alerter.pending > before:
            queued_at.setdefault(str(gid), []).append(clock.now)
    for times in queued_at.values():
        assert all(b - a >= 900.0 for a, b in itertools.pairwise(times))


# --- batching -------------------------------------------------------------------------------------


async def test_alerts_within_the_window_are_one_message(webhook_receiver: WebhookReceiver) -> None:
    """Three crossings in one window reach each target as one request listing all three."""
    slack = webhook_receiver.url("/slack", scheme="slack+http")
    alerter = make([webhook_receiver.url("/json"), slack], batch_window=0.3)
    async with running(alerter):
        for gid in ("a", "b", "c"):
            alerter.observe([update(group(gid), crossed=True)])
            await asyncio.sleep(0.02)
        await webhook_receiver.wait_for(2)
    (generic,) = webhook_receiver.on("/json")
    (slack_request,) = webhook_receiver.on("/slack")
    assert generic.json["summary"] == "3 patterns crossed their threshold"
    assert [a["group_id"] for a in generic.json["alerts"]] == ["a", "b", "c"]
    blocks = slack_request.json["blocks"]
    assert slack_request.json["text"] == "3 patterns crossed their threshold"
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section"]
    assert outcome(alerter, "sent") == 2


async def test_long_batches_list_ten_and_count_the_rest(webhook_receiver: WebhookReceiver) -> None:
    """Thirteen patterns: ten sections then "and 3 more"; generic JSON says omitted 3."""
    slack = webhook_receiver.url("/slack", scheme="slack+http")
    alerter = make([webhook_receiver.url("/json"), slack])
    alerter.observe([update(group(f"g{i}"), crossed=True) for i in range(13)])
    async with running(alerter):
        await webhook_receiver.wait_for(2)
    (generic,) = webhook_receiver.on("/json")
    assert len(generic.json["alerts"]) == 10
    assert generic.json["omitted"] == 3
    blocks = webhook_receiver.on("/slack")[0].json["blocks"]
    assert len(blocks) == 12
    assert blocks[-1] == {"type": "context", "elements": [{"type": "mrkdwn", "text": "and 3 more"}]}


async def test_each_kind_is_its_own_message(webhook_receiver: WebhookReceiver) -> None:
    """A new pattern and a crossing in one window are two messages, the new one first."""
    alerter = make([webhook_receiver.url()])
    alerter.observe([update(group("a"), crossed=True), update(group("b", "critical"), new=True)])
    async with running(alerter):
        await webhook_receiver.wait_for(2)
    assert [r.json["kind"] for r in webhook_receiver.requests] == ["new", "threshold"]


async def test_pr_opened_alerts_despite_a_recent_threshold_alert(
    webhook_receiver: WebhookReceiver,
) -> None:
    """A PR alert carries the URL and fix id, and is not held back by the pattern's cooldown."""
    alerter = make([webhook_receiver.url()])
    g = group()
    alerter.observe([update(g, crossed=True)])
    alerter.pr_opened(g, "https://github.com/acme/app/pull/7", "fix-1")
    async with running(alerter):
        await webhook_receiver.wait_for(2)
    pr = webhook_receiver.requests[1].json
    assert pr["kind"] == "pr_opened"
    assert pr["summary"] == "Fix PR opened for 1 pattern"
    assert pr["alerts"][0]["pr_url"] == "https://github.com/acme/app/pull/7"
    assert pr["alerts"][0]["fix_id"] == "fix-1"


# --- payload shapes -------------------------------------------------------------------------------


async def test_generic_payload_has_exactly_these_keys(webhook_receiver: WebhookReceiver) -> None:
    """Generic JSON: kind, summary, alerts, omitted; each alert with the documented keys."""
    alerter = make([webhook_receiver.url()])
    alerter.observe([update(group(), crossed=True, text="boom")])
    async with running(alerter):
        (request,) = await webhook_receiver.wait_for(1)
    body = request.json
    assert set(body) == {"kind", "summary", "alerts", "omitted"}
    (alert,) = body["alerts"]
    assert set(alert) == ALERT_KEYS
    assert alert == {
        "group_id": "g1",
        "category": "database_error",
        "severity": "high",
        "count": 12,
        "window_counts": {"1m": 3, "5m": 12},
        "template": "connection to <*> refused",
        "exception_type": "OperationalError",
        "top_frame": {"file": "app/db.py", "line": 42, "function": "connect"},
        "first_seen": "2023-11-14T22:13:20Z",
        "last_seen": "2023-11-14T22:14:20Z",
        "sample": "boom",
        "pr_url": None,
        "fix_id": None,
        "service": None,
        "link": None,
    }
    assert request.headers["Content-Type"].startswith("application/json")


async def test_slack_payload_shape_and_escaping(webhook_receiver: WebhookReceiver) -> None:
    """Slack: text + blocks of mrkdwn sections; & < > escaped, so log text cannot @channel."""
    alerter = make([webhook_receiver.url(scheme="slack+http")])
    g = group(template="a<b> & `c` <!channel>")
    alerter.observe([update(g, crossed=True, text="x < y && z > w")])
    async with running(alerter):
        (request,) = await webhook_receiver.wait_for(1)
    body = request.json
    assert set(body) == {"text", "blocks"}
    header, section = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "1 pattern crossed its threshold"},
    }
    assert set(section) == {"type", "text"}
    assert section["text"]["type"] == "mrkdwn"
    text = section["text"]["text"]
    assert "`a&lt;b&gt; &amp; \u02cbc\u02cb &lt;!channel&gt;`" in text
    assert "```x &lt; y &amp;&amp; z &gt; w```" in text
    assert "<!channel>" not in text
    assert "*OperationalError* at `app/db.py:42` in `connect`" in text


def test_slack_pr_link_and_clipping_keep_entities_whole() -> None:
    """A PR URL becomes a Slack link; a long sample is clipped without half an &amp;."""
    alert = from_group("pr_opened", group(), "&" * 2000, pr_url="https://gh/p/1", fix_id="f1")
    text = build_payload("slack", "pr_opened", [alert])["blocks"][1]["text"]["text"]
    assert "Pull request: <https://gh/p/1|https://gh/p/1> (fix `f1`)" in text
    sample = text.split("```")[1]
    assert len(sample) <= SLACK_SAMPLE_CHARS
    assert sample.endswith("&amp;…")
    assert len(text) <= 3000


def test_target_format_rule() -> None:
    """slack+/json+ prefixes win, then host hooks.slack.com means Slack, else generic JSON."""
    assert parse_target("https://hooks.slack.com/services/T/B/X").format == "slack"
    assert parse_target("https://example.com/hook").format == "json"
    explicit = parse_target("slack+https://chat.example.com/hooks/abc")
    assert (explicit.format, explicit.url) == ("slack", "https://chat.example.com/hooks/abc")
    assert parse_target("json+https://hooks.slack.com/x").format == "json"
    assert parse_target("https://example.com/a+b").format == "json"
    target = WebhookTarget("https://hooks.slack.com/services/T/B/SECRET", "slack")
    assert "SECRET" not in repr(target)
    assert target.host == "hooks.slack.com"
    with pytest.raises(ValueError):
        parse_target("ftp+https://example.com/x")


# --- delivery -------------------------------------------------------------------------------------


async def test_500_then_200_is_retried_and_delivered_once(
    webhook_receiver: WebhookReceiver,
) -> None:
    """A 500 is retried; the 200 that follows counts one sent message and no failure."""
    webhook_receiver.reply(500, body="oops")
    alerter = make([webhook_receiver.url()])
    alerter.observe([update(group(), crossed=True)])
    async with running(alerter):
        first, second = await webhook_receiver.wait_for(2)
    assert len(webhook_receiver.requests) == 2
    assert first.body == second.body
    assert (outcome(alerter, "sent"), outcome(alerter, "failed")) == (1, 0)


async def test_persistent_500_counts_failed_and_raises_nothing(
    webhook_receiver: WebhookReceiver,
) -> None:
    """After max_retries the message is given up, counted failed, and run() ends cleanly."""
    webhook_receiver.always(503)
    alerter = make([webhook_receiver.url()], max_retries=2)
    alerter.observe([update(group(), crossed=True)])
    async with running(alerter):
        await webhook_receiver.wait_for(3)
        await asyncio.sleep(0.1)
    assert len(webhook_receiver.requests) == 3
    assert (outcome(alerter, "sent"), outcome(alerter, "failed")) == (0, 1)


async def test_429_retry_after_is_respected(webhook_receiver: WebhookReceiver) -> None:
    """A 429 with Retry-After: 1 is retried no sooner than one second later."""
    webhook_receiver.reply(429, headers={"Retry-After": "1"})
    alerter = make([webhook_receiver.url()])
    alerter.observe([update(group(), crossed=True)])
    async with running(alerter):
        first, second = await webhook_receiver.wait_for(2)
    assert second.at - first.at >= 1.0
    assert outcome(alerter, "sent") == 1


async def test_retry_after_beyond_the_cap_gives_up(webhook_receiver: WebhookReceiver) -> None:
    """A Retry-After longer than max_retry_after is not waited out: the message fails now."""
    webhook_receiver.reply(429, headers={"Retry-After": "3600"})
    retry = RetryPolicy(initial=0.01, cap=0.05, max_retry_after=60.0)
    alerter = make([webhook_receiver.url()], retry=retry)
    alerter.observe([update(group(), crossed=True)])
    async with running(alerter):
        await webhook_receiver.wait_for(1)
        await asyncio.sleep(0.1)
    assert len(webhook_receiver.requests) == 1
    assert outcome(alerter, "failed") == 1


async def test_timeout_is_retried(webhook_receiver: WebhookReceiver) -> None:
    """An answer slower than the request timeout counts as a failure and is retried."""
    webhook_receiver.reply(200, delay=2.0)
    retry = RetryPolicy(initial=0.01, cap=0.05, request_timeout=0.2)
    alerter = make([webhook_receiver.url()], retry=retry)
    alerter.observe([update(group(), crossed=True)])
    async with running(alerter):
        await webhook_receiver.wait_for(2)
    assert outcome(alerter, "sent") == 1


async def test_client_error_is_not_retried(webhook_receiver: WebhookReceiver) -> None:
    """A 400 (bad payload) is final: one request, one failure."""
    webhook_receiver.reply(400, body="invalid_payload")
    alerter = make([webhook_receiver.url()])
    alerter.observe([update(group(), crossed=True)])
    async with running(alerter):
        await webhook_receiver.wait_for(1)
        await asyncio.sleep(0.1)
    assert len(webhook_receiver.requests) == 1
    assert outcome(alerter, "failed") == 1


async def test_full_queue_drops_are_counted(webhook_receiver: WebhookReceiver) -> None:
    """Past max_queue, observe drops (and counts) alerts instead of blocking."""
    alerter = make([webhook_receiver.url()], max_queue=2)
    alerter.observe([update(group(f"g{i}"), crossed=True) for i in range(5)])
    assert alerter.pending == 2
    assert outcome(alerter, "dropped") == 3
    async with running(alerter):
        (request,) = await webhook_receiver.wait_for(1)
    assert [a["group_id"] for a in request.json["alerts"]] == ["g0", "g1"]


async def test_shutdown_drains_without_waiting_for_the_window(
    webhook_receiver: WebhookReceiver,
) -> None:
    """Queued alerts are sent at shutdown at once, not after the batch window."""
    alerter = make([webhook_receiver.url()], batch_window=60.0)
    shutdown = asyncio.Event()
    task = asyncio.create_task(alerter.run(shutdown))
    alerter.observe([update(group(), crossed=True)])
    await asyncio.sleep(0.05)
    shutdown.set()
    await asyncio.wait_for(task, 5)
    assert len(webhook_receiver.requests) == 1
    assert outcome(alerter, "sent") == 1


async def test_drain_timeout_bounds_shutdown(webhook_receiver: WebhookReceiver) -> None:
    """A target that keeps failing cannot hold shutdown past drain_timeout; the loss is counted."""
    webhook_receiver.always(500)
    retry = RetryPolicy(initial=30.0, cap=30.0, rng=lambda: 1.0)
    alerter = make([webhook_receiver.url()], retry=retry, drain_timeout=0.3)
    alerter.observe([update(group(), crossed=True)])
    started = time.monotonic()
    async with running(alerter):
        await webhook_receiver.wait_for(1)
    assert time.monotonic() - started < 5
    assert outcome(alerter, "failed") == 1


# --- secrets --------------------------------------------------------------------------------------


def mark_everything(marker: str) -> ErrorGroup:
    return group(
        f"g-{marker}",
        category=f"cat-{marker}",
        template=f"tpl {marker}",
        exception_type=f"Err{marker}",
        top_frame=Frame(f"app/{marker}.py", 1, f"fn_{marker}"),
        window_counts={f"1m{marker}": 1},
    )


@pytest.mark.parametrize("scheme", ["http", "slack+http"])
async def test_redaction_is_applied_to_every_string(
    webhook_receiver: WebhookReceiver, scheme: str
) -> None:
    """Every log-derived string in either format passes through redact before it is sent."""
    alerter = make(
        [webhook_receiver.url(scheme=scheme)], redact=lambda s: s.replace("SECRET", "[red]")
    )
    g = mark_everything("SECRET")
    alerter.observe([update(g, crossed=True, text="token=SECRET")])
    alerter.pr_opened(g, "https://gh/pull/SECRET", "fix-SECRET")
    async with running(alerter):
        await webhook_receiver.wait_for(2)
    for request in webhook_receiver.requests:
        assert b"SECRET" not in request.body
        assert b"[red]" in request.body


async def test_a_failing_redactor_drops_the_batch_not_the_sender(
    webhook_receiver: WebhookReceiver,
) -> None:
    """If redact raises nothing unredacted is sent, the batch is counted dropped, run goes on."""

    def redact(text: str) -> str:
        if "bad" in text:
            raise RuntimeError("redactor bug")
        return text

    alerter = make([webhook_receiver.url()], redact=redact)
    async with running(alerter):
        alerter.observe([update(group("bad"), crossed=True)])
        await asyncio.sleep(0.2)
        alerter.observe([update(group("good"), crossed=True)])
        (request,) = await webhook_receiver.wait_for(1)
    assert request.json["alerts"][0]["group_id"] == "good"
    assert outcome(alerter, "dropped") == 1


async def test_webhook_url_never_appears_in_logs(webhook_receiver: WebhookReceiver) -> None:
    """Retries, give-ups and connection errors log the host, never the URL's secret path."""
    webhook_receiver.reply(500, body="nope")
    secret_path = "/services/T000/B000/XXSECRETXX"
    dead = f"http://127.0.0.1:{closed_port()}{secret_path}"
    alerter = make([webhook_receiver.url(secret_path), dead], max_retries=1)
    alerter.observe([update(group(), crossed=True)])
    with structlog.testing.capture_logs() as logs:
        async with running(alerter):
            await webhook_receiver.wait_for(2)
            await asyncio.sleep(0.2)
    assert outcome(alerter, "failed") == 1
    assert outcome(alerter, "sent") == 1
    assert logs, "expected retry and failure logs"
    assert "XXSECRETXX" not in repr(logs)
    hosts = {entry.get("host") for entry in logs}
    assert f"127.0.0.1:{webhook_receiver.port}" in hosts


def test_scrub_hides_url_and_path() -> None:
    """An error text quoting the URL, or only its path, is scrubbed to the host."""
    target = WebhookTarget("https://hooks.slack.com/services/T/B/SECRET", "slack")
    text = scrub(f"failed for {target.url} (path /services/T/B/SECRET)", target)
    assert "SECRET" not in text
    assert "hooks.slack.com" in text


def test_retry_after_parsing() -> None:
    """Retry-After accepts delay-seconds and HTTP dates; junk and absence are None."""
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_new_kinds_have_their_own_titles_and_the_digest_lists_no_pattern() -> None:
    """resolved / regressed / new messages say so in their summary; a digest (Slack or JSON)
    carries only its count sentence, no pattern."""
    g = group("g1")
    resolved = build_payload("json", "resolved", [from_group("resolved", g)])
    assert resolved["summary"] == "1 pattern resolved"
    back = build_payload("json", "regressed", [from_group("regressed", g)] * 2)
    assert back["summary"] == "2 resolved patterns are back"
    held = digest(12, 300.0, 1_700_000_000.0)
    assert build_payload("json", "digest", [held]) == {
        "kind": "digest",
        "summary": "12 more patterns alerted in the last 5 m",
        "alerts": [],
        "omitted": 12,
    }
    slack = build_payload("slack", "digest", [held])
    assert slack["text"] == "12 more patterns alerted in the last 5 m"
    assert [b["type"] for b in slack["blocks"]] == ["header"]


async def test_legacy_webhooks_and_built_destinations_alert_side_by_side(
    webhook_receiver: WebhookReceiver,
) -> None:
    """`[alerts] webhooks` URLs and built destinations can be mixed: each gets the alert, the
    legacy one with the Alerter's min_severity, the built one with its own."""
    strict = WebhookDestination(
        "strict", WebhookTarget(webhook_receiver.url("/strict")), Route(min_severity="critical")
    )
    alerter = make([webhook_receiver.url("/legacy"), strict], min_severity="medium")
    async with running(alerter):
        alerter.observe([update(group("m", "medium"), crossed=True)])
        alerter.observe([update(group("c", "critical"), crossed=True)])
        await webhook_receiver.wait_for(2)
    legacy = [a["group_id"] for r in webhook_receiver.on("/legacy") for a in r.json["alerts"]]
    assert sorted(legacy) == ["c", "m"]
    assert [a["group_id"] for a in webhook_receiver.on("/strict")[0].json["alerts"]] == ["c"]
