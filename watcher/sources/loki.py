"""The loki source: follow a LogQL query over the tail websocket, backfilling every gap.

Follow mode runs sessions until shutdown. A session first catches up with query_range (from the
checkpoint, or `now - lookback`, to now), then opens `/loki/api/v1/tail` starting where the
catch-up ended, backfills the short gap the handshake took, and reads tail messages. Any end of
a session (Loki's tail_max_duration, an error, a refused upgrade, the network) starts the next one
after a backoff, from a little before the newest entry delivered, so nothing in between is lost;
what the overlap delivers twice is dropped by identity (labels, ns, line) — see loki_intake.

A tail that stays connected but stops relaying (a querier that lost its ingesters; pings and pongs
still flow, so the heartbeat is happy) looks exactly like a quiet stream. So after `stall_check`
seconds without a message, one query_range asks Loki for what arrived since: anything the tail
should have sent by then is delivered, and the tail is replaced.

Scan mode pages query_range forward in chunks (`chunk`, default 1 h) so long windows stay under
Loki's max_query_length, and pages within a chunk by the last timestamp returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from watcher.backoff import Backoff
from watcher.configschema import Seconds
from watcher.model import RawLine
from watcher.sources.base import Check, SourceContext
from watcher.sources.loki_api import (
    Entry,
    LokiClient,
    LokiError,
    auth_headers,
    check_url,
    parse_tail_message,
    read_secret,
    ssl_option,
)
from watcher.sources.loki_intake import NS, Floor, Intake, Recent
from watcher.sources.loki_logql import DEFAULT_ERROR_FILTER, effective_query, selector_end

T = TypeVar("T")

# Loki's default max_entries_limit_per_query: a larger limit is a 400 on a default server.
MAX_LIMIT = 5000
# The default max_lateness: how far behind the newest entry a reconnect re-reads (plus
# delay_for). Entries that reach Loki later than that after newer ones, while we are
# disconnected, are missed; those of them in the slice just before the re-read are counted in
# watcher_dropped_lines_total{reason="late"}.
OVERLAP_S = 10.0
# A restart re-reads from the oldest committed stream cursor within this of the newest one.
RESUME_HORIZON_S = 3600.0
SCAN_ATTEMPTS = 5  # transient failures of one query_range before a scan gives up
# Seconds of tail silence before query_range is asked whether Loki has entries the tail did not
# send: one small query per quiet minute.
STALL_CHECK_S = 60.0
# Entries younger than this (plus delay_for) may still be on their way through a healthy tail.
STALL_GRACE_S = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LokiSourceConfig:
    """[[sources]] type = "loki": the entries of a LogQL log query."""

    type: str = "loki"
    name: str = "loki"
    url: str
    query: str
    error_filter: str = DEFAULT_ERROR_FILTER
    tenant: str = ""
    username: str = ""
    password_env: str = ""
    token_env: str = ""
    tls_verify: bool = True
    ca_file: str = ""
    delay_for: int = 0
    limit: int = 1000
    lookback: Seconds = 300.0
    chunk: Seconds = 3600.0
    max_backoff: Seconds = 60.0
    timeout: Seconds = 30.0
    max_lateness: Seconds = OVERLAP_S
    # a fleet reads it on one watcher at a time (a source lease: watcher/fleet/)
    shared: bool = False

    def validate(self) -> None:
        """Raise ValueError("key: problem") for values no loki source can run with."""
        if not self.url:
            raise ValueError("url: must not be empty (the Loki base URL, e.g. http://loki:3100)")
        check_url(self.url)
        if selector_end(self.query) is None:
            raise ValueError('query: must start with a stream selector, e.g. {app="api"}')
        if self.username and not self.password_env:
            raise ValueError("password_env: required with username (the variable holding it)")
        if self.password_env and not self.username:
            raise ValueError("username: required with password_env")
        if self.token_env and self.username:
            raise ValueError("token_env: use either token_env or username/password_env")
        if not 0 <= self.delay_for <= 5:
            raise ValueError("delay_for: must be 0 to 5 seconds (Loki's limit)")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit: must be 1 to {MAX_LIMIT}")

    async def probe(self) -> list[Check]:
        """`check-config --probe`: Loki is ready and takes the query."""
        from watcher.sources.probes import loki_source

        return await loki_source(self)

    def build(self, ctx: SourceContext) -> LokiSource:
        """The source this config describes."""
        self.validate()
        return LokiSource(self, ctx)


class _Stopped(Exception):
    """Shutdown was set while waiting: unwind quietly."""


class LokiSource:
    """Follows (tail + backfill) or scans (query_range) one LogQL query."""

    delivery = "at_least_once"

    def __init__(
        self,
        config: LokiSourceConfig,
        ctx: SourceContext,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        healthy_after: float = 10.0,
        stall_check: float = STALL_CHECK_S,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.name
        self.query = effective_query(config.query, config.error_filter)
        self.backoff = backoff or Backoff(cap=config.max_backoff)
        self.clock = clock
        self.healthy_after = healthy_after  # a session this long resets the backoff
        self.stall_check = stall_check
        self.overlap_ns = int((config.max_lateness + config.delay_for) * NS)
        self._sessions = 0  # sessions started: from the second on, a reconnect counts late ones
        self._ok = False  # a request succeeded once: from then on every error is transient
        self._covered_ns = 0  # backfilled up to here (exclusive)
        self._last_failure: str | None = None

    # --- follow -----------------------------------------------------------------------------

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        """Tail with backfill across reconnects, from the checkpoint or now - lookback."""
        floor = Floor(self.ctx.checkpoint)
        # twice the overlap: the late-entry count must know what was delivered just before it
        recent = Recent(2 * self.overlap_ns, lambda: int(self.clock() * NS))
        intake = Intake(self.name, self.ctx.max_line_bytes, floor=floor, recent=recent)
        resume = floor.resume_ns(int(RESUME_HORIZON_S * NS))
        if resume is None:
            start = self._now_ns() - int(self.config.lookback * NS)
        else:
            start = resume - self.overlap_ns
        self._covered_ns = start
        up = self.ctx.metrics.source_up.labels(self.name)
        try:
            async with self._client() as client:
                while not self.ctx.shutdown.is_set():
                    began = time.monotonic()
                    try:
                        async with contextlib.aclosing(
                            self._session(client, intake, start)
                        ) as batches:
                            async for batch in batches:
                                yield batch
                    except LokiError as exc:
                        if exc.fatal and not self._ok:
                            raise
                        self._log_failure(str(exc))
                    up.set(0)
                    if time.monotonic() - began >= self.healthy_after:
                        self.backoff.reset()
                    if not await self.backoff.wait(self.ctx.shutdown):
                        return
                    self.ctx.metrics.source_reconnects.labels(self.name).inc()
        except _Stopped:
            return
        finally:
            up.set(0)

    async def _session(
        self, client: LokiClient, intake: Intake, first_start: int
    ) -> AsyncIterator[list[RawLine]]:
        """Catch up, open the tail, close the gap, then relay tail messages until it ends."""
        self._sessions += 1
        if self._sessions > 1:
            await self._count_late(client, intake, first_start)
        async with contextlib.aclosing(
            self._backfill(client, intake, first_start, self._now_ns())
        ) as batches:
            async for batch in batches:
                yield batch
        end = self._now_ns()
        cfg = self.config
        ws = await self._or_shutdown(client.open_tail(self.query, end, cfg.limit, cfg.delay_for))
        try:
            self._connected()
            # entries that reached Loki between the catch-up and the handshake
            async with contextlib.aclosing(
                self._backfill(client, intake, first_start, end)
            ) as batches:
                async for batch in batches:
                    yield batch
            self._covered_ns = max(self._covered_ns, end)  # the tail delivers from `end` on
            while True:
                try:
                    msg = await self._or_shutdown(ws.receive(timeout=self.stall_check))
                except TimeoutError:
                    async with contextlib.aclosing(
                        self._missed(client, intake, first_start)
                    ) as batches:
                        async for batch in batches:
                            yield batch
                    continue
                if msg.type == aiohttp.WSMsgType.TEXT:
                    entries, dropped = parse_tail_message(msg.data)
                    self._count_dropped(dropped)
                    if batch := self._accept(intake, entries):
                        yield batch
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise LokiError(f"Loki tail connection failed: {ws.exception()}")
                elif msg.type in _CLOSED:
                    reason = msg.extra if msg.type == aiohttp.WSMsgType.CLOSE else None
                    if ws.close_code != 1000:
                        detail = f": {reason}" if reason else ""
                        raise LokiError(f"Loki closed the tail (code {ws.close_code}){detail}")
                    # routine: Loki ends every tail after querier.tail-max-duration (1 h)
                    self.ctx.log.info("Loki ended the tail; reconnecting.", reason=reason)
                    return
        finally:
            await ws.close()

    async def _missed(
        self, client: LokiClient, intake: Intake, first_start: int
    ) -> AsyncIterator[list[RawLine]]:
        """After tail silence: what Loki holds that the tail should have sent; if anything, the
        tail has stalled, so deliver it and end the session (the next one reconnects)."""
        grace = int((STALL_GRACE_S + self.config.delay_for) * NS)
        found = 0
        async with contextlib.aclosing(
            self._backfill(client, intake, first_start, self._now_ns() - grace)
        ) as batches:
            async for batch in batches:
                found += len(batch)
                yield batch
        if found:
            raise LokiError(
                f"Loki's tail sent nothing for {self.stall_check:g}s while {found} entries "
                "arrived; reconnecting"
            )

    def _resume_point(self, intake: Intake, first_start: int) -> int:
        """Where the next backfill starts: a little before everything delivered so far."""
        newest = intake.recent.newest if intake.recent is not None else None
        mark = max(self._covered_ns, newest if newest is not None else 0)
        return max(first_start, mark - self.overlap_ns)

    async def _backfill(
        self, client: LokiClient, intake: Intake, first_start: int, end: int
    ) -> AsyncIterator[list[RawLine]]:
        start = self._resume_point(intake, first_start)
        async with contextlib.aclosing(self._pages(client, start, end, scan=False)) as pages:
            async for page in pages:
                if batch := self._accept(intake, page):
                    yield batch

    async def _count_late(self, client: LokiClient, intake: Intake, first_start: int) -> None:
        """After a disconnect: entries in the max_lateness slice before the re-read that were
        never delivered arrived later than max_lateness: counted and logged, not delivered
        (the slice before that one is not looked at, so this is a lower bound)."""
        hi = self._resume_point(intake, first_start)
        lo = max(first_start, hi - self.overlap_ns)
        late = 0
        if lo < hi and intake.recent is not None:
            async with contextlib.aclosing(self._paginate(client, lo, hi, scan=False)) as pages:
                async for page in pages:
                    late += sum(not intake.delivered(entry) for entry in page)
        if late:
            self.ctx.metrics.dropped_lines.labels("late").inc(late)
            self.ctx.log.warning(
                "Loki entries arrived later than max_lateness while disconnected; not "
                "delivered (raise max_lateness to keep them).",
                count=late,
                max_lateness=self.config.max_lateness,
            )

    def _connected(self) -> None:
        # a session that got this far was healthy, however short: the next reconnect starts
        # from the initial delay (short sessions used to climb to the 60 s cap and lag behind)
        self.backoff.reset()
        self.ctx.metrics.source_up.labels(self.name).set(1)
        if self._last_failure is not None:
            self.ctx.log.info("Loki tail connected again.")
        self._last_failure = None

    # --- scan -------------------------------------------------------------------------------

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """The entries of [start, end] (None: now - lookback / now), oldest first."""
        now = self.clock()
        lo = int((now - self.config.lookback if start is None else start) * NS)
        hi = int((now if end is None else end) * NS) + 1  # Loki's end is exclusive
        intake = Intake(self.name, self.ctx.max_line_bytes)
        try:
            async with (
                self._client() as client,
                contextlib.aclosing(self._pages(client, lo, hi, scan=True)) as pages,
            ):
                async for page in pages:
                    if batch := self._accept(intake, page):
                        yield batch
        except _Stopped:
            return

    # --- query_range paging -------------------------------------------------------------------

    async def _pages(
        self, client: LokiClient, lo: int, hi: int, *, scan: bool
    ) -> AsyncIterator[list[Entry]]:
        """Every entry of [lo, hi), in chunks of `chunk` so no query exceeds max_query_length."""
        step = max(1, int(self.config.chunk * NS))
        while lo < hi:
            top = min(hi, lo + step)
            async with contextlib.aclosing(self._paginate(client, lo, top, scan=scan)) as pages:
                async for page in pages:
                    yield page
            self._covered_ns = max(self._covered_ns, top)
            lo = top

    async def _paginate(
        self, client: LokiClient, lo: int, hi: int, *, scan: bool
    ) -> AsyncIterator[list[Entry]]:
        """Pages of [lo, hi): each starts at the previous page's last timestamp (several entries
        can share one), dropping the entries at that timestamp the previous page returned."""
        limit = self.config.limit
        edge_ns, edge = -1, set[bytes]()
        while True:
            entries = await self._query(client, lo, hi, limit, scan=scan)
            fresh = [e for e in entries if e.ns != edge_ns or e.ident not in edge]
            if fresh:
                yield fresh
            if len(entries) < limit:
                return
            top = entries[-1].ns
            at_top = {e.ident for e in _tail_at(entries, top)}
            edge = edge | at_top if top == edge_ns else at_top
            edge_ns = top
            if top > lo:
                lo, limit = top, self.config.limit
            elif limit < MAX_LIMIT:
                limit = min(MAX_LIMIT, limit * 2)  # a full page of one timestamp: ask for more
            else:
                self.ctx.log.warning(
                    "More Loki entries share one timestamp than a query may return; "
                    "skipping the rest of them.",
                    ns=top,
                    limit=limit,
                )
                lo, limit = top + 1, self.config.limit

    async def _query(
        self, client: LokiClient, lo: int, hi: int, limit: int, *, scan: bool
    ) -> list[Entry]:
        """One query_range; in scan mode transient failures are retried a few times."""
        attempt = 0
        while True:
            try:
                entries = await self._or_shutdown(client.query_range(self.query, lo, hi, limit))
            except LokiError as exc:
                attempt += 1
                if not scan or exc.fatal or attempt >= SCAN_ATTEMPTS:
                    raise
                self._log_failure(str(exc))
                if not await self.backoff.wait(self.ctx.shutdown):
                    raise _Stopped from None
                continue
            self._ok = True
            if scan:
                self.backoff.reset()  # the next failure of a long scan starts short again
            else:
                self.ctx.metrics.source_up.labels(self.name).set(1)  # reading, tail or not
            return entries

    # --- shared -------------------------------------------------------------------------------

    def _accept(self, intake: Intake, entries: list[Entry]) -> list[RawLine]:
        """RawLines for new entries, with the accounting in the metrics."""
        batch = intake.accept(entries)
        duplicates, truncated = intake.take_counts()
        metrics = self.ctx.metrics
        if duplicates:
            metrics.duplicate_lines.labels(self.name).inc(duplicates)
        if truncated:
            metrics.truncated_lines.labels(self.name).inc(truncated)
        if batch:
            newest = max(line.timestamp or 0.0 for line in batch)
            metrics.source_lag.labels(self.name).set(max(0.0, self.clock() - newest))
        return batch

    def _count_dropped(self, dropped: int) -> None:
        if dropped:
            # Loki could not send these to us (we read too slowly); they are not recovered
            self.ctx.metrics.dropped_lines.labels("upstream").inc(dropped)
            self.ctx.log.warning("Loki dropped tail entries for this slow client.", count=dropped)

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[LokiClient]:
        """A client with its session; secrets are read from the environment here."""
        cfg = self.config
        headers = auth_headers(
            tenant=cfg.tenant,
            username=cfg.username,
            password=read_secret(cfg.password_env, "password_env"),
            token=read_secret(cfg.token_env, "token_env"),
        )
        timeout = aiohttp.ClientTimeout(total=None, connect=cfg.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            yield LokiClient(
                session,
                cfg.url,
                headers,
                timeout=cfg.timeout,
                ssl=ssl_option(cfg.tls_verify, cfg.ca_file),
            )

    async def _or_shutdown(self, aw: Awaitable[T]) -> T:
        """Await `aw`, or raise _Stopped as soon as shutdown is set (cancelling `aw`)."""
        task = asyncio.ensure_future(aw)
        stop = asyncio.ensure_future(self.ctx.shutdown.wait())
        try:
            await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if task.cancelled():
            raise _Stopped
        return task.result()

    def _now_ns(self) -> int:
        return int(self.clock() * NS)

    def _log_failure(self, error: str) -> None:
        """One log line per failure; identical repeats drop to debug so an outage stays quiet."""
        level = "debug" if error == self._last_failure else "warning"
        self._last_failure = error
        getattr(self.ctx.log, level)(
            "Loki request failed; retrying.", error=error, attempt=self.backoff.attempt
        )


_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


def _tail_at(entries: list[Entry], ns: int) -> list[Entry]:
    """The entries at timestamp `ns` at the end of a sorted list."""
    i = len(entries)
    while i and entries[i - 1].ns == ns:
        i -= 1
    return entries[i:]
