"""Per-destination routing and storm rules: which alerts a destination gets, and when.

For one destination (`Route` holds its settings, `Gate` its state):

- `kinds`: the alert kinds it takes (new, threshold, regressed, resolved, pr_opened).
- `min_severity`: patterns below it never alert there (a resolve follows its open regardless).
- `min_count` within `window`: a pattern's first alert there waits until the pattern has had
  that many events within that many seconds; the kind that was held back is sent then.
- `cooldown`: at most one opening alert (new, threshold) per pattern per cooldown; a
  regression is news and skips it; a fix PR alert has a cooldown of its own.
- a resolve goes only where the pattern was opened, and lets it open again later.

All state is bounded: at most `max_tracked` patterns per table, the least recent forgotten.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Literal

from watcher.alerts.alert import OPENING, ROUTABLE, Kind
from watcher.model import SEVERITY_RANK

Verdict = Literal["send", "hold", "suppress", "skip"]
MAX_TRACKED = 10000


@dataclass(frozen=True)
class Route:
    """One destination's routing and storm settings (see the module docstring)."""

    kinds: tuple[str, ...] = ROUTABLE
    min_severity: str = "high"
    min_count: int = 1
    window: float = 300.0
    cooldown: float = 900.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(ROUTABLE))
        if unknown:
            raise ValueError(f"kinds: unknown {unknown} (expected some of: {', '.join(ROUTABLE)})")
        if self.min_severity not in SEVERITY_RANK:
            raise ValueError(f"min_severity: expected one of {sorted(SEVERITY_RANK)}")
        if self.min_count < 1 or self.window <= 0 or self.cooldown < 0:
            raise ValueError("min_count must be >= 1, window > 0, cooldown >= 0")


@dataclass
class _Pending:
    """A pattern whose first alert waits for min_count events within the window."""

    kind: Kind
    times: deque[float]


class Gate:
    """The state behind one Route: what each pattern has had at this destination."""

    def __init__(self, route: Route, max_tracked: int = MAX_TRACKED) -> None:
        self.route, self.max_tracked = route, max_tracked
        self.min_rank = SEVERITY_RANK[route.min_severity]
        self.opened: OrderedDict[str, float] = OrderedDict()  # group id -> when opened here
        self._last: OrderedDict[tuple[str, str], float] = OrderedDict()  # (family, id) -> sent
        self._pending: OrderedDict[str, _Pending] = OrderedDict()

    def wants(self, kind: str) -> bool:
        """Whether this destination routes `kind` at all."""
        return kind in self.route.kinds

    def decide(self, kind: Kind, group_id: str, severity: str, now: float) -> Verdict:
        """send / hold (min_count not met yet) / suppress (cooldown) / skip (not routed here)."""
        if kind == "resolved":
            return "send" if group_id in self.opened and self.wants(kind) else "skip"
        if not self.wants(kind) or SEVERITY_RANK.get(severity, -1) < self.min_rank:
            return "skip"
        family = "pr" if kind == "pr_opened" else "pattern"
        last = self._last.get((family, group_id))
        if kind != "regressed" and last is not None and now - last < self.route.cooldown:
            return "suppress"
        if kind in OPENING and group_id not in self.opened and not self._counted(group_id, now):
            self._hold(kind, group_id, now)
            return "hold"
        return "send"

    def record(self, kind: Kind, group_id: str, now: float, *, opened: bool = True) -> None:
        """Remember an alert that went out for cooldowns and resolves; `opened=False` for one
        the rate cap put in a digest instead (its cooldown runs, but there is nothing to resolve).
        """
        if kind == "resolved":
            self.opened.pop(group_id, None)
            return
        self._put(self._last, ("pr" if kind == "pr_opened" else "pattern", group_id), now)
        if kind in OPENING:
            self._pending.pop(group_id, None)
            if opened and group_id not in self.opened:
                self._put(self.opened, group_id, now)

    def holds(self, group_id: str) -> bool:
        """Whether a first alert for the pattern is waiting for min_count."""
        return group_id in self._pending

    def seen(self, group_id: str, now: float) -> Kind | None:
        """Count one more event of a held pattern; the held kind once min_count is met."""
        pending = self._pending.get(group_id)
        if pending is None:
            return None
        pending.times.append(now)
        return pending.kind if self._within(pending.times) else None

    def _counted(self, group_id: str, now: float) -> bool:
        if self.route.min_count <= 1:
            return True
        pending = self._pending.get(group_id)
        return pending is not None and self._within(pending.times)

    def _within(self, times: deque[float]) -> bool:
        full = len(times) >= self.route.min_count
        return full and times[-1] - times[0] <= self.route.window

    def _hold(self, kind: Kind, group_id: str, now: float) -> None:
        pending = self._pending.get(group_id)
        if pending is None:
            times: deque[float] = deque([now], maxlen=self.route.min_count)
            self._put(self._pending, group_id, _Pending(kind, times))

    def _put(self, table: OrderedDict, key: object, value: object) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.max_tracked:
            table.popitem(last=False)
