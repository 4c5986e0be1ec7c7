"""The cloudwatch source against a real moto server over HTTP (fakes only where moto cannot).

moto applies single-term filter patterns and paging like AWS, ignores logStreamNamePrefix, and
treats patterns it does not support (e.g. `?A ?B`) as "match everything".
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, EventStreamError

from tests.fakes.moto import REGION, moto_endpoint  # noqa: F401 (the fixture)
from tests.sources.contract import (
    RecordingLog,
    SourceContract,
    Tail,
    collect,
    make_ctx,
    texts,
    wait_for,
)
from watcher.backoff import Backoff
from watcher.configschema import SchemaError, build
from watcher.model import RawLine
from watcher.parse.multiline import Assembler
from watcher.sources import cloudwatch, cloudwatch_events
from watcher.sources.base import Source, SourceContext
from watcher.sources.cloudwatch import CloudWatchSource, CloudWatchSourceConfig
from watcher.sources.cloudwatch_aws import CloudWatchError, make_client

Event = tuple[str, int, str]  # (log stream, timestamp ms, message)


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


@pytest.fixture
def logs(moto_endpoint: str) -> Any:  # noqa: F811
    """A boto3 CloudWatch Logs client for the moto server (for the test's own set-up)."""
    return boto3.client("logs", endpoint_url=moto_endpoint, region_name=REGION)


def new_group(logs: Any, prefix: str = "/watcher-test") -> str:
    """A fresh, empty log group with a unique name."""
    name = f"{prefix}/{uuid.uuid4().hex[:12]}"
    logs.create_log_group(logGroupName=name)
    return name


def put(logs: Any, group: str, events: list[Event]) -> None:
    """Write events (creating their streams), each stream's in timestamp order."""
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for stream, ts, message in events:
        by_stream.setdefault(stream, []).append({"timestamp": ts, "message": message})
    for stream, items in by_stream.items():
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
        items.sort(key=lambda item: item["timestamp"])
        for i in range(0, len(items), 5000):
            logs.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=items[i : i + 5000]
            )


async def no_sleep(shutdown: asyncio.Event, seconds: float) -> bool:
    """An injected backoff sleep that returns at once (yielding to the loop)."""
    await asyncio.sleep(0)
    return shutdown.is_set()


def config(endpoint: str, **kwargs: Any) -> CloudWatchSourceConfig:
    """A fast-polling config for the moto server: no latency, no server-side filter."""
    kwargs.setdefault("filter_pattern", "")
    kwargs.setdefault("interval", 0.05)
    kwargs.setdefault("latency", 0)
    kwargs.setdefault("region", REGION)
    return CloudWatchSourceConfig(endpoint_url=endpoint, **kwargs)


def source(ctx: SourceContext, cfg: CloudWatchSourceConfig, **kwargs: Any) -> CloudWatchSource:
    """The source for `cfg`, with an instant backoff."""
    kwargs.setdefault("backoff", Backoff(sleep=no_sleep))
    return CloudWatchSource(cfg, ctx, **kwargs)


def counter(metric: Any, name: str = "contract") -> float:
    """The value of a labelled counter/gauge for one source."""
    return float(metric.labels(name)._value.get())


class TestCloudWatchContract(SourceContract):
    """The cloudwatch source passes the shared source contract (events in one log stream)."""

    raw_bytes = False  # messages are JSON strings: no invalid UTF-8
    resumable = True

    @pytest.fixture(autouse=True)
    def _moto(self, moto_endpoint: str) -> None:  # noqa: F811
        self.endpoint = moto_endpoint
        self.logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name=REGION)
        self.groups: dict[Path, str] = {}

    async def build(
        self, ctx: SourceContext, lines: list[bytes], tmp_path: Path, *, follow: bool
    ) -> Source:
        # one group per test: a second build in the same test (resume) reads the same events
        group = self.groups.get(tmp_path)
        if group is None:
            group = self.groups[tmp_path] = new_group(self.logs)
            base = now_ms() - 60_000
            put(self.logs, group, [("s", base + i, b.decode()) for i, b in enumerate(lines)])
            self.logs.create_log_stream(logGroupName=group, logStreamName="idle")
        return source(ctx, config(self.endpoint, name=self.name, log_groups=[group]))


# --- scan ------------------------------------------------------------------------------------


async def test_scan_pages_through_many_events(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """A scan follows nextToken over many pages and delivers every event once, in time order."""
    group = new_group(logs)
    base = now_ms() - 600_000
    events = [(f"s{i % 3}", base + i, f"event {i}") for i in range(2500)]
    put(logs, group, events)
    client = boto3.client("logs", endpoint_url=moto_endpoint, region_name=REGION)
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.logs.FilterLogEvents", lambda params, **_: calls.append(params)
    )
    cfg = config(moto_endpoint, name="pages", log_groups=[group], page_limit=200)
    batches = await collect(source(make_ctx(), cfg, client=client).window(None, None))
    assert texts(batches) == [f"event {i}" for i in range(2500)]
    pages = [call for call in calls if "interleaved" in call]  # (the rest: the existence check)
    assert len(pages) == 13  # 12 full pages of 200, then the rest
    assert all(call["limit"] == 200 for call in pages)
    assert all(len(batch) <= 2000 for batch in batches)


