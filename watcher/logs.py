"""The watcher's own logs: structlog, JSON by default, a console renderer for humans.

Logs go to stderr so `watcher scan`/`replay` keep stdout for the report.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import structlog

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
    if fmt == "text":
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    else:
        processors.append(structlog.processors.JSONRenderer())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
