"""Splitting a byte stream into capped, decoded lines: the one place sources turn bytes into text.

Every local source (file, command, stdin) reads raw chunks and feeds them here, so the rules are
the same everywhere: UTF-8 with replacement, NUL bytes kept, one trailing CR stripped (CRLF logs
from containers and Windows hosts), and a hard cap per line that never holds an over-long line
in memory whole.
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from operator import add
from typing import Any

from watcher.metrics import Metrics
from watcher.model import RawLine

# Large reads amortise the per-call cost of the syscall and of the split/decode below.
READ_CHUNK = 1024 * 1024
# Per-line async iteration is the expensive part downstream; a few thousand lines per batch
# keeps the per-batch overhead negligible while bounding the memory of one batch.
MAX_BATCH = 2000
# ...and a batch holds at most this many bytes of lines (at least one line), so that a queue of
# `queue_size` batches is bounded in bytes: by line count alone, 64 batches of 600-byte lines held
# ~100 MB of text while the pipeline lagged.
MAX_BATCH_BYTES = 256 * 1024


@dataclass(slots=True)
class Lines:
    """Complete lines split from a stream, with the stream offset just past each one."""

    texts: list[str] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    truncated: list[int] = field(default_factory=list)  # indices into texts

    def __len__(self) -> int:
        return len(self.texts)

    def extend(self, other: Lines) -> None:
        """Append `other`'s lines after these."""
        base = len(self.texts)
        self.texts.extend(other.texts)
        self.ends.extend(other.ends)
        self.truncated.extend(base + i for i in other.truncated)


def decode(data: bytes) -> str:
    """One line's bytes as text: invalid UTF-8 replaced, NULs kept, a trailing CR dropped."""
    text = data.decode("utf-8", "replace")
    return text[:-1] if text.endswith("\r") else text


def cap_bytes(data: bytes, limit: int) -> bytes:
    """The first `limit` bytes, backed off so a multi-byte character is not cut in half."""
    if len(data) <= limit:
        return data
    cut = limit
    # A UTF-8 continuation byte is 0b10xxxxxx; back off over at most three of them.
    while cut > max(0, limit - 3) and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut]


