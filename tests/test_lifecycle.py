"""Patterns have a life, and state survives: lifecycle rules, merges and fingerprint versions in
the group table, window buckets and rate history through the store, re-classification, and the
v1 -> v2 schema upgrade of an existing state file."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from watcher.classify import Rule, compile_rule
from watcher.daemon_view import RateHistory
from watcher.group import lifecycle
from watcher.group.lifecycle import LifecycleError
from watcher.group.table import FINGERPRINT_VERSION, GroupTable, trace_fingerprint
from watcher.model import Classification, ErrorGroup, Frame, LogEvent, Sample
from watcher.reclassify import reclassify_stored, rules_changed
from watcher.scan import save_groups
from watcher.store import Store
from watcher.store import schema as schema_module

T0 = 1_800_000_000.0
CLS = Classification("internal_error", "medium", False)


def event(message: str, t: float, **fields: object) -> LogEvent:
    return LogEvent(message=message, level="error", timestamp=t, source="app", fields=fields)


def trace(t: float) -> LogEvent:
    frames = [Frame("app/pay.py", 10, "charge"), Frame("app/pay.py", 20, "settle")]
    return LogEvent(
        message="boom", level="error", timestamp=t, source="app",
        exception_type="KeyError", exception_message="'card'", frames=frames,
    )  # fmt: skip


def group(gid: str = "g1", **kw: object) -> ErrorGroup:
    base = dict(id=gid, kind="template", template="t", category="internal_error",
                severity="medium", fixable=False, count=3, first_seen=T0, last_seen=T0)  # fmt: skip
    return ErrorGroup(**{**base, **kw})  # type: ignore[arg-type]


# --- the rules of a life ---------------------------------------------------------------------


def test_a_resolved_pattern_regresses_on_a_later_event_only() -> None:
    """An event after the resolution regresses the pattern (severity one step up, status
    "fixed" reopened for the fix pipeline); an older event read late (a backlog) does not."""
    g = group(status="fixed")
    entry = lifecycle.resolve(g, "cli:ann", T0 + 10)
    assert (entry.old_state, entry.new_state, entry.actor) == ("open", "resolved", "cli:ann")
    assert lifecycle.observe(g, T0 + 5) is None
    regressed = lifecycle.observe(g, T0 + 11)
    assert regressed is not None and regressed.action == "regressed"
    assert (g.state, g.severity, g.status) == ("regressed", "high", "open")


def test_an_ignore_ends_after_n_more_events_or_at_its_time() -> None:
    """ignore(more=2) holds for two more events; ignore(until=t) holds until t; forever holds."""
    g = group(count=3)
    lifecycle.ignore(g, "api", T0, more=2)
    g.count = 4
    assert lifecycle.observe(g, T0 + 1) is None
    g.count = 5
    ended = lifecycle.observe(g, T0 + 2)
    assert ended is not None and (ended.action, g.state) == ("unignored", "open")
    lifecycle.ignore(g, "api", T0, until=T0 + 60)
    assert lifecycle.observe(g, T0 + 30) is None
    assert lifecycle.observe(g, T0 + 61) is not None and g.state == "open"
    lifecycle.ignore(g, "api", T0)
    g.count = 10**6
    assert lifecycle.observe(g, T0 + 10**6) is None and g.state == "ignored"
    with pytest.raises(LifecycleError):
        lifecycle.ignore(g, "api", T0, until=T0 - 1)


def test_the_table_announces_each_change_once_and_keeps_it_for_the_store() -> None:
    """A regression made by an event goes to the subscribers and into take_records()."""
    table = GroupTable()
    seen: list[str] = []
    table.life.subscribe(lambda g, a: seen.append(a.action))
    update = table.add(event("disk full on /dev/sda1", T0), CLS)
    lifecycle.resolve(update.group, "api", T0 + 1)
    table.add(event("disk full on /dev/sda1", T0 + 2), CLS)
    table.add(event("disk full on /dev/sda1", T0 + 3), CLS)
    assert seen == ["regressed"]
    fingerprints, activity = table.take_records()
    assert [a.action for a in activity] == ["regressed"]
    assert fingerprints == [(update.group.id, update.group.id, 0)]


def test_an_ignored_pattern_does_not_alert() -> None:
    """Over the alert threshold, an ignored pattern stays quiet; an open one alerts."""
    table = GroupTable(alert_count=3)
    first = table.add(event("quota exceeded for tenant 7", T0), CLS)
    lifecycle.ignore(first.group, "api", T0)
    crossed = [table.add(event("quota exceeded for tenant 7", T0 + i), CLS) for i in range(1, 6)]
    assert not any(u.crossed_threshold for u in crossed)


# --- merges and fingerprint versions ---------------------------------------------------------


def test_a_merge_routes_later_events_of_the_merged_fingerprint_to_the_survivor() -> None:
    """After absorb(), events that made the other group count in the survivor, with windows."""
    table = GroupTable()
    a = table.add(event("payment failed for order 1", T0), CLS).group
    b = table.add(trace(T0), CLS).group
    table.absorb(a, b, [b.id])
    assert table.find(b.id) is a and a.count == 2
    table.add(trace(T0 + 1), CLS)
    assert a.count == 3 and b.id not in table.live
    assert table.snapshot(T0 + 2)[0].window_counts["1h"] == 3


def test_an_older_fingerprint_version_maps_to_its_group_instead_of_a_new_one(
    make_store: Any,
) -> None:
    """A group keyed by fingerprint v1 (before the algorithm changed) keeps the events whose v2
    fingerprint is new: the v2 fingerprint joins it (stored with its version), no new group."""
    old_id = trace_fingerprint(trace(T0), version=1)
    assert old_id != trace_fingerprint(trace(T0))
    with make_store() as store:
        store.commit([group(old_id, kind="trace", count=5)], fingerprints=[(old_id, old_id, 1)])
        table = GroupTable(recall=store.get_group)
        table.legacy.update(store.legacy_fingerprints(FINGERPRINT_VERSION))
        update = table.add(trace(T0 + 1), CLS)
        assert (update.group.id, update.group.count, update.is_new) == (old_id, 6, False)
        fingerprints, _ = table.take_records()
        store.commit(table.take_dirty()[0], fingerprints=fingerprints)
        new_id = trace_fingerprint(trace(T0))
        assert sorted(store.fingerprints(old_id)) == [(new_id, old_id, 2), (old_id, old_id, 1)]


# --- state that survives ---------------------------------------------------------------------


def test_window_buckets_and_tags_survive_the_store(make_store: Any) -> None:
    """A group's sliding-window counts and host/release breakdowns are the same after it went
    through the store and back into a new table (a restart)."""
    table = GroupTable()
    for i in range(7):
        tagged = event("timeout calling billing", T0 + i * 30, host=f"web-{i % 2}", version="v9")
        table.add(tagged, CLS)
    before = table.snapshot(T0 + 200)[0]
    counts = dict(before.window_counts)
    with make_store() as store:
        store.commit(table.take_dirty()[0])
        fresh = GroupTable()
        fresh.load(store.list_groups())
    after = fresh.snapshot(T0 + 200)[0]
    assert after.window_counts == counts and counts["5m"] == 7
    assert after.tags == {"host": {"web-0": 4, "web-1": 3}, "release": {"v9": 7}}


def test_the_rate_history_survives_a_dump_and_restore() -> None:
    """The dashboard's per-minute rate chart reads the same after a restart."""
    now = [T0]
    rates = RateHistory(clock=lambda: now[0])
    for minute in (0, 1, 1, 5):
        rates.add("database_error", T0 - 600 + minute * 60)
    series = rates.series(bucket_seconds=60, buckets=60)
    restored = RateHistory(clock=lambda: now[0])
    restored.restore(rates.dump())
    assert restored.series(bucket_seconds=60, buckets=60) == series
    assert sum(series["database_error"]) == 4


