"""The loki source against the fake Loki: tail, backfill, reconnects, paging, shapes, auth."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.loki import FakeLoki, fake_loki  # noqa: F401  (the fixture)
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
from watcher.sources import loki as loki_module
from watcher.sources.base import Source, SourceContext
from watcher.sources.loki import LokiSource, LokiSourceConfig
from watcher.sources.loki_api import LokiError, parse_streams, parse_tail_message, ssl_option
from watcher.sources.loki_intake import NS, Floor, Recent
from watcher.sources.loki_logql import DEFAULT_ERROR_FILTER, effective_query, is_bare_selector

API = {"app": "api"}


async def no_sleep(shutdown: asyncio.Event, seconds: float) -> bool:
    """An injected backoff sleep that returns at once (yielding to the loop)."""
    await asyncio.sleep(0)
    return shutdown.is_set()


class Gate:
    """A backoff sleep that waits until the test opens it: 'disconnected' for as long as needed."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.waiting = 0
        self.calls = 0

    async def sleep(self, shutdown: asyncio.Event, seconds: float) -> bool:
        """Wait for open() or shutdown; True when shutdown."""
        self.waiting += 1
        self.calls += 1
        stop = asyncio.ensure_future(shutdown.wait())
        gate = asyncio.ensure_future(self.opened.wait())
        await asyncio.wait((stop, gate), return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        gate.cancel()
        self.opened.clear()
        self.waiting -= 1
        return shutdown.is_set()

    def open(self) -> None:
        """Let the waiting reconnect go ahead."""
        self.opened.set()


def loki(ctx: SourceContext, fake: FakeLoki, *, sleep: Any = no_sleep, **kwargs: Any) -> LokiSource:
    """A loki source on the fake: query {app="api"}, no error filter, instant backoff."""
    kwargs.setdefault("query", '{app="api"}')
    kwargs.setdefault("error_filter", "")
    config = LokiSourceConfig(url=fake.url, **kwargs)
    config.validate()
    return LokiSource(config, ctx, backoff=Backoff(sleep=sleep))


def counter(metric: Any, *labels: str) -> float:
    """The value of a labelled counter/gauge."""
    return metric.labels(*labels)._value.get()


def push_lines(fake: FakeLoki, lines: list[str], *, base: int | None = None, **labels: str) -> None:
    """Push lines 1 µs apart, starting a minute ago unless `base` is given."""
    base = base if base is not None else time.time_ns() - 60 * NS
    for i, line in enumerate(lines):
        fake.push(labels or API, line, base + i * 1000)


class TestLokiContract(SourceContract):
    """The loki source passes the shared source contract against the fake Loki."""

    raw_bytes = False  # JSON carries text, not bytes
    resumable = True

    @pytest.fixture(autouse=True)
    def _use_fake(self, fake_loki: FakeLoki) -> None:  # noqa: F811
        self.fake = fake_loki
        self.base = time.time_ns() - 60 * NS  # fixed, so a second build re-pushes identical data

    async def build(
        self, ctx: SourceContext, lines: list[bytes], tmp_path: Path, *, follow: bool
    ) -> Source:
        push_lines(self.fake, [line.decode() for line in lines], base=self.base)
        return loki(ctx, self.fake, name=self.name)


# --- follow: tail, reconnect, backfill --------------------------------------------------------


async def test_tail_delivers_pushed_entries(fake_loki: FakeLoki) -> None:  # noqa: F811
    """Entries pushed after the tail opened arrive through it, in order, with labels as fields."""
    ctx = make_ctx()
    tail = Tail(loki(ctx, fake_loki), ctx)
    await wait_for(lambda: fake_loki.open_tails == 1)
    for i in range(3):
        fake_loki.push(API, f"live {i}")
    assert await tail.wait(3) == ["live 0", "live 1", "live 2"]
    line = tail.lines[0]
    assert line.stream == '{app="api"}' and line.fields == API and line.source == "loki"
    assert abs(line.timestamp - time.time()) < 5  # type: ignore[operator]
    assert counter(ctx.metrics.source_up, "loki") == 1
    await tail.stop()
    assert counter(ctx.metrics.source_up, "loki") == 0


@pytest.mark.parametrize(("code", "abrupt"), [(1000, False), (1011, False), (1000, True)])
async def test_reconnect_backfills_gap_exactly_once(
    fake_loki: FakeLoki,  # noqa: F811
    code: int,
    abrupt: bool,
) -> None:
    """A closed tail (normal, error, dropped TCP) reconnects; entries from before, during and
    after the gap arrive exactly once."""
    ctx = make_ctx()
    gate = Gate()
    tail = Tail(loki(ctx, fake_loki, sleep=gate.sleep), ctx)
    await wait_for(lambda: fake_loki.open_tails == 1)
    for i in range(5):
        fake_loki.push(API, f"before {i}")
    await tail.wait(5)
    assert fake_loki.close_tails(code=code, abrupt=abrupt) == 1
    await wait_for(lambda: gate.waiting == 1)  # disconnected, waiting to reconnect
    for i in range(5):
        fake_loki.push(API, f"during {i}")
    gate.open()
    await wait_for(lambda: fake_loki.open_tails == 1 and fake_loki.requests["tail"] == 2)
    for i in range(5):
        fake_loki.push(API, f"after {i}")
    got = await tail.wait(15)
    await asyncio.sleep(0.1)  # a duplicate would arrive right behind; not a correctness wait
    await tail.stop()
    want = [f"{phase} {i}" for phase in ("before", "during", "after") for i in range(5)]
    assert tail.texts() == want == got
    assert counter(ctx.metrics.source_reconnects, "loki") == 1
    # the backfill re-read the overlap and dropped what the tail had delivered
    assert counter(ctx.metrics.duplicate_lines, "loki") >= 5


@pytest.mark.parametrize(("status", "endpoint"), [(429, "tail"), (503, "query_range")])
async def test_refusals_back_off_and_retry(
    fake_loki: FakeLoki,  # noqa: F811
    status: int,
    endpoint: str,
) -> None:
    """429/503 on the upgrade or a query are retried with backoff; each retry is counted."""
    ctx = make_ctx(log=RecordingLog())
    fake_loki.fail_next(3, status, endpoint)
    src = loki(ctx, fake_loki)
    tail = Tail(src, ctx)
    await wait_for(lambda: fake_loki.open_tails == 1)
    fake_loki.push(API, "after the outage")
    assert await tail.wait(1) == ["after the outage"]
    await tail.stop()
    assert counter(ctx.metrics.source_reconnects, "loki") == 3
    assert src.backoff.attempt == 0  # connected: the next failure starts from the first delay
    warnings = [f for lv, e, f in ctx.log.records if lv == "warning"]
    assert warnings and str(status) in str(warnings[0]["error"])


async def test_auth_refused_after_start_keeps_retrying(fake_loki: FakeLoki) -> None:  # noqa: F811
    """Credentials refused once the source has worked (a rotated token) are retried, not fatal."""
    ctx = make_ctx(log=RecordingLog())
    gate = Gate()
    tail = Tail(loki(ctx, fake_loki, sleep=gate.sleep), ctx)
    await wait_for(lambda: fake_loki.open_tails == 1)
    fake_loki.require(bearer="rotated")
    fake_loki.close_tails()
    for calls in (1, 2):
        await wait_for(lambda: gate.waiting == 1 and gate.calls == calls)  # noqa: B023
        gate.open()
    await wait_for(lambda: gate.waiting == 1 and gate.calls == 3)
    assert not tail.task.done()
    fake_loki.require()
    fake_loki.push(API, "back")
    gate.open()
    assert await tail.wait(1) == ["back"]
    await tail.stop()
    assert any("refused the credentials" in str(f.get("error")) for _, _, f in ctx.log.records)


async def test_fresh_start_reads_lookback_only(fake_loki: FakeLoki) -> None:  # noqa: F811
    """With no checkpoint, follow starts at now - lookback; lag is reported for what it read."""
    now = time.time_ns()
    fake_loki.push(API, "ten minutes ago", now - 600 * NS)
    fake_loki.push(API, "one minute ago", now - 60 * NS)
    ctx = make_ctx()
    tail = Tail(loki(ctx, fake_loki, lookback=300.0), ctx)
    await wait_for(lambda: fake_loki.open_tails == 1)
    await tail.stop()
    assert tail.texts() == ["one minute ago"]
    assert 55 <= counter(ctx.metrics.source_lag, "loki") <= 120


async def test_dropped_entries_counted(fake_loki: FakeLoki) -> None:  # noqa: F811
    """dropped_entries in a tail message are counted in dropped_lines{reason="upstream"}."""
    ctx = make_ctx(log=RecordingLog())
    tail = Tail(loki(ctx, fake_loki), ctx)
    await wait_for(lambda: fake_loki.open_tails == 1)
    fake_loki.send_dropped(API, [1, 2, 3])
    await wait_for(lambda: counter(ctx.metrics.dropped_lines, "upstream") == 3)
    await tail.stop()
    assert "Loki dropped tail entries for this slow client." in ctx.log.events("warning")


async def test_resume_per_stream_cursors_same_ns(fake_loki: FakeLoki) -> None:  # noqa: F811
    """Resuming from per-stream cursors delivers exactly the uncommitted entries, ties included."""
    base = time.time_ns() - 60 * NS
    plan = [("a", "a0", 1), ("a", "a1", 2), ("b", "b0", 2), ("a", "a2", 2), ("a", "a3", 3)]
    plan.append(("b", "b1", 4))
    for app, line, tick in plan:
        fake_loki.push({"app": app}, line, base + tick)
    query = '{app=~"a|b"}'
    first = await collect(loki(make_ctx(), fake_loki, query=query).lines(), want=6)
    by_text = {line.text: line for batch in first for line in batch}
    assert sorted(by_text) == ["a0", "a1", "a2", "a3", "b0", "b1"]
    checkpoint = {
        by_text[t].stream: json.loads(json.dumps(by_text[t].cursor)) for t in ("a1", "b0")
    }
    ctx = make_ctx(checkpoint=checkpoint)
    again = await collect(loki(ctx, fake_loki, query=query).lines(), want=3)
    assert texts(again) == ["a2", "a3", "b1"]
    assert counter(ctx.metrics.duplicate_lines, "loki") == 3  # a0, a1, b0 re-read and dropped


async def test_fatal_auth_error_raised_at_start(fake_loki: FakeLoki) -> None:  # noqa: F811
    """Credentials refused before anything worked: lines() raises one clear error, no loop."""
    fake_loki.require(bearer="right")
    with pytest.raises(LokiError, match="refused the credentials: HTTP 401"):
        await collect(loki(make_ctx(), fake_loki).lines())
    assert fake_loki.requests["query_range"] == 1


async def test_missing_secret_env_is_fatal(
    fake_loki: FakeLoki,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A token_env naming an unset variable is a clear error before any request."""
    monkeypatch.delenv("WATCHER_TEST_LOKI_TOKEN", raising=False)
    src = loki(make_ctx(), fake_loki, token_env="WATCHER_TEST_LOKI_TOKEN")
    with pytest.raises(LokiError, match="token_env: environment variable WATCHER_TEST_LOKI_TOKEN"):
        await collect(src.window(None, None))
    assert fake_loki.requests["query_range"] == 0


async def test_multiline_entry_split_with_safe_cursors(fake_loki: FakeLoki) -> None:  # noqa: F811
    """An entry holding a whole trace becomes one RawLine per line; only its last has its cursor."""
    trace = 'Traceback (most recent call last):\n  File "a.py", line 1, in f\nValueError: x\n'
    push_lines(fake_loki, ["ERROR first", trace])
    lines = [
        line
        for batch in await collect(loki(make_ctx(), fake_loki).lines(), want=4)
        for line in batch
    ]
    assert [line.text for line in lines] == ["ERROR first", *trace.splitlines()]
    first_cursor = lines[0].cursor
    assert [line.cursor for line in lines[1:3]] == [first_cursor, first_cursor]
    assert lines[3].cursor != first_cursor and lines[3].cursor is not None
    assert [line.line_no for line in lines] == [1, 2, 3, 4]


# --- scan: paging and chunks ------------------------------------------------------------------


async def test_pagination_over_limit_same_and_different_ns(
    fake_loki: FakeLoki,  # noqa: F811
) -> None:
    """Pages of `limit` walk past ties: 12 entries on one ns (> limit) and 25 spread ones."""
    base = time.time_ns() - 60 * NS
    want = [f"tie {i}" for i in range(12)] + [f"spread {i}" for i in range(15)]
    for i, line in enumerate(want):
        fake_loki.push(API, line, base if i < 12 else base + i)
    want += [f"late tie {i}" for i in range(10)]
    for line in want[-10:]:
        fake_loki.push(API, line, base + 100)
    ctx = make_ctx()
    batches = await collect(loki(ctx, fake_loki, limit=10).window(None, None))
    assert texts(batches) == want
    assert "20" in [q["limit"] for q in fake_loki.queries]  # the tie page asked for more
    assert counter(ctx.metrics.duplicate_lines, "loki") == 0  # page overlaps are not duplicates


async def test_too_many_entries_on_one_ns_skipped_with_warning(
    fake_loki: FakeLoki,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More same-ns entries than the server's cap: the rest of that ns is skipped, not looped."""
    monkeypatch.setattr(loki_module, "MAX_LIMIT", 4)
    base = time.time_ns() - 60 * NS
    for i in range(6):
        fake_loki.push(API, f"tie {i}", base)
    fake_loki.push(API, "next", base + 1)
    log = RecordingLog()
    batches = await collect(loki(make_ctx(log=log), fake_loki, limit=2).window(None, None))
    assert texts(batches) == ["tie 0", "tie 1", "tie 2", "tie 3", "next"]
    assert len(log.events("warning")) == 1


async def test_window_split_into_chunks() -> None:
    """A 2-day scan runs as 1-hour queries, under a server max_query_length of 1 h."""
    fake = await FakeLoki(max_query_length=3600).start()
    try:
        now = time.time()
        start = now - 2 * 86400
        for hour in range(48):
            fake.push(API, f"hour {hour}", int((start + hour * 3600 + 30) * NS))
        src = loki(make_ctx(), fake, chunk=3600.0)
        batches = await collect(src.window(start, now))
        assert texts(batches) == [f"hour {h}" for h in range(48)]
        assert fake.requests["query_range"] >= 48
        too_long = loki(make_ctx(), fake, chunk=7200.0)
        with pytest.raises(LokiError, match="rejected the query: HTTP 400"):
            await collect(too_long.window(start, now))
    finally:
        await fake.stop()


async def test_window_bounds_and_retries(fake_loki: FakeLoki) -> None:  # noqa: F811
    """window() keeps [start, end] (end inclusive), retries transient errors, then gives up."""
    base = 1_700_000_000 * NS
    for i in range(5):
        fake_loki.push(API, f"w{i}", base + i * NS)
    fake_loki.fail_next(2, 503)
    src = loki(make_ctx(log=RecordingLog()), fake_loki)
    assert texts(await collect(src.window(1_700_000_001, 1_700_000_003))) == ["w1", "w2", "w3"]
    fake_loki.fail_next(10, 503)
    with pytest.raises(LokiError, match="HTTP 503"):
        await collect(src.window(1_700_000_001, 1_700_000_003))


# --- shapes, auth, query ----------------------------------------------------------------------


@pytest.mark.parametrize("categorize", [True, False])
async def test_both_value_shapes(categorize: bool) -> None:
    """3-tuples (categorize-labels) and 2-tuples give the same lines; metadata lands in fields."""
    fake = await FakeLoki(categorize=categorize).start()
    try:
        push_lines(fake, ["with metadata"])
        fake.entries[0].metadata = {"trace_id": "t1"}
        lines = [
            line
            for batch in await collect(loki(make_ctx(), fake).window(None, None))
            for line in batch
        ]
    finally:
        await fake.stop()
    assert [line.text for line in lines] == ["with metadata"]
    assert lines[0].fields == {"app": "api", "trace_id": "t1"}
    want_stream = '{app="api"}' if categorize else '{app="api", trace_id="t1"}'
    assert lines[0].stream == want_stream


def test_value_shapes_share_one_identity() -> None:
    """The same entry has the same identity as a 2-tuple (folded) and as a 3-tuple."""
    three = [
        {
            "stream": {"app": "api"},
            "values": [["17", "boom", {"structuredMetadata": {"trace_id": "t1"}, "parsed": {}}]],
        }
    ]
    two = [{"stream": {"app": "api", "trace_id": "t1"}, "values": [["17", "boom"]]}]
    (a,), (b,) = parse_streams(three), parse_streams(two)
    assert (a.ns, a.line, a.ident) == (b.ns, b.line, b.ident) == (17, "boom", b.ident)
    entries, dropped = parse_tail_message(
        json.dumps({"streams": two, "dropped_entries": [{"labels": {}, "timestamp": "1"}]})
    )
    assert [e.ident for e in entries] == [b.ident] and dropped == 1
    with pytest.raises(LokiError, match="unexpected Loki response"):
        parse_streams([{"stream": {}, "values": [["x"]]}])


@pytest.mark.parametrize(
    ("kwargs", "require", "header"),
    [
        ({"tenant": "team-a"}, {"tenant": "team-a"}, ("X-Scope-OrgID", "team-a")),
        (
            {"token_env": "WATCHER_TEST_TOKEN"},
            {"bearer": "s3cret"},
            ("Authorization", "Bearer s3cret"),
        ),
        (
            {"username": "u1", "password_env": "WATCHER_TEST_TOKEN"},
            {"basic": ("u1", "s3cret")},
            ("Authorization", "Basic dTE6czNjcmV0"),
        ),
    ],
)
async def test_auth_headers_sent(
    fake_loki: FakeLoki,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, str],
    require: dict[str, Any],
    header: tuple[str, str],
) -> None:
    """Tenant, bearer token (from env) and basic auth reach both query_range and the tail."""
    monkeypatch.setenv("WATCHER_TEST_TOKEN", "s3cret")
    fake_loki.require(**require)
    push_lines(fake_loki, ["authorised"])
    ctx = make_ctx()
    tail = Tail(loki(ctx, fake_loki, **kwargs), ctx)
    await wait_for(lambda: fake_loki.open_tails == 1)
    assert await tail.wait(1) == ["authorised"]
    await tail.stop()
    assert fake_loki.requests["tail"] == 1 and fake_loki.requests["query_range"] >= 1
    assert all(h.get(header[0]) == header[1] for h in fake_loki.headers)


async def test_grafana_proxy_base_url() -> None:
    """A base URL with a path (a Grafana datasource proxy; trailing slash too) gets the API."""
    fake = await FakeLoki(prefix="/api/datasources/proxy/uid/abc").start()
    try:
        push_lines(fake, ["via grafana"])
        config = LokiSourceConfig(url=fake.url + "/", query='{app="api"}', error_filter="")
        src = LokiSource(config, make_ctx(), backoff=Backoff(sleep=no_sleep))
        assert texts(await collect(src.lines(), want=1)) == ["via grafana"]
    finally:
        await fake.stop()


async def test_default_error_filter_pushed_to_loki(fake_loki: FakeLoki) -> None:  # noqa: F811
    """A bare selector gets the error filter: errors and trace continuations pass, INFO does not."""
    lines = [
        "INFO all good",
        "ERROR payment failed",
        "Traceback (most recent call last):",
        '  File "app.py", line 3, in handler',
        "    charge()",
        "KeyError: 'card'",
        "\tat com.acme.Pay.run(Pay.java:12)",
        "Caused by: java.io.IOException: reset",
        "DEBUG still fine",
    ]
    push_lines(fake_loki, lines)
    src = loki(make_ctx(), fake_loki, error_filter=DEFAULT_ERROR_FILTER)
    got = texts(await collect(src.window(None, None)))
    assert got == [line for line in lines if not line.startswith(("INFO", "DEBUG"))]
    assert "|~" in fake_loki.queries[-1]["query"]


def test_query_rule() -> None:
    """Only a bare selector gets the filter; braces inside quoted values do not fool it."""
    assert effective_query('{app="api"}', "err") == '{app="api"} |~ `err`'
    assert effective_query('{app="a}b"} ', "err") == '{app="a}b"} |~ `err`'
    assert effective_query('{app="api"} |= "x"', "err") == '{app="api"} |= "x"'
    assert effective_query('{app="api"}', "") == '{app="api"}'
    assert effective_query('{a="b"}', "a`b") == '{a="b"} |~ "a`b"'
    assert not is_bare_selector('sum(rate({a="b"}[1m]))')


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"query": '{a="b"}'}, "url: missing required key"),
        ({"url": "", "query": '{a="b"}'}, "url: must not be empty"),
        ({"url": "loki:3100", "query": '{a="b"}'}, "url: expected an http(s) URL"),
        ({"url": "http://u:p@loki", "query": '{a="b"}'}, "url: put credentials"),
        ({"url": "http://loki?x=1", "query": '{a="b"}'}, "url: must not have a query"),
        ({"url": "http://loki", "query": "rate(x)"}, "query: must start with a stream selector"),
        ({"url": "http://loki", "query": '{a="b"}', "username": "u"}, "password_env: required"),
        ({"url": "http://loki", "query": '{a="b"}', "delay_for": 9}, "delay_for: must be 0 to 5"),
        ({"url": "http://loki", "query": '{a="b"}', "limit": 9000}, "limit: must be 1 to 5000"),
        ({"url": "http://loki", "query": '{a="b"}', "chunk": "0s"}, "chunk: expected a number"),
    ],
)
def test_config_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    """Bad or missing keys fail with the dotted key and what was expected."""
    with pytest.raises(SchemaError) as info:
        build(LokiSourceConfig, {"type": "loki", **data}, ("sources", 0))
    assert f"sources[0].{message}" in str(info.value)


