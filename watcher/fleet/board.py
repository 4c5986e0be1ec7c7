"""The fleet as the API, `watcher status` and Prometheus see it: one entry per instance row.

An instance is "up" while its heartbeat is younger than the TTL, "stopped" after a clean exit,
and "lost" when its heartbeat stopped without one (a crash, a kill, a network cut).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from watcher.fleet.leader import LEADER_LEASE
from watcher.http.serialize import iso
from watcher.store.instances import Instance

_ATTACHED: weakref.WeakKeyDictionary[Any, FleetCollector] = weakref.WeakKeyDictionary()
State = Literal["up", "lost", "stopped"]
STATES: tuple[State, ...] = ("up", "lost", "stopped")


def holder_instance(holder: str) -> str:
    """The instance name of a lease holder id ("<instance>#<token>", see leader.holder_id)."""
    return holder.rpartition("#")[0] or holder


def state_of(instance: Instance, now: float, ttl: float) -> State:
    """up | lost | stopped, from the row and its heartbeat's age."""
    if instance.stopped_at is not None:
        return "stopped"
    return "up" if now - instance.last_seen < ttl else "lost"


def instance_object(
    instance: Instance, now: float, ttl: float, leases: Sequence[str] = ()
) -> dict[str, Any]:
    """One instance for the API: where it runs, since when, its heartbeat, what it reads."""
    return {
        "name": instance.name,
        "state": state_of(instance, now, ttl),
        "host": instance.host,
        "pid": instance.pid,
        "version": instance.version,
        "started_at": iso(instance.started_at),
        "last_seen": iso(instance.last_seen),
        "last_seen_age_seconds": round(max(0.0, now - instance.last_seen), 1),
        "leader": instance.leader,  # None: unknown (no leader election on this state)
        "sources": list(instance.sources),
        "leases": list(leases),  # shared sources (or other leases) this instance holds
    }


def fleet_object(
    me: str,
    instances: Sequence[Instance],
    now: float,
    ttl: float,
    *,
    shared: bool,
    holders: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The fleet: this instance's name, whether the state is shared, every instance (by name)
    with the leases each holds (`holders`: lease name -> holding instance). The leader is the
    holder of the leader lease (the store's word) where there is one, else the instance whose
    heartbeat said it leads."""
    holders = dict(holders or {})
    held: dict[str, list[str]] = {}
    for lease, holder in sorted(holders.items()):
        if lease != LEADER_LEASE:
            held.setdefault(holder, []).append(lease)
    listed = [instance_object(i, now, ttl, held.get(i.name, ())) for i in instances]
    leader = holders.get(LEADER_LEASE)
    if leader is not None:
        for entry in listed:
            entry["leader"] = entry["name"] == leader
    else:
        leader = next((i["name"] for i in listed if i["leader"]), None)
    return {
        "instance": me,
        "shared": shared,
        "lease_ttl_seconds": ttl,
        "instances": listed,
        "up": sum(1 for i in listed if i["state"] == "up"),
        "leader": leader,
    }


class FleetCollector(Collector):
    """watcher_fleet_* at scrape time from the rows the heartbeat last read (no store I/O)."""

    def __init__(self, fleet: Any) -> None:
        self.fleet = fleet

    @classmethod
    def attach(cls, registry: Any, fleet: Any) -> None:
        """Export `fleet` on `registry` (a registry reused by a later daemon follows it)."""
        found = _ATTACHED.get(registry)
        if found is None:
            found = _ATTACHED[registry] = cls(fleet)
            registry.register(found)
        found.fleet = fleet

    def collect(self) -> Iterator[Any]:
        fleet = self.fleet
        now, ttl = fleet.clock(), fleet.ttl
        states = GaugeMetricFamily(
            "watcher_fleet_instances", "Watcher instances on this state, by state.",
            labels=["state"],
        )  # fmt: skip
        counted = {state: 0 for state in STATES}
        age = GaugeMetricFamily(
            "watcher_fleet_instance_last_seen_age_seconds",
            "Seconds since each instance's last heartbeat (instances not cleanly stopped).",
            # not "instance": Prometheus gives that label to the scrape target
            labels=["watcher_instance"],
        )
        for instance in fleet.instances:
            state = state_of(instance, now, ttl)
            counted[state] += 1
            if state != "stopped":
                age.add_metric([instance.name], max(0.0, now - instance.last_seen))
        for state, n in counted.items():
            states.add_metric([state], n)
        errors = CounterMetricFamily(
            "watcher_fleet_heartbeat_errors",
            "Heartbeats this instance could not write (the state store unreachable).",
        )
        errors.add_metric([], fleet.errors)
        yield from (states, age, errors)
