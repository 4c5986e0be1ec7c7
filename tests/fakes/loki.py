"""A fake Loki on 127.0.0.1 that speaks the two APIs the loki source uses, faithfully enough.

- `GET {prefix}/loki/api/v1/query_range`: `query`, `start` (inclusive), `end` (exclusive), `limit`
  (applied across streams), `direction` (forward|backward); ns integers, float seconds or RFC3339.
  Loki's answers: `{"status":"success","data":{"resultType":"streams","result":[…],"stats":{}}}`,
  2-tuple values, or 3-tuples `[ts, line, {"structuredMetadata": …}]` with only the indexed
  labels in "stream" when the request has `X-Loki-Response-Encoding-Flags: categorize-labels`
  (and `categorize=True`, the default; False plays a Loki 2.x that folds metadata into labels).
  400s for `limit` over max_entries_limit_per_query and ranges over max_query_length.
- `GET {prefix}/loki/api/v1/tail` websocket: the entries at or after `start` (up to `limit`) in
  one frame, then every pushed entry the query matches, as `{"streams":[…],"dropped_entries":…}`.
  `delay_for` is accepted and ignored.

LogQL subset: a selector of `=`, `!=`, `=~`, `!~` matchers, then any number of `|=`, `!=`, `|~`,
`!~` line filters with "…" or `…` strings; regexes run with Python's `re` (close to RE2 for
what tests use). Anything else is a 400, as an unsupported query would be.

Control methods (`push`, `fail_next`, `close_tails`, `send_dropped`, `require`) are thread-safe,
so a daemon in a subprocess can be fed while the fake runs in a thread (`serve_in_thread`). The
`fake_loki` fixture runs it on the test's own loop.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import datetime as dt
import json
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSMsgType, web

NS = 1_000_000_000
CATEGORIZE = ("X-Loki-Response-Encoding-Flags", "categorize-labels")

# --- LogQL subset ------------------------------------------------------------------------------

_STRING = r'"(?:[^"\\]|\\.)*"|`[^`]*`'
_MATCHER = re.compile(rf"\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*({_STRING})\s*(,?)\s*")
_FILTER = re.compile(rf"\s*(\|=|!=|\|~|!~)\s*({_STRING})")

Predicate = Callable[[str], bool]


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _label_test(op: str, value: str) -> Predicate:
    if op == "=":
        return lambda v: v == value
    if op == "!=":
        return lambda v: v != value
    pattern = re.compile(value)
    if op == "=~":
        return lambda v: pattern.fullmatch(v) is not None
    return lambda v: pattern.fullmatch(v) is None


def _line_test(op: str, value: str) -> Predicate:
    if op == "|=":
        return lambda line: value in line
    if op == "!=":
        return lambda line: value not in line
    pattern = re.compile(value)
    if op == "|~":
        return lambda line: pattern.search(line) is not None
    return lambda line: pattern.search(line) is None


@dataclass
class Query:
    """A parsed query of the supported subset."""

    labels: list[tuple[str, Predicate]]
    lines: list[Predicate]

    def matches(self, labels: dict[str, str], line: str) -> bool:
        """True when the entry is selected by the matchers and passes every line filter."""
        if not all(test(labels.get(name, "")) for name, test in self.labels):
            return False
        return all(test(line) for test in self.lines)


def parse_query(text: str) -> Query:
    """The subset parser; ValueError("parse error …") for anything outside it."""
    text = text.strip()
    if not text.startswith("{") or "}" not in text:
        raise ValueError("parse error: expected a stream selector")
    pos, labels = 1, []
    while not text.startswith("}", pos):
        match = _MATCHER.match(text, pos)
        if match is None:
            raise ValueError(f"parse error at {pos}: unsupported matcher")
        labels.append((match.group(1), _label_test(match.group(2), _unquote(match.group(3)))))
        pos = match.end()
        if not match.group(4) and not text.startswith("}", pos):
            raise ValueError(f"parse error at {pos}: expected , or }}")
    if not labels:
        raise ValueError("parse error: queries require at least one matcher")
    pos += 1
    lines = []
    while pos < len(text):
        match = _FILTER.match(text, pos)
        if match is None:
            if text[pos:].strip():
                raise ValueError(f"parse error at {pos}: the fake only supports line filters")
            break
        lines.append(_line_test(match.group(1), _unquote(match.group(2))))
        pos = match.end()
    return Query(labels, lines)


def parse_time(text: str | None, default: int) -> int:
    """A Loki timestamp parameter as ns: integer ns, float seconds, or RFC3339."""
    if not text:
        return default
    if re.fullmatch(r"\d+", text):
        return int(text)
    try:
        return int(float(text) * NS)
    except ValueError:
        return int(dt.datetime.fromisoformat(text).timestamp() * NS)


# --- the fake ----------------------------------------------------------------------------------


@dataclass
class FakeEntry:
    """One stored entry."""

    labels: dict[str, str]
    ns: int
    line: str
    metadata: dict[str, str] | None = None

    def value(self, categorize: bool) -> tuple[dict[str, str], list[Any]]:
        """(stream labels, value) as Loki would encode this entry."""
        if categorize:
            extra = {"structuredMetadata": self.metadata} if self.metadata else {}
            return self.labels, [str(self.ns), self.line, extra]
        return {**self.labels, **(self.metadata or {})}, [str(self.ns), self.line]


def encode_streams(entries: list[FakeEntry], categorize: bool) -> list[dict[str, Any]]:
    """Group entries into Loki's `streams` result, keeping their order within each stream."""
    streams: dict[str, dict[str, Any]] = {}
    for entry in entries:
        labels, value = entry.value(categorize)
        key = json.dumps(labels, sort_keys=True)
        if key not in streams:
            streams[key] = {"stream": labels, "values": []}
        streams[key]["values"].append(value)
    return list(streams.values())


