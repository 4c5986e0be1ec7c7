"""The daemon and the CLI tell the truth about themselves: never healthy while blind, one clear
line (and the right exit code) for each way a command can fail."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from watcher.config import load_config
from watcher.daemon import Daemon
from watcher.model import ErrorGroup
from watcher.store import Store

from .helpers import DATA, clean_env

MIXED = str(DATA / "mixed.log")


def watcher(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        env={**clean_env(), **(env or {})},
    )


async def get_json(port: int, path: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.json()


async def eventually(check, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    """Poll an async check until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met before the deadline")


def daemon_config(tmp_path: Path, source: str) -> Path:
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\ninterval = 1\n'
        f'[http]\nlisten = "127.0.0.1:0"\n{source}'
    )
    return cfg


async def run_daemon(cfg: Path):  # type: ignore[no-untyped-def]
    daemon = Daemon(load_config(cfg))
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.started.wait(), 10)
    assert daemon.http_port
    return daemon, task


async def stop(daemon: Daemon, task: asyncio.Task) -> None:  # type: ignore[type-arg]
    daemon.shutdown.set()
    assert await asyncio.wait_for(task, 15) == 0


# --- never healthy while blind -----------------------------------------------------------------


async def test_file_source_matching_nothing_is_not_ready_until_a_file_appears(
    tmp_path: Path,
) -> None:
    """A file source whose glob matches nothing: /health/ready is 503 naming the source and the
    path, /error-monitor/health is degraded and says why, the source is not up; once a file
    matches, the daemon is ready and /error-monitor/sources lists the file with its offset."""
    logs = tmp_path / "logs"
    logs.mkdir()
    glob = logs / "*.log"
    cfg = daemon_config(
        tmp_path,
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{glob}"\npoll_interval = 0.05\n'
        'read_from = "beginning"\n',
    )
    daemon, task = await run_daemon(cfg)
    port = daemon.http_port
    try:

        async def blind() -> dict | None:  # type: ignore[type-arg]
            status, body = await get_json(port, "/health/ready")
            return body if status == 503 and body.get("blind") else None

        body = await eventually(blind)
        assert body["ready"] is False and str(glob) in body["blind"]["app"]
        assert "source app" in body["reason"] and "no file matches" in body["reason"]
        _, health = await get_json(port, "/error-monitor/health")
        assert health["status"] == "degraded" and "app" in health["sources_not_ready"]
        _, listed = await get_json(port, "/error-monitor/sources")
        [source] = listed["sources"]
        assert (source["up"], source["ready"], source["targets"]) == (False, False, [])

        (logs / "a.log").write_text("ERROR one\nERROR two\n")

        async def ready() -> dict | None:  # type: ignore[type-arg]
            status, body = await get_json(port, "/health/ready")
            return body if status == 200 else None

        body = await eventually(ready)
        assert body["blind"] == {}

        async def offset_at_end() -> list | None:  # type: ignore[type-arg]
            _, listed = await get_json(port, "/error-monitor/sources")
            targets = listed["sources"][0]["targets"]
            return targets if targets and targets[0]["offset"] == 20 else None

        [target] = await eventually(offset_at_end)
        assert target == {"path": str(logs / "a.log"), "offset": 20, "size": 20}
    finally:
        await stop(daemon, task)


async def test_command_whose_program_is_missing_is_not_ready(tmp_path: Path) -> None:
    """A command source that restarts (the default) but whose program is not on PATH keeps the
    daemon not ready (503 naming the program), instead of "up" while reading nothing."""
    cfg = daemon_config(
        tmp_path,
        '[[sources]]\ntype = "command"\nname = "k8s"\nargv = ["kubectl-typo", "logs", "-f"]\n',
    )
    daemon, task = await run_daemon(cfg)
    try:

        async def blind() -> dict | None:  # type: ignore[type-arg]
            status, body = await get_json(daemon.http_port, "/health/ready")
            return body if status == 503 and body.get("blind") else None

        body = await eventually(blind)
        assert "kubectl-typo" in body["blind"]["k8s"] and not task.done()
    finally:
        await stop(daemon, task)


def test_scan_of_a_path_matching_nothing_exits_3_naming_it(tmp_path: Path) -> None:
    """`scan --fail-on high` over a file source whose path matches nothing exits 3 with a line
    naming the source and the path (not 0 with an empty report), also beside a good source."""
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        f'[[sources]]\ntype = "file"\nname = "typo"\npath = "{tmp_path}/nope/*.log"\n'
        f'[[sources]]\ntype = "file"\nname = "good"\npath = "{DATA / "clean.log"}"\n'
    )
    r = watcher("scan", "-c", str(cfg), "--since", "1000d", "--fail-on", "high", "--no-progress")
    assert r.returncode == 3, r.stderr
    assert "source typo failed: no file matches path" in r.stderr and "nope/*.log" in r.stderr


# --- one line, the right exit code -------------------------------------------------------------


