"""The file source reads several batches per thread hop, each still bounded like before."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.sources.contract import make_ctx
from watcher.sources import file as file_module
from watcher.sources.file import BATCHES_PER_HOP, FileSourceConfig
from watcher.sources.lines import MAX_BATCH, MAX_BATCH_BYTES

LINES = 10 * MAX_BATCH + 7  # eleven batches


def _hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every function the file source runs in a thread."""
    calls: list[str] = []
    to_thread = asyncio.to_thread

    async def counting(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await to_thread(fn, *args, **kwargs)

    monkeypatch.setattr(file_module.asyncio, "to_thread", counting)
    return calls


def _write(path: Path) -> list[str]:
    # a partial last line (no newline): still read, and counted, at the end
    lines = [f"2026-12-07 12:00:00,{i % 1000:03d} INFO line {i} {'x' * 40}" for i in range(LINES)]
    path.write_text("\n".join(lines), encoding="utf-8")
    return lines


async def test_scan_reads_several_batches_per_thread_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app.log"
    lines = _write(path)
    calls = _hops(monkeypatch)
    src = FileSourceConfig(path=str(path), read_from="beginning").build(make_ctx())
    batches = [batch async for batch in src.window(None, None)]

    assert [line.text for batch in batches for line in batch] == lines
    assert [line.line_no for batch in batches for line in batch] == list(range(1, LINES + 1))
    assert all(len(b) <= MAX_BATCH for b in batches)
    assert all(sum(len(line.text) + 1 for line in b) <= MAX_BATCH_BYTES for b in batches)
    reads = calls.count("_scan_batches")
    # a hop per BATCHES_PER_HOP batches, and the one that finds the end
    assert reads == -(-len(batches) // BATCHES_PER_HOP) + 1
    assert reads < len(batches)


async def test_follow_reads_several_batches_per_thread_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app.log"
    lines = _write(path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n")  # follow mode waits for the newline of the last line
    calls = _hops(monkeypatch)
    ctx = make_ctx()
    src = FileSourceConfig(path=str(path), read_from="beginning", poll_interval=0.01).build(ctx)
    got: list[str] = []
    batches = 0
    async for batch in src.lines():
        got += [line.text for line in batch]
        batches += 1
        if len(got) >= LINES:
            ctx.shutdown.set()
    assert got == lines
    assert batches >= 6  # each batch still bounded by MAX_BATCH_BYTES
    assert calls.count("_poll_rounds") < batches
