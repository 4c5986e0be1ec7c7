"""The SQLite store: round trips, limits, filters, restarts, migrations, corruption, threads."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from watcher.metrics import Metrics
from watcher.model import ErrorGroup, Fix, Frame, Sample
from watcher.store import SCHEMA_VERSION, StateStore, Store, StoreError, migrate, user_version
from watcher.store import schema as schema_module
from watcher.store.rows import dumps


def make_group(group_id: str = "g1", **overrides: object) -> ErrorGroup:
    """A fully populated group; overrides replace single fields."""
    frames = [
        Frame("lib/http.py", 10, "send", in_app=False),
        Frame("app/pay.py", 42, "charge", in_app=True),
    ]
    fields: dict[str, object] = {
        "id": group_id,
        "kind": "trace",
        "template": "ConnectionError: connect to <*> failed",
        "category": "database_error",
        "severity": "high",
        "fixable": True,
        "suggested_fix": "connection pooling",
        "exception_type": "ConnectionError",
        "top_frame": frames[1],
        "frames": frames,
        "count": 3,
        "first_seen": 1000.25,
        "last_seen": 1010.5,
        "sources": {"api": 2, "worker": 1},
        "status": "alerting",
    }
    fields.update(overrides)
    return ErrorGroup(**fields)  # type: ignore[arg-type]


def counter(metrics: Metrics, kind: str) -> float:
    """The current value of watcher_state_errors_total{kind}."""
    value = metrics.registry.get_sample_value("watcher_state_errors_total", {"kind": kind})
    return value or 0.0


@pytest.fixture
def store(make_store: Callable[..., StateStore]) -> StateStore:
    """A store on each backend of the contract (SQLite, PostgreSQL), 3 samples per group."""
    return make_store(samples_per_group=3)


# --- groups ---------------------------------------------------------------------------------


def test_group_round_trips_every_stored_field(store: StateStore) -> None:
    """Every persisted ErrorGroup field comes back equal, frames with their in_app flag."""
    group = make_group()
    store.upsert_groups([group])
    assert store.get_group("g1") == group


def test_group_without_frames_round_trips(store: StateStore) -> None:
    """A template group with no trace stores top_frame None and an empty frame list."""
    group = make_group(
        kind="template", exception_type=None, top_frame=None, frames=[], fixable=False, sources={}
    )
    store.upsert_groups([group])
    assert store.get_group("g1") == group


def test_window_counts_and_trend_are_not_stored(store: StateStore) -> None:
    """The live-only fields come back at their defaults."""
    store.upsert_groups([make_group(window_counts={"1m": 4}, trend="rising")])
    loaded = store.get_group("g1")
    assert loaded is not None
    assert (loaded.window_counts, loaded.trend) == ({}, "flat")


def test_get_group_returns_none_when_missing(store: StateStore) -> None:
    """An unknown id is None, not an error."""
    assert store.get_group("nope") is None


def test_get_groups_reads_many_groups_as_get_group_reads_each(store: StateStore) -> None:
    """One call for many ids (more than one query's chunk): every stored one comes back as
    get_group returns it, samples included; unknown ids are left out, repeats read once."""
    groups = [make_group(f"g{i}", count=i + 1) for i in range(600)]
    store.upsert_groups(groups)
    store.add_samples("g7", [Sample(1000.0, "api", "boom", 7), Sample(1001.0, "api", "bam", 8)])
    wanted = [f"g{i}" for i in range(0, 600, 2)] + ["nope", "g7", "g7"]
    found = store.get_groups(wanted)
    assert sorted(found) == sorted({f"g{i}" for i in range(0, 600, 2)} | {"g7"})
    assert all(found[gid] == store.get_group(gid) for gid in found)
    assert [s.text for s in found["g7"].samples] == ["bam", "boom"]
    assert store.get_groups([]) == {}


def test_get_groups_on_postgresql_carries_the_fleets_counts_and_buckets(pg_url: str) -> None:
    """On a shared store the groups read in one call are those get_group reads: the count the
    store holds (settled: nothing of it to add again) and this watcher's own window buckets,
    the other watchers' summed apart."""
    from watcher.store import open_store

    a, b = open_store(pg_url, instance="a"), open_store(pg_url, instance="b")
    try:
        mine = make_group(count=4, buckets={"60": {"100": 4}})
        theirs = make_group(count=3, buckets={"60": {"100": 3}})
        a.commit([mine, make_group("g2", count=2)])
        b.commit([theirs])
        found = a.get_groups(["g1", "g2"])
        assert found == {"g1": a.get_group("g1"), "g2": a.get_group("g2")}
        assert (found["g1"].count, found["g1"].flushed) == (7, 7)
        assert found["g1"].buckets == {"60": {"100": 4}}
        assert found["g1"].peer_buckets == {"60": {"100": 3}}
    finally:
        a.close()
        b.close()


def test_upsert_overwrites_count_and_last_seen_and_keeps_samples(store: StateStore) -> None:
    """A second upsert of the group counted on updates the row in place; the group's samples
    survive it."""
    group = make_group()
    store.upsert_groups([group])
    store.add_samples("g1", [Sample(1000.0, "api", "boom", 7)])
    group.count, group.last_seen, group.sources = 9, 2000.0, {"api": 9}
    store.upsert_groups([group])
    loaded = store.get_group("g1")
    assert loaded is not None
    assert (loaded.count, loaded.last_seen, loaded.sources) == (9, 2000.0, {"api": 9})
    assert loaded.samples == [Sample(1000.0, "api", "boom", 7)]
    assert store.count_groups() == 1


def test_upsert_is_one_transaction(store: StateStore) -> None:
    """A group that cannot be stored leaves none of its batch behind."""
    bad = make_group("bad", sources={"api": object()})
    with pytest.raises(TypeError):
        store.upsert_groups([make_group("ok"), bad])
    assert store.count_groups() == 0


def test_samples_are_capped_and_newest_first(store: StateStore) -> None:
    """Only the newest samples_per_group samples are kept, returned newest first."""
    store.upsert_groups([make_group()])
    store.add_samples("g1", [Sample(float(t), "api", f"line {t}") for t in (5, 1, 3)])
    store.add_samples("g1", [Sample(4.0, "api", "line 4"), Sample(2.0, "api", "line 2")])
    loaded = store.get_group("g1")
    assert loaded is not None
    assert [s.timestamp for s in loaded.samples] == [5.0, 4.0, 3.0]


def test_samples_are_capped_per_group(store: StateStore) -> None:
    """Capping one group's samples leaves another's alone."""
    store.upsert_groups([make_group("a"), make_group("b")])
    store.add_samples("a", [Sample(float(t), "api", "a") for t in range(5)])
    store.add_samples("b", [Sample(1.0, "api", "b")])
    b = store.get_group("b")
    assert b is not None
    assert len(b.samples) == 1


def test_one_commit_caps_the_samples_of_many_groups(store: StateStore) -> None:
    """A commit writes every group's samples at once and trims only groups over the cap, to
    their newest: over more groups than one look-up of the counts takes (1,200 > 500)."""
    ids = [f"g{i}" for i in range(1200)]
    store.commit([make_group(gid) for gid in ids], {gid: [Sample(1.0, "api", gid)] for gid in ids})
    full = {"g0": [Sample(float(t), "api", "x") for t in (2, 3)], "g1199": []}
    store.commit([], full)
    store.commit([], {"g0": [Sample(0.5, "api", "old"), Sample(9.0, "api", "new")],
                      "g1199": [Sample(float(t), "api", "y") for t in (7, 5, 6, 8)]})  # fmt: skip
    got = {gid: store.get_group(gid) for gid in ("g0", "g600", "g1199")}
    assert [s.timestamp for s in got["g0"].samples] == [9.0, 3.0, 2.0]  # type: ignore[union-attr]
    assert [s.text for s in got["g600"].samples] == ["g600"]  # type: ignore[union-attr]
    assert [s.timestamp for s in got["g1199"].samples] == [8.0, 7.0, 6.0]  # type: ignore[union-attr]


def test_samples_for_unknown_group_raise_and_count_a_write_error(
    make_store: Callable[..., StateStore],
) -> None:
    """Samples must follow their group's upsert; the failure is counted, not swallowed."""
    metrics = Metrics()
    s = make_store(metrics=metrics)
    with pytest.raises(s.errors):
        s.add_samples("ghost", [Sample(1.0, "api", "x")])
    assert counter(metrics, "write") == 1


def _seed_for_listing(store: StateStore) -> None:
    store.upsert_groups(
        [
            make_group("a", count=5, last_seen=100.0, severity="low", category="cache_error"),
            make_group("b", count=50, last_seen=50.0, severity="critical", fixable=False),
            make_group("c", count=10, last_seen=300.0, severity="medium"),
            make_group("d", count=1, last_seen=200.0, severity="info"),
        ]
    )


@pytest.mark.parametrize(
    ("order", "expected"),
    [("count", ["b", "c", "a", "d"]), ("last_seen", ["c", "d", "a", "b"])],
)
def test_list_groups_orders(store: StateStore, order: str, expected: list[str]) -> None:
    """Both orders are descending."""
    _seed_for_listing(store)
    assert [g.id for g in store.list_groups(order=order)] == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"since": 100.0}, ["c", "a", "d"]),
        ({"min_severity": "medium"}, ["b", "c"]),
        ({"min_severity": "info"}, ["b", "c", "a", "d"]),
        ({"category": "cache_error"}, ["a"]),
        ({"fixable": False}, ["b"]),
        ({"fixable": True, "min_severity": "low", "since": 150.0}, ["c"]),
        ({"limit": 2}, ["b", "c"]),
    ],
)
def test_list_groups_filters(
    store: StateStore, filters: dict[str, object], expected: list[str]
) -> None:
    """Each filter narrows the result, and filters combine with AND."""
    _seed_for_listing(store)
    assert [g.id for g in store.list_groups(**filters)] == expected  # type: ignore[arg-type]


