"""Sources under faults, each checked for data integrity: every line written is delivered, and
none twice (or within the source's declared bound).

Only what tests/sources/test_*.py and tests/test_*_daemon.py do not already cover is here: the
file source under load (deletion and re-creation, a 10 MB write, rename rotation with late
writes, copytruncate with a refill), a Railway CLI that exits, hangs and prints garbage in the
middle of a stream, a Loki tail that stalls and one that drops and refuses repeatedly, and
CloudWatch throttling in the middle of paging (the query resumed by its next token, or read again
when that token is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from tests.fakes.loki import FakeLoki
from tests.fakes.moto import REGION, moto_endpoint  # noqa: F401 (the fixture)
from tests.fakes.railway import FakeRailway
from tests.fakes.throttle_proxy import ThrottleProxy
from tests.sources.contract import RecordingLog, Tail, make_ctx, wait_for
from watcher.backoff import Backoff
from watcher.model import RawLine
from watcher.pipeline import solid_cursor
from watcher.sources import file_follower
from watcher.sources import loki as loki_module
from watcher.sources.base import SourceContext
from watcher.sources.cloudwatch import CloudWatchSource, CloudWatchSourceConfig
from watcher.sources.file import FileSource, FileSourceConfig
from watcher.sources.loki import LokiSource, LokiSourceConfig
from watcher.sources.railway import RailwaySource, RailwaySourceConfig

POLL = 0.01
API = {"app": "api"}
MiB = 1024 * 1024
SEQ = re.compile(r"seq=(\d+)")


def counter(metric: Any, *labels: str) -> float:
    """The value of a labelled counter/gauge."""
    return float(metric.labels(*labels)._value.get())


def seqs(tail: Tail) -> list[int]:
    """The sequence numbers of the lines delivered so far, in delivery order."""
    return [int(m.group(1)) for line in tail.lines if (m := SEQ.search(line.text))]


def assert_exactly_once(got: list[int], written: int) -> None:
    """Every sequence number 0..written-1 delivered once: none lost, none twice."""
    counts = Counter(got)
    twice = sorted(n for n, c in counts.items() if c > 1)
    lost = sorted(set(range(written)) - set(counts))
    assert not lost and not twice, f"lost {lost[:20]}… ({len(lost)}), twice {twice[:20]}…"
    assert len(got) == written


async def settle(tail: Tail, count: int, timeout: float = 15.0) -> None:
    """Wait for `count` lines, then a moment for any duplicate right behind them; on a timeout
    return anyway, so the integrity assertion that follows names what is missing."""
    with contextlib.suppress(TimeoutError):
        await tail.wait(count, timeout=timeout)
    await asyncio.sleep(0.1)  # a duplicate would arrive right behind; not a correctness wait
    await tail.stop()


def file_tail(path: Path, **kwargs: object) -> tuple[Tail, FileSource]:
    """A fast-polling file source on `path`, read from its beginning, in a Tail."""
    ctx = make_ctx(max_line_bytes=64 * 1024)
    kwargs.setdefault("read_from", "beginning")
    source = FileSourceConfig(path=str(path), poll_interval=POLL, **kwargs).build(ctx)  # type: ignore[arg-type]
    return Tail(source, ctx), source


def text(seq: int, pad: int = 0) -> str:
    """One numbered line (without its newline)."""
    return f"ERROR canary seq={seq:07d} {'x' * pad}".rstrip()


class Writer(threading.Thread):
    """Appends numbered lines from a thread in small bursts until `count` are written.

    `between(writer)` runs after every burst, in the writer's thread: rotate, delete, …
    """

    def __init__(
        self, path: Path, count: int, between: Callable[[Writer], None], burst: int = 20
    ) -> None:
        super().__init__(name="fault-writer", daemon=True)
        self.path = path
        self.count = count
        self.between = between
        self.burst = burst
        self.written = 0
        self.fh = path.open("a")

    def lines(self, n: int) -> str:
        """The next `n` lines (counted as written)."""
        block = "".join(text(s) + "\n" for s in range(self.written, self.written + n))
        self.written += n
        return block

    def run(self) -> None:
        while self.written < self.count:
            self.fh.write(self.lines(min(self.burst, self.count - self.written)))
            self.fh.flush()
            self.between(self)
            time.sleep(0.002)
        self.fh.close()

    def reopen(self) -> None:
        """What a logger does once it notices its file was rotated: open the path again."""
        self.fh.close()
        self.fh = self.path.open("a")


# --- file ----------------------------------------------------------------------------------------


async def test_file_growing_by_10_mb_in_one_write(tmp_path: Path) -> None:
    """One write() of 10 MB (about 50k lines, one of them over the line cap) is read whole:
    every line once, in order, the long one truncated but counted."""
    path = tmp_path / "app.log"
    path.write_text(text(0) + "\n")
    tail, _ = file_tail(path)
    await tail.wait(1)
    lines = [text(s, pad=200) for s in range(1, 50_001)]
    lines[25_000] = text(25_001, pad=100 * 1024)  # over max_line_bytes (64 KiB)
    block = ("\n".join(lines) + "\n").encode()
    assert len(block) >= 10 * MiB
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        assert os.write(fd, block) == len(block)  # one syscall
    finally:
        os.close(fd)
    await settle(tail, 50_001)
    assert_exactly_once(seqs(tail), 50_001)
    assert seqs(tail) == list(range(50_001))
    assert [i for i, line in enumerate(tail.lines) if line.truncated] == [25_001]
    assert solid_cursor(tail.lines[-1].cursor)["offset"] == path.stat().st_size


async def test_file_deleted_and_recreated_under_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The followed file is deleted and re-created over and over while lines keep coming,
    sometimes after the follower let go of the old file (so the new one may get its inode
    number back): every line once, in order."""
    monkeypatch.setattr(file_follower, "LINGER", 0.05)  # let go of a deleted file soon
    path = tmp_path / "app.log"
    path.write_text("")
    tail, source = file_tail(path)
    await wait_for(lambda: any(f.cur is not None for f in source.followers.values()))

    def delete(writer: Writer) -> None:
        if writer.written % 400 == 0 and writer.written < writer.count:
            writer.fh.close()
            path.unlink()
            if writer.written % 800 == 0:
                # the follower lets go of the old file; its inode number is free again, and
                # the new file appears whole (written aside, renamed in), longer than the old
                deadline = time.monotonic() + 5
                while not all(f.idle for f in source.followers.values()):
                    assert time.monotonic() < deadline
                    time.sleep(POLL)
                aside = tmp_path / "app.log.new"
                aside.write_text(writer.lines(500))
                os.rename(aside, path)
            writer.fh = path.open("a")

    writer = Writer(path, 4000, delete)
    writer.start()
    await asyncio.to_thread(writer.join, 30)  # not join(): it would block the loop
    await settle(tail, writer.written)
    assert_exactly_once(seqs(tail), writer.written)
    assert seqs(tail) == list(range(writer.written))  # in order, too


