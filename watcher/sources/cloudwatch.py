"""The cloudwatch source: AWS CloudWatch Logs groups, polled with FilterLogEvents.

Follow mode polls every `interval` seconds, per log group, the window from the last position
minus `overlap` up to `now - latency`, all pages (an empty page with a next token is not the
end). The overlap re-reads events that arrived late; event ids drop the ones already delivered.
`filter_pattern` is applied by CloudWatch, so only matching events cross the network. Scan mode
reads [start, end] once. Lambda runtime shapes are normalised (see lambda_lines), the resume
rules are in cloudwatch_events, one group's poll (resumed by next token after an error) in
cloudwatch_poll, the boto3 calls in cloudwatch_aws, `mode = "live"` (Live Tail) in
cloudwatch_live, and the config (the [[sources]] keys) in cloudwatch_config.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import botocore.exceptions as bx

from watcher.backoff import Backoff, sleep_or_shutdown
from watcher.model import RawLine
from watcher.sources import cloudwatch_aws as aws
from watcher.sources.base import SourceContext
from watcher.sources.cloudwatch_aws import CloudWatchError
from watcher.sources.cloudwatch_config import DEFAULT_FILTER, CloudWatchSourceConfig
from watcher.sources.cloudwatch_events import (
    GroupTail,
    LineMaker,
    chunks,
    content_key,
    line_count,
    read_checkpoint,
    resume_start,
    stream_key,
)
from watcher.sources.cloudwatch_poll import poll_group

__all__ = ["DEFAULT_FILTER", "CloudWatchSource", "CloudWatchSourceConfig"]

T = TypeVar("T")

RESOLVE_EVERY = 300.0  # seconds between re-resolving log_group_prefix / re-checking missing groups
# FilterLogEvents is limited to a few requests per second per account and region; beyond this
# many calls per second the adaptive retry mode will be throttling us
CALLS_PER_SECOND_WARN = 4.0
SCAN_ATTEMPTS = 5  # transient failures a scan rides out (after botocore's own retries)


class _Stopped(Exception):
    """Shutdown was set while a call was in flight."""


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class CloudWatchSource:
    """Polls (or live-tails) the configured log groups; scan mode reads a window once."""

    delivery = "at_least_once"

    def __init__(
        self,
        config: CloudWatchSourceConfig,
        ctx: SourceContext,
        *,
        client: Any = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.name
        self.client = client  # injected by tests; otherwise made on first use
        self.region = config.region or "unknown"
        self.backoff = backoff or Backoff(cap=config.max_backoff)
        self.clock = clock
        self.maker = LineMaker(config.name, ctx.max_line_bytes)
        self.tails: dict[str, GroupTail] = {}
        self.arns: dict[str, str] = {}  # group -> ARN, when resolved by prefix (live mode)
        self.started = False  # a poll has succeeded: later errors are transient
        # live mode keys events by content: Live Tail results carry no eventId
        self.content_ids = config.mode == "live"
        self._next_resolve = 0.0
        self._last_resolve_wall = 0.0
        self._reported_missing: set[str] = set()
        self._last_failure = ""

    # --- follow ------------------------------------------------------------------------------

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        """Follow the groups until shutdown, from the checkpoint or `now - lookback`."""
        if self.config.mode == "live":
            from watcher.sources.cloudwatch_live import follow_live

            source = follow_live(self)
        else:
            source = self._follow_poll()
        try:
            async for batch in source:
                yield batch
        finally:
            await source.aclose()
            self._up(0)

    async def _follow_poll(self) -> AsyncIterator[list[RawLine]]:
        try:
            await self.setup()
        except _Stopped:
            return
        while not self.ctx.shutdown.is_set():
            try:
                async for batch in self.poll_round():
                    yield batch
            except _Stopped:
                return
            except (bx.BotoCoreError, bx.ClientError, OSError) as exc:
                if not await self.recover(exc):
                    return
                continue
            self.healthy()
            if await sleep_or_shutdown(self.ctx.shutdown, self.config.interval):
                return

    async def setup(self) -> None:
        """Client and groups, retrying transient errors; raises CloudWatchError when fatal."""
        await self._retrying(self.connect)
        groups = await self._retrying(self.resolve_groups)
        floors = read_checkpoint(self.ctx.checkpoint, groups)
        default = _ms(self.clock() - self.config.lookback)
        for group in groups:
            self.add_tail(group, floors.get(group, {}), default)
        self._last_resolve_wall = self.clock()
        self._next_resolve = time.monotonic() + RESOLVE_EVERY
        self._warn_rate()

    def add_tail(self, group: str, floors: dict[str, Any], default_start: int) -> None:
        """Follow `group` from its floors' resume point, else from `default_start` (epoch ms)."""
        overlap = _ms(self.config.overlap)
        start = resume_start(floors, overlap)
        first = default_start if start is None else start
        self.tails[group] = GroupTail(group, first, overlap, floors)
        self.maker.seed(floors)

    async def recover(self, exc: BaseException) -> bool:
        """After a failed poll: raise when fatal at start, else back off; False on shutdown."""
        if aws.is_fatal(exc) and not self.started:
            raise CloudWatchError(f"cloudwatch source {self.name!r}: {aws.describe(exc)}") from None
        self._up(0)
        self._log_failure(exc)
        if not await self.backoff.wait(self.ctx.shutdown):
            return False
        self.ctx.metrics.source_reconnects.labels(self.name).inc()
        return True

    def healthy(self, *, reset_backoff: bool = True) -> None:
        """A poll round completed: the source is up and (by default) the backoff starts over."""
        if not self.started or self._last_failure:
            self.ctx.log.info("cloudwatch source reading", source=self.name, groups=len(self.tails))
        self.started = True
        self._last_failure = ""
        self._up(1)
        if reset_backoff:
            self.backoff.reset()

    async def poll_round(self, latency: float | None = None) -> AsyncIterator[list[RawLine]]:
        """One poll of every group up to `now - latency` (the configured latency by default)."""
        if time.monotonic() >= self._next_resolve:
            await self._refresh()
        end = _ms(self.clock() - (self.config.latency if latency is None else latency))
        for tail in list(self.tails.values()):
            if tail.missing:
                continue
            try:
                async for batch in self.poll_group(tail, end):
                    yield batch
            except bx.ClientError as exc:
                if aws.error_code(exc) != "ResourceNotFoundException":
                    raise
                self._missing(tail)
            else:
                self._found(tail.group)
        if self.tails and all(t.missing for t in self.tails.values()) and not self.started:
            names = ", ".join(repr(g) for g in self.tails)
            raise CloudWatchError(f"log group(s) not found in region {self.region}: {names}")
        self.maker.forget_idle(end)

    def poll_group(self, tail: GroupTail, end: int) -> AsyncIterator[list[RawLine]]:
        """Every page of one group's window [tail.start, end], de-duplicated; first the rest of
        a query an error interrupted (see cloudwatch_poll)."""
        return poll_group(self, tail, end)

    # --- scan --------------------------------------------------------------------------------

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """The events of [start, end] (epoch seconds; None = unbounded) of every group, once."""
        try:
            await self._scan_call(self.connect)
            groups = await self._scan_call(self.resolve_groups)
            # every group is checked before any is read: a typo fails the scan at once
            for group in groups if self.config.log_groups else ():
                await self._scan_call(aws.check_group, self.client, group, self.region)
        except _Stopped:
            return
        first = None if start is None else _ms(start)
        last = None if end is None else _ms(end)
        for group in groups:
            try:
                async for page in self.pages(group, first, last, scan=True):
                    for chunk in chunks(self.to_lines(group, page.events, None)):
                        yield chunk
            except _Stopped:
                return

    async def _scan_call(self, fn: Callable[..., T], *args: Any) -> T:
        """A call for scan mode: fatal errors raise, transient ones get a few backed-off tries."""
        for attempt in range(SCAN_ATTEMPTS):
            try:
                return await self.call(fn, *args)
            except (bx.BotoCoreError, bx.ClientError, OSError) as exc:
                if aws.is_fatal(exc) or attempt == SCAN_ATTEMPTS - 1:
                    raise CloudWatchError(
                        f"cloudwatch source {self.name!r}: {aws.describe(exc)}"
                    ) from None
                self._log_failure(exc)
                if not await self.backoff.wait(self.ctx.shutdown):
                    raise _Stopped from None
        raise AssertionError("unreachable")

    # --- shared ------------------------------------------------------------------------------

    async def pages(
        self,
        group: str,
        start: int | None,
        end: int | None,
        *,
        token: str | None = None,
        scan: bool = False,
    ) -> AsyncIterator[aws.Page]:
        """Every page of one query from `token` (None: the first), following next tokens to the
        end; a scan retries each call in place, so its query never restarts."""
        cfg = self.config
        params = aws.filter_params(
            group,
            start=start,
            end=end,
            pattern=cfg.filter_pattern,
            stream_prefix=cfg.log_stream_prefix,
            limit=cfg.page_limit,
        )
        while True:
            if scan:
                page = await self._scan_call(aws.filter_page, self.client, params, token)
            else:
                page = await self.call(aws.filter_page, self.client, params, token)
            yield page
            if page.next_token is None or page.next_token == token:
                return  # (the same token twice would page forever)
            token = page.next_token

    def to_lines(
        self, group: str, events: list[dict[str, Any]], tail: GroupTail | None
    ) -> list[RawLine]:
        """RawLines of a page's events; `tail` de-duplicates (follow), None keeps all (scan)."""
        prefix = self.config.log_stream_prefix
        out: list[RawLine] = []
        duplicates = 0
        for event in events:
            stream = str(event.get("logStreamName", ""))
            if prefix and not stream.startswith(prefix):
                continue  # AWS filters by prefix already; moto ignores logStreamNamePrefix
            key = stream_key(group, stream)
            ts = int(event.get("timestamp", 0))
            message = str(event.get("message", ""))
            event_id = event.get("eventId")
            if self.content_ids or not event_id:
                ident = content_key(key, ts, message)
            else:
                ident = event_id = str(event_id)
            if tail is not None and not tail.is_new(ident, key, ts, message, event_id):
                duplicates += line_count(message)
                continue
            out.extend(self.maker.make(key, ts, ident, message))
        self.count(out, duplicates)
        return out

    def count(self, lines: list[RawLine], duplicates: int) -> None:
        """Metrics for lines about to be yielded: duplicates, truncations, lag."""
        metrics = self.ctx.metrics
        if duplicates:
            metrics.duplicate_lines.labels(self.name).inc(duplicates)
        truncated = self.maker.take_truncated()
        if truncated:
            metrics.truncated_lines.labels(self.name).inc(truncated)
        if lines and lines[-1].timestamp is not None:
            metrics.source_lag.labels(self.name).set(max(0.0, self.clock() - lines[-1].timestamp))

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker thread; raises _Stopped as soon as shutdown is set.

        The thread cannot be interrupted; it finishes on its own (within the read timeout) and
        its result is dropped.
        """
        if self.ctx.shutdown.is_set():
            raise _Stopped
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        stop = asyncio.ensure_future(self.ctx.shutdown.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            work.cancel()
            raise
        finally:
            stop.cancel()
        if not work.done():  # shutdown won the race
            work.cancel()
            raise _Stopped
        return work.result()

    async def _retrying(self, fn: Callable[[], Any]) -> Any:
        """Call `fn` in a thread until it succeeds: fatal errors raise, transient ones back off."""
        while True:
            try:
                return await self.call(fn)
            except CloudWatchError:
                raise
            except (bx.BotoCoreError, bx.ClientError, OSError) as exc:
                if aws.is_fatal(exc):
                    raise CloudWatchError(
                        f"cloudwatch source {self.name!r}: {aws.describe(exc)}"
                    ) from None
                self._up(0)
                self._log_failure(exc)
                if not await self.backoff.wait(self.ctx.shutdown):
                    raise _Stopped from None
                self.ctx.metrics.source_reconnects.labels(self.name).inc()

    def connect(self) -> None:
        """Make the boto3 client (in a worker thread: it reads files and service models)."""
        if self.client is None:
            cfg = self.config
            self.client, self.region = aws.make_client(
                region=cfg.region,
                profile=cfg.profile,
                endpoint_url=cfg.endpoint_url,
                live=cfg.mode == "live",
            )

    def resolve_groups(self) -> list[str]:
        """The configured groups, or those matching the prefix (raises when none match)."""
        if self.config.log_groups:
            return list(self.config.log_groups)
        self.arns = aws.resolve_prefix(self.client, self.config.log_group_prefix)
        if not self.arns and not self.started:
            raise CloudWatchError(
                f"no log group matches prefix {self.config.log_group_prefix!r} "
                f"in region {self.region}"
            )
        return sorted(self.arns)

    async def _refresh(self) -> None:
        """Pick up new groups of the prefix, drop vanished ones, re-check missing ones."""
        self._next_resolve = time.monotonic() + RESOLVE_EVERY
        for tail in self.tails.values():
            tail.missing = False
        if not self.config.log_group_prefix:
            return
        groups = await self.call(self.resolve_groups)
        # a group created since the last resolution may already hold events from before it
        since = _ms(min(self.clock() - self.config.lookback, self._last_resolve_wall))
        self._last_resolve_wall = self.clock()
        for group in set(groups) - set(self.tails):
            self.ctx.log.info("log group added", source=self.name, group=group)
            self.add_tail(group, read_checkpoint(self.ctx.checkpoint, [group])[group], since)
        for group in set(self.tails) - set(groups):
            self.ctx.log.info("log group gone", source=self.name, group=group)
            del self.tails[group]
        self._warn_rate()

    def _missing(self, tail: GroupTail) -> None:
        tail.missing = True
        tail.resume = None  # its query went with the group; a group made again starts over
        if tail.group not in self._reported_missing:
            self._reported_missing.add(tail.group)
            self.ctx.log.error(
                "log group not found", source=self.name, group=tail.group, region=self.region
            )

    def _found(self, group: str) -> None:
        if group in self._reported_missing:
            self._reported_missing.discard(group)
            self.ctx.log.info("log group found", source=self.name, group=group)

    def _warn_rate(self) -> None:
        if self.config.mode == "live":
            return  # one long session, no polling
        rate = len(self.tails) / self.config.interval
        if rate > CALLS_PER_SECOND_WARN:
            self.ctx.log.warning(
                "polling this many log groups this often will be throttled; raise interval",
                source=self.name,
                groups=len(self.tails),
                interval=self.config.interval,
            )

    def _up(self, value: int) -> None:
        self.ctx.metrics.source_up.labels(self.name).set(value)

    def _log_failure(self, exc: BaseException) -> None:
        """One warning per distinct error; repeats of the same one drop to debug."""
        text = aws.describe(exc)
        level = "debug" if text == self._last_failure else "warning"
        self._last_failure = text
        getattr(self.ctx.log, level)(
            "cloudwatch call failed; backing off",
            source=self.name,
            error=text,
            attempt=self.backoff.attempt,
        )
