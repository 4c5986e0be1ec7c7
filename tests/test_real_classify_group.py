"""Category and group of real-shaped error reports: the whole event decides the category, and
the same failure written through two shippers or two deployments is one group."""

from __future__ import annotations

import pytest

from watcher.classify import classify
from watcher.group.table import GroupTable
from watcher.model import LogEvent, RawLine
from watcher.parse.multiline import Assembler


def events_of(text: str) -> list[LogEvent]:
    lines = [
        RawLine(t, source="app", stream="s", cursor=n, line_no=n)
        for n, t in enumerate(text.split("\n"), 1)
    ]
    assembler = Assembler()
    found = assembler.feed_batch(lines) + assembler.flush(force=True)
    return [e for e in found if e.is_error]


CATEGORIES = {
    "nginx limit_req": (
        "2025/03/04 08:28:02 [error] 341993#341993: *3596219 limiting requests, excess: 5.684 by "
        'zone "default", client: 83.171.248.58, server: , request: "HEAD /new HTTP/1.1"',
        "rate_limit_error",
    ),
    "ioredis unhandled error event": (
        "[ioredis] Unhandled error event: Error: connect ECONNREFUSED 127.0.0.1:6379\n"
        "    at TCPConnectWrap.afterConnect [as oncomplete] (net.js:1088:14)",
        "cache_error",
    ),
    "connection pool exhausted though it says timed out": (
        "Npgsql.NpgsqlException (0x80004005): The connection pool has been exhausted\n"
        " ---> System.TimeoutException: The operation has timed out.\n"
        "   at Npgsql.ConnectorPool.RentAsync(CancellationToken token)",
        "database_error",
    ),
    "go runtime deadlock is not a database error": (
        "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n"
        "main.main()\n\t/tmp/prog.go:9 +0xfd",
        "internal_error",
    ),
    "body-parser invalid JSON is the client's bad request": (
        "SyntaxError: Unexpected token u in JSON at position 1\n"
        "    at JSON.parse (<anonymous>)\n"
        "    at parse (/srv/node_modules/body-parser/lib/types/json.js:89:19)",
        "validation_error",
    ),
    "urllib's HTTPError for a 429 is the service's rate limit": (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/rates.py", line 12, in fetch\n'
        "    return urllib.request.urlopen(req, timeout=5)\n"
        "urllib.error.HTTPError: HTTP Error 429: Too Many Requests",
        "rate_limit_error",
    ),
    "a number that does not parse is bad input, on the JVM as in Python": (
        "java.lang.NumberFormatException: For input string: \"7318x\"\n"
        "\tat java.base/java.lang.Integer.parseInt(Integer.java:668)\n"
        "\tat com.acme.orders.OrderService.quantity(OrderService.java:21)",
        "validation_error",
    ),
    ".NET's FormatException is bad input": (
        "System.FormatException: The input string 'abc' was not in a correct format.\n"
        "   at System.Number.ThrowFormatException(ReadOnlySpan`1 value)\n"
        "   at Acme.Orders.Quantity(String raw) in /src/Orders.cs:line 21",
        "validation_error",
    ),
    "a cause chain inside a JSON record's stack field names the failure": (
        '{"level": "ERROR", "logger": "c.a.PaymentController", "message": "request failed", '
        '"stack": "com.acme.payments.PaymentGatewayException: payment gateway unreachable\\n'
        "\\tat com.acme.payments.GatewayClient.charge(GatewayClient.java:14)\\n"
        "Caused by: java.net.ConnectException: Connection refused\\n"
        '\\tat java.base/java.net.Socket.connect(Socket.java:633)\\n\\t... 2 more"}',
        "external_service_error",
    ),
    "S3 AccessDenied is auth": (
        "Traceback (most recent call last):\n"
        '  File "./s3.py", line 43, in <module>\n'
        "    s3.put_object_acl(Bucket=b, Key=k)\n"
        "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the "
        "PutObjectAcl operation: Access Denied",
        "auth_error",
    ),
    "postgres pg_hba rejection is auth": (
        "2025-03-04 08:11:51 UTC [436]: [5f57.1b4-2] postgres@postgres,app=[unknown] [28000] FATAL:"
        '  pg_hba.conf rejects connection for host "10.1.1.1", user "postgres", SSL off',
        "auth_error",
    ),
    "postgres server report defaults to database": (
        "2025-03-04 09:10:18 UTC [988-2]  FATAL:  terminating walreceiver process due to "
        "administrator command",
        "database_error",
    ),
    "fetch failed with a connect-timeout cause": (
        "TypeError: fetch failed\n"
        "    at Object.fetch (node:internal/deps/undici/undici:11413:11)\n"
        "    at async sendMessage (/srv/bot/src/chatgpt.ts:7:22) {\n"
        "  cause: ConnectTimeoutError: Connect Timeout Error\n"
        "      at onConnectTimeout (node:internal/deps/undici/undici:8380:28)\n"
        "}",
        "timeout_error",
    ),
    "redis broker timeout is the cache": (
        "[2025-03-04 09:05:06,254: ERROR/MainProcess] consumer: Cannot connect to "
        "rediss://cache.internal:6379/5: Timeout connecting to server.",
        "cache_error",
    ),
}