def test_config_durations_and_defaults() -> None:
    """Durations accept "5m"/"1h"; defaults match the documentation."""
    cfg = build(
        LokiSourceConfig, {"url": "http://loki:3100", "query": '{a="b"}', "lookback": "10m"}
    )
    assert (cfg.lookback, cfg.chunk, cfg.limit, cfg.timeout) == (600.0, 3600.0, 1000, 30.0)
    assert cfg.error_filter == DEFAULT_ERROR_FILTER and cfg.tls_verify and cfg.name == "loki"


# --- bounded state ----------------------------------------------------------------------------


def test_floor_resume_ignores_stale_streams() -> None:
    """Resume starts at the oldest cursor near the newest; a long-quiet stream does not drag it."""
    hour = 3600 * NS
    floor = Floor(
        {
            "busy": {"ns": str(10 * hour), "seen": []},
            "lagging": {"ns": str(10 * hour - 60 * NS), "seen": []},
            "quiet": {"ns": str(hour), "seen": []},
            "junk": "not a cursor",
        }
    )
    assert floor.resume_ns(hour) == 10 * hour - 60 * NS
    assert Floor(None).resume_ns(hour) is None


def test_recent_memory_is_bounded() -> None:
    """The de-duplication memory keeps only the overlap window behind the newest entry."""
    recent = Recent(horizon_ns=100)
    (template,) = parse_streams([{"stream": {}, "values": [["0", "x"]]}])
    for ns in range(200_000):
        template.ns = ns
        assert recent.add(template)
    assert len(recent) < 2100
    template.ns = 199_990
    assert not recent.add(template)  # inside the window: a duplicate


