#!/usr/bin/env python3
"""Seeded, deterministic generator of a realistic aggregated production log.

The log is what a small web backend ships to one place (Loki, CloudWatch, a shared file): several
services, each writing in its own format, interleaved line by line:

- api (Python/FastAPI): structlog JSON and stdlib-logging plain text
- worker (Python/Celery): stdlib-logging plain text
- web-ssr, web-auth (Node): pino and bunyan JSON, plus raw stderr stacks
- billing (Java/Spring): logback layout with `Caused by:` chains
- ingest, edge (Go): slog/logfmt, Heroku-router logfmt, Go `log`, panics with goroutine dumps
- gateway (Go, zap JSON) behind nginx (access and error log)
- notifier (Ruby/Sidekiq): Ruby Logger lines and backtraces

About `error_rate` of the *events* (logical records: a line, or a line plus its trace) are error
events drawn from a fixed set of patterns; each pattern keeps its frames fixed and varies only its
parameters, so one pattern is one group for a correct grouper. Noise includes warnings and lines
that say "error" without being errors, to catch careless classifiers.

    python bench/genlogs.py --lines 4000 --seed 7 --error-rate 0.05 -o examples/app.log
    python bench/genlogs.py --lines 4000 --seed 7 --error-rate 0.05 --summary

Stdlib only. Importable: `generate()` yields physical lines, `generate_records()` yields records
tagged with their pattern, `summarize()` counts them.
"""

# ruff: noqa: E501 -- frames, stack lines and messages are verbatim log text; wrapping them hurts more

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# All timestamps fall inside this UTC day; kept in integer milliseconds so output never depends
# on float rounding.
DAY_START_MS = int(datetime(2026, 11, 21, tzinfo=UTC).timestamp()) * 1000
DAY_END_MS = DAY_START_MS + 86_400_000 - 1
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Deliberately fake credentials, so redaction can be tested on something token-shaped.
FAKE_TOKENS = (
    "sk-test-fake4eC9x2QmL7vN0pR8tY3wZ",
    "sk-test-fakeB7d1Kq9sVx3Lm5Np2Rt8W",
    "sk-test-fake00000000notarealkey01",
)

PY_SITE = "/usr/local/lib/python3.11/site-packages"
RUBY_GEMS = "/usr/local/bundle/gems"


class Rand:
    """A seeded random source with helpers for the parameters real logs carry."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, items: tuple[T, ...] | list[T]) -> T:
        return items[self.rng.randrange(len(items))]

    def num(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def alnum(self, n: int) -> str:
        chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(self.pick(chars) for _ in range(n))

    def private_ip(self) -> str:
        return f"10.0.{self.num(0, 7)}.{self.num(2, 250)}"

    def client_ip(self) -> str:
        # Documentation ranges only (RFC 5737): never a real client address.
        prefix = self.pick(("192.0.2", "198.51.100", "203.0.113"))
        return f"{prefix}.{self.num(1, 254)}"

    def user_id(self) -> int:
        return self.num(1000, 99999)

    def order_id(self) -> int:
        return self.num(100000, 999999)

    def ms(self, low: int, high: int) -> int:
        return self.num(low, high)

    def pod(self, service: str) -> str:
        suffix = self.pick(("x2kqp", "m9zt4", "b7wlc"))
        return f"{service}-7d9f8b6c5-{suffix}"


# --- timestamp renderings, one per format family -------------------------------------------------


def _dt(t: int) -> datetime:
    return datetime.fromtimestamp(t // 1000, UTC)


def iso_z(t: int) -> str:
    return f"{_dt(t):%Y-%m-%dT%H:%M:%S}.{t % 1000:03d}Z"


def py_time(t: int) -> str:
    return f"{_dt(t):%Y-%m-%d %H:%M:%S},{t % 1000:03d}"


def java_time(t: int) -> str:
    return f"{_dt(t):%Y-%m-%d %H:%M:%S}.{t % 1000:03d}"


def slash_time(t: int) -> str:
    return f"{_dt(t):%Y/%m/%d %H:%M:%S}"


def nginx_time(t: int) -> str:
    d = _dt(t)
    return f"{d.day:02d}/{MONTHS[d.month - 1]}/{d.year}:{d:%H:%M:%S} +0000"


def ruby_time(t: int, r: Rand) -> str:
    return f"{_dt(t):%Y-%m-%dT%H:%M:%S}.{t % 1000:03d}{r.num(0, 999):03d}"


# --- line renderings, one per format --------------------------------------------------------------


def structlog_line(t: int, level: str, logger: str, event: str, **fields: object) -> str:
    # structlog's JSONRenderer uses json.dumps defaults: ", " and ": " separators.
    return json.dumps(
        {"timestamp": iso_z(t), "level": level, "logger": logger, "event": event, **fields}
    )


def pino_line(t: int, level: int, host: str, msg: str, **fields: object) -> str:
    record: dict[str, object] = {"level": level, "time": t, "pid": 1, "hostname": host}
    record.update(fields)
    record["msg"] = msg
    return json.dumps(record, separators=(",", ":"))


def bunyan_line(t: int, level: int, name: str, host: str, msg: str, **fields: object) -> str:
    record: dict[str, object] = {"name": name, "hostname": host, "pid": 1, "level": level}
    record.update(fields)
    record.update({"msg": msg, "time": iso_z(t), "v": 0})
    return json.dumps(record, separators=(",", ":"))


def zap_line(t: int, level: str, caller: str, msg: str, **fields: object) -> str:
    record: dict[str, object] = {"level": level, "ts": t / 1000, "caller": caller, "msg": msg}
    record.update(fields)
    return json.dumps(record, separators=(",", ":"))


def logfmt_value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def logfmt_line(pairs: list[tuple[str, object]]) -> str:
    return " ".join(f"{key}={logfmt_value(value)}" for key, value in pairs)


def slog_line(t: int, level: str, msg: str, **fields: object) -> str:
    return logfmt_line([("time", iso_z(t)), ("level", level), ("msg", msg), *fields.items()])


def pylog_line(t: int, level: str, logger: str, msg: str) -> str:
    return f"{py_time(t)} {level} [{logger}] {msg}"


def logback_line(t: int, thread: str, level: str, logger: str, msg: str) -> str:
    return f"{java_time(t)} [{thread}] {level:<5} {logger} - {msg}"


def nginx_access_line(t: int, r: Rand, method: str, path: str, status: int) -> str:
    agent = r.pick(
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36",
            "okhttp/4.12.0",
            "python-httpx/0.27.2",
        )
    )
    size = r.num(120, 24000)
    rt = r.num(2, 900) / 1000
    return (
        f'{r.client_ip()} - - [{nginx_time(t)}] "{method} {path} HTTP/1.1" {status} {size} "-" '
        f'"{agent}" rt={rt:.3f}'
    )


def nginx_error_line(t: int, level: str, conn: int, msg: str) -> str:
    return f"{slash_time(t)} [{level}] 29#29: *{conn} {msg}"


def golog_line(t: int, msg: str) -> str:
    return f"{slash_time(t)} {msg}"


def ruby_line(t: int, r: Rand, level: str, prog: str, msg: str) -> str:
    return f"{level[0]}, [{ruby_time(t, r)} #{r.pick((7, 9, 11))}] {level:>5} -- {prog}: {msg}"


# --- traces ---------------------------------------------------------------------------------------


def py_frames(frames: list[tuple[str, int, str, str]]) -> list[str]:
    lines = []
    for path, line, func, code in frames:
        lines.append(f'  File "{path}", line {line}, in {func}')
        lines.append(f"    {code}")
    return lines


def py_traceback(frames: list[tuple[str, int, str, str]], exc: str) -> list[str]:
    return ["Traceback (most recent call last):", *py_frames(frames), *exc.split("\n")]


def java_frames(frames: list[str]) -> list[str]:
    return [f"\tat {frame}" for frame in frames]


def node_stack(exc: str, frames: list[str]) -> str:
    return "\n".join([exc, *(f"    at {frame}" for frame in frames)])


# --- records and patterns -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One logical event: its physical lines, and the pattern it came from (None for noise)."""

    lines: tuple[str, ...]
    timestamp_ms: int
    pattern: str | None = None
    language: str = ""
    trace: str = ""  # "multiline" | "json" | "" (no trace)


