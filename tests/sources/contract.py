"""The compliance suite every source must pass.

To plug a source in, subclass `SourceContract` in a test module (name the subclass `Test…`) and
implement `build`: given a SourceContext and the raw lines the source's medium should carry,
return a Source that delivers exactly those lines (a file, a fake server, a script…). pytest
then runs every `test_contract_*` method below against it. Capability flags switch off checks
a medium cannot express (e.g. JSON APIs cannot carry invalid UTF-8).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import pytest

from watcher.metrics import Metrics
from watcher.model import RawLine
from watcher.pipeline import solid_cursor
from watcher.sources.base import Source, SourceContext

CAP = 1024  # a small max_line_bytes so over-long lines are cheap to make
TIMEOUT = 10.0  # generous: only a hung source ever gets near it


def make_ctx(**kwargs: object) -> SourceContext:
    """A context with its own metrics registry and a small line cap."""
    kwargs.setdefault("max_line_bytes", CAP)
    kwargs.setdefault("metrics", Metrics())
    return SourceContext(**kwargs)  # type: ignore[arg-type]


async def collect(it: AsyncIterator[list[RawLine]], want: int | None = None) -> list[list[RawLine]]:
    """Batches from `it` until it ends, or until `want` lines have arrived (then close it)."""
    batches: list[list[RawLine]] = []
    async with asyncio.timeout(TIMEOUT), contextlib.aclosing(it):
        async for batch in it:
            batches.append(batch)
            if want is not None and sum(map(len, batches)) >= want:
                break
    return batches


def texts(batches: list[list[RawLine]]) -> list[str]:
    """The text of every line, in order."""
    return [line.text for batch in batches for line in batch]


class SourceContract:
    """Inherited tests; subclasses provide `build` and set the capability flags."""

    raw_bytes: ClassVar[bool] = True  # the medium carries arbitrary bytes (invalid UTF-8, NUL)
    resumable: ClassVar[bool] = False  # follow mode resumes after ctx.checkpoint's cursors
    name: ClassVar[str] = "contract"

    async def build(
        self, ctx: SourceContext, lines: list[bytes], tmp_path: Path, *, follow: bool
    ) -> Source:
        """A source named `self.name` whose medium holds `lines` (each without its newline).

        follow=True: the source stays open after them (more could come) so shutdown is what
        ends it; follow=False: a window()/scan over exactly these lines.
        """
        raise NotImplementedError

    async def _window(self, lines: list[bytes], tmp_path: Path) -> list[list[RawLine]]:
        ctx = make_ctx()
        source = await self.build(ctx, lines, tmp_path, follow=False)
        return await collect(source.window(None, None))

    async def test_contract_window_batches(self, tmp_path: Path) -> None:
        """window() yields non-empty lists of RawLine with source=name, in order, then ends."""
        lines = [f"line {i}".encode() for i in range(50)]
        batches = await self._window(lines, tmp_path)
        assert batches
        for batch in batches:
            assert isinstance(batch, list) and batch
            assert all(isinstance(line, RawLine) for line in batch)
            assert all(line.source == self.name for line in batch)
        assert texts(batches) == [b.decode() for b in lines]

    async def test_contract_empty_window_ends(self, tmp_path: Path) -> None:
        """window() over no lines ends without yielding (empty batches are never yielded)."""
        assert await self._window([], tmp_path) == []

    async def test_contract_cursors_and_streams(self, tmp_path: Path) -> None:
        """Cursors are JSON-serialisable (a lazy one once made solid, as the pipeline does),
        streams are strings, line numbers rise per stream."""
        batches = await self._window([f"l{i}".encode() for i in range(20)], tmp_path)
        last: dict[str, int] = {}
        for line in (line for batch in batches for line in batch):
            json.dumps(solid_cursor(line.cursor))
            assert isinstance(line.stream, str) and line.stream
            assert line.line_no >= 0
            if line.line_no:
                assert line.line_no > last.get(line.stream, 0)
                last[line.stream] = line.line_no

    async def test_contract_identity(self, tmp_path: Path) -> None:
        """A source reports its configured name and a known delivery guarantee."""
        source = await self.build(make_ctx(), [], tmp_path, follow=False)
        assert source.name == self.name
        assert source.delivery in ("at_least_once", "best_effort")

    async def test_contract_overlong_line_truncated_not_lost(self, tmp_path: Path) -> None:
        """A line over max_line_bytes arrives cut to the cap and marked; its neighbours survive."""
        ctx = make_ctx()
        lines = [b"before", b"x" * (CAP * 5), b"after"]
        source = await self.build(ctx, lines, tmp_path, follow=False)
        got = [line for batch in await collect(source.window(None, None)) for line in batch]
        assert [line.text[:6] for line in got] == ["before", "x" * 6, "after"]
        long = got[1]
        assert long.truncated and not got[0].truncated and not got[2].truncated
        assert 0 < len(long.text.encode()) <= CAP
        assert ctx.metrics.truncated_lines.labels(self.name)._value.get() == 1

    async def test_contract_invalid_utf8_replaced(self, tmp_path: Path) -> None:
        """Invalid UTF-8 becomes U+FFFD and NUL bytes are kept, without raising."""
        if not self.raw_bytes:
            pytest.skip("this medium cannot carry raw bytes")
        batches = await self._window([b"bad \xff\xfe end", b"nul\x00here"], tmp_path)
        assert texts(batches) == ["bad \ufffd\ufffd end", "nul\x00here"]

    async def test_contract_follow_delivers_then_stops_on_shutdown(self, tmp_path: Path) -> None:
        """lines() delivers what is there, and ends promptly once ctx.shutdown is set."""
        ctx = make_ctx()
        source = await self.build(ctx, [b"one", b"two"], tmp_path, follow=True)
        it = source.lines()
        got: list[str] = []
        async with asyncio.timeout(TIMEOUT):
            async for batch in it:
                assert batch and all(line.source == self.name for line in batch)
                got.extend(line.text for line in batch)
                if len(got) >= 2:
                    break
            assert got == ["one", "two"]
            ctx.shutdown.set()
            async with asyncio.timeout(2.0):
                rest = [line async for batch in it for line in batch]
        assert rest == []

    async def test_contract_follow_idle_stops_on_shutdown(self, tmp_path: Path) -> None:
        """lines() waiting for input ends within a couple of seconds of shutdown."""
        ctx = make_ctx()
        source = await self.build(ctx, [], tmp_path, follow=True)
        it = source.lines()
        task = asyncio.ensure_future(anext(it, None))
        await asyncio.sleep(0.2)  # let it settle into waiting; not a correctness wait
        ctx.shutdown.set()
        async with asyncio.timeout(2.0):
            assert await task is None

    async def test_contract_resume_from_checkpoint(self, tmp_path: Path) -> None:
        """A source built with a checkpoint resumes after the committed line, not before."""
        if not self.resumable:
            pytest.skip("this source does not resume")
        ctx = make_ctx()
        lines = [f"r{i}".encode() for i in range(6)]
        source = await self.build(ctx, lines, tmp_path, follow=True)
        first = [line for batch in await collect(source.lines(), want=6) for line in batch]
        committed = first[2]
        ctx2 = make_ctx(
            checkpoint={committed.stream: json.loads(json.dumps(solid_cursor(committed.cursor)))}
        )
        source2 = await self.build(ctx2, lines, tmp_path, follow=True)
        again = [line for batch in await collect(source2.lines(), want=3) for line in batch]
        assert [line.text for line in again] == ["r3", "r4", "r5"]


class RecordingLog:
    """A structlog stand-in that keeps (level, event, fields) so tests can assert on logs."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, object]]] = []

    def __getattr__(self, level: str) -> object:
        def log(event: str, **fields: object) -> None:
            self.records.append((level, event, fields))

        return log

    def events(self, level: str | None = None) -> list[str]:
        """The event strings logged (at `level`, if given)."""
        return [e for lv, e, _ in self.records if level is None or lv == level]


async def wait_for(predicate: object, timeout: float = 5.0) -> None:
    """Poll `predicate()` until true; fail after `timeout` (no fixed sleeps in tests)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


class Tail:
    """Runs a source's lines() in a task, collecting every line, for step-by-step tests."""

    def __init__(self, source: Source, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.source = source
        self.lines: list[RawLine] = []
        self.batches = 0
        self.task = asyncio.create_task(self._run(source))

    async def _run(self, source: Source) -> None:
        async with contextlib.aclosing(source.lines()) as it:
            async for batch in it:
                assert batch
                self.batches += 1
                self.lines.extend(batch)

    def texts(self) -> list[str]:
        """Every line's text so far."""
        return [line.text for line in self.lines]

    async def wait(self, count: int, timeout: float = 5.0) -> list[str]:
        """Wait until at least `count` lines arrived; the texts."""
        await wait_for(lambda: len(self.lines) >= count or self.task.done(), timeout)
        if self.task.done():
            self.task.result()  # surface a crash in the source
        return self.texts()

    async def stop(self) -> None:
        """Set shutdown and wait (briefly) for the source to end."""
        self.ctx.shutdown.set()
        async with asyncio.timeout(2.0):
            await self.task
