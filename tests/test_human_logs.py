"""The daemon's own log for a person: NEW / ALERT / REGRESSED / RESOLVED / FIX / SUMMARY lines
from structured records, JSON when nobody is at a terminal."""

from __future__ import annotations

import json
import sys

import pytest
import structlog

from watcher.announce import Announcer
from watcher.logs import configure, resolve_format
from watcher.model import (
    Activity,
    Classification,
    ErrorGroup,
    Fix,
    Frame,
    GroupUpdate,
    LogEvent,
    Stats,
)


def group(**changes: object) -> ErrorGroup:
    g = ErrorGroup(
        id="a1b2c3d4e5f6",
        kind="trace",
        template="could not connect to server",
        category="database_error",
        severity="high",
        fixable=True,
        exception_type="OperationalError",
        top_frame=Frame("app/db.py", 42, "connect"),
        count=3,
        window_counts={"1m": 1, "5m": 3, "1h": 3},
    )
    for key, value in changes.items():
        setattr(g, key, value)
    return g


def update(g: ErrorGroup, *, new: bool = False, crossed: bool = False) -> GroupUpdate:
    cls = Classification(g.category, g.severity, g.fixable)
    return GroupUpdate(g, LogEvent(message="m", source="app"), cls, new, crossed)


@pytest.fixture(autouse=True)
def restore_logging():  # type: ignore[no-untyped-def]
    """Put structlog back as it was: these tests point it at pytest's capture streams, which
    are closed after the test (every later log line would fail)."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def text_logs(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """A function giving the human-format lines logged on the captured stderr since its last
    call. The format is set up at its first call, in the test itself: pytest swaps stderr
    between a fixture's setup and the test."""

    def lines() -> list[str]:
        if structlog.get_config()["logger_factory"]._file is not sys.stderr:
            configure("info", "text")
            return []
        return capsys.readouterr().err.splitlines()

    return lines


def test_new_alert_and_fix_are_one_human_line_each(text_logs) -> None:  # type: ignore[no-untyped-def]
    """A new pattern, a threshold crossing and a finished fix each print one line: the tag, the
    category/severity, the count, the pattern, the top frame and the group — no Python dict."""
    text_logs()
    announcer = Announcer()
    g = group()
    announcer.observe([update(g, new=True), update(g, crossed=True)])
    fix = Fix("fix-1", g.id, "pr_open", 0.0, pr_url="https://github.com/acme/api/pull/7")
    announcer.fix(g, fix)
    new, alert, fixed = text_logs()
    for line in (new, alert, fixed):
        assert "database_error/high  x3  OperationalError: could not connect to server" in line
        assert "at app/db.py:42 in connect" in line and "[a1b2c3d4e5f6]" in line
        assert "{" not in line
    assert new.split()[1] == "NEW" and alert.split()[1] == "ALERT"
    assert fixed.split()[1:3] == ["FIX", "pr_open"] and "pull/7" in fixed


def test_lifecycle_records_from_any_module_render_as_their_tag(text_logs) -> None:  # type: ignore[no-untyped-def]
    """Any module logging `event="regressed"` / `"resolved"` with the pattern fields gets the
    REGRESSED / RESOLVED line; other records are `time LEVEL message key=value`."""
    text_logs()
    log = structlog.get_logger("watcher.anything")
    log.warning("regressed", group="g1", count=9, category="cache_error", pattern="redis down")
    log.info("resolved", group="g1", count=9, category="cache_error", pattern="redis down")
    log.info("Watching.", listen="127.0.0.1:9464")
    regressed, resolved, other = text_logs()
    assert regressed.split()[1] == "REGRESSED" and "cache_error  x9  redis down" in regressed
    assert resolved.split()[1] == "RESOLVED" and "[g1]" in resolved
    assert other.split()[1:3] == ["INFO", "Watching."] and "listen=127.0.0.1:9464" in other


def test_a_pattern_lifecycle_change_prints_its_human_line(text_logs) -> None:  # type: ignore[no-untyped-def]
    """The lifecycle's own record (a resolved pattern that logged again) is a REGRESSED line with
    the pattern, count, category and top frame, like NEW and ALERT."""
    from watcher.group.lifecycle import Lifecycle, resolve

    text_logs()
    g = group()
    resolve(g, "cli:ann", 100.0)
    g.state = "regressed"
    Lifecycle().notify(g, Activity(g.id, "regressed", "watcher", 200.0, "resolved", "regressed"))
    (line,) = text_logs()
    assert line.split()[1] == "REGRESSED"
    assert "database_error/high  x3  could not connect to server  at app/db.py:42" in line
    assert "[a1b2c3d4e5f6]" in line and "template=" not in line


def test_summary_is_one_line_with_the_busiest_patterns(text_logs) -> None:  # type: ignore[no-untyped-def]
    """The periodic summary: lines, errors, patterns and the busiest by their 5 m count; new
    patterns beyond the per-interval cap are counted there, not printed one by one."""
    text_logs()
    announcer = Announcer(cap=1)
    busy, quiet = group(), group(id="ffff00001111", window_counts={"5m": 0})
    announcer.observe([update(busy, new=True), update(quiet, new=True)])
    stats = Stats(lines=1234, events=40, error_events=7)
    announcer.summary([quiet, busy], stats)
    new, summary = text_logs()
    assert new.split()[1] == "NEW"
    assert summary.split()[1] == "SUMMARY"
    assert "1,234 lines  7 errors  2 patterns" in summary
    assert "database_error x3 [a1b2c3d4e5f6]" in summary and "ffff00001111" not in summary
    assert "1 more new patterns (not shown)" in summary


def test_json_records_carry_the_same_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """In the JSON format the same record is machine-readable: event, group, count, category,
    pattern, top_frame."""
    configure("info", "json")
    Announcer().observe([update(group(), new=True)])
    record = json.loads(capsys.readouterr().err)
    assert record["event"] == "new" and record["count"] == 3
    assert record["top_frame"] == "app/db.py:42 in connect"


def test_auto_format_is_json_unless_stderr_is_a_terminal() -> None:
    """log_format = "auto" (the default) is JSON when stderr is not a terminal (a journal,
    a file, a collector), text on one; "json" and "text" force either."""
    assert resolve_format("auto") == "json"  # pytest captures stderr: not a terminal
    assert (resolve_format("json"), resolve_format("text")) == ("json", "text")
