"""No alert storms: per-destination kinds, min_count within a window, cooldowns, the global
rate cap with its counted digest, resolves only where a pattern was opened, and the lifecycle
hook (`notify_transition`).

Routing tests read what the Router queued for each destination (no I/O needed); the digest
is also followed through a real HTTP post to the local webhook receiver.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_alerts import FAST, Clock, group, outcome, running, update
from watcher.alerts import Alerter
from watcher.alerts.rules import Route
from watcher.alerts.targets import WebhookTarget
from watcher.alerts.webhook import WebhookDestination
from watcher.metrics import Metrics

if TYPE_CHECKING:
    from tests.fakes.webhook_receiver import WebhookReceiver

pytest_plugins = ["tests.fakes.webhook_receiver"]


def hook(name: str, url: str = "http://127.0.0.1:9/h", **route: Any) -> WebhookDestination:
    """A webhook destination named `name` with the given Route settings."""
    return WebhookDestination(name, WebhookTarget(url), Route(**route))


def alerter(*destinations: WebhookDestination, clock: Clock, **kw: Any) -> Alerter:
    kw.setdefault("metrics", Metrics())
    return Alerter(list(destinations), clock=clock, retry=FAST, batch_window=0.02, **kw)


def queued(a: Alerter) -> list[tuple[str, str, str]]:
    """(destination, kind, group id) of every queued alert, emptying the queue."""
    return [(a.destinations[i].name, x.kind, x.group_id) for i, x in a.router.take()]


def test_first_alert_waits_for_min_count_within_window() -> None:
    """With min_count 3 in 60 s, a new pattern alerts on its third event inside a minute; a
    pattern whose three events span more than the window does not alert."""
    clock = Clock(0.0)
    a = alerter(hook("ops", min_count=3, window=60.0), clock=clock)
    fast, slow = group("fast"), group("slow")
    a.observe([update(fast, new=True), update(slow, new=True)])
    clock.now += 20
    a.observe([update(fast), update(slow)])
    assert queued(a) == []
    clock.now += 20
    a.observe([update(fast)])
    assert queued(a) == [("ops", "new", "fast")]
    clock.now += 100
    a.observe([update(slow)])  # third event of "slow", 140 s after its first
    assert queued(a) == []


def test_a_held_threshold_crossing_is_sent_once_min_count_is_met() -> None:
    """A crossing that comes before min_count is met is not lost: it goes out, as a threshold
    alert, with the event that meets min_count."""
    clock = Clock(0.0)
    a = alerter(hook("pager", min_count=2, window=60.0, kinds=("threshold",)), clock=clock)
    g = group("old")
    a.observe([update(g, crossed=True)])
    assert queued(a) == []
    clock.now += 5
    a.observe([update(g)])
    assert queued(a) == [("pager", "threshold", "old")]


def test_kinds_route_each_alert_to_the_destinations_that_want_it() -> None:
    """`kinds` splits the alerts: news to chat, threshold crossings and resolves to the pager;
    a resolve goes only where the pattern was opened."""
    clock = Clock(0.0)
    chat = hook("chat", kinds=("new", "pr_opened"))
    pager = hook("pager", kinds=("threshold", "resolved"))
    a = alerter(chat, pager, clock=clock)
    g = group("g1")
    a.observe([update(g, new=True)])
    assert queued(a) == [("chat", "new", "g1")]
    a.observe([update(g, crossed=True)])
    assert queued(a) == [("pager", "threshold", "g1")]
    a.notify_transition(g, "resolved")
    assert queued(a) == [("pager", "resolved", "g1")]
    a.pr_opened(g, "https://github.com/acme/app/pull/1", "fix-1")
    assert queued(a) == [("chat", "pr_opened", "g1")]


def test_cooldown_is_per_destination() -> None:
    """A repeat crossing 10 minutes later reaches the destination with a 5 m cooldown and not
    the one with a 1 h cooldown."""
    clock = Clock(0.0)
    a = alerter(hook("chat", cooldown=300.0), hook("pager", cooldown=3600.0), clock=clock)
    g = group("g1")
    a.observe([update(g, crossed=True)])
    assert len(queued(a)) == 2
    clock.now += 600
    a.observe([update(g, crossed=True)])
    assert queued(a) == [("chat", "threshold", "g1")]
    assert outcome(a, "suppressed") == 1


def test_min_severity_is_per_destination_and_resolves_follow_opens() -> None:
    """A high pattern reaches chat (min high) and not the pager (min critical); its resolve
    goes to chat only, since the pager never heard of it."""
    clock = Clock(0.0)
    a = alerter(hook("chat"), hook("pager", min_severity="critical"), clock=clock)
    g = group("g1", "high")
    a.observe([update(g, crossed=True)])
    assert queued(a) == [("chat", "threshold", "g1")]
    a.notify_transition(g, "resolved")
    assert queued(a) == [("chat", "resolved", "g1")]


def test_regression_alerts_inside_the_cooldown_and_bad_kinds_are_rejected() -> None:
    """A pattern resolved and then regressed alerts as regressed even within its cooldown (it
    is news); a transition other than resolved/regressed is a ValueError."""
    clock = Clock(0.0)
    a = alerter(hook("chat"), clock=clock)
    g = group("g1")
    a.observe([update(g, crossed=True)])
    a.notify_transition(g, "resolved")
    clock.now += 60
    a.notify_transition(g, "regressed")
    assert [k for _, k, _ in queued(a)] == ["threshold", "resolved", "regressed"]
    with pytest.raises(ValueError, match="resolved or regressed"):
        a.notify_transition(g, "ignored")


def test_quiet_patterns_resolve_and_busy_ones_stay_open() -> None:
    """At a tick, a pattern with no event for resolve_after is resolved; one that kept logging
    stays open."""
    clock = Clock(0.0)
    a = alerter(hook("chat"), clock=clock, resolve_after=600.0)
    quiet, busy = group("quiet"), group("busy")
    a.observe([update(quiet, crossed=True), update(busy, crossed=True)])
    queued(a)
    clock.now += 500
    a.observe([update(busy)])
    clock.now += 200
    a.router.tick(clock.now)
    assert queued(a) == [("chat", "resolved", "quiet")]


async def test_rate_cap_sends_a_counted_digest(webhook_receiver: WebhookReceiver) -> None:
    """With a cap of 3 per 5 m, fifteen patterns crossing at once are one message listing 3,
    then — when the 5 m are over — one digest "12 more patterns alerted in the last 5 m"
    instead of twelve more messages; the held ones are counted `digested`."""
    clock = Clock(0.0)
    a = alerter(hook("ops", webhook_receiver.url()), clock=clock, rate_limit=3, rate_window=300.0)
    a.tick = 0.02
    async with running(a):
        a.observe([update(group(f"g{i}"), crossed=True) for i in range(15)])
        (first,) = await webhook_receiver.wait_for(1)
        clock.now += 300
        _, digest = await webhook_receiver.wait_for(2)
    assert len(first.json["alerts"]) == 3
    assert digest.json == {
        "kind": "digest",
        "summary": "12 more patterns alerted in the last 5 m",
        "alerts": [],
        "omitted": 12,
    }
    assert outcome(a, "digested") == 12
    assert len(webhook_receiver.requests) == 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.floats(0, 120)), max_size=60))
def test_cap_bounds_every_window_and_the_digest_counts_the_rest(
    steps: list[tuple[int, float]],
) -> None:
    """Whatever the crossings, no 100 s window holds more than 4 alerts to one destination, and
    every alert past the cap shows up, counted, in a later digest."""
    clock = Clock(0.0)
    a = alerter(
        hook("ops", cooldown=0.0), clock=clock, rate_limit=4, rate_window=100.0, resolve_after=0
    )
    sent: list[float] = []
    digested = 0
    for gid, advance in steps:
        clock.now += advance
        a.router.tick(clock.now)
        a.observe([update(group(str(gid)), crossed=True)])
        for _, alert in a.router.take():
            if alert.kind == "digest":
                digested += alert.count
            else:
                sent.append(clock.now)
    clock.now += 101  # past the window whatever the float rounding of the sums above
    a.router.tick(clock.now)
    digested += sum(x.count for _, x in a.router.take() if x.kind == "digest")
    assert all(b - a_ >= 100 for a_, b in zip(sent, sent[4:], strict=False))
    assert digested == outcome(a, "digested")
    assert digested + len(sent) == len(steps)


def test_each_destination_has_its_own_budget() -> None:
    """A destination over its cap does not take alerts from another one under it."""
    clock = Clock(0.0)
    a = alerter(hook("a"), hook("b", min_severity="critical"), clock=clock, rate_limit=2)
    a.observe([update(group(f"h{i}", "high"), crossed=True) for i in range(3)])
    a.observe([update(group("c", "critical"), crossed=True)])
    counts = Counter(name for name, _, _ in queued(a))
    assert counts == {"a": 2, "b": 1}


def test_one_snapshot_is_shared_by_all_destinations() -> None:
    """An alert going to several destinations is snapshotted once (redacted once later)."""
    clock = Clock(0.0)
    a = alerter(hook("a"), hook("b"), hook("c"), clock=clock)
    a.observe([update(group("g"), crossed=True)])
    alerts = [x for _, x in a.router.take()]
    assert len(alerts) == 3
    assert all(x is alerts[0] for x in alerts)


def test_a_pattern_resolved_for_quiet_that_logs_again_alerts_as_regressed() -> None:
    """A pattern the alerter resolved because it went quiet is back with its next event: one
    `regressed` alert (re-opening it where it was open, despite the cooldown), not silence."""
    clock = Clock(0.0)
    a = alerter(hook("pager", cooldown=3600.0), clock=clock, resolve_after=600.0)
    g = group("flaky")
    a.observe([update(g, crossed=True)])
    clock.now += 700
    a.router.tick(clock.now)
    assert [k for _, k, _ in queued(a)] == ["threshold", "resolved"]
    clock.now += 60
    a.observe([update(g), update(g)])
    assert queued(a) == [("pager", "regressed", "flaky")]
    clock.now += 700
    a.router.tick(clock.now)
    assert queued(a) == [("pager", "resolved", "flaky")]
