"""The stdin source: an injected stream (bytes, pipe, regular file) read to EOF."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sources.contract import SourceContract, Tail, collect, make_ctx, texts
from watcher.sources.base import Source, SourceContext
from watcher.sources.stdin import StdinSource, StdinSourceConfig


class TestStdinContract(SourceContract):
    """The stdin source passes the shared source contract."""

    @pytest.fixture(autouse=True)
    def _pipes(self) -> Iterator[None]:
        self.open_fds: list[int] = []
        yield
        for fd in self.open_fds:
            os.close(fd)

    async def build(
        self, ctx: SourceContext, lines: list[bytes], tmp_path: Path, *, follow: bool
    ) -> Source:
        data = b"".join(line + b"\n" for line in lines)
        config = StdinSourceConfig(name=self.name)
        if not follow:
            return StdinSource(config, ctx, stream=io.BytesIO(data))
        # A pipe whose writer stays open: more input could come, so only shutdown ends it.
        r, w = os.pipe()
        os.write(w, data)
        self.open_fds.append(w)
        return StdinSource(config, ctx, stream=os.fdopen(r, "rb"))


async def test_lines_end_at_eof_with_final_partial_line() -> None:
    """lines() ends at EOF; a last line without newline is emitted; line_no counts from 1."""
    src = StdinSource(StdinSourceConfig(), make_ctx(), stream=io.BytesIO(b"a\nb\nc"))
    lines = [line for b in await collect(src.lines()) for line in b]
    assert [(x.text, x.line_no, x.stream) for x in lines] == [
        ("a", 1, "stdin"),
        ("b", 2, "stdin"),
        ("c", 3, "stdin"),
    ]


async def test_pipe_lines_arrive_before_eof() -> None:
    """Lines written to a pipe are delivered as they come, not only at EOF."""
    r, w = os.pipe()
    ctx = make_ctx()
    tail = Tail(StdinSource(StdinSourceConfig(), ctx, stream=os.fdopen(r, "rb")), ctx)
    os.write(w, b"first\n")
    assert await tail.wait(1) == ["first"]
    os.write(w, b"second\n")
    assert await tail.wait(2) == ["first", "second"]
    os.close(w)
    await tail.task  # EOF ends the source by itself
    assert tail.texts() == ["first", "second"]


async def test_regular_file_stream(tmp_path: Path) -> None:
    """A regular file as stdin (`watcher < app.log`) is read whole, in window mode too."""
    path = tmp_path / "in.log"
    path.write_bytes(b"".join(b"%d\n" % i for i in range(5000)))
    with path.open("rb") as f:
        src = StdinSourceConfig().build(make_ctx())
        src.stream = f
        batches = await collect(src.window(None, None))
    assert texts(batches) == [str(i) for i in range(5000)]
