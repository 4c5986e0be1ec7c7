"""A failing state store degrades `watcher run`, never stops it: disk full, read-only, corrupt.

Each fault is checked for the same promises: one clear error line, watcher_state_errors_total
{kind} counted, lines still counted and /metrics still served, /health/ready saying what is wrong
(200: the daemon still does its job; a restart would not give the disk room back), no exit, and,
once the store can be written again, every held group and checkpoint written at the next persist.

Disk full is real where the test may mount a small tmpfs (root), and otherwise SQLite's own
SQLITE_FULL through `PRAGMA max_page_count`; a store turning read-only while open is SQLite's
SQLITE_READONLY through `PRAGMA query_only` (no portable way makes an open file read-only for
root); a state directory that cannot be written at start is real: a read-only tmpfs, or a path
under a regular file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from watcher import engine as engine_module
from watcher.config import load_config
from watcher.daemon import Daemon
from watcher.store import SQLITE_MAGIC

from .helpers import clean_env, free_port, wait_for

# Three logging statements: the numbers are masked, so each kind is one group.
KINDS = {
    "pay": "ERROR payment declined by provider for order {n}",
    "db": "ERROR database connection refused on shard {n} after retry",
    "cache": "ERROR cache stampede detected on key {n}",
}
# A fourth statement, written once the store fails: a new group with a 4 KiB sample needs new
# database pages, so a commit that only updated rows in place cannot slip through the fault.
NEW_KIND = "ERROR upload rejected for request {n} with body " + "x" * 4000
PERSIST = 0.1  # seconds between persists in these tests (the daemon's default is 5)


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def quick_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle engine persists on its FLUSH_EVERY tick: tick as often as it persists here."""
    monkeypatch.setattr(engine_module, "FLUSH_EVERY", PERSIST / 2)


class Writer:
    """Appends error lines of the three kinds to a log file and remembers what it wrote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        path.write_text("")

    def write(self, count: int, *, new_kind: bool = False) -> None:
        """Append `count` error lines, kinds in turn (NEW_KIND among them when asked)."""
        kinds = [*KINDS.values(), *([NEW_KIND] if new_kind else [])]
        with self.path.open("a") as fh:
            for i in range(count):
                fh.write(kinds[i % len(kinds)].format(n=self.written) + "\n")
                self.written += 1


def write_config(tmp_path: Path, state: Path | str, log: Path, port: int = 0) -> Path:
    """A daemon config: one fast-polling file source, HTTP on loopback, state at `state` (a
    SQLite path, or a PostgreSQL URL)."""
    cfg = tmp_path / "watcher.toml"
    key = "state" if isinstance(state, str) and "://" in state else "state_path"
    cfg.write_text(
        f'[watcher]\n{key} = "{state}"\ninterval = 1\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        "[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{log}"\npoll_interval = 0.02\n'
    )
    return cfg


def stored(db: Path | str) -> tuple[int, int]:
    """(SUM(count) over stored groups, committed offset of the app source); 0s before any."""
    if isinstance(db, str):
        return stored_in_postgresql(db)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        total = con.execute("SELECT COALESCE(SUM(count), 0) FROM groups").fetchone()[0]
        row = con.execute(
            "SELECT cursor FROM checkpoints WHERE source = 'app' AND stream LIKE 'file:%'"
        ).fetchone()
    except sqlite3.OperationalError:
        return 0, 0
    finally:
        con.close()
    return total, json.loads(row[0])["offset"] if row else 0


def stored_in_postgresql(url: str) -> tuple[int, int]:
    """`stored` of a PostgreSQL state, read on a connection of its own."""
    import psycopg

    with psycopg.connect(url) as con:
        try:
            total = con.execute("SELECT COALESCE(SUM(count), 0) FROM groups").fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return 0, 0
        row = con.execute(
            # each watcher's checkpoints are its own: "<instance>/app"
            "SELECT cursor FROM checkpoints WHERE source LIKE '%%/app' AND stream LIKE 'file:%%'"
        ).fetchone()
    return int(total), json.loads(row[0])["offset"] if row else 0


async def get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of a GET on the daemon."""
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.text()


