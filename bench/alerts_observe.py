"""The alerter's cost on the pipeline's hot path: nanoseconds per group update in `observe`.

Run: python bench/alerts_observe.py [--updates N] [--destinations D] [--min-count M]

Feeds N updates of 200 live patterns (one new pattern and one threshold crossing per 100
updates, as a busy but sane service gives) to an Alerter with D webhook destinations, none of
which sends anything (the sender task is not started). Prints ns/update for: no alert-worthy
update at all, the realistic mix, and the mix with min_count > 1 (patterns held back, so every
update of a held pattern is counted).
"""

from __future__ import annotations

import argparse
import time

from watcher.alerts import Alerter
from watcher.alerts.rules import Route
from watcher.alerts.targets import WebhookTarget
from watcher.alerts.webhook import WebhookDestination
from watcher.model import Classification, ErrorGroup, GroupUpdate, LogEvent


def updates(n: int, patterns: int, worthy_every: int) -> list[GroupUpdate]:
    """n updates over `patterns` groups; every `worthy_every`-th one is new or a crossing."""
    groups = [
        ErrorGroup(
            id=f"g{i}",
            kind="template",
            template="x <*>",
            category="internal_error",
            severity="high",
            fixable=False,
            count=1,
        )
        for i in range(patterns)
    ]
    cls = Classification("internal_error", "high", False)
    event = LogEvent(message="boom", text="boom")
    out = []
    for i in range(n):
        worthy = worthy_every and i % worthy_every == 0
        new = bool(worthy) and (i // worthy_every) % 2 == 0
        out.append(GroupUpdate(groups[i % patterns], event, cls, new, bool(worthy) and not new))
    return out


def measure(batch: list[GroupUpdate], destinations: int, min_count: int, repeat: int = 5) -> float:
    """ns per update for `batch` fed in slices of 64 (the engine's batches): the best of
    `repeat` runs, each on a fresh Alerter (the machine is shared; the minimum is the cost)."""
    return min(_once(batch, destinations, min_count) for _ in range(repeat))


def _once(batch: list[GroupUpdate], destinations: int, min_count: int) -> float:
    route = Route(min_count=min_count, window=300.0, cooldown=900.0)
    dests = [
        WebhookDestination(f"d{i}", WebhookTarget("http://127.0.0.1:9/h"), route)
        for i in range(destinations)
    ]
    alerter = Alerter(dests, max_queue=10_000_000, rate_limit=0)
    start = time.perf_counter_ns()
    for i in range(0, len(batch), 64):
        alerter.observe(batch[i : i + 64])
    return (time.perf_counter_ns() - start) / len(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=400_000)
    parser.add_argument("--destinations", type=int, default=3)
    parser.add_argument("--min-count", type=int, default=5)
    args = parser.parse_args()
    quiet = updates(args.updates, 200, 0)
    mixed = updates(args.updates, 200, 100)
    print(f"{args.updates} updates, 200 patterns, {args.destinations} destinations")
    print(f"  no alert-worthy update       {measure(quiet, args.destinations, 1):8.0f} ns/update")
    print(f"  1 % new/crossing             {measure(mixed, args.destinations, 1):8.0f} ns/update")
    held = measure(mixed, args.destinations, args.min_count)
    print(f"  1 % new/crossing, min_count {args.min_count} {held:8.0f} ns/update")


if __name__ == "__main__":
    main()
