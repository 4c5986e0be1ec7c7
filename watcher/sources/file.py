"""The file source: `tail -F` over a path or glob, resuming from inode + offset.

Files are tracked by identity (st_dev, st_ino), not by name, so a rename rotation neither loses
the old file's tail nor re-reads it when the rotated name also matches the glob. Each path is a
stream; its cursor is {"inode", "dev", "offset" (just past the line), "line", "head"}. Polling
with os.stat keeps us free of inotify and works on network filesystems; blocking reads run in a
thread, one bounded batch per call.

An inode number says which file it is only while the file exists: filesystems such as ext4 hand
a freed number to the next new file at once. So each file's first bytes ("head") are remembered
too, and a file whose head changed is a different file, read from 0: a re-created file that got
the old number back, or a copytruncate whose new content outgrew the old read position before we
looked. A rotated-away file is kept open for LINGER seconds after its last line, because the
writer often goes on writing to it until it reopens the path (logrotate's postrotate signal).
"""

from __future__ import annotations

import asyncio
import fnmatch
import glob
import os
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from watcher.model import RawLine
from watcher.sources.base import SourceContext, sleep_or_shutdown
from watcher.sources.lines import MAX_BATCH, READ_CHUNK, Lines, LineSplitter

Ident = tuple[int, int]  # (st_dev, st_ino)

# Counting lines before a read_from="end" start gives real line numbers; past this size the
# startup cost is not worth it and line numbers stay unknown (0).
_COUNT_LINES_UP_TO = 256 * 1024 * 1024
# While data keeps flowing we never sleep, so rescan the glob on this clock as well.
_BUSY_RESCAN_SECONDS = 1.0
# Bytes at the start of a file that tell it from another file that got the same inode number.
HEAD_BYTES = 256
# Seconds a rotated-away file stays open after its last line, for the writer's late lines.
LINGER = 5.0
# A rotated file's late lines are their own stream: they never interleave with the new file's
# lines in one multi-line record, and its cursors never move the path's stream backwards.
ROTATED_SUFFIX = " (rotated)"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSourceConfig:
    """[[sources]] type = "file": follow files matching `path` (a path or a glob)."""

    type: str = "file"
    name: str = "file"
    path: str
    read_from: str = "end"
    poll_interval: float = 0.25
    exclude: list[str] = field(default_factory=list)

    def validate(self) -> None:
        """Raise ValueError("key: problem") for values no file source can run with."""
        if not self.path:
            raise ValueError("path: must not be empty")
        if self.read_from not in ("end", "beginning"):
            raise ValueError('read_from: must be "end" or "beginning"')
        if not self.poll_interval > 0:
            raise ValueError("poll_interval: must be greater than 0")

    def build(self, ctx: SourceContext) -> FileSource:
        """The source this config describes."""
        self.validate()
        return FileSource(self, ctx)


def _ident(st: os.stat_result) -> Ident:
    return (st.st_dev, st.st_ino)


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


Resume = tuple[Ident, int, int, str | None]  # identity, offset, line, head tag


def _valid_cursor(cursor: Any) -> Resume | None:
    """(identity, offset, line, head) from a stored cursor, or None when it is not one of ours."""
    if not isinstance(cursor, dict):
        return None
    ino, dev, off, line = (cursor.get(k) for k in ("inode", "dev", "offset", "line"))
    if not all(isinstance(v, int) for v in (ino, dev, off)) or off < 0:
        return None
    head = cursor.get("head")  # absent in cursors written before it existed
    line = line if isinstance(line, int) and line >= 0 else 0
    return (dev, ino), off, line, head if isinstance(head, str) else None


def _head_tag(head: bytes) -> str:
    return f"{len(head)}:{zlib.crc32(head):08x}"


def _has_head(fd: int, tag: str | None) -> bool:
    """True when the file starts with the bytes `tag` describes (or there is no tag)."""
    if tag is None:
        return True
    size, _, _ = tag.partition(":")
    return size.isdigit() and _head_tag(os.pread(fd, int(size), 0)) == tag