def test_list_groups_includes_samples(store: StateStore) -> None:
    """Listed groups carry their own samples, newest first."""
    _seed_for_listing(store)
    store.add_samples("c", [Sample(1.0, "api", "old"), Sample(2.0, "api", "new")])
    by_id = {g.id: g for g in store.list_groups()}
    assert [s.text for s in by_id["c"].samples] == ["new", "old"]
    assert by_id["a"].samples == []


@pytest.mark.parametrize("bad", [{"order": "name"}, {"min_severity": "fatal"}])
def test_list_groups_rejects_unknown_order_and_severity(
    store: StateStore, bad: dict[str, str]
) -> None:
    """A typo in an order or severity is an error, not an empty list."""
    with pytest.raises(ValueError):
        store.list_groups(**bad)  # type: ignore[arg-type]


def test_set_group_status(store: StateStore) -> None:
    """Status changes persist; an unknown group is a KeyError."""
    store.upsert_groups([make_group()])
    store.set_group_status("g1", "ignored")
    loaded = store.get_group("g1")
    assert loaded is not None
    assert loaded.status == "ignored"
    with pytest.raises(KeyError):
        store.set_group_status("ghost", "fixed")


# --- checkpoints, state, counters -----------------------------------------------------------


def test_checkpoints_merge_per_stream(store: StateStore) -> None:
    """Setting some streams replaces those cursors and keeps the others."""
    assert store.get_checkpoint("loki") == {}
    store.set_checkpoints("loki", {"s1": {"ns": 1, "seen": ["h1"]}, "s2": 5})
    store.set_checkpoints("loki", {"s2": 6, "s3": None})
    store.set_checkpoints("file", {"s1": [1, 2]})
    assert store.get_checkpoint("loki") == {"s1": {"ns": 1, "seen": ["h1"]}, "s2": 6, "s3": None}
    assert store.get_checkpoint("file") == {"s1": [1, 2]}


