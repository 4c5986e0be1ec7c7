"""The journald source against real journal files: written by Debian's systemd-journal-remote
from the journal export format, read back by the real journalctl (--file)."""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
from pathlib import Path
from typing import ClassVar

import pytest

from tests.sources.contract import RecordingLog, SourceContract, Tail, collect, make_ctx
from watcher.configschema import SchemaError, build
from watcher.parse.formats import parse_line
from watcher.sources.base import Source, SourceContext
from watcher.sources.journald import JournaldSourceConfig

REMOTE = Path("/lib/systemd/systemd-journal-remote")
pytestmark = pytest.mark.skipif(
    not REMOTE.exists() or shutil.which("journalctl") is None,
    reason="needs journalctl and systemd-journal-remote (test.sh installs them with apt-get)",
)

BOOT_A = "a" * 32
BOOT_B = "b" * 32
T0 = 1_700_000_000_000_000  # microseconds


class Journal:
    """A journal file the test appends entries to, through systemd-journal-remote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def add(self, messages: list[bytes], **fields: str) -> None:
        """Append one entry per message (binary-safe: the export format's sized fields)."""
        data = b"".join(self._entry(m, fields) for m in messages)
        if not data:
            return
        subprocess.run(
            [str(REMOTE), f"--output={self.path}", "-"],
            input=data,
            check=True,
            capture_output=True,
        )

    def _entry(self, message: bytes, fields: dict[str, str]) -> bytes:
        self.count += 1
        values = {
            "__REALTIME_TIMESTAMP": str(T0 + self.count * 1000),
            "__MONOTONIC_TIMESTAMP": str(self.count * 1000),
            "_BOOT_ID": BOOT_A,
            "_SYSTEMD_UNIT": "app.service",
            "_HOSTNAME": "web-1",
            "PRIORITY": "3",
            **fields,
        }
        head = "".join(f"{k}={v}\n" for k, v in values.items()).encode()
        return head + b"MESSAGE\n" + struct.pack("<Q", len(message)) + message + b"\n\n"


def journal_at(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "system.journal")


def config(journal: Journal, **kw: object) -> JournaldSourceConfig:
    kw.setdefault("read_from", "beginning")
    return JournaldSourceConfig(name=str(kw.pop("name", "journald")), file=str(journal.path), **kw)  # type: ignore[arg-type]


class TestJournaldContract(SourceContract):
    """The source contract over a real journal; entries of another unit are filtered out."""

    name: ClassVar[str] = "journald"
    resumable: ClassVar[bool] = True

    async def build(
        self, ctx: SourceContext, lines: list[bytes], tmp_path: Path, *, follow: bool
    ) -> Source:
        journal = journal_at(tmp_path)
        if not journal.path.exists():
            journal.add([b"noise from another unit"], _SYSTEMD_UNIT="other.service")
            journal.add(lines)
        return config(journal, units=["app.service"]).build(ctx)


async def test_fields_levels_bytes_and_multiline_messages(tmp_path: Path) -> None:
    """_SYSTEMD_UNIT, _HOSTNAME and PRIORITY become fields and the level; a MESSAGE that is a
    byte array is decoded; a multi-line MESSAGE is one line per line on the unit's stream."""
    journal = journal_at(tmp_path)
    journal.add([b"disk full \xff"], PRIORITY="2")
    journal.add([b"line one\nline two"], _SYSTEMD_UNIT="db.service", PRIORITY="6")
    got = [
        line
        for b in await collect(config(journal).build(make_ctx()).window(None, None))
        for line in b
    ]
    assert [line.text for line in got] == ["disk full \ufffd", "line one", "line two"]
    first = parse_line(got[0])
    assert first.level == "critical"
    assert first.fields["_SYSTEMD_UNIT"] == "app.service"
    assert first.fields["_HOSTNAME"] == "web-1"
    assert parse_line(got[1]).level == "info"
    assert got[1].stream == got[2].stream == "journald/db.service" != got[0].stream
    assert got[0].timestamp == pytest.approx((T0 + 1000) / 1e6)


async def test_priority_filter(tmp_path: Path) -> None:
    """priority = "err" keeps err and worse, drops info."""
    journal = journal_at(tmp_path)
    journal.add([b"noise"], PRIORITY="6")
    journal.add([b"failure"], PRIORITY="3")
    source = config(journal, priority="err").build(make_ctx())
    got = [line.text for b in await collect(source.window(None, None)) for line in b]
    assert got == ["failure"]


async def test_follow_reads_appended_entries(tmp_path: Path) -> None:
    """A following source delivers entries written to the journal after it started."""
    journal = journal_at(tmp_path)
    journal.add([b"before"])
    ctx = make_ctx()
    tail = Tail(config(journal).build(ctx), ctx)
    assert await tail.wait(1) == ["before"]
    journal.add([b"after one", b"after two"])
    assert await tail.wait(3) == ["before", "after one", "after two"]
    await tail.stop()


async def test_fresh_start_reads_from_the_end(tmp_path: Path) -> None:
    """With no checkpoint and the default read_from = "end", old entries are not replayed."""
    journal = journal_at(tmp_path)
    journal.add([b"old"])
    ctx = make_ctx()
    tail = Tail(config(journal, read_from="end").build(ctx), ctx)
    for n in range(50):  # journalctl may start after some of these: it prints what follows
        journal.add([f"new {n}".encode()])
        with contextlib.suppress(TimeoutError):
            await tail.wait(1, timeout=0.5)
            break
    await tail.stop()
    assert tail.texts() and all(text.startswith("new ") for text in tail.texts())


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        # a cursor of a boot this journal does not have, past its last entry: journalctl would
        # seek there and print nothing, for ever
        f"s={'0' * 32};i=99;b={'f' * 32};m=1;t={T0 * 2:x};x=1",
    ],
)
async def test_unusable_cursor_falls_back_to_current_boot(tmp_path: Path, cursor: str) -> None:
    """A bad checkpoint (garbage, or from a boot the journal no longer has) logs a warning and
    reads from the start of the current boot instead of nothing."""
    journal = journal_at(tmp_path)
    journal.add([b"old boot"], _BOOT_ID=BOOT_A)
    journal.add([b"this boot one", b"this boot two"], _BOOT_ID=BOOT_B)
    log = RecordingLog()
    ctx = make_ctx(log=log, checkpoint={"journald/app.service": {"cursor": cursor, "t": 1}})
    tail = Tail(config(journal).build(ctx), ctx)
    assert await tail.wait(2) == ["this boot one", "this boot two"]
    await tail.stop()
    assert any("cursor unusable" in e for e in log.events("warning"))


