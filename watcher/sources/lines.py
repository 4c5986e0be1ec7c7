"""Splitting a byte stream into capped, decoded lines: the one place sources turn bytes into text.

Every local source (file, command, stdin) reads raw chunks and feeds them here, so the rules are
the same everywhere: UTF-8 with replacement, NUL bytes kept, one trailing CR stripped (CRLF logs
from containers and Windows hosts), and a hard cap per line that never holds an over-long line
in memory whole.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
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
    """

    def __init__(self, max_line_bytes: int, offset: int = 0) -> None:
        self._cap = max(1, max_line_bytes)
        self._buf = b""
        self._base = offset  # stream offset of _buf[0]
        self._head: bytes | None = None  # kept start of an over-long line whose tail we skip
        self._skipped = 0  # bytes of that line seen so far beyond the head
        self._long: tuple[bytes, int] | None = None  # a finished over-long line: head, its end
        self._done = offset

    @property
    def offset(self) -> int:
        """The stream offset just past the last line `take` or `flush` returned."""
        return self._done

    @property
    def pending(self) -> bool:
        """True while bytes of an unfinished line (or unreturned lines) are buffered."""
        return bool(self._buf) or self._head is not None or self._long is not None

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
        if want > 0 and len(self._buf) > max_bytes:
            cut = self._buf.rfind(b"\n", 0, max(0, max_bytes))
            fits = self._buf.count(b"\n", 0, cut + 1) if cut >= 0 else 0 if out else 1
            want = min(want, fits)
        if want > 0 and self._buf:
            has_cr = b"\r" in self._buf  # one memchr instead of a check per line
            parts = self._buf.split(b"\n", want)
            # Fewer parts than asked for means every newline was used: the rest is partial.
            partial = len(parts) <= want
            self._buf = parts.pop()
            self._split_into(out, parts, has_cr)
            if partial and len(self._buf) > self._cap:
                self._start_skipping()
        if out.ends:
            self._done = out.ends[-1]
        return out

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