def test_port_in_use_is_one_line_naming_http_listen_and_exit_2(tmp_path: Path) -> None:
    """`run` on a port already bound: exit 2 and one stderr line naming [http] listen and the
    port (under systemd a traceback and exit 1 is a restart loop)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "w.toml"
        cfg.write_text(
            f'[watcher]\nstate_path = "{tmp_path / "s.db"}"\n[http]\nlisten = "127.0.0.1:{port}"\n'
            '[[sources]]\ntype = "command"\nargv = ["true"]\n'
        )
        r = watcher("run", "-c", str(cfg), env={"LOG_LEVEL": "error"})
    assert r.returncode == 2, r.stderr
    [line] = r.stderr.strip().splitlines()
    assert "[http] listen" in line and f"port {port} is already in use" in line


def test_replay_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """`replay --emit events | head -1`: no BrokenPipeError traceback, the SIGPIPE status."""
    many = tmp_path / "many.log"
    many.write_text((Path(MIXED).read_text() + "\n") * 400)
    with many.open("rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "replay", "-", "--emit", "events"],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # what `head -1` does after its line
        err = proc.stderr.read().decode()
        code = proc.wait(60)
    assert json.loads(first)["group"]
    assert code == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_reversed_since_until_is_refused() -> None:
    """`scan --since 1h --until 2h` (an end before the start) is a usage error, exit 2."""
    r = watcher("scan", "--since", "1h", "--until", "2h")
    assert r.returncode == 2
    assert "--until 2h is not after --since 1h" in r.stderr


def test_unknown_watcher_env_vars_are_named(tmp_path: Path) -> None:
    """A WATCHER_* variable no key reads is warned about by name, with the likely intended
    one; known ones (and the names config keys point at) are not."""
    r = watcher(
        "replay", str(DATA / "clean.log"),
        env={"WATCHER_HTTP_LISTN": "127.0.0.1:1", "WATCHER_INTERVAL": "5",
             "WATCHER_API_TOKEN": "t"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    [warning] = [json.loads(line) for line in r.stderr.splitlines() if "Unknown" in line]
    assert warning["names"] == ["WATCHER_HTTP_LISTN"]
    assert warning["did_you_mean"] == {"WATCHER_HTTP_LISTN": "WATCHER_HTTP_LISTEN"}


def test_fix_that_fails_exits_nonzero_with_the_reason(tmp_path: Path) -> None:
    """`watcher fix` with no API key records a failed fix and exits 1 with the reason on stderr
    (it exited 0, so a script took "no fix" for success)."""
    state, repo = tmp_path / "s.db", tmp_path / "repo"
    repo.mkdir()
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{state}"\n[autofix]\nrepo_path = "{repo}"\n'
        f'output_dir = "{tmp_path / "out"}"\n'
    )
    group = ErrorGroup("a1b2c3d4e5f6", "template", "redis unavailable", "cache_error", "medium",
                       True, count=3, first_seen=1.0, last_seen=2.0)  # fmt: skip
    with Store(str(state)) as store:
        store.commit([group])
    env = {k: v for k, v in clean_env().items() if not k.startswith("ANTHROPIC_")}
    r = subprocess.run(
        [sys.executable, "-m", "watcher", "fix", group.id, "-c", str(cfg), "--no-pr"],
        capture_output=True, text=True, timeout=60, env={**env, "LOG_LEVEL": "error"},
    )  # fmt: skip
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert json.loads(r.stdout)["status"] == "failed"
    assert r.stderr.strip() == f"watcher: fix {group.id} failed: no API key: set ANTHROPIC_API_KEY"


async def test_every_series_a_rule_may_use_exists_at_zero_from_the_start(tmp_path: Path) -> None:
    """Before any line: per-source duplicates, truncated, reconnects, lag and lines, and the
    state error kinds, are exported at 0 (increase() misses a series' first event); process_*
    metrics (RSS, CPU, open fds) are there; no `_created` series doubles the counters."""
    log = tmp_path / "app.log"
    log.write_text("")
    cfg = daemon_config(tmp_path, f'[[sources]]\ntype = "file"\nname = "app"\npath = "{log}"\n')
    daemon, task = await run_daemon(cfg)
    try:
        url = f"http://127.0.0.1:{daemon.http_port}/metrics"
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            text = await r.text()
    finally:
        await stop(daemon, task)
    samples = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines()
               if line and not line.startswith("#")}  # fmt: skip
    for name in ("duplicate_lines_total", "truncated_lines_total", "source_reconnects_total",
                 "source_lag_seconds", "lines_total", "events_total"):  # fmt: skip
        assert samples[f'watcher_{name}{{source="app"}}'] == "0.0", name
    for kind in ("write", "disk_full", "corrupt"):
        assert samples[f'watcher_state_errors_total{{kind="{kind}"}}'] == "0.0"
    assert float(samples["process_resident_memory_bytes"]) > 0
    assert float(samples["process_open_fds"]) > 0 and "process_cpu_seconds_total" in samples
    assert not [name for name in samples if "_created" in name]
