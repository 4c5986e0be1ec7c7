"""The alert outbox (watcher/fleet/outbox.py) between watchers on one PostgreSQL database:
the same alert decided by several watchers is sent once, by the leader only; a new leader
sends what was queued before it led; a deposed leader claims nothing; the store holds no
secret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from watcher.alerts import Alert
from watcher.alerts.rules import Route
from watcher.fleet.leader import Leader
from watcher.fleet.outbox import AlertOutbox, decode
from watcher.store import StateStore, open_store

SECRET = "ghp_R8mVq2xT7nLp4sKd9wYb3HcJ6fGz1aE5uQoI"


class Hook:
    """A destination as the outbox sees it (name, route, re-send interval)."""

    def __init__(self, name: str = "ops", resend_interval: float = 0.0) -> None:
        self.name, self.route, self.resend_interval = name, Route(cooldown=900.0), resend_interval

    async def send(self, poster: Any, alerts: Any) -> Any:
        raise AssertionError("the outbox never sends")


def alert(kind: str = "new", group_id: str = "g1", **fields: Any) -> Alert:
    """An alert for pattern `group_id`."""
    base: dict[str, Any] = {
        "category": "internal_error", "severity": "high", "count": 3,
        "template": "KeyError: <*>", "top_frame": ("app/x.py", 3, "f"),
        "sample": f"token={SECRET}", "window_counts": {"5m": 3},
    }  # fmt: skip
    return Alert(kind=kind, group_id=group_id, **{**base, **fields})  # type: ignore[arg-type]


def redact(text: str) -> str:
    """The watchers' redactor, reduced to the one secret here."""
    return text.replace(SECRET, "[REDACTED]")


@pytest.fixture
def stores(pg_url: str) -> Iterator[list[StateStore]]:
    """Three watchers' connections to one database."""
    opened = [open_store(pg_url) for _ in range(3)]
    yield opened
    for store in opened:
        store.close()


async def watchers(stores: list[StateStore], clock: Any = None) -> list[AlertOutbox]:
    """An outbox per watcher, each with its Leader; the first one leads."""
    outboxes = []
    for i, store in enumerate(stores):
        leader = Leader(store, f"w{i}#1", ttl=30.0)
        await leader.step()
        options = {"clock": clock} if clock is not None else {}
        outboxes.append(AlertOutbox(store, leader, [Hook()], redact=redact, **options))
    assert [o.leader.is_leader for o in outboxes] == [True, False, False]
    return outboxes


async def test_an_alert_three_watchers_decide_is_sent_once_by_the_leader(
    stores: list[StateStore],
) -> None:
    """Three watchers queue the same "new" alert: the followers get nothing to send, the
    leader gets it once (redacted, frame and windows intact), and never again."""
    a, b, c = await watchers(stores)
    assert await b.exchange([(0, alert())]) == []
    assert await c.exchange([(0, alert())]) == []
    [(i, sent)] = await a.exchange([(0, alert())])
    assert i == 0 and sent == alert(sample="token=[REDACTED]")
    assert await a.exchange([(0, alert())]) == []
    assert await b.exchange([]) == []


async def test_a_new_leader_sends_what_was_queued_and_the_old_one_claims_nothing(
    stores: list[StateStore],
) -> None:
    """Alerts queued while the leader was deposed go out once, from the watcher that leads
    next; the deposed leader's claim is refused by the fence."""
    a, b, _ = await watchers(stores)
    assert a.leader.epoch is not None
    await b.exchange([(0, alert("threshold", "g2"))])
    stores[0].release_lease("leader", a.leader.holder, a.leader.epoch)
    await b.leader.step()
    assert b.leader.is_leader
    assert await a.exchange([]) == []  # still believes it leads: the fence says no
    sent = await b.exchange([(0, alert("new", "g3"))])
    assert [x.group_id for _, x in sent] == ["g2", "g3"]  # oldest first
    assert await b.exchange([]) == []


async def test_dedupe_keys_by_kind(stores: list[StateStore]) -> None:
    """`new` once per pattern whenever decided; `threshold` again in the next cooldown slot;
    `pr_opened` once per fix; a digest is never merged; a re-sending destination takes the
    same pattern again in its next re-send slot."""
    now = [1_000_000.0]
    outbox = (await watchers(stores, clock=lambda: now[0]))[0]
    keys = {outbox.key(0, alert(), now[0]), outbox.key(0, alert("threshold"), now[0])}
    later = now[0] + 901
    assert outbox.key(0, alert(), later) in keys
    assert outbox.key(0, alert("threshold"), later) not in keys
    pr = alert("pr_opened", fix_id="fix-1")
    assert outbox.key(0, pr, now[0]) == outbox.key(0, pr, later)
    assert outbox.key(0, alert("digest"), now[0]) != outbox.key(0, alert("digest"), later)
    outbox.destinations = (Hook("am", resend_interval=60.0),)
    assert outbox.key(0, alert(), now[0]) != outbox.key(0, alert(), now[0] + 61)


def test_the_payload_round_trips() -> None:
    """What the outbox stores decodes to the alert it was given (after redaction)."""
    from watcher.fleet.outbox import encode

    original = alert(pr_url="https://x/pr/1", fix_id="fix-1")
    assert decode(encode(original, redact)) == alert(
        sample="token=[REDACTED]", pr_url="https://x/pr/1", fix_id="fix-1"
    )


async def test_the_shared_database_never_holds_a_secret(
    stores: list[StateStore], pg_url: str
) -> None:
    """A follower's queued alert reaches the database redacted."""
    import psycopg

    _, b, _ = await watchers(stores)
    await b.exchange([(0, alert())])
    with psycopg.connect(pg_url) as conn:
        payloads = [r[0] for r in conn.execute("SELECT payload FROM alert_outbox")]
    assert len(payloads) == 1 and SECRET not in payloads[0] and "[REDACTED]" in payloads[0]
