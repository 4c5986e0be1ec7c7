"""One stream of the file source: `tail -F` of one path, and the state its followers share.

A follower reads the file at its path, drains a file rotated away from it (renamed, or copied
and truncated) before the new one, keeps a rotated file open LINGER seconds for the writer's
late lines, and closes a file quiet for `close_inactive` (re-opened by identity when it grows).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from watcher.model import RawLine
from watcher.sources.file_handle import OpenFile, count_lines
from watcher.sources.file_identity import (
    ROTATED_SUFFIX,
    Ident,
    Resume,
    find_copy,
    find_ident,
    head_tag,
    ident_of,
    pick,
    rotation_stem,
    stat_or_none,
)

if TYPE_CHECKING:
    from watcher.sources.file import FileSource

# Seconds a rotated-away file stays open after its last line, for the writer's late lines.
LINGER = 5.0
# A file with nothing new for QUIET_AFTER seconds is looked at every QUIET_POLL seconds (at most)
# instead of every poll: 1,000 idle files must cost next to nothing (Filebeat backs off too).
QUIET_AFTER = 5.0
QUIET_POLL = 1.0
# A new file that starts with the bytes of a file we hold open is probably a copytruncate copy
# made a moment before the truncate: wait this long for the truncate before reading it from 0.
COPY_GRACE = 5.0


@dataclass
class Shared:
    """What the followers of one source must agree on, so no file is read twice."""

    owned: set[Ident] = field(default_factory=set)  # open by some follower right now
    # files let go of that still have a name: where reading stopped (offset, line, head)
    known: dict[Ident, tuple[int, int | None, bytes]] = field(default_factory=dict)
    # stored cursors (from the checkpoint) of files not opened since the start
    resumes: dict[Ident, list[Resume]] = field(default_factory=dict)
    first_start: bool = False  # nothing stored: read_from applies to the files there now


@dataclass(slots=True)
class Parked:
    """A file closed after `close_inactive` of quiet: re-opened by identity when it changes."""

    ident: Ident
    size: int
    mtime: int


class Follower:
    """`tail -F` of one path (one stream): drains rotated-away files before the new one."""

    def __init__(self, source: FileSource, path: str, start: str) -> None:
        self.source = source
        self.path = path
        self.start = start  # first open: "end" | "beginning" | "new" (read from 0)
        self.cur: OpenFile | None = None
        self.parked: Parked | None = None
        self.draining: list[OpenFile] = []  # rotated away, not yet read to the end
        self.lingering: list[OpenFile] = []  # rotated away and read: late lines still come
        self.defer_until = 0.0  # a probable copytruncate copy waits for its truncate
        self.next_look = 0.0  # a quiet file is not looked at again before this

    @property
    def idle(self) -> bool:
        return self.cur is None and not self.draining and not self.lingering

    def poll(self, max_lines: int) -> list[RawLine]:
        """The next batch of this stream (blocking: run in a thread); [] when none is ready."""
        while self.draining:
            old = self.draining[0]
            if old.replaced(os.fstat(old.fd)):  # copytruncated after it was rotated away
                return self._truncated(old) or self.poll(max_lines)
            lines = old.read(max_lines)
            if lines.texts:
                return self._emit(old, lines)
            self.draining.pop(0)
            if self.source.sees(old.ident):
                self._release(old)  # its new name is followed too: that follower takes over
            else:
                self.lingering.append(old)
        if batch := self._late_lines(max_lines):
            return batch
        st = stat_or_none(self.path)
        cur = self.cur
        if cur is not None and (st is None or ident_of(st) != cur.ident):
            self.draining.append(cur)
            self.cur = None
            return self.poll(max_lines)
        if cur is not None and st is not None and cur.replaced(st):
            return self._truncated(cur) or self.poll(max_lines)
        if cur is None and st is not None and self._wants_open(st):
            cur = self.cur = self._open(st)
        if cur is None:
            return []
        if st is not None:
            cur.seen_size = max(cur.seen_size, st.st_size)
            if st.st_size == cur.read_pos and not cur.splitter.pending:
                return self._maybe_park(cur)  # nothing new: no read at all
        batch = self._emit(cur, cur.read(max_lines))
        return batch or self._maybe_park(cur)

    def _maybe_park(self, cur: OpenFile) -> list[RawLine]:
        if time.monotonic() - cur.last_data >= self.source.config.close_inactive:
            self.park()
        return []

    @property
    def quiet(self) -> bool:
        """Following one file that has had nothing new for a while (looked at less often)."""
        cur = self.cur
        if cur is None or self.draining or self.lingering:
            return False
        return time.monotonic() - cur.last_data >= QUIET_AFTER

    def _wants_open(self, st: os.stat_result) -> bool:
        """False while a parked file at our path has not changed since it was closed."""
        parked = self.parked
        if parked is None:
            return True
        if ident_of(st) != parked.ident:
            self.parked = None
            self._reclaim(parked)  # rotated while closed: finish it first
            return not self.draining
        if (st.st_size, st.st_mtime_ns) == (parked.size, parked.mtime):
            return False
        self.parked = None
        known = self.source.shared.known.get(parked.ident)
        if known is not None and st.st_size < known[0]:  # truncated while closed
            offset, line_no, head = known
            self._drain_copy(parked.ident, offset, line_no, head_tag(head), parked.size)
        return True

    def _reclaim(self, parked: Parked) -> None:
        """A closed file was rotated away: find it by identity and drain what it gained."""
        found = find_ident([os.path.dirname(self.path) or "."], parked.ident)
        if found is None or parked.ident in self.source.shared.owned:
            return
        known = self.source.shared.known.get(parked.ident)
        f = self.source.open_file(found)
        if f is None or known is None:
            if f is not None:
                self.source.close_file(f)
            return
        fd, st = f
        if st.st_size <= known[0] or os.pread(fd, len(known[2]), 0) != known[2]:
            self.source.close_file(f)
            return
        self.draining.append(self.source.handle(fd, parked.ident, known[0], known[1]))

    def park(self) -> None:
        """Close the current file after close_inactive of quiet; its identity stays known."""
        cur = self.cur
        if cur is None:
            return
        st = os.fstat(cur.fd)
        self.parked = Parked(cur.ident, st.st_size, st.st_mtime_ns)
        self.cur = None
        self._release(cur)

    def _truncated(self, f: OpenFile) -> list[RawLine]:
        """The file was truncated or rewritten in place (copytruncate): its copy, if it is in
        the same directory, is drained first from where we stopped; the file is read from 0.
        Without a copy, a last line that had no newline yet is what the truncate left us."""
        tag = f.tag if f.head else None
        found = self._drain_copy(
            f.ident, f.splitter.offset, f.line_no, tag, f.seen_size, f.read_pos
        )
        lines = None if found else f.splitter.flush()
        f.restart()
        return self._emit(f, lines) if lines is not None and lines.texts else []

    def _drain_copy(
        self,
        ident: Ident,
        offset: int,
        line_no: int | None,
        tag: str | None,
        seen: int,
        read_pos: int | None = None,
    ) -> bool:
        """After a truncate: drain the copy (a file of the same directory that starts with the
        truncated file's head) from `offset`; count the lines neither file still holds."""
        source = self.source
        copy = None
        if tag is not None:
            skip = source.shared.owned | {ident}
            dirs = [os.path.dirname(self.path) or "."]
            copy = find_copy(dirs, tag, offset, skip, rotation_stem(self.path))
        source.ctx.log.info(
            "file truncated, reading from the start", path=self.path, copy=copy is not None
        )
        # bytes read into memory are still delivered (flushed); what was never read is gone
        unread = seen - (offset if read_pos is None else read_pos)
        if copy is not None:
            fd, found = copy
            source.opened += 1
            source.shared.owned.add(found)
            self.draining.insert(0, source.handle(fd, found, offset, line_no))
            unread = seen - os.fstat(fd).st_size
        mean = offset / line_no if line_no else 100.0
        source.count_lost(unread, mean)
        return copy is not None

    def _late_lines(self, max_lines: int) -> list[RawLine]:
        """Lines written to a rotated-away file after we read it; let go of quiet ones."""
        now = time.monotonic()
        for old in list(self.lingering):
            lines = old.read(max_lines)
            if not lines.texts and now - old.last_data >= LINGER:
                lines = old.splitter.flush()  # a rotated file gets no more newlines
                self.lingering.remove(old)
                self._release(old)
            if lines.texts:
                return self._emit(old, lines, self.path + ROTATED_SUFFIX)
        return []

    def close(self) -> None:
        """Close every descriptor this follower holds."""
        for f in [*self.draining, *self.lingering, *([self.cur] if self.cur else [])]:
            self._release(f)
        self.draining, self.lingering, self.cur = [], [], None

    def _emit(self, f: OpenFile, lines: Any, stream: str | None = None) -> list[RawLine]:
        if lines.truncated:
            self.source.ctx.metrics.truncated_lines.labels(self.source.name).inc(
                len(lines.truncated)
            )
        return f.to_raw(lines, self.source.name, stream or self.path)

    def _release(self, f: OpenFile) -> None:
        shared = self.source.shared
        shared.owned.discard(f.ident)
        if os.fstat(f.fd).st_nlink:
            shared.known[f.ident] = (f.splitter.offset, f.line_no, f.head)
        else:  # deleted: once closed, its inode number can go to a new file
            shared.known.pop(f.ident, None)
        self.source.close_file(f)

    def _open(self, st: os.stat_result) -> OpenFile | None:
        shared = self.source.shared
        if ident_of(st) in shared.owned or time.monotonic() < self.defer_until:
            return None  # another follower is still reading it under its old name
        opened = self.source.open_file(self.path)
        if opened is None:
            return None
        fd, fst = opened
        ident = ident_of(fst)
        if ident in shared.owned:
            self.source.close_file(opened)
            return None
        start = self._start_at(fd, ident, fst.st_size)
        if start is None:
            self.source.close_file(opened)
            return None
        shared.owned.add(ident)
        f = self.source.handle(fd, ident, *start)
        if self.start == "noted":
            self.source.note(f.key, f.position(self.path))
        self.start = "new"
        return f

    def _start_at(self, fd: int, ident: Ident, size: int) -> tuple[int, int | None] | None:
        """Where to start reading a file we open: its cursor, else read_from, else 0."""
        shared = self.source.shared
        resumes = shared.resumes.pop(ident, [])
        known = shared.known.get(ident)
        if known is not None and known[0] <= size and os.pread(fd, len(known[2]), 0) == known[2]:
            return known[0], known[1]
        if (resume := pick(fd, size, resumes)) is not None:
            return resume.offset, resume.line
        if resumes:
            self.source.ctx.log.info("file replaced while stopped, reading from 0", path=self.path)
        if self.start == "end":
            self.start = "noted"
            return size, count_lines(fd, size)
        copy = self.start == "new" and self.source.copy_of_open(fd, ident)
        if copy and not self.defer_until:
            self.defer_until = time.monotonic() + COPY_GRACE
            return None
        self.defer_until = 0.0
        return 0, 0
