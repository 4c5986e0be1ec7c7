"""Worker processes: the per-line work of file and command sources on every core (issue 15).

`[watcher] workers = N` (or "auto": one per core) runs each file/command source in one of N
child processes (`child.py`), which reads it and does everything per line: parse, multi-line
assembly, classification and the masking of new messages. The parent (`pool.py`) owns the
group table, metrics, alerts and the store, and gets one `wire.Shipment` per batch: counter
deltas, safe cursors and the error events only. One source lives in one worker, so its streams'
lines are assembled and ordered as in one process; templates are mined by the parent's single
miner, so one statement read by two workers is one group.

Other source types (stdin, push sources, shared sources of a fleet) stay in the parent.
"""

from __future__ import annotations

import os
from typing import Any

# source types a worker can host: they need nothing of the parent's (no HTTP intake, no lease)
PORTABLE = frozenset({"file", "command"})


def worker_count(value: Any) -> int:
    """`[watcher] workers` as a number of processes ("auto": the cores this process may use)."""
    if value == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1
    return int(value)
