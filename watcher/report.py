"""The Markdown "Production Debug Report": what broke, how often, where, and what to do next.

Everything that came from a log (templates, samples, sources, frames) is untrusted text. It goes
into code fences or is escaped, so a log line can neither break the table nor inject HTML or
Markdown structure into the report.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from watcher.model import SEVERITY_RANK, ErrorGroup, Frame, Sample, Stats

PATTERN_WIDTH = 80
MAX_SAMPLES = 2
MAX_FRAMES = 5
# A sample is evidence, not the whole log: long traces are cut so the report stays readable.
MAX_SAMPLE_LINES = 60
MAX_SAMPLE_CHARS = 4000
NO_VALUE = "—"
UNKNOWN_PERIOD = "unknown"

# The characters that can break a table row, open a code span, a link or raw HTML. Emphasis
# characters stay as they are: at worst they restyle text, and ids and categories stay greppable.
_INLINE_SPECIALS = re.compile(r"([\\`|<>\[\]])")
# what escape_inline does with _INLINE_SPECIALS, as one str.translate: `sub` with a template
# expands it in Python per match, and a flood's report escapes 10,000 templates full of "<*>"
_INLINE_ESCAPES = str.maketrans({c: "\\" + c for c in "\\`|<>[]"})
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
_BACKTICK_RUN = re.compile(r"`+")


@dataclass(slots=True)
class Analysis:
    """The fix pipeline's verdict on one group, when it ran."""

    root_cause: str
    proposed_fix: str
    confidence: float
    pr_url: str = ""


# --- escaping ------------------------------------------------------------------------------------


def escape_inline(text: str) -> str:
    """Make untrusted text safe on one Markdown line: a table cell, a heading, a list item."""
    flat = " ".join(text.split())
    return flat.translate(_INLINE_ESCAPES)