@dataclass(frozen=True, slots=True)
class Pattern:
    """One error pattern: what a correct grouper should make exactly one group of."""

    name: str
    category: str
    language: str  # python | java | node | go | ruby | nginx
    fmt: str  # the line format of the first line
    trace: str  # "multiline" | "json" | ""
    weight: int
    render: Callable[[Rand, int], list[str]] = field(repr=False)


def openai_5xx(r: Rand, t: int) -> list[str]:
    code, text = r.pick(
        (
            (500, "The server had an error while processing your request. Sorry about that!"),
            (502, "Bad gateway."),
            (503, "The server is overloaded or not ready yet."),
        )
    )
    exc = py_traceback(
        [
            (
                "/app/src/api/llm/summarize.py",
                48,
                "summarize_ticket",
                "resp = await client.chat.completions.create(",
            ),
            (
                f"{PY_SITE}/openai/resources/chat/completions.py",
                1633,
                "create",
                "return await self._post(",
            ),
            (
                f"{PY_SITE}/openai/_base_client.py",
                1838,
                "post",
                "return await self.request(cast_to, opts, stream=stream, stream_cls=stream_cls)",
            ),
            (
                f"{PY_SITE}/openai/_base_client.py",
                1625,
                "_request",
                "raise self._make_status_error_from_response(err.response) from None",
            ),
        ],
        f"openai.InternalServerError: Error code: {code} - {{'error': {{'message': '{text}', 'type': 'server_error'}}}}",
    )
    return [
        structlog_line(
            t, "error", "api.llm", "ticket summary failed",
            ticket_id=r.num(10000, 99999), model="gpt-4o-mini", attempt=r.num(1, 3),
            request_id=r.uuid(), exception="\n".join(exc),
        )
    ]  # fmt: skip


def anthropic_overloaded(r: Rand, t: int) -> list[str]:
    head = pylog_line(
        t, "ERROR", "api.assistant", f"Claude request failed for conversation {r.uuid()}"
    )
    return [
        head,
        *py_traceback(
            [
                ("/app/src/api/assistant/reply.py", 77, "generate_reply", "message = await self.client.messages.create(**params)"),
                (f"{PY_SITE}/anthropic/resources/messages/messages.py", 2105, "create", "return await self._post("),
                (f"{PY_SITE}/anthropic/_base_client.py", 1880, "post", "return await self.request(cast_to, opts, stream=stream, stream_cls=stream_cls)"),
                (f"{PY_SITE}/anthropic/_base_client.py", 1669, "request", "raise self._make_status_error_from_response(err.response) from None"),
            ],
            "anthropic.InternalServerError: Error code: 529 - {'type': 'error', 'error': "
            f"{{'type': 'overloaded_error', 'message': 'Overloaded'}}, 'request_id': 'req_011C{r.alnum(20)}'}}",
        ),
    ]  # fmt: skip


def pg_connection_refused(r: Rand, t: int) -> list[str]:
    ip = f"10.0.2.{r.num(10, 20)}"
    msg = f'connection to server at "{ip}", port 5432 failed: Connection refused'
    hint = "\tIs the server running on that host and accepting TCP/IP connections?"
    task = f"Task reports.build_daily[{r.uuid()}] raised unexpected: OperationalError"
    return [
        pylog_line(t, "ERROR", "celery.app.trace", task),
        *py_traceback(
            [
                (f"{PY_SITE}/sqlalchemy/engine/base.py", 145, "__init__", "self._dbapi_connection = engine.raw_connection()"),
                (f"{PY_SITE}/sqlalchemy/pool/base.py", 896, "__connect", "self.dbapi_connection = connection = pool._invoke_creator(self)"),
                (f"{PY_SITE}/psycopg2/__init__.py", 122, "connect", "conn = _connect(dsn, connection_factory=connection_factory, **kwasync)"),
            ],
            f"psycopg2.OperationalError: {msg}\n{hint}",
        ),
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        *py_traceback(
            [
                (f"{PY_SITE}/celery/app/trace.py", 453, "trace_task", "R = retval = fun(*args, **kwargs)"),
                ("/app/src/worker/tasks/reports.py", 31, "build_daily", "rows = session.execute(stmt).all()"),
                (f"{PY_SITE}/sqlalchemy/orm/session.py", 2351, "execute", "return self._execute_internal("),
                (f"{PY_SITE}/sqlalchemy/engine/base.py", 147, "__init__", "Connection._handle_dbapi_exception_noconnection("),
            ],
            f"sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) {msg}\n{hint}\n\n"
            "(Background on this error at: https://sqlalche.me/e/20/e3q8)",
        ),
    ]  # fmt: skip


