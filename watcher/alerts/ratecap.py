"""The global rate cap: at most `limit` alerts per `window` to one destination, then a digest.

Alerts past the cap are not sent one by one; they are counted, and once the window that began
with the first of them has passed, one digest says "N more patterns alerted in the last 5 m".
Resolves do not use the budget: each closes an alert that did, and leaving an incident open in
PagerDuty or Alertmanager because of a cap would be worse than one more message.
"""

from __future__ import annotations

from collections import deque


class RateCap:
    """A sliding-window budget with an overflow count; limit 0 means no cap."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 0 or window <= 0:
            raise ValueError("rate cap: limit must be >= 0 and window > 0")
        self.limit, self.window = limit, window
        self._sent: deque[float] = deque()
        self.held = 0
        self._held_since: float | None = None

    def take(self, now: float) -> bool:
        """Spend one alert of the budget; False (and counted for the digest) when it is spent."""
        if not self.limit:
            return True
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            self._sent.append(now)
            return True
        self.held += 1
        if self._held_since is None:
            self._held_since = now
        return False

    def digest_due(self, now: float) -> int:
        """How many alerts to report in a digest now (0: none, or the window is not over)."""
        if self._held_since is None or now - self._held_since < self.window:
            return 0
        held, self.held, self._held_since = self.held, 0, None
        return held
