"""The Markdown report: every section, one row per group, and untrusted text kept inert."""

from __future__ import annotations

import re
from typing import Any

from watcher.model import ErrorGroup, Frame, Sample, Stats
from watcher.report import Analysis, fenced, render_report

T0 = 1_795_240_800.0  # 2026-11-21T06:00:00Z
NOW = T0 + 7200
COLUMNS = 10
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def make_group(gid: str = "g1", **overrides: Any) -> ErrorGroup:
    values: dict[str, Any] = {
        "id": gid,
        "kind": "template",
        "template": f"something failed in {gid}",
        "category": "internal_error",
        "severity": "medium",
        "fixable": False,
        "count": 5,
        "first_seen": T0,
        "last_seen": T0 + 600,
        "sources": {"app": 5},
        "samples": [Sample(T0, "app", f"ERROR something failed in {gid}", 10)],
    }
    values.update(overrides)
    return ErrorGroup(**values)


def make_stats(**overrides: Any) -> Stats:
    values: dict[str, Any] = {
        "lines": 4000,
        "duplicate_lines": 11,
        "truncated_lines": 2,
        "dropped_lines": 3,
        "events": 3100,
        "error_events": 160,
        "ignored_events": 7,
        "out_of_window_events": 13,
        "parse_fallbacks": 17,
        "lines_by_source": {"app": 3000, "edge": 1000},
    }
    values.update(overrides)
    return Stats(**values)


def table_rows(report: str) -> list[list[str]]:
    """The summary table's data rows, split on unescaped pipes."""
    section = report.split("## Summary", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in _CELL_SPLIT.split(line)[1:-1]] for line in lines[1:]]


def section(report: str, heading: str) -> str:
    """The text under one heading, up to the next heading of any level."""
    start = report.index(heading) + len(heading)
    nxt = re.search(r"^#{1,3} ", report[start:], re.MULTILINE)
    return report[start : start + nxt.start()] if nxt else report[start:]


def test_every_section_present() -> None:
    """Title, period, sources, totals, table, per-group sections and accounting all render."""
    report = render_report([make_group()], make_stats(), now=NOW, title="Nightly")
    for heading in (
        "# Nightly",
        "## Totals",
        "## Summary",
        "## 1. ",
        "### Root cause",
        "### Evidence",
        "### Code location",
        "### Suggested fix",
        "### Recommended actions",
        "## Accounting",
    ):
        assert heading in report, heading
    assert "- Sources: `app`, `edge`" in report
    assert "- Generated: 2026-11-21T08:00:00Z" in report


def test_one_row_per_group_with_its_count() -> None:
    """Each group gets its own table row carrying its own count and id."""
    groups = [make_group(f"g{i}", count=i * 3 + 1) for i in range(12)]
    rows = table_rows(render_report(groups, make_stats(), now=NOW))
    assert len(rows) == 12
    assert all(len(row) == COLUMNS for row in rows)
    assert {(row[9], int(row[4])) for row in rows} == {(g.id, g.count) for g in groups}


def test_rows_sorted_by_severity_then_count() -> None:
    """Worse severity first; within a severity, the larger count first."""
    groups = [
        make_group("low-big", severity="low", count=900),
        make_group("crit-small", severity="critical", count=2),
        make_group("high-small", severity="high", count=3),
        make_group("high-big", severity="high", count=30),
    ]
    rows = table_rows(render_report(groups, make_stats(), now=NOW))
    assert [row[9] for row in rows] == ["crit-small", "high-big", "high-small", "low-big"]
    assert [row[0] for row in rows] == ["1", "2", "3", "4"]


def test_totals_count_patterns_severities_and_fixable() -> None:
    """Totals give pattern, event, critical, high and fixable counts."""
    groups = [
        make_group("a", severity="critical", count=4, fixable=True),
        make_group("b", severity="high", count=6),
        make_group("c", severity="high", count=1, fixable=True),
    ]
    totals = section(render_report(groups, make_stats(), now=NOW), "## Totals")
    assert "- Patterns: 3" in totals
    assert "- Error events: 11 in patterns" in totals
    assert "- Critical: 1 pattern, 4 events" in totals
    assert "- High: 2 patterns, 7 events" in totals
    assert "- Fixable: 2 patterns" in totals


def test_pipes_and_backticks_do_not_break_the_table() -> None:
    """A template with | and ` stays in its own cell, escaped."""
    group = make_group(template="a | b ``c`` | d", exception_type=None)
    report = render_report([group], make_stats(), now=NOW)
    (row,) = table_rows(report)
    assert len(row) == COLUMNS
    assert row[1] == r"a \| b \`\`c\`\` \| d"


def test_long_pattern_truncated_in_table() -> None:
    """The pattern cell is cut to about 80 characters, with an ellipsis."""
    report = render_report([make_group(template="x" * 300)], make_stats(), now=NOW)
    (row,) = table_rows(report)
    assert row[1].endswith("…") and len(row[1]) <= 80


