"""Builds the pipeline pieces from a Config: one place, shared by run, scan and replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watcher.classify import Rule, compile_rule
from watcher.config import Config, parse_duration
from watcher.engine import Engine, EngineOptions
from watcher.group.table import GroupTable
from watcher.group.window import label_for
from watcher.metrics import Metrics
from watcher.model import GroupUpdate, LogEvent
from watcher.pipeline import ParseLimits, Pipeline
from watcher.sources.base import SourceConfig
from watcher.store import StateStore


def seconds(value: Any) -> float:
    """A duration from config: a number of seconds or a string such as "5m"."""
    return float(value) if isinstance(value, int | float) else parse_duration(str(value))


def build_redactor(config: Config) -> Any:
    """The secret redactor for everything that leaves the process (logs, API, prompts, PRs)."""
    from watcher.fix.redact import Redactor

    return Redactor(extra_patterns=config.redact.patterns)


def rules_from(config: Config) -> list[Rule]:
    """The user's `[[classify.rules]]` as compiled rules, in file order."""
    rules = []
    for i, r in enumerate(config.classify.rules):
        rules.append(
            Rule(
                match=compile_rule(r.match),  # RE2: linear time
                on=tuple(r.on),
                category=r.category,
                severity=r.severity,
                fixable=r.fixable,
                ignore=r.ignore,
                name=f"classify.rules[{i}]",
            )
        )
    return rules


def build_table(config: Config) -> GroupTable:
    """The group table configured by `[grouping]`."""
    g = config.grouping
    spans = [seconds(w) for w in g.windows]
    windows = [(label_for(s), s) for s in spans]
    return GroupTable(
        windows=windows,
        max_groups=g.max_groups,
        samples_per_group=g.samples_per_group,
        alert_count=g.alert_count,
        alert_window=label_for(seconds(g.alert_window)),
    )


def build_pipeline(
    config: Config,
    metrics: Metrics,
    *,
    period: tuple[float | None, float | None] = (None, None),
    on_event: Callable[[LogEvent, GroupUpdate | None], None] | None = None,
    clock: Callable[[], float] | None = None,
    kind: type[Pipeline] = Pipeline,
) -> Pipeline:
    """Table + rules + parse limits -> the synchronous pipeline (a worker's is a subclass)."""
    p = config.parse
    limits = ParseLimits(
        max_event_lines=p.max_event_lines,
        max_event_bytes=p.max_event_bytes,
        multiline_timeout=seconds(p.multiline_timeout),
    )
    return kind(
        build_table(config),
        rules=rules_from(config),
        metrics=metrics,
        limits=limits,
        period=period,
        on_event=on_event,
        app_paths=p.app_paths,
        clock=clock,
    )


def build_engine(
    config: Config,
    pipeline: Pipeline,
    sources: list[SourceConfig],
    *,
    metrics: Metrics,
    store: StateStore | None,
    follow: bool,
    period: tuple[float | None, float | None] = (None, None),
    progress: Any = None,
    intake: Any = None,
) -> Engine:
    """The engine around a pipeline; wires eviction of groups into the store."""
    w = config.watcher
    shared = None
    if follow and store is not None and store.shared:
        from watcher.fleet.leader import holder_id
        from watcher.fleet.shared_sources import SharedSources

        # per process, as the leader's: a paused watcher whose name a new one took over (a
        # restarted pod, a duplicate name) cannot pass the new one's fence as its own
        holder = holder_id(getattr(store, "instance", "") or w.instance)
        shared = SharedSources(store, holder, seconds(w.lease_ttl), metrics=metrics)
    options = EngineOptions(
        follow=follow,
        period=period,
        queue_size=w.queue_size,
        shutdown_timeout=seconds(w.shutdown_timeout),
        persist_interval=seconds(w.persist_interval),
        max_unsaved_groups=w.max_unsaved_groups,
        max_line_bytes=config.parse.max_line_bytes,
        progress=progress,
        intake=intake,
        shared=shared,
        workers=build_workers(config, pipeline, metrics, follow=follow, period=period),
    )
    engine = Engine(pipeline, sources, store=store, metrics=metrics, options=options)

    # evictions are counted in watcher_groups_evicted by the engine, once per batch
    pipeline.table.on_evict = engine.evicted
    pipeline.table.on_evict_clean = engine.clean_evicted
    pipeline.table.dump_evicted = store is not None  # else the engine drops evicted groups
    pipeline.table.recall = engine.recall
    return engine


def build_workers(
    config: Config,
    pipeline: Pipeline,
    metrics: Metrics,
    *,
    follow: bool,
    period: tuple[float | None, float | None] = (None, None),
) -> Any:
    """The worker processes `[watcher] workers` asks for, or None (1: all in this process)."""
    from watcher.workers import worker_count

    count = worker_count(config.watcher.workers)
    if count <= 1:
        return None
    from watcher.workers.pool import WorkerPool

    pool = WorkerPool(
        count,
        config,
        follow=follow,
        period=period,
        ship_ignored=pipeline.on_event is not None,
        metrics=metrics,
    )
    pool.install(pipeline)
    return pool
