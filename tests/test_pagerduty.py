"""The PagerDuty destination against the Events API v2 fake in tests/fakes/pagerduty.py.

The alerter posts through the real aiohttp client; the fake validates every event as the
public API does and keeps PagerDuty's alerts by dedup_key, so the tests read the outcome
(an alert triggered, then resolved) rather than the requests made.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from tests.test_alerts import FAST, Clock, group, outcome, running, update
from watcher.alerts import Alerter
from watcher.alerts.destination import DestinationContext
from watcher.alerts.pagerduty import PagerDutyConfig
from watcher.fix.redact import Redactor
from watcher.metrics import Metrics

if TYPE_CHECKING:
    from tests.fakes.pagerduty import FakePagerDuty

pytest_plugins = ["tests.fakes.pagerduty"]
SECRET = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"


def alerter_for(
    fake: FakePagerDuty, clock: Clock | None = None, route: dict[str, Any] | None = None, **kw: Any
) -> Alerter:
    """An Alerter with one PagerDuty destination (`route`: its routing keys) posting to `fake`."""
    env = {"PD_KEY": fake.routing_key}
    config = PagerDutyConfig(
        routing_key_env="PD_KEY", url=fake.url, source="web-1", **(route or {})
    )
    destination = config.build(DestinationContext(env=env))
    kw.setdefault("batch_window", 0.02)
    kw.setdefault("retry", FAST)
    return Alerter([destination], clock=clock or Clock(), metrics=Metrics(), tick=0.05, **kw)


async def until(check: Any, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    return check()


async def test_trigger_then_resolve_one_alert_by_group_id(pagerduty: FakePagerDuty) -> None:
    """A crossing triggers one PagerDuty alert keyed by the group id, with the severity mapped
    (high -> error) and the pattern in custom_details; a repeat trigger lands on the same alert,
    and the lifecycle's resolve closes it."""
    alerter = alerter_for(pagerduty, route={"cooldown": 0.0})
    g = group("pay-timeout", "high", sources={"checkout": 3})
    async with running(alerter):
        alerter.observe([update(g, crossed=True)])
        assert await until(lambda: pagerduty.open_alert("pay-timeout"))
        alerter.observe([update(g, crossed=True)])
        assert await until(lambda: len(pagerduty.alerts[0].events) == 2)
        alerter.notify_transition(g, "resolved")
        assert await until(lambda: pagerduty.alerts[0].status == "resolved")
    (alert,) = pagerduty.alerts
    payload = alert.payload
    assert payload["severity"] == "error"
    assert payload["source"] == "web-1"
    assert payload["component"] == "checkout"
    assert payload["summary"] == "[threshold] database_error: connection to <*> refused"
    assert payload["custom_details"]["group_id"] == "pay-timeout"
    assert payload["custom_details"]["count"] == 12
    assert set(pagerduty.statuses) == {202}
    assert outcome(alerter, "sent") == 3


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("high", "error"), ("medium", "warning"), ("low", "info")],
)
async def test_severity_is_mapped_to_pagerdutys_four(
    pagerduty: FakePagerDuty, severity: str, expected: str
) -> None:
    """watcher's severities map onto PagerDuty's critical / error / warning / info."""
    alerter = alerter_for(pagerduty, route={"min_severity": "low"})
    async with running(alerter):
        alerter.observe([update(group("g", severity), new=True)])
        assert await until(lambda: pagerduty.alerts)
    assert pagerduty.alerts[0].payload["severity"] == expected


async def test_custom_details_and_summary_are_redacted(pagerduty: FakePagerDuty) -> None:
    """A secret in the template or the sample line never reaches PagerDuty: the alerter's
    redactor (the project's own) runs over everything before the event is built."""
    alerter = alerter_for(pagerduty, redact=Redactor().redact)
    g = group("leak", "critical", template=f"stripe key {SECRET} rejected")
    async with running(alerter):
        alerter.observe([update(g, new=True, text=f"auth failed api_key={SECRET}")])
        assert await until(lambda: pagerduty.alerts)
    body = str(pagerduty.requests)
    assert SECRET not in body
    assert "auth failed" in pagerduty.alerts[0].payload["custom_details"]["sample"]


async def test_429_is_retried_with_backoff_and_delivered_once(pagerduty: FakePagerDuty) -> None:
    """Throttled twice (429), the event is sent again after a backoff and accepted (202) once:
    one PagerDuty alert, one message counted sent."""
    pagerduty.throttle(2)
    alerter = alerter_for(pagerduty)
    async with running(alerter):
        alerter.observe([update(group("busy", "critical"), new=True)])
        assert await until(lambda: pagerduty.alerts)
    assert pagerduty.statuses == [429, 429, 202]
    assert len(pagerduty.alerts) == 1
    assert outcome(alerter, "sent") == 1


async def test_400_is_not_retried_and_counts_failed(pagerduty: FakePagerDuty) -> None:
    """A wrong routing key is a 400 "invalid event": sending it again cannot help, so it is
    sent once and counted failed."""
    env = {"PD_KEY": "not-the-key"}
    config = PagerDutyConfig(routing_key_env="PD_KEY", url=pagerduty.url)
    destination = config.build(DestinationContext(env=env))
    alerter = Alerter([destination], retry=FAST, metrics=Metrics(), batch_window=0.02)
    async with running(alerter):
        alerter.observe([update(group("x", "critical"), new=True)])
        assert await until(lambda: outcome(alerter, "failed") == 1)
    assert pagerduty.statuses == [400]
    assert pagerduty.alerts == []


async def test_quiet_pattern_resolves_its_incident(pagerduty: FakePagerDuty) -> None:
    """A pattern with no event for resolve_after is resolved in PagerDuty."""
    clock = Clock()
    alerter = alerter_for(pagerduty, clock, resolve_after=300.0)
    g = group("flaky", "critical")
    async with running(alerter):
        alerter.observe([update(g, crossed=True)])
        assert await until(lambda: pagerduty.open_alert("flaky"))
        clock.now += 299
        await asyncio.sleep(0.2)  # several ticks: not quiet long enough yet
        assert pagerduty.open_alert("flaky")
        clock.now += 2
        assert await until(lambda: pagerduty.alerts[0].status == "resolved")


def test_missing_routing_key_is_a_clear_error() -> None:
    """Without the routing key's variable the destination cannot be built, and says which."""
    config = PagerDutyConfig(routing_key_env="PD_ROUTING")
    with pytest.raises(ValueError, match=r"routing_key_env: \$PD_ROUTING is not set"):
        config.build(DestinationContext(env={}))
