"""Every Prometheus metric watcher exports, in one place, on a registry of its own.

Label values come from bounded sets only: source names (from config), categories, severities,
fixed reason words. Never a message, a path read from a log, or a group id.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

# upstream: the log store itself dropped entries; out_of_window: a source cut lines outside a scan;
# late: entries that reached the log store later than a source's max_lateness while it was away
DROP_REASONS = ("queue_full", "upstream", "out_of_window", "late")
# watcher_state_errors_total{kind}: every kind the store and the engine count
STATE_ERROR_KINDS = (
    "open",
    "corrupt",
    "empty",
    "write",
    "read",  # a store that cannot be read (a PostgreSQL server away)
    "disk_full",
    "read_only",
    "miner_state",
)
FIX_STATUSES = ("pr_open", "patched", "dry_run", "analyzed", "rejected", "failed", "skipped")
LLM_OUTCOMES = ("ok", "error", "malformed", "budget")
ALERT_OUTCOMES = ("sent", "failed", "dropped", "suppressed")

# A `_created` series beside every counter doubles what Prometheus scrapes and stores for a
# timestamp no watcher rule or dashboard reads (and a restart shows in `_total` resets anyway).
disable_created_metrics()


class _PerEventCounter(Counter):
    """A labelled counter counted once per error event: `labels` finds a child made before
    without prometheus_client's checks and lock (~1.4 us a call, ~2 % of a flood's replay)."""

    def labels(self, *labelvalues: object, **labelkwargs: object) -> Counter:
        if not labelkwargs:
            try:  # the parent's children by their label values (strings, as made below)
                child = self._metrics.get(labelvalues)  # type: ignore[call-overload]
            except AttributeError:  # a child (labels() of a child raises below) or no labels
                child = None
            if child is not None:
                return child
        return super().labels(*labelvalues, **labelkwargs)


class Metrics:
    """The metric handles; one instance per process (tests make their own)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        if process:  # process_* on Linux: RSS, virtual memory, CPU seconds, open and max fds
            ProcessCollector(registry=r)
        self.lines = Counter(
            "watcher_lines",
            "Distinct log lines read, after de-duplication.",
            ["source"],
            registry=r,
        )
        self.duplicate_lines = Counter(
            "watcher_duplicate_lines",
            "Lines dropped by de-duplication (replays, overlapping polls).",
            ["source"],
            registry=r,
        )
        self.truncated_lines = Counter(
            "watcher_truncated_lines",
            "Lines longer than the cap, kept truncated.",
            ["source"],
            registry=r,
        )
        self.lines_lost = Counter(
            "watcher_lines_lost",
            "Lines gone before they could be read (a copytruncate that outran the reader).",
            ["source", "reason"],
            registry=r,
        )
        self.dropped_lines = Counter(
            "watcher_dropped_lines", "Lines not processed, by reason.", ["reason"], registry=r
        )
        self.events = Counter(
            "watcher_events", "Log events after multi-line assembly.", ["source"], registry=r
        )
        self.errors = _PerEventCounter(
            "watcher_errors",
            "Error events by category and severity.",
            ["category", "severity"],
            registry=r,
        )
        self.active_groups = Gauge(
            "watcher_active_groups", "Error groups held in memory.", registry=r
        )
        self.groups_evicted = Counter(
            "watcher_groups_evicted", "Groups evicted from memory to the store.", registry=r
        )
        self.worker_rss = Gauge(
            "watcher_worker_rss_bytes",
            "Resident memory of each worker process ([watcher] workers > 1).",
            ["worker"],
            registry=r,
        )
        self.worker_restarts = Counter(
            "watcher_worker_restarts",
            "Worker processes that died and were started again.",
            ["worker"],
            registry=r,
        )
        self.source_up = Gauge(
            "watcher_source_up", "1 while the source is connected/reading.", ["source"], registry=r
        )
        self.source_held = Gauge(
            "watcher_source_held",
            "A shared source: 1 while this watcher holds its lease and reads it, 0 on standby.",
            ["source"],
            registry=r,
        )
        self.source_reconnects = Counter(
            "watcher_source_reconnects", "Source restarts/reconnects.", ["source"], registry=r
        )
        self.source_lag = Gauge(
            "watcher_source_lag_seconds",
            "Now minus the timestamp of the last line read, where the source gives one.",
            ["source"],
            registry=r,
        )
        self.fixes = Counter("watcher_fixes", "Fix attempts by outcome.", ["status"], registry=r)
        self.prs_opened = Counter("watcher_prs_opened", "Pull requests opened.", registry=r)
        self.llm_requests = Counter(
            "watcher_llm_requests", "Requests to the LLM by outcome.", ["outcome"], registry=r
        )
        self.llm_tokens = Counter(
            "watcher_llm_tokens", "LLM tokens used.", ["direction"], registry=r
        )
        self.alerts_sent = Counter(
            "watcher_alerts_sent",
            "Alert deliveries by outcome (every destination type).",
            ["outcome"],
            registry=r,
        )
        self.state_errors = Counter(
            "watcher_state_errors",
            "State problems (corrupt file set aside, write failures).",
            ["kind"],
            registry=r,
        )
        self.state_unsaved_dropped = Counter(
            "watcher_state_unsaved_dropped",
            "Group states, new fingerprints and activity entries dropped from memory while the "
            "state store failed (max_unsaved_groups each).",
            registry=r,
        )
        self.state_unsaved = Gauge(
            "watcher_state_unsaved_groups",
            "Group states held in memory because the state store failed (at most "
            "max_unsaved_groups; 0 once a commit succeeds).",
            registry=r,
        )
        # the fleet (watcher/fleet/leader.py): one leader at a time runs fixes and alerts
        self.leader = Gauge(
            "watcher_leader", "1 while this watcher is the leader, else 0.", registry=r
        )
        self.leader_epoch = Gauge(
            "watcher_leader_epoch",
            "The leader lease's epoch (fencing token) this watcher last held; 0: never.",
            registry=r,
        )
        self.leader_changes = Counter(
            "watcher_leader_changes",
            "Times this watcher gained or lost leadership.",
            ["change"],
            registry=r,
        )
        self.batch_latency = Histogram(
            "watcher_pipeline_latency_seconds",
            "Time from a batch leaving its source to its groups being updated.",
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
            registry=r,
        )
        # pre-created so increase()/rate() see the first event of each (alerts depend on it);
        # watcher_errors_total is not: "a new critical pattern" is its series appearing
        for reason in DROP_REASONS:
            self.dropped_lines.labels(reason)
        for status in FIX_STATUSES:
            self.fixes.labels(status)
        for outcome in LLM_OUTCOMES:
            self.llm_requests.labels(outcome)
        for outcome in ALERT_OUTCOMES:
            self.alerts_sent.labels(outcome)
        for kind in STATE_ERROR_KINDS:
            self.state_errors.labels(kind)
        for change in ("gained", "lost"):
            self.leader_changes.labels(change)
        for direction in ("input", "output"):
            self.llm_tokens.labels(direction)

    def add_source(self, name: str) -> None:
        """Create every per-source series at 0 when a source starts, so a rule's increase()
        sees the first duplicate, truncation or reconnect (and `lag > N` has a series)."""
        for counter in (self.lines, self.duplicate_lines, self.truncated_lines, self.events):
            counter.labels(name)
        self.source_reconnects.labels(name)
        self.lines_lost.labels(name, "copytruncate")
        self.source_up.labels(name)
        self.source_lag.labels(name)

    def exposition(self) -> bytes:
        """The text exposition format, for /metrics."""
        return generate_latest(self.registry)
