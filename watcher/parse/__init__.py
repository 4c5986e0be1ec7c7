"""Parse: physical lines -> LogEvents (format detection, multi-line assembly, stack traces).

Pure and synchronous: nothing here does I/O or touches asyncio.
"""

from watcher.parse.formats import FALLBACK_KEY, is_fallback, parse_line
from watcher.parse.multiline import Assembler
from watcher.parse.traces import Trace, is_in_app, parse_trace

__all__ = [
    "FALLBACK_KEY",
    "Assembler",
    "Trace",
    "is_fallback",
    "is_in_app",
    "parse_line",
    "parse_trace",
]
