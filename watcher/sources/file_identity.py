"""Which file is which: identities, head fingerprints, stored cursors, and finding moved files.

A file is (st_dev, st_ino) plus the first bytes it held when we read it (its "head"): an inode
number alone says which file it is only while the file exists, because filesystems such as ext4
hand a freed number to the next new file at once. Vector and Filebeat identify files the same
way. Cursors are keyed by this identity, not by name, so a file renamed while the daemon was
down is resumed under its new name, and one renamed out of the glob (or away from a plain path)
is found again by a scan of its directory. A copytruncate copy is found by its head: it starts
with the bytes the truncated original started with.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Ident = tuple[int, int]  # (st_dev, st_ino)

# Bytes at the start of a file that tell it from another file that got the same inode number.
HEAD_BYTES = 256
# A rotated file's late lines are their own stream: they never interleave with the new file's
# lines in one multi-line record, and its cursors never move the path's stream backwards.
ROTATED_SUFFIX = " (rotated)"
# The checkpoint entry that says this source has run before: read_from applies to the files
# present at the very first start only; a file that appeared while the daemon was down is new.
STARTED = "@started"


def ident_of(st: os.stat_result) -> Ident:
    """The identity part that stat gives: (device, inode)."""
    return (st.st_dev, st.st_ino)


def stat_or_none(path: str) -> os.stat_result | None:
    """os.stat, or None when the path is gone or unreadable."""
    try:
        return os.stat(path)
    except OSError:
        return None


def head_tag(head: bytes) -> str:
    """A short fingerprint of a file's first bytes: "<length>:<crc32>"."""
    return f"{len(head)}:{zlib.crc32(head):08x}"


def has_head(fd: int, tag: str | None) -> bool:
    """True when the file starts with the bytes `tag` describes (or there is no tag)."""
    if tag is None:
        return True
    size, _, _ = tag.partition(":")
    return size.isdigit() and head_tag(os.pread(fd, int(size), 0)) == tag


def ident_key(ident: Ident) -> str:
    """The checkpoint key of a file: its identity, so renames keep the cursor."""
    return f"file:{ident[0]}:{ident[1]}"


def cursor(
    ident: Ident, key: str, offset: int, line: int, head: str, stream: str
) -> dict[str, Any]:
    """A line's cursor: which file, the offset just past the line, its number, the head tag,
    the checkpoint key it is stored under and the stream (path) it was read as."""
    dev, ino = ident
    return {
        "inode": ino, "dev": dev, "offset": offset, "line": line, "head": head,
        "key": key, "stream": stream,
    }


@dataclass(frozen=True, slots=True)
class CursorBase:
    """What the cursors of a run of one file's lines share: all but the offset and the number.

    A line's cursor is the tuple (base, offset, line) (see watcher.pipeline.solid_cursor): a
    7-key dict per line cost a fifth of the reader's time, yet only a few lines' cursors are
    ever read (the last of a batch, an event's last line); `at` makes the dict there.
    """

    ident: Ident
    key: str
    head: str
    stream: str

    def at(self, offset: int, line: int) -> dict[str, Any]:
        """The cursor (the dict stored in the checkpoint) of the line ending at `offset`."""
        return cursor(self.ident, self.key, offset, line, self.head, self.stream)


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a stored cursor says reading stopped, and under which stream it was read."""

    ident: Ident
    offset: int
    line: int
    head: str | None
    stream: str

    def fits(self, fd: int, size: int) -> bool:
        """True when the open file is still the one this cursor was taken in."""
        return size >= self.offset and has_head(fd, self.head)

    def cursor(self, ident: Ident) -> dict[str, Any]:
        """This position as the cursor of the file `ident` (the file itself, or its copy)."""
        return cursor(ident, ident_key(ident), self.offset, self.line, self.head or "", self.stream)

    @property
    def path_stream(self) -> str:
        """The stream of the path the file was read under (without the rotated suffix)."""
        return self.stream.removesuffix(ROTATED_SUFFIX)


def valid_cursor(stream: str, value: Any) -> Resume | None:
    """The Resume of a stored cursor, or None when it is not one of ours."""
    if not isinstance(value, dict):
        return None
    ino, dev, off, line = (value.get(k) for k in ("inode", "dev", "offset", "line"))
    if not all(isinstance(v, int) for v in (ino, dev, off)) or off < 0:
        return None
    head = value.get("head")  # absent in cursors written before it existed
    line = line if isinstance(line, int) and line >= 0 else 0
    # rows written before cursors were keyed by identity are keyed by their stream
    stream = value.get("stream") if isinstance(value.get("stream"), str) else stream
    return Resume((dev, ino), off, line, head if isinstance(head, str) else None, stream)


def resume_index(checkpoint: dict[str, Any]) -> dict[Ident, list[Resume]]:
    """Every stored cursor by file identity (a file may have been read under several names)."""
    index: dict[Ident, list[Resume]] = {}
    for stream, value in checkpoint.items():
        resume = valid_cursor(stream, value)
        if resume is not None:
            index.setdefault(resume.ident, []).append(resume)
    return index


def pick(fd: int, size: int, resumes: Iterable[Resume]) -> Resume | None:
    """The furthest cursor that still fits the open file (None: the file was replaced)."""
    fitting = [r for r in resumes if r.fits(fd, size)]
    return max(fitting, key=lambda r: r.offset) if fitting else None


def open_ro(path: str) -> int | None:
    """A read-only descriptor, or None when the file cannot be opened."""
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


def _entries(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return [e for e in it if e.is_file(follow_symlinks=False)]
    except OSError:
        return []


def find_ident(directories: Iterable[str], ident: Ident) -> str | None:
    """The path of the file with this identity in one of the directories (one scandir each:
    the inode number comes with the directory entry, so only a match costs a stat)."""
    dev, ino = ident
    for directory in directories:
        for entry in _entries(directory):
            if entry.inode() == ino and (st := stat_or_none(entry.path)) and st.st_dev == dev:
                return entry.path
    return None


def find_copy(
    directories: Iterable[str], head: str, size: int, skip: set[Ident], stem: str
) -> tuple[int, Ident] | None:
    """An open descriptor of a file (not in `skip`) whose name starts with `stem`, that holds
    at least `size` bytes and starts with the bytes `head` describes: a copytruncate copy."""
    length = int(head.partition(":")[0] or 0)
    if length <= 0:
        return None
    for directory in directories:
        for entry in _entries(directory):
            if not entry.name.startswith(stem):
                continue
            st = stat_or_none(entry.path)
            if st is None or ident_of(st) in skip or st.st_size < max(size, length):
                continue
            fd = open_ro(entry.path)
            if fd is None:
                continue
            if ident_of(os.fstat(fd)) == ident_of(st) and has_head(fd, head):
                return fd, ident_of(st)
            os.close(fd)
    return None


def rotation_stem(path: str) -> str:
    """The part of a file name its rotated copies share: "app" for app.log, app.log.1,
    app-20240101.log and app.log-20240101.gz alike."""
    base = os.path.basename(path)
    return base.split(".", 1)[0] or base
