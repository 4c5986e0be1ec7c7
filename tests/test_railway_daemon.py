"""`watcher run` on a railway source, SIGKILLed mid-stream: no line lost, none counted twice."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.railway import FakeRailway

from .helpers import clean_env, stored_total, wait_for

# Three statements, so the events group into three patterns whatever the numbers are.
TEMPLATES = (
    "Payment failed for order {i}: card declined",
    "Database connection timeout after {i} ms",
    "Upstream returned 502 for request {i}",
)


def write_config(tmp_path: Path, fake: FakeRailway) -> Path:
    """A config with one railway source on the fake and no HTTP listener."""
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\ninterval = 1\n'
        "[http]\nenabled = false\n"
        "[parse]\nmultiline_timeout = 0.2\n"
        '[[sources]]\ntype = "railway"\nname = "api"\nservice = "api"\n'
        f'binary = "{fake.binary}"\n'
    )
    return cfg


class Feeder:
    """Appends distinct error lines to the fake's backlog from a thread, ~40 per second."""

    def __init__(self, fake: FakeRailway) -> None:
        self.fake = fake
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.025):
            self.send(1)

    def send(self, count: int) -> None:
        """Append `count` more error lines (each one a distinct event)."""
        messages = [TEMPLATES[i % 3].format(i=i) for i in range(self.sent, self.sent + count)]
        self.fake.add_many(messages, level="error")
        self.sent += count

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeRailway]:
    """The fake CLI; every fake process a daemon left behind is killed afterwards."""
    fake = FakeRailway(tmp_path / "railway", start_ns=time.time_ns())
    yield fake
    for run in fake.invocations():  # a SIGKILLed daemon cannot stop its CLI: we do
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{run['pid']}/cmdline").read_bytes()
            if b"railway_cli.py" in cmdline:
                os.kill(run["pid"], signal.SIGKILL)


def test_sigkill_mid_stream_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, fake: FakeRailway
) -> None:
    """Kill -9 while lines stream, feed more while down, restart: the total is exact."""
    cfg = write_config(tmp_path, fake)
    db = tmp_path / "state.db"
    env = clean_env()

    logs = tmp_path / "daemon.log"

    def start() -> subprocess.Popen[bytes]:
        with logs.open("ab") as out:  # a file, not a pipe nobody reads: it never blocks
            return subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "-c", str(cfg)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    feeder = Feeder(fake)
    feeder.send(30)  # a backlog the first subscribe replays
    daemon = start()
    try:
        with feeder:
            # Mid-stream: lines keep arriving while the first checkpoint is committed.
            wait_for(lambda: stored_total(db) >= 30, timeout=15)
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(10)
            committed = stored_total(db)
            time.sleep(0.3)  # more lines while the daemon is down
            daemon = start()
            wait_for(lambda: len(fake.log_runs()) >= 2, timeout=10)
            time.sleep(0.3)  # and more once it follows again
        # Lines the restart must recover are within the 500 a (re)subscribe replays.
        assert 0 < committed < feeder.sent < committed + 500
        wait_for(lambda: stored_total(db) >= feeder.sent, timeout=15)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0, logs.read_text()[-2000:]
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
    assert stored_total(db) == feeder.sent
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT COUNT(*) FROM groups").fetchone()[0] == 3
    finally:
        con.close()
