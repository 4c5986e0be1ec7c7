"""Telling the Railway CLI's fatal failures (no login, unknown service) from transient ones.

A failure no restart can fix stops the source with one clear line instead of a restart loop;
everything else (network errors, rate limits, a stream the server closed, no deployment yet)
is retried with backoff. The patterns are the CLI's own messages (railwayapp/cli
src/errors.rs, printed to stderr with exit code 1; clap usage errors exit with 2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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
