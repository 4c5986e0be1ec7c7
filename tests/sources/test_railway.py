"""The railway source, against a fake `railway` CLI that streams only to a tty (as the real one)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.railway import BASE_NS, FakeRailway, put_on_path, rfc3339
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
from watcher.group.table import GroupTable
from watcher.pipeline import Pipeline
from watcher.sources import config_class
from watcher.sources.base import Source, SourceContext
from watcher.sources.railway import RailwayError, RailwaySource, RailwaySourceConfig
from watcher.sources.railway_dedupe import CURSOR_HASHES, Deduper
from watcher.sources.railway_entry import decode, format_ns, timestamp_ns
from watcher.sources.railway_errors import fatal_reason

MiB = 1024 * 1024


async def no_sleep(shutdown: asyncio.Event, seconds: float) -> bool:
    """An injected backoff sleep that returns at once (yielding to the loop)."""
    await asyncio.sleep(0)
    return shutdown.is_set()


def source(ctx: SourceContext, fake: FakeRailway, **kwargs: Any) -> RailwaySource:
    """A railway source on the fake, with instant backoff and a short kill grace."""
    kwargs.setdefault("binary", str(fake.binary))
    return RailwaySource(
        RailwaySourceConfig(**kwargs), ctx, backoff=Backoff(sleep=no_sleep), grace=0.5
    )


def counter(metric: Any, *labels: str) -> float:
    """The current value of a labelled metric."""
    return metric.labels(*labels)._value.get()


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeRailway:
    """A fake railway CLI, first on PATH."""
    return put_on_path(FakeRailway(tmp_path / "railway"), monkeypatch)


class TestRailwayContract(SourceContract):
    """The railway source passes the shared source contract (stream mode through a pty)."""

    resumable = True

    async def build(
        self, ctx: SourceContext, lines: list[bytes], tmp_path: Path, *, follow: bool
    ) -> Source:
        fake = FakeRailway(tmp_path / "railway")
        if not fake.backlog.read_bytes():  # the resume check builds twice over one backlog
            # Railway's ingestion stores text: invalid UTF-8 arrives already replaced.
            fake.add_many([line.decode("utf-8", "replace") for line in lines])
        return source(ctx, fake, name=self.name)


# --- what a line becomes ------------------------------------------------------------------


async def test_json_line_becomes_message_with_fields(fake: FakeRailway) -> None:
    """A JSON line yields its message as text, attributes as fields, the timestamp parsed."""
    entry = fake.add("payment failed", level="error", replica="r1", count=42)
    ctx = make_ctx()
    lines = [
        line for batch in await collect(source(ctx, fake).window(None, None)) for line in batch
    ]
    assert len(lines) == 1
    line = lines[0]
    assert line.text == "payment failed"
    assert line.fields == {"level": "error", "replica": "r1", "count": 42}
    assert line.timestamp == pytest.approx(timestamp_ns(entry["timestamp"]) / 1e9)
    assert line.source == line.stream == "railway"


async def test_non_json_output_is_kept_cleaned(fake: FakeRailway) -> None:
    """Banners, ANSI colour, invalid UTF-8 and lone-surrogate escapes survive as lines."""
    fake.add_raw(b"\x1b[32mNew version available:\x1b[0m v9 visit docs")
    fake.add_raw(b"garbage \xff\xfe\x00 end")
    fake.add_raw(b'{"message": "emoji half \\ud83d", "timestamp": "2026-11-22T10:00:01Z"}')
    fake.add_raw(b"[1, 2, 3]")
    batches = await collect(source(make_ctx(), fake).window(None, None))
    assert texts(batches) == [
        "New version available: v9 visit docs",
        "garbage \ufffd\ufffd\x00 end",
        "emoji half \ufffd",
        "[1, 2, 3]",
    ]


async def test_long_lines_are_capped_not_lost(fake: FakeRailway) -> None:
    """A 200 KiB message and a 200 KiB non-JSON line arrive capped and marked; neighbours intact."""
    fake.add("before")
    fake.add("m" * 200 * 1024, level="error")
    fake.add_raw(b"r" * 200 * 1024)
    fake.add("after")
    ctx = make_ctx(max_line_bytes=64 * 1024)
    got = [line for batch in await collect(source(ctx, fake).window(None, None)) for line in batch]
    assert [line.text[:6] for line in got] == ["before", "m" * 6, "r" * 6, "after"]
    assert [line.truncated for line in got] == [False, True, True, False]
    assert len(got[1].text) == len(got[2].text) == 64 * 1024
    assert got[1].fields == {"level": "error"}
    assert counter(ctx.metrics.truncated_lines, "railway") == 2


async def test_pty_is_wide_and_carriage_returns_are_stripped(fake: FakeRailway) -> None:
    """Under the pty nothing wraps (a 5000-char line arrives whole) and no "\\r" survives."""
    fake.set(wrap=True, crlf=True)
    fake.add("w" * 5000)
    fake.add_raw(b"banner line")
    ctx = make_ctx(max_line_bytes=64 * 1024)
    tail = Tail(source(ctx, fake), ctx)
    assert await tail.wait(2) == ["w" * 5000, "banner line"]
    await tail.stop()
    (run,) = fake.log_runs()
    assert run["tty"] and run["cols"] == 65535 and not run["stdin_tty"]
    assert run["env"] == {"NO_COLOR": "1", "RAILWAY_NO_AUTO_UPDATE": "1"}


# --- restarts, replays, redeploys ---------------------------------------------------------


async def test_restart_replay_is_deduplicated(fake: FakeRailway) -> None:
    """When the server closes the stream the CLI restarts; its replay is not counted twice."""
    fake.add_many(["one", "two", "three"], level="error")
    ctx = make_ctx()
    tail = Tail(source(ctx, fake), ctx)
    await tail.wait(3)
    fake.close_stream()
    await wait_for(lambda: len(fake.log_runs()) == 2)
    fake.add_many(["four", "five"])
    assert await tail.wait(5) == ["one", "two", "three", "four", "five"]
    await wait_for(lambda: counter(ctx.metrics.duplicate_lines, "railway") == 3)
    assert counter(ctx.metrics.source_reconnects, "railway") == 1
    assert counter(ctx.metrics.source_up, "railway") == 1
    await tail.stop()
    assert tail.texts() == ["one", "two", "three", "four", "five"]
    assert counter(ctx.metrics.source_up, "railway") == 0


async def test_same_timestamp_distinct_lines_are_kept(fake: FakeRailway) -> None:
    """Two different lines at one instant both pass; after a restart neither repeats."""
    stamp = fake.next_timestamp()
    fake.add("first at t", ts=stamp)
    fake.add("second at t", ts=stamp)
    ctx = make_ctx()
    tail = Tail(source(ctx, fake), ctx)
    await tail.wait(2)
    assert tail.lines[-1].cursor["ts"] == stamp and len(tail.lines[-1].cursor["h"]) == 2
    fake.close_stream()
    fake.add("later")
    assert await tail.wait(3) == ["first at t", "second at t", "later"]
    await tail.stop()


async def test_checkpoint_resume_skips_committed_lines(fake: FakeRailway) -> None:
    """A daemon restarted from a committed cursor delivers only what came after it."""
    fake.add_many([f"e{i}" for i in range(5)])
    ctx = make_ctx()
    first = [line for batch in await collect(source(ctx, fake).lines(), want=5) for line in batch]
    cursor = json.loads(json.dumps(first[1].cursor))
    assert set(cursor) == {"ts", "h"}
    ctx2 = make_ctx(checkpoint={"railway": cursor})
    again = [line for batch in await collect(source(ctx2, fake).lines(), want=3) for line in batch]
    assert [line.text for line in again] == ["e2", "e3", "e4"]
    assert counter(ctx2.metrics.duplicate_lines, "railway") == 2


async def test_unreadable_checkpoint_is_ignored(fake: FakeRailway) -> None:
    """A checkpoint in another shape is logged and ignored: the CLI's replay is taken."""
    fake.add("only")
    log = RecordingLog()
    ctx = make_ctx(checkpoint={"railway": {"offset": 3}}, log=log)
    got = await collect(source(ctx, fake).lines(), want=1)
    assert texts(got) == ["only"]
    assert "Ignoring an unreadable railway checkpoint." in log.events("warning")