def pg_too_many_clients(r: Rand, t: int) -> list[str]:
    err = (
        "failed to connect to `host=db-primary.internal user=ingest database=events`: "
        "server error (FATAL: sorry, too many clients already (SQLSTATE 53300))"
    )
    return [
        slog_line(
            t, "ERROR", "acquire db connection", service="ingest",
            batch_id=r.hex(16), pool_size=20, waited=f"{r.ms(200, 5000)}ms", err=err,
        )
    ]  # fmt: skip


def pg_deadlock(r: Rand, t: int) -> list[str]:
    sql = "update invoices set status=? where id=?"
    p1, p2 = r.num(40000, 60000), r.num(40000, 60000)
    tx = r.num(9_000_000, 9_999_999)
    detail = (
        f"  Detail: Process {p1} waits for ShareLock on transaction {tx}; blocked by process {p2}.\n"
        f"Process {p2} waits for ShareLock on transaction {tx - 2}; blocked by process {p1}.\n"
        "  Hint: See server log for query details."
    )
    return [
        logback_line(t, f"http-nio-8080-exec-{r.num(1, 10)}", "ERROR", "c.a.billing.invoice.InvoiceService",
                     f"Failed to settle invoice INV-2026-{r.num(1, 9999):06d}"),
        f"org.springframework.dao.CannotAcquireLockException: could not execute statement; SQL [{sql}]",
        *java_frames([
            "org.springframework.orm.jpa.vendor.HibernateJpaDialect.convertHibernateAccessException(HibernateJpaDialect.java:259)",
            "org.springframework.orm.jpa.JpaTransactionManager.doCommit(JpaTransactionManager.java:566)",
            "com.acme.billing.invoice.InvoiceService.settle(InvoiceService.java:142)",
            "com.acme.billing.invoice.InvoiceController.settle(InvoiceController.java:58)",
            "java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)",
            "java.base/java.lang.reflect.Method.invoke(Method.java:580)",
            "org.springframework.web.method.support.InvocableHandlerMethod.doInvoke(InvocableHandlerMethod.java:255)",
        ]),
        f"Caused by: org.hibernate.exception.LockAcquisitionException: could not execute statement [{sql}]",
        *java_frames([
            "org.hibernate.exception.internal.SQLStateConversionDelegate.convert(SQLStateConversionDelegate.java:120)",
            "org.hibernate.engine.jdbc.spi.SqlExceptionHelper.convert(SqlExceptionHelper.java:108)",
        ]),
        "\t... 12 more",
        "Caused by: org.postgresql.util.PSQLException: ERROR: deadlock detected",
        *detail.split("\n"),
        *java_frames([
            "org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2725)",
            "org.postgresql.jdbc.PgPreparedStatement.executeUpdate(PgPreparedStatement.java:152)",
            "com.zaxxer.hikari.pool.HikariProxyPreparedStatement.executeUpdate(HikariProxyPreparedStatement.java)",
        ]),
        "\t... 23 more",
    ]  # fmt: skip


def openai_429(r: Rand, t: int) -> list[str]:
    used = r.num(195000, 200000)
    message = (
        "429 Rate limit reached for gpt-4o-mini in organization org-acmefake on tokens per min "
        f"(TPM): Limit 200000, Used {used}, Requested {r.num(500, 4000)}. "
        f"Please try again in {r.ms(100, 900)}ms."
    )
    stack = node_stack(
        f"RateLimitError: {message}",
        [
            "APIError.generate (/app/node_modules/openai/error.js:63:20)",
            "OpenAI.makeStatusError (/app/node_modules/openai/core.js:302:33)",
            "OpenAI.makeRequest (/app/node_modules/openai/core.js:346:30)",
            "process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
            "async summarizeThread (/app/src/services/summary.js:41:18)",
            "async /app/src/routes/threads.js:88:22",
        ],
    )
    err = {"type": "RateLimitError", "message": message, "stack": stack, "status": 429}
    return [
        pino_line(
            t, 50, r.pod("web-ssr"), "thread summary failed", reqId=f"req-{r.hex(6)}", err=err
        )
    ]


def api_rate_limit(r: Rand, t: int) -> list[str]:
    route = r.pick(("/v1/search", "/v1/orders", "/v1/products"))
    return [
        slog_line(
            t, "ERROR", "Rate limit exceeded", service="edge", api_key_id=f"key_{r.num(100, 999)}",
            route=route, limit=600, window="1m", status=429, client_ip=r.client_ip(),
        )
    ]  # fmt: skip


def requests_read_timeout(r: Rand, t: int) -> list[str]:
    return [
        pylog_line(t, "ERROR", "worker.shipping", f"rate quote failed for order {r.order_id()}"),
        *py_traceback(
            [
                ("/app/src/worker/shipping/quotes.py", 57, "fetch_quote", "resp = self.session.post(QUOTE_URL, json=body, timeout=10)"),
                (f"{PY_SITE}/requests/sessions.py", 637, "post", 'return self.request("POST", url, data=data, json=json, **kwargs)'),
                (f"{PY_SITE}/requests/sessions.py", 703, "send", "r = adapter.send(request, **kwargs)"),
                (f"{PY_SITE}/requests/adapters.py", 713, "send", "raise ReadTimeout(e, request=request)"),
            ],
            "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='rates.shipping-partner.example', "
            "port=443): Read timed out. (read timeout=10)",
        ),
    ]  # fmt: skip


def asyncio_timeout(r: Rand, t: int) -> list[str]:
    first = py_traceback(
        [("/usr/local/lib/python3.11/asyncio/tasks.py", 500, "wait_for", "return fut.result()")],
        "asyncio.exceptions.CancelledError",
    )
    second = py_traceback(
        [
            (
                "/app/src/api/search/handlers.py",
                88,
                "search_products",
                "hits = await asyncio.wait_for(self.index.query(q), timeout=2.0)",
            ),
            (
                "/usr/local/lib/python3.11/asyncio/tasks.py",
                502,
                "wait_for",
                "raise exceptions.TimeoutError() from exc",
            ),
        ],
        "TimeoutError",
    )
    chained = [
        *first,
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        *second,
    ]
    return [
        structlog_line(
            t, "error", "api.search", "search backend timed out", query_len=r.num(1, 40),
            elapsed_ms=r.ms(2000, 2100), request_id=r.uuid(), exception="\n".join(chained),
        )
    ]  # fmt: skip


