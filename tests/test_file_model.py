"""Model-based test of the file source across rotations and restarts (as Vector tests its file
source): hypothesis interleaves writes, rename and copytruncate rotations, truncations,
deletions and restarts of the real `watcher run` (SIGTERM and SIGKILL, and starts after a
while down), then compares the stored lines with a model of the files.

Every write is its own statement (its own group), so the audit is per write: a statement whose
lines are in a file that still exists must be counted exactly once (nothing lost, nothing
twice); one that was in a file deleted or truncated without a copy may be lost (in part) but is
never counted twice. The glob `app.log*` matches the rotated names, as the README promises.

The suite runs a bounded number of examples (WATCHER_MODEL_EXAMPLES, default 3, derandomised);
`python bench/file_model.py` runs a longer, random exploration.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from tests.watcher_proc import WatcherProcess, file_config, settle, statement_line

EXAMPLES = int(os.environ.get("WATCHER_MODEL_EXAMPLES", "3"))
STEPS = int(os.environ.get("WATCHER_MODEL_STEPS", "14"))
EXPLORE = bool(os.environ.get("WATCHER_MODEL_EXPLORE"))
KEEP = 3  # rotated files kept: app.log.1 .. app.log.3


class FileRotationModel(RuleBasedStateMachine):
    """The files as the model sees them: per name, the statements (writes) it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="watcher-model-"))
        self.log = self.dir / "app.log"
        self.log.write_text("")
        file_config(self.dir, f"{self.dir}/app.log*")
        self.daemon = WatcherProcess(self.dir / "watcher.toml", self.dir / "daemon.log")
        self.files: dict[int, list[int]] = {0: []}  # 0: app.log, n: app.log.n
        self.written: Counter[int] = Counter()
        self.maybe_lost: set[int] = set()
        self.trace: list[str] = []
        self.daemon.start()

    def name(self, n: int) -> Path:
        return self.dir / ("app.log" if n == 0 else f"app.log.{n}")

    @rule(count=st.integers(1, 80))
    def write(self, count: int) -> None:
        """The application appends `count` lines (one new statement) to app.log."""
        statement = len(self.written) + 1
        with self.log.open("a") as fh:
            fh.write("".join(statement_line(statement, s) + "\n" for s in range(count)))
        self.written[statement] = count
        self.files.setdefault(0, []).append(statement)

    def _shift(self) -> None:
        """app.log.n -> app.log.n+1 (the oldest beyond KEEP deleted), before a rotation."""
        if KEEP in self.files:
            self.name(KEEP).unlink()
            self.maybe_lost.update(self.files.pop(KEEP))
        for n in range(KEEP - 1, 0, -1):
            if n in self.files:
                os.rename(self.name(n), self.name(n + 1))
                self.files[n + 1] = self.files.pop(n)

    @rule()
    def rotate_by_rename(self) -> None:
        """logrotate's default: rename app.log to app.log.1, create a new app.log."""
        self._shift()
        os.rename(self.log, self.name(1))
        self.log.write_text("")
        self.files[1], self.files[0] = self.files[0], []

    @rule()
    def rotate_by_copytruncate(self) -> None:
        """logrotate's copytruncate: copy app.log to app.log.1, truncate app.log in place."""
        self._shift()
        shutil.copyfile(self.log, self.name(1))
        with self.log.open("r+") as fh:
            fh.truncate(0)
        self.files[1], self.files[0] = self.files[0], []

    @rule()
    def truncate_without_copy(self) -> None:
        """`: > app.log`: what was not read yet is gone."""
        with self.log.open("r+") as fh:
            fh.truncate(0)
        self.maybe_lost.update(self.files[0])
        self.files[0] = []

    @precondition(lambda self: len(self.files) > 1)
    @rule()
    def delete_oldest(self) -> None:
        """The oldest rotated file is deleted (whatever was unread in it is gone)."""
        oldest = max(self.files)
        self.name(oldest).unlink()
        self.maybe_lost.update(self.files.pop(oldest))

    @rule(seconds=st.sampled_from([0.05, 0.3, 1.0]))
    def pause(self, seconds: float) -> None:
        """Time passes: the daemon reads (or not) before the next operation."""
        time.sleep(seconds)

    @precondition(lambda self: self.daemon.running)
    @rule(kill=st.booleans(), down=st.booleans())
    def restart(self, kill: bool, down: bool) -> None:
        """SIGKILL or SIGTERM the daemon; start it again now, or after the next operations."""
        if kill:
            self.daemon.kill()
        else:
            assert self.daemon.stop() == 0, self.daemon.tail()
        if not down:
            self.daemon.start()

    @precondition(lambda self: not self.daemon.running)
    @rule()
    def start(self) -> None:
        """The daemon comes back after a while down."""
        self.daemon.start()

    def teardown(self) -> None:
        """Let the daemon catch up, stop it, audit every statement."""
        try:
            if not self.daemon.running:
                self.daemon.start()
            must = Counter({s: n for s, n in self.written.items() if s not in self.maybe_lost})
            got = settle(self.dir / "state.db", must)
            assert self.daemon.stop() == 0, self.daemon.tail()
            lost = {s: n - got[s] for s, n in must.items() if got[s] < n}
            twice = {s: got[s] - n for s, n in self.written.items() if got[s] > n}
            assert not lost and not twice, (
                f"lost {lost}, counted twice {twice}; maybe lost {sorted(self.maybe_lost)}"
                f"\n{self.daemon.tail()}"
            )
        finally:
            self.daemon.close()
            shutil.rmtree(self.dir, ignore_errors=True)


FileRotationModel.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    derandomize=not EXPLORE,
    # each step drives real processes: shrinking a failure would take many minutes in CI
    phases=list(Phase) if EXPLORE else [Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
TestFileRotationModel = FileRotationModel.TestCase
TestFileRotationModel.__doc__ = (
    "Random writes, rotations, truncations, deletions and daemon restarts: every statement "
    "in a surviving file stored exactly once, none ever twice."
)


# Sequences the model found against earlier versions, replayed on every run (hypothesis cannot
# attach explicit examples to a state machine): each fails on the code before file-identity
# cursors. Steps are (rule, arguments).
REGRESSIONS = {
    "renamed file has no cursor after its stream moved on": [
        ("write", {"count": 20}), ("pause", {"seconds": 1.0}), ("rotate_by_rename", {}),
        ("pause", {"seconds": 1.0}), ("write", {"count": 10}), ("pause", {"seconds": 1.0}),
        ("restart", {"kill": False, "down": False}), ("pause", {"seconds": 1.0}),
    ],
    "copytruncate while down": [
        ("write", {"count": 20}), ("pause", {"seconds": 1.0}),
        ("restart", {"kill": True, "down": True}), ("write", {"count": 15}),
        ("rotate_by_copytruncate", {}), ("write", {"count": 5}), ("start", {}),
        ("pause", {"seconds": 1.0}),
    ],
}


@pytest.mark.parametrize("steps", list(REGRESSIONS.values()), ids=list(REGRESSIONS))
def test_model_regressions(steps: list[tuple[str, dict[str, object]]]) -> None:
    """Known-bad sequences through the same model and audit: nothing lost, nothing twice."""
    machine = FileRotationModel()
    try:
        for rule, arguments in steps:
            getattr(machine, rule)(**arguments)
    finally:
        machine.teardown()