# --- re-classification -----------------------------------------------------------------------


def test_changed_rules_reclassify_stored_patterns_and_record_it(make_store: Any) -> None:
    """A rule added after a pattern was stored changes its category/severity/fixable; the
    change is in the activity list; the same rules a second time change nothing."""
    sample = Sample(T0, "app", "ERROR stripe charge failed for cus_1", 1)
    with make_store() as store:
        store.commit([group("s1", template="stripe charge failed for <*>", samples=[sample])],
                     {"s1": [sample]})  # fmt: skip
        rule = Rule(compile_rule("(?i)stripe"), category="external_service_error",
                    severity="critical", fixable=True, name="classify.rules[0]")  # fmt: skip
        assert rules_changed(store, [rule])
        changes = reclassify_stored(store, [rule], T0 + 1)
        stored = store.get_group("s1")
        assert stored is not None
        assert (stored.category, stored.severity, stored.fixable) == (
            "external_service_error", "critical", True,
        )  # fmt: skip
        [entry] = store.list_activity(group_id="s1")
        assert entry.action == "reclassified" and entry.detail["category"] == [
            "internal_error", "external_service_error",
        ]  # fmt: skip
        assert len(changes) == 1 and not rules_changed(store, [rule])
        assert reclassify_stored(store, [rule], T0 + 2) == []