def test_state_round_trips_json(store: StateStore) -> None:
    """Opaque state comes back as the same JSON value, replaced on the next set."""
    assert store.get_state("template_miner") is None
    store.set_state("template_miner", {"version": 1, "clusters": [[1, "a <*>"]]})
    store.set_state("template_miner", {"version": 2, "clusters": []})
    assert store.get_state("template_miner") == {"version": 2, "clusters": []}


def test_state_rejects_non_json_and_keeps_old_value(store: StateStore) -> None:
    """A value JSON cannot encode raises and leaves the stored value alone."""
    store.set_state("k", [1])
    with pytest.raises(TypeError):
        store.set_state("k", {1, 2})
    assert store.get_state("k") == [1]


def test_counters_accumulate(store: StateStore) -> None:
    """add_counters adds to existing totals and creates new names."""
    store.add_counters({"lines": 10, "events": 2})
    store.add_counters({"lines": 5, "errors": 1})
    assert store.get_counters() == {"lines": 15, "events": 2, "errors": 1}


def test_restart_keeps_groups_counts_and_checkpoints(make_store: Callable[..., StateStore]) -> None:
    """Everything written before close is there after reopening the store."""
    with make_store() as first:
        first.upsert_groups([make_group()])
        first.add_samples("g1", [Sample(1.0, "api", "boom")])
        first.set_checkpoints("api", {"": {"ts": 12.5}})
        first.add_counters({"lines": 7})
        first.save_fix(Fix("f1", "g1", "pending", 1.0))
    with make_store() as second:
        loaded = second.get_group("g1")
        assert loaded == make_group(samples=[Sample(1.0, "api", "boom")])
        assert second.get_checkpoint("api") == {"": {"ts": 12.5}}
        assert second.get_counters() == {"lines": 7}
        assert second.get_fix("f1") is not None


