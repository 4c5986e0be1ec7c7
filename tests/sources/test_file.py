"""The file source: tail -F over real files, rotation, checkpoints, globs, and the splitter."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sources.contract import (
    CAP,
    SourceContract,
    Tail,
    collect,
    make_ctx,
    texts,
    wait_for,
)
from watcher.pipeline import solid_cursor
from watcher.sources.base import Source, SourceContext
from watcher.sources.file import FileSource, FileSourceConfig
from watcher.sources.lines import MAX_BATCH, LineSplitter

POLL = 0.01


def write(path: Path, *lines: str, end: str = "\n") -> None:
    """Append lines to a file (creating it)."""
    with path.open("a", encoding="utf-8", newline="") as f:
        f.write("".join(line + end for line in lines))


def source(ctx: SourceContext, path: Path | str, **kwargs: object) -> FileSource:
    """A fast-polling file source."""
    kwargs.setdefault("poll_interval", POLL)
    return FileSourceConfig(path=str(path), **kwargs).build(ctx)  # type: ignore[arg-type]


class TestFileContract(SourceContract):
    """The file source passes the shared source contract."""

    resumable = True

    async def build(
        self, ctx: SourceContext, lines: list[bytes], tmp_path: Path, *, follow: bool
    ) -> Source:
        path = tmp_path / "app.log"
        # Rewriting in place keeps the inode, so a rebuilt source can resume from a checkpoint.
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        return source(ctx, path, name=self.name, read_from="beginning")


async def test_read_from_end_skips_existing(tmp_path: Path) -> None:
    """read_from="end" starts at EOF: only lines appended later arrive, numbered in the file."""
    path = tmp_path / "app.log"
    write(path, "old1", "old2")
    ctx = make_ctx()
    tail = Tail(source(ctx, path), ctx)
    await wait_for_open(tail, path)
    write(path, "new")
    assert await tail.wait(1) == ["new"]
    assert tail.lines[0].line_no == 3
    assert solid_cursor(tail.lines[0].cursor)["offset"] == path.stat().st_size
    await tail.stop()


async def wait_for_open(tail: Tail, path: Path) -> None:
    """Wait until the follower has the file open (it starts at EOF, so nothing arrives)."""
    src = tail.source
    assert isinstance(src, FileSource)
    await wait_for(lambda: any(f.cur is not None for f in src.followers.values()))


async def test_partial_line_waits_for_newline(tmp_path: Path) -> None:
    """In follow mode a line without its newline is held until the newline is written."""
    path = tmp_path / "app.log"
    ctx = make_ctx()
    tail = Tail(source(ctx, path, read_from="beginning"), ctx)
    write(path, "first\nsec", end="")
    assert await tail.wait(1) == ["first"]
    write(path, "ond")
    assert await tail.wait(2) == ["first", "second"]
    await tail.stop()


async def test_missing_file_then_created(tmp_path: Path) -> None:
    """A path that does not exist yet is waited for, then read from its start."""
    path = tmp_path / "later.log"
    ctx = make_ctx()
    tail = Tail(src := source(ctx, path), ctx)
    await wait_for(lambda: src.followers)
    write(path, "a", "b")
    assert await tail.wait(2) == ["a", "b"]
    await tail.stop()


async def test_rename_rotation_drains_old_then_reads_new(tmp_path: Path) -> None:
    """Rename rotation: the old inode is read to its end, then the new file from offset 0."""
    path = tmp_path / "app.log"
    write(path, "a1")
    ctx = make_ctx()
    tail = Tail(source(ctx, path, read_from="beginning"), ctx)
    assert await tail.wait(1) == ["a1"]
    with path.open("a") as old:
        os.rename(path, tmp_path / "app.log.1")
        old.write("a2\n")  # the writer keeps writing to the old inode for a moment
    write(path, "b1", "b2")
    assert await tail.wait(4) == ["a1", "a2", "b1", "b2"]
    assert [line.line_no for line in tail.lines] == [1, 2, 1, 2]
    assert {line.stream for line in tail.lines} == {str(path)}
    assert (
        solid_cursor(tail.lines[1].cursor)["inode"] != solid_cursor(tail.lines[2].cursor)["inode"]
    )
    await tail.stop()


async def test_rotation_under_glob_reads_nothing_twice(tmp_path: Path) -> None:
    """When the rotated name also matches the glob, its lines are not read a second time."""
    path = tmp_path / "app.log"
    write(path, "a1", "a2")
    ctx = make_ctx()
    tail = Tail(source(ctx, tmp_path / "app.log*", read_from="beginning"), ctx)
    assert await tail.wait(2) == ["a1", "a2"]
    os.rename(path, tmp_path / "app.log.1")
    write(path, "b1")
    assert await tail.wait(3) == ["a1", "a2", "b1"]
    write(tmp_path / "app.log.1", "a3")  # a late write to the rotated file is still seen once
    assert await tail.wait(4) == ["a1", "a2", "b1", "a3"]
    assert tail.lines[-1].stream == str(tmp_path / "app.log.1")
    await tail.stop()
    assert len(tail.lines) == 4


async def test_copytruncate_restarts_at_zero(tmp_path: Path) -> None:
    """copytruncate (copy, then truncate in place): reading restarts at offset 0."""
    path = tmp_path / "app.log"
    write(path, "before-1", "before-2")
    ctx = make_ctx()
    tail = Tail(source(ctx, path, read_from="beginning"), ctx)
    assert await tail.wait(2) == ["before-1", "before-2"]
    shutil.copy(path, tmp_path / "app.log.1")
    with path.open("r+") as f:
        f.truncate(0)
    write(path, "after")
    assert await tail.wait(3) == ["before-1", "before-2", "after"]
    assert tail.lines[-1].line_no == 1
    assert solid_cursor(tail.lines[-1].cursor)["offset"] == len("after\n")
    await tail.stop()


async def test_deleted_then_recreated(tmp_path: Path) -> None:
    """A deleted file is drained and the path is watched until a new file appears."""
    path = tmp_path / "app.log"
    write(path, "one")
    ctx = make_ctx()
    tail = Tail(source(ctx, path, read_from="beginning"), ctx)
    assert await tail.wait(1) == ["one"]
    path.unlink()
    write(path, "two")
    assert await tail.wait(2) == ["one", "two"]
    await tail.stop()


async def test_checkpoint_wins_over_read_from(tmp_path: Path) -> None:
    """With a checkpoint for the same inode, reading resumes there even with read_from=end."""
    path = tmp_path / "app.log"
    write(path, "l1", "l2", "l3")
    st = path.stat()
    cursor = {"inode": st.st_ino, "dev": st.st_dev, "offset": 3, "line": 1}
    ctx = make_ctx(checkpoint={str(path): cursor})
    tail = Tail(source(ctx, path, read_from="end"), ctx)
    assert await tail.wait(2) == ["l2", "l3"]
    assert [line.line_no for line in tail.lines] == [2, 3]
    await tail.stop()


def rotated_while_down(tmp_path: Path) -> tuple[Path, SourceContext]:
    """app.log (o1..o3) read up to o1, then renamed to app.log.1 and a new app.log (n1)
    written while the daemon was down; the context carries the old file's cursor."""
    path = tmp_path / "app.log"
    write(path, "o1", "o2", "o3")
    st = path.stat()
    cursor = {"inode": st.st_ino, "dev": st.st_dev, "offset": 3, "line": 1}
    os.rename(path, tmp_path / "app.log.1")
    write(path, "n1")
    return path, make_ctx(checkpoint={str(path): cursor})