async def test_scan_window_bounds_in_milliseconds(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """window(start, end) in seconds becomes startTime/endTime in ms: only events inside come."""
    group = new_group(logs)
    base = now_ms() - 600_000
    put(logs, group, [("s", base + i * 1000, f"e{i}") for i in range(10)])
    cfg = config(moto_endpoint, name="bounds", log_groups=[group])
    window = source(make_ctx(), cfg).window((base + 3000) / 1000, (base + 6000) / 1000)
    assert texts(await collect(window)) == ["e3", "e4", "e5", "e6"]


async def test_filter_pattern_is_applied_by_cloudwatch(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """filter_pattern is sent as filterPattern: the service returns only matching events."""
    group = new_group(logs)
    base = now_ms() - 60_000
    put(
        logs,
        group,
        [("s", base, "ERROR one"), ("s", base + 1, "INFO two"), ("s", base + 2, "ERROR 3")],
    )
    cfg = config(moto_endpoint, name="filter", log_groups=[group], filter_pattern="ERROR")
    assert texts(await collect(source(make_ctx(), cfg).window(None, None))) == [
        "ERROR one",
        "ERROR 3",
    ]


async def test_stream_prefix_narrows_streams(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """log_stream_prefix keeps only matching log streams (sent to AWS, re-checked locally)."""
    group = new_group(logs)
    base = now_ms() - 60_000
    put(logs, group, [("app/1", base, "keep"), ("worker/1", base + 1, "drop")])
    cfg = config(moto_endpoint, name="sp", log_groups=[group], log_stream_prefix="app/")
    assert texts(await collect(source(make_ctx(), cfg).window(None, None))) == ["keep"]


async def test_scan_missing_group_names_it(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """A scan over a group that does not exist fails at once with a one-line message naming it."""
    good = new_group(logs)
    put(logs, good, [("s", now_ms() - 1000, "x")])
    missing = f"/watcher-test/missing-{uuid.uuid4().hex[:6]}"
    cfg = config(moto_endpoint, name="miss", log_groups=[good, missing])
    with pytest.raises(CloudWatchError) as err:
        await collect(source(make_ctx(), cfg).window(None, None))
    assert missing in str(err.value) and "\n" not in str(err.value)


async def test_prefix_without_match_fails(moto_endpoint: str) -> None:  # noqa: F811
    """A log_group_prefix that matches nothing is a clear error naming the prefix."""
    prefix = f"/nothing-{uuid.uuid4().hex[:8]}/"
    cfg = config(moto_endpoint, name="np", log_group_prefix=prefix)
    with pytest.raises(CloudWatchError, match=prefix):
        await collect(source(make_ctx(), cfg).window(None, None))


# --- follow ----------------------------------------------------------------------------------


async def test_follow_two_groups(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """Follow mode reads every configured group; each log stream is its own RawLine stream."""
    a, b = new_group(logs), new_group(logs)
    base = now_ms() - 30_000
    put(logs, a, [("s", base, "a1"), ("s", base + 2, "a2")])
    put(logs, b, [("s", base + 1, "b1")])
    ctx = make_ctx()
    tail = Tail(source(ctx, config(moto_endpoint, name="two", log_groups=[a, b])), ctx)
    assert sorted(await tail.wait(3)) == ["a1", "a2", "b1"]
    assert {line.stream for line in tail.lines} == {f"{a}/s", f"{b}/s"}
    put(logs, b, [("s", now_ms() - 100, "b2")])
    assert "b2" in await tail.wait(4)
    await tail.stop()
    assert counter(ctx.metrics.source_up, "two") == 0  # ended


async def test_follow_resolves_prefix_and_picks_up_new_groups(
    logs: Any,
    moto_endpoint: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """log_group_prefix follows every matching group, and groups created later are added."""
    monkeypatch.setattr(cloudwatch, "RESOLVE_EVERY", 0.2)
    prefix = f"/pfx-{uuid.uuid4().hex[:8]}"
    a, other = new_group(logs, prefix), new_group(logs, "/watcher-test")
    base = now_ms() - 30_000
    put(logs, a, [("s", base, "in a")])
    put(logs, other, [("s", base, "elsewhere")])
    ctx = make_ctx()
    tail = Tail(source(ctx, config(moto_endpoint, name="pfx", log_group_prefix=prefix)), ctx)
    assert await tail.wait(1) == ["in a"]
    b = new_group(logs, prefix)
    put(logs, b, [("s", now_ms() - 1000, "in b")])
    assert await tail.wait(2, timeout=5) == ["in a", "in b"]
    await tail.stop()
    assert "elsewhere" not in tail.texts()


async def test_overlapping_polls_deliver_once(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """Each poll re-reads the overlap window; event ids already delivered are dropped and
    counted as duplicates."""
    group = new_group(logs)
    base = now_ms() - 20_000
    put(logs, group, [("s", base + i, f"e{i}\nsecond line") for i in range(5)])
    ctx = make_ctx()
    cfg = config(moto_endpoint, name="ovl", log_groups=[group], overlap=600)
    tail = Tail(source(ctx, cfg), ctx)
    await tail.wait(10)
    await wait_for(lambda: counter(ctx.metrics.duplicate_lines, "ovl") >= 30)
    await tail.stop()
    assert tail.texts() == [t for i in range(5) for t in (f"e{i}", "second line")]


async def test_late_event_is_delivered_once(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """An event older than the last one delivered, written after that poll, still comes once
    (it became visible within overlap + latency of its timestamp)."""
    group = new_group(logs)
    t0 = now_ms() - 1000
    put(logs, group, [("fast", t0, "on time")])
    ctx = make_ctx()
    tail = Tail(source(ctx, config(moto_endpoint, name="late", log_groups=[group])), ctx)
    await tail.wait(1)
    put(logs, group, [("slow", t0 - 3000, "late")])  # well inside the 10 s overlap
    await tail.wait(2)
    dups = counter(ctx.metrics.duplicate_lines, "late")
    await wait_for(lambda: counter(ctx.metrics.duplicate_lines, "late") >= dups + 4)
    await tail.stop()
    assert tail.texts() == ["on time", "late"]


def committed(lines: list[RawLine]) -> dict[str, Any]:
    """What the pipeline would hand back after processing `lines`: each stream's last cursor."""
    return {line.stream: json.loads(json.dumps(line.cursor)) for line in lines}


async def test_restart_resumes_from_checkpoint_without_duplicates(
    logs: Any,
    moto_endpoint: str,  # noqa: F811
) -> None:
    """A restart re-reads the overlap behind the checkpoint but delivers only events it had
    not processed: new ones, and a late one in another stream."""
    group = new_group(logs)
    t0 = now_ms() - 8000
    put(logs, group, [("a", t0 + i, f"old {i}") for i in range(3)])
    cfg = config(moto_endpoint, name="rs", log_groups=[group])
    ctx = make_ctx()
    first = [line for b in await collect(source(ctx, cfg).lines(), want=3) for line in b]
    assert [line.text for line in first] == ["old 0", "old 1", "old 2"]
    put(logs, group, [("a", t0 + 10, "new"), ("b", t0 - 2000, "late in b")])
    ctx2 = make_ctx(checkpoint=committed(first))
    again = [line for b in await collect(source(ctx2, cfg).lines(), want=2) for line in b]
    assert sorted(line.text for line in again) == ["late in b", "new"]
    assert counter(ctx2.metrics.duplicate_lines, "rs") == 3


async def test_restart_inside_a_crowded_millisecond(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """Many events on one millisecond (a coarse logger clock): the cursor keeps a few ids and a
    count, and a restart from the middle of that millisecond delivers exactly the rest."""
    group = new_group(logs)
    ts = now_ms() - 4000
    put(logs, group, [("s", ts, f"same ms {i}") for i in range(40)])
    cfg = config(moto_endpoint, name="crowd", log_groups=[group])
    first = [line for b in await collect(source(make_ctx(), cfg).lines(), want=40) for line in b]
    cursor = first[24].cursor
    assert cursor["n"] == 25 and len(cursor["ids"]) == cloudwatch_events.MAX_CURSOR_IDS
    ctx = make_ctx(checkpoint=committed(first[:25]))
    again = await collect(source(ctx, cfg).lines(), want=15)
    assert texts(again) == [f"same ms {i}" for i in range(25, 40)]
    assert counter(ctx.metrics.duplicate_lines, "crowd") == 25


async def test_partly_committed_event_is_delivered_again(
    logs: Any,
    moto_endpoint: str,  # noqa: F811
) -> None:
    """When only the first lines of a multi-line event were committed, a restart delivers the
    whole event again (its tail is never skipped)."""
    group = new_group(logs)
    put(logs, group, [("s", now_ms() - 5000, "head\ntail 1\ntail 2")])
    cfg = config(moto_endpoint, name="part", log_groups=[group])
    first = [line for b in await collect(source(make_ctx(), cfg).lines(), want=3) for line in b]
    ctx = make_ctx(checkpoint=committed(first[:1]))
    again = await collect(source(ctx, cfg).lines(), want=3)
    assert texts(again) == ["head", "tail 1", "tail 2"]


async def test_follow_missing_group_logged_once_others_continue(
    logs: Any,
    moto_endpoint: str,  # noqa: F811
) -> None:
    """In follow mode a missing group is logged once, by name, and the other groups go on."""
    good = new_group(logs)
    put(logs, good, [("s", now_ms() - 2000, "fine")])
    missing = f"/watcher-test/missing-{uuid.uuid4().hex[:6]}"
    log = RecordingLog()
    ctx = make_ctx(log=log)
    tail = Tail(source(ctx, config(moto_endpoint, name="m", log_groups=[missing, good])), ctx)
    assert await tail.wait(1) == ["fine"]
    put(logs, good, [("s", now_ms() - 100, "still fine")])
    await tail.wait(2)
    await tail.stop()
    errors = [f for lv, e, f in log.records if e == "log group not found"]
    assert [f["group"] for f in errors] == [missing]


async def test_follow_all_groups_missing_raises(moto_endpoint: str) -> None:  # noqa: F811
    """When no configured group exists, follow mode raises one line naming them."""
    missing = f"/watcher-test/missing-{uuid.uuid4().hex[:6]}"
    cfg = config(moto_endpoint, name="allm", log_groups=[missing])
    with pytest.raises(CloudWatchError, match=missing):
        await collect(source(make_ctx(), cfg).lines())


async def test_fresh_start_uses_lookback(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """With no checkpoint, follow starts at now - lookback: older events are not read."""
    group = new_group(logs)
    now = now_ms()
    put(logs, group, [("s", now - 120_000, "too old"), ("s", now - 30_000, "recent")])
    cfg = config(moto_endpoint, name="lb", log_groups=[group], lookback=60)
    assert texts(await collect(source(make_ctx(), cfg).lines(), want=1)) == ["recent"]


async def test_latency_holds_back_the_newest_events(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """Polls stop at now - latency, so an event newer than that waits for a later poll."""
    group = new_group(logs)
    now = now_ms()
    put(logs, group, [("s", now - 30_000, "settled"), ("s", now + 500, "fresh")])
    ctx = make_ctx()
    cfg = config(moto_endpoint, name="lat", log_groups=[group], latency=1)
    tail = Tail(source(ctx, cfg), ctx)
    assert await tail.wait(1) == ["settled"]
    await asyncio.sleep(0.3)  # several polls: "fresh" is still inside the latency
    assert tail.texts() == ["settled"]
    assert await tail.wait(2, timeout=5) == ["settled", "fresh"]
    await tail.stop()


# --- failures (fake clients: moto cannot throttle) -------------------------------------------


def throttled() -> ClientError:
    """What botocore raises once its own retries of a throttled call are spent."""
    error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    return ClientError({"Error": error}, "FilterLogEvents")


class ScriptedClient:
    """A stand-in logs client: raises the scripted errors, then serves pages by token."""

    def __init__(self, errors: list[Exception], pages: list[dict[str, Any]]) -> None:
        self.errors = errors
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def filter_log_events(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        if self.errors:
            raise self.errors.pop(0)
        index = int(params.get("nextToken", "0"))
        if index >= len(self.pages):
            return {"events": []}
        return self.pages[index]


def event(ts: int, message: str, ident: str, stream: str = "s") -> dict[str, Any]:
    """A FilterLogEvents event record."""
    return {"logStreamName": stream, "timestamp": ts, "message": message, "eventId": ident}


async def test_throttling_backs_off_and_recovers() -> None:
    """Throttling that survives botocore's retries: source_up 0, backoff, reconnects counted,
    then the events arrive once the service answers."""
    ts = now_ms() - 5000
    client = ScriptedClient(
        [throttled(), EndpointConnectionError(endpoint_url="http://x")],
        [{"events": [event(ts, "ERROR after throttling", "1")]}],
    )
    ctx = make_ctx(log=RecordingLog())
    delays: list[float] = []
    up_during: list[float] = []

    async def sleep(shutdown: asyncio.Event, seconds: float) -> bool:
        delays.append(seconds)
        up_during.append(counter(ctx.metrics.source_up, "thr"))
        await asyncio.sleep(0)
        return shutdown.is_set()

    cfg = CloudWatchSourceConfig(name="thr", log_groups=["/g"], region=REGION, interval=0.05)
    src = CloudWatchSource(cfg, ctx, client=client, backoff=Backoff(rng=lambda: 1.0, sleep=sleep))
    assert texts(await collect(src.lines(), want=1)) == ["ERROR after throttling"]
    assert delays == [0.5, 1.0]  # exponential (jitter pinned to its ceiling)
    assert up_during == [0, 0]
    assert counter(ctx.metrics.source_reconnects, "thr") == 2
    warnings = ctx.log.events("warning")  # type: ignore[attr-defined]
    assert warnings.count("cloudwatch call failed; backing off") == 2


async def test_auth_failure_at_start_is_fatal() -> None:
    """An access-denied error on the first poll raises one line instead of retrying forever."""
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
        "FilterLogEvents",
    )
    cfg = CloudWatchSourceConfig(name="auth", log_groups=["/g"], region=REGION)
    src = source(make_ctx(), cfg, client=ScriptedClient([denied], []))
    with pytest.raises(CloudWatchError, match="AccessDeniedException: not authorized"):
        await collect(src.lines())


async def test_empty_pages_with_token_keep_paging() -> None:
    """An empty page that still carries nextToken is not the end: paging goes on."""
    ts = now_ms() - 5000
    pages = [
        {"events": [], "nextToken": "1"},
        {"events": [event(ts, "first", "a")], "nextToken": "2"},
        {"events": [], "nextToken": "3"},
        {"events": [event(ts + 1, "second", "b")]},
    ]
    client = ScriptedClient([], pages)
    cfg = CloudWatchSourceConfig(name="empty", log_groups=["/g"], region=REGION)
    batches = await collect(source(make_ctx(), cfg, client=client).window(None, None))
    assert texts(batches) == ["first", "second"]
    assert [c.get("nextToken") for c in client.calls[1:]] == [None, "1", "2", "3"]


def test_client_uses_botocore_adaptive_retries() -> None:
    """Retries are botocore's own (adaptive mode), not a second layer of ours."""
    client, region = make_client(region="eu-west-1", profile="", endpoint_url="")
    assert region == "eu-west-1"
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 5}


# --- Lambda shapes through the real assembler ------------------------------------------------

RID = "8f5c6d0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"
LAMBDA = [
    f"START RequestId: {RID} Version: $LATEST\n",
    f"[ERROR]\t2024-01-01T00:00:00.000Z\t{RID}\tpayment failed for order 42\n",
    (
        "[ERROR] KeyError: 'x'\nTraceback (most recent call last):\n"
        '  File "/var/task/app.py", line 3, in handler\n    return event["x"]\n'
    ),
    (
        f"[ERROR]\t2024-01-01T00:00:01.000Z\t{RID}\tcharge failed\n"
        "Traceback (most recent call last):\n"
        '  File "/var/task/app.py", line 9, in handler\n    charge()\n'
        '  File "/var/task/pay.py", line 5, in charge\n    raise ValueError("bad card")\n'
        "ValueError: bad card\n"
    ),
    f"END RequestId: {RID}\n",
    (
        f"REPORT RequestId: {RID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 50 MB\tStatus: timeout\n"
    ),
    f"2024-01-01T00:00:03.000Z {RID} Task timed out after 3.00 seconds\n",
    (
        f"2024-01-01T00:00:04.000Z\t{RID}\tERROR\tInvoke Error \t"
        + json.dumps(
            {
                "errorType": "TypeError",
                "errorMessage": "Cannot read properties of undefined (reading 'id')",
                "stack": [
                    "TypeError: Cannot read properties of undefined (reading 'id')",
                    "    at Runtime.handler (file:///var/task/index.mjs:3:25)",
                    "    at Runtime.handleOnceNonStreaming (file:///var/runtime/index.mjs:1173:29)",
                ],
            }
        )
        + "\n"
    ),
    f"2024-01-01T00:00:05.000Z\t{RID}\tINFO\tall good\n",
]


async def test_lambda_shapes_become_proper_events(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """Lambda runtime events read through moto and the real assembler give proper events:
    levels, exception types, frames, request ids, one event per CloudWatch event."""
    group = new_group(logs, "/aws/lambda")
    base = now_ms() - 60_000
    put(logs, group, [("2024/01/01/[$LATEST]abc", base + i, m) for i, m in enumerate(LAMBDA)])
    cfg = config(moto_endpoint, name="lambda", log_groups=[group])
    lines = [line for b in await collect(source(make_ctx(), cfg).window(None, None)) for line in b]
    asm = Assembler()
    events = asm.feed_batch(lines) + asm.flush(force=True)
    summary = [(e.level, e.message, e.exception_type, len(e.frames)) for e in events]
    assert summary == [
        ("info", f"START RequestId: {RID} Version: $LATEST", None, 0),
        ("error", "payment failed for order 42", None, 0),
        ("error", "KeyError: 'x'", "KeyError", 1),
        ("error", "charge failed", "ValueError", 2),
        ("info", f"END RequestId: {RID}", None, 0),
        ("error", f"REPORT RequestId: {RID} Status: timeout", None, 0),
        ("error", "Task timed out after 3.00 seconds", None, 0),
        ("error", "Invoke Error", "TypeError", 2),
        ("info", "all good", None, 0),
    ]
    assert events[3].frames[-1].file == "/var/task/pay.py"
    assert events[7].exception_message == "Cannot read properties of undefined (reading 'id')"
    assert events[1].fields["aws_request_id"] == RID
    assert events[5].fields["duration_ms"] == 3000.0
    assert events[6].timestamp == 1704067203.0  # from the line; others from the event
    assert events[2].timestamp == (base + 2) / 1000


# --- config ------------------------------------------------------------------------------------


def test_config_reads_durations_and_defaults() -> None:
    """TOML values: durations as strings, the documented defaults otherwise."""
    cfg = build(CloudWatchSourceConfig, {"log_groups": ["/a"], "lookback": "1h", "interval": "30s"})
    assert (cfg.lookback, cfg.interval, cfg.overlap, cfg.latency) == (3600, 30, 10, 5)
    assert cfg.mode == "poll" and cfg.page_limit == 10_000 and cfg.name == "cloudwatch"
    assert cfg.filter_pattern.startswith("?ERROR")


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({}, "log_groups"),
        ({"log_groups": ["/a"], "log_group_prefix": "/b"}, "log_groups"),
        ({"log_groups": ["/a"], "page_limit": 20_000}, "page_limit"),
        ({"log_groups": ["/a"], "mode": "tail"}, "mode"),
        ({"log_groups": ["/a"], "endpoint_url": "localhost:5000"}, "endpoint_url"),
        ({"log_groups": ["/a"], "interval": 0}, "interval"),
        ({"log_groups": ["/a"], "regoin": "x"}, "regoin"),
    ],
)
def test_config_rejects_bad_values(data: dict[str, Any], where: str) -> None:
    """Bad keys and values fail with the key's name."""
    with pytest.raises(SchemaError) as err:
        build(CloudWatchSourceConfig, data, ("sources", 0))
    assert str(err.value).startswith(f"sources[0].{where}")


# --- pure parts: Lambda shapes, cursors, de-duplication -------------------------------------


@pytest.mark.parametrize(
    ("message", "lines", "fields"),
    [
        ("plain line\n", ["plain line"], None),
        ("a\r\nb\rc\n", ["a", "b", "c"], None),
        ("", [""], None),
        (
            f"[WARNING]\t2024-01-01T00:00:00.000Z\t{RID}\tslow\n",
            ["2024-01-01T00:00:00.000Z WARNING slow"],
            {"aws_request_id": RID},
        ),
        (
            f"2024-01-01T00:00:00.000Z\t{RID}\tWARN\tretrying\n",
            ["2024-01-01T00:00:00.000Z WARN retrying"],
            {"aws_request_id": RID},
        ),
        (
            "[ERROR] Runtime.ImportModuleError: No module named 'x'\n"
            "Traceback (most recent call last):\n",
            [
                "[ERROR] Runtime.ImportModuleError: No module named 'x'",
                "Traceback (most recent call last):",
                "Runtime.ImportModuleError: No module named 'x'",
            ],
            None,
        ),
        (
            f"RequestId: {RID} Error: Runtime exited with error: signal: killed\n"
            "Runtime.ExitError\n",
            ["ERROR Runtime exited with error: signal: killed (Runtime.ExitError)"],
            {"aws_request_id": RID, "error_type": "Runtime.ExitError"},
        ),
        (
            "INIT_REPORT Init Duration: 9999.98 ms\tPhase: init\tStatus: error\t"
            "Error Type: Runtime.Unknown\n",
            ["INIT_REPORT Status: error Error Type: Runtime.Unknown"],
            {
                "init_duration_ms": 9999.98,
                "status": "error",
                "error_type": "Runtime.Unknown",
                "level": "error",
            },
        ),
        (
            "2024-01-01T00:00:00.000Z\tundefined\tERROR\tUncaught Exception \t"
            '{"errorType":"Error","errorMessage":"boom"}\n',
            ["2024-01-01T00:00:00.000Z ERROR Uncaught Exception", "Error: boom"],
            None,
        ),
        ("[INFO] not a lambda line\n", ["[INFO] not a lambda line"], None),
    ],
)
def test_lambda_lines_normalise(message: str, lines: list[str], fields: Any) -> None:
    """Each Lambda runtime shape becomes the lines the parser reads; others pass unchanged."""
    from watcher.sources.lambda_lines import normalise

    norm = normalise(message)
    assert norm.texts == lines
    assert (norm.fields or None) == fields


def test_line_maker_cursors_and_line_numbers() -> None:
    """Lines of one event share its timestamp; only the last carries the event's id; line
    numbers rise per stream; ids of one millisecond accumulate; a late event keeps the cursor."""
    from watcher.sources.cloudwatch_events import LineMaker

    maker = LineMaker("src", 1024)
    first = maker.make("g/a", 1000, "e1", "head\ntail")
    same_ms = maker.make("g/a", 1000, "e2", "next")
    late = maker.make("g/a", 900, "e0", "late")
    other = maker.make("g/b", 950, "e3", "b")
    assert [(line.line_no, line.cursor) for line in first] == [
        (1, {"ts": 1000, "ids": []}),
        (2, {"ts": 1000, "ids": ["e1"]}),
    ]
    assert same_ms[0].cursor == {"ts": 1000, "ids": ["e1", "e2"]}
    assert (late[0].line_no, late[0].cursor) == (4, {"ts": 1000, "ids": ["e1", "e2"]})
    assert (other[0].line_no, other[0].cursor, other[0].timestamp) == (
        1,
        {"ts": 950, "ids": ["e3"]},
        0.95,
    )


def test_group_tail_dedupes_within_overlap_and_forgets_older_ids() -> None:
    """Ids are dropped when seen again; advancing forgets ids behind the overlap window."""
    from watcher.sources.cloudwatch_events import GroupTail

    tail = GroupTail("g", start=0, overlap_ms=100)
    assert tail.is_new("a", "g/s", 50, "m") and not tail.is_new("a", "g/s", 50, "m")
    tail.advance(1000)
    assert tail.start == 900 and tail.seen == {}
    assert tail.is_new("b", "g/s", 950, "m")
    tail.advance(500)  # never backwards
    assert tail.start == 900 and "b" in tail.seen


def test_checkpoint_floors_by_longest_group_and_either_id_kind() -> None:
    """A checkpoint key belongs to the longest group name it starts with; floors match event
    ids and content keys (the other mode's ids) at their millisecond, and everything older."""
    from watcher.sources.cloudwatch_events import (
        GroupTail,
        content_key,
        read_checkpoint,
        resume_start,
    )

    checkpoint = {
        "/app/x/s1": {"ts": 500, "ids": ["e9"]},
        "/app/s1": {"ts": 700, "ids": [content_key("/app/s1", 700, "live one")]},
        "/app/s2": "garbage",
        "/other/s": {"ts": 1, "ids": []},
    }
    floors = read_checkpoint(checkpoint, ["/app", "/app/x"])
    assert set(floors["/app/x"]) == {"/app/x/s1"} and set(floors["/app"]) == {"/app/s1"}
    assert resume_start(floors["/app"], 100) == 600 and resume_start({}, 100) is None
    tail = GroupTail("/app", 600, 100, floors["/app"])
    assert not tail.is_new("e1", "/app/s1", 650, "older")
    assert not tail.is_new("e2", "/app/s1", 700, "live one", "e2")
    assert tail.is_new("e3", "/app/s1", 700, "another")
    x = GroupTail("/app/x", 400, 100, floors["/app/x"])
    assert not x.is_new("e9", "/app/x/s1", 500, "m") and x.is_new("e10", "/app/x/s1", 500, "m")


# --- live mode -----------------------------------------------------------------------------------


async def test_live_mode_against_moto(logs: Any, moto_endpoint: str) -> None:  # noqa: F811
    """Live mode opens a session moto accepts (ARNs, no host prefix), backfills, and drops the
    session's copies of events the backfill delivered. (moto answers with a one-shot snapshot
    of existing events, so new-event streaming is covered by the scripted tests below.)"""
    group = new_group(logs, "/aws/lambda")
    base = now_ms() - 2000
    put(
        logs, group, [("s", base + i, f"ERROR {i}") for i in range(3)] + [("s", base + 5, "INFO x")]
    )
    ctx = make_ctx()
    cfg = config(
        moto_endpoint, name="live", log_groups=[group], mode="live", filter_pattern="ERROR"
    )
    tail = Tail(source(ctx, cfg, backoff=Backoff(initial=0.05, cap=0.05)), ctx)
    assert await tail.wait(3) == ["ERROR 0", "ERROR 1", "ERROR 2"]
    await wait_for(lambda: counter(ctx.metrics.duplicate_lines, "live") >= 3)
    await tail.stop()
    assert tail.texts() == ["ERROR 0", "ERROR 1", "ERROR 2"]


class FakeStream:
    """A Live Tail response stream: scripted items (an exception is raised), then it blocks
    until closed — as a healthy session does between updates."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.closed = threading.Event()

    def __iter__(self) -> Any:
        for item in self.items:
            if isinstance(item, Exception):
                raise item
            yield item
        self.closed.wait(10)

    def close(self) -> None:
        self.closed.set()


class LiveClient:
    """A logs client for live mode: scripted sessions, and FilterLogEvents over events that
    become visible from a given session on (to model ingestion during a gap)."""

    ARN = "arn:aws:logs:us-east-1:123456789012:log-group:/live"

    def __init__(self, sessions: list[list[Any]], stored: list[tuple[int, dict[str, Any]]]):
        self.sessions = sessions
        self.stored = stored  # (visible from session number, event)
        self.started: list[dict[str, Any]] = []

    def start_live_tail(self, **params: Any) -> dict[str, Any]:
        self.started.append(params)
        return {"responseStream": FakeStream(self.sessions.pop(0))}

    def filter_log_events(self, **params: Any) -> dict[str, Any]:
        events = [
            e
            for visible, e in self.stored
            if visible <= len(self.started)
            and params.get("startTime", 0) <= e["timestamp"] <= params.get("endTime", 2**62)
        ]
        return {"events": events}

    def get_paginator(self, name: str) -> Any:
        arn = self.ARN

        class Pages:
            def paginate(self, **params: Any) -> list[dict[str, Any]]:
                return [{"logGroups": [{"logGroupName": "/live", "logGroupArn": arn}]}]

        return Pages()


def start() -> dict[str, Any]:
    """A sessionStart item."""
    return {"sessionStart": {"sessionId": "s"}}


def update(*events: dict[str, Any], sampled: bool = False) -> dict[str, Any]:
    """A sessionUpdate item carrying `events` as Live Tail results (no eventId)."""
    results = [
        {
            "logGroupIdentifier": LiveClient.ARN,
            "logStreamName": e["logStreamName"],
            "timestamp": e["timestamp"],
            "message": e["message"],
        }
        for e in events
    ]
    return {"sessionUpdate": {"sessionMetadata": {"sampled": sampled}, "sessionResults": results}}


def live_source(client: LiveClient, name: str) -> tuple[CloudWatchSource, SourceContext]:
    """A live-mode source over a scripted client."""
    ctx = make_ctx(log=RecordingLog())
    cfg = CloudWatchSourceConfig(name=name, log_groups=["/live"], region=REGION, mode="live")
    return source(ctx, cfg, client=client), ctx


async def test_live_restarts_after_stream_error_and_backfills_the_gap() -> None:
    """An EventStreamError ends the session: backoff, a new session, and FilterLogEvents
    delivers what was ingested in between; live and backfill copies are delivered once."""
    ts = now_ms() - 3000
    e1, e2, e3 = (event(ts + i, f"ERROR {i}", f"id{i}") for i in (1, 2, 3))
    broken = EventStreamError(
        {"Error": {"Code": "SessionStreamingException", "Message": "reset"}}, "StartLiveTail"
    )
    client = LiveClient([[start(), update(e1), broken], [start(), update(e3)]], [(1, e1), (2, e2)])
    src, ctx = live_source(client, "lv")
    tail = Tail(src, ctx)
    assert await tail.wait(3) == ["ERROR 1", "ERROR 2", "ERROR 3"]
    await tail.stop()
    assert counter(ctx.metrics.source_reconnects, "lv") == 1
    # e1 came from the first backfill; its live copy and the second backfill's are dropped
    assert counter(ctx.metrics.duplicate_lines, "lv") == 2
    assert client.started[0] == {
        "logGroupIdentifiers": [LiveClient.ARN],
        "logEventFilterPattern": cloudwatch.DEFAULT_FILTER,
    }


async def test_live_restarts_before_the_session_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session is replaced before AWS's 3-hour limit, without a backoff."""
    from watcher.sources import cloudwatch_live

    monkeypatch.setattr(cloudwatch_live, "SESSION_MAX", 0.3)
    ts = now_ms() - 3000
    e1, e2 = event(ts, "ERROR a", "a"), event(ts + 1, "ERROR b", "b")
    client = LiveClient([[start(), update(e1)], [start(), update(e2)]], [])
    src, ctx = live_source(client, "lim")
    tail = Tail(src, ctx)
    assert await tail.wait(2) == ["ERROR a", "ERROR b"]
    await tail.stop()
    assert len(client.started) == 2
    assert counter(ctx.metrics.source_reconnects, "lim") == 0


async def test_live_sampled_session_falls_back_to_the_full_set() -> None:
    """When AWS samples a session, it is ended and FilterLogEvents reads every event."""
    ts = now_ms() - 3000
    e1, e2 = event(ts, "ERROR kept", "a"), event(ts + 1, "ERROR sampled away", "b")
    client = LiveClient([[start(), update(e1, sampled=True)], [start()]], [(2, e2), (2, e1)])
    src, ctx = live_source(client, "smp")
    tail = Tail(src, ctx)
    assert await tail.wait(2) == ["ERROR kept", "ERROR sampled away"]
    await tail.stop()
    assert counter(ctx.metrics.source_reconnects, "smp") == 0
    assert "live tail sampled; reading the full set" in ctx.log.events("warning")  # type: ignore[attr-defined]
