"""`watcher run` as a real child process, for tests that stop, kill and restart it.

Configs written here persist every 0.3 s (`[watcher] persist_interval`), so several commits
fall between the kills a test makes.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.helpers import clean_env, read_rows, wait_for


class WatcherProcess:
    """Starts, stops (SIGTERM), kills (SIGKILL) and restarts one `watcher run -c cfg`."""

    def __init__(self, cfg: Path, log: Path) -> None:
        self.cfg, self.log = cfg, log
        self.log_at = 0  # where the current daemon's log lines begin
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = clean_env()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the daemon (its stderr appended to `log`)."""
        argv = [sys.executable, "-m", "watcher", "run", "-c", str(self.cfg)]
        self.log_at = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:  # a file: a full pipe would stall the daemon
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=out, env=self.env)

    def wait_started(self) -> None:
        """Wait until the daemon logged that it is watching (its signal handlers are in place:
        a SIGTERM before that is the default action, not a shutdown)."""
        wait_for(lambda: b'"Watching."' in self.log.read_bytes()[self.log_at :], timeout=20)

    def stop(self) -> int:
        """SIGTERM (a clean shutdown: drain, final commit); the exit code."""
        assert self.proc is not None
        self.wait_started()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL: whatever was not committed is lost with the process."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)
        self.proc = None

    def close(self) -> None:
        """Kill a daemon still running (a failed test must not leave one behind)."""
        if self.running:
            self.kill()

    def tail(self) -> str:
        """The end of the daemon's log, for failure messages."""
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def file_config(
    tmp_path: Path, path: Path | str, *, read_from: str = "beginning", extra: str = ""
) -> Path:
    """A config with one file source on `path`, HTTP off, fast polling, state in tmp_path."""
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\ninterval = 1\n'
        "persist_interval = 0.3\n"
        "[http]\nenabled = false\n[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{path}"\n'
        f'read_from = "{read_from}"\npoll_interval = 0.05\n{extra}'
    )
    return cfg


def statement_line(statement: int, seq: int) -> str:
    """An error line of `statement` (its own group: statements differ in word count)."""
    return f"ERROR mbt {'step ' * statement}seq={seq:06d}"


def stored(db: Path) -> Counter[int]:
    """Stored count per statement (groups of statement_line); empty before the first commit."""
    out: Counter[int] = Counter()
    for template, count in read_rows(db, "SELECT template, count FROM groups"):
        if "mbt" in template:
            out[template.split().count("step")] += count
    return out


def committed(db: Path, source: str = "app") -> dict[str, str]:
    """The checkpoint rows of a source (stream -> cursor JSON); {} before the first commit."""
    sql = "SELECT stream, cursor FROM checkpoints WHERE source = ?"
    return dict(read_rows(db, sql, (source,)))


def settle(db: Path, want: Counter[int], timeout: float = 20.0) -> Counter[int]:
    """Wait until the stored counts reach `want` (then a moment for duplicates behind them)."""
    with contextlib.suppress(AssertionError):  # the caller's comparison names what is missing
        wait_for(lambda: all(stored(db)[k] >= n for k, n in want.items()), timeout=timeout)
    time.sleep(0.3)
    return stored(db)
