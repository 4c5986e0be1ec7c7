"""The command source: real subprocesses that print, exit, crash and misbehave."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.sources.contract import (
    RecordingLog,
    SourceContract,
    Tail,
    collect,
    make_ctx,
    texts,
    wait_for,
)
from watcher.backoff import Backoff
from watcher.sources.base import Source, SourceContext
from watcher.sources.command import CommandSource, CommandSourceConfig


async def no_sleep(shutdown: asyncio.Event, seconds: float) -> bool:
    """An injected backoff sleep that returns at once (yielding to the loop)."""
    await asyncio.sleep(0)
    return shutdown.is_set()


def py(code: str) -> list[str]:
    """argv running a Python snippet."""
    return [sys.executable, "-c", code]


def command(ctx: SourceContext, argv: list[str], **kwargs: object) -> CommandSource:
    """A command source with instant backoff and a short kill grace."""
    return CommandSource(
        CommandSourceConfig(argv=argv, **kwargs),  # type: ignore[arg-type]
        ctx,
        backoff=Backoff(sleep=no_sleep),
        grace=0.5,
    )


class TestCommandContract(SourceContract):
    """The command source passes the shared source contract."""

    async def build(
        self, ctx: SourceContext, lines: list[bytes], tmp_path: Path, *, follow: bool
    ) -> Source:
        data = b"".join(line + b"\n" for line in lines)
        code = f"import sys,time; sys.stdout.buffer.write(bytes.fromhex({data.hex()!r}))"
        code += "; sys.stdout.flush(); time.sleep(60)" if follow else ""
        return command(ctx, py(code), name=self.name)


async def test_window_runs_once_with_final_partial_line() -> None:
    """window() runs the command to exit; a last line without newline is kept."""
    ctx = make_ctx()
    src = command(ctx, py("print('a'); print('b', end='')"))
    batches = await collect(src.window(None, None))
    assert texts(batches) == ["a", "b"]
    assert [line.stream for b in batches for line in b] == ["command", "command"]
    assert all(line.cursor is None for b in batches for line in b)


async def test_five_megabyte_line_truncated() -> None:
    """A 5 MB line (far over readline's limit) is truncated to the cap, not lost or fatal."""
    ctx = make_ctx(max_line_bytes=64 * 1024)
    src = command(ctx, py("import sys; sys.stdout.write('y' * 5_000_000 + '\\nafter\\n')"))
    lines = [line for b in await collect(src.window(None, None)) for line in b]
    assert [len(line.text) for line in lines] == [64 * 1024, 5]
    assert lines[0].truncated and lines[1].text == "after"


async def test_restarts_after_exit_and_counts_reconnects() -> None:
    """A command that exits is restarted; reconnects are counted and each exit logged once."""
    log = RecordingLog()
    ctx = make_ctx(log=log)
    tail = Tail(command(ctx, py("print('run'); raise SystemExit(3)")), ctx)
    assert await tail.wait(3) == ["run"] * 3
    await tail.stop()
    assert ctx.metrics.source_reconnects.labels("command")._value.get() >= 2
    assert ctx.metrics.source_up.labels("command")._value.get() == 0
    exits = [f for lv, e, f in log.records if e == "command exited"]
    assert exits[0]["code"] == 3 and exits[0]["last_lines"] == ["run"]
    assert [lv for lv, e, _ in log.records if e == "command exited"][1:2] == ["debug"]
    assert [line.line_no for line in tail.lines[:3]] == [1, 2, 3]


async def test_missing_executable_keeps_retrying() -> None:
    """A missing program logs a clear error, leaves source_up at 0 and retries until shutdown."""
    log = RecordingLog()
    ctx = make_ctx(log=log)
    src = command(ctx, ["/nonexistent/watcher-test-binary"])
    tail = Tail(src, ctx)
    await wait_for(lambda: src.backoff.attempt >= 3)
    await tail.stop()
    assert log.events("error") == ["command could not start"]
    assert ctx.metrics.source_up.labels("command")._value.get() == 0
    assert tail.lines == []


async def test_missing_executable_window_raises() -> None:
    """In scan mode a missing program is an error the caller sees."""
    src = command(make_ctx(log=RecordingLog()), ["/nonexistent/watcher-test-binary"])
    with pytest.raises(FileNotFoundError):
        await collect(src.window(None, None))


async def test_no_restart_ends_follow() -> None:
    """restart=false: lines() ends when the command exits."""
    ctx = make_ctx(log=RecordingLog())
    batches = await collect(command(ctx, py("print('once')"), restart=False).lines())
    assert texts(batches) == ["once"]


async def test_backoff_resets_after_healthy_run() -> None:
    """A run longer than healthy_after resets the backoff to its first delay."""
    ctx = make_ctx(log=RecordingLog())
    src = command(ctx, py("print('x')"))
    src.healthy_after = 0.0
    tail = Tail(src, ctx)
    await tail.wait(3)
    await tail.stop()
    assert src.backoff.attempt <= 1


async def test_stderr_kept_apart_when_not_merged() -> None:
    """merge_stderr=false: stderr is not emitted as lines but explains the exit."""
    log = RecordingLog()
    ctx = make_ctx(log=log)
    code = "import sys; print('out'); print('boom', file=sys.stderr); sys.exit(1)"
    src = command(ctx, py(code), merge_stderr=False, restart=False)
    assert texts(await collect(src.lines())) == ["out"]
    (fields,) = [f for _, e, f in log.records if e == "command exited"]
    assert fields["code"] == 1 and fields["last_lines"] == ["boom"]


async def test_env_and_cwd(tmp_path: Path) -> None:
    """env entries are added to the inherited environment; cwd sets the working directory."""
    code = "import os; print(os.environ['WATCHER_X'], os.getcwd(), 'PATH' in os.environ)"
    src = command(make_ctx(), py(code), env={"WATCHER_X": "42"}, cwd=str(tmp_path))
    assert texts(await collect(src.window(None, None))) == [f"42 {tmp_path} True"]


async def test_shutdown_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    """On shutdown the child gets SIGTERM, then SIGKILL after the grace period."""
    pidfile = tmp_path / "pid"
    code = (
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); print('up', flush=True); "
        "time.sleep(60)"
    )
    ctx = make_ctx()
    tail = Tail(command(ctx, py(code)), ctx)
    await tail.wait(1)
    pid = int(pidfile.read_text())
    await tail.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize(
    ("kwargs", "key"), [({"argv": []}, "argv"), ({"argv": ["x"], "max_backoff": 0}, "max_backoff")]
)
def test_config_validate(kwargs: dict[str, object], key: str) -> None:
    """validate() names the offending key."""
    with pytest.raises(ValueError, match=f"^{key}"):
        CommandSourceConfig(**kwargs).validate()  # type: ignore[arg-type]
