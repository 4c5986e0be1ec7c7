"""File descriptors: idle clients and many files must not exhaust them.

The HTTP server closes connections that stay idle or never finish a request head, and holds at
most `max_connections` (evicting the oldest idle one); the file source holds at most
`max_open_files` descriptors and closes files quiet for `close_inactive`, re-opening them by
identity when they grow. A real daemon at a low descriptor limit keeps answering health probes
and reads every file, with a bounded log.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import clean_env, free_port, wait_for
from tests.sources.contract import Tail, make_ctx
from watcher.http.app import AppState, bound_port, make_app, start
from watcher.metrics import Metrics
from watcher.sources.file import FileSource, FileSourceConfig


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True when the server closed the connection within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except OSError:
        return True  # reset


@contextlib.contextmanager
def connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` TCP connections to the port that send nothing."""
    socks = []
    try:
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        yield socks
    finally:
        for s in socks:
            s.close()


async def serve(**limits: float) -> tuple[object, int]:
    """The health/metrics app on a loopback port with the given limits; (runner, port)."""
    runner = await start(make_app(AppState(Metrics())), "127.0.0.1:0", **limits)  # type: ignore[arg-type]
    return runner, bound_port(runner)


async def test_idle_and_slow_header_connections_are_closed() -> None:
    """A connection that sends nothing, and one that sends its request head a byte at a time,
    are both closed once `idle_timeout` passes; a normal request still works."""
    runner, port = await serve(idle_timeout=0.5)
    try:
        with connections(port, 10) as idle, connections(port, 1) as (slow,):
            slow.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for _ in range(8):  # slowloris: a header byte every 0.1 s, never the blank line
                await asyncio.sleep(0.1)
                with contextlib.suppress(OSError):
                    slow.sendall(b"X")
            results = await asyncio.gather(
                *(asyncio.to_thread(closed_by_peer, s, 3.0) for s in [*idle, slow])
            )
            assert all(results), results
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/health/live") as r:
            assert r.status == 200
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]


async def test_connection_cap_evicts_the_oldest_idle_connection() -> None:
    """At max_connections idle connections, a health probe still gets through (the oldest
    idle connection is closed for it) and the server never holds more than the cap."""
    runner, port = await serve(max_connections=16, idle_timeout=60)
    try:
        with connections(port, 40) as socks:
            await asyncio.sleep(0.2)  # the server accepts them (24 get an immediate 503)
            async with aiohttp.ClientSession() as s:
                for _ in range(5):
                    async with s.get(f"http://127.0.0.1:{port}/health/live") as r:
                        assert r.status == 200
            server = runner.server  # type: ignore[attr-defined]
            assert len(server.connections) <= 16
            assert sum(closed_by_peer(x, 0.05) for x in socks) >= 40 - 16
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]


async def test_files_beyond_max_open_files_are_all_read(tmp_path: Path) -> None:
    """60 files through a budget of 8 descriptors: every line of every file is read, no more
    than 8 are open at once, and a file closed for inactivity is re-opened when it grows."""
    for i in range(60):
        (tmp_path / f"f{i:02d}.log").write_text(f"first {i}\n")
    ctx = make_ctx()
    cfg = FileSourceConfig(
        path=str(tmp_path / "*.log"), read_from="beginning", poll_interval=0.01,
        max_open_files=8, close_inactive=0.2,
    )
    source = cfg.build(ctx)
    assert isinstance(source, FileSource)
    tail = Tail(source, ctx)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, source.opened)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        got = await tail.wait(60, timeout=20)
        assert sorted(got) == sorted(f"first {i}" for i in range(60))
        await asyncio.sleep(0.5)  # every file goes quiet: closed
        assert source.opened == 0
        with (tmp_path / "f07.log").open("a") as fh:
            fh.write("second 7\n")
        assert (await tail.wait(61, timeout=10))[-1] == "second 7"
    finally:
        watcher.cancel()
        await tail.stop()
    assert peak <= 8
    assert tail.lines[-1].line_no == 2  # resumed by identity, not re-read


@pytest.fixture
def low_fd_daemon(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """`watcher run` under a hard limit of 160 descriptors, following 300 files (2 lines
    each) and serving HTTP; yields (process, port, its stderr log)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(300):
        (logs / f"app{i:03d}.log").write_text(f"ERROR boom in worker {i}\nINFO ok {i}\n")
    port = free_port()
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\ninterval = 1\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{logs}/*.log"\n'
        'read_from = "beginning"\npoll_interval = 0.05\nclose_inactive = 1\n'
    )
    err = tmp_path / "daemon.log"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))

    with err.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "-c", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=out, env=clean_env(), preexec_fn=limit,
        )
    try:
        yield proc, port, err
    finally:
        proc.kill()
        proc.wait(10)


def probe(port: int, path: str = "/health/live", timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of one GET (5 s: the first one may queue behind the server working
    through a flood of connections); (0, error) when it failed."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except OSError as exc:
        return 0, str(exc)


def lines_counted(port: int) -> float:
    status, body = probe(port, "/metrics")
    if status != 200:
        return -1
    found = [ln for ln in body.splitlines() if ln.startswith('watcher_lines_total{source="app"}')]
    return float(found[0].split()[-1]) if found else 0


def test_daemon_at_a_low_descriptor_limit_stays_healthy(
    low_fd_daemon: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    """At 160 descriptors, 300 files and 300 idle connections: every line is read, health
    probes answer (before: every one timed out), and the log stays small (one line per
    problem per minute)."""
    proc, port, err = low_fd_daemon
    wait_for(lambda: probe(port)[0] == 200, timeout=20)
    with connections(port, 300):
        answered = []
        for _ in range(10):
            answered.append(probe(port)[0])
            time.sleep(0.1)
        assert answered == [200] * 10, answered
        wait_for(lambda: lines_counted(port) == 600, timeout=30)
    assert proc.poll() is None
    assert err.stat().st_size < 64 * 1024, err.read_text()[-2000:]