async def test_file_rename_rotation_with_late_writes_under_load(tmp_path: Path) -> None:
    """logrotate's rename + create while the writer goes on writing to the renamed file for a
    while before it reopens the path: the late lines are read too, every line once."""
    path = tmp_path / "app.log"
    path.write_text("")
    tail, source = file_tail(path)
    await wait_for(lambda: any(f.cur is not None for f in source.followers.values()))
    late: list[int] = []

    def rotate(writer: Writer) -> None:
        if writer.written % 500 == 0:
            os.replace(path, tmp_path / "app.log.1")
            path.write_text("")  # `create`: the new file exists before the app reopens
            late.append(writer.written)
        elif late and writer.written - late[-1] == 100:
            writer.reopen()  # the app's reopen (SIGHUP/SIGUSR1) comes a little later

    writer = Writer(path, 4000, rotate)
    writer.start()
    await asyncio.to_thread(writer.join, 30)  # not join(): it would block the loop
    await settle(tail, 4000)
    assert_exactly_once(seqs(tail), 4000)


async def test_file_copytruncate_with_refill_under_load(tmp_path: Path) -> None:
    """copytruncate while lines keep coming, the file refilled past the old read position
    before the follower looks again: reading restarts at 0, every line once."""
    path = tmp_path / "app.log"
    path.write_text("")
    tail, source = file_tail(path)
    await wait_for(lambda: any(f.cur is not None for f in source.followers.values()))

    def copytruncate(writer: Writer) -> None:
        if writer.written % 400 or writer.written == writer.count:
            return
        # logrotate's own window (lines written between its copy and its truncate are lost
        # to everyone) and lines not yet read at the truncate are not the follower's to
        # save: rotate once it has caught up
        deadline = time.monotonic() + 5
        while len(tail.lines) < writer.written:
            assert time.monotonic() < deadline
            time.sleep(POLL)
        size = path.stat().st_size
        shutil.copy(path, tmp_path / "app.log.1")
        with path.open("r+") as fh:
            fh.truncate(0)
        refill = writer.lines(size // len(text(0)) + 20)  # more bytes than were there
        writer.fh.write(refill)  # the writer's O_APPEND handle: it writes at the new end
        writer.fh.flush()

    writer = Writer(path, 4000, copytruncate)
    writer.start()
    await asyncio.to_thread(writer.join, 30)  # not join(): it would block the loop
    await settle(tail, writer.written)
    assert_exactly_once(seqs(tail), writer.written)


# --- loki ----------------------------------------------------------------------------------------


class StallingLoki(FakeLoki):
    """The fake Loki, whose tails can stall: connected (pings answered) but relaying nothing."""

    stalled = False

    async def _relay(self, request: web.Request, ws: web.WebSocketResponse, tail: Any) -> None:
        while True:
            item = await tail.queue.get()
            if isinstance(item, dict) and self.stalled:
                continue  # the entry is stored (query_range has it); the tail never sends it
            if item == ("gone",):
                return
            if isinstance(item, tuple):
                await ws.close(code=item[1] if len(item) > 1 else 1000)
                return
            await ws.send_json(item)


async def no_sleep(shutdown: asyncio.Event, seconds: float) -> bool:
    """An instant backoff sleep (yielding to the loop)."""
    await asyncio.sleep(0)
    return shutdown.is_set()


def loki_source(ctx: SourceContext, fake: FakeLoki, **kwargs: Any) -> LokiSource:
    """A loki source on the fake: query {app="api"}, no error filter, instant backoff."""
    config = LokiSourceConfig(url=fake.url, query='{app="api"}', error_filter="")
    return LokiSource(config, ctx, backoff=Backoff(sleep=no_sleep), **kwargs)


async def test_loki_stalled_tail_is_caught_and_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tail that stays open but stops sending: after `stall_check` of silence query_range
    finds what it withheld, delivers it, and a new tail takes over; every entry once."""
    monkeypatch.setattr(loki_module, "STALL_GRACE_S", 0.0)
    fake = await StallingLoki().start()
    try:
        ctx = make_ctx(log=RecordingLog())
        tail = Tail(loki_source(ctx, fake, stall_check=0.3), ctx)
        await wait_for(lambda: fake.open_tails == 1)
        for i in range(5):
            fake.push(API, f"ERROR canary seq={i:07d}")
        await tail.wait(5)
        fake.stalled = True
        for i in range(5, 10):
            fake.push(API, f"ERROR canary seq={i:07d}")
        await tail.wait(10)  # through the stall check, not the tail
        await wait_for(lambda: fake.requests["tail"] == 2 and fake.open_tails == 1)
        fake.stalled = False
        for i in range(10, 15):
            fake.push(API, f"ERROR canary seq={i:07d}")
        await settle(tail, 15)
    finally:
        await fake.stop()
    assert seqs(tail) == list(range(15))
    assert counter(ctx.metrics.source_reconnects, "loki") == 1
    warnings = [f["error"] for lv, _, f in ctx.log.records if lv == "warning"]
    assert any("tail sent nothing" in str(w) for w in warnings)


async def test_loki_quiet_tail_is_left_alone() -> None:
    """Silence with nothing withheld is a quiet stream: the check finds nothing, the tail stays."""
    fake = await StallingLoki().start()
    try:
        ctx = make_ctx()
        tail = Tail(loki_source(ctx, fake, stall_check=0.1), ctx)
        await wait_for(lambda: fake.open_tails == 1)
        queries = fake.requests["query_range"]
        await wait_for(lambda: fake.requests["query_range"] >= queries + 3)  # three checks
        fake.push(API, "ERROR canary seq=0000000")
        await settle(tail, 1)
    finally:
        await fake.stop()
    assert fake.requests["tail"] == 1
    assert counter(ctx.metrics.source_reconnects, "loki") == 0
    assert seqs(tail) == [0]


async def test_loki_drops_and_refusals_under_load_lose_and_repeat_nothing() -> None:
    """Entries pushed without pause while the tail is dropped every 0.15 s (clean close, error
    close, cut TCP) and reconnects meet 429s and 503s: every entry arrives exactly once."""
    fake = await FakeLoki().start()
    pushed = 0
    try:
        ctx = make_ctx()
        tail = Tail(loki_source(ctx, fake), ctx)
        await wait_for(lambda: fake.open_tails == 1)
        chaos = [
            lambda: fake.close_tails(code=1000),
            lambda: fake.fail_next(2, 429, "tail"),
            lambda: fake.close_tails(code=1011),
            lambda: fake.fail_next(2, 503, "query_range"),
            lambda: fake.close_tails(abrupt=True),
        ]
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            for _ in range(5):
                fake.push(API, f"ERROR canary seq={pushed:07d}")
                pushed += 1
            if pushed % 75 == 0:
                chaos[(pushed // 75) % len(chaos)]()
            await asyncio.sleep(0.01)
        await settle(tail, pushed)
    finally:
        await fake.stop()
    assert_exactly_once(seqs(tail), pushed)
    assert counter(ctx.metrics.source_reconnects, "loki") >= 5


# --- railway -------------------------------------------------------------------------------------


def railway_source(ctx: SourceContext, fake: FakeRailway, **kwargs: Any) -> RailwaySource:
    """A railway source on the fake CLI, with instant backoff and a short kill grace."""
    config = RailwaySourceConfig(binary=str(fake.binary), **kwargs)
    return RailwaySource(config, ctx, backoff=Backoff(sleep=no_sleep), grace=0.5)


GARBAGE = (b"\x1b[32mNew version available\x1b[0m", b"garbage \xff\xfe\x00 end", b'{"trunc')


async def test_railway_cli_exits_hangs_and_prints_garbage_mid_stream(tmp_path: Path) -> None:
    """Mid-stream the CLI prints garbage, exits (the server closed the stream), then hangs
    silently while errors keep arriving: the idle restart brings them in. Every error line
    arrives exactly once; the garbage arrives as lines and disturbs none of its neighbours."""
    fake = FakeRailway(tmp_path / "railway")
    sent = 0

    def errors(count: int) -> None:
        nonlocal sent
        messages = [f"ERROR canary seq={i:07d}" for i in range(sent, sent + count)]
        fake.add_many(messages, level="error")
        sent += count

    errors(10)
    ctx = make_ctx()
    tail = Tail(railway_source(ctx, fake, idle_restart=0.3), ctx)
    await tail.wait(10)
    for raw in GARBAGE:
        fake.add_raw(raw)
        errors(2)
    await tail.wait(10 + 2 * 3 + 3)
    fake.close_stream()  # the CLI exits; its restart replays the backlog
    await wait_for(lambda: len(fake.log_runs()) == 2)
    errors(10)
    await wait_for(lambda: sum(1 for s in seqs(tail) if s >= 16) == 10)
    fake.set(hang=True)
    fake.close_stream()  # the next CLI says nothing and never exits
    await wait_for(lambda: len(fake.log_runs()) >= 4)  # … and is replaced when idle, again
    errors(10)  # while nothing streams
    fake.set(hang=False)
    await wait_for(lambda: sum(1 for s in seqs(tail) if s >= 26) == 10, timeout=10)
    errors(10)
    await wait_for(lambda: sum(1 for s in seqs(tail) if s >= 36) == 10)
    await settle(tail, 0)
    assert_exactly_once(seqs(tail), sent)
    garbage = [line.text for line in tail.lines if "canary" not in line.text]
    assert set(garbage) == {"New version available", "garbage \ufffd\ufffd\x00 end", '{"trunc'}
    assert counter(ctx.metrics.duplicate_lines, "railway") >= 16  # the replays, dropped


async def test_railway_json_line_behind_a_terminal_escape_is_still_an_entry(
    tmp_path: Path,
) -> None:
    """A terminal escape the CLI prints in front of a JSON line (cursor or line control under
    the pty) does not turn the entry into text: its message arrives once, replays dropped."""
    fake = FakeRailway(tmp_path / "railway")
    entry = {"message": "ERROR canary seq=0000000", "timestamp": fake.next_timestamp()}
    fake.add_raw(b"\x1b[2K" + json.dumps(entry).encode())
    ctx = make_ctx()
    tail = Tail(railway_source(ctx, fake), ctx)
    await tail.wait(1)
    fake.close_stream()  # the restarted CLI replays it
    await wait_for(lambda: len(fake.log_runs()) == 2)
    fake.add("ERROR canary seq=0000001", level="error")
    await tail.wait(2)
    await settle(tail, 0)
    assert tail.texts() == ["ERROR canary seq=0000000", "ERROR canary seq=0000001"]


# --- cloudwatch ----------------------------------------------------------------------------------


class ThrottlingLogs:
    """A real boto3 logs client (on moto) whose every `every`-th FilterLogEvents call fails as
    a throttle that outlived botocore's retries (moto itself never throttles)."""

    def __init__(self, inner: Any, every: int) -> None:
        self.inner = inner
        self.every = every
        self.calls = 0
        self.throttled = 0

    def filter_log_events(self, **params: Any) -> Any:
        self.calls += 1
        if self.calls % self.every == 0:
            self.throttled += 1
            error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
            raise ClientError({"Error": error}, "FilterLogEvents")
        return self.inner.filter_log_events(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def throttled_paging(
    endpoint: str, *, spacing_ms: int, overlap: float, settle_for: float = 3.0
) -> None:
    """Every 4th FilterLogEvents call throttled while a 2,000-event backlog (200 a page, events
    `spacing_ms` apart) is paged and live events keep coming: every event exactly once."""
    logs = boto3.client("logs", endpoint_url=endpoint, region_name=REGION)
    group = f"/watcher-test/{uuid.uuid4().hex[:12]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    written = 0

    def put(count: int, base: int, spacing: int) -> None:
        nonlocal written
        events = [
            {"timestamp": base + i * spacing, "message": f"ERROR canary seq={written + i:07d}"}
            for i in range(count)
        ]
        logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)
        written += count

    put(2000, int(time.time() * 1000) - 2000 * spacing_ms - 1000, spacing_ms)
    client = ThrottlingLogs(boto3.client("logs", endpoint_url=endpoint, region_name=REGION), 4)
    config = CloudWatchSourceConfig(
        name="cw",
        log_groups=[group],
        region=REGION,
        endpoint_url=endpoint,
        filter_pattern="",
        interval=0.05,
        latency=0,
        overlap=overlap,
        page_limit=200,
        lookback=300,
    )
    ctx = make_ctx()
    tail = Tail(CloudWatchSource(config, ctx, client=client, backoff=Backoff(sleep=no_sleep)), ctx)
    for _ in range(10):  # live events, while the backlog is being paged through
        put(20, int(time.time() * 1000), 1)
        await asyncio.sleep(0.05)
    # with no sleep in the backoff a poll that cannot get through fails again at once: give it
    # a dozen throttles, far more than paging through the lot needs
    await wait_for(lambda: client.throttled >= 12, timeout=10)
    await settle(tail, written, timeout=settle_for)
    assert_exactly_once(seqs(tail), written)
    assert counter(ctx.metrics.source_reconnects, "cw") == client.throttled
    assert counter(ctx.metrics.duplicate_lines, "cw") > 0  # retried polls re-read, then dropped


async def test_cloudwatch_throttled_while_paging_loses_and_repeats_nothing(
    moto_endpoint: str,  # noqa: F811
) -> None:
    """Polls that die part-way through paging are retried: what they read again is dropped by
    eventId and counted, nothing is missed (events spread wider than the overlap per page)."""
    await throttled_paging(moto_endpoint, spacing_ms=20, overlap=1.0)


async def test_cloudwatch_throttled_while_paging_a_dense_backlog_makes_progress(
    moto_endpoint: str,  # noqa: F811
) -> None:
    """The same with 10 pages inside the 10 s overlap window: the retries still get through."""
    # after a dozen throttles a poll that gets through has long delivered the lot
    await throttled_paging(moto_endpoint, spacing_ms=1, overlap=10.0, settle_for=0.5)


Fault = Callable[[Any, dict[str, Any]], Any]  # (the real client, the call's params) -> response


def client_error(code: str, message: str) -> ClientError:
    """A FilterLogEvents error as botocore raises it once its retries are spent."""
    return ClientError({"Error": {"Code": code, "Message": message}}, "FilterLogEvents")


def throttle(inner: Any, params: dict[str, Any]) -> Any:
    """A throttle that outlived botocore's retries."""
    raise client_error("ThrottlingException", "Rate exceeded")


def refuse(inner: Any, params: dict[str, Any]) -> Any:
    """AWS's answer to an invalid or expired next token."""
    raise client_error("InvalidParameterException", "The specified nextToken is invalid.")


def unknown(inner: Any, params: dict[str, Any]) -> Any:
    """moto's (and by its account AWS's) answer to a token it does not know: an empty list."""
    return inner.filter_log_events(**params | {"nextToken": f"{params['logGroupName']}@s@x"})


class FaultyLogs:
    """A real boto3 logs client (on moto) whose n-th FilterLogEvents call (from 1) is answered
    by `faults[n]`; every call's parameters are kept."""

    def __init__(self, inner: Any, faults: dict[int, Fault]) -> None:
        self.inner = inner
        self.faults = faults
        self.calls: list[dict[str, Any]] = []

    def filter_log_events(self, **params: Any) -> Any:
        self.calls.append(params)
        fault = self.faults.get(len(self.calls), lambda inner, p: inner.filter_log_events(**p))
        return fault(self.inner, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def backlog_source(
    endpoint: str, faults: dict[int, Fault], ctx: SourceContext
) -> tuple[CloudWatchSource, FaultyLogs, int]:
    """A set-up (not yet polled) source over a 1,000-event backlog, 20 ms apart, 100 a page,
    with a 1 s overlap; and the first event's timestamp."""
    logs = boto3.client("logs", endpoint_url=endpoint, region_name=REGION)
    group = f"/watcher-test/{uuid.uuid4().hex[:12]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    base = int(time.time() * 1000) - 25_000
    events = [{"timestamp": base + i * 20, "message": f"ERROR seq={i:07d}"} for i in range(1000)]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)
    client = FaultyLogs(boto3.client("logs", endpoint_url=endpoint, region_name=REGION), faults)
    config = CloudWatchSourceConfig(
        name="cw",
        log_groups=[group],
        region=REGION,
        filter_pattern="",
        latency=0,
        overlap=1.0,
        page_limit=100,
        lookback=300,
    )
    src = CloudWatchSource(config, ctx, client=client, backoff=Backoff(sleep=no_sleep))
    await src.setup()
    return src, client, base


async def poll(src: CloudWatchSource) -> tuple[list[RawLine], ClientError | None]:
    """One poll round's lines, and the error that ended it early (None: it completed)."""
    lines: list[RawLine] = []
    try:
        async for batch in src.poll_round():
            lines.extend(batch)
    except ClientError as exc:
        return lines, exc
    return lines, None


def numbers(lines: list[RawLine]) -> list[int]:
    """The sequence numbers of `lines`, in order."""
    return [int(m.group(1)) for line in lines if (m := SEQ.search(line.text))]


async def test_cloudwatch_throttled_query_resumes_with_its_next_token(
    moto_endpoint: str,  # noqa: F811
) -> None:
    """A poll throttled after 3 pages goes on, at the next attempt, with the failed call itself
    (same window, same token): nothing is read twice, and every line's cursor stays in
    timestamp order, so none is ahead of an event still to come."""
    ctx = make_ctx()
    src, client, _ = await backlog_source(moto_endpoint, {4: throttle}, ctx)
    first, error = await poll(src)
    assert error is not None and numbers(first) == list(range(300))
    rest, error = await poll(src)
    assert error is None and numbers(rest) == list(range(300, 1000))
    assert client.calls[4] == client.calls[3] and "nextToken" in client.calls[3]
    assert counter(ctx.metrics.duplicate_lines, "cw") == 0
    stamps = [line.cursor["ts"] for line in first + rest]
    assert stamps == [round((line.timestamp or 0) * 1000) for line in first + rest]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("answer", [refuse, unknown], ids=["refused", "answered-empty"])
async def test_cloudwatch_refused_next_token_reads_again_from_the_poll_position(
    moto_endpoint: str,  # noqa: F811
    answer: Fault,
) -> None:
    """When the interrupted query's token is refused (InvalidParameterException, e.g. expired)
    or answered with an empty last page, the poll reads again from its position (the last
    event delivered minus the overlap): what it re-reads is dropped by eventId, nothing lost."""
    ctx = make_ctx(log=RecordingLog())
    src, client, base = await backlog_source(moto_endpoint, {4: throttle, 5: answer}, ctx)
    first, _ = await poll(src)
    rest, error = await poll(src)
    assert error is None
    assert_exactly_once(numbers(first + rest), 1000)
    assert client.calls[4]["nextToken"] == client.calls[3]["nextToken"]
    fresh = client.calls[5]
    assert "nextToken" not in fresh and fresh["startTime"] == base + 299 * 20 - 1000
    assert counter(ctx.metrics.duplicate_lines, "cw") == 51  # events 249..299, 1 s behind 299
    refused = "next token refused; reading again from the poll position"
    assert (refused in ctx.log.events("info")) == (answer is refuse)  # type: ignore[attr-defined]


@pytest.fixture
def quick_botocore_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own retry delays (exponential, 1 s base for throttles) and the clock of its
    adaptive client-side rate limiter (0.5 requests/s after a throttle) at a hundredth of
    real time: the retry logic, error parsing, rate adjustment and paging are botocore's, only
    the waits are shorter, so a run of throttles costs the suite a second instead of 20."""
    from botocore.retries import bucket
    from botocore.retries.standard import ExponentialBackoff

    real = ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        ExponentialBackoff, "delay_amount", lambda self, context: real(self, context) / 100
    )
    # the adaptive limiter's clock runs a hundred times fast: its refills come 100x sooner
    monkeypatch.setattr(bucket.Clock, "current_time", lambda self: time.time() * 100)
    monkeypatch.setattr(bucket.Clock, "sleep", lambda self, amount: time.sleep(amount / 100))


async def proxied_backlog(
    endpoint: str, plan: Callable[[int], bool], ctx: SourceContext, count: int = 600
) -> tuple[Tail, ThrottleProxy, int]:
    """A source reading `count` backlog events (100 a page) through the throttling proxy, with
    its own real boto3 client (adaptive retries), while 100 live events are added."""
    logs = boto3.client("logs", endpoint_url=endpoint, region_name=REGION)
    group = f"/watcher-test/{uuid.uuid4().hex[:12]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    base = int(time.time() * 1000) - count * 20 - 2000
    events = [{"timestamp": base + i * 20, "message": f"ERROR canary seq={i:07d}"}
              for i in range(count)]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)
    proxy = await ThrottleProxy(endpoint, plan).start()
    config = CloudWatchSourceConfig(
        name="cw", log_groups=[group], region=REGION, endpoint_url=proxy.url, filter_pattern="",
        interval=0.05, latency=0, overlap=1.0, page_limit=100, lookback=300,
    )
    tail = Tail(CloudWatchSource(config, ctx, backoff=Backoff(sleep=no_sleep)), ctx)
    for n in range(5):
        now = int(time.time() * 1000)
        live = [{"timestamp": now + i, "message": f"ERROR canary seq={count + n * 20 + i:07d}"}
                for i in range(20)]
        logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=live)
        await asyncio.sleep(0.05)
    return tail, proxy, count + 100


@pytest.mark.usefixtures("quick_botocore_backoff")
async def test_cloudwatch_wire_throttles_are_absorbed_by_botocores_adaptive_retries(
    moto_endpoint: str,  # noqa: F811
) -> None:
    """Every third FilterLogEvents answered with CloudWatch's real 400 ThrottlingException on
    the wire: botocore's adaptive retry mode absorbs them (the source never sees an error) and
    every event is read exactly once."""
    ctx = make_ctx()
    tail, proxy, written = await proxied_backlog(moto_endpoint, lambda n: n % 3 == 0, ctx)
    try:
        await settle(tail, written)
    finally:
        await proxy.stop()
    assert_exactly_once(seqs(tail), written)
    assert proxy.throttled >= 3
    assert counter(ctx.metrics.source_reconnects, "cw") == 0


@pytest.mark.usefixtures("quick_botocore_backoff")
async def test_cloudwatch_wire_throttles_beyond_botocores_attempts_resume_the_paging(
    moto_endpoint: str,  # noqa: F811
) -> None:
    """Runs of throttles as long as botocore's attempts (5 in a row, twice, mid-paging): the
    ThrottlingException reaches the source, which backs off and resumes its query from the
    nextToken: every event exactly once."""
    throttled_runs = set(range(3, 8)) | set(range(11, 16))
    ctx = make_ctx()
    tail, proxy, written = await proxied_backlog(moto_endpoint, throttled_runs.__contains__, ctx)
    try:
        await settle(tail, written, timeout=30)
    finally:
        await proxy.stop()
    assert_exactly_once(seqs(tail), written)
    assert proxy.throttled == 10
    assert counter(ctx.metrics.source_reconnects, "cw") == 2