@dataclass(eq=False)
class _Tail:
    """One connected tail client."""

    query: Query
    categorize: bool
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    def send(self, item: Any) -> None:
        """Thread-safe: hand a frame (or a close command) to the client's handler."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class FakeLoki:
    """The fake server and its control panel."""

    def __init__(
        self,
        *,
        prefix: str = "",
        categorize: bool = True,
        max_entries: int = 5000,
        max_query_length: float = 721 * 3600,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.categorize = categorize
        self.max_entries = max_entries
        self.max_query_length_ns = int(max_query_length * NS)
        self.entries: list[FakeEntry] = []  # sorted by ns; ties in push order
        self.requests: Counter[str] = Counter()  # endpoint -> count (refused ones included)
        self.headers: list[dict[str, str]] = []  # every request's headers, in order
        self.queries: list[dict[str, str]] = []  # every query_range's parameters, in order
        self.port = 0
        self._lock = threading.RLock()  # _select runs inside the tail snapshot
        self._failures: list[tuple[str | None, int]] = []
        self._tails: set[_Tail] = set()
        self._auth: dict[str, Any] = {}
        self._runner: web.AppRunner | None = None

    # --- control (any thread) ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL a loki source is configured with."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def push(
        self,
        labels: dict[str, str],
        line: str,
        ns: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> FakeEntry:
        """Ingest one entry (ns defaults to now) and send it to every tail it matches."""
        entry = FakeEntry(dict(labels), time.time_ns() if ns is None else ns, line, metadata)
        with self._lock:
            # Loki keeps one copy of an identical (labels, ts, line) entry
            lo = bisect.bisect_left(self.entries, entry.ns, key=lambda e: e.ns)
            for twin in self.entries[lo:]:
                if twin.ns != entry.ns:
                    break
                if (twin.labels, twin.line, twin.metadata) == (entry.labels, line, metadata):
                    return twin
            bisect.insort_right(self.entries, entry, key=lambda e: e.ns)
            tails = list(self._tails)
        for tail in tails:
            if tail.query.matches({**entry.labels, **(metadata or {})}, entry.line):
                frame = {"streams": encode_streams([entry], tail.categorize)}
                tail.send({**frame, "dropped_entries": None})
        return entry

    def fail_next(self, count: int, status: int = 503, endpoint: str | None = None) -> None:
        """Answer the next `count` requests (to "query_range"/"tail", or any) with `status`."""
        with self._lock:
            self._failures.extend([(endpoint, status)] * count)

    def close_tails(self, code: int = 1000, *, abrupt: bool = False) -> int:
        """Close every open tail now (abrupt: drop the TCP connection); how many there were."""
        with self._lock:
            tails = list(self._tails)
        for tail in tails:
            tail.send(("abort",) if abrupt else ("close", code))
        return len(tails)

    def send_dropped(self, labels: dict[str, str], ns_list: list[int]) -> None:
        """Tell every tail that these entries were dropped (as Loki does for slow clients)."""
        dropped = [{"labels": labels, "timestamp": str(ns)} for ns in ns_list]
        with self._lock:
            tails = list(self._tails)
        for tail in tails:
            tail.send({"streams": [], "dropped_entries": dropped})

    def require(
        self, *, tenant: str = "", bearer: str = "", basic: tuple[str, str] | None = None
    ) -> None:
        """Refuse (401) requests without this tenant / bearer token / basic credentials."""
        self._auth = {"tenant": tenant, "bearer": bearer, "basic": basic}

    @property
    def open_tails(self) -> int:
        """Tail websockets currently connected."""
        with self._lock:
            return len(self._tails)

    # --- lifecycle --------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_get(self.prefix + "/loki/api/v1/query_range", self._query_range)
        app.router.add_get(self.prefix + "/loki/api/v1/tail", self._tail)
        app.router.add_get(self.prefix + "/ready", self._ready)
        return app

    async def _ready(self, _request: web.Request) -> web.Response:
        """Loki's readiness endpoint: "ready" once its ring is up (always, here)."""
        return web.Response(text="ready\n")

    async def start(self, port: int = 0) -> FakeLoki:
        """Listen on 127.0.0.1 (port 0: any free port; see .port)."""
        self._runner = web.AppRunner(self.app(), shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Close the tails and the server."""
        self.close_tails()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- handlers ---------------------------------------------------------------------------

    def _refusal(self, request: web.Request, endpoint: str) -> web.Response | None:
        self.requests[endpoint] += 1
        self.headers.append(dict(request.headers))
        with self._lock:
            for i, (wanted, status) in enumerate(self._failures):
                if wanted in (None, endpoint):
                    del self._failures[i]
                    return web.Response(status=status, text=f"fake failure {status}\n")
        if not self._authorized(request.headers):
            return web.Response(status=401, text="no org id or bad credentials\n")
        return None

    def _authorized(self, headers: Any) -> bool:
        auth = self._auth
        if auth.get("tenant") and headers.get("X-Scope-OrgID") != auth["tenant"]:
            return False
        if auth.get("bearer") and headers.get("Authorization") != f"Bearer {auth['bearer']}":
            return False
        if auth.get("basic"):
            user, password = auth["basic"]
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            return headers.get("Authorization") == f"Basic {token}"
        return True

    def _select(self, query: Query, start: int, end: int) -> list[FakeEntry]:
        with self._lock:
            lo = bisect.bisect_left(self.entries, start, key=lambda e: e.ns)
            hi = bisect.bisect_left(self.entries, end, key=lambda e: e.ns)
            candidates = self.entries[lo:hi]
        return [e for e in candidates if query.matches({**e.labels, **(e.metadata or {})}, e.line)]

    def _categorize(self, request: web.Request) -> bool:
        return self.categorize and request.headers.get(CATEGORIZE[0]) == CATEGORIZE[1]

    async def _query_range(self, request: web.Request) -> web.Response:
        refused = self._refusal(request, "query_range")
        if refused is not None:
            return refused
        params = request.query
        self.queries.append(dict(params))
        now = time.time_ns()
        try:
            query = parse_query(params.get("query", ""))
            start = parse_time(params.get("start"), now - 3600 * NS)
            end = parse_time(params.get("end"), now)
            limit = int(params.get("limit", "100"))
        except (ValueError, re.error) as exc:  # Loki: 400 "parse error … error parsing regexp"
            return web.Response(status=400, text=f"parse error: {exc}\n")
        if limit > self.max_entries:
            return web.Response(
                status=400,
                text="max entries limit per query exceeded, limit > max_entries_limit_per_query"
                f" ({limit} > {self.max_entries})\n",
            )
        if end - start > self.max_query_length_ns:
            return web.Response(status=400, text="the query time range exceeds the limit\n")
        selected = self._select(query, start, end)
        if params.get("direction", "backward").lower() == "forward":
            selected = selected[:limit]
        else:
            selected = selected[::-1][:limit]
        result = encode_streams(selected, self._categorize(request))
        body = {"status": "success", "data": {"resultType": "streams", "result": result}}
        body["data"]["stats"] = {"summary": {"totalEntriesReturned": len(selected)}}
        return web.json_response(body)

    async def _tail(self, request: web.Request) -> web.StreamResponse:
        refused = self._refusal(request, "tail")
        if refused is not None:
            return refused
        try:
            query = parse_query(request.query.get("query", ""))
            start = parse_time(request.query.get("start"), time.time_ns() - 3600 * NS)
            limit = int(request.query.get("limit", "100"))
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        tail = _Tail(query, self._categorize(request), asyncio.get_running_loop())
        with self._lock:  # snapshot and subscription together: no entry missed or repeated
            self._tails.add(tail)
            initial = self._select(query, start, 2**63)[:limit]
        if initial:
            streams = encode_streams(initial, tail.categorize)
            await ws.send_json({"streams": streams, "dropped_entries": None})
        reader = asyncio.create_task(self._drain(ws, tail))
        try:
            await self._relay(request, ws, tail)
        finally:
            with self._lock:
                self._tails.discard(tail)
            reader.cancel()
        return ws

    async def _relay(self, request: web.Request, ws: web.WebSocketResponse, tail: _Tail) -> None:
        while True:
            item = await tail.queue.get()
            if item == ("gone",):
                return
            if item == ("abort",):
                if request.transport is not None:
                    request.transport.abort()
                return
            if isinstance(item, tuple):
                await ws.close(code=item[1])
                return
            try:
                await ws.send_json(item)
            except ConnectionError:
                return

    async def _drain(self, ws: web.WebSocketResponse, tail: _Tail) -> None:
        """Read (and ignore) client frames so a client close ends the handler."""
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
        tail.queue.put_nowait(("gone",))


@pytest.fixture
async def fake_loki() -> AsyncIterator[FakeLoki]:
    """A started fake Loki on the test's loop."""
    fake = await FakeLoki().start()
    try:
        yield fake
    finally:
        await fake.stop()


@contextlib.contextmanager
def serve_in_thread(fake: FakeLoki | None = None) -> Iterator[FakeLoki]:
    """Run a fake Loki on its own loop in a thread (for subprocesses to reach); stop it after."""
    fake = fake or FakeLoki()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-loki", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the fake Loki did not start")
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def main() -> None:
    """`python -m tests.fakes.loki --port N [--data FILE]`: serve until interrupted.

    FILE holds one JSON object per line: {"labels": {...}, "line": "...", "ns": 123}.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3100)
    parser.add_argument("--data", default="")
    args = parser.parse_args()

    async def serve() -> None:
        fake = await FakeLoki().start(args.port)
        if args.data:
            with open(args.data, encoding="utf-8") as fh:
                for row in map(json.loads, filter(str.strip, fh)):
                    fake.push(row["labels"], row["line"], row.get("ns"), row.get("metadata"))
        print(f"fake Loki on {fake.url}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
