"""`watcher status` / `top` against a real running daemon's API."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from watcher.config import load_config
from watcher.daemon import Daemon

from .helpers import clean_env


async def watcher(*args: str) -> tuple[int, str, str]:
    """The CLI in a subprocess, without blocking the loop the daemon runs on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher", *args, env=clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_status_once_shows_sources_and_busiest_patterns(tmp_path: Path) -> None:
    """`status --once` prints each source (state, lines, error events) and the patterns with
    their 1m/5m/1h counts, busiest first; `top` is the same command; a source whose path matches
    nothing shows as blind with the reason."""
    log = tmp_path / "app.log"
    # no timestamps: the windows count them as seen now
    log.write_text("ERROR db connection refused by 10.0.0.1\n" * 3 + "ERROR cache miss on k1\n")
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "s.db"}"\n[http]\nlisten = "127.0.0.1:0"\n'
        "[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{log}"\nread_from = "beginning"\n'
        f'poll_interval = 0.05\n[[sources]]\ntype = "file"\nname = "typo"\n'
        f'path = "{tmp_path}/none/*.log"\n'
    )
    daemon = Daemon(load_config(cfg))
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.started.wait(), 10)
    url = f"http://127.0.0.1:{daemon.http_port}"
    try:
        for _ in range(200):  # until the 4 error events are grouped
            if daemon.engine and daemon.engine.pipeline.stats.error_events >= 4:
                break
            await asyncio.sleep(0.05)
        code, out, err = await watcher("status", "--once", "--url", url, "--interval", "0.2")
        code_top, out_top, _ = await watcher("top", "--once", "--url", url, "--interval", "0.2")
    finally:
        daemon.shutdown.set()
        assert await asyncio.wait_for(task, 15) == 0
    assert code == 0 and code_top == 0, err
    lines = out.splitlines()
    app = next(line for line in lines if line.startswith("app "))
    assert app.split()[1] == "up" and app.split()[3:5] == ["4", "4"]  # lines, error events
    typo = next(line for line in lines if line.startswith("typo "))
    assert typo.split()[1] == "blind" and "no file matches path" in out
    head = lines.index(next(line for line in lines if line.lstrip().startswith("1M")))
    first = lines[head + 1].split()
    assert first[:4] == ["3", "3", "3", "3"] and "db connection refused by" in lines[head + 1]
    assert lines[head + 2].split()[:4] == ["1", "1", "1", "1"] and "cache_error" in out
    assert out_top.splitlines()[0] == lines[0]


async def test_status_without_a_daemon_exits_3() -> None:
    """Nothing listening: one line saying the daemon cannot be reached, exit 3."""
    code, _, err = await watcher("status", "--once", "--url", "http://127.0.0.1:9")
    assert code == 3 and "cannot reach the daemon at http://127.0.0.1:9" in err


async def test_status_lists_the_worker_processes_and_their_sources(tmp_path: Path) -> None:
    """With `[watcher] workers = 2` and two file sources, `status --once` shows a line per worker:
    its live pid, up, no restarts, its memory and the source it reads."""
    cfg = tmp_path / "w.toml"
    body = f'[watcher]\nworkers = 2\nstate_path = "{tmp_path / "s.db"}"\n'
    body += '[http]\nlisten = "127.0.0.1:0"\n[parse]\nmultiline_timeout = 0.2\n'
    for name in ("web", "jobs"):
        log = tmp_path / f"{name}.log"
        log.write_text(f"ERROR {name} failed to reach the ledger\n")
        body += f'[[sources]]\ntype = "file"\nname = "{name}"\npath = "{log}"\n'
        body += 'read_from = "beginning"\npoll_interval = 0.05\n'
    cfg.write_text(body)
    daemon = Daemon(load_config(cfg))
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.started.wait(), 30)
    url = f"http://127.0.0.1:{daemon.http_port}"
    try:
        for _ in range(400):  # until both workers' events are grouped
            if daemon.engine and daemon.engine.pipeline.stats.error_events >= 2:
                break
            await asyncio.sleep(0.05)
        code, out, err = await watcher("status", "--once", "--url", url, "--interval", "0.2")
        pids = {w["pid"] for w in daemon.engine.options.workers.health()}  # type: ignore[union-attr]
    finally:
        daemon.shutdown.set()
        assert await asyncio.wait_for(task, 30) == 0
    assert code == 0, err
    lines = out.splitlines()
    head = lines.index(next(line for line in lines if line.startswith("WORKER")))
    rows = [line.split() for line in lines[head + 1 : head + 3]]
    assert {int(r[1]) for r in rows} == pids and all(r[2:4] == ["up", "0"] for r in rows)
    assert all(r[5] == "MiB" for r in rows)  # its memory is known
    assert sorted(r[-1] for r in rows) == ["jobs", "web"]
