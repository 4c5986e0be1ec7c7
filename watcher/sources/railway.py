"""The railway source: `railway logs --json` for one service, followed through a pty or polled.

Follow ("stream" mode) runs the CLI under a pseudo-terminal, because it streams only to a
terminal; each (re)subscribe replays up to 500 recent lines and the CLI exits when the server
closes the stream (e.g. the deployment was replaced), so it is restarted with backoff and the
replays are de-duplicated (railway_dedupe). Without a pinned deployment every restart follows
the service's current deployment, and a CLI that stays silent for `idle_restart` is restarted
so a redeploy whose old stream simply went quiet is picked up too. "poll" mode fetches
`--since` the last timestamp every `interval` instead. Delivery is best-effort: see the cursor.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from watcher.backoff import Backoff, sleep_or_shutdown
from watcher.configschema import Seconds, SecondsOrZero
from watcher.model import RawLine
from watcher.sources.base import Check, SourceContext
from watcher.sources.lines import Lines, LineSplitter
from watcher.sources.railway_dedupe import Deduper, valid_cursor
from watcher.sources.railway_entry import Entry, decode, format_ns
from watcher.sources.railway_errors import CliReport, RailwayError, exit_detail, fatal_reason
from watcher.sources.railway_pty import CliRun, child_env, cli_version

__all__ = ["RailwayError", "RailwaySource", "RailwaySourceConfig"]

# A JSON line carries the escaped message plus attributes: split at a multiple of the line cap
# so the message survives to be capped itself, while memory per line stays bounded.
_JSON_HEADROOM = 8
_TAIL_LINES = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class RailwaySourceConfig:
    """[[sources]] type = "railway": one service's logs through the Railway CLI."""

    type: str = "railway"
    name: str = "railway"
    service: str = ""
    environment: str = ""
    project: str = ""
    deployment: str = ""
    log_type: Literal["deploy", "build"] = "deploy"
    mode: Literal["stream", "poll"] = "stream"
    binary: str = "railway"
    filter: str = ""
    interval: Seconds = 30.0
    lookback: Seconds = 300.0
    idle_restart: SecondsOrZero = 300.0
    max_backoff: Seconds = 60.0
    scan_limit: int = 5000
    # a fleet reads it on one watcher at a time (a source lease: watcher/fleet/)
    shared: bool = False

    def validate(self) -> None:
        """Raise ValueError("key: problem") for values no railway source can run with."""
        if not self.binary:
            raise ValueError("binary: must not be empty")
        if self.log_type not in ("deploy", "build"):
            raise ValueError('log_type: must be "deploy" or "build"')
        if self.mode not in ("stream", "poll"):
            raise ValueError('mode: must be "stream" or "poll"')
        for key in ("interval", "lookback", "max_backoff"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key}: must be greater than 0")
        if self.idle_restart < 0:
            raise ValueError("idle_restart: must not be negative")
        if self.scan_limit < 1:
            raise ValueError("scan_limit: must be at least 1")

    async def probe(self) -> list[Check]:
        """`check-config --probe`: the CLI is there and logged in."""
        from watcher.sources.probes import railway_source

        return await railway_source(self)

    def build(self, ctx: SourceContext) -> RailwaySource:
        """The source this config describes."""
        self.validate()
        return RailwaySource(self, ctx)


@dataclass
class _Outcome:
    """What one CLI run did: how it ended and what it printed besides log entries."""

    code: int | None = None
    idle: bool = False
    entries: int = 0
    other: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))


