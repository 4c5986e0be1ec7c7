"""The live error groups: fingerprinting, counts, windows, thresholds, bounded memory.

Events with a trace are grouped by exception type + their in-app frames; the rest by the message
template the miner finds. At most `max_groups` live in memory; the least recently seen is handed
to `on_evict` (the pipeline writes it to the store) and recalled from `recall` if it comes back.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from watcher.classify import raise_severity
from watcher.group import lifecycle
from watcher.group.mask import mask
from watcher.group.template import TemplateMiner
from watcher.group.window import Windows, WindowSpec
from watcher.model import (
    Activity,
    Classification,
    ErrorGroup,
    Frame,
    GroupUpdate,
    LogEvent,
    Sample,
)

SAMPLE_BYTES = 4096
# event fields that say where an error happened -> the breakdown ("tag") they count under
TAG_FIELDS = (
    ("host", ("host", "hostname")),
    ("pod", ("pod", "pod_name")),
    ("release", ("release", "version", "git_sha")),
)
_TAG_KEYS = frozenset(key for _, keys in TAG_FIELDS for key in keys)
MAX_TAG_VALUES = 20  # per tag and group; later values count under "other" (bounded memory)
_PATH_NOISE = re.compile(r"^(?:/?(?:app|srv|src|code|workspace|home/\w+|usr/src/app)/)+")


@dataclass(slots=True)
class _Live:
    group: ErrorGroup
    windows: Windows
    base_severity: str
    pending_samples: list[Sample] = field(default_factory=list)
    # its state went to the store (take_dirty) or came from it (load), unchanged since unless
    # it is in the table's dirty set: evicting it then has nothing to write
    stored: bool = False


def normalise_path(path: str) -> str:
    """A frame's file without the deploy-specific prefix, so two hosts give one fingerprint."""
    path = path.replace("\\", "/")
    return _PATH_NOISE.sub("", path.lstrip("./"))


# The version of the grouping algorithm, part of every fingerprint it makes: a later change of
# the algorithm makes new fingerprints instead of silently moving events between old groups.
# v1: exception type + every in-app frame. v2: exception type + the innermost in-app frame (one
# crash site, whatever path led to it); a trace with no in-app frame is grouped by its message.
# A group owns its fingerprints with their versions (the store's fingerprints table): after an
# upgrade, an event whose new fingerprint is unknown is looked up by its older ones, and the new
# fingerprint joins the group that already has them instead of opening a new one.
FINGERPRINT_VERSION = 2
TEMPLATE_VERSION = 0  # a template group's fingerprint is the miner's cluster id


def fingerprint_version(kind: str) -> int:
    """The algorithm version of a new fingerprint of a group of this kind."""
    return FINGERPRINT_VERSION if kind == "trace" else TEMPLATE_VERSION


def trace_fingerprint(event: LogEvent, version: int = FINGERPRINT_VERSION) -> str:
    """Exception type + the innermost in-app frame's file:function (no line numbers: they move).

    `version` makes the fingerprint an older algorithm made (to find groups it keyed)."""
    if version == 1:
        return _fingerprint_v1(event)
    top = event.top_frame
    exc_type = event.exception_type
    # (the version too: a test, or an upgrade in a live process, may change it)
    key = (
        (FINGERPRINT_VERSION, exc_type)
        if top is None
        else (FINGERPRINT_VERSION, exc_type, top.file, top.function)
    )
    found = _FINGERPRINTS.get(key)
    if found is None:
        found = _fingerprint_v2(exc_type, top)
        if exc_type is None or len(exc_type) <= 256:  # bounds the cache's memory
            if len(_FINGERPRINTS) >= _FINGERPRINTS_CAP:
                _FINGERPRINTS.clear()
            _FINGERPRINTS[key] = found
    return found


# what _fingerprint_v2 depends on -> its fingerprint: a service's errors come from a few hundred
# places, and normalising the path and hashing it again was most of the cost of keying a trace
_FINGERPRINTS: dict[tuple[int | str | None, ...], str] = {}
_FINGERPRINTS_CAP = 4096


