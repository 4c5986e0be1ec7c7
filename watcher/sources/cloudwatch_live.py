"""mode = "live": CloudWatch Live Tail (StartLiveTail), with FilterLogEvents filling the gaps.

A session streams events as CloudWatch ingests them (one update a second), so errors arrive in
seconds rather than a poll interval. The session is a blocking botocore EventStream: a worker
thread iterates it and hands each update to the event loop.

Every session is opened *before* the gap is backfilled: FilterLogEvents then covers everything
visible up to the session's start, the session everything after, and what both deliver is
de-duplicated. Live results carry no eventId, so in this mode events are keyed by content
(stream, timestamp, message) on both paths.

A session ends at AWS's 3-hour limit (restarted a little before it), on an EventStreamError
(SessionStreamingException, throttling…: backoff), or when the stream closes (backoff too: AWS
does not end a healthy session early). A session that reports `sampled` (over 500 matching
events a second, AWS sends only a sample) is ended at once, and the backfill reads the full
set, so sampling never loses an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import botocore.exceptions as bx

from watcher.model import RawLine
from watcher.sources import cloudwatch_aws as aws
from watcher.sources.cloudwatch_aws import CloudWatchError
from watcher.sources.cloudwatch_config import MAX_LIVE_GROUPS

if TYPE_CHECKING:
    from watcher.sources.cloudwatch import CloudWatchSource

SESSION_MAX = 3 * 3600 - 120  # seconds: restart ahead of AWS's 3-hour session limit
SESSION_HEALTHY = 60.0  # a session that lasted this long resets the backoff
_CLEAN_END = ("SessionTimeoutException",)  # the 3-hour limit: restart, no backoff


class StreamEnded(Exception):
    """The Live Tail stream closed without an error (AWS does not do that to a healthy one)."""


class Session:
    """One StartLiveTail session, iterated in a worker thread, read as a queue of updates."""

    def __init__(self, client: Any, params: dict[str, Any]) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._stop = threading.Event()
        self._closed_early = False  # closed by us while the thread still ran
        self._stream: Any = None
        self._loop = asyncio.get_running_loop()
        self.task = asyncio.ensure_future(asyncio.to_thread(self._run, client, params))

    def _run(self, client: Any, params: dict[str, Any]) -> None:
        response = client.start_live_tail(**params)
        self._stream = response["responseStream"]
        try:
            for item in self._stream:
                if self._stop.is_set():
                    return
                self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        finally:
            _close(self._stream)
        if not self._stop.is_set():
            raise StreamEnded("the Live Tail stream ended")

    async def next(self, shutdown: asyncio.Event, deadline: float) -> dict[str, Any] | None:
        """The next update, or None once the session is over (ended, failed, deadline, stop)."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        if self.task.done() or shutdown.is_set():
            return None
        get = asyncio.ensure_future(self.queue.get())
        stop = asyncio.ensure_future(shutdown.wait())
        try:
            await asyncio.wait(
                {get, stop, self.task},
                timeout=max(0.0, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stop.cancel()
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        # the thread queued its last updates before it finished: they come first
        return self.queue.get_nowait() if not self.queue.empty() else None

    def close(self) -> None:
        """Stop reading; closing the stream wakes the thread if it waits for the next update."""
        if not self.task.done():
            self._closed_early = True
        self._stop.set()
        _close(self._stream)

    def error(self) -> BaseException | None:
        """Why the session ended (None: still running, or closed by us; whatever the closing
        made the thread raise is not the session's error)."""
        if self._closed_early or not self.task.done() or self.task.cancelled():
            return None
        return self.task.exception()


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if callable(close):
        # closing a half-dead HTTP stream may raise anything; it is being thrown away
        with contextlib.suppress(Exception):
            close()


async def follow_live(src: CloudWatchSource) -> AsyncIterator[list[RawLine]]:
    """Live-tail the groups until shutdown; backfill before every session."""
    from watcher.sources.cloudwatch import _Stopped

    shutdown = src.ctx.shutdown
    try:
        await src.setup()
    except _Stopped:
        return
    while not shutdown.is_set():
        try:
            arns = await src.call(group_arns, src)
            session = Session(src.client, session_params(src, arns))
        except _Stopped:
            return
        except (CloudWatchError, bx.BotoCoreError, bx.ClientError, OSError) as exc:
            if isinstance(exc, CloudWatchError) and not src.started:
                raise
            if not await src.recover(exc):
                return
            continue
        opened = time.monotonic()
        sampled = False
        try:
            async for batch in _run(src, session, opened + SESSION_MAX):
                if batch is _SAMPLED:
                    sampled = True
                    break
                yield batch  # type: ignore[misc]
        except _Stopped:
            return
        except (bx.BotoCoreError, bx.ClientError, OSError) as exc:
            session.close()
            if not await src.recover(exc):
                return
            continue
        finally:
            session.close()
        if shutdown.is_set():
            return
        if not await _after_session(src, session, opened, sampled):
            return


_SAMPLED: list[RawLine] = []  # a marker batch (never yielded): the session was sampled


async def _run(src: CloudWatchSource, session: Session, deadline: float) -> AsyncIterator[Any]:
    """Backfill once the session is open, then its updates as line batches."""
    shutdown = src.ctx.shutdown
    first = await session.next(shutdown, deadline)
    if first is None:
        return  # failed to open (the caller reads session.error()) or shut down
    async for batch in src.poll_round(latency=0.0):
        yield batch
    # a session that dies right after opening must not reset the backoff: only a long one does
    src.healthy(reset_backoff=False)
    item: dict[str, Any] | None = first
    while item is not None:
        update = item.get("sessionUpdate")
        if update:
            lines = _update_lines(src, update)
            for start in range(0, len(lines), 2000):
                yield lines[start : start + 2000]
            if (update.get("sessionMetadata") or {}).get("sampled"):
                src.ctx.log.warning("live tail sampled; reading the full set", source=src.name)
                yield _SAMPLED
                return
        item = await session.next(shutdown, deadline)


async def _after_session(
    src: CloudWatchSource, session: Session, opened: float, sampled: bool
) -> bool:
    """Decide how the next session starts: at once, or after a backoff; False on shutdown."""
    error = session.error()
    lasted = time.monotonic() - opened
    if lasted >= SESSION_HEALTHY:
        src.backoff.reset()
    if sampled or (error is None and lasted >= SESSION_MAX):
        return True
    if error is not None and aws.error_code(error) in _CLEAN_END:
        return True
    return await src.recover(error or StreamEnded("the Live Tail stream ended"))


def _update_lines(src: CloudWatchSource, update: dict[str, Any]) -> list[RawLine]:
    """The lines of one sessionUpdate, de-duplicated against the backfill."""
    names = {arn: name for name, arn in src.arns.items()}
    by_group: dict[str, list[dict[str, Any]]] = {}
    for result in update.get("sessionResults") or []:
        ident = str(result.get("logGroupIdentifier", ""))
        group = names.get(ident) or _name_from_arn(ident)
        if group in src.tails:
            by_group.setdefault(group, []).append(result)
    lines: list[RawLine] = []
    for group, results in by_group.items():
        tail = src.tails[group]
        lines.extend(src.to_lines(group, results, tail))
        if not (update.get("sessionMetadata") or {}).get("sampled"):
            tail.advance(max(int(r.get("timestamp", 0)) for r in results))
    return lines


def _name_from_arn(identifier: str) -> str:
    """ "arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]" -> NAME (a plain name is returned)."""
    if not identifier.startswith("arn:"):
        return identifier
    _, _, rest = identifier.partition(":log-group:")
    return rest.removesuffix(":*")


def group_arns(src: CloudWatchSource) -> dict[str, str]:
    """ARNs of the followed groups (StartLiveTail takes ARNs, not names); runs in a thread."""
    wanted = [group for group, tail in src.tails.items() if not tail.missing]
    if src.config.log_group_prefix:
        arns = {g: src.arns[g] for g in wanted if g in src.arns}
    else:
        arns = {}
        for group in wanted:
            found = aws.resolve_prefix(src.client, group).get(group)
            if found:
                arns[group] = found
        src.arns = arns
    if not arns:
        names = ", ".join(repr(g) for g in src.tails)
        raise CloudWatchError(f"log group(s) not found in region {src.region}: {names}")
    if len(arns) > MAX_LIVE_GROUPS:
        if not src.started:
            raise CloudWatchError(
                f"live mode follows at most {MAX_LIVE_GROUPS} log groups, {len(arns)} match; "
                'use mode = "poll" or a narrower log_group_prefix'
            )
        src.ctx.log.warning("live tail limited to 10 log groups", source=src.name)
        arns = dict(sorted(arns.items())[:MAX_LIVE_GROUPS])
    return arns


def session_params(src: CloudWatchSource, arns: dict[str, str]) -> dict[str, Any]:
    """StartLiveTail arguments: ARNs, the filter pattern, a stream prefix for a single group."""
    params: dict[str, Any] = {"logGroupIdentifiers": list(arns.values())}
    if src.config.filter_pattern:
        params["logEventFilterPattern"] = src.config.filter_pattern
    if src.config.log_stream_prefix and len(arns) == 1:
        params["logStreamNamePrefixes"] = [src.config.log_stream_prefix]
    return params