def truncate(text: str, width: int) -> str:
    """Shorten to `width` characters on one line; truncation happens before escaping."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def code_span(text: str) -> str:
    """An inline code span that survives backticks inside the text."""
    flat = " ".join(text.split())
    longest = max((len(run) for run in _BACKTICK_RUN.findall(flat)), default=0)
    ticks = "`" * (longest + 1)
    # CommonMark strips one space on each side, so padding keeps edge backticks literal.
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def fenced(text: str, info: str = "text") -> str:
    """A fenced code block whose fence is longer than any backtick run inside the text."""
    longest = max((len(run) for run in _BACKTICK_RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


def prose(text: str) -> str:
    """Analysis text is Markdown from the fix pipeline: keep it, but defuse raw HTML and close
    a fence it left open, which would otherwise swallow the rest of the report."""
    body = text.strip().replace("<", "\\<")
    if len(_FENCE_LINE.findall(body)) % 2:
        body += "\n" + max(_FENCE_LINE.findall(body), key=len)
    return body


# --- small renderings ----------------------------------------------------------------------------


def iso(ts: float | None) -> str:
    """UTC ISO 8601 to the second, or a dash when unknown (0 means never set)."""
    if not ts:
        return NO_VALUE
    return _iso(ts)


@functools.lru_cache(maxsize=1024)
def _iso(ts: float) -> str:
    # cached: a group seen once has first_seen == last_seen, and a table row shows both
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pattern_text(group: ErrorGroup) -> str:
    """How a reader recognises the group: exception type with its message template."""
    template = " ".join(group.template.split())
    exc = group.exception_type
    if exc and template and not template.startswith(exc):
        return f"{exc}: {template}"
    return exc or template or group.id


def top_source(group: ErrorGroup) -> str | None:
    if not group.sources:
        return None
    return min(group.sources.items(), key=lambda item: (-item[1], item[0]))[0]


def frame_text(frame: Frame) -> str:
    where = frame.file if frame.line is None else f"{frame.file}:{frame.line}"
    return f"{code_span(where)} in {code_span(frame.function or '?')}"


def sort_groups(groups: Iterable[ErrorGroup]) -> list[ErrorGroup]:
    """Worst first: severity, then count, then most recent; the id keeps ties stable."""
    return sorted(
        groups,
        key=lambda g: (-SEVERITY_RANK.get(g.severity, 0), -g.count, -g.last_seen, g.id),
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- header and totals ---------------------------------------------------------------------------


def resolve_period(
    period: tuple[float | None, float | None], stats: Stats, groups: list[ErrorGroup]
) -> tuple[float | None, float | None]:
    """Each end from the caller, else the run's stats, else the groups' first/last seen."""
    seen_first = [g.first_seen for g in groups if g.first_seen]
    seen_last = [g.last_seen for g in groups if g.last_seen]
    start = period[0] or stats.period_start or (min(seen_first) if seen_first else None)
    end = period[1] or stats.period_end or (max(seen_last) if seen_last else None)
    return start, end


def period_text(period: tuple[float | None, float | None]) -> str:
    start, end = period
    if start is None and end is None:
        return UNKNOWN_PERIOD
    return f"{iso(start)} → {iso(end)} (UTC)"


def resolve_sources(sources: list[str] | None, stats: Stats, groups: list[ErrorGroup]) -> list[str]:
    if sources is not None:
        return list(sources)
    if stats.lines_by_source:
        return sorted(stats.lines_by_source)
    return sorted({name for g in groups for name in g.sources})


def sources_text(sources: list[str]) -> str:
    return ", ".join(code_span(name) for name in sources) if sources else "none"


def render_header(title: str, period: str, sources: list[str], now: float) -> str:
    return "\n".join(
        [
            f"# {escape_inline(title)}",
            "",
            f"- Period: {period}",
            f"- Sources: {sources_text(sources)}",
            f"- Generated: {iso(now)}",
        ]
    )


def _severity_line(groups: list[ErrorGroup], severity: str) -> str:
    matching = [g for g in groups if g.severity == severity]
    events = sum(g.count for g in matching)
    return f"- {severity.capitalize()}: {_plural(len(matching), 'pattern')}, {events} events"


def render_totals(groups: list[ErrorGroup], stats: Stats) -> str:
    fixable = sum(1 for g in groups if g.fixable)
    grouped = sum(g.count for g in groups)
    lines = [
        "## Totals",
        "",
        f"- Patterns: {len(groups)}",
        f"- Error events: {grouped} in patterns ({stats.error_events} counted by the pipeline)",
        _severity_line(groups, "critical"),
        _severity_line(groups, "high"),
        f"- Fixable: {_plural(fixable, 'pattern')}",
    ]
    return "\n".join(lines)


# --- summary table -------------------------------------------------------------------------------

TABLE_HEADER = (
    "| # | Pattern | Category | Severity | Count | Last 1 h | First seen | Last seen "
    "| Top source | Group |\n"
    "|---:|---|---|---|---:|---:|---|---|---|---|"
)


def table_row(rank: int, group: ErrorGroup) -> str:
    last_hour = group.window_counts.get("1h")
    source = top_source(group)
    cells = [
        str(rank),
        escape_inline(truncate(pattern_text(group), PATTERN_WIDTH)),
        escape_inline(group.category),
        escape_inline(group.severity),
        str(group.count),
        NO_VALUE if last_hour is None else str(last_hour),
        iso(group.first_seen),
        iso(group.last_seen),
        NO_VALUE if source is None else escape_inline(source),
        escape_inline(group.id),
    ]
    return "| " + " | ".join(cells) + " |"


def render_table(groups: list[ErrorGroup]) -> str:
    rows = [table_row(rank, group) for rank, group in enumerate(groups, 1)]
    return "\n".join(["## Summary", "", TABLE_HEADER, *rows])


# --- per-group sections


def render_root_cause(group: ErrorGroup, analysis: Analysis | None) -> str:
    if analysis is None:
        body = (
            "_No analysis ran for this pattern._ Run `watcher scan --auto-fix` to have the fix "
            "pipeline analyse fixable patterns against the code."
        )
    else:
        body = f"{prose(analysis.root_cause)}\n\nConfidence: {analysis.confidence:.0%}"
        if analysis.pr_url:
            body += f"\n\nPull request: {link(analysis.pr_url)}"
    return f"### Root cause\n\n{body}"


def link(url: str) -> str:
    """A link only for http(s) URLs; anything else is shown as inert code."""
    if re.fullmatch(r"https?://[^\s()<>]+", url):
        return f"[{escape_inline(url)}]({url})"
    return code_span(url)


def window_text(group: ErrorGroup) -> str:
    if not group.window_counts:
        return NO_VALUE
    return ", ".join(f"{escape_inline(k)}: {v}" for k, v in group.window_counts.items())


def source_counts_text(group: ErrorGroup) -> str:
    ordered = sorted(group.sources.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{code_span(name)} ({n})" for name, n in ordered) or NO_VALUE


def pick_samples(samples: list[Sample]) -> list[Sample]:
    """The first and the latest occurrence: together they show whether the shape drifted."""
    if len(samples) <= MAX_SAMPLES:
        return list(samples)
    return [samples[0], samples[-1]]


def clip_sample(text: str) -> tuple[str, str]:
    """The sample cut to the caps, and a note saying what was cut (empty when nothing was)."""
    lines = text.splitlines()
    kept = "\n".join(lines[:MAX_SAMPLE_LINES])[:MAX_SAMPLE_CHARS]
    if kept == "\n".join(lines):
        return kept, ""
    return kept, f"_(sample cut to {len(kept)} of {len(text)} characters)_"


def render_sample(index: int, sample: Sample) -> str:
    where = code_span(sample.source) if sample.source else "unknown source"
    line = f" line {sample.line}" if sample.line else ""
    text, note = clip_sample(sample.text)
    parts = [f"Sample {index} — {iso(sample.timestamp)}, {where}{line}:", "", fenced(text)]
    if note:
        parts += ["", note]
    return "\n".join(parts)


def render_evidence(group: ErrorGroup) -> str:
    facts = [
        "### Evidence",
        "",
        f"- Count: {group.count}",
        f"- Windows: {window_text(group)}",
        f"- Trend: {escape_inline(group.trend)}",
        f"- First seen: {iso(group.first_seen)}; last seen: {iso(group.last_seen)}",
        f"- Sources: {source_counts_text(group)}",
        f"- Status: {escape_inline(group.status)}",
    ]
    samples = [render_sample(i, s) for i, s in enumerate(pick_samples(group.samples), 1)]
    return "\n\n".join(["\n".join(facts), *samples])


def in_app_frames(group: ErrorGroup) -> list[Frame]:
    """In-app frames innermost first, as a reader goes looking for the bug."""
    return [f for f in reversed(group.frames) if f.in_app][:MAX_FRAMES]


def render_code_location(group: ErrorGroup) -> str:
    top = group.top_frame or next(iter(in_app_frames(group)), None)
    if top is None:
        return "### Code location\n\nNo stack frames were captured for this pattern."
    label = "Top in-app frame" if top.in_app else "Top frame (library; no in-app frame)"
    lines = ["### Code location", "", f"{label}: {frame_text(top)}"]
    frames = in_app_frames(group)
    if frames:
        lines += ["", "In-app frames, innermost first:", ""]
        lines += [f"{i}. {frame_text(f)}" for i, f in enumerate(frames, 1)]
    return "\n".join(lines)


def render_suggested_fix(group: ErrorGroup, analysis: Analysis | None) -> str:
    blocks = []
    if analysis is not None and analysis.proposed_fix.strip():
        blocks.append(prose(analysis.proposed_fix))
    if group.suggested_fix:
        label = "Typical fix for this category" if blocks else "Typical fix"
        blocks.append(f"{label}: {escape_inline(group.suggested_fix)}")
    if not blocks:
        blocks.append("No fix suggested for this category; see the recommended actions.")
    return "\n\n".join(["### Suggested fix", *blocks])


CATEGORY_ACTIONS = {
    "provider_error": "Retry provider calls with exponential backoff and jitter, check the "
    "provider's status page, and consider a fallback model or provider.",
    "database_error": "Check database health and the connection pool: pool size against "
    "max_connections, long-running transactions and locks; for deadlocks, lock rows in one order.",
    "rate_limit_error": "Back off and queue: honour Retry-After, use exponential backoff with "
    "jitter, cap concurrency, and raise the quota if the traffic is legitimate.",
    "timeout_error": "Find what is slow (upstream latency, slow queries) before raising timeouts; "
    "set explicit timeouts on outbound calls and keep retries idempotent.",
    "auth_error": "Check credential expiry and rotation: refresh tokens before they expire, "
    "rotate the key if it was revoked, and check clock skew.",
    "validation_error": "Find which client sends the invalid input (see sources and samples); fix "
    "the client or the contract, and answer with a clear 4xx instead of logging an error.",
    "cache_error": "Check the cache's health and connectivity, and make cache reads fail open to "
    "the source of truth with a short timeout.",
    "external_service_error": "Check the vendor's status page; retry with backoff and fall back or "
    "queue the work for later; contact the vendor if it persists.",
    "internal_error": "A code bug: reproduce it from the sample, fix it at the top in-app frame, "
    "and add a regression test.",
}
GENERIC_ACTION = "Read the samples and the top frame, assign an owner, and decide: fix or ignore."


def urgency_action(group: ErrorGroup) -> str | None:
    rising = group.trend in ("rising", "new")
    if group.severity == "critical" and rising:
        return (
            f"Page the on-call owner: a critical pattern is {group.trend}. Check whether a deploy "
            f"lines up with its first occurrence ({iso(group.first_seen)}) and roll back if so."
        )
    if group.severity == "critical":
        return "Treat as an incident: assign an owner now and track it until it stops."
    if group.severity == "high" and rising:
        return "Triage today: a high-severity pattern is growing; assign an owner."
    if group.trend == "falling":
        return "It is falling: check whether a fix or rollback already landed before acting."
    return None


def recommended_actions(group: ErrorGroup, analysis: Analysis | None) -> list[str]:
    """Next steps from severity, trend and category; never empty."""
    actions = [urgency_action(group), CATEGORY_ACTIONS.get(group.category)]
    if group.fixable and analysis is None:
        actions.append("Let watcher propose a fix: `watcher scan --auto-fix`.")
    if analysis is not None and analysis.pr_url:
        actions.append("Review and merge the fix pull request, then watch this pattern's rate.")
    chosen = [a for a in actions if a]
    return chosen or [GENERIC_ACTION]


def render_actions(group: ErrorGroup, analysis: Analysis | None) -> str:
    items = [f"{i}. {a}" for i, a in enumerate(recommended_actions(group, analysis), 1)]
    return "\n".join(["### Recommended actions", "", *items])


def render_section(rank: int, group: ErrorGroup, analysis: Analysis | None) -> str:
    heading = (
        f"## {rank}. {escape_inline(truncate(pattern_text(group), PATTERN_WIDTH))}\n\n"
        f"Group {code_span(group.id)} · {escape_inline(group.category)} · "
        f"{escape_inline(group.severity)} · {group.count} events"
    )
    return "\n\n".join(
        [
            heading,
            render_root_cause(group, analysis),
            render_evidence(group),
            render_code_location(group),
            render_suggested_fix(group, analysis),
            render_actions(group, analysis),
        ]
    )


# --- accounting ----------------------------------------------------------------------------------


def render_accounting(stats: Stats) -> str:
    rows = [
        ("Lines read", stats.lines),
        ("Duplicate lines (dropped by de-duplication)", stats.duplicate_lines),
        ("Lines truncated (over the line cap, kept)", stats.truncated_lines),
        ("Lines dropped", stats.dropped_lines),
        ("Events (lines after multi-line assembly)", stats.events),
        ("Error events", stats.error_events),
        ("Ignored events (by rules)", stats.ignored_events),
        ("Out-of-window events", stats.out_of_window_events),
        ("Parse fallbacks (kept as plain text)", stats.parse_fallbacks),
    ]
    lines = ["## Accounting", "", "| Measure | Count |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "Lines by source:", ""]
    if stats.lines_by_source:
        lines += ["| Source | Lines |", "|---|---:|"]
        by_source = sorted(stats.lines_by_source.items())
        lines += [f"| {escape_inline(name)} | {n} |" for name, n in by_source]
    else:
        lines.append("No lines were read from any source.")
    if stats.finished > stats.started > 0:
        lines += ["", f"Run took {stats.finished - stats.started:.1f} s."]
    return "\n".join(lines)


# --- the report ----------------------------------------------------------------------------------


def no_errors_text(stats: Stats, sources: list[str], period: str) -> str:
    where = f"No errors found in {_plural(stats.lines, 'line')} read from {sources_text(sources)}"
    return f"{where}." if period == UNKNOWN_PERIOD else f"{where} over {period}."


def render_findings(
    ordered: list[ErrorGroup], analyses: dict[str, Analysis], top: int, empty: str
) -> list[str]:
    if not ordered:
        return [empty]
    parts = [render_table(ordered)]
    shown = ordered[: max(top, 0)]
    parts += [render_section(i, g, analyses.get(g.id)) for i, g in enumerate(shown, 1)]
    if len(ordered) > len(shown):
        hidden = len(ordered) - len(shown)
        parts.append(f"_{_plural(hidden, 'more pattern')} in the summary table only._")
    return parts


def render_report(
    groups: list[ErrorGroup],
    stats: Stats,
    *,
    title: str = "Production Debug Report",
    period: tuple[float | None, float | None] = (None, None),
    sources: list[str] | None = None,
    analyses: dict[str, Analysis] | None = None,
    top: int = 10,
    now: float | None = None,
) -> str:
    """The whole report as Markdown: header, totals, table, top sections, accounting."""
    ordered = sort_groups(groups)
    when = period_text(resolve_period(period, stats, ordered))
    names = resolve_sources(sources, stats, ordered)
    parts = [
        render_header(title, when, names, time.time() if now is None else now),
        render_totals(ordered, stats),
        *render_findings(ordered, analyses or {}, top, no_errors_text(stats, names, when)),
        render_accounting(stats),
    ]
    return "\n\n".join(parts) + "\n"