def test_tls_options(tmp_path: Path) -> None:
    """tls_verify=false disables checks; ca_file loads a private CA, or fails clearly."""
    assert ssl_option(False, "") is False
    assert ssl_option(True, "") is True
    with pytest.raises(LokiError, match="ca_file: cannot load"):
        ssl_option(True, str(tmp_path / "missing.pem"))


async def test_short_sessions_do_not_grow_the_reconnect_backoff(
    fake_loki: FakeLoki,  # noqa: F811
) -> None:
    """A tail that Loki (or a proxy) keeps closing after a short while reconnects at the first
    delay every time: a session that connected was healthy, so the backoff is reset (it used
    to climb towards the 60 s cap, lagging a minute behind)."""
    delays: list[float] = []

    async def record(shutdown: asyncio.Event, seconds: float) -> bool:
        delays.append(seconds)
        return await no_sleep(shutdown, seconds)

    ctx = make_ctx()
    config = LokiSourceConfig(url=fake_loki.url, query='{app="api"}', error_filter="")
    src = LokiSource(config, ctx, backoff=Backoff(sleep=record, rng=lambda: 1.0))
    tail = Tail(src, ctx)
    for session in range(1, 6):
        await wait_for(lambda s=session: fake_loki.requests["tail"] == s and fake_loki.open_tails)
        fake_loki.close_tails()
    await wait_for(lambda: len(delays) == 5)
    await tail.stop()
    assert delays == [0.5] * 5