class RailwaySource:
    """Reads one Railway service's logs through the CLI; see the module docstring."""

    delivery = "best_effort"

    def __init__(
        self,
        config: RailwaySourceConfig,
        ctx: SourceContext,
        *,
        backoff: Backoff | None = None,
        healthy_after: float = 10.0,
        grace: float = 3.0,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.name
        self.backoff = backoff or Backoff(cap=config.max_backoff)
        self.healthy_after = healthy_after  # a run this long resets the backoff
        self.grace = grace  # seconds between SIGTERM and SIGKILL
        self.line_no = 0  # counts across restarts so the stream's numbers never go back
        self.dedupe = Deduper.resume(self._committed())
        self.deployment: str | None = None  # last deploymentId attribute seen
        self._binary: str | None = None
        self.report = CliReport(ctx.log, self.name)

    def _committed(self) -> Any:
        checkpoint = self.ctx.checkpoint
        cursor = checkpoint.get(self.name) if isinstance(checkpoint, dict) else None
        if cursor is not None and not valid_cursor(cursor):
            self.ctx.log.warning("Ignoring an unreadable railway checkpoint.", source=self.name)
            return None
        return cursor

    # --- follow ---------------------------------------------------------------------------

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        """Follow the service until shutdown (stream or poll mode)."""
        await self._preflight()
        follow = self._stream() if self.config.mode == "stream" else self._poll()
        async with contextlib.aclosing(follow) as batches:
            async for batch in batches:
                yield batch

    async def _stream(self) -> AsyncIterator[list[RawLine]]:
        shutdown = self.ctx.shutdown
        up = self.ctx.metrics.source_up.labels(self.name)
        argv = self._argv()
        idle = self.config.idle_restart or None
        while not shutdown.is_set():
            started = time.monotonic()
            run = await self._start(argv, pty=True)
            up.set(1)
            outcome = _Outcome()
            async with contextlib.aclosing(self._read(run, outcome, idle=idle)) as batches:
                async for batch in batches:
                    yield batch
            up.set(0)
            if shutdown.is_set():
                return
            if outcome.idle:
                # Deliberate, not a failure: no backoff and no reconnect counted.
                self.ctx.log.debug("Railway CLI idle; restarting it.", source=self.name)
                continue
            self._check_exit(run, outcome)
            if time.monotonic() - started >= self.healthy_after:
                self.backoff.reset()
            if not await self.backoff.wait(shutdown):
                return
            self.ctx.metrics.source_reconnects.labels(self.name).inc()

    async def _poll(self) -> AsyncIterator[list[RawLine]]:
        shutdown = self.ctx.shutdown
        up = self.ctx.metrics.source_up.labels(self.name)
        limit = self.config.scan_limit
        while not shutdown.is_set():
            since = self.dedupe.last_ts or format_ns(
                int((time.time() - self.config.lookback) * 1e9)
            )
            run = await self._start(self._argv("--since", since, "--lines", str(limit)), pty=False)
            outcome = _Outcome()
            async with contextlib.aclosing(self._read(run, outcome)) as batches:
                async for batch in batches:
                    yield batch
            if shutdown.is_set():
                return
            if outcome.code == 0:
                up.set(1)
                self.backoff.reset()
                self._warn_if_limited(outcome, "poll")
                if await sleep_or_shutdown(shutdown, self.config.interval):
                    return
                continue
            up.set(0)
            self._check_exit(run, outcome)
            if not await self.backoff.wait(shutdown):
                return
            self.ctx.metrics.source_reconnects.labels(self.name).inc()

    # --- scan -----------------------------------------------------------------------------

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """One fetch of [start, end] (`--since`/`--until`, at most scan_limit lines)."""
        await self._preflight()
        extra = ["--lines", str(self.config.scan_limit)]
        # A microsecond of slack each side absorbs float rounding; _inside() cuts exactly.
        if start is not None:
            extra += ["--since", format_ns(int((start - 1e-6) * 1e9))]
        if end is not None:
            extra += ["--until", format_ns(int((end + 1e-6) * 1e9))]
        run = await self._start(self._argv(*extra), pty=False)
        outcome = _Outcome()
        bounds = (start, end)
        delivered = 0
        async with contextlib.aclosing(self._read(run, outcome, bounds=bounds)) as batches:
            async for batch in batches:
                delivered += len(batch)
                yield batch
        if self.ctx.shutdown.is_set():
            return
        if outcome.code != 0:
            reason = fatal_reason(outcome.code, [*run.stderr_tail, *outcome.other])
            if reason is not None or not delivered:
                lines = [*run.stderr_tail, *outcome.other]
                detail = reason or exit_detail(outcome.code, lines)
                raise RailwayError(f"railway source {self.name!r}: {detail}")
            self._exited(run, outcome)
        self._warn_if_limited(outcome, "scan")

    # --- one run --------------------------------------------------------------------------

    async def _read(
        self,
        run: CliRun,
        outcome: _Outcome,
        *,
        idle: float | None = None,
        bounds: tuple[float | None, float | None] | None = None,
    ) -> AsyncIterator[list[RawLine]]:
        """Batches of one run's output until it ends, goes idle or shutdown; then reap it."""
        cap = self.ctx.max_line_bytes
        splitter = LineSplitter(max(cap * _JSON_HEADROOM, cap + 65536))
        try:
            while True:
                data = await run.read(idle)
                if data is None:
                    outcome.idle = not self.ctx.shutdown.is_set()
                    return
                if data:
                    splitter.feed(data)
                lines = splitter.take() if data else splitter.flush()
                while lines.texts:
                    batch = self._batch(lines, outcome, bounds)
                    if batch:
                        yield batch
                    lines = splitter.take() if data else Lines()
                if not data:
                    return
        finally:
            outcome.code = await run.finish(self.grace)

    def _batch(
        self, lines: Lines, outcome: _Outcome, bounds: tuple[float | None, float | None] | None
    ) -> list[RawLine]:
        cap = self.ctx.max_line_bytes
        cut = set(lines.truncated)
        out: list[RawLine] = []
        replays = outside = 0
        newest: float | None = None
        for i, text in enumerate(lines.texts):
            entry = decode(text, cap, cut=i in cut)
            seconds = None
            if entry.digest is None:
                outcome.other.append(entry.text)
            else:
                outcome.entries += 1
            if entry.ns is not None:
                seconds = entry.ns / 1e9
                if bounds is not None:
                    if not _inside(seconds, bounds):
                        outside += 1
                        continue
                elif not self.dedupe.admit(entry.ns, entry.timestamp or "", entry.digest or ""):
                    replays += 1
                    continue
                newest = seconds
                self._note_deployment(entry)
            self.line_no += 1
            cursor = self.dedupe.cursor if bounds is None else None
            out.append(
                RawLine(
                    entry.text, self.name, self.name, cursor, self.line_no, seconds, entry.fields
                )
            )
            out[-1].truncated = entry.truncated
        self._count(out, replays, outside, newest)
        return out

    def _count(self, out: list[RawLine], replays: int, outside: int, newest: float | None) -> None:
        metrics = self.ctx.metrics
        truncated = sum(line.truncated for line in out)
        if truncated:
            metrics.truncated_lines.labels(self.name).inc(truncated)
        if replays:
            metrics.duplicate_lines.labels(self.name).inc(replays)
        if outside:
            metrics.dropped_lines.labels("out_of_window").inc(outside)
        if newest is not None:
            metrics.source_lag.labels(self.name).set(max(0.0, time.time() - newest))

    def _note_deployment(self, entry: Entry) -> None:
        deployment = entry.fields.get("deploymentId") if entry.fields else None
        if isinstance(deployment, str) and deployment != self.deployment:
            if self.deployment is not None:
                self.ctx.log.info(
                    "Railway deployment changed.", source=self.name, deployment=deployment
                )
            self.deployment = deployment

    # --- process plumbing -----------------------------------------------------------------

    def _argv(self, *extra: str) -> list[str]:
        cfg = self.config
        assert self._binary is not None
        argv = [self._binary, "logs", "--json"]
        for flag, value in (
            ("--service", cfg.service),
            ("--environment", cfg.environment),
            ("--project", cfg.project),
            ("--filter", cfg.filter),
        ):
            if value:
                argv += [flag, value]
        # --deployment also stops the CLI switching to build logs for a failed deployment.
        argv.append("--build" if cfg.log_type == "build" else "--deployment")
        argv += extra
        if cfg.deployment:
            argv.append(cfg.deployment)
        return argv

    async def _start(self, argv: list[str], *, pty: bool) -> CliRun:
        try:
            return await CliRun.start(
                argv, child_env(), self.ctx.shutdown, pty=pty, on_stderr=self.report.said
            )
        except OSError as exc:
            raise self._cannot_run(argv[0], exc) from None

    def _cannot_run(self, binary: str, exc: OSError) -> RailwayError:
        reason = exc.strerror or str(exc)
        return RailwayError(f"railway source {self.name!r}: cannot run {binary!r}: {reason}")

    async def _preflight(self) -> None:
        """Find the CLI once and log its version; RailwayError when it cannot be used."""
        if self._binary is not None:
            return
        found = shutil.which(self.config.binary)
        if found is None:
            raise RailwayError(
                f"railway source {self.name!r}: the Railway CLI {self.config.binary!r} was not "
                "found on PATH; install it (npm i -g @railway/cli) or set binary to its full path"
            )
        try:
            version = await cli_version(found, child_env())
        except OSError as exc:
            raise self._cannot_run(found, exc) from None
        self._binary = found
        self.ctx.log.info("Railway CLI found.", source=self.name, binary=found, version=version)

    def _check_exit(self, run: CliRun, outcome: _Outcome) -> None:
        """Raise RailwayError for a failure no restart fixes; log any other exit once."""
        if outcome.code and not outcome.entries:
            reason = fatal_reason(outcome.code, [*run.stderr_tail, *outcome.other])
            if reason is not None:
                raise RailwayError(f"railway source {self.name!r}: {reason}")
        self._exited(run, outcome)

    def _exited(self, run: CliRun, outcome: _Outcome) -> None:
        last = list(run.stderr_tail) or list(outcome.other)
        self.report.exited(outcome.code, last, self.backoff.attempt)

    def _warn_if_limited(self, outcome: _Outcome, what: str) -> None:
        if outcome.entries >= self.config.scan_limit:
            self.ctx.log.warning(
                f"Railway {what} returned scan_limit lines; older lines may be missing.",
                source=self.name,
                scan_limit=self.config.scan_limit,
            )


def _inside(seconds: float, bounds: tuple[float | None, float | None]) -> bool:
    start, end = bounds
    return (start is None or seconds >= start) and (end is None or seconds <= end)