@pytest.mark.parametrize("name", sorted(CATEGORIES))
def test_category_reads_the_whole_event(name: str) -> None:
    """The category comes from the cause chain, the client library and the message together."""
    text, expected = CATEGORIES[name]
    (event,) = events_of(text)
    assert classify(event).category == expected


def group_ids(*texts: str) -> list[str]:
    table = GroupTable()
    ids = []
    for text in texts:
        (event,) = events_of(text)
        ids.append(table.add(event, classify(event)).group.id)
    return ids


def test_postgres_prefix_variants_are_one_group() -> None:
    """The same FATAL through three log_line_prefix layouts is one group."""
    a, b, c = group_ids(
        "2025-03-04 08:11:53 UTC [440]: [5f57.1b8-2] postgres@postgres,app=[unknown] [28P01] "
        'FATAL:  password authentication failed for user "postgres"',
        '2025-03-04 09:05:41.505 UTC [62] FATAL:  password authentication failed for user "app"',
        "2025-03-04 09:10:04 UTC [1547-1] 172.16.105.174(43212) test@3 FATAL:  password "
        'authentication failed for user "test"',
    )
    assert a == b == c


def test_journald_and_plain_are_one_group() -> None:
    """A gunicorn line read through journald and read from its own file is one group."""
    a, b = group_ids(
        "Mar 04 08:10:02 web wsgi.sh[3129]: [2024-03-04 08:10:02 +0200] [52] [CRITICAL] "
        "WORKER TIMEOUT (pid:849)",
        "[2024-03-04 08:27:22 +0000] [1637] [CRITICAL] WORKER TIMEOUT (pid:7214)",
    )
    assert a == b


GO_NIL = (
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x75c397]\n\n"
    "goroutine 13 [running]:\n{frame}()\n\t{file}:315 +0x37"
)


def test_generic_panics_are_told_apart_by_their_top_app_frame() -> None:
    """Two nil-pointer panics in different functions are two groups; the same one twice is one."""
    a, b, c = group_ids(
        GO_NIL.format(frame="main.(*Sigma).Write", file="/src/sigma/sigma.go"),
        GO_NIL.format(frame="main.main", file="/app/main.go"),
        GO_NIL.format(frame="main.(*Sigma).Write", file="/src/sigma/sigma.go"),
    )
    assert a != b and a == c


def test_library_error_in_two_deployments_is_one_group() -> None:
    """body-parser's error from /node and from a Windows checkout is one group."""
    body = (
        "SyntaxError: Unexpected token {tok} in JSON at position {pos}\n"
        "    at JSON.parse (<anonymous>)\n"
        "    at parse ({root}body-parser/lib/types/json.js:89:19)\n"
        "    at IncomingMessage.emit ({core}:314:20)"
    )
    a, b = group_ids(
        body.format(tok="u", pos=1, root="/node/node_modules/", core="node:events"),
        body.format(tok=",", pos=124, root="C:\\\\app\\\\node_modules\\\\", core="events.js"),
    )
    assert a == b


def test_trace_fingerprints_carry_the_algorithm_version() -> None:
    """A trace fingerprint is made with FINGERPRINT_VERSION in its key: changing the version
    changes every fingerprint instead of silently re-keying groups."""
    from watcher.group import table

    (event,) = events_of(GO_NIL.format(frame="main.main", file="/app/main.go"))
    before = table.trace_fingerprint(event)
    table.FINGERPRINT_VERSION += 1
    try:
        assert table.trace_fingerprint(event) != before
    finally:
        table.FINGERPRINT_VERSION -= 1


def test_php_fatal_with_and_without_its_stack_is_one_group() -> None:
    """PHP's "Uncaught X … in file:line" alone and with its "#0" frames is the same crash site."""
    a, b = group_ids(
        "PHP Fatal error:  Uncaught JsonException: Syntax error in /srv/app/src/Hook.php:10",
        "PHP Fatal error:  Uncaught JsonException: Syntax error in /srv/app/src/Hook.php:10\n"
        "Stack trace:\n#0 /srv/app/src/Hook.php(10): json_decode('{bad', true)\n#1 {main}\n"
        "  thrown in /srv/app/src/Hook.php on line 10",
    )
    assert a == b
