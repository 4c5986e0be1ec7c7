"""Message bodies: Slack blocks or generic JSON, for one kind of alert and one or more patterns.

Both formats take alerts that were already redacted; truncation happens after redaction so a
secret is never cut into a piece the redactor no longer recognises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from watcher.alerts.alert import Alert, Kind

MAX_LISTED = 10  # Slack allows 50 blocks a message; ten sections stay readable
SAMPLE_CHARS = 500
TEMPLATE_CHARS = 300
# Slack caps a section's text at 3000 characters; escaping can grow text five-fold (& -> &amp;),
# so the escaped pieces get budgets of their own that add up to well under the cap.
SLACK_SAMPLE_CHARS = 1200
SLACK_TEMPLATE_CHARS = 600
SLACK_HEADER_CHARS = 150
_SEVERITY_ICON = {"critical": ":red_circle:", "high": ":large_orange_circle:"}
_BACKTICK = "\u02cb"  # MODIFIER LETTER GRAVE ACCENT: looks like ` but does not end code
_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")


_TITLES: dict[str, tuple[str, str]] = {  # kind -> (one pattern, n patterns)
    "threshold": ("1 pattern crossed its threshold", "{n} patterns crossed their threshold"),
    "new": ("New error pattern", "{n} new error patterns"),
    "regressed": ("A resolved pattern is back", "{n} resolved patterns are back"),
    "resolved": ("1 pattern resolved", "{n} patterns resolved"),
    "pr_opened": ("Fix PR opened for 1 pattern", "Fix PRs opened for {n} patterns"),
}


def title(kind: Kind, n: int) -> str:
    """The one-line summary of a message: used as Slack's fallback text and header."""
    if kind == "digest":
        return f"{n} more patterns alerted"
    one, many = _TITLES[kind]
    return one if n == 1 else many.format(n=n)


def build(fmt: str, kind: Kind, listed: Sequence[Alert], total: int | None = None) -> Any:
    """The JSON body for a target of format `fmt` ("slack" or "json").

    `listed` are the alerts shown in full; `total` (default: as many) is how many the batch
    had, so the body can say "and N more" without the caller redacting alerts never shown.
    """
    total = len(listed) if total is None else total
    if kind == "digest":
        return digest_payload(fmt, listed[0])
    if fmt == "slack":
        return slack_payload(kind, listed, total)
    return generic_payload(kind, listed, total)


# --- generic JSON ------------------------------------------------------------------------------


def generic_payload(kind: Kind, listed: Sequence[Alert], total: int) -> dict[str, Any]:
    """`{"kind", "summary", "alerts": [...], "omitted"}`: the listed alerts in full."""
    return {
        "kind": kind,
        "summary": title(kind, total),
        "alerts": [generic_alert(alert) for alert in listed],
        "omitted": max(0, total - len(listed)),
    }


def digest_payload(fmt: str, digest: Alert) -> dict[str, Any]:
    """The message standing in for alerts the rate cap held back: a count, no patterns."""
    if fmt == "slack":
        header = {"type": "plain_text", "text": clip(digest.template, SLACK_HEADER_CHARS)}
        return {"text": digest.template, "blocks": [{"type": "header", "text": header}]}
    return {"kind": "digest", "summary": digest.template, "alerts": [], "omitted": digest.count}


def generic_alert(alert: Alert) -> dict[str, Any]:
    """One pattern as plain JSON; absent values are null, times are UTC ISO 8601."""
    frame = alert.top_frame
    return {
        "group_id": alert.group_id,
        "category": alert.category,
        "severity": alert.severity,
        "count": alert.count,
        "window_counts": dict(alert.window_counts),
        "template": clip(alert.template, TEMPLATE_CHARS),
        "exception_type": alert.exception_type,
        "top_frame": None
        if frame is None
        else {"file": frame[0], "line": frame[1], "function": frame[2]},
        "first_seen": iso(alert.first_seen),
        "last_seen": iso(alert.last_seen),
        "sample": clip(alert.sample, SAMPLE_CHARS),
        "pr_url": alert.pr_url or None,
        "fix_id": alert.fix_id or None,
        "service": alert.service or None,
        "link": alert.link or None,
    }


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def iso(ts: float) -> str | None:
    """UTC ISO 8601 to the second; None for 0 (never set)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


# --- Slack -------------------------------------------------------------------------------------


def slack_payload(kind: Kind, listed: Sequence[Alert], total: int) -> dict[str, Any]:
    """`{"text": fallback, "blocks": [header, one mrkdwn section per pattern, "and N more"]}`."""
    text = title(kind, total)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(text, SLACK_HEADER_CHARS)}}
    ]
    blocks += [_section(slack_alert_text(alert)) for alert in listed]
    if total > len(listed):
        more = f"and {total - len(listed)} more"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return {"text": text, "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def slack_alert_text(alert: Alert) -> str:
    """The mrkdwn of one pattern's section; all log-derived text is escaped."""
    lines = [_headline(alert), _code(alert.template, SLACK_TEMPLATE_CHARS)]
    if alert.exception_type or alert.top_frame:
        lines.append(_where(alert))
    seen = f"First seen {iso(alert.first_seen) or '-'} · last seen {iso(alert.last_seen) or '-'}"
    lines.append(f"{seen} · group {_code(alert.group_id, 100)}")
    if alert.pr_url:
        lines.append(_pr_line(alert))
    if alert.sample:
        lines.append(_code_block(alert.sample, SLACK_SAMPLE_CHARS))
    return "\n".join(lines)


def _headline(alert: Alert) -> str:
    icon = _SEVERITY_ICON.get(alert.severity, ":large_yellow_circle:")
    label = f"{escape(alert.severity.upper())} · {escape(alert.category)}"
    windows = " · ".join(f"{escape(k)}: {v}" for k, v in alert.window_counts.items())
    counts = f"{alert.count} events" + (f" ({windows})" if windows else "")
    return f"{icon} *{label}* — {counts}"


def _where(alert: Alert) -> str:
    parts = [f"*{escape(alert.exception_type)}*"] if alert.exception_type else []
    if alert.top_frame is not None:
        file, line, function = alert.top_frame
        at = f"{file}:{line}" if line is not None else file
        parts.append(f"at {_code(at, 200)} in {_code(function, 100)}")
    return " ".join(parts)


def _pr_line(alert: Alert) -> str:
    fix = f" (fix {_code(alert.fix_id, 100)})" if alert.fix_id else ""
    # Only a plain URL becomes a link: "|" or ">" in it would end Slack's <url|label> early.
    if re.fullmatch(r"https?://[^\s<>|]+", alert.pr_url):
        return f"Pull request: <{escape(alert.pr_url)}|{escape(alert.pr_url)}>{fix}"
    return f"Pull request: {escape(alert.pr_url)}{fix}"


def escape(text: str) -> str:
    """Slack's required escaping of & < > — which also stops log text from mentioning
    @channel (`<!channel>`) or forging links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escaped_clip(text: str, limit: int) -> str:
    """Escape, then cut to `limit` without leaving half an entity (`&am`) at the end."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    return _PARTIAL_ENTITY.sub("", escaped[: limit - 1]) + "…"


def _code(text: str, limit: int) -> str:
    # mrkdwn cannot escape a backtick inside code, so a look-alike takes its place; a newline
    # would end inline code, so it becomes a space.
    flat = text.replace("`", _BACKTICK).replace("\n", " ")
    return f"`{_escaped_clip(flat, limit)}`"


def _code_block(text: str, limit: int) -> str:
    return f"```{_escaped_clip(text.replace('`', _BACKTICK), limit)}```"