def test_a_scan_keeps_a_resolved_pattern_and_regresses_it_when_seen_again(make_store: Any) -> None:
    """`scan --state` does not reopen a resolved pattern by overwriting its row; events after
    the resolution regress it (recorded); a merged fingerprint's events count in its owner."""
    with make_store() as store:
        resolved = group("r1", state="resolved", state_changed=T0 + 100)
        store.commit([resolved, group("r2")], fingerprints=[("r1", "r1", 0), ("m1", "r2", 0)])
        save_groups(store, [group("r1", last_seen=T0 + 50), group("m1", count=9)])
        assert store.get_group("r1").state == "resolved"  # type: ignore[union-attr]
        save_groups(store, [group("r1", last_seen=T0 + 200)])
        assert store.get_group("r1").state == "regressed"  # type: ignore[union-attr]
        assert [a.action for a in store.list_activity(group_id="r1")] == ["regressed"]
        assert store.get_group("m1") is None
        assert store.get_group("r2").count == 9  # type: ignore[union-attr]


def test_a_scan_reads_the_stored_patterns_it_merges_in_one_call(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Merging a pass's 40 patterns into the state reads their stored copies at once (a round
    trip per pattern on PostgreSQL made a large scan's save take minutes); counts still merge
    by the larger count."""
    with make_store() as store:
        store.commit([group(f"p{i}", count=5) for i in range(40)])
        reads: list[int] = []
        single, many = store.get_group, store.get_groups
        monkeypatch.setattr(store, "get_group", lambda gid: reads.append(1) or single(gid))
        monkeypatch.setattr(store, "get_groups", lambda ids: reads.append(len(ids)) or many(ids))
        save_groups(store, [group(f"p{i}", count=3 + i % 5) for i in range(40)])
        assert reads == [40]
        monkeypatch.undo()
        counts = {g.id: g.count for g in store.list_groups(limit=100)}
        assert counts == {f"p{i}": max(5, 3 + i % 5) for i in range(40)}


# --- the schema upgrade ----------------------------------------------------------------------


def test_a_v1_state_file_upgrades_in_place(tmp_path: Path) -> None:
    """A state file written by the v1 schema opens at the current version with its rows: a
    "fixed" group is resolved, an "ignored" one ignored, every group owns its id as a
    fingerprint (trace groups at algorithm version 2), and the activity list starts empty."""
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path, isolation_level=None)
    schema_module.migrate(conn, schema_module.MIGRATIONS[:1])
    row = "INSERT INTO groups VALUES (?, ?, 't', 'internal_error', 'high', 0, '', NULL, NULL," \
          " '[]', 4, 1.0, 2.0, '{}', ?)"  # fmt: skip
    for gid, kind, status in (("a", "trace", "fixed"), ("b", "template", "ignored"),
                              ("c", "template", "open")):  # fmt: skip
        conn.execute(row, (gid, kind, status))
    conn.close()
    with Store(path) as store:
        assert store.schema_version == schema_module.SCHEMA_VERSION
        states = {g.id: (g.state, g.count) for g in store.list_groups()}
        assert states == {"a": ("resolved", 4), "b": ("ignored", 4), "c": ("open", 4)}
        assert store.fingerprints("a") == [("a", "a", 2)]
        assert store.fingerprints("b") == [("b", "b", 0)]
        assert store.list_activity() == []


def test_every_change_is_one_structured_record_then_each_subscriber() -> None:
    """Lifecycle.notify logs one record whose event is the action ("regressed"), with the
    group, states, actor and detail; a subscriber that raises does not stop the next one."""
    from structlog.testing import capture_logs

    life = lifecycle.Lifecycle()
    got: list[str] = []

    def broken(g: ErrorGroup, a: object) -> None:
        raise RuntimeError("subscriber bug")

    life.subscribe(broken)
    life.subscribe(lambda g, a: got.append(a.action))
    g = group(state="resolved", state_changed=T0)
    entry = lifecycle.observe(g, T0 + 1)
    assert entry is not None
    with capture_logs() as logs:
        life.notify(g, entry)
    [record] = [r for r in logs if r.get("lifecycle")]
    assert (record["event"], record["group"], record["actor"]) == ("regressed", "g1", "watcher")
    assert (record["old_state"], record["new_state"]) == ("resolved", "regressed")
    assert record["detail"] == {"count": 3}
    assert got == ["regressed"]


def test_in_app_frames_link_to_the_code_at_the_release_the_logs_name() -> None:
    """[report] repo_url makes each in-app frame a link at the pattern's most frequent release
    (deploy prefix removed); library frames and a config without a template get none."""
    from watcher.http.links import linker

    link = linker("https://github.com/acme/api/blob/{ref}/{path}#L{line}", "main")
    g = group(tags={"release": {"3f2a9c1": 7, "v1.0": 2}})
    assert link(g, Frame("/app/src/pay.py", 12, "charge")) == (
        "https://github.com/acme/api/blob/3f2a9c1/src/pay.py#L12"
    )
    assert link(group(), Frame("src/pay.py", 3, "f")) == (
        "https://github.com/acme/api/blob/main/src/pay.py#L3"
    )
    assert link(g, Frame("/usr/lib/python3/json.py", 1, "loads", in_app=False)) is None
    assert linker("", "main")(g, Frame("src/pay.py", 3, "f")) is None


# --- the groups CLI without a daemon -----------------------------------------------------------


def test_groups_cli_lists_filters_and_changes_the_state_file(
    make_store: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`watcher groups` with no daemon, on a state file or a PostgreSQL URL: list --search/--only
    filter, ignore --for sets the end of the ignore, a bad --until or a fingerprint the pattern
    does not own exits 2 saying why."""
    import json
    import time

    import structlog

    from watcher.cli import main

    path = make_store.url
    with make_store() as store:
        store.commit([group("p1", template="payment failed for <*>", count=9), group("c1")],
                     fingerprints=[("p1", "p1", 0), ("c1", "c1", 0)])  # fmt: skip
    capsys.readouterr()  # the store's own log lines
    try:
        assert main(["groups", "list", "--state", path, "--search", "PAYMENT", "--json"]) == 0
        assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == ["p1"]
        assert main(["groups", "ignore", "p1", "--for", "2h", "--state", path]) == 0
        assert "p1: ignored" in capsys.readouterr().out
        assert main(["groups", "list", "--only", "ignored", "--state", path, "--json"]) == 0
        [listed] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert listed["id"] == "p1"
        with make_store() as store:
            until = store.get_group("p1").ignore_until  # type: ignore[union-attr]
        assert until is not None and abs(until - (time.time() + 7200)) < 60
        assert main(["groups", "ignore", "c1", "--until", "2030-01-01T00:00", "--state", path]) == 2
        assert "no time zone" in capsys.readouterr().err
        assert main(["groups", "split", "p1", "c1", "--state", path]) == 2
        assert "does not own" in capsys.readouterr().err
        assert main(["groups", "resolve", "nope", "--state", path]) == 2
        assert "no pattern 'nope'" in capsys.readouterr().err
    finally:  # main() configured structlog onto the captured stderr: undo it
        structlog.reset_defaults()


def test_scanning_lines_without_timestamps_into_a_state_twice(make_store: Any) -> None:
    """`watcher scan --state` run twice over lines that carry no timestamp (first/last seen 0)
    merges the second pass into the stored group instead of crashing (min() of nothing)."""
    with make_store() as store:
        for _ in range(2):
            save_groups(store, [group("n1", count=20, first_seen=0.0, last_seen=0.0)])
        stored = store.get_group("n1")
        assert stored is not None and (stored.count, stored.first_seen) == (20, 0.0)
