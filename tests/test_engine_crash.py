"""A pipeline error while the queue is full ends Engine.run with that error instead of hanging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from watcher.engine import Engine, EngineOptions
from watcher.group.table import GroupTable
from watcher.model import RawLine
from watcher.pipeline import Keyed, Pipeline


class Boom(Exception):
    """The stand-in for a bug in the pipeline."""


class _Flood:
    """1,000 one-line batches: far more than a queue of one batch holds."""

    name = "flood"
    delivery = "best_effort"

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        for i in range(1000):
            yield [RawLine(f"line {i}", "flood", "s", None, i + 1)]

    def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        return self.lines()


@dataclass(frozen=True)
class _FloodConfig:
    type: str = "flood"
    name: str = "flood"

    def build(self, ctx: Any) -> _Flood:
        return _Flood()


class _Failing(Pipeline):
    def take(self, batch: list[RawLine]) -> Keyed:  # the engine's first step of a batch
        raise Boom("pipeline bug")


async def test_pipeline_error_with_full_queue_does_not_hang() -> None:
    """The consumer dies with the queue full: run() raises its error within the shutdown time."""
    engine = Engine(
        _Failing(GroupTable()),
        [_FloodConfig()],
        options=EngineOptions(follow=False, queue_size=1, shutdown_timeout=1.0),
    )
    with pytest.raises(Boom):
        await asyncio.wait_for(engine.run(asyncio.Event()), timeout=20)