def _fingerprint_v2(exc_type: str | None, top: Frame | None) -> str:
    parts = [f"v{FINGERPRINT_VERSION}", _base_type(exc_type) or "trace"]
    if top is not None:
        parts.append(f"{normalise_path(top.file)}:{_function(top.function)}")
    key = "|".join(parts).encode("utf-8", "surrogatepass")  # a lone surrogate must not raise
    return hashlib.blake2b(key, digest_size=6).hexdigest()


def _fingerprint_v1(event: LogEvent) -> str:
    """Version 1: the exception type as printed + every in-app frame, without a version tag."""
    frames = [f for f in event.frames if f.in_app] or event.frames
    parts = [event.exception_type or "trace"]
    parts.extend(f"{normalise_path(f.file)}:{f.function}" for f in frames)
    key = "|".join(parts).encode("utf-8", "surrogatepass")
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


# (fingerprint, kind, template): what GroupTable.key makes of an event
Key = tuple[str, str, str | None]


class Unrecalled(Exception):
    """Raised by a recall hook that cannot answer for this group yet without a store read (the
    engine reads groups off the event loop, many at a time): the table changed nothing."""

    def __init__(self, group_id: str) -> None:
        super().__init__(group_id)
        self.group_id = group_id


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
        life: lifecycle.Lifecycle | None = None,
    ) -> None:
        self.labels = [label for label, _ in windows]
        self.spans = [span for _, span in windows]
        self.spec = WindowSpec(self.spans, self.labels)  # shared by every group's Windows
        self.max_groups = max_groups
        self.samples_per_group = samples_per_group
        self.alert_count = alert_count
        self.alert_window = alert_window
        self.miner = miner or TemplateMiner(max_clusters=max_groups)
        self.on_evict = on_evict
        # whether an evicted group leaves with its windows' buckets (for the store): without a
        # store nothing reads them, and dumping them was ~5 % of a flood's replay
        self.dump_evicted = True
        # an evicted group the store already holds as it is (see _Live.stored) is offered here
        # first; True: taken care of (counted, nothing to write), False: on_evict as any other.
        # Under a flood every new group was written twice: at the next commit, then evicted.
        self.on_evict_clean: Callable[[ErrorGroup], bool] | None = None
        self.recall = recall
        self.live: OrderedDict[str, _Live] = OrderedDict()
        self.dirty: set[str] = set()
        self.now = 0.0  # the newest event time seen: "now" for replayed logs
        self.evicted = 0
        self.life = life or lifecycle.Lifecycle()
        # the wall clock of a daemon (follow mode): when an event without a timestamp is read,
        # it happened now, not at the last timestamp seen (None: replayed logs, no clock)
        self.clock: Callable[[], float] | None = None
        # fingerprint -> the group that owns it, where that is another group (merges, upgrades)
        self.aliases: dict[str, str] = {}
        # fingerprints an older algorithm version made -> their group (see FINGERPRINT_VERSION)
        self.legacy: dict[str, str] = {}
        # for the next commit: new (fingerprint, group, version) rows and lifecycle records
        self.new_fingerprints: list[tuple[str, str, int]] = []
        self.activity: list[Activity] = []

    def __len__(self) -> int:
        return len(self.live)

    def add(self, event: LogEvent, cls: Classification, *, at: float | None = None) -> GroupUpdate:
        """Count one error event in its group; create or recall the group when needed."""
        return self.apply(event, cls, self.key(event), at=at)

    def key(self, event: LogEvent) -> Key:
        """The event's (fingerprint, kind, template): the miner learns its message. Made once
        per event; `apply` counts it, which may be retried (see Unrecalled). A trace's
        template is None: see trace_template."""
        if event.frames and has_app_frame(event):
            # masking is a third of the cost of a trace event and its template is only read
            # when the group opens, so it is made there
            return trace_fingerprint(event), "trace", None
        message = library_message(event) if event.exception_type else event.message
        cluster = self.miner.add_member(message).cluster  # (add, without its extra call)
        return cluster.id, "template", cluster.template

    _fingerprint = key  # (its name before: key called it, a call more per event)

    def unknown(self, keyed: Iterable[tuple[LogEvent, Key]]) -> set[str]:
        """The groups these keyed events would ask the recall hook for: their groups not in
        memory, and for a trace the group of its older fingerprint (an algorithm upgrade)."""
        wanted: set[str] = set()
        live, aliases, legacy = self.live, self.aliases, self.legacy
        for event, (fp, kind, _) in keyed:
            gid = aliases.get(fp, fp)
            if gid in live:
                continue
            wanted.add(gid)
            if kind != "trace" or not (aliases or legacy):
                continue
            for version in range(FINGERPRINT_VERSION - 1, 0, -1):
                old = trace_fingerprint(event, version)
                owner = aliases.get(old) or legacy.get(old)
                if owner is not None and owner not in live:
                    wanted.add(owner)
        return wanted

    def apply(
        self, event: LogEvent, cls: Classification, key: Key, *, at: float | None = None
    ) -> GroupUpdate:
        """Count one keyed event in its group. When the recall hook raises Unrecalled, nothing
        is counted and nothing changed: the same call may be made again once it can answer."""
        t = event.timestamp if event.timestamp is not None else (at or self.now)
        if t > self.now:
            self.now = t
        fp, kind, template = key
        gid = self.aliases.get(fp, fp)
        live = self.live.get(gid)
        is_new = False
        if live is None:
            # (_find inlined for a template's group: a call per new group of a flood)
            if kind == "trace":
                found = self._find(gid, kind, event)
            else:
                found = self.recall(gid) if self.recall is not None else None
            if found is None and self.max_groups > 0:
                # a group made for this event (a flood's every line): made counted (see _first)
                return self._first(gid, kind, template, event, cls, t)
            live, is_new = self._open(gid, kind, template, event, cls, t, found)
            gid = live.group.id  # an older fingerprint's group (an algorithm upgrade)
        else:
            self.live.move_to_end(gid)
        group = live.group
        group.count += 1
        group.last_seen = max(group.last_seen, t)
        group.first_seen = min(group.first_seen, t) if group.first_seen else t
        group.sources[event.source] = group.sources.get(event.source, 0) + 1
        if event.fields:
            _count_tags(group, event.fields)
        if template is not None and template != group.template and gid == fp:
            group.template = template  # the miner generalised it (not a merged-in template)
        live.windows.add(t)
        self._keep_sample(live, event)
        if is_new and self.alert_count > 1:
            # a group made for this event holds one event in every window: below the threshold
            # (a flood's every line; the check below would answer the same)
            crossed = False
        else:
            if group.state != "open":
                wall = self.clock() if self.clock is not None else t
                self._observe(live, t if event.timestamp is not None else wall, wall)
            crossed = self._check_threshold(live, t)
        self.dirty.add(gid)
        return GroupUpdate(group, event, cls, is_new, crossed)

    def _observe(self, live: _Live, t: float, wall: float) -> None:
        """The automatic lifecycle changes an event makes (regressed, unignored)."""
        entry = lifecycle.observe(live.group, t, now=max(t, self.now, wall))
        if entry is None:
            return
        if entry.action == "regressed":
            live.base_severity = raise_severity(live.base_severity)
        self.record(live.group, entry)

    def record(self, group: ErrorGroup, entry: Activity) -> None:
        """A lifecycle change made here: kept for the next commit and announced."""
        self.activity.append(entry)
        self.dirty.add(group.id)
        self.life.notify(group, entry)

    def _find(self, gid: str, kind: str, event: LogEvent) -> ErrorGroup | _Live | None:
        """The group `gid` stands for when it is not live: recalled (the recall hook is asked
        before anything changes: it may raise Unrecalled), or the live one an older fingerprint
        of a trace gave (an algorithm upgrade); None for a new group."""
        group = self.recall(gid) if self.recall is not None else None
        if group is None and kind == "trace":
            group = self._upgraded(gid, event)
            if group is not None:
                existing = self.live.get(group.id)
                if existing is not None:
                    return existing
        return group

    def _open(
        self,
        gid: str,
        kind: str,
        template: str | None,
        event: LogEvent,
        cls: Classification,
        t: float,
        found: ErrorGroup | _Live | None,
    ) -> tuple[_Live, bool]:
        """Make `found` (see _find) live, or a new group when None; whether it is new."""
        if isinstance(found, _Live):
            return found, False
        is_new = found is None
        if found is None:
            self.new_fingerprints.append((gid, gid, fingerprint_version(kind)))
            group = self._group(gid, kind, template, event, cls, t, 0, {}, [])
            live = _Live(group, Windows(self.spec), group.severity)  # _live: no buckets
        else:
            group = found
            live = self._live(group)
        self.live[group.id] = live
        if len(self.live) > self.max_groups:
            self._evict_oldest()
        return live, is_new

    def _group(
        self,
        gid: str,
        kind: str,
        template: str | None,
        event: LogEvent,
        cls: Classification,
        t: float,
        count: int,
        sources: dict[str, int],
        samples: list[Sample],
    ) -> ErrorGroup:
        """A new group of `event` (with these count, sources and samples)."""
        if template is None:
            template = trace_template(event)
        frames = event.frames
        top = event.top_frame if frames else None  # (a flood's lines have no trace)
        return ErrorGroup(
            gid,
            kind,
            template,
            cls.category,
            cls.severity,
            cls.fixable,
            cls.suggested_fix,
            event.exception_type,
            Frame(top.file, top.line, top.function, top.in_app) if top else None,
            list(frames[-10:]) if frames else [],
            count,
            t,
            t,
            sources,
            samples,
        )

    def _first(
        self,
        gid: str,
        kind: str,
        template: str | None,
        event: LogEvent,
        cls: Classification,
        t: float,
    ) -> GroupUpdate:
        """`apply` for the first event of a new group (what _open and the counting after it
        do, with the group made as the counting leaves it: count 1, first and last seen `t`,
        one source, its sample, one window event). A flood of unique errors opens a group per
        event; setting each field again after making it, and the calls, were a few % of the
        parent's ~120k instructions per event."""
        self.new_fingerprints.append((gid, gid, fingerprint_version(kind)))
        if self.samples_per_group > 0:
            sample = _sample(event)
            samples, pending = [sample], [sample]
        else:
            samples, pending = [], []
        group = self._group(gid, kind, template, event, cls, t, 1, {event.source: 1}, samples)
        if event.fields:
            _count_tags(group, event.fields)
        windows = Windows(self.spec)
        windows.add(t)
        live = _Live(group, windows, group.severity, pending)
        live_groups = self.live
        live_groups[gid] = live
        if len(live_groups) > self.max_groups:  # (max_groups > 0: never the group made here)
            self._evict_oldest()
        # a group made for this event holds one event in every window: below a threshold of
        # more than one (a flood's every line; the check would answer the same)
        crossed = self._check_threshold(live, t) if self.alert_count <= 1 else False
        self.dirty.add(gid)
        return GroupUpdate(group, event, cls, True, crossed)

    def _live(self, group: ErrorGroup) -> _Live:
        windows = Windows(self.spec)
        if group.buckets:
            windows.restore(group.buckets)
        return _Live(group, windows, group.severity)

    def _upgraded(self, fp: str, event: LogEvent) -> ErrorGroup | None:
        """The group an older fingerprint version gave this event, which now owns `fp` too."""
        for version in range(FINGERPRINT_VERSION - 1, 0, -1):
            old = trace_fingerprint(event, version)
            gid = self.aliases.get(old) or self.legacy.get(old)
            if gid is None:
                continue
            live = self.live.get(gid)
            group = live.group if live is not None else (self.recall(gid) if self.recall else None)
            if group is not None:
                self.aliases[fp] = group.id
                self.new_fingerprints.append((fp, group.id, FINGERPRINT_VERSION))
                return group
        return None

    def _evict_oldest(self) -> None:
        gid, live = self.live.popitem(last=False)
        clean = live.stored and gid not in self.dirty and not live.pending_samples
        self.dirty.discard(gid)
        self.evicted += 1
        if clean and self.on_evict_clean is not None and self.on_evict_clean(live.group):
            return
        if self.dump_evicted:
            live.group.buckets = live.windows.dump()
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
            pending = live.pending_samples
            if pending and pending[-1] is samples[-1]:
                # the store has not seen the one replaced: it gets the latest only (one row per
                # group per commit, not one per 100 events: most of the store's writes at rate)
                pending[-1] = sample
            else:
                pending.append(sample)
            samples[-1] = sample

    def _check_threshold(self, live: _Live, t: float) -> bool:
        group = live.group
        count = live.windows.count_at(self.spec.index[self.alert_window], t)
        if group.status == "alerting":
            # re-arm once the rate has clearly fallen (hysteresis: no flapping at the threshold)
            if count * 2 < self.alert_count:
                group.status = "open"
                group.severity = live.base_severity
            return False
        if group.status != "open" or count < self.alert_count:
            return False
        if group.state not in lifecycle.ACTIVE_STATES:
            return False  # an ignored (or resolved) pattern does not alert
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
            live.group.buckets = live.windows.dump()
            live.stored = True
            groups.append(live.group)
            if live.pending_samples:
                samples[gid] = live.pending_samples
                live.pending_samples = []
        self.dirty.clear()
        return groups, samples

    def take_records(self) -> tuple[list[tuple[str, str, int]], list[Activity]]:
        """New fingerprint rows and lifecycle records since the last call, for the store."""
        fingerprints, self.new_fingerprints = self.new_fingerprints, []
        activity, self.activity = self.activity, []
        return fingerprints, activity

    def find(self, group_id: str) -> ErrorGroup | None:
        """The live group with this id or owning this fingerprint, or None."""
        live = self.live.get(self.aliases.get(group_id, group_id))
        return None if live is None else live.group

    def absorb(self, into: ErrorGroup, other: ErrorGroup, fingerprints: list[str]) -> None:
        """A merge: `other` (live or not) folds into `into`, and its fingerprints route to it."""
        other_live = self.live.pop(other.id, None)
        self.dirty.discard(other.id)
        self._fold(into, other, other_live)
        for fp, owner in list(self.aliases.items()):
            if owner == other.id:
                self.aliases[fp] = into.id
        for fp in {other.id, *fingerprints}:
            self.aliases[fp] = into.id

    def _fold(self, into: ErrorGroup, other: ErrorGroup, other_live: _Live | None) -> None:
        """Counts, sources, tags and window buckets of `other` added to `into`."""
        if other_live is not None:
            other.buckets = other_live.windows.dump()
        into_live = self.live.get(into.id)
        if into_live is not None:
            into.buckets = into_live.windows.dump()
        lifecycle.fold(into, other)
        if into_live is not None:
            into_live.windows = Windows(self.spec)
            into_live.windows.restore(into.buckets)
            self.dirty.add(into.id)

    def rebase(self, group_id: str, severity: str) -> None:
        """The severity a live group returns to when its alert re-arms (a reclassification)."""
        live = self.live.get(group_id)
        if live is not None:
            live.base_severity = severity

    def detach(self, fingerprint: str) -> None:
        """A split: later events with this fingerprint open a group of their own."""
        self.aliases.pop(fingerprint, None)

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
            self._fold(survivor.group, loser.group, loser)
            folded += 1
        return folded

    def release(self, group_id: str) -> None:
        """Forget a live group the store now holds (not evicted: nothing to write); its next
        event recalls it from the store."""
        self.live.pop(group_id, None)
        self.dirty.discard(group_id)

    def load(self, groups: Sequence[ErrorGroup]) -> None:
        """Put stored groups back in memory after a restart, with their windows' buckets."""
        for group in groups[: self.max_groups]:
            live = self.live[group.id] = self._live(group)
            live.stored = True


def _count_tags(group: ErrorGroup, fields: dict[str, object]) -> None:
    """Count the event under the host / pod / release its fields name (bounded per group)."""
    if fields.keys().isdisjoint(_TAG_KEYS):
        return  # most records name none of them: one set operation instead of three loops
    for tag, keys in TAG_FIELDS:
        value = None
        for key in keys:  # the first key present, as next() of a generator found it
            if key in fields:
                value = fields[key]
                break
        if value is None or isinstance(value, dict | list):
            continue
        values = group.tags.setdefault(tag, {})
        name = str(value)[:80]
        if name not in values and len(values) >= MAX_TAG_VALUES:
            name = "other"
        values[name] = values.get(name, 0) + 1
