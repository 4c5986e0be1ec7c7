"""The command source: the output of any subprocess (`kubectl logs -f`, `journalctl -f`, …).

Follow mode keeps the command running: when it exits it is restarted with backoff, and each exit
is logged once with its code and last output lines rather than as a traceback. Output is read in
chunks and split by the shared splitter, because StreamReader.readline() raises on lines over
its limit and loses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from watcher.backoff import Backoff
from watcher.model import RawLine
from watcher.sources.base import Check, SourceContext
from watcher.sources.lines import Lines, LineSplitter, count_truncated, raw_lines
from watcher.sources.process import stop_group

# Pipes hand over at most this much per read anyway; larger reads would only wait longer.
_PIPE_CHUNK = 256 * 1024
_TAIL_LINES = 5  # output lines kept to explain an exit


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandSourceConfig:
    """[[sources]] type = "command": the lines a subprocess prints."""

    type: str = "command"
    name: str = "command"
    argv: list[str]
    merge_stderr: bool = True
    restart: bool = True
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    max_backoff: float = 60.0

    def validate(self) -> None:
        """Raise ValueError("key: problem") for values no command source can run with."""
        if not self.argv or not all(isinstance(a, str) for a in self.argv):
            raise ValueError("argv: must be a non-empty list of strings")
        if not self.argv[0]:
            raise ValueError("argv: the program name must not be empty")
        if not self.max_backoff > 0:
            raise ValueError("max_backoff: must be greater than 0")

    async def probe(self) -> list[Check]:
        """`check-config --probe`: the program is on PATH."""
        from watcher.sources.probes import command_source

        return await command_source(self)

    def build(self, ctx: SourceContext) -> CommandSource:
        """The source this config describes."""
        self.validate()
        return CommandSource(self, ctx)


@dataclass
class _Run:
    """What one run of the command left behind, to explain its exit."""

    code: int | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))


class CommandSource:
    """Runs the command; follow mode restarts it, scan mode runs it once."""

    delivery = "best_effort"

    def __init__(
        self,
        config: CommandSourceConfig,
        ctx: SourceContext,
        *,
        backoff: Backoff | None = None,
        healthy_after: float = 10.0,
        grace: float = 5.0,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.name
        self.backoff = backoff or Backoff(cap=config.max_backoff)
        self.healthy_after = healthy_after  # a run this long resets the backoff
        self.grace = grace  # seconds between SIGTERM and SIGKILL
        self.line_no = 0  # counts across restarts so one stream's numbers never go back
        self._last_failure: tuple[object, ...] | None = None

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        """Run, restart with backoff on exit, until shutdown."""
        shutdown = self.ctx.shutdown
        up = self.ctx.metrics.source_up.labels(self.name)
        while not shutdown.is_set():
            started = time.monotonic()
            try:
                proc = await self._spawn()
            except OSError as exc:
                up.set(0)
                # not ready until it starts: a missing program reads nothing, however long
                self.ctx.status.problem = f"command {self.config.argv[0]!r} cannot start: {exc}"
                if not self.config.restart:
                    raise  # nothing will retry it: the engine marks the source failed
                self._log_failure("error", "command could not start", error=str(exc))
            else:
                self.ctx.status.problem = None
                up.set(1)
                run = _Run()
                async with contextlib.aclosing(self._read(proc, run)) as batches:
                    async for batch in batches:
                        yield batch
                up.set(0)
                if shutdown.is_set():
                    return
                self._log_exit(run)
            if not self.config.restart:
                return
            if time.monotonic() - started >= self.healthy_after:
                self.backoff.reset()
            if not await self.backoff.wait(shutdown):
                return
            self.ctx.metrics.source_reconnects.labels(self.name).inc()

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """Run the command once, to its exit (or shutdown)."""
        try:
            proc = await self._spawn()
        except OSError as exc:
            self.ctx.log.error("command could not start", source=self.name, error=str(exc))
            raise
        run = _Run()
        async with contextlib.aclosing(self._read(proc, run)) as batches:
            async for batch in batches:
                yield batch
        if run.code:
            self.ctx.log.warning(
                "command exited", source=self.name, code=run.code, last_lines=list(run.tail)
            )

    async def _argv(self) -> list[str]:
        """The command line of the next run; a subclass may move it on (past a cursor)."""
        return self.config.argv

    async def _spawn(self) -> asyncio.subprocess.Process:
        cfg = self.config
        argv = await self._argv()
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if cfg.merge_stderr else asyncio.subprocess.PIPE,
            env={**os.environ, **cfg.env} if cfg.env else None,
            cwd=cfg.cwd or None,
            # Its own process group, so shutdown also stops what a wrapper shell started.
            start_new_session=True,
        )

    async def _read(
        self, proc: asyncio.subprocess.Process, run: _Run
    ) -> AsyncIterator[list[RawLine]]:
        """Batches of the process's output until it exits; stops it on shutdown or close."""
        assert proc.stdout is not None
        stderr_task = None
        if proc.stderr is not None:
            stderr_task = asyncio.create_task(self._collect_stderr(proc.stderr, run))
        shutdown_task = asyncio.create_task(self.ctx.shutdown.wait())
        splitter = LineSplitter(self.ctx.max_line_bytes)
        try:
            while True:
                read = asyncio.ensure_future(proc.stdout.read(_PIPE_CHUNK))
                await asyncio.wait({read, shutdown_task}, return_when=asyncio.FIRST_COMPLETED)
                if not read.done():
                    read.cancel()
                    return
                data = read.result()
                if data:
                    splitter.feed(data)
                lines = splitter.take() if data else splitter.flush()
                while lines.texts:
                    yield self._batch(lines, run)
                    lines = splitter.take() if data else Lines()
                if not data:
                    break
            run.code = await proc.wait()
        finally:
            shutdown_task.cancel()
            await self._stop(proc)
            if stderr_task is not None:
                stderr_task.cancel()

    def _batch(self, lines: Lines, run: _Run) -> list[RawLine]:
        count_truncated(self.ctx.metrics, self.name, lines)
        if self.config.merge_stderr:
            run.tail.extend(lines.texts[-_TAIL_LINES:])
        batch = raw_lines(lines, self.name, self.name, self.line_no + 1)
        self.line_no += len(batch)
        return batch

    async def _collect_stderr(self, stream: asyncio.StreamReader, run: _Run) -> None:
        """Keep the last few stderr lines (bounded) to explain an exit; they are not log lines."""
        splitter = LineSplitter(self.ctx.max_line_bytes)
        while data := await stream.read(_PIPE_CHUNK):
            splitter.feed(data)
            while (lines := splitter.take()).texts:
                run.tail.extend(lines.texts[-_TAIL_LINES:])
        run.tail.extend(splitter.flush().texts)

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        await stop_group(proc, self.grace)

    def _log_exit(self, run: _Run) -> None:
        self._log_failure("warning", "command exited", code=run.code, last_lines=list(run.tail))

    def _log_failure(self, level: str, message: str, **fields: object) -> None:
        """One log line per exit; identical repeats drop to debug so a crash loop stays quiet."""
        key = (message, *sorted((k, repr(v)) for k, v in fields.items()))
        if key == self._last_failure:
            level = "debug"
        self._last_failure = key
        getattr(self.ctx.log, level)(
            message, source=self.name, attempt=self.backoff.attempt, **fields
        )
