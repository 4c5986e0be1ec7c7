"""The LogQL the loki source sends: the user's query, plus the error filter when it is bare.

Rule: a query that is only a stream selector (`{app="api"}`) gets ` |~ <error_filter>` appended,
so Loki sends error lines only; a query with anything after the selector (a line filter, a
parser, …) is the user's pipeline and is sent exactly as written; `error_filter = ""` turns the
appending off.
"""

from __future__ import annotations

# Error words anywhere, plus the continuation shapes of a trace, which carry no error word but
# which multi-line assembly needs: indented lines (Python "  File …" and source lines, JVM
# "\tat …" and "... 3 more", Node "    at …", Go "\t/path.go:12"), chained-exception headers and
# Go goroutine headers. One RE2 alternation is a single pass per line, and `^\s` is decided on
# the first byte; the price is that other indented lines (pretty-printed dumps) pass too, which
# the watcher's own parser drops as non-errors.
DEFAULT_ERROR_FILTER = (
    r"(?i)(error|exception|traceback|panic|fatal|critical)"
    r"|^\s|^(Caused by|During handling|The above exception|goroutine \d+ \[)"
)


def selector_end(query: str) -> int | None:
    """The index just past the `{…}` stream selector that starts `query`, or None if none does.

    Quoted values may hold braces: "…" with backslash escapes, and `…` raw strings.
    """
    i = len(query) - len(query.lstrip())
    if not query.startswith("{", i):
        return None
    quote = ""
    escaped = False
    for j in range(i + 1, len(query)):
        ch = query[j]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in '"`':
            quote = ch
        elif ch == "}":
            return j + 1
    return None


def is_bare_selector(query: str) -> bool:
    """True when `query` is a stream selector and nothing else."""
    end = selector_end(query)
    return end is not None and not query[end:].strip()


def logql_string(text: str) -> str:
    """`text` as a LogQL string literal: a raw `…` string when possible (no escaping needed)."""
    if "`" not in text:
        return f"`{text}`"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def effective_query(query: str, error_filter: str) -> str:
    """The query to send: a bare selector gets `|~ error_filter` unless the filter is empty."""
    query = query.strip()
    if error_filter and is_bare_selector(query):
        return f"{query} |~ {logql_string(error_filter)}"
    return query