async def test_rotated_while_down_is_followed_under_its_new_name(tmp_path: Path) -> None:
    """Checkpoint inode now under a rotated name the glob matches: it resumes there, under
    that name's stream, and the new file at the path is read from 0; nothing twice."""
    path, ctx = rotated_while_down(tmp_path)
    tail = Tail(source(ctx, tmp_path / "app.log*"), ctx)
    assert sorted(await tail.wait(3)) == ["n1", "o2", "o3"]
    await tail.stop()
    assert len(tail.lines) == 3
    streams = {line.text: line.stream for line in tail.lines}
    assert streams == {"o2": f"{path}.1", "o3": f"{path}.1", "n1": str(path)}
    assert [line.line_no for line in tail.lines if line.text != "n1"] == [2, 3]


async def test_rotated_out_of_a_plain_path_while_down_finishes_old_then_new(
    tmp_path: Path,
) -> None:
    """A plain path renamed while the daemon was down: the old file is found in the directory
    by its identity and its unread tail read first, then the new file from 0."""
    path, ctx = rotated_while_down(tmp_path)
    tail = Tail(source(ctx, path), ctx)
    assert await tail.wait(3) == ["o2", "o3", "n1"]
    await tail.stop()
    assert len(tail.lines) == 3
    assert {line.stream for line in tail.lines} == {str(path)}