def go_deadline(r: Rand, t: int) -> list[str]:
    base = r.pick(("USD", "EUR", "GBP", "JPY"))
    url = f"https://fx.partner-api.example/v1/rates?base={base}"
    return [
        golog_line(
            t,
            f'ERROR fetch exchange rates: Get "{url}": context deadline exceeded '
            "(Client.Timeout exceeded while awaiting headers)",
        )
    ]


def nginx_upstream_timeout(r: Rand, t: int) -> list[str]:
    path = f"/v1/reports/export?month={r.num(1, 12)}"
    msg = (
        "upstream timed out (110: Connection timed out) while reading response header from "
        f'upstream, client: {r.client_ip()}, server: api.acme.example, request: "GET {path} '
        f'HTTP/1.1", upstream: "http://10.0.1.12:8000{path}", host: "api.acme.example"'
    )
    return [nginx_error_line(t, "error", r.num(100000, 999999), msg)]


def heroku_h12(r: Rand, t: int) -> list[str]:
    pairs: list[tuple[str, object]] = [
        ("at", "error"), ("code", "H12"), ("desc", "Request timeout"), ("method", "GET"),
        ("path", f"/v1/invoices/{r.order_id()}/pdf"), ("host", "billing.acme.example"),
        ("request_id", r.uuid()), ("fwd", r.client_ip()), ("dyno", f"web.{r.num(1, 3)}"),
        ("connect", f"{r.num(0, 2)}ms"), ("service", "30000ms"), ("status", 503), ("bytes", 0),
        ("protocol", "https"),
    ]  # fmt: skip
    return [f"{iso_z(t)} heroku[router]: {logfmt_line(pairs)}"]


def jwt_expired(r: Rand, t: int) -> list[str]:
    stack = node_stack(
        "TokenExpiredError: jwt expired",
        [
            "/app/node_modules/jsonwebtoken/verify.js:190:21",
            "getSecret (/app/node_modules/jsonwebtoken/verify.js:97:14)",
            "module.exports [as verify] (/app/node_modules/jsonwebtoken/verify.js:101:10)",
            "verifyToken (/app/src/middleware/auth.js:18:25)",
            "/app/src/middleware/auth.js:34:7",
        ],
    )
    expired = iso_z(t - r.num(60_000, 86_400_000))
    err = {
        "message": "jwt expired",
        "name": "TokenExpiredError",
        "stack": stack,
        "expiredAt": expired,
    }
    return [
        bunyan_line(
            t, 50, "web-auth", r.pod("web-auth"), "authentication failed",
            req_id=r.uuid(), userId=r.user_id(), err=err,
        )
    ]  # fmt: skip


def invalid_token_401(r: Rand, t: int) -> list[str]:
    msg = (
        'CRM sync rejected: 401 Unauthorized {"error":"invalid_token","error_description":'
        f'"The access token is invalid"}} account={r.num(100, 999)} '
        f"request_headers=Authorization: Bearer {r.pick(FAKE_TOKENS)}; X-Request-Id: {r.uuid()}"
    )
    return [pylog_line(t, "ERROR", "api.integrations.crm", msg)]


def pydantic_validation(r: Rand, t: int) -> list[str]:
    qty = -r.num(1, 9)
    city = r.pick(("Springfield", "Riverside", "Fairview"))
    return [
        pylog_line(t, "ERROR", "api.orders", f"invalid order payload from user {r.user_id()}"),
        *py_traceback(
            [
                ("/app/src/api/orders/routes.py", 64, "create_order", "order = OrderCreate.model_validate(payload)"),
                (f"{PY_SITE}/pydantic/main.py", 596, "model_validate", "return cls.__pydantic_validator__.validate_python("),
            ],
            "pydantic_core._pydantic_core.ValidationError: 2 validation errors for OrderCreate\n"
            "items.0.quantity\n"
            f"  Input should be greater than 0 [type=greater_than, input_value={qty}, input_type=int]\n"
            "    For further information visit https://errors.pydantic.dev/2.9/v/greater_than\n"
            "shipping_address.zip\n"
            f"  Field required [type=missing, input_value={{'line1': '{r.num(1, 999)} Main St', "
            f"'city': '{city}'}}, input_type=dict]\n"
            "    For further information visit https://errors.pydantic.dev/2.9/v/missing",
        ),
    ]  # fmt: skip


def http_422(r: Rand, t: int) -> list[str]:
    status, detail = r.pick(
        (
            (422, "body.email: value is not a valid email address"),
            (422, "body.items: List should have at least 1 item after validation"),
            (400, "malformed JSON body"),
        )
    )
    return [
        structlog_line(
            t, "error", "api.http", "request validation failed", method="POST",
            path="/v1/checkout", status=status, detail=detail, request_id=r.uuid(),
        )
    ]  # fmt: skip


def redis_connection(r: Rand, t: int) -> list[str]:
    conn = f"{PY_SITE}/redis/connection.py"
    return [
        pylog_line(t, "ERROR", "worker.cache", f"cache read failed for key session:{r.uuid()}"),
        *py_traceback(
            [
                (conn, 357, "connect", "sock = self.retry.call_with_retry("),
                (f"{PY_SITE}/redis/retry.py", 62, "call_with_retry", "return do()"),
                (conn, 358, "<lambda>", "lambda: self._connect(), lambda error: self.disconnect(error)"),
                (conn, 718, "_connect", "sock.connect(socket_address)"),
            ],
            "ConnectionRefusedError: [Errno 111] Connection refused",
        ),
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        *py_traceback(
            [
                ("/app/src/worker/cache.py", 42, "get_session", 'raw = self.redis.get(f"session:{session_id}")'),
                (f"{PY_SITE}/redis/commands/core.py", 1829, "get", 'return self.execute_command("GET", name, keys=[name])'),
                (f"{PY_SITE}/redis/client.py", 559, "execute_command", "conn = self.connection or pool.get_connection(command_name, **options)"),
                (conn, 363, "connect", "raise ConnectionError(self._error_message(e))"),
            ],
            "redis.exceptions.ConnectionError: Error 111 connecting to redis-cache.internal:6379. "
            "Connection refused.",
        ),
    ]  # fmt: skip