def test_exception_type_leads_the_pattern() -> None:
    """Trace groups show their exception type with the message template."""
    group = make_group(kind="trace", exception_type="KeyError", template="'<*>'")
    (row,) = table_rows(render_report([group], make_stats(), now=NOW))
    assert row[1] == "KeyError: '\\<*\\>'"


def test_sample_with_fence_gets_a_longer_fence() -> None:
    """A sample containing ``` (or ````) is wrapped in a strictly longer fence."""
    text = "before\n```\ninside\n````\nafter"
    group = make_group(samples=[Sample(T0, "app", text, 3)])
    report = render_report([group], make_stats(), now=NOW)
    assert f"`````text\n{text}\n`````" in report


def test_fenced_helper_defaults_to_three_backticks() -> None:
    """Plain text gets an ordinary ``` fence."""
    assert fenced("plain") == "```text\nplain\n```"


def test_html_in_samples_and_templates_is_inert() -> None:
    """Raw HTML from logs only appears inside code fences; elsewhere it is escaped."""
    group = make_group(
        template="<script>alert(1)</script>",
        samples=[Sample(T0, "app", "<script>alert(1)</script>", 1)],
    )
    report = render_report([group], make_stats(), now=NOW)
    outside = re.sub(r"```text\n.*?\n```", "", report, flags=re.DOTALL)
    assert "<script>" not in outside
    assert "```text\n<script>alert(1)</script>\n```" in report


def test_log_text_cannot_inject_links() -> None:
    """Brackets from a log line are escaped, so no clickable link is made from it."""
    group = make_group(template="click [here](https://evil.example)")
    report = render_report([group], make_stats(), now=NOW)
    assert "[here](" not in report


def test_zero_groups_says_so_and_still_accounts() -> None:
    """With no groups the report says no errors were found, and still prints accounting."""
    report = render_report([], make_stats(error_events=0), period=(T0, T0 + 3600), now=NOW)
    assert "No errors found in 4000 lines read from `app`, `edge` over 2026-11-21T06:00:00Z" in (
        report
    )
    assert "## Summary" not in report and "## 1. " not in report
    assert "## Accounting" in report and "| Lines read | 4000 |" in report


def test_zero_groups_without_any_period() -> None:
    """An empty run with no known period still reads as one plain sentence."""
    report = render_report([], Stats(), now=NOW)
    assert "No errors found in 0 lines read from none." in report
    assert "No lines were read from any source." in report


def test_accounting_lists_every_counter() -> None:
    """Every Stats counter and every per-source line count is visible."""
    accounting = section(render_report([make_group()], make_stats(), now=NOW), "## Accounting")
    for label, value in (
        ("Lines read", 4000),
        ("Duplicate lines", 11),
        ("Lines truncated", 2),
        ("Lines dropped", 3),
        ("Events", 3100),
        ("Error events", 160),
        ("Ignored events", 7),
        ("Out-of-window events", 13),
        ("Parse fallbacks", 17),
    ):
        assert re.search(rf"^\| {label}[^|]* \| {value} \|$", accounting, re.MULTILINE), label
    assert "| app | 3000 |" in accounting and "| edge | 1000 |" in accounting


def test_period_from_argument_else_from_groups() -> None:
    """The period comes from the caller when given, else from the groups' first/last seen."""
    groups = [make_group("a", first_seen=T0, last_seen=T0 + 60), make_group("b", last_seen=NOW)]
    given = render_report(groups, Stats(), period=(T0 - 3600, T0 + 3600), now=NOW)
    derived = render_report(groups, Stats(), now=NOW)
    assert "- Period: 2026-11-21T05:00:00Z → 2026-11-21T07:00:00Z (UTC)" in given
    assert "- Period: 2026-11-21T06:00:00Z → 2026-11-21T08:00:00Z (UTC)" in derived


def test_last_hour_column_from_window_counts() -> None:
    """The 'last 1 h' cell shows window_counts['1h'], or a dash without windows."""
    groups = [make_group("w", window_counts={"1m": 1, "1h": 42}), make_group("n", count=1)]
    rows = {row[9]: row for row in table_rows(render_report(groups, make_stats(), now=NOW))}
    assert rows["w"][5] == "42" and rows["n"][5] == "—"


def test_top_limits_sections_not_rows() -> None:
    """Only `top` groups get a section; every group keeps its table row."""
    groups = [make_group(f"g{i}", count=100 - i) for i in range(5)]
    report = render_report(groups, make_stats(), top=2, now=NOW)
    assert len(table_rows(report)) == 5
    assert "## 2. " in report and "## 3. " not in report
    assert "3 more patterns in the summary table only" in report


def test_placeholder_root_cause_without_analysis() -> None:
    """Without an analysis the section says none ran and how to get one."""
    report = render_report([make_group("abc123")], make_stats(), now=NOW)
    root = section(report, "### Root cause")
    assert "No analysis ran" in root
    assert "`watcher scan --auto-fix`" in root


