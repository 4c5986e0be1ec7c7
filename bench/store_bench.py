"""Store throughput on a real file: `python bench/store_bench.py [groups]`.

Prints numbers; asserts nothing (timed asserts do not belong in tests/).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from watcher.model import ErrorGroup, Frame, Sample
from watcher.store import Store


def make_groups(n: int, count: int) -> list[ErrorGroup]:
    """n trace groups of a realistic size: four frames, two sources."""
    frames = [Frame(f"app/module_{i}.py", 10 * i, f"handler_{i}") for i in range(4)]
    return [
        ErrorGroup(
            id=f"{i:016x}",
            kind="trace",
            template=f"ConnectionError: could not connect to <*> after <*> retries ({i})",
            category="database_error",
            severity="high",
            fixable=True,
            suggested_fix="connection pooling",
            exception_type="ConnectionError",
            top_frame=frames[-1],
            frames=frames,
            count=count,
            first_seen=1_700_000_000.0,
            last_seen=1_700_000_000.0 + count,
            sources={"api": count},
        )
        for i in range(n)
    ]


def timed(label: str, n: int, action: Callable[[], object]) -> None:
    """Run action once and print its rate."""
    start = time.perf_counter()
    action()
    elapsed = time.perf_counter() - start
    print(f"{label:<44} {elapsed * 1000:8.1f} ms  {n / elapsed:>10,.0f}/s")


def main() -> None:
    """Time the calls the pipeline makes most."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "state.db") as store:
        fresh, updated = make_groups(n, 1), make_groups(n, 2)
        timed(f"upsert_groups: {n} new, one call", n, lambda: store.upsert_groups(fresh))
        timed(f"upsert_groups: {n} updates, one call", n, lambda: store.upsert_groups(updated))
        sample = [Sample(1_700_000_000.0, "api", "ConnectionError: ..." * 5, 1)]
        ids = [g.id for g in fresh[:1000]]
        timed(
            "add_samples: 1000 calls, 1 sample each",
            1000,
            lambda: [store.add_samples(group_id, sample) for group_id in ids],
        )
        timed(
            "list_groups(limit=100): 100 calls",
            100,
            lambda: [store.list_groups(limit=100) for _ in range(100)],
        )


if __name__ == "__main__":
    main()
