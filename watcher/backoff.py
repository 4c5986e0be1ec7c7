"""Retry delays shared by sources (reconnects, restarts) and alert destinations (re-posts):
exponential backoff with full jitter and a cap.

stamina is the project's retry library for calls that raise, but a source's restart loop needs
three things its retry_context does not give: *full* jitter (stamina adds 0..wait_jitter on top
of the exponential delay, so a fleet restarted together stays in lock-step), a reset once the
command has run healthily, and sleeps that end the moment ctx.shutdown is set.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Sleep = Callable[[asyncio.Event, float], Awaitable[bool]]

async def sleep_or_shutdown(shutdown: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`, waking early on shutdown; True when shutdown is set."""
    if shutdown.is_set():
        return True
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await shutdown.wait()
    except TimeoutError:
        return False
    return True


# 2**64 times any sane initial delay is far past any cap; stops float overflow in long outages.
_MAX_EXPONENT = 64


@dataclass
class Backoff:
    """Delays for attempt 0, 1, 2, …: uniform in [0, min(cap, initial * multiplier**attempt)].

    `rng` and `sleep` are injectable so tests run without real sleeping; `sleep` gets the
    shutdown event and must return True when it was set (as `sleep_or_shutdown` does).
    """

    initial: float = 0.5
    cap: float = 60.0
    multiplier: float = 2.0
    rng: Callable[[], float] = random.random
    sleep: Sleep = sleep_or_shutdown
    attempt: int = field(default=0, init=False)

    def ceiling(self) -> float:
        """The largest delay the next attempt may draw."""
        exponent = min(self.attempt, _MAX_EXPONENT)
        return min(self.cap, self.initial * self.multiplier**exponent)

    def next_delay(self) -> float:
        """Draw the next delay and advance the attempt count."""
        delay = self.rng() * self.ceiling()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from the initial delay (after a healthy run)."""
        self.attempt = 0

    async def wait(self, shutdown: asyncio.Event) -> bool:
        """Sleep the next delay; False when shutdown was set (before or during it)."""
        if shutdown.is_set():
            return False
        return not await self.sleep(shutdown, self.next_delay())
