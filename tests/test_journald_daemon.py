"""`watcher run` on a journald source over a real journal file: the entry cursor goes through
the state store with the counts, and a daemon restarted after a SIGKILL resumes after it
(nothing re-counted, nothing missed)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.sources.test_journald import Journal, pytestmark  # noqa: F401  (skip without tools)
from tests.watcher_proc import WatcherProcess, committed, settle, statement_line


def test_restart_resumes_after_the_stored_cursor(tmp_path: Path) -> None:
    """4 entries, SIGKILL once they are stored, 3 more written while the daemon is down, a
    restart: the group holds exactly 7 (the cursor was stored with the counts), and the stored
    checkpoint is a journal cursor."""
    journal = Journal(tmp_path / "system.journal")
    journal.add([statement_line(1, i).encode() for i in range(4)])
    db = tmp_path / "state.db"
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{db}"\ninterval = 1\npersist_interval = 0.3\n'
        "[http]\nenabled = false\n[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "journald"\nname = "journal"\nfile = "{journal.path}"\n'
        'read_from = "beginning"\n'
    )
    daemon = WatcherProcess(cfg, tmp_path / "daemon.log")
    try:
        daemon.start()
        assert settle(db, Counter({1: 4})) == Counter({1: 4}), daemon.tail()
        daemon.kill()
        journal.add([statement_line(1, i).encode() for i in range(4, 7)])
        daemon.start()
        assert settle(db, Counter({1: 7})) == Counter({1: 7}), daemon.tail()
        assert daemon.stop() == 0
    finally:
        daemon.close()
    (cursor,) = committed(db, "journal").values()
    assert json.loads(cursor)["cursor"].startswith("s=")
