"""The file source across restarts of the real daemon: cursors follow files by identity.

Each test writes lines of numbered statements (one group each), stops or kills `watcher run`,
rotates or creates files while it is down, starts it again and compares the stored count of
every statement with the lines written: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.watcher_proc import (
    WatcherProcess,
    committed,
    file_config,
    settle,
    statement_line,
    stored,
)


def append(path: Path, statement: int, first: int, count: int) -> None:
    """Append `count` lines of `statement`, numbered from `first`."""
    with path.open("a") as fh:
        fh.write("".join(statement_line(statement, s) + "\n" for s in range(first, first + count)))


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[WatcherProcess]:
    """A `watcher run` that is never left running (its config is written by the test)."""
    proc = WatcherProcess(tmp_path / "watcher.toml", tmp_path / "daemon.log")
    yield proc
    proc.close()


def test_plain_path_renamed_while_stopped_keeps_the_unread_tail(
    tmp_path: Path, daemon: WatcherProcess
) -> None:
    """A plain path rotated by rename while the daemon is down: the old file's unread tail is
    read from its new name (found by identity), then the new file from its start."""
    log = tmp_path / "app.log"
    log.write_text("")
    file_config(tmp_path, log)
    db = tmp_path / "state.db"
    daemon.start()
    append(log, 1, 0, 100)
    assert settle(db, Counter({1: 100})) == Counter({1: 100}), daemon.tail()
    assert daemon.stop() == 0
    append(log, 2, 0, 200)  # written while down: the unread tail
    os.rename(log, tmp_path / "app.log.1")
    append(log, 3, 0, 50)
    daemon.start()
    want = Counter({1: 100, 2: 200, 3: 50})
    assert settle(db, want) == want, daemon.tail()
    assert daemon.stop() == 0


def test_glob_restarts_after_renames_count_nothing_twice(
    tmp_path: Path, daemon: WatcherProcess
) -> None:
    """A glob that matches the rotated names (app.log*): files renamed while the daemon is down
    resume from their cursors under their new names; a clean restart and a SIGKILL alike."""
    log = tmp_path / "app.log"
    log.write_text("")
    file_config(tmp_path, f"{tmp_path}/app.log*")
    db = tmp_path / "state.db"
    want: Counter[int] = Counter()
    daemon.start()
    for rotation in range(1, 4):
        append(log, rotation, 0, 300)
        want[rotation] += 300
        assert settle(db, want) == want, daemon.tail()
        append(log, rotation, 300, 100)  # unread when the daemon goes down
        want[rotation] += 100
        if rotation % 2:
            assert daemon.stop() == 0
        else:
            wait_for(lambda w=Counter(want): stored(db) == w)
            daemon.kill()
        for n in range(rotation, 0, -1):  # app.log.N -> app.log.N+1, app.log -> app.log.1
            src = tmp_path / (f"app.log.{n - 1}" if n > 1 else "app.log")
            os.rename(src, tmp_path / f"app.log.{n}")
        append(log, 10 + rotation, 0, 20)
        want[10 + rotation] += 20
        daemon.start()
    assert settle(db, want) == want, daemon.tail()
    assert daemon.stop() == 0


def test_file_created_while_stopped_is_read_from_its_beginning(
    tmp_path: Path, daemon: WatcherProcess
) -> None:
    """read_from = "end" applies to the files there at the very first start only: a file that
    appears (matching the glob) while the daemon is down is read whole after the restart."""
    old = tmp_path / "old.log"
    append(old, 1, 0, 30)  # there at the first start: skipped by read_from = "end"
    file_config(tmp_path, f"{tmp_path}/*.log", read_from="end")
    db = tmp_path / "state.db"
    daemon.start()
    probes = 0
    while not stored(db)[2]:  # until the daemon is positioned at the end and committing
        append(old, 2, probes, 1)
        probes += 1
        assert probes < 100, daemon.tail()
        time.sleep(0.2)
    assert daemon.stop() == 0
    assert "@started" in committed(db)
    probes = stored(db)[2]  # the probes written before the daemon was positioned are skipped
    append(tmp_path / "new.log", 3, 0, 500)
    daemon.start()
    want = Counter({2: probes, 3: 500})
    assert settle(db, want) == want, daemon.tail()
    assert daemon.stop() == 0