def test_file_store_uses_wal(tmp_path: Path) -> None:
    """A file-backed store runs in WAL mode with foreign keys on."""
    with Store(tmp_path / "state.db") as s:
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_missing_parent_directory_is_created(tmp_path: Path) -> None:
    """A state path under a directory that does not exist yet still opens."""
    with Store(tmp_path / "var" / "lib" / "state.db") as s:
        assert s.count_groups() == 0


# --- fixes ----------------------------------------------------------------------------------


def test_fix_round_trips_and_upserts(store: StateStore) -> None:
    """A fix comes back equal; saving the same id again overwrites it."""
    fix = Fix(
        "f1",
        "g1",
        "patched",
        1000.0,
        root_cause="pool too small",
        confidence=0.75,
        diff="--- a\n+++ b\n",
        branch="auto-fix/database_error/g1",
        pr_url="",
        error="",
        details={"tokens": {"in": 10, "out": 5}},
    )
    store.save_fix(fix)
    assert store.get_fix("f1") == fix
    fix.status, fix.pr_url = "pr_open", "https://example.invalid/pr/1"
    store.save_fix(fix)
    assert store.get_fix("f1") == fix
    assert store.get_fix("nope") is None


def test_list_fixes_filters_newest_first(store: StateStore) -> None:
    """list_fixes filters by group and status and orders by creation time, newest first."""
    for fix_id, group, status, created in [
        ("f1", "g1", "failed", 1.0),
        ("f2", "g1", "pr_open", 3.0),
        ("f3", "g2", "pr_open", 2.0),
    ]:
        store.save_fix(Fix(fix_id, group, status, created))
    assert [f.id for f in store.list_fixes()] == ["f2", "f3", "f1"]
    assert [f.id for f in store.list_fixes(group_id="g1")] == ["f2", "f1"]
    assert [f.id for f in store.list_fixes(status="pr_open", limit=1)] == ["f2"]


def test_fixes_since_counts_from_the_boundary(store: StateStore) -> None:
    """fixes_since counts fixes created at or after the given time."""
    for n, created in enumerate([100.0, 200.0, 300.0]):
        store.save_fix(Fix(f"f{n}", "g", "dry_run", created))
    assert store.fixes_since(200.0) == 2
    assert store.fixes_since(301.0) == 0


# --- migrations -----------------------------------------------------------------------------


def test_empty_file_is_flagged_and_replaced(tmp_path: Path) -> None:
    """An existing zero-byte state file lost its state: it is flagged (logged, counted as
    "empty", reported in `recovered`), set aside, and a current-schema store opens."""
    path = tmp_path / "state.db"
    path.touch()
    metrics = Metrics()
    with Store(path, metrics=metrics) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.count_groups() == 0
        assert s.recovered is not None and "empty" in s.recovered
    assert counter(metrics, "empty") == 1
    assert len(list(tmp_path.glob("state.db.corrupt-*[0-9Z]"))) == 1