async def test_resume_across_units_takes_the_newest_cursor(tmp_path: Path) -> None:
    """A checkpoint holding a cursor per unit resumes after the newest of them."""
    journal = journal_at(tmp_path)
    journal.add([b"a1"])
    journal.add([b"d1"], _SYSTEMD_UNIT="db.service")
    journal.add([b"a2"])
    first = [
        line
        for b in await collect(config(journal).build(make_ctx()).window(None, None))
        for line in b
    ]
    checkpoint = {line.stream: line.cursor for line in first[:2]}
    ctx = make_ctx(checkpoint=checkpoint)
    tail = Tail(config(journal).build(ctx), ctx)
    assert await tail.wait(1) == ["a2"]
    await tail.stop()


def test_config_errors_name_the_key() -> None:
    """A priority journalctl would refuse, or file and directory together, is a config error."""
    with pytest.raises(SchemaError, match="priority"):
        build(JournaldSourceConfig, {"type": "journald", "name": "j", "priority": "loud"})
    with pytest.raises(SchemaError, match="directory"):
        build(
            JournaldSourceConfig, {"type": "journald", "name": "j", "file": "a", "directory": "b"}
        )
    ok = build(JournaldSourceConfig, {"type": "journald", "name": "j", "priority": "emerg..err"})
    assert "--priority=emerg..err" in ok.base_argv()
