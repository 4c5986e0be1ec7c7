"""`watcher run` on a loki source, SIGKILLed mid-stream and restarted: no line lost, none twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fakes.loki import FakeLoki, serve_in_thread
from tests.helpers import clean_env, stored_groups, stored_total, wait_for

LABELS = {"app": "api"}


def write_config(tmp_path: Path, url: str) -> Path:
    """A daemon config: the loki source on the fake, no HTTP, state in tmp_path."""
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\ninterval = 1\n'
        "[http]\nenabled = false\n"
        "[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "loki"\nname = "loki"\nurl = "{url}"\n'
        "query = '{app=\"api\"}'\nmax_backoff = 0.5\n"
    )
    return cfg


class Feeder:
    """Pushes distinct error lines of three patterns (numbers differ, so they group)."""

    PATTERNS = (
        "ERROR Payment provider timeout for order {n} after 3 retries",
        "ERROR Database connection refused on shard {n}",
        "ERROR Cache miss storm on key user:{n}",
    )

    def __init__(self, fake: FakeLoki) -> None:
        self.fake = fake
        self.sent = 0

    def feed(self, count: int, pause: float = 0.0) -> None:
        """Push `count` new error lines, `pause` seconds apart."""
        for _ in range(count):
            pattern = self.PATTERNS[self.sent % len(self.PATTERNS)]
            self.fake.push(LABELS, pattern.format(n=1000 + self.sent))
            self.sent += 1
            if pause:
                time.sleep(pause)


def test_sigkill_mid_stream_then_restart_counts_each_error_once(tmp_path: Path) -> None:
    """Kill -9 mid-stream, feed while down, restart: the group total equals the lines fed."""
    env = clean_env()
    db = tmp_path / "state.db"
    log = tmp_path / "daemon.log"
    with serve_in_thread() as fake:
        cfg = write_config(tmp_path, fake.url)

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "-c", str(cfg)],
                stdout=subprocess.DEVNULL,
                stderr=log.open("ab"),  # a file: a full pipe would stall the daemon
                env=env,
            )

        feeder = Feeder(fake)
        proc = start()
        try:
            wait_for(lambda: fake.open_tails == 1, timeout=15)
            feeder.feed(30, pause=0.01)
            # a checkpoint was committed for part of the stream (persisted every ~5 s) …
            wait_for(lambda: stored_total(db) >= 10, timeout=15)
            # … and more is in flight when the daemon dies without any chance to flush
            feeder.feed(15, pause=0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            killed_at = stored_total(db)
            feeder.feed(15)  # while nothing is watching
            proc = start()
            wait_for(lambda: fake.open_tails == 1, timeout=15)
            feeder.feed(15, pause=0.01)
            wait_for(lambda: stored_total(db) >= feeder.sent, timeout=20)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0, log.read_text()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert 0 < killed_at < 45  # the kill really was mid-stream
    assert stored_total(db) == feeder.sent == 75
    assert stored_groups(db) == 3