async def until(cond: Callable[[], Awaitable[object] | object], timeout: float = 10.0) -> None:
    """Poll `cond` (sync or async) until truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met before the deadline")


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in an exposition (0 when absent)."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Running:
    """An in-process `watcher run` with a short persist interval, and its probes."""

    def __init__(self, daemon: Daemon, task: asyncio.Task[int]) -> None:
        self.daemon = daemon
        self.task = task
        assert daemon.http_port
        self.port = daemon.http_port

    @classmethod
    async def start(cls, cfg: Path) -> Running:
        daemon = Daemon(load_config(cfg))
        task = asyncio.create_task(daemon.run())
        await asyncio.wait_for(daemon.started.wait(), 10)
        assert daemon.engine is not None
        daemon.engine.options.persist_interval = PERSIST
        running = cls(daemon, task)
        await until(lambda: running.sample("watcher_source_up", source="app") == 1)
        return running

    def sample(self, name: str, **labels: str) -> float | None:
        return self.daemon.metrics.registry.get_sample_value(name, labels)

    async def metrics(self) -> str:
        status, body = await get(self.port, "/metrics")
        assert status == 200
        return body

    async def ready(self) -> tuple[int, dict[str, Any]]:
        status, body = await get(self.port, "/health/ready")
        return status, json.loads(body)

    async def stop(self) -> int:
        self.daemon.shutdown.set()
        return await asyncio.wait_for(self.task, 15)


def store_errors(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The captured error records about the state store."""
    return [r for r in logs if r["log_level"] == "error" and "State" in r["event"]]


async def degraded_then_recovered(
    tmp_path: Path,
    break_store: Callable[[Daemon], None],
    mend_store: Callable[[Daemon], None],
    kind: str,
    state: Path | str | None = None,
    max_groups: int = 100,
) -> None:
    """The shared scenario: count, break the store, keep counting, mend it, catch up."""
    db = state or tmp_path / "state.db"
    writer = Writer(tmp_path / "app.log")
    with capture_logs() as logs:
        run = await Running.start(write_config(tmp_path, db, writer.path))
        # below what the config allows (10), so four kinds are enough to evict each other
        run.daemon.engine.pipeline.table.max_groups = max_groups  # type: ignore[union-attr]
        writer.write(30)
        await until(lambda: stored(db)[0] == 30)
        before = stored(db)
        break_store(run.daemon)
        failures = lambda: run.sample("watcher_state_errors_total", kind=kind) or 0  # noqa: E731
        writer.write(15, new_kind=True)
        await until(lambda: failures() >= 1)
        # these come after a failed commit: groups held by it are updated (or recalled) now
        writer.write(15, new_kind=True)
        # several persists fail: lines are still counted and served, the store is not touched
        await until(lambda: failures() >= 3)
        text = await run.metrics()
        assert metric(text, "watcher_lines_total", 'source="app"') == 60
        assert metric(text, "watcher_state_errors_total", f'kind="{kind}"') >= 3
        status, body = await run.ready()
        assert status == 200 and body["store"]["status"] == "degraded", body
        assert stored(db) == before
        assert not run.task.done()
        assert len(store_errors(logs)) == 1  # one line per state change, not per retry
        mend_store(run.daemon)
        await until(lambda: stored(db) == (60, writer.path.stat().st_size))
        assert (await run.ready())[1]["store"] == {"status": "ok"}
        assert await run.stop() == 0
    assert any(r["event"].startswith("State store writable again") for r in logs)
    assert stored(db) == (60, writer.path.stat().st_size)
    assert per_group(db) == [6, 18, 18, 18]  # 30 lines of 3 kinds, then 2 x 15 of 4


def per_group(db: Path | str) -> list[int]:
    """The stored groups' counts, sorted."""
    if isinstance(db, str):
        import psycopg

        with psycopg.connect(db) as pg:
            return sorted(int(c) for (c,) in pg.execute("SELECT count FROM groups"))
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(count for (count,) in con.execute("SELECT count FROM groups"))
    finally:
        con.close()


