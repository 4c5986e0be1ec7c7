"""The watcher's own logs: structlog; one human line per record on a terminal, JSON otherwise.

Logs go to stderr so `watcher scan`/`replay` keep stdout for the report.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog

from watcher.logs_human import HumanRenderer, use_colour

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# A structlog processor that removes secrets from every value of every record (the redactor's
# `structlog_processor`), so the watcher never prints a secret it read.
Processor = Callable[[Any, str, dict[str, Any]], dict[str, Any]]


def resolve_format(fmt: str) -> str:
    """ "auto" -> "text" when stderr is a terminal (a person reads it), else "json" (a journal,
    a file or a collector reads it)."""
    if fmt == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return fmt


def configure(level: str = "info", fmt: str = "json", *, redact: Processor | None = None) -> None:
    """Set up structlog for the process (idempotent)."""
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    if redact is not None:
        processors.append(redact)
    if resolve_format(fmt) == "text":
        processors.append(HumanRenderer(colour=use_colour(sys.stderr)))
    else:
        processors.append(structlog.processors.JSONRenderer())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


class Throttled:
    """At most one log line per key per `interval` seconds, carrying how many it stands for.

    A failure that repeats per event (every accept() while out of file descriptors, every open of
    a file that cannot be read) must not turn into a log flood that fills the disk: the first
    occurrence is logged at once, the ones after it are counted, and the next line that gets
    through says `suppressed=N`. Keys come from a bounded set (event names, configured paths).
    """

    def __init__(
        self, log: Any, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.log, self.interval, self.clock = log, interval, clock
        self._seen: dict[str, tuple[int, float]] = {}

    def __call__(self, level: str, event: str, key: str | None = None, **fields: Any) -> bool:
        """Log `event` unless this key was logged less than `interval` ago; True when logged."""
        key = event if key is None else key
        now = self.clock()
        suppressed, last = self._seen.get(key, (0, -float("inf")))
        if now - last < self.interval:
            self._seen[key] = (suppressed + 1, last)
            return False
        extra = {"suppressed": suppressed} if suppressed else {}
        getattr(self.log, level)(event, **fields, **extra)
        self._seen[key] = (0, now)
        return True


def loop_exception_handler(log: Any) -> Callable[[Any, dict[str, Any]], None]:
    """An event loop exception handler: asyncio's own reports (an accept() out of file
    descriptors, a transport error) once per minute per message, with a count; never one
    traceback per event."""
    say = Throttled(log, 60.0)

    def handle(_loop: Any, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "event loop error")
        error = context.get("exception")
        say("error", "Event loop error.", key=message, message=message, error=repr(error))

    return handle