async def test_entries_later_than_max_lateness_are_counted_not_lost_silently(
    fake_loki: FakeLoki,  # noqa: F811
) -> None:
    """While disconnected, an entry 3 s late (within max_lateness = 5 s) is backfilled; one
    7 s late is outside the re-read: counted in watcher_dropped_lines_total{reason="late"}
    and logged instead of vanishing."""
    ctx = make_ctx(log=RecordingLog())
    gate = Gate()
    tail = Tail(loki(ctx, fake_loki, sleep=gate.sleep, max_lateness=5.0), ctx)
    await wait_for(lambda: fake_loki.open_tails == 1)
    newest = time.time_ns()
    fake_loki.push(API, "on time", newest)
    await tail.wait(1)
    fake_loki.close_tails()
    await wait_for(lambda: gate.waiting == 1)
    fake_loki.push(API, "3 s late", newest - 3 * NS)
    fake_loki.push(API, "7 s late", newest - 7 * NS)
    gate.open()
    assert await tail.wait(2) == ["on time", "3 s late"]
    await wait_for(lambda: counter(ctx.metrics.dropped_lines, "late") == 1)
    await tail.stop()
    assert "7 s late" not in tail.texts()
    assert any("later than max_lateness" in e for _, e, _ in ctx.log.records)
