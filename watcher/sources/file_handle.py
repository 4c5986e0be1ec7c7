"""One open file of the file source: its descriptor, identity, and how far it has been read."""

from __future__ import annotations

import os
import time
from itertools import repeat
from typing import Any

from watcher.model import LineBatch, RawLine
from watcher.sources.file_identity import (
    HEAD_BYTES,
    CursorBase,
    Ident,
    cursor,
    head_tag,
    ident_key,
)
from watcher.sources.lines import READ_CHUNK, Lines, LineSplitter

# Counting lines before a read_from="end" start gives real line numbers; past this size the
# startup cost is not worth it and line numbers stay unknown (0).
COUNT_LINES_UP_TO = 256 * 1024 * 1024


def count_lines(fd: int, upto: int) -> int | None:
    """The newlines in the first `upto` bytes (None for files too large to be worth it)."""
    if upto > COUNT_LINES_UP_TO:
        return None
    count, pos = 0, 0
    while pos < upto:
        data = os.pread(fd, min(READ_CHUNK, upto - pos), pos)
        if not data:
            break
        count += data.count(b"\n")
        pos += len(data)
    return count


class OpenFile:
    """One open file: its descriptor, identity and how far its lines have been read."""

    def __init__(self, fd: int, ident: Ident, offset: int, line_no: int | None, cap: int) -> None:
        self.fd = fd
        self.ident = ident
        self.key = ident_key(ident)
        self.read_pos = offset
        self.line_no = line_no  # lines before the next one; None when unknown
        self.cap = cap
        self.splitter = LineSplitter(cap, offset)
        self.head = b""  # the file's first bytes read so far, up to HEAD_BYTES
        self.tag = head_tag(b"")
        self.checked: tuple[int, int] | None = None  # (size, mtime) of the last rewrite check
        self.last_data = time.monotonic()
        self.seen_size = offset  # the largest size stat showed: bytes a truncate may take
        self._cursor_base: CursorBase | None = None
        self._grow_head()

    def read(self, max_lines: int) -> Lines:
        """Up to max_lines complete lines; empty at EOF (a partial last line stays buffered)."""
        lines = self.splitter.take(max_lines)
        while not lines.texts:
            data = os.pread(self.fd, READ_CHUNK, self.read_pos)
            if not data:
                break
            self.read_pos += len(data)
            self.seen_size = max(self.seen_size, self.read_pos)
            self.last_data = time.monotonic()
            self.splitter.feed(data)
            lines = self.splitter.take(max_lines)
        self._grow_head()
        return lines

    def _grow_head(self) -> None:
        if len(self.head) < HEAD_BYTES and self.read_pos > len(self.head):
            self.head = os.pread(self.fd, min(HEAD_BYTES, self.read_pos), 0)
            self.tag = head_tag(self.head)

    def replaced(self, st: os.stat_result) -> bool:
        """True when the file at our identity is no longer what we read: truncated, or its head
        rewritten (a copytruncate refilled past our position before we looked)."""
        if st.st_size < self.read_pos:
            return True
        if not self.head or self.checked == (st.st_size, st.st_mtime_ns):
            return False
        self.checked = (st.st_size, st.st_mtime_ns)
        return os.pread(self.fd, len(self.head), 0) != self.head

    def restart(self) -> None:
        """Back to offset 0 after the file was truncated or rewritten in place (copytruncate)."""
        self.read_pos = 0
        self.line_no = 0
        self.seen_size = 0
        self.splitter = LineSplitter(self.cap, 0)
        self.head, self.tag, self.checked = b"", head_tag(b""), None

    def position(self, stream: str) -> dict[str, Any]:
        """The cursor of where reading stands (no line carries it: a read_from="end" start)."""
        offset, line = self.splitter.offset, self.line_no or 0
        return cursor(self.ident, self.key, offset, line, self.tag, stream)

    def to_raw(self, lines: Lines, source: str, stream: str) -> LineBatch:
        """RawLines with this file's (lazy) cursors, all of `stream`; advances the line count."""
        first, count = self.line_no, len(lines)
        # line numbers are unknown (0) when a start at the end did not count the lines before
        numbers = [0] * count if first is None else range(first + 1, first + 1 + count)
        # built by map and zip: the loop and the cursor tuples stay in C, RawLine's __init__
        # is the only Python run per line
        cursors = zip(repeat(self._base(stream), count), lines.ends, numbers, strict=True)
        out = LineBatch(
            map(RawLine, lines.texts, repeat(source), repeat(stream), cursors, numbers),
            len(lines.truncated),
        )
        if first is not None:
            self.line_no = first + count
        for i in lines.truncated:
            out[i].truncated = True
        return out

    def _base(self, stream: str) -> CursorBase:
        """The shared part of the cursors of lines read now as `stream` (one object per batch
        at most: the head tag grows with the first reads, a rotated file changes stream)."""
        base = self._cursor_base
        if base is None or base.head != self.tag or base.stream != stream:
            base = self._cursor_base = CursorBase(self.ident, self.key, self.tag, stream)
        return base

    def close(self) -> None:
        """Close the descriptor."""
        os.close(self.fd)