def test_analysis_fills_root_cause_and_fix() -> None:
    """An analysis supplies root cause, confidence, PR link and the proposed fix."""
    analysis = Analysis(
        "Pool exhausted under load.", "Raise pool_size to 20.", 0.8, "https://x.example/pr/1"
    )
    group = make_group("db", category="database_error", suggested_fix="connection pooling")
    report = render_report([group], make_stats(), analyses={"db": analysis}, now=NOW)
    assert "Pool exhausted under load." in section(report, "### Root cause")
    assert "Confidence: 80%" in report
    assert "[https://x.example/pr/1](https://x.example/pr/1)" in report
    fix = section(report, "### Suggested fix")
    assert "Raise pool_size to 20." in fix and "connection pooling" in fix


def test_analysis_with_open_fence_is_closed() -> None:
    """An analysis that leaves a code fence open cannot swallow the rest of the report."""
    analysis = Analysis("cause", "Do this:\n```python\nretry()", 0.5)
    report = render_report([make_group()], make_stats(), analyses={"g1": analysis}, now=NOW)
    fix = section(report, "### Suggested fix")
    assert fix.count("```") == 2


def test_suggested_fix_from_group() -> None:
    """Without an analysis the group's own suggested fix is shown."""
    group = make_group(category="cache_error", suggested_fix="fallback", fixable=True)
    report = render_report([group], make_stats(), now=NOW)
    assert "Typical fix: fallback" in section(report, "### Suggested fix")


def test_code_location_top_frame_and_in_app_frames() -> None:
    """The top in-app frame is named, followed by at most five in-app frames, innermost first."""
    frames = [Frame(f"/app/src/m{i}.py", i, f"f{i}") for i in range(8)]
    frames.insert(3, Frame("/site-packages/lib.py", 1, "lib", in_app=False))
    group = make_group(kind="trace", frames=frames, top_frame=frames[-1])
    location = section(render_report([group], make_stats(), now=NOW), "### Code location")
    assert "Top in-app frame: `/app/src/m7.py:7` in `f7`" in location
    listed = re.findall(r"^\d+\. `(.+?)`", location, re.MULTILINE)
    assert listed == [f"/app/src/m{i}.py:{i}" for i in (7, 6, 5, 4, 3)]


def test_no_frames_says_so() -> None:
    """A template group without frames says no frames were captured."""
    report = render_report([make_group()], make_stats(), now=NOW)
    assert "No stack frames were captured" in section(report, "### Code location")


def test_evidence_lists_counts_sources_and_samples() -> None:
    """Evidence has count, windows, trend, first/last seen, sources and at most two samples."""
    samples = [Sample(T0 + i, "app", f"occurrence {i}", i) for i in range(5)]
    group = make_group(
        count=5,
        window_counts={"1m": 1, "5m": 2, "1h": 5},
        trend="rising",
        sources={"app": 4, "edge": 1},
        samples=samples,
    )
    evidence = render_report([group], make_stats(), now=NOW).split("### Evidence", 1)[1]
    evidence = evidence.split("### Code location", 1)[0]
    assert "- Count: 5" in evidence and "- Windows: 1m: 1, 5m: 2, 1h: 5" in evidence
    assert "- Trend: rising" in evidence and "`app` (4), `edge` (1)" in evidence
    assert "occurrence 0" in evidence and "occurrence 4" in evidence
    assert "occurrence 2" not in evidence


def test_huge_sample_is_clipped() -> None:
    """A very long trace sample is cut and the cut is stated."""
    group = make_group(samples=[Sample(T0, "app", "\n".join(["zzline"] * 500), 1)])
    report = render_report([group], make_stats(), now=NOW)
    assert report.count("zzline") == 60 and "sample cut to" in report


def _actions(**overrides: Any) -> str:
    report = render_report([make_group(**overrides)], make_stats(), now=NOW)
    return section(report, "### Recommended actions")


def test_rising_critical_pages_and_checks_rollback() -> None:
    """A rising critical pattern recommends paging and a rollback check first."""
    actions = _actions(severity="critical", trend="rising")
    assert actions.strip().startswith("1. Page the on-call owner")
    assert "roll back" in actions


def test_category_specific_actions() -> None:
    """Database errors point at pool/DB health; rate limits at backoff."""
    assert "connection pool" in _actions(category="database_error")
    assert "backoff" in _actions(category="rate_limit_error")


def test_generic_action_fallback() -> None:
    """An unknown category with nothing else to say still gets one numbered action."""
    actions = _actions(category="mystery", severity="low")
    assert re.findall(r"^\d+\. ", actions, re.MULTILINE) == ["1. "]
    assert "assign an owner" in actions


def test_fixable_without_analysis_suggests_watcher_fix() -> None:
    """A fixable group with no analysis yet recommends asking watcher for a fix."""
    assert "`watcher scan --auto-fix`" in _actions(fixable=True, category="timeout_error")


def test_report_is_deterministic() -> None:
    """The same input renders the same text."""
    groups = [make_group("a"), make_group("b", severity="high")]
    assert render_report(groups, make_stats(), now=NOW) == render_report(
        list(reversed(groups)), make_stats(), now=NOW
    )
