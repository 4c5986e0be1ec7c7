"""Event boundaries on real-shaped error output: where an event starts, what it keeps, where it
ends. Each case is the shape of a report seen in public issue trackers or committed log files
(values changed); the expected spans are 1-based line numbers of the text."""

from __future__ import annotations

import pytest

from watcher.model import LogEvent, RawLine
from watcher.parse.multiline import Assembler


def assemble(text: str) -> list[LogEvent]:
    lines = [
        RawLine(t, source="app", stream="s", cursor=n, line_no=n)
        for n, t in enumerate(text.split("\n"), 1)
    ]
    assembler = Assembler()
    return assembler.feed_batch(lines) + assembler.flush(force=True)


def error_spans(text: str) -> list[tuple[int, int]]:
    return [(e.first_line, e.last_line) for e in assemble(text) if e.is_error]


CASES = {
    "bare traceback after an access log line": (
        '10.5.1.2 - - [04/Mar/2025:08:05:25 +0000] "PUT /metrics HTTP/1.1" 200 10221 "-" "x" 0.4\n'
        "Traceback (most recent call last):\n"
        '  File "/app/app.py", line 11, in <module>\n'
        "    API_KEY = os.environ['API_KEY']\n"
        "KeyError: 'API_KEY'\n"
        'INFO:     10.0.1.1:33407 - "GET / HTTP/1.1" 200 OK',
        [(2, 5)],
    ),
    "node exception after an INFO record": (
        "2025-03-04 08:28:57,446 INFO [app.notifier] token refreshed for client 59de4b8c\n"
        "TypeError: fetch failed\n"
        "    at Object.fetch (node:internal/deps/undici/undici:11413:11)\n"
        "    at async sendMessage (file:///srv/bot/src/chatgpt.ts:7:22) {\n"
        "  cause: ConnectTimeoutError: Connect Timeout Error\n"
        "      at onConnectTimeout (node:internal/deps/undici/undici:8380:28) {\n"
        "    code: 'UND_ERR_CONNECT_TIMEOUT'\n"
        "  }\n"
        "}\n"
        "2025-03-04 08:29:00,000 INFO [app] next",
        [(2, 9)],
    ),
    "node crash preamble with source line and caret": (
        '{"level": "info", "msg": "token refreshed"}\n'
        "node:internal/deps/undici/undici:12443\n"
        "    Error.captureStackTrace(err, this);\n"
        "          ^\n"
        "\n"
        "TypeError: fetch failed\n"
        "    at node:internal/deps/undici/undici:12443:11\n"
        "    at async getMetadata (/srv/app/10.js:41:22)\n"
        "\n"
        "Node.js v18.17.0\n"
        "2025-03-04 08:06:26,561 INFO [app] connected",
        [(2, 10)],
    ),
    "unhandled rejection preamble with a bracketed error object": (
        "node:internal/process/promises:279\n"
        "            triggerUncaughtException(err, true /* fromPromise */);\n"
        "            ^\n"
        "\n"
        "[UnhandledPromiseRejection: This error originated either by throwing inside of an async"
        " function without a catch block.] {\n"
        "  code: 'ERR_UNHANDLED_REJECTION'\n"
        "}\n"
        "2025-03-04 08:06:26,561 INFO [app] connected",
        [(1, 7)],
    ),
    "aggregate error printed with its members": (
        '10.1.70.81 - - [04/Mar/2025:08:14:23 +0000] "POST /x HTTP/1.1" 204 15 "-" "ok" 0.5\n'
        "AggregateError: \n"
        "    at internalConnectMultiple (node:net:1139:18)\n"
        "    at processTimers (node:internal/timers:523:7) {\n"
        "  code: 'ETIMEDOUT',\n"
        "  [errors]: [\n"
        "    Error: connect ETIMEDOUT 34.253.228.78:443\n"
        "        at createConnectionError (node:net:1677:14) {\n"
        "      code: 'ETIMEDOUT'\n"
        "    }\n"
        "  ]\n"
        "}\n"
        '10.3.222.3 - - [04/Mar/2025:08:14:25 +0000] "GET / HTTP/1.1" 200 2478 "-" "k" 0.1',
        [(2, 12)],
    ),
    "bracketed error print without a stack (Next.js)": (
        'time=2025-03-04T08:13:45.641Z level=info msg="connected"\n'
        " [TypeError: fetch failed] {\n"
        "  cause:  [ConnectTimeoutError: Connect Timeout Error] {\n"
        "  code: 'UND_ERR_CONNECT_TIMEOUT',\n"
        "}\n"
        "2025-03-04 08:13:48,430 INFO [app.checkout] Received task",
        [(2, 5)],
    ),
    "postgres ERROR with DETAIL, HINT, CONTEXT and STATEMENT records": (
        "2025-03-04 08:02:02.900 CET [4136] ERROR:  deadlock detected\n"
        "2025-03-04 08:02:02.900 CET [4136] DETAIL:  Process 4136 waits for ShareLock.\n"
        "        Process 4178 waits for RowExclusiveLock on relation 16778.\n"
        "\n"
        "2025-03-04 08:02:02.900 CET [4136] HINT:  See server log for query details.\n"
        '2025-03-04 08:02:02.900 CET [4136] CONTEXT:  SQL statement "LOCK TABLE t"\n'
        "2025-03-04 08:02:02.900 CET [4136] STATEMENT:  SELECT * FROM history_tables()\n"
        "2025-03-04 08:02:02.901 CET [4247] LOG:  duration: 141522.046 ms  statement:",
        [(1, 7)],
    ),
    "postgres client output without timestamps": (
        "ERROR:  deadlock detected\n"
        "DETAIL:  Process 22301 waits for ShareLock on transaction 10754518.\n"
        "\tProcess 22301: UPDATE host\n"
        "2025-03-04 08:19:57,402 DEBUG [app.cache] jwt verified",
        [(1, 3)],
    ),
    "rails tagged FATAL block": (
        "F, [2025-03-04T08:10:50.547843 #2050] FATAL -- : [67c3c32a]\n"
        "F, [2025-03-04T08:10:50.547875 #2050] FATAL -- : [67c3c32a] Redis::CannotConnectError"
        " (Error connecting to Redis on 127.0.0.1:6379 (Errno::ECONNREFUSED)):\n"
        "F, [2025-03-04T08:10:50.547895 #2050] FATAL -- : [67c3c32a]\n"
        "F, [2025-03-04T08:10:50.547914 #2050] FATAL -- : [67c3c32a] "
        "app/controllers/designs_controller.rb:46:in `block in update'\n"
        "[67c3c32a] app/controllers/designs_controller.rb:45:in `update'\n"
        '10.4.253.35 - - [04/Mar/2025:08:10:52 +0000] "GET / HTTP/1.1" 200 9171 "-" "g" 0.9',
        [(1, 5)],
    ),
    "traceback glued to its logging prefix": (
        "ERROR:default:submit failed: Traceback (most recent call last):\n"
        '  File "/opt/venv/lib/python3.6/site-packages/MySQLdb/cursors.py", line 412, in _query\n'
        "    rowcount = self._do_query(q)\n"
        "_mysql_exceptions.OperationalError: (2006, 'MySQL server has gone away')\n"
        '{"level": "info", "msg": "next"}',
        [(1, 4)],
    ),
    "clipped traceback with a multi-line pydantic message": (
        "}\n"
        '  File "C:\\\\Users\\\\me\\\\chain.py", line 38, in <module>\n'
        "    db_chain = SQLDatabaseSequentialChain(llm=llm, database=db)\n"
        '  File "pydantic\\\\main.py", line 341, in pydantic.main.BaseModel.__init__\n'
        "pydantic.error_wrappers.ValidationError: 2 validation errors for SQLDatabaseChain\n"
        "decider_chain\n"
        "  field required (type=value_error.missing)\n"
        "/srv/app/config.py:321: UserWarning: Valid config keys have changed in V2:",
        [(2, 7)],
    ),
    "spring error whose message runs over ### lines before its trace": (
        "2025-03-04 13:42:23.014 ERROR 7548 --- [exec-7] o.a.c.c.C.[dispatcherServlet] : "
        "Servlet.service() threw exception [Request processing failed; nested exception is "
        "org.springframework.dao.DuplicateKeyException: \n"
        "### Error updating database.  Cause: java.sql.SQLIntegrityConstraintViolationException\n"
        "### SQL: INSERT INTO menu ( name ) VALUES ( ? )\n"
        "; Duplicate entry 'x' for key 'name'] with root cause\n"
        "\n"
        "java.sql.SQLIntegrityConstraintViolationException: Duplicate entry 'x' for key 'name'\n"
        "\tat com.mysql.cj.jdbc.exceptions.SQLError.createSQLException(SQLError.java:117)\n"
        "\tat com.acme.web.MenuService.insert(MenuService.java:42)\n"
        "\n"
        "2025-03-04 13:42:24.000  INFO 7548 --- [main] c.a.App : next",
        [(1, 8)],
    ),
    ".NET exception through journald with ANSI colours": (
        "2025-03-04 08:09:04,934 INFO [app.billing] worker ready\n"
        "Mar 04 08:09:06 vps shop: #033[41m#033[30mfail#033[39m#033[22m#033[49m: "
        "Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware[3]\n"
        "Mar 04 08:09:06 vps shop: An exception was thrown attempting to execute the handler.\n"
        "Mar 04 08:09:06 vps shop: Npgsql.NpgsqlException (0x80004005): The connection pool has"
        " been exhausted\n"
        "Mar 04 08:09:06 vps shop: ---> System.TimeoutException: The operation has timed out.\n"
        "Mar 04 08:09:06 vps shop: at Npgsql.ConnectorPool.RentAsync()\n"
        "Mar 04 08:09:06 vps shop: --- End of stack trace from previous location ---\n"
        "Mar 04 08:09:06 vps shop: at LinqToDB.Data.DataConnection.EnsureConnectionAsync("
        "CancellationToken cancellationToken)\n"
        "2025-03-04 08:09:06,355 DEBUG [app.http] jwt verified",
        [(2, 8)],
    ),
    "go panic with a space-indented goroutine dump": (
        "2025-03-04 08:27:53,948 INFO [app.billing] user 55649 logged in\n"
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x98 pc=0xe1d30f]\n"
        "\n"
        "goroutine 1 [running]:\n"
        "main.main()\n"
        "    /app/main.go:69 +0x1af\n"
        "2025-03-04 08:27:56,514 INFO [app] ok",
        [(2, 7)],
    ),
    "json error record followed by its raw traceback": (
        '{"level": "error", "event": "payment failed", "order": 7}\n'
        "Traceback (most recent call last):\n"
        '  File "/app/pay.py", line 3, in charge\n'
        "    raise ValueError('declined')\n"
        "ValueError: declined\n"
        '{"level": "info", "event": "next"}',
        [(1, 5)],
    ),
    "json info record then an unrelated traceback": (
        '{"level": "info", "event": "served"}\n'
        "Traceback (most recent call last):\n"
        '  File "/app/pay.py", line 3, in charge\n'
        "ValueError: declined",
        [(2, 4)],
    ),
    "two level-less errors in a row stay two events": (
        'API Error (529 {"type":"error","error":{"type":"overloaded_error"}}) · Retrying in 1s\n'
        '  ⎿  API Error (529 {"type":"error","error":{"type":"overloaded"}}) · Retrying in 2s\n'
        "2025-03-04 09:04:16,497 INFO [app.auth] published",
        [(1, 1), (2, 2)],
    ),
    "kubernetes Warning events, one per row": (
        "Events:\n"
        "  Type     Reason     Age   From     Message\n"
        "  Normal   Pulled     2m    kubelet  Container image pulled\n"
        "  Warning  BackOff    1m    kubelet  Back-off restarting failed container\n"
        "  Warning  Unhealthy  30s   kubelet  Liveness probe failed: HTTP probe failed",
        [(4, 4), (5, 5)],
    ),
    "CRI-prefixed traceback on stderr with stdout interleaved": (
        "2024-03-04T08:09:06.100000000Z stderr F Traceback (most recent call last):\n"
        "2024-03-04T08:09:06.100000001Z stdout F GET /health 200\n"
        '2024-03-04T08:09:06.100000002Z stderr F   File "/app/x.py", line 1, in <module>\n'
        "2024-03-04T08:09:06.100000003Z stderr F ZeroDivisionError: division by zero",
        [(1, 4)],
    ),
    "docker compose prefixes keep services apart": (
        "api-1     | ERROR request failed\n"
        "worker-1  | INFO tick\n"
        "api-1     | Traceback (most recent call last):\n"
        'api-1     |   File "/app/x.py", line 1, in <module>\n'
        "api-1     | KeyError: 'k'",
        [(1, 5)],
    ),
    "a warning record with the trace its logger attached": (
        "2025-03-04 08:24:54.567  WARN 10767 --- [exec-1] c.a.Handler : Failure in handler\n"
        "\n"
        "java.lang.NoClassDefFoundError: com/fasterxml/jackson/annotation/JsonKey\n"
        "\tat com.acme.Api.call(Api.java:12)\n"
        "2025-03-04 08:24:55.000  INFO 10767 --- [main] c.a.App : next",
        [(1, 4)],
    ),
    "a process crash after an unrelated warning is its own event": (
        "2026/11/21 13:34:53 [warn] 29#29: *333748 an upstream response is buffered\n"
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "\n"
        "goroutine 1 [running]:\n"
        "main.main()\n"
        "\t/app/main.go:9 +0x1d",
        [(2, 6)],
    ),
    "a framework's request summary is not an error, the exception after it is": (
        "Completed 500 Internal Server Error in 1ms\n"
        "\n"
        "NoMethodError (undefined method `name' for nil:NilClass):\n"
        "  app/controllers/users_controller.rb:33:in `edit'\n"
        '{"level": "info", "msg": "next"}',
        [(3, 4)],
    ),
    "a backtrace line written as a record with the error's header (Sidekiq)": (
        "2025-03-04T13:27:29Z 60056 TID-oxwcem4hc ERROR: Waited 1 sec\n"
        "2025-03-04T13:27:29Z 60056 TID-oxwcem4hc ERROR: /gems/connection_pool-2.0.0/lib/"
        "connection_pool/timed_stack.rb:42:in `block (2 levels) in pop'\n"
        '10.2.60.57 - - [04/Mar/2025:13:27:31 +0000] "PUT /x HTTP/1.1" 503 39125 "-" "c" 0.8',
        [(1, 2)],
    ),
    "a crash preamble after a finished python traceback is not its message": (
        "Traceback (most recent call last):\n"
        '  File "/app/x.py", line 1, in <module>\n'
        "KeyError: 'k'\n"
        "node:events:502\n"
        "      throw er; // Unhandled 'error' event\n"
        "      ^\n"
        "\n"
        "Error: connect ECONNREFUSED 127.0.0.1:35783\n"
        "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1611:16)",
        [(1, 3), (4, 9)],
    ),
    "ruby error with error_highlight's snippet after a log line": (
        'time=2024-03-04T08:31:10.762Z level=error msg="Error performing ReceiptJob"\n'
        "/srv/app/mailer.rb:8:in `deliver_receipt': undefined method `email' for nil"
        " (NoMethodError)\n"
        "\n"
        '    "to=#{user.email}"\n'
        "              ^^^^^^\n"
        "\tfrom crash.rb:18:in `<main>'\n"
        "2024-03-04 08:31:11,000 INFO [app] next",
        [(1, 6)],
    ),
    "php fatal with its stack trace after a log line": (
        "[2024-03-04 08:35:39] app.ERROR: Unhandled exception while serving /cart/65922\n"
        "PHP Fatal error:  Uncaught JsonException: Syntax error in /srv/app/src/Hook.php:10\n"
        "Stack trace:\n"
        "#0 /srv/app/src/Hook.php(10): json_decode('{bad', true)\n"
        "#1 {main}\n"
        "  thrown in /srv/app/src/Hook.php on line 10\n"
        "2024-03-04 08:35:40,000 INFO [app] next",
        [(1, 6)],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_error_event_spans(name: str) -> None:
    """Each error report is one event from the line that announces it to its last frame or
    continuation line, never glued to an unrelated record before it."""
    text, expected = CASES[name]
    assert error_spans(text) == expected


def test_prefixes_do_not_change_the_message() -> None:
    """The same error through journald and through a compose prefix reads the same."""
    journald = assemble(
        "Mar 04 08:10:02 web wsgi.sh[3129]: [2024-03-04 08:10:02 +0200] [52] "
        "[CRITICAL] WORKER TIMEOUT (pid:849)"
    )
    compose = assemble(
        "web-1  | [2024-03-04 08:10:02 +0200] [52] [CRITICAL] WORKER TIMEOUT (pid:849)"
    )
    assert journald[0].message == compose[0].message == "WORKER TIMEOUT (pid:849)"


def test_lines_a_source_delimits_are_never_run_on() -> None:
    """Railway, Loki and CloudWatch give each line its own record: two level-less error lines
    from such a source are two events, even though a plain file would let a message run on."""
    lines = [
        RawLine(text, source="api", stream="s", cursor=n, line_no=n, fields={"level": "error"})
        for n, text in enumerate(
            ["Payment failed for order 3: card declined", "Database connection timeout"], 1
        )
    ]
    assembler = Assembler()
    events = assembler.feed_batch(lines) + assembler.flush(force=True)
    assert [(e.first_line, e.last_line) for e in events] == [(1, 1), (2, 2)]


def test_a_source_level_outranks_a_lower_case_start_word() -> None:
    """ "error budget remaining 99%" from a source that says INFO is not an error; the same words
    with no level from the source read as one."""
    line = RawLine(
        "error budget remaining 99.3%", source="rw", stream="s", line_no=1, fields={"level": "info"}
    )
    assembler = Assembler()
    (event,) = assembler.feed_batch([line]) + assembler.flush(force=True)
    assert event.level == "info"


def _wrapped(rows: list[tuple[str, str, str]]) -> str:
    """Railway's log export shape: one JSON wrapper per line, each with its own stamp and level."""
    import json

    return "\n".join(
        json.dumps({"message": m, "timestamp": f"2024-03-04T08:18:{s}Z", "level": lv})
        for m, s, lv in rows
    )


def test_node_crash_report_tail_stays_in_the_event_when_lines_are_wrapped() -> None:
    """Node's "Emitted 'error' event … at:" block and its closing "Node.js v20" line belong to the
    crash report also when a shipper wrapped every line in a record of its own."""
    text = _wrapped(
        [
            ("published event order.created id=1", "40.000", "info"),
            ("Error: connect ECONNREFUSED 127.0.0.1:6379", "41.000", "error"),
            ("    at TCPConnectWrap.afterConnect (node:net:1555:16)", "41.000", "error"),
            ("Emitted 'error' event on Socket instance at:", "41.000", "error"),
            ("    at emitErrorNT (node:internal/streams/destroy:169:8)", "41.000", "error"),
            ("", "41.000", "error"),
            ("Node.js v20.20.2", "41.000", "error"),
            ("health check ok (12ms)", "43.000", "info"),
        ]
    )
    assert error_spans(text) == [(2, 7)]


def test_a_warning_stamped_apart_from_the_trace_after_it_is_not_its_header() -> None:
    """A warning record gets the trace after it only from the same logging call: where the
    source stamps every line, a trace written seconds later is an event of its own."""
    rows = [
        ("price lookup raised KeyError, using catalogue default", "47.969", "warning"),
        ("TypeError: Cannot read properties of undefined (reading 'id')", "49.674", "error"),
        ("    at customerId (/srv/app/orders.js:5:25)", "49.674", "error"),
        ("published event order.created id=2", "50.100", "info"),
    ]
    assert error_spans(_wrapped(rows)) == [(2, 3)]
    same_call = [(m, "47.969", lv) for m, _, lv in rows[:3]] + rows[3:]
    assert error_spans(_wrapped(same_call)) == [(1, 3)]


def test_a_stated_warning_level_outranks_the_level_less_error_guess() -> None:
    """ "retrying after ConnectionRefusedError" that its source calls a warning is a warning; the
    same words with no level (or a stream's default "info") still read as an error report."""
    line = "retrying charge 56450 after ConnectionRefusedError (attempt 2/5)"
    levels = {}
    for stated in ("warning", "info", None):
        fields = {"level": stated} if stated else None
        raw = RawLine(line, source="rw", stream="s", line_no=1, fields=fields)
        assembler = Assembler()
        (event,) = assembler.feed_batch([raw]) + assembler.flush(force=True)
        levels[stated] = event.level
    assert levels == {"warning": "warning", "info": "error", None: "error"}


def test_a_winston_json_error_record_is_an_error() -> None:
    """winston's JSON format writes {"level", "message", "timestamp"}, the same keys as a
    Railway export line: its level is the application's, so level "error" makes an error event
    (with the message as written), and level "info" does not."""
    text = (
        '{"level":"error","message":"Payment failed for order 3: card declined",'
        '"timestamp":"2024-03-04T08:00:00.000Z"}\n'
        '{"level":"info","message":"Payment failed for order 4: retried","timestamp":'
        '"2024-03-04T08:00:01.000Z"}'
    )
    events = assemble(text)
    assert [(e.level, e.is_error) for e in events] == [("error", True), ("info", False)]
    assert events[0].message == "Payment failed for order 3: card declined"
