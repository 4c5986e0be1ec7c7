"""The line splitter as it was before issue 15's reader work (main 95db93c), kept as the
reference the faster `watcher.sources.lines.LineSplitter` must equal on every input and every
call sequence (tests/test_splitter_equivalence.py): the same lines, ends, truncation marks and
batches. It split `want` lines off the buffer per take and decoded each line on its own.
"""

from __future__ import annotations

import sys

from watcher.sources.lines import MAX_BATCH, MAX_BATCH_BYTES, Lines, cap_bytes, decode


class ReferenceSplitter:
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