def with_store_connection(daemon: Daemon, statement: str) -> None:
    """Run one PRAGMA on the daemon's own store connection (under the store's lock)."""
    store = daemon.store
    assert store is not None
    with store._lock:
        store._conn.execute(statement)


# --- disk full -----------------------------------------------------------------------------------


def mount_tmpfs(mount: Path) -> bool:
    """Mount a 4 MiB tmpfs on `mount`; False where that is not allowed (not root)."""
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path | None]:
    """A 4 MiB tmpfs in tmp_path, or None where the test may not mount one."""
    mount = tmp_path / "small"
    if not mount_tmpfs(mount):
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def tmpfs(small_fs: Path | None) -> Path:
    """A 4 MiB tmpfs (skipped where the test may not mount one)."""
    if small_fs is None:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    return small_fs


def fill_up(directory: Path) -> Path:
    """Write a file into `directory` until the filesystem has no space left; its path."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as fh:
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
        with contextlib.suppress(OSError):
            while True:  # the last few blocks
                fh.write(b"\0" * 512)
    return filler


async def test_disk_full_degrades_then_catches_up(tmp_path: Path, small_fs: Path | None) -> None:
    """Disk full on every commit (ENOSPC on a full tmpfs where the test may mount one, else
    SQLITE_FULL from a page cap): counting goes on, one error line, and the held state is
    written once there is room again."""
    if small_fs is not None:
        filler = small_fs / "filler"
        await degraded_then_recovered(
            tmp_path,
            lambda _d: fill_up(small_fs),
            lambda _d: filler.unlink(),
            "disk_full",
            state=small_fs / "state.db",
        )
        return

    def cap_pages(daemon: Daemon) -> None:
        assert daemon.store is not None
        with daemon.store._lock:
            pages = daemon.store._conn.execute("PRAGMA page_count").fetchone()[0]
            daemon.store._conn.execute(f"PRAGMA max_page_count = {pages}")

    await degraded_then_recovered(
        tmp_path,
        cap_pages,
        lambda d: with_store_connection(d, "PRAGMA max_page_count = 1073741823"),
        "disk_full",
    )


# --- read-only -----------------------------------------------------------------------------------


async def test_store_turning_read_only_degrades_then_catches_up(tmp_path: Path) -> None:
    """SQLITE_READONLY on every commit: the same degraded run, counted as read_only. With room
    for 2 groups in memory, 4 kinds evict and recall each other meanwhile: the held copies
    (newer than the store's) are what comes back, so no count regresses."""
    await degraded_then_recovered(
        tmp_path,
        lambda d: with_store_connection(d, "PRAGMA query_only = ON"),
        lambda d: with_store_connection(d, "PRAGMA query_only = OFF"),
        "read_only",
        max_groups=2,
    )


# --- PostgreSQL: the connection cut, writes refused --------------------------------------------


def _on_server(url: str, read_only: bool) -> None:
    """Refuse (or allow) writes in the daemon's database and cut its connections: a server
    restart or a network cut as the daemon sees it, then a store that cannot write."""
    import psycopg

    name = url.split("?")[0].rsplit("/", 1)[1]
    # from the maintenance database: a read-only default would refuse the ALTER itself
    with psycopg.connect(url.replace(f"/{name}?", "/postgres?"), autocommit=True) as admin:
        flag = "on" if read_only else "off"
        admin.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = {flag}")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


async def test_a_postgresql_store_cut_off_degrades_then_catches_up(
    tmp_path: Path, pg_url: str
) -> None:
    """The daemon's PostgreSQL connection is cut and its new ones may not write: counting goes
    on, one error line, watcher_state_errors_total{kind="write"}; once writes are allowed the
    held groups and cursors are written through a fresh connection, nothing counted twice."""
    await degraded_then_recovered(
        tmp_path,
        lambda _d: _on_server(pg_url, read_only=True),
        lambda _d: _on_server(pg_url, read_only=False),
        "write",
        state=pg_url,
    )


async def unwritable_state_at_start(tmp_path: Path, state: Path) -> None:
    """A state path that cannot be opened: in-memory state, said in ready and the metric."""
    writer = Writer(tmp_path / "app.log")
    with capture_logs() as logs:
        run = await Running.start(write_config(tmp_path, state, writer.path))
        writer.write(9)
        await until(lambda: run.sample("watcher_events_total", source="app") == 9)
        text = await run.metrics()
        assert metric(text, "watcher_lines_total", 'source="app"') == 9
        assert metric(text, "watcher_state_errors_total", 'kind="open"') == 1
        status, body = await run.ready()
        assert status == 200 and body["store"]["status"] == "memory", body
        await asyncio.sleep(3 * PERSIST)  # persists run against the in-memory store
        assert not run.task.done()
        assert await run.stop() == 0
    (error,) = store_errors(logs)
    assert error["event"].startswith("State file cannot be opened")
    assert error["path"] == str(state)


async def test_state_under_a_regular_file_runs_in_memory(tmp_path: Path) -> None:
    """A state directory that cannot be created: the daemon runs on in-memory state."""
    (tmp_path / "not-a-dir").write_text("")
    await unwritable_state_at_start(tmp_path, tmp_path / "not-a-dir" / "state.db")


async def test_read_only_state_directory_runs_in_memory(tmp_path: Path, tmpfs: Path) -> None:
    """A state directory on a read-only filesystem (EROFS, for root too): in-memory state."""
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    await unwritable_state_at_start(tmp_path, tmpfs / "state.db")
    assert not (tmpfs / "state.db").exists()


# --- corrupt file at start, end to end -----------------------------------------------------------


def test_corrupt_state_file_is_set_aside_and_the_daemon_runs(tmp_path: Path) -> None:
    """`watcher run` on a corrupt state file: set aside, logged, counted, a fresh one used;
    a restart then opens the fresh file without setting anything aside again."""
    db = tmp_path / "state.db"
    garbage = b"this is not a database\n" * 200
    db.write_bytes(garbage)
    writer = Writer(tmp_path / "app.log")
    port = free_port()
    cfg = write_config(tmp_path, db, writer.path, port)
    env = clean_env()
    stderr = tmp_path / "daemon.log"

    def start() -> subprocess.Popen[bytes]:
        with stderr.open("ab") as out:  # a file: a full pipe would stall the daemon
            return subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "-c", str(cfg)],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env=env,
            )

    def lines_counted() -> float:
        return metric(asyncio.run(get(port, "/metrics"))[1], "watcher_lines_total", 'source="app"')

    proc = start()
    try:
        wait_for(lambda: _source_up(port), timeout=15)
        writer.write(12)
        wait_for(lambda: lines_counted() == 12, timeout=15)
        text = asyncio.run(get(port, "/metrics"))[1]
        assert metric(text, "watcher_state_errors_total", 'kind="corrupt"') == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert stored(db)[0] == 12  # the fresh store took the final flush
        proc = start()
        wait_for(lambda: _source_up(port), timeout=15)
        writer.write(3)
        wait_for(lambda: lines_counted() == 3, timeout=15)
        text = asyncio.run(get(port, "/metrics"))[1]
        assert metric(text, "watcher_state_errors_total", 'kind="corrupt"') == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert stored(db) == (15, writer.path.stat().st_size)
    (aside,) = tmp_path.glob("state.db.corrupt-*")
    assert aside.read_bytes() == garbage
    assert not aside.read_bytes().startswith(SQLITE_MAGIC)
    records = [json.loads(line) for line in stderr.read_text().splitlines() if line.startswith("{")]
    corrupt = [r for r in records if r["event"].startswith("State database is corrupt")]
    assert len(corrupt) == 1 and corrupt[0]["moved_to"] == str(aside)


def _source_up(port: int) -> bool:
    """The daemon on `port` answers and its file source is positioned."""
    try:
        status, text = asyncio.run(get(port, "/metrics"))
    except aiohttp.ClientError:
        return False
    return status == 200 and metric(text, "watcher_source_up", 'source="app"') == 1