def test_an_empty_file_beside_its_wal_is_not_flagged(tmp_path: Path) -> None:
    """Before its first checkpoint a WAL database is an empty file beside a WAL that holds
    everything: that is a sound database, opened as it is."""
    path = tmp_path / "state.db"
    with Store(path) as s:
        s.upsert_groups([make_group("kept")])
        wal = (tmp_path / "state.db-wal").read_bytes()
    path.write_bytes(b"")
    (tmp_path / "state.db-wal").write_bytes(wal)
    with Store(path) as s:
        assert s.recovered is None


def _counting_v2(calls: list[int]) -> Callable[[sqlite3.Connection], None]:
    def migrate_next(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE groups ADD COLUMN acked_by TEXT")

    return migrate_next


def test_next_migration_runs_once_on_an_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new step runs on an existing v1 file, once; reopening does not re-run it."""
    path = tmp_path / "state.db"
    with Store(path) as s:
        s.upsert_groups([make_group()])
    calls: list[int] = []
    staged = (*schema_module.MIGRATIONS, _counting_v2(calls))
    # migrate() reads MIGRATIONS from its own module; watcher.store's re-export is a copy
    monkeypatch.setattr(schema_module, "MIGRATIONS", staged)
    for _ in range(2):
        with Store(path) as s:
            assert s.schema_version == len(staged)
            assert s.get_group("g1") == make_group()
    assert calls == [1]


def test_migrate_is_idempotent_on_a_raw_connection() -> None:
    """migrate() on an up-to-date database does nothing and reports the version."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert migrate(conn) == SCHEMA_VERSION
    assert migrate(conn) == SCHEMA_VERSION
    assert user_version(conn) == SCHEMA_VERSION


def test_newer_schema_is_refused_not_discarded(tmp_path: Path) -> None:
    """A file from a newer watcher raises instead of being treated as corrupt."""
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError):
        Store(path)
    assert list(tmp_path.glob("*.corrupt-*")) == []


# --- corruption -----------------------------------------------------------------------------


def test_garbage_file_is_set_aside_and_a_fresh_store_opens(tmp_path: Path) -> None:
    """Not-a-database bytes: renamed to .corrupt-*, logged, counted, fresh store works."""
    path = tmp_path / "state.db"
    garbage = b"this is not sqlite\x00\xff" * 500
    path.write_bytes(garbage)
    (tmp_path / "state.db-wal").write_bytes(b"stale wal")
    metrics = Metrics()
    with capture_logs() as logs, Store(path, metrics=metrics) as s:
        s.upsert_groups([make_group()])
        assert s.count_groups() == 1
    (aside,) = tmp_path.glob("state.db.corrupt-*[0-9Z]")
    assert aside.read_bytes() == garbage
    assert aside.with_name(aside.name + "-wal").read_bytes() == b"stale wal"
    assert counter(metrics, "corrupt") == 1
    assert [e["log_level"] for e in logs if "corrupt" in e["event"]] == ["warning"]


def test_damaged_pages_are_detected_by_quick_check(tmp_path: Path) -> None:
    """A real database with overwritten pages fails the check on open and is set aside; the
    new file holds what could still be read from it (here: the table pages were spared)."""
    path = tmp_path / "state.db"
    with Store(path) as s:
        s.upsert_groups(make_group(f"g{n}", template="x" * 200) for n in range(500))
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 6] = b"\xa5" * (4096 * 4)  # keep page 1 (the header) intact
    path.write_bytes(bytes(data))
    metrics = Metrics()
    with Store(path, metrics=metrics) as s:
        assert s.count_groups() == s.salvaged.get("groups", 0)
        assert s.recovered is not None and "set aside" in s.recovered
    assert len(list(tmp_path.glob("state.db.corrupt-*[0-9Z]"))) == 1
    assert counter(metrics, "corrupt") == 1


# --- threads --------------------------------------------------------------------------------


