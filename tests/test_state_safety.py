"""The state file under abuse: a second daemon, an empty or damaged file, damage while running,
and a store that fails for long while unique errors keep coming."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env
from tests.test_store_faults import Running, until, with_store_connection, write_config
from tests.watcher_proc import WatcherProcess, file_config
from watcher.model import ErrorGroup
from watcher.store import Store


def test_a_second_daemon_on_the_same_state_refuses_to_start(tmp_path: Path) -> None:
    """While one `watcher run` holds a state file, a second one on the same file exits 2 with
    a line naming the holder, instead of reading the same sources and counting them twice."""
    log = tmp_path / "app.log"
    log.write_text("")
    cfg = file_config(tmp_path, log)
    first = WatcherProcess(cfg, tmp_path / "first.log")
    first.start()
    try:
        first.wait_started()
        second = subprocess.run(
            [sys.executable, "-m", "watcher", "run", "-c", str(cfg)],
            capture_output=True, env=clean_env(), timeout=30,
        )
        assert second.returncode == 2
        assert b"in use by another watcher" in second.stderr
        assert first.running
    finally:
        assert first.stop() == 0
    again = WatcherProcess(cfg, tmp_path / "again.log")
    again.start()  # the lock went with the first daemon
    try:
        again.wait_started()
    finally:
        assert again.stop() == 0


def test_a_damaged_state_file_keeps_its_checkpoints(tmp_path: Path) -> None:
    """A state file whose group pages are overwritten is set aside at open; the new file holds
    what could be read from it, checkpoints first."""
    path = tmp_path / "state.db"
    cursors = {f"file:1:{n}": {"inode": n, "dev": 1, "offset": n * 10} for n in range(200)}
    with Store(path) as s:
        s.commit(cursors={"app": cursors})
        s.upsert_groups(_group(f"g{n}") for n in range(400))
        with s._lock:
            s._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    data[-4096 * 6 :] = b"\xa5" * (4096 * 6)  # the last pages: group rows, written last
    path.write_bytes(bytes(data))
    with Store(path) as s:
        assert s.recovered is not None
        assert s.get_checkpoint("app") == cursors
        assert s.salvaged["checkpoints"] == 200


def _group(gid: str) -> ErrorGroup:
    return ErrorGroup(
        id=gid, kind="template", template="x" * 300, category="internal_error",
        severity="high", fixable=False, suggested_fix="", count=1, first_seen=1.0, last_seen=1.0,
    )


async def test_damage_while_running_is_reported_on_health(tmp_path: Path) -> None:
    """The periodic quick_check finds pages damaged under a running daemon: /health/ready
    says "damaged" with the problem (still 200: lines are counted), counted as corrupt."""
    db = tmp_path / "state.db"
    cfg = write_config(tmp_path, db, tmp_path / "app.log")
    cfg.write_text(cfg.read_text().replace("interval = 1\n", "interval = 1\n"
                                           "integrity_check_interval = 0.3\n"))
    (tmp_path / "app.log").write_text("")
    run = await Running.start(cfg)
    try:
        with run.daemon.store._lock:  # type: ignore[union-attr]
            run.daemon.store._conn.executemany(  # type: ignore[union-attr]
                "INSERT INTO state (key, value, updated) VALUES (?, ?, 0)",
                [(f"k{n}", "v" * 500) for n in range(200)],
            )
            run.daemon.store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        data = bytearray(db.read_bytes())
        data[4096 * 3 : 4096 * 7] = b"\xa5" * (4096 * 4)
        db.write_bytes(bytes(data))

        async def damaged() -> bool:
            status, body = await run.ready()
            return status == 200 and body["store"]["status"] == "damaged"

        await until(damaged, timeout=10)
        assert run.sample("watcher_state_errors_total", kind="corrupt") == 1
    finally:
        run.daemon.shutdown.set()
        await asyncio.wait_for(run.task, 15)


async def test_a_failing_store_holds_at_most_max_unsaved_groups(tmp_path: Path) -> None:
    """While every commit fails, 600 unique errors do not pile up in memory: at most
    max_unsaved_groups group states and as many new-fingerprint rows are held, the rest are
    dropped and counted."""
    db = tmp_path / "state.db"
    log = tmp_path / "app.log"
    log.write_text("")
    run = await Running.start(write_config(tmp_path, db, log))
    try:
        engine = run.daemon.engine
        assert engine is not None
        engine.options.max_unsaved_groups = 100
        with_store_connection(run.daemon, "PRAGMA query_only = ON")
        rng = random.Random(13)
        words = lambda: " ".join(  # noqa: E731 (all-different words: one group per line)
            "".join(rng.choice("ghjkmnpqrstvwxyz") for _ in range(8)) for _ in range(5)
        )
        with log.open("a") as fh:
            fh.write("".join(f"ERROR {words()}\n" for _ in range(600)))
        await until(lambda: run.sample("watcher_events_total", source="app") == 600)
        await until(lambda: (run.sample("watcher_state_unsaved_dropped_total") or 0) >= 400,
                    timeout=15)
        await until(lambda: (run.sample("watcher_state_unsaved_dropped_total") or 0) >= 1000,
                    timeout=15)
        assert engine._unwritten is not None
        held = engine._unwritten.groups
        fingerprints = engine._unwritten.fingerprints
        assert len(held) <= 100 and len(fingerprints) <= 100
        dropped = (600 - len(held)) + (600 - len(fingerprints))
        assert run.sample("watcher_state_unsaved_dropped_total") == dropped
    finally:
        with_store_connection(run.daemon, "PRAGMA query_only = OFF")
        run.daemon.shutdown.set()
        await asyncio.wait_for(run.task, 15)