async def test_redeploy_is_followed(fake: FakeRailway) -> None:
    """A new deployment ends the old stream; the restarted CLI follows the new deployment."""
    fake.add("old deployment line", deploymentId="d1")
    log = RecordingLog()
    ctx = make_ctx(log=log)
    tail = Tail(source(ctx, fake), ctx)
    await tail.wait(1)
    fake.redeploy("d2")
    fake.add("new deployment line", deploymentId="d2")
    assert await tail.wait(2) == ["old deployment line", "new deployment line"]
    await tail.stop()
    assert "Railway deployment changed." in log.events("info")
    assert [run["argv"][-1] for run in fake.log_runs()] == ["--deployment", "--deployment"]


async def test_new_deployment_lines_older_than_the_last_line_are_kept(
    fake: FakeRailway,
) -> None:
    """A new deployment logged before the old one stopped: its earlier lines still arrive."""
    fake.add("d2 booting", ts=rfc3339(BASE_NS), deployment="d2")
    fake.add("d1 still serving", ts=rfc3339(BASE_NS + 120 * 10**9), deployment="d1")
    fake.add("d2 crashed on start", ts=rfc3339(BASE_NS + 10**9), deployment="d2")
    ctx = make_ctx()
    tail = Tail(source(ctx, fake), ctx)
    await tail.wait(1)
    fake.redeploy("d2")
    assert await tail.wait(3) == ["d1 still serving", "d2 booting", "d2 crashed on start"]
    await tail.stop()


