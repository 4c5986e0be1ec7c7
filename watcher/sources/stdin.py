"""The stdin source: lines piped into the watcher (`kubectl logs -f x | watcher run`).

Standard input may be a pipe, a regular file or a tty, so it is read with plain blocking reads in
a daemon thread: a read blocked on a quiet tty must neither stall the loop nor keep the process
alive at exit (asyncio.to_thread's pool threads are joined at shutdown, these are not).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import BinaryIO

from watcher.model import RawLine
from watcher.sources.base import SourceContext
from watcher.sources.lines import READ_CHUNK, LineSplitter, count_truncated, raw_lines

# Chunks in flight between the reader thread and the loop: enough to keep both busy, and the
# thread blocks (back-pressure) rather than buffering an unbounded pipe.
_QUEUE_CHUNKS = 4
_EOF = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class StdinSourceConfig:
    """[[sources]] type = "stdin": lines from standard input, until EOF."""

    type: str = "stdin"
    name: str = "stdin"

    def validate(self) -> None:
        """Nothing to check: stdin has no options."""

    def build(self, ctx: SourceContext) -> StdinSource:
        """The source this config describes."""
        return StdinSource(self, ctx)


class StdinSource:
    """Reads a binary stream (sys.stdin.buffer unless one is injected) to EOF."""

    delivery = "best_effort"

    def __init__(
        self, config: StdinSourceConfig, ctx: SourceContext, stream: BinaryIO | None = None
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.name
        self.stream = stream

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        """Every line until EOF or shutdown."""
        async with contextlib.aclosing(self._read()) as batches:
            async for batch in batches:
                yield batch

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """The same as lines(): stdin has no history to scan, only what arrives until EOF."""
        async with contextlib.aclosing(self._read()) as batches:
            async for batch in batches:
                yield batch

    async def _read(self) -> AsyncIterator[list[RawLine]]:
        stream = self.stream if self.stream is not None else sys.stdin.buffer
        queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue(_QUEUE_CHUNKS)
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=_pump, args=(_reader(stream), queue, loop), name="watcher-stdin", daemon=True
        ).start()
        shutdown_task = asyncio.create_task(self.ctx.shutdown.wait())
        splitter = LineSplitter(self.ctx.max_line_bytes)
        line_no = 1
        try:
            while True:
                get = asyncio.ensure_future(queue.get())
                await asyncio.wait({get, shutdown_task}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()
                    return
                chunk = get.result()
                if isinstance(chunk, BaseException):
                    self.ctx.log.error("reading stdin failed", source=self.name, error=str(chunk))
                    chunk = _EOF
                if chunk:
                    splitter.feed(chunk)
                while (lines := splitter.take() if chunk else splitter.flush()).texts:
                    count_truncated(self.ctx.metrics, self.name, lines)
                    batch = raw_lines(lines, self.name, self.name, line_no)
                    line_no += len(batch)
                    yield batch
                if not chunk:
                    return
        finally:
            shutdown_task.cancel()


def _reader(stream: BinaryIO) -> Callable[[], bytes]:
    """A read that returns what is available (read1) rather than waiting for a full chunk."""
    read1 = getattr(stream, "read1", None)
    if read1 is not None:
        return lambda: read1(READ_CHUNK)
    return lambda: stream.read(READ_CHUNK) or _EOF


def _pump(
    read: Callable[[], bytes],
    queue: asyncio.Queue[bytes | BaseException],
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Thread body: read chunks into the queue until EOF; stop quietly once the loop is gone."""
    while True:
        try:
            chunk: bytes | BaseException = read()
        except (OSError, ValueError) as exc:
            chunk = exc
        put = queue.put(chunk)
        try:
            asyncio.run_coroutine_threadsafe(put, loop).result()
        except Exception:
            put.close()  # never scheduled or cancelled: silence "never awaited"
            return  # the loop closed or cancelled the put: nobody is listening any more
        if not isinstance(chunk, bytes) or not chunk:
            return
