"""[[sources]] type = "journald": the systemd journal, through `journalctl -f -o json`.

Each entry's `__CURSOR` is its checkpoint; a restarted daemon passes the last committed one as
`--after-cursor`, so resuming is exact (at least once). watcher keeps the cursor in its own
store rather than in `--cursor-file`, because journalctl writes that file when it *prints* an
entry, before watcher has processed it. A stored cursor can go bad — a garbage value, a volatile
journal wiped by a reboot, a clock set back: the cursor is checked before following, and a bad
one falls back to the start of the current boot with a warning instead of reading nothing.
`--file`/`--directory` read a copied journal (or a test's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from watcher.model import RawLine
from watcher.sources.base import Check, SourceContext
from watcher.sources.command import CommandSource, CommandSourceConfig
from watcher.sources.lines import cap_bytes, decode
from watcher.sources.process import stop_group

PRIORITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
# journal fields kept on every line (bounded): where it came from, and its syslog priority
FIELDS = ("_SYSTEMD_UNIT", "_HOSTNAME", "PRIORITY", "SYSLOG_IDENTIFIER", "_PID", "_COMM")
# a JSON entry line may be much longer than the message cap (bytes arrays: ~4 chars a byte)
_ENTRY_CAP = 16 * 1024 * 1024
_PROBE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class JournaldSourceConfig:
    """[[sources]] type = "journald": journal entries, optionally of some units only."""

    type: str = "journald"
    name: str = "journald"
    units: list[str] = field(default_factory=list)  # -u, any of them
    priority: str = ""  # -p: "err", "3", or a range "emerg..err"
    file: str = ""  # --file: a journal file (glob allowed) instead of the system journal
    directory: str = ""  # --directory: a journal directory instead of the system journal
    read_from: Literal["end", "boot", "beginning"] = "end"  # with no checkpoint
    binary: str = "journalctl"
    max_backoff: float = 60.0

    def validate(self) -> None:
        """Raise ValueError("key: problem") for values journalctl would refuse."""
        for part in self.priority.split("..") if self.priority else ():
            if part not in PRIORITIES and not (part.isdigit() and int(part) < len(PRIORITIES)):
                raise ValueError(f"priority: {part!r} is not 0-7 or one of {', '.join(PRIORITIES)}")
        if self.file and self.directory:
            raise ValueError("directory: set file or directory, not both")
        if any(not u or not isinstance(u, str) for u in self.units):
            raise ValueError("units: must be non-empty unit names")
        if not self.max_backoff > 0:
            raise ValueError("max_backoff: must be greater than 0")

    async def probe(self) -> list[Check]:
        """`check-config --probe`: journalctl reads the journal with these filters."""
        from watcher.sources.probes import journald_source

        return await journald_source(self)

    def build(self, ctx: SourceContext) -> JournaldSource:
        """The source this config describes."""
        self.validate()
        return JournaldSource(self, ctx)

    def base_argv(self) -> list[str]:
        """journalctl with this config's journal and filters, JSON output, long fields whole."""
        argv = [self.binary, "-o", "json", "--all", "--no-pager", "-q"]
        if self.file:
            argv.append(f"--file={self.file}")
        if self.directory:
            argv.append(f"--directory={self.directory}")
        argv += [f"--unit={unit}" for unit in self.units]
        if self.priority:
            argv.append(f"--priority={self.priority}")
        return argv


_START = {"end": ["--lines=0"], "boot": ["--boot", "--no-tail"], "beginning": ["--no-tail"]}


