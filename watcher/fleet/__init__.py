"""The fleet: every watcher on one shared state — who runs, where, since when, which sources.

`identity` names this process (instance name, node, pid liveness), `claim` takes the name at
start (refusing a second live watcher with it), `heartbeat` renews it and keeps the fleet's
rows for the API, `board` shapes them (and their Prometheus metrics). `leader`: which one runs
the fixes, the alert delivery and the periodic jobs; `outbox`: how every watcher's alerts go
out once, from it; `roles`: that work wired onto the daemon's fix pipeline and alerter.
`shared_sources`: a `shared = true` source is read by one watcher of the fleet at a time,
under a source lease (watcher/store/leases.py), from a checkpoint every watcher reads.
"""

from watcher.fleet.claim import InstanceTaken
from watcher.fleet.heartbeat import Fleet

__all__ = ["Fleet", "InstanceTaken"]