def _count_lines(fd: int, upto: int) -> int | None:
    if upto > _COUNT_LINES_UP_TO:
        return None
    count, pos = 0, 0
    while pos < upto:
        data = os.pread(fd, min(READ_CHUNK, upto - pos), pos)
        if not data:
            break
        count += data.count(b"\n")
        pos += len(data)
    return count


class _OpenFile:
    """One open file: its descriptor, identity and how far its lines have been read."""

    def __init__(self, fd: int, ident: Ident, offset: int, line_no: int | None, cap: int) -> None:
        self.fd = fd
        self.ident = ident
        self.read_pos = offset
        self.line_no = line_no  # lines before the next one; None when unknown
        self.cap = cap
        self.splitter = LineSplitter(cap, offset)
        self.head = b""  # the file's first bytes read so far, up to HEAD_BYTES
        self.tag = _head_tag(b"")
        self.checked: tuple[int, int] | None = None  # (size, mtime) of the last rewrite check
        self.last_data = time.monotonic()
        self._grow_head()

    def read(self, max_lines: int) -> Lines:
        """Up to max_lines complete lines; empty at EOF (a partial last line stays buffered)."""
        lines = self.splitter.take(max_lines)
        while not lines.texts:
            data = os.pread(self.fd, READ_CHUNK, self.read_pos)
            if not data:
                break
            self.read_pos += len(data)
            self.last_data = time.monotonic()
            self.splitter.feed(data)
            lines = self.splitter.take(max_lines)
        self._grow_head()
        return lines

    def _grow_head(self) -> None:
        if len(self.head) < HEAD_BYTES and self.read_pos > len(self.head):
            self.head = os.pread(self.fd, min(HEAD_BYTES, self.read_pos), 0)
            self.tag = _head_tag(self.head)

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
        self.splitter = LineSplitter(self.cap, 0)
        self.head, self.tag, self.checked = b"", _head_tag(b""), None

    def to_raw(self, lines: Lines, source: str, stream: str) -> list[RawLine]:
        """RawLines with this file's cursors; advances the line count."""
        dev, ino = self.ident
        first, tag = self.line_no, self.tag
        if first is None:
            out = [
                RawLine(t, source, stream, _cursor(ino, dev, e, 0, tag), 0)
                for t, e in zip(lines.texts, lines.ends, strict=True)
            ]
        else:
            out = [
                RawLine(t, source, stream, _cursor(ino, dev, e, n, tag), n)
                for n, t, e in zip(
                    range(first + 1, first + 1 + len(lines)), lines.texts, lines.ends, strict=True
                )
            ]
            self.line_no = first + len(out)
        for i in lines.truncated:
            out[i].truncated = True
        return out

    def close(self) -> None:
        os.close(self.fd)


def _cursor(ino: int, dev: int, offset: int, line: int, head: str) -> dict[str, Any]:
    return {"inode": ino, "dev": dev, "offset": offset, "line": line, "head": head}


@dataclass
class _Shared:
    """What the followers of one source must agree on, so no file is read twice."""

    owned: set[Ident] = field(default_factory=set)  # open by some follower right now
    # files let go of that still have a name: where reading stopped (offset, line, head)
    known: dict[Ident, tuple[int, int | None, bytes]] = field(default_factory=dict)