async def test_transient_failures_are_retried(fake: FakeRailway) -> None:
    """A CLI that fails to fetch is restarted with backoff until it streams."""
    fake.set(fail_next=2)
    fake.add("finally")
    ctx = make_ctx()
    tail = Tail(source(ctx, fake), ctx)
    assert await tail.wait(1) == ["finally"]
    assert counter(ctx.metrics.source_reconnects, "railway") == 2
    assert counter(ctx.metrics.source_up, "railway") == 1
    await tail.stop()


async def test_hung_cli_is_restarted_when_idle(fake: FakeRailway) -> None:
    """A CLI silent for idle_restart is replaced without counting a reconnect."""
    fake.set(hang=True)
    ctx = make_ctx()
    tail = Tail(source(ctx, fake, idle_restart=0.3), ctx)
    await wait_for(lambda: len(fake.log_runs()) >= 2)
    fake.set(hang=False)
    fake.add("alive again")
    assert await tail.wait(1) == ["alive again"]
    assert counter(ctx.metrics.source_reconnects, "railway") == 0
    await tail.stop()


async def test_cli_diagnostics_are_logged_live_once(fake: FakeRailway) -> None:
    """A stderr warning is logged while the stream runs; a restart's repeat drops to debug."""
    fake.set(stderr="Warning: failed to refresh OAuth token: timeout")
    fake.add("streaming")
    log = RecordingLog()
    ctx = make_ctx(log=log)
    tail = Tail(source(ctx, fake), ctx)
    await tail.wait(1)
    await wait_for(lambda: any(e == "Railway CLI said." for _, e, _ in log.records))
    fake.close_stream()
    await wait_for(lambda: sum(e == "Railway CLI said." for _, e, _ in log.records) == 2)
    await tail.stop()
    said = [(lv, f["line"]) for lv, e, f in log.records if e == "Railway CLI said."]
    line = "Warning: failed to refresh OAuth token: timeout"
    assert said == [("warning", line), ("debug", line)]
    assert "Railway log stream ended." in log.events("info")


