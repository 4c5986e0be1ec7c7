"""`watcher scan` and `watcher replay`: one bounded pass of the pipeline over a window.

Checkpoints are neither read nor moved; the state DB is touched only when a path is given, and
then only after the pass: its groups are merged in (see `save_groups`), so scanning the same
window twice never doubles a count. With auto-fix, the fix pipeline then runs over the
candidates among the groups found, and the result carries its analyses for the report.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from watcher import report
from watcher.config import Config
from watcher.group import lifecycle
from watcher.group.table import fingerprint_version
from watcher.metrics import Metrics
from watcher.model import (
    SEVERITY_RANK,
    Activity,
    ErrorGroup,
    Fix,
    GroupUpdate,
    LogEvent,
    Sample,
    Stats,
)
from watcher.sources.base import SourceConfig
from watcher.store import MEMORY, StateStore, open_store
from watcher.wiring import build_engine, build_pipeline, build_redactor

# A stored group keeps these statuses when a scan finds it again: a human or a merge set them.
KEPT_STATUSES = frozenset({"fixed", "ignored"})


# repr=False: on Python 3.11 asyncio.run's exit formats the main task, result included, once
# (signal.getsignal on its SIGINT handler builds a ValueError message): a repr of every group
# and sample, ~20 MB of text at 10,000 groups.
@dataclass(repr=False)
class ScanResult:
    """What one bounded pass found."""

    stats: Stats
    groups: list[ErrorGroup]
    failed_sources: dict[str, str] = field(default_factory=dict)
    empty_sources: list[str] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)  # the fix attempts of this run
    analyses: dict[str, report.Analysis] = field(default_factory=dict)  # by group id

    def __repr__(self) -> str:
        return f"<ScanResult {len(self.groups)} groups, {len(self.fixes)} fixes>"

    def worst_severity_rank(self) -> int:
        return max((SEVERITY_RANK[g.severity] for g in self.groups), default=-1)


def event_json(
    event: LogEvent, update: GroupUpdate | None, redact: Callable[[str], str] = str
) -> str:
    """One error event as the `--emit events` JSON line; `redact` runs on the log text before
    it is JSON-encoded (on the encoded line, escaped quotes hid `"password": "…"` from it)."""
    top = event.top_frame
    doc: dict[str, Any] = {
        "source": event.source,
        "stream": event.stream,
        "first_line": event.first_line,
        "last_line": event.last_line,
        "group": update.group.id if update else None,
        "category": update.classification.category if update else None,
        "severity": update.group.severity if update else None,
        "ignored": update is None,
        "exception_type": event.exception_type,
        "top_frame": top.to_dict() if top else None,
        "message": redact(event.message),
        "timestamp": event.timestamp,
        "level": event.level,
    }
    return json.dumps(doc, ensure_ascii=False)


def event_printer(
    out: IO[str], redact: Callable[[str], str] = str
) -> Callable[[LogEvent, GroupUpdate | None], None]:
    """An on_event hook that writes one JSON object per error event, through `redact`."""

    def emit(event: LogEvent, update: GroupUpdate | None) -> None:
        out.write(event_json(event, update, redact) + "\n")

    return emit


class Progress:
    """A one-line progress display on a terminal (stderr), at most a few times a second."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last = 0.0
        self.started = time.monotonic()

    def __call__(self, stats: Stats, groups: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.25:
            return
        self.last = now
        rate = stats.lines / max(now - self.started, 1e-6)
        self.stream.write(
            f"\r{stats.lines:,} lines  {stats.error_events:,} errors  {groups:,} groups"
            f"  {rate:,.0f} lines/s "
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 72 + "\r")
        self.stream.flush()


async def scan(
    config: Config,
    sources: list[SourceConfig],
    *,
    period: tuple[float | None, float | None] = (None, None),
    on_event: Callable[[LogEvent, GroupUpdate | None], None] | None = None,
    state_path: str | None = None,
    metrics: Metrics | None = None,
    progress: bool = False,
    autofix: bool = False,
) -> ScanResult:
    """Read every source's window once, through the full pipeline; return groups and stats.

    `autofix`: then run the fix pipeline over the candidates (config `[autofix]`, dry run
    included), recording fixes in the state DB (in memory when no `state_path`).
    """
    metrics = metrics or Metrics()
    pipeline = build_pipeline(config, metrics, period=period, on_event=on_event)
    show = Progress(sys.stderr) if progress and sys.stderr.isatty() else None
    engine = build_engine(
        config,
        pipeline,
        sources,
        metrics=metrics,
        store=None,
        follow=False,
        period=period,
        progress=show,
    )
    try:
        stats = await engine.run(asyncio.Event())
    finally:
        if show is not None:
            show.close()
    stats.duplicate_lines = int(_sum_counter(metrics, "watcher_duplicate_lines_total"))
    failed = {n: str(s.failed) for n, s in engine.sources.items() if s.failed is not None}
    empty = [n for n, s in engine.sources.items() if s.batches == 0]
    result = ScanResult(stats, pipeline.table.snapshot(), failed, empty)
    if state_path or autofix:
        samples = config.grouping.samples_per_group
        redact = build_redactor(config).redact
        store = open_store(
            state_url(config, state_path),
            password_env=config.watcher.state_password_env,
            instance=config.watcher.instance,
            metrics=metrics,
            samples_per_group=samples,
            redact=redact,
        )
        try:
            await asyncio.to_thread(save_groups, store, result.groups)
            if autofix:
                await _autofix(config, store, result, metrics)
        finally:
            store.close()
    return result


def state_url(config: Config, state_path: str | None) -> str:
    """The state a scan records into: `--state` (a path or a URL), else an in-memory store;
    the configured `[watcher] state` when it is that path or a server."""
    if state_path is None:
        return f"sqlite://{MEMORY}"
    if "://" in state_path:
        return state_path
    configured = config.watcher
    if configured.state and configured.state_path == state_path:
        return configured.state
    return f"sqlite://{state_path}"


def save_groups(store: StateStore, groups: list[ErrorGroup]) -> None:
    """Merge a pass's groups into the store, in one transaction.

    The larger count wins (a daemon's running total, or this window: re-scanning a window must
    not add it twice), the seen times widen, only new samples are added, and a stored "fixed" or
    "ignored" status stays — also on the in-memory group, so the report and the fix pipeline
    see it.
    """
    merged: list[ErrorGroup] = []
    new_samples: dict[str, list[Sample]] = {}
    owners = {fp: gid for fp, gid, _ in store.fingerprints()}
    fingerprints: list[tuple[str, str, int]] = []
    activity: list[Activity] = []
    for group in groups:
        # a fingerprint merged into another pattern by hand counts there (merges stick)
        group.id = owners.get(group.id, group.id)
    # one read for the pass (a round trip per group on PostgreSQL: a scan finding 10k patterns
    # paid 10k of them)
    stored_groups = store.get_groups([group.id for group in groups])
    for group in groups:
        stored = stored_groups.get(group.id)
        if stored is not None and stored.status in KEPT_STATUSES:
            group.status = stored.status
        if stored is None:
            fingerprints.append((group.id, group.id, fingerprint_version(group.kind)))
        else:
            entry = lifecycle.carry(group, stored)
            if entry is not None:
                activity.append(entry)
                lifecycle.Lifecycle().notify(group, entry)
        merged.append(_merged(group, stored))
        known = {(s.timestamp, s.text) for s in stored.samples} if stored else set()
        new_samples[group.id] = [s for s in group.samples if (s.timestamp, s.text) not in known]
    store.commit(merged, new_samples, fingerprints=fingerprints, activity=activity)


def _merged(group: ErrorGroup, stored: ErrorGroup | None) -> ErrorGroup:
    if stored is None:
        return group
    sources = dict(stored.sources)
    for name, count in group.sources.items():
        sources[name] = max(sources.get(name, 0), count)
    return dataclasses.replace(
        group,
        count=max(group.count, stored.count),
        # 0 is "no timestamp" (lines without one): the earliest real time, else 0
        first_seen=min((t for t in (group.first_seen, stored.first_seen) if t), default=0.0),
        last_seen=max(group.last_seen, stored.last_seen),
        sources=sources,
        tags=group.tags or stored.tags,
        buckets=group.buckets or stored.buckets,
        flushed=stored.flushed,  # a shared store adds only what this window adds
    )


async def _autofix(config: Config, store: StateStore, result: ScanResult, metrics: Metrics) -> None:
    """Refresh PR states, run the fix pipeline on the candidates, collect the analyses."""
    from watcher.fix.pipeline import FixPipeline, report_analysis  # heavy: anthropic, PyGithub

    async with FixPipeline.from_config(config, store, metrics=metrics) as fixer:
        if not config.autofix.dry_run:
            merged = {f.group_id for f in await fixer.refresh_prs() if f.status == "merged"}
            for group in result.groups:
                if group.id in merged:
                    group.status = "fixed"
        result.fixes = await fixer.run_candidates(result.groups)
        ids = [g.id for g in result.groups]
        latest = await asyncio.to_thread(fixer.latest_fixes, ids)
    result.analyses = {gid: report_analysis(fix) for gid, fix in latest.items()}


def _sum_counter(metrics: Metrics, name: str) -> float:
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total
