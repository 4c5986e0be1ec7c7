"""End-to-end accuracy on generated production logs whose ground truth is known.

bench/genlogs.py writes each error event from one of ~26 patterns (one logging statement or one
crash site each) and knows which lines belong to which event. A correct pipeline finds every
error event with its exact line span, puts each pattern in exactly one group of its own, and
gives it the pattern's category.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

from watcher.group.table import GroupTable
from watcher.model import GroupUpdate, LogEvent, RawLine
from watcher.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import genlogs


@pytest.mark.parametrize(("n_lines", "seed"), [(4000, 7), (20000, 3)])
def test_every_pattern_is_one_group_with_its_category(n_lines: int, seed: int) -> None:
    """Each generated error pattern maps to exactly one group, of the pattern's category, and
    every error event is found with its exact line span."""
    records = list(genlogs.generate_records(n_lines, seed, 0.05))
    lines, truth = [], {}
    for record in records:
        first = len(lines) + 1
        lines.extend(record.lines)
        if record.pattern is not None:
            truth[first] = (record.pattern, len(lines))
    seen: list[tuple[LogEvent, GroupUpdate | None]] = []
    pipeline = Pipeline(GroupTable(), on_event=lambda e, u: seen.append((e, u)))
    raw = [
        RawLine(t, source="gen", stream="s", cursor=i, line_no=i)
        for i, t in enumerate(lines, start=1)
    ]
    for start in range(0, len(raw), 2000):
        pipeline.feed(raw[start : start + 2000])
    pipeline.flush(force=True)

    spans = {e.first_line: e.last_line for e, _ in seen}
    assert spans == {first: last for first, (_, last) in truth.items()}
    groups_of: dict[str, set[str]] = defaultdict(set)
    for event, update in seen:
        assert update is not None
        pattern = truth[event.first_line][0]
        groups_of[pattern].add(update.group.id)
        assert update.classification.category == genlogs.PATTERNS_BY_NAME[pattern].category, pattern
    assert all(len(ids) == 1 for ids in groups_of.values()), groups_of
    all_ids = [next(iter(ids)) for ids in groups_of.values()]
    assert len(set(all_ids)) == len(all_ids)  # no two patterns share a group