# --- fatal set-up problems ----------------------------------------------------------------


@pytest.mark.parametrize("auth", ["unauthorized", "invalid_token", "not_signed_in"])
async def test_auth_failure_is_one_clear_error(fake: FakeRailway, auth: str) -> None:
    """A refused login stops the source at once with one line naming the fix; no retry loop."""
    fake.set(auth=auth)
    with pytest.raises(RailwayError) as err:
        await collect(source(make_ctx(), fake).lines())
    message = str(err.value)
    assert "\n" not in message and "credentials" in message
    assert "railway login" in message and "RAILWAY_TOKEN" in message
    assert len(fake.log_runs()) == 1


async def test_auth_failure_in_scan(fake: FakeRailway) -> None:
    """window() raises the same clear error when the CLI is not logged in."""
    fake.set(auth="unauthorized")
    with pytest.raises(RailwayError, match="railway login"):
        await collect(source(make_ctx(), fake).window(None, None))


async def test_token_passes_through_and_is_not_logged(
    fake: FakeRailway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RAILWAY_TOKEN reaches the CLI through the environment and never appears in a log."""
    secret = "tok-5ecret-value"
    monkeypatch.setenv("RAILWAY_TOKEN", secret)
    fake.set(require_token=secret)
    fake.add("authorised line")
    log = RecordingLog()
    got = await collect(source(make_ctx(log=log), fake).lines(), want=1)
    assert texts(got) == ["authorised line"]
    assert all(run["token_ok"] for run in fake.log_runs())
    assert secret not in repr(log.records)


async def test_missing_binary_is_one_clear_error(tmp_path: Path) -> None:
    """A CLI that is not on PATH fails lines() and window() with one line saying so."""
    cfg = RailwaySourceConfig(binary=str(tmp_path / "no-railway-here"))
    for run in (lambda s: s.lines(), lambda s: s.window(None, None)):
        with pytest.raises(RailwayError, match="not found on PATH") as err:
            await collect(run(cfg.build(make_ctx())))
        assert "\n" not in str(err.value)


async def test_unknown_service_is_fatal(fake: FakeRailway) -> None:
    """A service the project does not have stops the source with the CLI's reason."""
    fake.set(services=["api"])
    with pytest.raises(RailwayError, match='Service "web" not found'):
        await collect(source(make_ctx(), fake, service="web").lines())


def test_fatal_reason_tells_fatal_from_transient() -> None:
    """Only failures a restart cannot fix are fatal; usage errors (exit 2) are fatal too."""
    assert fatal_reason(1, ["Unauthorized. Please login with `railway login`"])
    assert fatal_reason(1, ["No linked project found. Run railway link to connect to a project"])
    assert fatal_reason(2, ["error: unexpected argument '--json' found"])
    assert fatal_reason(2, [])
    assert fatal_reason(1, ["Failed to fetch: error sending request"]) is None
    assert fatal_reason(1, ["No deployments found"]) is None
    assert fatal_reason(1, ["You are being ratelimited. Please try again later"]) is None


# --- poll and scan ------------------------------------------------------------------------


async def test_poll_mode_fetches_since_last_timestamp(fake: FakeRailway) -> None:
    """Poll mode runs `--since` the last timestamp through a pipe and drops the overlap."""
    fake.start_ns = time.time_ns() - 5 * 10**9
    fake.add_many(["p1", "p2"])
    ctx = make_ctx()
    tail = Tail(source(ctx, fake, mode="poll", interval=0.05, lookback=60), ctx)
    await tail.wait(2)
    fake.add("p3")
    assert await tail.wait(3) == ["p1", "p2", "p3"]
    await wait_for(lambda: counter(ctx.metrics.duplicate_lines, "railway") >= 2)
    await tail.stop()
    assert tail.texts() == ["p1", "p2", "p3"]
    runs = fake.log_runs()
    assert not any(run["tty"] for run in runs)
    first, later = runs[0]["argv"], runs[-1]["argv"]
    assert first[first.index("--lines") + 1] == "5000"
    assert later[later.index("--since") + 1] == tail.lines[-1].cursor["ts"]


async def test_poll_mode_first_fetch_uses_lookback(fake: FakeRailway) -> None:
    """With no checkpoint the first poll starts `lookback` ago, skipping older lines."""
    now = time.time_ns()
    fake.add("two hours old", ts=rfc3339(now - 7200 * 10**9))
    fake.add("a second old", ts=rfc3339(now - 10**9))
    ctx = make_ctx()
    tail = Tail(source(ctx, fake, mode="poll", interval=0.05, lookback=60), ctx)
    assert await tail.wait(1) == ["a second old"]
    await tail.stop()
    argv = fake.log_runs()[0]["argv"]
    since = timestamp_ns(argv[argv.index("--since") + 1])
    assert since is not None and abs(since - (now - 60 * 10**9)) < 10 * 10**9


async def test_window_passes_since_until_and_limit(fake: FakeRailway) -> None:
    """window(start, end) fetches once with --since/--until RFC3339 and --lines scan_limit."""
    entries = fake.add_many([f"w{i}" for i in range(10)])
    start = timestamp_ns(entries[3]["timestamp"]) / 1e9
    end = timestamp_ns(entries[6]["timestamp"]) / 1e9
    ctx = make_ctx()
    got = await collect(source(ctx, fake, scan_limit=1234).window(start, end))
    assert texts(got) == ["w3", "w4", "w5", "w6"]
    (run,) = fake.log_runs()
    argv = run["argv"]
    assert not run["tty"]
    assert argv[argv.index("--lines") + 1] == "1234"
    assert timestamp_ns(argv[argv.index("--since") + 1]) == pytest.approx(start * 1e9, abs=10_000)
    assert timestamp_ns(argv[argv.index("--until") + 1]) == pytest.approx(end * 1e9, abs=10_000)


async def test_config_flags_reach_the_cli(fake: FakeRailway) -> None:
    """service, environment, project, filter, log_type and deployment become CLI arguments."""
    fake.add("built", level="error", kind="build", deployment="dep-9")
    cfg = {
        "service": "api",
        "environment": "production",
        "project": "proj-1",
        "filter": "@level:error",
        "log_type": "build",
        "deployment": "dep-9",
    }
    got = await collect(source(make_ctx(), fake, **cfg).window(None, None))
    assert texts(got) == ["built"]
    argv = fake.log_runs()[0]["argv"]
    assert argv[:2] == ["logs", "--json"] and argv[-1] == "dep-9"
    for flag, value in [
        ("--service", "api"),
        ("--environment", "production"),
        ("--project", "proj-1"),
        ("--filter", "@level:error"),
    ]:
        assert argv[argv.index(flag) + 1] == value
    assert "--build" in argv and "--deployment" not in argv


# --- config ---------------------------------------------------------------------------------


def test_cli_service_shortcut_constructs_a_valid_config() -> None:
    """`watcher run --service api` builds the config with just type, name and service."""
    cfg = config_class("railway")(type="railway", name="api", service="api")
    cfg.validate()
    assert (cfg.mode, cfg.binary, cfg.log_type) == ("stream", "railway", "deploy")


def test_config_schema_accepts_durations_and_rejects_unknown_keys() -> None:
    """TOML keys are the dataclass fields: "5m" durations work, typos and bad values fail."""
    cfg = build(RailwaySourceConfig, {"name": "api", "interval": "5m", "max_backoff": "1m"})
    assert (cfg.interval, cfg.max_backoff) == (300.0, 60.0)
    with pytest.raises(SchemaError, match="servce"):
        build(RailwaySourceConfig, {"servce": "api"})
    with pytest.raises(SchemaError, match="mode"):
        build(RailwaySourceConfig, {"mode": "tail"})
    with pytest.raises(SchemaError, match="scan_limit"):
        build(RailwaySourceConfig, {"scan_limit": 0})


# --- de-duplication and timestamps ----------------------------------------------------------


def test_timestamps_order_by_instant_not_by_string() -> None:
    """Nanosecond RFC3339 parses exactly; "…05Z" sorts before "…05.1Z" (strings disagree)."""
    whole, tenth = "2026-11-22T10:00:05Z", "2026-11-22T10:00:05.1Z"
    assert whole > tenth  # the string order the CLI itself relies on is wrong here
    assert timestamp_ns(whole) < timestamp_ns(tenth)
    assert timestamp_ns("2026-11-22T10:00:05.123456789Z") % 10**9 == 123456789
    assert timestamp_ns("2026-11-22T12:00:05+02:00") == timestamp_ns(whole)
    assert timestamp_ns("yesterday") is None
    assert format_ns(timestamp_ns(rfc3339(BASE_NS + 7))) == rfc3339(BASE_NS + 7)


def test_deduper_memory_is_bounded_and_old_entries_are_replays() -> None:
    """Only the newest hashes are kept; anything older than what is kept is a replay."""
    dedupe = Deduper(max_hashes=100)
    for i in range(10_000):
        assert dedupe.admit(i * 10**7, rfc3339(i * 10**7), f"h{i}")  # 10 ms apart
    assert dedupe._count == 100
    assert not dedupe.admit(5 * 10**7, rfc3339(5 * 10**7), "never seen but ancient")
    late = 9_999 * 10**7 - 5 * 10**6  # out of order, but within what is kept
    assert dedupe.admit(late, rfc3339(late), "late")
    assert not dedupe.admit(late, rfc3339(late), "late")


def test_cursor_is_small_and_resumes_exactly() -> None:
    """The cursor holds the newest timestamp and a capped list of hashes seen at it."""
    dedupe = Deduper()
    stamp = rfc3339(BASE_NS)
    for i in range(CURSOR_HASHES + 50):
        dedupe.admit(BASE_NS, stamp, f"h{i}")
    cursor = dedupe.cursor
    assert cursor is not None and cursor["ts"] == stamp and len(cursor["h"]) == CURSOR_HASHES
    resumed = Deduper.resume(json.loads(json.dumps(cursor)))
    assert not resumed.admit(BASE_NS, stamp, f"h{CURSOR_HASHES + 49}")
    assert resumed.admit(BASE_NS, stamp, "new at the same instant")
    assert not resumed.admit(BASE_NS - 1, rfc3339(BASE_NS - 1), "before the checkpoint")


def test_decode_hash_ignores_key_order() -> None:
    """The same entry printed with its keys in another order has the same hash."""
    one = decode('{"message":"m","timestamp":"2026-11-22T10:00:00Z","a":1,"b":"x"}', MiB)
    two = decode('{"b":"x","a":1,"timestamp":"2026-11-22T10:00:00Z","message":"m"}', MiB)
    assert one.digest == two.digest and one.text == two.text == "m"
    other = decode('{"b":"y","a":1,"timestamp":"2026-11-22T10:00:00Z","message":"m"}', MiB)
    assert other.digest != one.digest


async def test_traceback_split_over_entries_is_reassembled(fake: FakeRailway) -> None:
    """Railway stores each stdout line as a log; as plain text they rebuild one traced error."""
    fake.add_many(["GET /orders 200"], level="info")
    fake.add_many(
        [
            "Traceback (most recent call last):",
            '  File "/app/orders.py", line 12, in load',
            "    return parse(raw)",
            "ValueError: bad order id 'x1'",
        ],
        level="error",
    )
    fake.add("GET /health 200")
    got = await collect(source(make_ctx(), fake).window(None, None))
    pipeline = Pipeline(GroupTable())
    for batch in got:
        pipeline.feed(batch)
    pipeline.flush(force=True)
    (group,) = pipeline.table.snapshot()
    assert group.exception_type == "ValueError" and group.count == 1
    assert group.top_frame is not None and group.top_frame.file == "/app/orders.py"