def stripe_api_error(r: Rand, t: int) -> list[str]:
    head = f"charge failed for order {r.order_id()} (amount={r.num(500, 99999)} currency=usd)"
    req = f"req_{r.alnum(14)}"
    requestor = f"{PY_SITE}/stripe/_api_requestor.py"
    return [
        pylog_line(t, "ERROR", "api.payments", head),
        *py_traceback(
            [
                ("/app/src/api/payments/charge.py", 73, "create_charge", "intent = stripe.PaymentIntent.create("),
                (f"{PY_SITE}/stripe/_payment_intent.py", 6231, "create", "cls._static_request("),
                (requestor, 197, "request", "resp = requestor._interpret_response(rbody, rcode, rheaders, api_mode)"),
                (requestor, 342, "handle_error_response", "raise err"),
            ],
            f"stripe._error.APIError: Request {req}: An unknown error occurred while processing "
            "your request.",
        ),
    ]  # fmt: skip


def s3_unavailable(r: Rand, t: int) -> list[str]:
    name = f"{r.uuid()}.csv.gz"
    return [
        pylog_line(t, "ERROR", "worker.exports", f"upload of export {name} failed"),
        *py_traceback(
            [
                ("/app/src/worker/exports/upload.py", 29, "upload_export", "s3.upload_file(path, bucket, key)"),
                (f"{PY_SITE}/boto3/s3/inject.py", 145, "upload_file", "return transfer.upload_file("),
                (f"{PY_SITE}/boto3/s3/transfer.py", 377, "upload_file", "raise S3UploadFailedError("),
            ],
            f"boto3.exceptions.S3UploadFailedError: Failed to upload /tmp/exports/{name} to "
            f"acme-exports-prod/2026/11/21/{name}: An error occurred (ServiceUnavailable) when "
            "calling the PutObject operation (reached max retries: 4): Service Unavailable",
        ),
    ]  # fmt: skip


def gateway_503(r: Rand, t: int) -> list[str]:
    status = r.pick((502, 503))
    stack = (
        "main.(*proxy).forward\n\t/app/cmd/gateway/proxy.go:142\n"
        "net/http.HandlerFunc.ServeHTTP\n\t/usr/local/go/src/net/http/server.go:2220\n"
        "net/http.serverHandler.ServeHTTP\n\t/usr/local/go/src/net/http/server.go:3210"
    )
    return [
        zap_line(
            t, "error", "gateway/proxy.go:142", "upstream returned error", upstream="payments",
            url="http://payments.internal:8080/v1/charges", status=status,
            latency=f"{r.ms(5, 3000) / 1000:.3f}s", request_id=r.uuid(), stacktrace=stack,
        )
    ]  # fmt: skip


def python_keyerror(r: Rand, t: int) -> list[str]:
    country = r.pick(("BR", "IN", "ZA", "MX", "NG"))
    return [
        pylog_line(t, "ERROR", "api.checkout", "unhandled error in POST /v1/checkout"),
        "Traceback (most recent call last):",
        f'  File "{PY_SITE}/starlette/middleware/errors.py", line 164, in __call__',
        "    await self.app(scope, receive, _send)",
        f'  File "{PY_SITE}/fastapi/routing.py", line 301, in app',
        "    raw_response = await run_endpoint_function(",
        '  File "/app/src/api/checkout/routes.py", line 52, in checkout',
        "    quote = build_quote(cart, user)",
        "            ^^^^^^^^^^^^^^^^^^^^^^^",
        '  File "/app/src/api/checkout/pricing.py", line 118, in build_quote',
        "    region = REGION_BY_COUNTRY[user.country]",
        "             ~~~~~~~~~~~~~~~~~^^^^^^^^^^^^^^",
        f"KeyError: '{country}'",
    ]


def java_npe(r: Rand, t: int) -> list[str]:
    return [
        logback_line(t, "scheduling-1", "ERROR", "c.a.billing.notify.ReceiptMailer",
                     f"Unexpected error sending receipt for invoice INV-2026-{r.num(1, 9999):06d}"),
        'java.lang.NullPointerException: Cannot invoke "com.acme.billing.model.Customer.getEmail()" '
        'because the return value of "com.acme.billing.model.Invoice.getCustomer()" is null',
        *java_frames([
            "com.acme.billing.notify.ReceiptMailer.buildMessage(ReceiptMailer.java:87)",
            "com.acme.billing.notify.ReceiptMailer.send(ReceiptMailer.java:52)",
            "com.acme.billing.notify.ReceiptJob.run(ReceiptJob.java:31)",
            "org.springframework.scheduling.support.ScheduledMethodRunnable.run(ScheduledMethodRunnable.java:84)",
            "java.base/java.util.concurrent.Executors$RunnableAdapter.call(Executors.java:572)",
            "java.base/java.util.concurrent.FutureTask.runAndReset(FutureTask.java:358)",
            "java.base/java.lang.Thread.run(Thread.java:1583)",
        ]),
    ]  # fmt: skip


def node_typeerror(r: Rand, t: int) -> list[str]:
    head = f"{iso_z(t)} error [web-ssr] GET /orders/{r.order_id()} failed (req-{r.hex(6)})"
    return [
        head,
        "TypeError: Cannot read properties of undefined (reading 'id')",
        "    at getOrderOwner (/app/src/routes/orders.js:57:31)",
        "    at /app/src/routes/orders.js:23:22",
        "    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)",
        "    at next (/app/node_modules/express/lib/router/route.js:149:13)",
        "    at Route.dispatch (/app/node_modules/express/lib/router/route.js:119:3)",
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
    ]


def go_nil_panic(r: Rand, t: int) -> list[str]:
    def ptr() -> str:
        return f"0xc000{r.hex(6)}"

    return [
        "panic: runtime error: invalid memory address or nil pointer dereference",
        f"[signal SIGSEGV: segmentation violation code=0x1 addr=0x28 pc=0x7c{r.hex(4)}]",
        "",
        f"goroutine {r.num(100, 9999)} [running]:",
        # The deferred span.End() runs during the panic, so Go prints it and runtime.panic on top.
        "github.com/acme/ingest/internal/pipeline.(*Stage).process.func1()",
        "\t/app/internal/pipeline/stage.go:104 +0x85",
        "panic({0x8c2f40?, 0xd4b9a0?})",
        "\t/usr/local/go/src/runtime/panic.go:785 +0x132",
        f"github.com/acme/ingest/internal/enrich.(*GeoEnricher).Enrich(0x0, {ptr()})",
        "\t/app/internal/enrich/geo.go:73 +0x3a",
        f"github.com/acme/ingest/internal/pipeline.(*Stage).process({ptr()}, {{0x9a3f60, {ptr()}}}, {ptr()})",
        "\t/app/internal/pipeline/stage.go:118 +0x1c4",
        "github.com/acme/ingest/internal/pipeline.(*Stage).Run.func1()",
        "\t/app/internal/pipeline/stage.go:64 +0x9e",
        "golang.org/x/sync/errgroup.(*Group).Go.func1()",
        "\t/go/pkg/mod/golang.org/x/sync@v0.8.0/errgroup/errgroup.go:78 +0x56",
        "created by golang.org/x/sync/errgroup.(*Group).Go in goroutine 1",
        "\t/go/pkg/mod/golang.org/x/sync@v0.8.0/errgroup/errgroup.go:75 +0x96",
    ]


