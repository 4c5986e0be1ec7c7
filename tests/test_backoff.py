"""Backoff: exponential growth, full jitter, a cap, reset, and prompt shutdown."""

from __future__ import annotations

import asyncio
import time

from hypothesis import given
from hypothesis import strategies as st

from watcher.backoff import Backoff, sleep_or_shutdown


def test_ceiling_grows_exponentially_to_the_cap() -> None:
    """With the top of the jitter range drawn, delays double from initial up to the cap."""
    b = Backoff(initial=1.0, cap=10.0, rng=lambda: 1.0)
    assert [b.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_full_jitter_can_draw_zero() -> None:
    """Full jitter: the delay is drawn from [0, ceiling], so it can be zero."""
    b = Backoff(initial=1.0, cap=10.0, rng=lambda: 0.0)
    assert [b.next_delay() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_reset_starts_over() -> None:
    """reset() returns to the initial delay."""
    b = Backoff(initial=1.0, cap=100.0, rng=lambda: 1.0)
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert b.next_delay() == 1.0


@given(st.integers(0, 10_000), st.floats(0, 1))
def test_delay_always_within_cap(attempt: int, draw: float) -> None:
    """Any attempt count (even huge ones: no overflow) gives a delay in [0, cap]."""
    b = Backoff(initial=0.5, cap=60.0, rng=lambda: draw)
    b.attempt = attempt
    assert 0.0 <= b.next_delay() <= 60.0


async def test_wait_uses_injected_sleep() -> None:
    """wait() sleeps through the injected sleep, so tests never sleep for real."""
    slept: list[float] = []

    async def fake_sleep(shutdown: asyncio.Event, seconds: float) -> bool:
        slept.append(seconds)
        return False

    b = Backoff(initial=2.0, cap=5.0, rng=lambda: 1.0, sleep=fake_sleep)
    shutdown = asyncio.Event()
    assert await b.wait(shutdown) and await b.wait(shutdown) and await b.wait(shutdown)
    assert slept == [2.0, 4.0, 5.0]


async def test_wait_false_when_already_shut_down() -> None:
    """wait() returns False at once when shutdown is already set."""
    shutdown = asyncio.Event()
    shutdown.set()
    assert not await Backoff(initial=100.0).wait(shutdown)


async def test_real_sleep_wakes_on_shutdown() -> None:
    """A long backoff sleep ends as soon as shutdown is set."""
    shutdown = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, shutdown.set)
    started = time.monotonic()
    assert not await Backoff(initial=30.0, rng=lambda: 1.0).wait(shutdown)
    assert time.monotonic() - started < 1.0


async def test_sleep_or_shutdown_times_out() -> None:
    """sleep_or_shutdown returns False after its time when nobody sets shutdown."""
    assert not await sleep_or_shutdown(asyncio.Event(), 0.01)
