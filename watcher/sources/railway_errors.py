"""What the Railway CLI's failures mean: fatal (no login, unknown service) or transient, and
reporting its diagnostics and exits without flooding the log.

A failure no restart can fix stops the source with one clear line instead of a restart loop;
everything else (network errors, rate limits, a stream the server closed, no deployment yet)
is retried with backoff. The patterns are the CLI's own messages (railwayapp/cli
src/errors.rs, printed to stderr with exit code 1; clap usage errors exit with 2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_AUTH = (
    "unauthorized",
    "not signed in",
    "not logged in",
    "please login",
    "railway login",
    "login state is corrupt",
    "invalid railway_token",
    "invalid railway_api_token",
    "invalid project token",
    "two-factor authentication is required",
)
_TARGET = (
    "no linked project",
    "project not found",
    "project is deleted",
    "environment is deleted",
    "is restricted",
    "no service linked",
    "no service could be found",
    "not found",  # Service "x" not found, Environment "x" not found, Workspace "x" not found
)
_USAGE = ("unexpected argument", "unrecognized subcommand", "invalid value", "usage: railway")
_TRANSIENT = ("failed to fetch", "ratelimited", "rate limit", "no deployments found")
_USAGE_EXIT = 2  # clap's exit code for arguments it cannot parse
_MAX_DETAIL = 240
_SAID_MEMORY = 20  # distinct stderr lines remembered, so a restart loop repeats none at warning

_AUTH_HINT = (
    "run `railway login` as the daemon's user, or set RAILWAY_TOKEN / RAILWAY_API_TOKEN "
    "in its environment"
)
_TARGET_HINT = (
    "set project, environment and service in the source config, or run `railway link` "
    "in the daemon's working directory"
)
_USAGE_HINT = "upgrade the Railway CLI (the source needs `railway logs --json`, CLI v4 or later)"


class RailwayError(RuntimeError):
    """A setup problem no restart fixes; its message is one line saying what to do."""


def fatal_reason(code: int | None, output: Iterable[str]) -> str | None:
    """A one-line explanation when a failed run cannot succeed by retrying, else None."""
    lines = [line.strip() for line in output if line.strip()]
    for line in reversed(lines):
        lower = line.lower()
        if any(word in lower for word in _TRANSIENT):
            return None
        if any(word in lower for word in _AUTH):
            return _explain("Railway refused the CLI's credentials", line, _AUTH_HINT)
        if any(word in lower for word in _TARGET):
            return _explain("the Railway CLI cannot find what to read", line, _TARGET_HINT)
        if any(word in lower for word in _USAGE):
            return _explain("the Railway CLI rejected its arguments", line, _USAGE_HINT)
    if code == _USAGE_EXIT:
        detail = lines[-1] if lines else f"exit code {code}"
        return _explain("the Railway CLI rejected its arguments", detail, _USAGE_HINT)
    return None


def one_line(text: str, limit: int = _MAX_DETAIL) -> str:
    """`text` with whitespace runs collapsed and cut to `limit` characters."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _explain(what: str, detail: str, hint: str) -> str:
    return f"{what} ({one_line(detail)}); {hint}"


def exit_detail(code: int | None, lines: list[str]) -> str:
    """ "the Railway CLI exited with code N: <its last line>", for an unexplained failure."""
    said = f": {one_line(lines[-1])}" if lines else ""
    return f"the Railway CLI exited with code {code}{said}"


class CliReport:
    """Logs what the CLI says and how its runs end; repeats drop to debug (restart loops)."""

    def __init__(self, log: Any, source: str) -> None:
        self.log = log
        self.source = source
        self._said: dict[str, None] = {}  # recent distinct stderr lines, oldest first
        self._last_exit: tuple[object, ...] | None = None

    def said(self, text: str) -> None:
        """One stderr line, as it arrives: a start-up warning shows while the stream runs."""
        line = one_line(text)
        level = "debug" if line in self._said else "warning"
        self._said[line] = None
        while len(self._said) > _SAID_MEMORY:
            del self._said[next(iter(self._said))]
        getattr(self.log, level)("Railway CLI said.", source=self.source, line=line)

    def exited(self, code: int | None, last_lines: list[str], attempt: int) -> None:
        """One line per exit: a failure at warning, a stream the server ended at info."""
        key = (code, *last_lines)
        level = "debug" if key == self._last_exit else ("warning" if code else "info")
        self._last_exit = key
        message = "Railway CLI exited." if code else "Railway log stream ended."
        getattr(self.log, level)(
            message, source=self.source, code=code, attempt=attempt, last_lines=last_lines
        )