def twilio_error(r: Rand, t: int) -> list[str]:
    gem = f"{RUBY_GEMS}/twilio-ruby-7.3.0/lib/twilio-ruby"
    return [
        ruby_line(t, r, "ERROR", "notifier",
                  f"SmsDeliveryJob failed for user {r.user_id()}: Twilio::REST::RestError"),
        "[HTTP 503] 20500 : Unable to create record",
        "Service is unavailable. Please try again",
        "https://www.twilio.com/docs/errors/20500",
        f"{gem}/framework/rest/version.rb:220:in `create'",
        f"{gem}/rest/api/v2010/account/message.rb:104:in `create'",
        "/app/app/services/sms_sender.rb:27:in `deliver'",
        "/app/app/jobs/sms_delivery_job.rb:14:in `perform'",
        f"{RUBY_GEMS}/sidekiq-7.2.4/lib/sidekiq/processor.rb:202:in `execute_job'",
    ]  # fmt: skip


def ruby_nomethod(r: Rand, t: int) -> list[str]:
    sidekiq = f"{RUBY_GEMS}/sidekiq-7.2.4/lib/sidekiq/processor.rb"
    return [
        ruby_line(t, r, "ERROR", "notifier", f"DigestMailerJob crashed jid={r.hex(24)}"),
        "/app/app/mailers/digest_mailer.rb:41:in `build': undefined method `email' for nil (NoMethodError)",
        "\tfrom /app/app/jobs/digest_mailer_job.rb:12:in `perform'",
        f"\tfrom {sidekiq}:202:in `execute_job'",
        f"\tfrom {sidekiq}:170:in `block (2 levels) in process'",
    ]


PATTERNS: tuple[Pattern, ...] = (
    Pattern("openai_5xx", "provider_error", "python", "structlog", "json", 5, openai_5xx),
    Pattern("anthropic_overloaded", "provider_error", "python", "python", "multiline", 4, anthropic_overloaded),
    Pattern("pg_connection_refused", "database_error", "python", "python", "multiline", 3, pg_connection_refused),
    Pattern("pg_too_many_clients", "database_error", "go", "logfmt", "", 3, pg_too_many_clients),
    Pattern("pg_deadlock", "database_error", "java", "logback", "multiline", 2, pg_deadlock),
    Pattern("openai_429", "rate_limit_error", "node", "pino", "json", 6, openai_429),
    Pattern("api_rate_limit_exceeded", "rate_limit_error", "go", "logfmt", "", 8, api_rate_limit),
    Pattern("requests_read_timeout", "timeout_error", "python", "python", "multiline", 4, requests_read_timeout),
    Pattern("asyncio_timeout", "timeout_error", "python", "structlog", "json", 4, asyncio_timeout),
    Pattern("go_context_deadline", "timeout_error", "go", "golog", "", 4, go_deadline),
    Pattern("nginx_upstream_timeout", "timeout_error", "nginx", "nginx_error", "", 3, nginx_upstream_timeout),
    Pattern("heroku_h12_timeout", "timeout_error", "router", "heroku", "", 2, heroku_h12),
    Pattern("jwt_expired", "auth_error", "node", "bunyan", "json", 7, jwt_expired),
    Pattern("invalid_token_401", "auth_error", "python", "python", "", 3, invalid_token_401),
    Pattern("pydantic_validation", "validation_error", "python", "python", "multiline", 5, pydantic_validation),
    Pattern("http_400_422", "validation_error", "python", "structlog", "", 9, http_422),
    Pattern("redis_connection", "cache_error", "python", "python", "multiline", 3, redis_connection),
    Pattern("stripe_api_error", "external_service_error", "python", "python", "multiline", 3, stripe_api_error),
    Pattern("twilio_503", "external_service_error", "ruby", "ruby", "multiline", 2, twilio_error),
    Pattern("s3_unavailable", "external_service_error", "python", "python", "multiline", 2, s3_unavailable),
    Pattern("gateway_upstream_5xx", "external_service_error", "go", "zap", "json", 5, gateway_503),
    Pattern("python_keyerror", "internal_error", "python", "python", "multiline", 3, python_keyerror),
    Pattern("java_npe", "internal_error", "java", "logback", "multiline", 3, java_npe),
    Pattern("node_typeerror_undefined", "internal_error", "node", "plain", "multiline", 4, node_typeerror),
    Pattern("go_nil_panic", "internal_error", "go", "go_panic", "multiline", 2, go_nil_panic),
    Pattern("ruby_nomethod_nil", "internal_error", "ruby", "ruby", "multiline", 2, ruby_nomethod),
)  # fmt: skip
PATTERNS_BY_NAME = {p.name: p for p in PATTERNS}


# --- noise: everything that is not an error event ------------------------------------------------

ROUTES = (
    ("GET", "/v1/orders"), ("GET", "/v1/products"), ("POST", "/v1/checkout"), ("GET", "/v1/search"),
    ("GET", "/healthz"), ("GET", "/api/errors/summary"), ("GET", "/v1/invoices"), ("POST", "/v1/login"),
)  # fmt: skip


def n_nginx_access(r: Rand, t: int) -> list[str]:
    method, path = r.pick(ROUTES)
    status = r.pick((200, 200, 200, 200, 201, 204, 301, 304, 404))
    return [nginx_access_line(t, r, method, path, status)]


def n_structlog_request(r: Rand, t: int) -> list[str]:
    method, path = r.pick(ROUTES)
    return [
        structlog_line(
            t, "info", "api.http", "request completed", method=method, path=path, status=200,
            duration_ms=r.ms(3, 400), request_id=r.uuid(),
        )
    ]  # fmt: skip


def n_structlog_health(r: Rand, t: int) -> list[str]:
    return [
        structlog_line(t, "info", "api.health", "healthcheck ok", errors=0, db="up", cache="up")
    ]


