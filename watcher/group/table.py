"""The live error groups: fingerprinting, counts, windows, thresholds, bounded memory.

Events with a trace are grouped by exception type + their in-app frames; the rest by the message
template the miner finds. At most `max_groups` live in memory; the least recently seen is handed
to `on_evict` (the pipeline writes it to the store) and recalled from `recall` if it comes back.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from watcher.classify import raise_severity
from watcher.group.mask import mask
from watcher.group.template import TemplateMiner
from watcher.group.window import Windows
from watcher.model import Classification, ErrorGroup, Frame, GroupUpdate, LogEvent, Sample

SAMPLE_BYTES = 4096
_PATH_NOISE = re.compile(r"^(?:/?(?:app|srv|src|code|workspace|home/\w+|usr/src/app)/)+")


@dataclass(slots=True)
class _Live:
    group: ErrorGroup
    windows: Windows
    base_severity: str
    pending_samples: list[Sample] = field(default_factory=list)


def normalise_path(path: str) -> str:
    """A frame's file without the deploy-specific prefix, so two hosts give one fingerprint."""
    path = path.replace("\\", "/")
    return _PATH_NOISE.sub("", path.lstrip("./"))


# The version of the grouping algorithm, part of every fingerprint it makes: a later change of
# the algorithm makes new fingerprints instead of silently moving events between old groups.
# v1: exception type + every in-app frame. v2: exception type + the innermost in-app frame (one
# crash site, whatever path led to it); a trace with no in-app frame is grouped by its message.
FINGERPRINT_VERSION = 2


def trace_fingerprint(event: LogEvent) -> str:
    """Exception type + the innermost in-app frame's file:function (no line numbers: they move)."""
    top = event.top_frame
    parts = [f"v{FINGERPRINT_VERSION}", _base_type(event.exception_type) or "trace"]
    if top is not None:
        parts.append(f"{normalise_path(top.file)}:{_function(top.function)}")
    key = "|".join(parts).encode("utf-8", "surrogatepass")  # a lone surrogate must not raise
    return hashlib.blake2b(key, digest_size=6).hexdigest()


def _base_type(name: str | None) -> str | None:
    """ "Uncaught TypeError" and "TypeError" are one type; so are "a.b.KeyError" and "KeyError"
    spelled with and without the module where runtimes differ."""
    if not name:
        return name
    return name.removeprefix("Uncaught ").strip()


def _function(name: str) -> str:
    """Go's "main.(*T).Write" and Node's "async fn" / "Object.fn" variants of one function."""
    return name.removeprefix("async ").removeprefix("Object.")


def has_app_frame(event: LogEvent) -> bool:
    """Whether the event's trace reaches the application's own code."""
    return any(frame.in_app for frame in event.frames)


def library_message(event: LogEvent) -> str:
    """What a trace with no application frame is grouped by: where it was reported, the error and
    what caused it (a client library's error is the same failure in every deployment, and its
    frames differ between runtime versions)."""
    kind = _base_type(event.exception_type) or "Error"
    error = f"{kind}: {event.exception_message or ''}".strip()
    head = event.message
    causes = event.fields.get("causes") if event.fields else None
    # an error printed on the reporting line itself ("[ioredis] Unhandled error event: Error: …")
    # is grouped by that line; an error after a separate log line by the error alone, so that
    # the same failure logged in two formats is one group
    parts = [head] if (head and error in head) else [error]
    # the causes' types, not their codes: a runtime's print of the error's properties (Node's
    # "code: 'ETIMEDOUT'") is not in the same error serialised by a JSON logger
    types = [c for c in causes[:4] if not str(c).isupper()] if isinstance(causes, list) else []
    # the error codes of the error itself lead the message: the miner never merges messages
    # whose first tokens differ, so ECONNREFUSED and ETIMEDOUT from one client stay two groups
    codes = sorted(set(_ERROR_CODE.findall(" | ".join(parts))))
    if types:
        parts.append("caused by " + " ".join(str(c) for c in types))
    text = " | ".join(parts)
    # joined by "_": a "/" would read as a path, which masking turns into a variable
    return f"{'_'.join([kind.replace(' ', '_'), *codes])} {text}"


