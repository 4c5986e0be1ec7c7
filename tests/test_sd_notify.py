"""`watcher run` under a fake systemd: READY/WATCHDOG/STOPPING on NOTIFY_SOCKET, SIGTERM drains."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.daemon import sd_notify, watchdog_interval
from watcher.store import Store

from .helpers import DATA, clean_env, wait_for

# a trace at the very end of the file: only the shutdown's forced flush can close it
OPEN_TRACE = (
    "2026-11-21 10:00:12,000 ERROR [api.jobs] job crashed\n"
    "Traceback (most recent call last):\n"
    '  File "/app/src/jobs.py", line 7, in run\n'
    "    step()\n"
    "ZeroDivisionError: division by zero\n"
)


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET; records what arrives."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        bind_to = "\0" + address[1:] if address.startswith("@") else address
        self.sock.bind(bind_to)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def states(self) -> list[str]:
        return [m for _, m in self.messages]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    # AF_UNIX paths are capped at 108 bytes: pytest's tmp_path can be longer
    with tempfile.TemporaryDirectory(prefix="sdn") as short:
        listener = NotifySocket(os.path.join(short, "notify"))
        try:
            yield listener
        finally:
            listener.close()


def write_config(tmp_path: Path, log: Path, port: int, *, multiline_timeout: float) -> Path:
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f"[parse]\nmultiline_timeout = {multiline_timeout}\n"
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{log}"\npoll_interval = 0.05\n'
    )
    return cfg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(cfg: Path, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`python -m watcher run` as systemd starts it: WATCHDOG_PID is the service's own pid."""
    env = clean_env()
    env.update(extra_env)
    # `exec` keeps the shell's pid, so $$ is the daemon's pid, as systemd sets it
    argv = [sys.executable, "-m", "watcher", "run", "-c", str(cfg)]
    return subprocess.Popen(
        ["sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def scrape(port: int, name: str) -> float:
    """The sum of a metric's samples on the daemon's /metrics; -1 while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " "))
    )


def stop(daemon: subprocess.Popen[bytes]) -> int:
    daemon.send_signal(signal.SIGTERM)
    try:
        return daemon.wait(20)
    finally:
        if daemon.poll() is None:
            daemon.kill()


def test_daemon_sends_ready_watchdog_then_stopping(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """READY=1 first, WATCHDOG=1 every WATCHDOG_USEC/2 while running, STOPPING=1 last, exit 0."""
    log = tmp_path / "app.log"
    log.write_text("")
    port = free_port()
    cfg = write_config(tmp_path, log, port, multiline_timeout=0.2)
    env = {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "400000"}
    daemon = start_daemon(cfg, env)
    try:
        wait_for(lambda: notify_socket.states().count("WATCHDOG=1") >= 4, timeout=20, step=0.05)
    finally:
        code = stop(daemon)
    assert code == 0
    states = notify_socket.states()
    assert states[0] == "READY=1"
    assert states[-1] == "STOPPING=1"
    assert set(states[1:-1]) == {"WATCHDOG=1"}
    pings = [t for t, m in notify_socket.messages if m == "WATCHDOG=1"]
    # a lower bound only: the pings never come faster than half of WatchdogSec
    assert min(b - a for a, b in itertools.pairwise(pings)) >= 0.15


def test_sigterm_drains_lines_in_flight_and_flushes_state(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """Lines read but not yet stored (a trace still open) are grouped, stored and checkpointed."""
    log = tmp_path / "app.log"
    log.write_text("")
    port = free_port()
    # a long multiline timeout: the last trace stays open until the shutdown flushes it
    cfg = write_config(tmp_path, log, port, multiline_timeout=60)
    daemon = start_daemon(cfg, {"NOTIFY_SOCKET": notify_socket.address})
    try:
        wait_for(lambda: "READY=1" in notify_socket.states(), timeout=20)
        # the file source starts at the end of the file: it must be open before we write
        wait_for(lambda: scrape(port, "watcher_source_up") == 1, timeout=20)
        # the first batch is stored at once; what follows waits for the next periodic persist
        text = (DATA / "mixed.log").read_text()
        with log.open("a") as fh:
            fh.write(text)
        wait_for(lambda: scrape(port, "watcher_lines_total") == len(text.splitlines()), timeout=20)
        with log.open("a") as fh:
            fh.write(OPEN_TRACE)
        total = len(text.splitlines()) + len(OPEN_TRACE.splitlines())
        wait_for(lambda: scrape(port, "watcher_lines_total") == total, timeout=20)
        started = time.monotonic()
    finally:
        code = stop(daemon)
    assert code == 0
    assert time.monotonic() - started < 15  # shutdown_timeout (10 s) bounds the drain
    store = Store(str(tmp_path / "state.db"))
    try:
        checkpoint = store.get_checkpoint("app")
        groups = store.list_groups(limit=100)
    finally:
        store.close()
    (cursor,) = [c for c in checkpoint.values() if c.get("stream") == str(log)]
    assert cursor["offset"] == log.stat().st_size
    assert "ZeroDivisionError" in {g.exception_type for g in groups}
    assert sum(g.count for g in groups) == 8  # mixed.log's 7 error events + the open trace


def test_sd_notify_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """An '@' NOTIFY_SOCKET is the abstract namespace, as systemd hands it to containers."""
    listener = NotifySocket(f"@watcher-test-{os.getpid()}-{time.monotonic_ns()}")
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    try:
        sd_notify("WATCHDOG=1")
        wait_for(lambda: listener.states() == ["WATCHDOG=1"], timeout=5)
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_interval_follows_sd_watchdog_enabled(
    env: dict[str, str], expected: float | None
) -> None:
    """Half of WATCHDOG_USEC, and only when it is positive and WATCHDOG_PID is unset or ours."""
    assert watchdog_interval(env) == expected