def n_structlog_warning(r: Rand, t: int) -> list[str]:
    ratio = r.num(35, 60) / 100
    return [structlog_line(t, "warning", "api.cache", "cache miss ratio high", ratio=ratio)]


def n_py_order(r: Rand, t: int) -> list[str]:
    msg = f"order {r.order_id()} created for user {r.user_id()} total={r.num(5, 900)}.{r.num(0, 99):02d}"
    return [pylog_line(t, "INFO", "api.orders", msg)]


def n_py_validated(r: Rand, t: int) -> list[str]:
    return [
        pylog_line(t, "INFO", "api.orders", f"order {r.order_id()} validated, no validation errors")
    ]


def n_py_debug_handler(r: Rand, t: int) -> list[str]:
    return [pylog_line(t, "DEBUG", "api.app", "registered error_handler for HTTPException")]


def n_py_slow_query(r: Rand, t: int) -> list[str]:
    msg = f"slow query took {r.ms(1000, 4000)}ms: SELECT * FROM orders WHERE user_id = $1"
    return [pylog_line(t, "WARNING", "api.db", msg)]


def n_celery(r: Rand, t: int) -> list[str]:
    task = r.pick(("reports.build_daily", "emails.send_receipt", "shipping.refresh_quotes"))
    if r.chance(0.5):
        return [
            pylog_line(t, "INFO", "celery.worker.strategy", f"Task {task}[{r.uuid()}] received")
        ]
    msg = f"Task {task}[{r.uuid()}] succeeded in {r.ms(10, 9000) / 1000:.3f}s: None"
    return [pylog_line(t, "INFO", "celery.app.trace", msg)]


def n_pino_request(r: Rand, t: int) -> list[str]:
    method, path = r.pick(ROUTES)
    res = {"statusCode": r.pick((200, 200, 304))}
    req = {"method": method, "url": path}
    return [
        pino_line(
            t, 30, r.pod("web-ssr"), "request completed", reqId=f"req-{r.hex(6)}", req=req, res=res,
            responseTime=r.ms(2, 300),
        )
    ]  # fmt: skip


def n_pino_warn(r: Rand, t: int) -> list[str]:
    msg = "deprecated API version v1 used; migrate to v2"
    return [pino_line(t, 40, r.pod("web-ssr"), msg, client=r.pick(("ios", "android", "web")))]


def n_bunyan(r: Rand, t: int) -> list[str]:
    host = r.pod("web-auth")
    return [bunyan_line(t, 30, "web-auth", host, "token verified", userId=r.user_id())]


def n_logback(r: Rand, t: int) -> list[str]:
    thread = f"http-nio-8080-exec-{r.num(1, 10)}"
    inv = f"INV-2026-{r.num(1, 9999):06d}"
    return [
        logback_line(t, thread, "INFO", "c.a.billing.invoice.InvoiceService", f"Invoice {inv} settled in {r.ms(5, 300)} ms")
    ]  # fmt: skip


def n_logback_misc(r: Rand, t: int) -> list[str]:
    active = r.num(0, 10)
    choices = (
        ("DEBUG", "com.zaxxer.hikari.pool.HikariPool",
         f"HikariPool-1 - Pool stats (total=10, active={active}, idle={10 - active}, waiting=0)"),
        ("INFO", "c.a.billing.report.ErrorReportJob", "Error report job finished: 0 failures, 0 errors"),
        ("WARN", "com.zaxxer.hikari.pool.HikariPool",
         f"HikariPool-1 - Thread starvation or clock leap detected (housekeeper delta=1m{r.num(1, 59)}s)."),
    )  # fmt: skip
    level, logger, msg = r.pick(choices)
    return [logback_line(t, "scheduling-1", level, logger, msg)]


def n_slog(r: Rand, t: int) -> list[str]:
    rows = r.num(100, 5000)
    return [
        slog_line(
            t, "INFO", "batch flushed", service="ingest", rows=rows, duration=f"{r.ms(5, 900)}ms"
        )
    ]


def n_slog_tricky(r: Rand, t: int) -> list[str]:
    choice = r.num(0, 2)
    if choice == 0:
        return [slog_line(t, "INFO", "retrying after", service="ingest", error="none", attempt=2)]
    if choice == 1:
        return [
            slog_line(
                t, "INFO", "pipeline stats", service="ingest", processed=r.num(1000, 90000),
                errors_total=0, dropped=0,
            )
        ]  # fmt: skip
    return [
        slog_line(
            t,
            "WARN",
            "retrying request",
            service="ingest",
            attempt=1,
            err="connection reset by peer",
        )
    ]


def n_golog(r: Rand, t: int) -> list[str]:
    msg = r.pick(
        (
            f"consumer group rebalanced: partitions=[{r.num(0, 5)} {r.num(6, 11)}]",
            f"flushed {r.num(10, 900)} events to warehouse",
            "config reloaded from /etc/ingest/config.yaml",
        )
    )
    return [golog_line(t, msg)]


def n_zap(r: Rand, t: int) -> list[str]:
    method, path = r.pick(ROUTES)
    return [
        zap_line(
            t, "info", "gateway/proxy.go:97", "request proxied", method=method, path=path,
            status=200, latency=f"{r.ms(1, 400) / 1000:.3f}s",
        )
    ]  # fmt: skip


def n_heroku(r: Rand, t: int) -> list[str]:
    pairs: list[tuple[str, object]] = [
        ("at", "info"), ("method", "GET"), ("path", f"/v1/invoices/{r.order_id()}"),
        ("host", "billing.acme.example"), ("request_id", r.uuid()), ("fwd", r.client_ip()),
        ("dyno", f"web.{r.num(1, 3)}"), ("connect", "0ms"), ("service", f"{r.ms(5, 900)}ms"),
        ("status", 200), ("bytes", r.num(300, 9000)), ("protocol", "https"),
    ]  # fmt: skip
    return [f"{iso_z(t)} heroku[router]: {logfmt_line(pairs)}"]


def n_ruby(r: Rand, t: int) -> list[str]:
    if r.chance(0.25):
        msg = f"Retrying SmsDeliveryJob jid={r.hex(24)} in 30s after Net::ReadTimeout (attempt 1 of 5)"
        return [ruby_line(t, r, "WARN", "notifier", msg)]
    msg = f"SmsDeliveryJob done jid={r.hex(24)} elapsed={r.ms(50, 2000) / 1000:.3f}"
    return [ruby_line(t, r, "INFO", "notifier", msg)]