async def test_rotated_while_down_old_gone(tmp_path: Path) -> None:
    """Checkpoint inode no longer findable: the new file at the path is read from 0."""
    path = tmp_path / "app.log"
    write(path, "n1", "n2")
    cursor = {"inode": path.stat().st_ino + 12345, "dev": path.stat().st_dev, "offset": 99}
    ctx = make_ctx(checkpoint={str(path): cursor})
    tail = Tail(source(ctx, path), ctx)
    assert await tail.wait(2) == ["n1", "n2"]
    await tail.stop()


async def test_glob_picks_up_new_files_and_honours_exclude(tmp_path: Path) -> None:
    """Files created later that match the glob are read from 0; excluded ones never."""
    write(tmp_path / "a.log", "a-old")
    ctx = make_ctx()
    tail = Tail(source(ctx, tmp_path / "*.log", exclude=["*.debug.log"]), ctx)
    await wait_for_open(tail, tmp_path / "a.log")
    write(tmp_path / "skip.debug.log", "no")
    write(tmp_path / "b.log", "b1")
    write(tmp_path / "a.log", "a-new")
    got = await tail.wait(2)
    assert sorted(got) == ["a-new", "b1"]
    await tail.stop()
    assert "no" not in tail.texts()


async def test_window_reads_every_file_from_start(tmp_path: Path) -> None:
    """window() reads each matching file from byte 0 to EOF, a final unterminated line too."""
    write(tmp_path / "a.log", "a1", "a2")
    write(tmp_path / "b.log", "b1")
    write(tmp_path / "b.log", "b-last", end="")
    ctx = make_ctx()
    batches = await collect(source(ctx, tmp_path / "*.log").window(None, None))
    assert texts(batches) == ["a1", "a2", "b1", "b-last"]
    lines = [line for batch in batches for line in batch]
    assert [line.line_no for line in lines] == [1, 2, 1, 2]
    assert solid_cursor(lines[-1].cursor)["offset"] == (tmp_path / "b.log").stat().st_size


async def test_window_batches_are_bounded(tmp_path: Path) -> None:
    """A large file arrives in batches of at most MAX_BATCH lines, none lost."""
    path = tmp_path / "big.log"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(MAX_BATCH * 3 + 7)))
    batches = await collect(source(make_ctx(), path).window(None, None))
    assert all(0 < len(b) <= MAX_BATCH for b in batches)
    assert sum(map(len, batches)) == MAX_BATCH * 3 + 7


async def test_crlf_stripped(tmp_path: Path) -> None:
    """CRLF line endings lose the CR; the byte offsets still count it."""
    path = tmp_path / "win.log"
    path.write_bytes(b"one\r\ntwo\r\n")
    lines = [line for b in await collect(source(make_ctx(), path).window(None, None)) for line in b]
    assert [line.text for line in lines] == ["one", "two"]
    assert solid_cursor(lines[-1].cursor)["offset"] == 10


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"path": ""}, "path"),
        ({"read_from": "middle"}, "read_from"),
        ({"poll_interval": 0}, "poll"),
    ],
)
def test_config_validate(kwargs: dict[str, object], key: str) -> None:
    """validate() names the offending key."""
    kwargs = {"path": "/x.log", **kwargs}
    with pytest.raises(ValueError, match=f"^{key}"):
        FileSourceConfig(**kwargs).validate()  # type: ignore[arg-type]


# The shared splitter (watcher.sources.lines), exercised here because the file source is its
# heaviest user.


def split_all(
    chunks: list[bytes], cap: int, batch: int = 3, max_bytes: int = 1 << 20
) -> list[tuple[bytes, int, bool]]:
    """Feed chunks, draining take() after each, then flush: (text bytes, end, truncated)."""
    sp = LineSplitter(cap)
    out: list[tuple[bytes, int, bool]] = []

    def drain(lines: object) -> None:
        for i, (t, e) in enumerate(zip(lines.texts, lines.ends, strict=True)):  # type: ignore[attr-defined]
            out.append((t.encode(), e, i in lines.truncated))  # type: ignore[attr-defined]

    for chunk in chunks:
        sp.feed(chunk)
        while lines := sp.take(batch, max_bytes):
            assert len(lines) <= batch
            # a batch stays within max_bytes, unless its one line alone is longer
            assert len(lines) == 1 or sum(len(t.encode()) + 1 for t in lines.texts) <= max_bytes
            drain(lines)
    drain(sp.flush())
    return out


