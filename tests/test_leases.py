"""The lease primitive (the store contract, on SQLite and PostgreSQL): one holder at a time, an
epoch that grows at every new tenure, expiry by the database's clock, fenced writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from watcher.model import Fix
from watcher.store import Fence, LeaseLost, StateStore

TTL = 30.0


@pytest.fixture
def store(make_store: Callable[..., StateStore]) -> StateStore:
    """A store on each backend of the contract."""
    return make_store()


def make_fix(status: str = "proposed", pr_url: str = "") -> Fix:
    """A fix for group g1."""
    return Fix(id="f1", group_id="g1", status=status, created=1.0, pr_url=pr_url)


def test_one_holder_at_a_time_and_the_holder_keeps_its_epoch(store: StateStore) -> None:
    """The first acquire gets epoch 1; another holder gets None while it is in force; the
    holder acquiring again keeps epoch 1 (it is a renewal, not a new tenure)."""
    assert store.acquire_lease("leader", "a", TTL) == 1
    assert store.acquire_lease("leader", "b", TTL) is None
    assert store.acquire_lease("leader", "a", TTL) == 1
    assert [(x.name, x.holder, x.epoch, x.held) for x in store.lease_holders()] == [
        ("leader", "a", 1, True)
    ]


def test_an_expired_lease_goes_to_the_next_holder_with_a_new_epoch(store: StateStore) -> None:
    """Once the ttl ran out another holder takes the lease at epoch 2; the old holder can
    neither renew nor release it, and taking it back is a third tenure (epoch 3)."""
    assert store.acquire_lease("leader", "a", 0.3) == 1
    time.sleep(0.4)
    assert store.lease_holders()[0].held is False
    assert store.renew_lease("leader", "a", 1, TTL) is False
    assert store.acquire_lease("leader", "b", TTL) == 2
    assert store.renew_lease("leader", "a", 1, TTL) is False
    assert store.release_lease("leader", "a", 1) is False
    assert store.lease_holders()[0].holder == "b"
    assert store.release_lease("leader", "b", 2) is True
    assert store.acquire_lease("leader", "a", TTL) == 3


def test_renewal_extends_the_lease_and_keeps_the_epoch(store: StateStore) -> None:
    """A renewal at the right epoch pushes the expiry out and keeps the epoch; at a wrong
    epoch, or by another holder, it is refused."""
    epoch = store.acquire_lease("leader", "a", 5.0)
    assert epoch == 1
    before = store.lease_holders()[0].expires_in
    assert store.renew_lease("leader", "a", epoch, TTL) is True
    after = store.lease_holders()[0]
    assert after.epoch == 1 and after.expires_in > before + 20
    assert store.renew_lease("leader", "a", 2, TTL) is False
    assert store.renew_lease("leader", "b", 1, TTL) is False
    assert store.renew_lease("nothing", "a", 1, TTL) is False


def test_a_released_lease_is_free_at_once_and_its_epoch_never_goes_back(
    store: StateStore,
) -> None:
    """Releasing hands the lease over without waiting for the ttl; the row stays, so the
    next tenure's epoch is above every earlier one, even the releaser's own."""
    assert store.acquire_lease("leader", "a", TTL) == 1
    assert store.release_lease("leader", "a", 1) is True
    assert store.release_lease("leader", "a", 1) is False
    assert store.acquire_lease("leader", "b", TTL) == 2
    assert store.release_lease("leader", "b", 2) is True
    assert store.acquire_lease("leader", "a", TTL) == 3


def test_leases_are_independent_and_listed_by_prefix(store: StateStore) -> None:
    """Each lease name has its own holder and epoch; lease_holders filters by name prefix
    (the fleet view lists source leases apart from the leader's)."""
    assert store.acquire_lease("leader", "a", TTL) == 1
    assert store.acquire_lease("source:loki", "b", TTL) == 1
    assert store.acquire_lease("source:cw_x", "a", TTL) == 1
    assert [x.name for x in store.lease_holders("source:")] == ["source:cw_x", "source:loki"]
    assert [x.holder for x in store.lease_holders("leader")] == ["a"]
    assert store.lease_holders("source%") == []


def test_a_deposed_holders_fenced_write_fails_and_writes_nothing(store: StateStore) -> None:
    """A fix saved under the leader lease lands while the lease is held; once another holder
    took the lease over, the old holder's write raises LeaseLost and the stored fix is the new
    holder's, untouched (a deposed leader can never mark a second PR)."""
    old = Fence("leader", "a", store.acquire_lease("leader", "a", 0.3) or 0)
    store.save_fix(make_fix(), fence=old)
    assert store.get_fix("f1") is not None
    time.sleep(0.4)
    with pytest.raises(LeaseLost):  # expired, not yet taken over: refused too
        store.save_fix(make_fix("pr_open", "https://x/pr/1"), fence=old)
    new = Fence("leader", "b", store.acquire_lease("leader", "b", TTL) or 0)
    assert new.epoch == 2
    store.save_fix(make_fix("pr_open", "https://x/pr/2"), fence=new)
    with pytest.raises(LeaseLost):
        store.save_fix(make_fix("pr_open", "https://x/pr/1"), fence=old)
    fix = store.get_fix("f1")
    assert fix is not None and fix.pr_url == "https://x/pr/2"
    assert store.lease_holders()[0].epoch == 2


def test_racing_acquirers_get_one_tenure(make_store: Callable[..., Any]) -> None:
    """Eight watchers (each its own store connection) acquiring one free lease at the same
    moment: exactly one gets it, at epoch 1."""
    stores = [make_store() for _ in range(8)]
    start = threading.Barrier(len(stores))
    got: dict[int, int | None] = {}

    def acquire(i: int) -> None:
        start.wait()
        got[i] = stores[i].acquire_lease("leader", f"w{i}", TTL)

    threads = [threading.Thread(target=acquire, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, epoch in got.items() if epoch is not None]
    assert len(winners) == 1 and got[winners[0]] == 1
    assert stores[0].lease_holders()[0].holder == f"w{winners[0]}"


def test_postgresql_leases_keep_the_servers_time_not_the_watchers(
    make_store: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a watcher whose clock runs an hour ahead cannot take a lease another
    holds: expiry is judged by the server's clock."""
    if make_store.backend != "postgresql":
        pytest.skip("SQLite is one host: its clock is the only one")
    first, skewed = make_store(), make_store()
    assert first.acquire_lease("leader", "a", TTL) == 1
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    assert skewed.acquire_lease("leader", "b", TTL) is None
    assert skewed.lease_holders()[0].expires_in > TTL - 5