_ERROR_CODE = re.compile(r"\b(E[A-Z]{4,}|(?:UND_)?ERR_[A-Z_]+|P\d{4})\b")


def trace_template(event: LogEvent) -> str:
    """A trace group's title: "ExcType: masked message", or the masked message of a panic."""
    if event.exception_type:
        template = f"{event.exception_type}: {mask(event.exception_message or '')}"
    else:  # a panic or a stack in a JSON field: the message names it better
        template = mask(event.exception_message or event.message)
    return template.rstrip(": ")


def _sample(event: LogEvent) -> Sample:
    text = event.text or event.message
    if len(text) > SAMPLE_BYTES:
        text = text[:SAMPLE_BYTES] + "\n… [truncated]"
    return Sample(event.timestamp or 0.0, event.source, text, event.first_line)


class GroupTable:
    """Assigns each error event to a group and keeps the live groups' counts and windows."""

    def __init__(
        self,
        *,
        windows: Sequence[tuple[str, float]] = (("1m", 60.0), ("5m", 300.0), ("1h", 3600.0)),
        max_groups: int = 10_000,
        samples_per_group: int = 5,
        alert_count: int = 10,
        alert_window: str = "5m",
        miner: TemplateMiner | None = None,
        on_evict: Callable[[ErrorGroup, list[Sample]], None] | None = None,
        recall: Callable[[str], ErrorGroup | None] | None = None,
    ) -> None:
        self.labels = [label for label, _ in windows]
        self.spans = [span for _, span in windows]
        self.max_groups = max_groups
        self.samples_per_group = samples_per_group
        self.alert_count = alert_count
        self.alert_window = alert_window
        self.miner = miner or TemplateMiner(max_clusters=max_groups)
        self.on_evict = on_evict
        self.recall = recall
        self.live: OrderedDict[str, _Live] = OrderedDict()
        self.dirty: set[str] = set()
        self.now = 0.0  # the newest event time seen: "now" for replayed logs
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.live)

    def add(self, event: LogEvent, cls: Classification, *, at: float | None = None) -> GroupUpdate:
        """Count one error event in its group; create or recall the group when needed."""
        t = event.timestamp if event.timestamp is not None else (at or self.now)
        if t > self.now:
            self.now = t
        gid, kind, template = self._fingerprint(event)
        live = self.live.get(gid)
        is_new = False
        if live is None:
            live, is_new = self._open(gid, kind, template, event, cls, t)
        else:
            self.live.move_to_end(gid)
        group = live.group
        group.count += 1
        group.last_seen = max(group.last_seen, t)
        group.first_seen = min(group.first_seen, t) if group.first_seen else t
        group.sources[event.source] = group.sources.get(event.source, 0) + 1
        if template is not None and template != group.template:
            group.template = template  # the miner generalised it
        live.windows.add(t)
        self._keep_sample(live, event)
        crossed = self._check_threshold(live, t)
        self.dirty.add(gid)
        return GroupUpdate(group, event, cls, is_new, crossed)

    def _fingerprint(self, event: LogEvent) -> tuple[str, str, str | None]:
        """(group id, kind, template); a trace's template is None: see trace_template."""
        if event.frames and has_app_frame(event):
            # masking is a third of the cost of a trace event and its template is only read
            # when the group opens, so it is made there
            return trace_fingerprint(event), "trace", None
        message = library_message(event) if event.exception_type else event.message
        cluster = self.miner.add(message)
        return cluster.id, "template", cluster.template

    def _open(
        self,
        gid: str,
        kind: str,
        template: str | None,
        event: LogEvent,
        cls: Classification,
        t: float,
    ) -> tuple[_Live, bool]:
        group = self.recall(gid) if self.recall is not None else None
        is_new = group is None
        if group is None:
            if template is None:
                template = trace_template(event)
            top = event.top_frame
            group = ErrorGroup(
                id=gid,
                kind=kind,
                template=template,
                category=cls.category,
                severity=cls.severity,
                fixable=cls.fixable,
                suggested_fix=cls.suggested_fix,
                exception_type=event.exception_type,
                top_frame=Frame(top.file, top.line, top.function, top.in_app) if top else None,
                frames=list(event.frames[-10:]),
                first_seen=t,
                last_seen=t,
            )
        live = _Live(group, Windows(self.spans, self.labels), group.severity)
        self.live[gid] = live
        if len(self.live) > self.max_groups:
            self._evict_oldest()
        return live, is_new

    def _evict_oldest(self) -> None:
        gid, live = self.live.popitem(last=False)
        self.dirty.discard(gid)
        self.evicted += 1
        if self.on_evict is not None:
            self.on_evict(live.group, live.pending_samples)

    def _keep_sample(self, live: _Live, event: LogEvent) -> None:
        samples = live.group.samples
        # the first occurrences and the latest one are the useful evidence
        if len(samples) < self.samples_per_group:
            sample = _sample(event)
            samples.append(sample)
            live.pending_samples.append(sample)
        elif live.group.count % 100 == 0:
            sample = _sample(event)
            samples[-1] = sample
            live.pending_samples.append(sample)

    def _check_threshold(self, live: _Live, t: float) -> bool:
        group = live.group
        count = live.windows.count(self.alert_window, t)
        if group.status == "alerting":
            # re-arm once the rate has clearly fallen (hysteresis: no flapping at the threshold)
            if count * 2 < self.alert_count:
                group.status = "open"
                group.severity = live.base_severity
            return False
        if group.status != "open" or count < self.alert_count:
            return False
        group.status = "alerting"
        group.severity = raise_severity(live.base_severity)
        return True

    def snapshot(self, now: float | None = None) -> list[ErrorGroup]:
        """Every live group with its window counts and trend filled in at `now`."""
        at = self.now if now is None else now
        out = []
        for live in self.live.values():
            live.group.window_counts = live.windows.counts(at)
            live.group.trend = live.windows.trend(at)
            out.append(live.group)
        return out

    def take_dirty(self) -> tuple[list[ErrorGroup], dict[str, list[Sample]]]:
        """Groups changed since the last call and their new samples, for the store."""
        groups, samples = [], {}
        for gid in self.dirty:
            live = self.live.get(gid)
            if live is None:
                continue
            groups.append(live.group)
            if live.pending_samples:
                samples[gid] = live.pending_samples
                live.pending_samples = []
        self.dirty.clear()
        return groups, samples

    def maintain(self) -> int:
        """Let the miner split/merge its clusters, and fold groups whose cluster merged away.

        Run periodically (the engine does it when it persists): online matching alone can join
        two statements that differ in one word; consolidation separates them again, so later
        events go to the right group. Returns the number of groups folded.
        """
        self.miner.consolidate()
        folded = 0
        for gid in [g for g, live in self.live.items() if live.group.kind == "template"]:
            cluster = self.miner.resolve(gid)
            if cluster is None or cluster.id == gid:
                continue
            survivor = self.live.get(cluster.id)
            loser = self.live.pop(gid)
            self.dirty.discard(gid)
            if survivor is None:
                continue
            _fold(survivor.group, loser.group)
            self.dirty.add(cluster.id)
            folded += 1
        return folded

    def load(self, groups: Sequence[ErrorGroup]) -> None:
        """Put stored groups back in memory after a restart (their windows start empty)."""
        for group in groups[: self.max_groups]:
            self.live[group.id] = _Live(group, Windows(self.spans, self.labels), group.severity)


def _fold(into: ErrorGroup, other: ErrorGroup) -> None:
    """Add one group's counts and sources to another (the miner merged their templates)."""
    into.count += other.count
    into.first_seen = min(into.first_seen, other.first_seen)
    into.last_seen = max(into.last_seen, other.last_seen)
    for source, n in other.sources.items():
        into.sources[source] = into.sources.get(source, 0) + n