class JournaldSource:
    """journalctl, restarted with backoff; each restart resumes after the last entry read."""

    delivery = "at_least_once"

    def __init__(self, config: JournaldSourceConfig, ctx: SourceContext) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.name
        self.cursor: dict[str, Any] | None = _latest(ctx.checkpoint)
        self.line_no = 0

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        """Follow the journal from the checkpoint (checked) or `read_from`, until shutdown."""
        runner = _Journalctl(self, follow=True)
        async with contextlib.aclosing(runner.lines()) as batches:
            async for batch in batches:
                if out := self._entries(batch):
                    yield out

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """The entries of [start, end], then stop."""
        runner = _Journalctl(self, follow=False, since=start, until=end)
        async with contextlib.aclosing(runner.window(start, end)) as batches:
            async for batch in batches:
                if out := self._entries(batch):
                    yield out

    async def follow_argv(self) -> list[str]:
        """The next run's command line: after the last cursor if it is good, else the start."""
        argv = [*self.config.base_argv(), "--follow"]
        if self.cursor is None:
            return argv + _START[self.config.read_from]
        cursor = self.cursor["cursor"]
        problem = await self._check_cursor(cursor)
        if problem is None:
            return [*argv, f"--after-cursor={cursor}"]
        self.ctx.log.warning(
            "Journal cursor unusable; reading from the start of the current boot.",
            source=self.name,
            cursor=cursor,
            problem=problem,
        )
        self.cursor = None
        return argv + _START["boot"]

    async def _check_cursor(self, cursor: str) -> str | None:
        """None when journalctl can resume after `cursor`; else why not.

        journalctl seeks to the nearest entry when the cursor's own entry is gone, and says
        nothing when that lands past the end: a cursor of a boot the journal no longer has
        (a volatile journal after a reboot) would then read nothing, for ever.
        """
        first, error = await self._first_entry([f"--cursor={cursor}"])
        if error:
            return error
        if first is not None:
            return None  # entries at or after it exist: resume there
        last, _ = await self._first_entry(["--lines=1"])
        if last is None or last.get("_BOOT_ID") == _field(cursor, "b"):
            return None  # nothing newer yet, in the same boot: a good position
        return "the cursor's boot is not in the journal and no entry follows it"

    async def _first_entry(self, args: list[str]) -> tuple[dict[str, Any] | None, str]:
        """The first entry journalctl prints with `args`, and its error text if it failed."""
        proc = await asyncio.create_subprocess_exec(
            *self.config.base_argv(),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=_ENTRY_CAP,
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            async with asyncio.timeout(_PROBE_TIMEOUT):
                line = await proc.stdout.readline()
                if line:
                    return _loads(line), ""
                err = (await proc.stderr.read()).decode("utf-8", "replace").strip()
                code = await proc.wait()
                return None, (err or f"journalctl exited {code}") if code else ""
        finally:
            await stop_group(proc, 2.0)

    def _entries(self, batch: list[RawLine]) -> list[RawLine]:
        out: list[RawLine] = []
        for raw in batch:
            entry = _loads(raw.text.encode()) if not raw.truncated else None
            if entry is None:
                self.ctx.metrics.lines_lost.labels(self.name, "unreadable_entry").inc()
                continue
            out.extend(self._entry_lines(entry))
        return out

    def _entry_lines(self, entry: dict[str, Any]) -> list[RawLine]:
        """One line per line of MESSAGE (a traceback logged as one entry is still assembled)."""
        realtime = int(entry.get("__REALTIME_TIMESTAMP") or 0)
        cursor = {"cursor": entry.get("__CURSOR", ""), "t": realtime}
        self.cursor = cursor
        fields = {k: entry[k] for k in FIELDS if k in entry}
        unit = entry.get("_SYSTEMD_UNIT") or entry.get("SYSLOG_IDENTIFIER") or "journal"
        stream = f"{self.name}/{unit}"
        when = realtime / 1e6 if realtime else None
        lines = []
        for part in message_of(entry).split(b"\n"):
            self.line_no += 1
            text = decode(cap_bytes(part, self.ctx.max_line_bytes))
            line = RawLine(text, self.name, stream, cursor, self.line_no, when, fields)
            if len(part) > self.ctx.max_line_bytes:
                line.truncated = True
                self.ctx.metrics.truncated_lines.labels(self.name).inc()
            lines.append(line)
        return lines


class _Journalctl(CommandSource):
    """The command source's run/restart/stop loop, with the command line moved on each run."""

    def __init__(
        self,
        journal: JournaldSource,
        *,
        follow: bool,
        since: float | None = None,
        until: float | None = None,
    ) -> None:
        cfg = journal.config
        config = CommandSourceConfig(
            name=cfg.name,
            argv=cfg.base_argv(),
            merge_stderr=False,  # warnings on stderr are not journal entries
            max_backoff=cfg.max_backoff,
        )
        ctx = SourceContext(
            shutdown=journal.ctx.shutdown,
            metrics=journal.ctx.metrics,
            log=journal.ctx.log,
            max_line_bytes=_ENTRY_CAP,
        )
        super().__init__(config, ctx)
        self.journal = journal
        self.follow = follow
        self.period = (since, until)

    async def _argv(self) -> list[str]:
        if self.follow:
            return await self.journal.follow_argv()
        since, until = self.period
        argv = self.journal.config.base_argv()
        if since is not None:
            argv.append(f"--since=@{since:.6f}")
        if until is not None:
            argv.append(f"--until=@{until:.6f}")
        return argv


def message_of(entry: dict[str, Any]) -> bytes:
    """MESSAGE as bytes: journalctl writes non-UTF-8 (or binary) values as arrays of bytes,
    and a field repeated in one entry as an array of values (the first is taken)."""
    value = entry.get("MESSAGE")
    if isinstance(value, list) and value and not all(isinstance(b, int) for b in value):
        value = value[0]
    if isinstance(value, list):
        return bytes(b & 0xFF for b in value if isinstance(b, int))
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return b""


def _loads(data: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(data)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _latest(checkpoint: Any) -> dict[str, Any] | None:
    """The newest committed cursor over all streams (units), by the entry's realtime."""
    if not isinstance(checkpoint, dict):
        return None
    cursors = [c for c in checkpoint.values() if isinstance(c, dict) and c.get("cursor")]
    return max(cursors, key=lambda c: int(c.get("t") or 0), default=None)


def _field(cursor: str, key: str) -> str:
    """One `k=v` part of a journal cursor ("s=…;i=…;b=<boot id>;…")."""
    for part in cursor.split(";"):
        name, _, value = part.partition("=")
        if name == key:
            return value
    return ""