class _Follower:
    """`tail -F` of one path (one stream): drains rotated-away files before the new one."""

    def __init__(self, source: FileSource, path: str, start: str) -> None:
        self.source = source
        self.path = path
        self.start = start  # first open: "end" | "beginning" | "resume"; later opens read from 0
        self.resume: Resume | None = None
        self.cur: _OpenFile | None = None
        self.draining: list[_OpenFile] = []  # rotated away, not yet read to the end
        self.lingering: list[_OpenFile] = []  # rotated away and read: late lines still come
        self.warned = False

    @property
    def idle(self) -> bool:
        return self.cur is None and not self.draining and not self.lingering

    def poll(self, max_lines: int) -> list[RawLine]:
        """The next batch of this stream (blocking: run in a thread); [] when none is ready."""
        while self.draining:
            old = self.draining[0]
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
        st = _stat(self.path)
        cur = self.cur
        if cur is not None and (st is None or _ident(st) != cur.ident):
            self.draining.append(cur)
            self.cur = None
            return self.poll(max_lines)
        if cur is not None and st is not None and cur.replaced(st):
            self.source.ctx.log.info("file truncated, reading from the start", path=self.path)
            lines = cur.splitter.flush()
            cur.restart()
            if lines.texts:
                return self._emit(cur, lines)
        if cur is None and st is not None:
            cur = self.cur = self._open(st)
        return self._emit(cur, cur.read(max_lines)) if cur is not None else []

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

    def _emit(self, f: _OpenFile, lines: Lines, stream: str | None = None) -> list[RawLine]:
        if lines.truncated:
            self.source.ctx.metrics.truncated_lines.labels(self.source.name).inc(
                len(lines.truncated)
            )
        return f.to_raw(lines, self.source.name, stream or self.path)

    def _release(self, f: _OpenFile) -> None:
        shared = self.source.shared
        shared.owned.discard(f.ident)
        if os.fstat(f.fd).st_nlink:
            shared.known[f.ident] = (f.splitter.offset, f.line_no, f.head)
        else:  # deleted: once closed, its inode number can go to a new file
            shared.known.pop(f.ident, None)
        f.close()

    def _open(self, st: os.stat_result) -> _OpenFile | None:
        shared = self.source.shared
        if _ident(st) in shared.owned:
            return None  # another follower is still reading it under its old name
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            if not self.warned:
                self.source.ctx.log.warning("cannot open file", path=self.path, error=str(exc))
                self.warned = True
            return None
        fst = os.fstat(fd)
        ident = _ident(fst)
        if ident in shared.owned:
            os.close(fd)
            return None
        offset, line = self._start_at(fd, ident, fst.st_size)
        shared.owned.add(ident)
        self.warned = False
        return _OpenFile(fd, ident, offset, line, self.source.ctx.max_line_bytes)

    def _start_at(self, fd: int, ident: Ident, size: int) -> tuple[int, int | None]:
        start, resume = self.start, self.resume
        self.start, self.resume = "new", None
        if start == "resume" and resume is not None and resume[0] == ident:
            if size >= resume[1] and _has_head(fd, resume[3]):
                return resume[1], resume[2]
            self.source.ctx.log.info("file replaced while stopped, reading from 0", path=self.path)
            return 0, 0
        known = self.source.shared.known.get(ident)
        if known is not None and known[0] <= size and os.pread(fd, len(known[2]), 0) == known[2]:
            return known[0], known[1]
        if start == "end":
            return size, _count_lines(fd, size)
        return 0, 0


