"""The file source: `tail -F` over a path or glob, resuming by file identity.

Files are tracked by identity (st_dev, st_ino + the first bytes: see file_identity), not by name,
so a rename rotation neither loses the old file's tail nor re-reads it when the rotated name also
matches the glob, and a restart finds each file's cursor whatever it is called now. Each path is
a stream; its cursor is {"inode", "dev", "offset" (just past the line), "line", "head"}. Polling
with os.stat keeps us free of inotify and works on network filesystems; blocking work runs in a
thread, one call per poll round over every file.

A rotated-away file is kept open for LINGER seconds after its last line, because the writer
often goes on writing to it until it reopens the path (logrotate's postrotate signal). A file
quiet for `close_inactive` is closed and re-opened by identity when it grows; at most
`max_open_files` descriptors are held (Filebeat's close_inactive and harvester_limit).
"""

from __future__ import annotations

import asyncio
import fnmatch
import glob
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from watcher.backoff import sleep_or_shutdown
from watcher.configschema import Seconds
from watcher.fdlimit import fd_budget
from watcher.logs import Throttled
from watcher.model import RawLine
from watcher.sources.base import Check, SourceContext
from watcher.sources.file_follower import QUIET_POLL, Follower, Shared
from watcher.sources.file_handle import OpenFile
from watcher.sources.file_identity import (
    STARTED,
    Ident,
    Resume,
    find_copy,
    find_ident,
    ident_key,
    ident_of,
    open_ro,
    pick,
    resume_index,
    rotation_stem,
    stat_or_none,
)
from watcher.sources.lines import MAX_BATCH

__all__ = ["FileSource", "FileSourceConfig"]

# Seconds between log lines about the same problem (one line, with a count, per interval).
LOG_EVERY = 60.0
# Batches read per thread hop. A hop per 2,000-line batch handed the GIL back and forth with the
# pipeline ~500 times per million lines (py-spy: the reader thread waited for the GIL in 31 % of
# its samples); each batch stays bounded by MAX_BATCH lines and MAX_BATCH_BYTES, so the queue's
# memory bound is unchanged and a hop holds at most this many more batches.
BATCHES_PER_HOP = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSourceConfig:
    """[[sources]] type = "file": follow files matching `path` (a path or a glob)."""

    type: str = "file"
    name: str = "file"
    path: str
    read_from: str = "end"
    poll_interval: float = 0.25
    exclude: list[str] = field(default_factory=list)
    max_open_files: int = 512
    close_inactive: Seconds = 300.0

    def validate(self) -> None:
        """Raise ValueError("key: problem") for values no file source can run with."""
        if not self.path:
            raise ValueError("path: must not be empty")
        if self.read_from not in ("end", "beginning"):
            raise ValueError('read_from: must be "end" or "beginning"')
        if not self.poll_interval > 0:
            raise ValueError("poll_interval: must be greater than 0")
        if self.max_open_files < 1:
            raise ValueError("max_open_files: must be at least 1")
        if not self.close_inactive > 0:
            raise ValueError("close_inactive: must be greater than 0")

    async def probe(self) -> list[Check]:
        """`check-config --probe`: the files the path matches, readable."""
        from watcher.sources.probes import file_source

        return await file_source(self)

    def build(self, ctx: SourceContext) -> FileSource:
        """The source this config describes."""
        self.validate()
        return FileSource(self, ctx)