@given(
    st.lists(st.sampled_from([b"a", b"bb", b"\n", b"\n\n", b"ccccc"]), max_size=30),
    st.integers(1, 8),
    st.integers(1, 12),
)
def test_splitter_matches_reference(pieces: list[bytes], cap: int, max_bytes: int) -> None:
    """Any chunking and batch size in bytes gives the lines of data.split(b"\\n"), capped,
    with exact end offsets."""
    data = b"".join(pieces)
    expected, pos = [], 0
    segments = data.split(b"\n")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if last and not seg:
            break
        pos += len(seg) + (0 if last else 1)
        expected.append((seg[:cap], pos, len(seg) > cap))
    assert split_all(pieces, cap, max_bytes=max_bytes) == expected


def test_splitter_does_not_hold_a_huge_line() -> None:
    """A 10 MB line fed in 1 MiB chunks keeps only its first max_line_bytes in memory."""
    sp = LineSplitter(CAP)
    chunk = b"x" * (1024 * 1024)
    for _ in range(10):
        sp.feed(chunk)
        assert not sp.take().texts
        assert len(sp._buf) + len(sp._head or b"") <= CAP
    sp.feed(b"tail\nnext\n")
    lines = sp.take()
    assert lines.texts == ["x" * CAP, "next"] and lines.truncated == [0]
    assert lines.ends[0] == 10 * 1024 * 1024 + 5


def test_splitter_cap_keeps_characters_whole() -> None:
    """Truncation never splits a multi-byte UTF-8 character into a replacement char."""
    sp = LineSplitter(4)
    sp.feed("aé€x\n".encode())
    lines = sp.take()
    assert lines.texts == ["aé"] and lines.truncated == [0]


def _started(path: Path, **kwargs: object) -> FileSource:
    """A file source positioned on its files (its polls driven by the test, no event loop)."""
    src = source(make_ctx(), path, read_from="beginning", **kwargs)
    src._start_following()
    return src


def _lost(src: FileSource) -> float:
    return src.ctx.metrics.registry.get_sample_value(
        "watcher_lines_lost_total", {"source": src.name, "reason": "copytruncate"}
    ) or 0.0


def test_copytruncate_reads_the_unread_tail_from_the_copy(tmp_path: Path) -> None:
    """copytruncate while a megabyte is still unread: the copy (app.log.1, same first bytes) is
    read from where reading stopped, then the truncated file from 0: nothing lost or twice."""
    path = tmp_path / "app.log"
    lines = [f"line {i:06d} {'x' * 87}" for i in range(20_000)]  # 2 MB: more than one read
    write(path, *lines)
    src = _started(path)
    got = [line.text for line in src._poll_round(10)]
    shutil.copy(path, tmp_path / "app.log.1")
    path.write_text("")
    write(path, "after")
    got += [line.text for batch in iter(lambda: src._poll_round(5000), []) for line in batch]
    assert got == [*lines, "after"]
    assert _lost(src) == 0


def test_copytruncate_without_a_copy_counts_the_lost_lines(tmp_path: Path) -> None:
    """A truncate that takes bytes watcher saw but had not read yet (no copy beside the file)
    counts their lines in watcher_lines_lost_total{reason="copytruncate"} instead of losing
    them silently; what was already read into memory is still delivered."""
    path = tmp_path / "app.log"
    total = 20_000  # 2 MB of 100-byte lines: more than one read
    path.write_text("".join(f"line {i:06d} {'x' * 87}\n" for i in range(total)))
    src = _started(path)
    assert len(src._poll_round(10)) == 10
    path.write_text("")  # truncated, its copy kept elsewhere (or none)
    write(path, "after")
    got = [line.text for batch in iter(lambda: src._poll_round(5000), []) for line in batch]
    assert got[-1] == "after"
    whole = sum(len(t) == 99 for t in got)  # the last line read was cut by the truncate
    assert abs(10 + whole + _lost(src) - total) <= 1  # the cut line: delivered, its rest lost
    assert _lost(src) > 9000