class LineSplitter:
    """Turns fed chunks into complete lines, keeping at most `max_line_bytes` of any one line.

    Call `take` after every `feed` until it returns no lines: the buffer then holds only a
    partial line, so memory stays bounded by one chunk plus the cap even for a line of many
    megabytes (its tail is counted and discarded, never stored). `flush` at EOF emits a
    final line that has no newline.

    The complete lines of a fed chunk are split and decoded all at once, in C (one decode and
    one str.split of the chunk, the ends summed by itertools), and `take` hands them out in
    batches: splitting `want` lines off the buffer per take, decoding each line in a Python
    loop and copying the rest of the buffer each time cost ~1 us a line.
    """

    def __init__(self, max_line_bytes: int, offset: int = 0) -> None:
        self._cap = max(1, max_line_bytes)
        self._buf = b""  # bytes not yet split: a partial line once the chunk is split
        self._base = offset  # stream offset of _buf[0]
        self._head: bytes | None = None  # kept start of an over-long line whose tail we skip
        self._skipped = 0  # bytes of that line seen so far beyond the head
        self._long: tuple[bytes, int] | None = None  # a finished over-long line: head, its end
        self._done = offset
        self._lines = Lines()  # split from _buf, not yet taken: from index _next on
        self._next = 0
        self._start = offset  # stream offset where _lines' first line starts (if any)

    @property
    def offset(self) -> int:
        """The stream offset just past the last line `take` or `flush` returned."""
        return self._done

    @property
    def pending(self) -> bool:
        """True while bytes of an unfinished line (or unreturned lines) are buffered."""
        return (
            bool(self._buf)
            or self._head is not None
            or self._long is not None
            or self._next < len(self._lines)
        )

    def feed(self, data: bytes) -> None:
        """Add the next chunk of the stream."""
        if self._head is not None:
            i = data.find(b"\n")
            if i < 0:
                self._skipped += len(data)
                return
            end = self._base + len(self._head) + self._skipped + i + 1
            self._long = (self._head, end)
            self._head, self._skipped = None, 0
            self._base = end
            data = data[i + 1 :]
        self._buf = self._buf + data if self._buf else data

    def take(self, max_lines: int = MAX_BATCH, max_bytes: int = MAX_BATCH_BYTES) -> Lines:
        """Up to `max_lines` complete lines of at most `max_bytes` in all (but at least one),
        oldest first."""
        out = Lines()
        if self._long is not None:
            head, end = self._long
            self._long = None
            head = cap_bytes(head, self._cap)
            out.texts.append(decode(head))
            out.ends.append(end)
            out.truncated.append(0)
            max_bytes -= len(head) + 1
        want = max_lines - len(out)
        if want <= 0:
            return self._done_with(out)
        self._split_buffer()
        first, left = self._next, len(self._lines) - self._next
        # where the next line starts: the buffer's start once every split line is taken
        start = self._lines.ends[first - 1] if first else self._start if left else self._base
        if self._base + len(self._buf) - start > max_bytes:  # more than max_bytes are held
            # the lines that end within max_bytes of the first one's start (at least one line)
            fits = bisect_right(self._lines.ends, start + max_bytes, first, first + left) - first
            want = min(want, fits if fits or out else 1)
        if want > 0 and (left or self._buf):
            self._hand_out(out, min(want, left))
            # asked for more lines than there were: the rest of the buffer is a partial line
            if left < want and len(self._buf) > self._cap:
                self._start_skipping()
        return self._done_with(out)

    def _done_with(self, out: Lines) -> Lines:
        if out.ends:
            self._done = out.ends[-1]
        return out

    def _hand_out(self, out: Lines, count: int) -> None:
        """Move the next `count` split lines to `out`."""
        lines, first = self._lines, self._next
        stop = first + count
        base = len(out)
        out.texts.extend(lines.texts[first:stop])
        out.ends.extend(lines.ends[first:stop])
        if lines.truncated:
            out.truncated.extend(base + i - first for i in lines.truncated if first <= i < stop)
        if stop < len(lines):
            self._next = stop
        else:  # every split line handed out: the next split starts afresh
            self._lines, self._next = Lines(), 0

    def flush(self) -> Lines:
        """Every remaining line, including a final one without a newline (call at EOF)."""
        out = self.take(sys.maxsize, sys.maxsize)
        if self._head is not None:
            end = self._base + len(self._head) + self._skipped
            out.texts.append(decode(self._head))
            out.ends.append(end)
            out.truncated.append(len(out.texts) - 1)
            self._head, self._skipped, self._base = None, 0, end
        elif self._buf:
            self._split_into(out, [self._buf], b"\r" in self._buf)
            # EOF, not a newline, ended this line: its end has no terminator byte.
            out.ends[-1] -= 1
            self._base -= 1
            self._buf = b""
        if out.ends:
            self._done = out.ends[-1]
        return out

    def _split_buffer(self) -> None:
        """Split every complete line of the buffer onto the lines not yet taken."""
        buf = self._buf
        last = buf.rfind(b"\n")
        if last < 0:
            return
        if not self._lines:
            self._start = self._base
        self._buf = buf[last + 1 :]
        if buf.isascii():  # a character is a byte: the texts' lengths give the ends
            texts = buf.decode("ascii").split("\n")
            texts.pop()
            self._add(self._lines, texts, texts, b"\r" in buf)
        else:  # a newline is never part of an invalid sequence: "\n" splits text as bytes
            parts = buf.split(b"\n")
            parts.pop()
            texts = buf.decode("utf-8", "replace").split("\n")
            texts.pop()
            self._add(self._lines, texts, parts, b"\r" in buf)

    def _add(
        self, out: Lines, texts: list[str], parts: list[str] | list[bytes], has_cr: bool
    ) -> None:
        """Append lines (`texts`, decoded from the raw `parts`) that start at _base."""
        base = self._base
        lengths = list(map(len, parts))
        out.ends.extend(map(add, accumulate(lengths), range(base + 1, base + 1 + len(parts))))
        self._base = out.ends[-1]
        if max(lengths) > self._cap:
            raw = [p.encode() if isinstance(p, str) else p for p in parts]
            first = len(out.texts)
            for i, part in enumerate(raw):
                if len(part) > self._cap:
                    out.truncated.append(first + i)
                    texts[i] = cap_bytes(part, self._cap).decode("utf-8", "replace")
        if has_cr:
            texts = [t[:-1] if t.endswith("\r") else t for t in texts]
        out.texts.extend(texts)

    def _split_into(self, out: Lines, parts: list[bytes], has_cr: bool) -> None:
        if not parts:
            return
        base = self._base
        first = len(out.texts)
        out.ends.extend([base := base + len(p) + 1 for p in parts])
        self._base = base
        cap = self._cap
        if max(map(len, parts)) > cap:
            for i, part in enumerate(parts):
                if len(part) > cap:
                    out.truncated.append(first + i)
                    parts[i] = cap_bytes(part, cap)
        # Inline decode: a function call per line would cost more than the decode itself.
        texts = [p.decode("utf-8", "replace") for p in parts]
        if has_cr:
            texts = [t[:-1] if t.endswith("\r") else t for t in texts]
        out.texts.extend(texts)

    def _start_skipping(self) -> None:
        self._head = cap_bytes(self._buf, self._cap)
        self._skipped = len(self._buf) - len(self._head)
        self._buf = b""


def count_truncated(metrics: Metrics, source: str, lines: Lines) -> None:
    """Count the over-long lines of a split in watcher_truncated_lines_total."""
    if lines.truncated:
        metrics.truncated_lines.labels(source).inc(len(lines.truncated))


def raw_lines(
    lines: Lines,
    source: str,
    stream: str,
    first_line_no: int,
    cursor: Callable[[int, int], Any] | None = None,
) -> list[RawLine]:
    """RawLines for a split: line numbers from `first_line_no`, cursor(end, line_no) if given."""
    if cursor is None:
        out = [
            RawLine(text, source, stream, None, n)
            for n, text in enumerate(lines.texts, first_line_no)
        ]
    else:
        out = [
            RawLine(text, source, stream, cursor(end, n), n)
            for n, text, end in zip(
                range(first_line_no, first_line_no + len(lines)),
                lines.texts,
                lines.ends,
                strict=True,
            )
        ]
    for i in lines.truncated:
        out[i].truncated = True
    return out