def test_two_threads_can_share_a_store(make_store: Callable[..., StateStore]) -> None:
    """Interleaved writes and reads from two threads neither raise nor lose updates."""
    errors: list[BaseException] = []

    def work(s: StateStore, prefix: str) -> None:
        try:
            for n in range(100):
                s.upsert_groups([make_group(f"{prefix}{n}")])
                s.add_samples(f"{prefix}{n}", [Sample(float(n), prefix, "x")])
                s.set_checkpoints(prefix, {"stream": n})
                s.add_counters({"lines": 1})
                s.list_groups(limit=5)
        except BaseException as exc:
            errors.append(exc)

    with make_store() as s:
        threads = [threading.Thread(target=work, args=(s, p)) for p in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert s.count_groups() == 200
        assert s.get_counters() == {"lines": 200}
        assert s.get_checkpoint("a") == {"stream": 99}


def test_commit_is_one_transaction(make_store: Callable[..., StateStore]) -> None:
    """commit() stores groups, samples, cursors and state together, or nothing at all."""
    store = make_store()
    group = make_group("g1")
    store.commit([group], {"g1": [Sample(1.0, "app", "boom", 3)]}, {"app": {"s": 7}}, {"k": [1]})
    assert store.get_group("g1") is not None
    assert store.get_checkpoint("app") == {"s": 7} and store.get_state("k") == [1]
    # a sample for an unknown group fails the whole commit: the cursor must not move
    with pytest.raises(store.errors):
        store.commit([], {"nope": [Sample(2.0, "app", "x", 1)]}, {"app": {"s": 99}})
    assert store.get_checkpoint("app") == {"s": 7}
    store.close()


def test_watchers_sharing_a_postgresql_store_add_their_counts(pg_url: str) -> None:
    """Two stores (two watchers) on one PostgreSQL database counting the same group: its row
    holds the sum of what each counted, re-commits add only what is new, the seen times widen,
    and each watcher's checkpoints and state are its own."""
    from watcher.store import open_store

    a, b = open_store(pg_url, instance="a"), open_store(pg_url, instance="b")
    try:
        mine = make_group(count=4, first_seen=100.0, last_seen=200.0)
        theirs = make_group(count=3, first_seen=50.0, last_seen=150.0)
        a.commit([mine], cursors={"app": {"f": 4}})
        b.commit([theirs], cursors={"app": {"f": 3}})
        mine.count += 2
        a.commit([mine])
        a.commit([mine])  # nothing new: nothing added
        stored = b.get_group("g1")
        assert stored is not None
        assert (stored.count, stored.first_seen, stored.last_seen) == (9, 50.0, 200.0)
        assert a.get_checkpoint("app") == {"f": 4} and b.get_checkpoint("app") == {"f": 3}
        a.set_state("miner", [1])
        assert b.get_state("miner") is None
    finally:
        a.close()
        b.close()


def test_a_commit_whose_answer_was_lost_is_not_added_twice(pg_url: str) -> None:
    """A commit the PostgreSQL server made but whose answer the watcher lost (the connection
    cut at COMMIT) is looked up before the engine's retry: the count is added once, not twice
    (counts are deltas on a shared store, so a blind retry would double them)."""
    import contextlib

    import psycopg

    from watcher.store import open_store

    store = open_store(pg_url, instance="a")
    try:
        group = make_group(count=4)
        store.commit([group], cursors={"app": {"f": 4}})
        group.count = 10
        real = store._transaction  # type: ignore[attr-defined]

        @contextlib.contextmanager
        def answer_lost() -> Iterator[None]:
            with real():
                yield
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        store._transaction = answer_lost  # type: ignore[attr-defined]
        with pytest.raises(psycopg.OperationalError):
            store.commit([group], cursors={"app": {"f": 10}})
        del store._transaction  # type: ignore[attr-defined]
        store.commit([group], cursors={"app": {"f": 10}})  # the retry of the held state
        stored = store.get_group("g1")
        assert stored is not None and stored.count == 10
        assert store.get_checkpoint("app") == {"f": 10}
    finally:
        store.close()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(_JSON | st.sampled_from([{}, [], (), 0, "", False, None]))
def test_the_shared_encoder_writes_what_json_dumps_writes(value: object) -> None:
    """The TEXT columns' encoder made once writes the text json.dumps made per call."""
    assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