class FileSource:
    """Follows (lines) or scans (window) the files matching a path or glob."""

    delivery = "at_least_once"

    def __init__(self, config: FileSourceConfig, ctx: SourceContext) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.name
        self.shared = _Shared()
        self.followers: dict[str, _Follower] = {}
        self.is_glob = any(c in config.path for c in "*?[")

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        """Follow every matching file until shutdown."""
        shutdown = self.ctx.shutdown
        await asyncio.to_thread(self._start_following)
        up = self.ctx.metrics.source_up.labels(self.name)
        positioned = False
        last_scan = time.monotonic()
        try:
            while not shutdown.is_set():
                busy = False
                for follower in list(self.followers.values()):
                    batch = await asyncio.to_thread(follower.poll, MAX_BATCH)
                    if shutdown.is_set():
                        return
                    if batch:
                        busy = True
                        yield batch
                if not positioned:
                    # files are opened (and a read_from="end" start placed) by their first
                    # poll: only now will every line written from here on be read
                    positioned = True
                    up.set(1)
                now = time.monotonic()
                due = self.config.poll_interval if not busy else _BUSY_RESCAN_SECONDS
                if self.is_glob and now - last_scan >= due:
                    await asyncio.to_thread(self._rescan)
                    last_scan = now
                if not busy and await sleep_or_shutdown(shutdown, self.config.poll_interval):
                    return
        finally:
            up.set(0)
            for follower in self.followers.values():
                follower.close()

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """Every matching file from its beginning to its current EOF, then stop."""
        for path in await asyncio.to_thread(self._scan):
            f = await asyncio.to_thread(self._open_for_scan, path)
            if f is None:
                continue
            try:
                while not self.ctx.shutdown.is_set():
                    batch = await asyncio.to_thread(self._scan_batch, f, path)
                    if not batch:
                        break
                    yield batch
            finally:
                f.close()
            if self.ctx.shutdown.is_set():
                return

    def _scan(self) -> list[str]:
        """The regular files the config selects, sorted, excludes removed."""
        pattern = self.config.path
        paths = sorted(glob.glob(pattern)) if self.is_glob else [pattern]
        return [p for p in paths if not self._excluded(p) and os.path.isfile(p)]

    def _excluded(self, path: str) -> bool:
        base = os.path.basename(path)
        return any(
            fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(base, pat) for pat in self.config.exclude
        )

    def _open_for_scan(self, path: str) -> _OpenFile | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            self.ctx.log.warning("cannot open file", path=path, error=str(exc))
            return None
        return _OpenFile(fd, _ident(os.fstat(fd)), 0, 0, self.ctx.max_line_bytes)

    def _scan_batch(self, f: _OpenFile, path: str) -> list[RawLine]:
        lines = f.read(MAX_BATCH)
        if not lines.texts:
            lines = f.splitter.flush()
        if lines.truncated:
            self.ctx.metrics.truncated_lines.labels(self.name).inc(len(lines.truncated))
        return f.to_raw(lines, self.name, path)

    def _checkpoint(self) -> dict[str, Any]:
        cp = self.ctx.checkpoint
        return cp if isinstance(cp, dict) else {}

    def _start_following(self) -> None:
        """Create a follower per stream; claim files rotated while we were down (in a thread)."""
        paths = self._scan()
        checkpoint = self._checkpoint()
        # a rotated file's late lines: nothing to resume once the daemon let go of the file
        resumable = {s for s in checkpoint if not s.endswith(ROTATED_SUFFIX)}
        streams = set(paths) | {s for s in resumable if self._selects(s)}
        if not self.is_glob:
            streams.add(self.config.path)  # tail -F: wait for a file that does not exist yet
        at: dict[Ident, str] = {}
        for p in paths:
            st = _stat(p)
            if st is not None:
                at[_ident(st)] = p
        for stream in sorted(streams):
            # read_from applies to files there at startup; one created later is new: read it all.
            start = self.config.read_from if stream in paths else "new"
            follower = self.followers[stream] = _Follower(self, stream, start)
            cursor = _valid_cursor(checkpoint.get(stream))
            if cursor is None:
                continue
            st = _stat(stream)
            if st is not None and _ident(st) == cursor[0]:
                follower.start, follower.resume = "resume", cursor
                continue
            # Rotated while we were down: finish the old file if the glob still sees it.
            follower.start = "beginning"
            self.ctx.log.info("file rotated while stopped", path=stream)
            old = at.get(cursor[0])
            if old is not None:
                self._claim_rotated(follower, old, cursor)

    def _claim_rotated(self, follower: _Follower, path: str, cursor: Resume) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return
        st = os.fstat(fd)
        if _ident(st) != cursor[0] or st.st_size < cursor[1] or not _has_head(fd, cursor[3]):
            os.close(fd)
            return
        follower.draining.append(
            _OpenFile(fd, cursor[0], cursor[1], cursor[2], self.ctx.max_line_bytes)
        )
        self.shared.owned.add(cursor[0])

    def sees(self, ident: Ident) -> bool:
        """True when the glob matches some name of this file (blocking: in a thread)."""
        if not self.is_glob:
            return False
        return any((st := _stat(p)) is not None and _ident(st) == ident for p in self._scan())

    def _selects(self, path: str) -> bool:
        if self.is_glob:
            return fnmatch.fnmatch(path, self.config.path) and not self._excluded(path)
        return path == self.config.path

    def _rescan(self) -> None:
        """Pick up files new to the glob; forget ones gone for good (in a thread)."""
        paths = self._scan()
        for p in paths:
            if p not in self.followers:
                self.followers[p] = _Follower(self, p, "new")
        present = set(paths)
        for p in [p for p, f in self.followers.items() if p not in present and f.idle]:
            del self.followers[p]
        alive = {_ident(st) for p in paths if (st := _stat(p)) is not None}
        known = self.shared.known
        for ident in [i for i in known if i not in alive]:
            del known[ident]