def n_nginx_warn(r: Rand, t: int) -> list[str]:
    msg = (
        "an upstream response is buffered to a temporary file "
        f"/var/cache/nginx/proxy_temp/{r.num(1, 9)}/{r.num(10, 99)}/{r.num(10**9, 10**10 - 1)} "
        f'while reading upstream, client: {r.client_ip()}, server: api.acme.example, request: "GET /v1/reports/export HTTP/1.1"'
    )
    return [nginx_error_line(t, "warn", r.num(100000, 999999), msg)]


NOISE: tuple[tuple[int, Callable[[Rand, int], list[str]]], ...] = (
    (20, n_nginx_access),
    (14, n_structlog_request),
    (2, n_structlog_health),
    (1, n_structlog_warning),
    (6, n_py_order),
    (2, n_py_validated),
    (1, n_py_debug_handler),
    (3, n_py_slow_query),
    (6, n_celery),
    (8, n_pino_request),
    (2, n_pino_warn),
    (4, n_bunyan),
    (5, n_logback),
    (3, n_logback_misc),
    (6, n_slog),
    (4, n_slog_tricky),
    (1, n_golog),
    (5, n_zap),
    (3, n_heroku),
    (3, n_ruby),
    (1, n_nginx_warn),
)


# --- the generator ---------------------------------------------------------------------------------


class Clock:
    """Advances time: exponential gaps seconds apart, with occasional bursts of close lines."""

    def __init__(self, r: Rand, n_lines: int) -> None:
        self.r = r
        # Scale the mean gap so any run fits in the day; small runs get realistic seconds.
        self.mean_gap_ms = min(8000.0, 0.75 * 86_400_000 / max(n_lines, 1))
        self.now = DAY_START_MS + 6 * 3_600_000
        self.burst_left = 0
        self.incident: Pattern | None = None

    def tick(self) -> int:
        if self.burst_left > 0:
            self.burst_left -= 1
            gap = self.r.num(5, 300)
        else:
            self.incident = None
            gap = max(1, int(self.r.rng.expovariate(1 / self.mean_gap_ms)))
            if self.r.chance(0.01):
                self._start_burst()
        self.now = min(self.now + gap, DAY_END_MS)
        return self.now

    def _start_burst(self) -> None:
        self.burst_left = self.r.num(15, 60)
        # Half the bursts are an incident: one pattern dominates the errors while it lasts.
        self.incident = self.r.pick(PATTERNS) if self.r.chance(0.5) else None


def _pick_weighted(r: Rand, items: tuple[tuple[int, T], ...]) -> T:
    total = sum(weight for weight, _ in items)
    point = r.num(1, total)
    for weight, item in items:
        point -= weight
        if point <= 0:
            return item
    return items[-1][1]


PATTERN_WEIGHTS = tuple((p.weight, p) for p in PATTERNS)


def _error_record(r: Rand, t: int, incident: Pattern | None) -> Record:
    pattern = incident if incident and r.chance(0.7) else _pick_weighted(r, PATTERN_WEIGHTS)
    lines = tuple(pattern.render(r, t))
    return Record(lines, t, pattern.name, pattern.language, pattern.trace)


def _noise_record(r: Rand, t: int) -> Record:
    return Record(tuple(_pick_weighted(r, NOISE)(r, t)), t)


def generate_records(n_lines: int, seed: int, error_rate: float = 0.05) -> Iterator[Record]:
    """Yield records until exactly `n_lines` physical lines have been produced."""
    r = Rand(seed)
    clock = Clock(r, n_lines)
    emitted = 0
    while emitted < n_lines:
        t = clock.tick()
        record = None
        if r.chance(error_rate):
            record = _error_record(r, t, clock.incident)
            # A trace that would overrun the line budget is replaced by one noise line, so the
            # output has exactly n_lines lines and never ends in a cut trace.
            if len(record.lines) > n_lines - emitted:
                record = None
        if record is None:
            record = _noise_record(r, t)
        emitted += len(record.lines)
        yield record


def generate(n_lines: int, seed: int, error_rate: float = 0.05) -> Iterator[str]:
    """Yield the physical lines of the log, without line terminators."""
    for record in generate_records(n_lines, seed, error_rate):
        yield from record.lines


@dataclass(slots=True)
class Summary:
    """What one run of the generator produced, for READMEs and accuracy benchmarks."""

    lines: int = 0
    events: int = 0
    error_events: int = 0
    error_lines: int = 0
    first_ms: int = 0
    last_ms: int = 0
    by_pattern: Counter[str] = field(default_factory=Counter)


def summarize(n_lines: int, seed: int, error_rate: float = 0.05) -> Summary:
    """Count lines, events and occurrences per pattern of one generator run."""
    summary = Summary()
    for record in generate_records(n_lines, seed, error_rate):
        summary.first_ms = summary.first_ms or record.timestamp_ms
        summary.last_ms = record.timestamp_ms
        summary.lines += len(record.lines)
        summary.events += 1
        if record.pattern is not None:
            summary.error_events += 1
            summary.error_lines += len(record.lines)
            summary.by_pattern[record.pattern] += 1
    return summary


def summary_markdown(summary: Summary) -> str:
    """The per-pattern occurrence table, in pattern order, as Markdown."""
    rows = [
        "| # | pattern | category | language | first line format | trace | occurrences |",
        "|---|---|---|---|---|---|---|",
    ]
    for index, p in enumerate(PATTERNS, 1):
        trace = {"multiline": "multi-line", "json": "in JSON field", "": "—"}[p.trace]
        count = summary.by_pattern[p.name]
        rows.append(
            f"| {index} | `{p.name}` | {p.category} | {p.language} | {p.fmt} | {trace} | {count} |"
        )
    totals = (
        f"\n{summary.lines} lines, {summary.events} events, {summary.error_events} error events "
        f"({summary.error_lines} lines), from {iso_z(summary.first_ms)} to {iso_z(summary.last_ms)}."
    )
    return "\n".join(rows) + "\n" + totals + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=4000, help="physical lines to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--error-rate", type=float, default=0.05, help="share of events that are errors"
    )
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    parser.add_argument(
        "--summary", action="store_true", help="print the per-pattern table instead"
    )
    args = parser.parse_args(argv)
    if args.summary:
        sys.stdout.write(summary_markdown(summarize(args.lines, args.seed, args.error_rate)))
        return 0
    lines = generate(args.lines, args.seed, args.error_rate)
    if args.output is None:
        sys.stdout.writelines(line + "\n" for line in lines)
        return 0
    with args.output.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(line + "\n" for line in lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