class FileSource:
    """Follows (lines) or scans (window) the files matching a path or glob."""

    delivery = "at_least_once"

    def __init__(self, config: FileSourceConfig, ctx: SourceContext) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.name
        self.shared = Shared()
        self.followers: dict[str, Follower] = {}
        self.is_glob = any(c in config.path for c in "*?[")
        self.opened = 0  # descriptors held now (at most max_open_files)
        # half of what the descriptor limit leaves: the rest is for HTTP, the store, …
        self.max_open_files = fd_budget(config.max_open_files, 0.5)
        self.notes: dict[str, Any] = {}  # positions to store that no line carries (None: forget)
        self.throttled = Throttled(ctx.log, LOG_EVERY)
        self._next = 0  # the follower the next round starts with (round robin)
        self._rescans = 0
        self.rescan_every = min(1.0, 10 * config.poll_interval)
        self.quiet_poll = min(QUIET_POLL, 20 * config.poll_interval)

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        """Follow every matching file until shutdown."""
        shutdown = self.ctx.shutdown
        await asyncio.to_thread(self._start_following)
        up = self.ctx.metrics.source_up.labels(self.name)
        positioned = False
        last_scan = time.monotonic()
        try:
            while not shutdown.is_set():
                batches = await asyncio.to_thread(self._poll_rounds, BATCHES_PER_HOP)
                self._send_notes()
                for batch in batches:
                    if shutdown.is_set():
                        return
                    yield batch
                if shutdown.is_set():
                    return
                if not positioned:
                    # files are opened (and a read_from="end" start placed) by their first
                    # poll: only now will every line written from here on be read
                    positioned = True
                now = time.monotonic()
                if now - last_scan >= self.rescan_every:
                    await asyncio.to_thread(self._rescan if self.is_glob else self._survey)
                    last_scan = now
                # up only while some file matches: a typo in `path` reads nothing
                up.set(1 if positioned and self.ctx.status.problem is None else 0)
                if not batches and await sleep_or_shutdown(shutdown, self.config.poll_interval):
                    return
        finally:
            up.set(0)
            for follower in self.followers.values():
                follower.close()

    def _poll_rounds(self, most: int) -> list[list[RawLine]]:
        """Up to `most` batches, each the next round robin finds (in one thread hop); stops at
        the first round that finds nothing."""
        batches = []
        while len(batches) < most and (batch := self._poll_round(MAX_BATCH)):
            batches.append(batch)
        return batches

    def _poll_round(self, max_lines: int) -> list[RawLine]:
        """One pass over the followers, in one thread hop (a hop per file made 1,000 idle files
        cost a fifth of a core): the first batch found, round robin so none starves."""
        followers = list(self.followers.values())
        now = time.monotonic()
        for i in range(len(followers)):
            at = (self._next + i) % len(followers)
            follower = followers[at]
            if follower.next_look > now:
                continue
            batch = follower.poll(max_lines)
            if batch:
                self._next = at + 1
                return batch
            follower.next_look = now + self.quiet_poll if follower.quiet else 0.0
        return []

    def _send_notes(self) -> None:
        if self.notes:
            notes, self.notes = self.notes, {}
            if self.ctx.note is not None:
                self.ctx.note(notes)

    def note(self, stream: str, position: dict[str, Any]) -> None:
        """Store a position no line carries (a read_from="end" start) with the next commit."""
        self.notes[stream] = position

    # --- descriptors: at most max_open_files ------------------------------------------------

    def open_file(self, path: str) -> tuple[int, os.stat_result] | None:
        """A descriptor for `path` within the budget (closing the quietest file if need be)."""
        if self.opened >= self.max_open_files and not self._park_quietest():
            self.throttled(
                "warning",
                "max_open_files reached; files wait until others go quiet",
                key="max_open_files",
                max_open_files=self.max_open_files,
            )
            return None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:  # one line a minute for all files: `suppressed` counts the rest
            self.throttled("warning", "cannot open file", key="open", path=path, error=str(exc))
            return None
        self.opened += 1
        return fd, os.fstat(fd)

    def close_file(self, f: OpenFile | tuple[int, os.stat_result]) -> None:
        """Close a descriptor opened by open_file (or a copy claimed by a follower)."""
        os.close(f.fd if isinstance(f, OpenFile) else f[0])
        self.opened -= 1

    def handle(self, fd: int, ident: Ident, offset: int, line: int | None) -> OpenFile:
        """The reader of an open descriptor, positioned."""
        return OpenFile(fd, ident, offset, line, self.ctx.max_line_bytes)

    def _park_quietest(self) -> bool:
        """Close the open file quiet the longest (at least a second), to make room."""
        now = time.monotonic()
        quiet = [
            f for f in self.followers.values() if f.cur is not None and now - f.cur.last_data >= 1
        ]
        if not quiet:
            return False
        min(quiet, key=lambda f: f.cur.last_data if f.cur else now).park()
        return True

    def count_lost(self, unread: int, mean: float) -> None:
        """Count lines a truncate took before we read them: estimated from the bytes we saw
        and the file's mean line length (lines written after our last look are not seen)."""
        if unread <= 0:
            return
        lost = max(1, round(unread / max(mean, 1.0)))
        self.ctx.metrics.lines_lost.labels(self.name, "copytruncate").inc(lost)
        self.ctx.log.warning("Lines lost to a truncate before they were read.", lines=lost)

    def copy_of_open(self, fd: int, ident: Ident) -> bool:
        """True when this new file starts with the bytes of another file we hold open."""
        for follower in self.followers.values():
            cur = follower.cur
            if cur is None or cur.ident == ident or not cur.head:
                continue
            if os.pread(fd, len(cur.head), 0) == cur.head:
                return True
        return False

    # --- scan mode --------------------------------------------------------------------------

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """Every matching file from its beginning to its current EOF, then stop.

        Raises FileNotFoundError when nothing matches: an empty report for a mistyped path
        would pass a `--fail-on` check while reading nothing."""
        paths = await asyncio.to_thread(self._scan)
        if not paths:
            raise FileNotFoundError(self._no_match())
        for path in paths:
            f = await asyncio.to_thread(self._open_for_scan, path)
            if f is None:
                continue
            try:
                while not self.ctx.shutdown.is_set():
                    batches = await asyncio.to_thread(self._scan_batches, f, path)
                    if not batches:
                        break
                    for batch in batches:
                        yield batch
            finally:
                f.close()
            if self.ctx.shutdown.is_set():
                return

    def _open_for_scan(self, path: str) -> OpenFile | None:
        fd = open_ro(path)
        if fd is None:
            self.ctx.log.warning("cannot open file", path=path)
            return None
        return self.handle(fd, ident_of(os.fstat(fd)), 0, 0)

    def _scan_batches(self, f: OpenFile, path: str) -> list[list[RawLine]]:
        """Up to BATCHES_PER_HOP batches of the file (in one thread hop); [] at its end."""
        batches = []
        while len(batches) < BATCHES_PER_HOP and (batch := self._scan_batch(f, path)):
            batches.append(batch)
        return batches

    def _scan_batch(self, f: OpenFile, path: str) -> list[RawLine]:
        lines = f.read(MAX_BATCH)
        if not lines.texts:
            lines = f.splitter.flush()
        if lines.truncated:
            self.ctx.metrics.truncated_lines.labels(self.name).inc(len(lines.truncated))
        return f.to_raw(lines, self.name, path)

    # --- which files ------------------------------------------------------------------------

    def _scan(self) -> list[str]:
        """The regular files the config selects, sorted, excludes removed."""
        pattern = self.config.path
        paths = sorted(glob.glob(pattern)) if self.is_glob else [pattern]
        return [p for p in paths if not self._excluded(p) and os.path.isfile(p)]

    def _no_match(self) -> str:
        excluded = " (after exclude)" if self.config.exclude else ""
        return f"no file matches path {self.config.path!r}{excluded}"

    def _survey(self, paths: list[str] | None = None) -> None:
        """Publish the files matched now, with offsets, and whether none is (in a thread)."""
        paths = self._scan() if paths is None else paths
        status = self.ctx.status
        problem = None if paths else self._no_match()
        if problem is not None and status.problem is None:
            self.ctx.log.warning("File source matches no file; not ready.", path=self.config.path)
        elif problem is None and status.problem is not None:
            self.ctx.log.info("File source matches files again.", files=len(paths))
        status.problem = problem
        status.targets = [self._target(p) for p in paths]

    def _target(self, path: str) -> dict[str, Any]:
        follower = self.followers.get(path)
        cur = follower.cur if follower is not None else None
        # no stat here: this runs every rescan over every file; sizes are the last ones seen
        offset = size = None
        if cur is not None:
            offset, size = cur.splitter.offset, cur.seen_size
        elif follower is not None and follower.parked is not None:
            offset = size = follower.parked.size
        return {"path": path, "offset": offset, "size": size}

    def _excluded(self, path: str) -> bool:
        base = os.path.basename(path)
        return any(
            fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(base, pat) for pat in self.config.exclude
        )

    def sees(self, ident: Ident) -> bool:
        """True when the glob matches some name of this file (blocking: in a thread)."""
        if not self.is_glob:
            return False
        return any(
            (st := stat_or_none(p)) is not None and ident_of(st) == ident for p in self._scan()
        )

    def _selects(self, path: str) -> bool:
        if self.is_glob:
            return fnmatch.fnmatch(path, self.config.path) and not self._excluded(path)
        return path == self.config.path

    def _follower(self, path: str) -> Follower:
        follower = self.followers.get(path)
        if follower is None:
            start = self.config.read_from if self.shared.first_start else "new"
            follower = self.followers[path] = Follower(self, path, start)
        return follower

    def _rescan(self) -> None:
        """Pick up files new to the glob; forget ones gone for good (in a thread)."""
        paths = self._scan()
        for p in paths:
            if p not in self.followers:
                self.followers[p] = Follower(self, p, "new")
        present = set(paths)
        for p in [p for p, f in self.followers.items() if p not in present and f.idle]:
            del self.followers[p]
        self._survey(paths)
        self._rescans += 1
        if self._rescans % 10:
            return  # forgetting files gone for good can wait: it costs a stat per file
        alive = {ident_of(st) for p in paths if (st := stat_or_none(p)) is not None}
        known = self.shared.known
        for ident in [i for i in known if i not in alive]:
            del known[ident]

    def _start_following(self) -> None:
        """Create a follower per stream; find files moved while we were down (in a thread).

        read_from applies only on the very first start (no checkpoint stored): after that, a
        file without a cursor appeared while watcher was down and is read from its beginning.
        Every stored cursor is then re-stored under its file's identity (or forgotten when its
        file is gone), so the checkpoint holds one row per file that still exists.
        """
        checkpoint = self.ctx.checkpoint if isinstance(self.ctx.checkpoint, dict) else {}
        self.shared.first_start = not checkpoint
        resumes = resume_index(checkpoint)
        paths = self._scan()
        for p in paths:
            self._follower(p)
        self._survey(paths)
        if not self.is_glob:  # tail -F: wait for a file that does not exist yet (read it all)
            self.followers.setdefault(self.config.path, Follower(self, self.config.path, "new"))
        if self.shared.first_start:
            self.note(STARTED, {"read_from": self.config.read_from, "at": time.time()})
            return
        at = {ident_of(st): p for p in paths if (st := stat_or_none(p)) is not None}
        streams = {r.path_stream for rs in resumes.values() for r in rs}
        dirs = sorted({os.path.dirname(stream) or "." for stream in streams})
        for key in checkpoint:
            if key != STARTED:
                self.notes[key] = None  # re-stored below under the identity, if still there
        for ident, candidates in resumes.items():
            self._place(ident, candidates, at, dirs)

    def _place(
        self, ident: Ident, resumes: list[Resume], at: dict[Ident, str], dirs: list[str]
    ) -> None:
        """Where a file with stored cursors is now: under a selected path (its follower resumes
        it), renamed elsewhere (drained under the stream it was read as), or truncated with a
        copy beside it (the copy drained from the cursor's offset)."""
        best = max(resumes, key=lambda r: r.offset)
        path = at.get(ident) or find_ident(dirs, ident)
        found = None
        if path is not None and (opened := self.open_file(path)) is not None:
            fd, st = opened
            resume = pick(fd, st.st_size, resumes)
            if resume is not None and ident in at:
                self.close_file(opened)  # its follower opens it and resumes there
                self.shared.resumes[ident] = [resume]
                self.note(ident_key(ident), resume.cursor(ident))
                return
            if resume is not None:
                found, best = (fd, ident), resume
            else:
                self.close_file(opened)
        if found is None and best.head is not None:
            stem = rotation_stem(best.path_stream)
            found = find_copy(dirs, best.head, best.offset, set(self.shared.owned), stem)
            if found is not None:
                self.opened += 1
        if found is None:
            return  # gone: its cursor is forgotten
        fd, claimed = found
        self.ctx.log.info("file rotated while stopped", path=best.path_stream)
        self.shared.owned.add(claimed)
        self.note(ident_key(claimed), best.cursor(claimed))
        self._follower(best.path_stream).draining.append(
            self.handle(fd, claimed, best.offset, best.line)
        )
