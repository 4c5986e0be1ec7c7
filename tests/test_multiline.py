"""Assembler: joining continuation lines per stream, spans, cursors, caps and the timeout."""

from __future__ import annotations

from watcher.model import LogEvent, RawLine
from watcher.parse.multiline import Assembler


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def raw(text: str, line_no: int, stream: str = "s") -> RawLine:
    return RawLine(text, source="app", stream=stream, cursor=f"c{line_no}", line_no=line_no)


def lines_of(text: str, stream: str = "s", start: int = 1) -> list[RawLine]:
    return [raw(t, n, stream) for n, t in enumerate(text.split("\n"), start)]


def assemble(text: str, **kwargs: object) -> list[LogEvent]:
    assembler = Assembler(**kwargs)  # type: ignore[arg-type]
    return assembler.feed_batch(lines_of(text)) + assembler.flush(force=True)


def spans(events: list[LogEvent]) -> list[tuple[int, int]]:
    return [(e.first_line, e.last_line) for e in events]


PY_AFTER_LOG = """\
2024-01-01 12:00:00,123 ERROR app.api request failed
Traceback (most recent call last):
  File "/app/api.py", line 10, in handle
    do()
ValueError: bad input
2024-01-01 12:00:01,000 INFO app.api next request"""


def test_traceback_joins_the_log_line_that_reported_it() -> None:
    """A Traceback after `ERROR … failed` belongs to that event, up to its ValueError line."""
    events = assemble(PY_AFTER_LOG)
    assert spans(events) == [(1, 5), (6, 6)]
    event = events[0]
    assert (event.level, event.message) == ("error", "app.api request failed")
    assert (event.exception_type, event.exception_message) == ("ValueError", "bad input")
    assert event.frames[0].file == "/app/api.py"
    assert event.line_count == 5
    assert event.text == "\n".join(PY_AFTER_LOG.split("\n")[:5])


def test_cursor_is_that_of_the_last_line() -> None:
    """A multi-line event carries the cursor of its last physical line."""
    events = assemble(PY_AFTER_LOG)
    assert [e.cursor for e in events] == ["c5", "c6"]


def test_bare_traceback_gets_error_level_and_exception_message() -> None:
    """A traceback with no log line is level error, and its message is the exception line."""
    events = assemble(
        'Traceback (most recent call last):\n  File "/a.py", line 1, in <module>\nKeyError: 1'
    )
    assert len(events) == 1
    assert (events[0].level, events[0].message) == ("error", "KeyError: 1")


def test_python_chained_traceback_is_one_event() -> None:
    """`During handling…` and the blank lines around it keep the chain in one event."""
    text = """\
Traceback (most recent call last):
  File "/app/a.py", line 1, in f
KeyError: 'k'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/b.py", line 2, in g
RuntimeError: wrapped
INFO done"""
    events = assemble(text)
    assert spans(events) == [(1, 9), (10, 10)]
    assert events[0].exception_type == "RuntimeError"
    assert [f.file for f in events[0].frames] == ["/app/b.py"]


def test_two_tracebacks_in_a_row_are_two_events() -> None:
    """Without a chain message, a second Traceback starts a new event."""
    one = 'Traceback (most recent call last):\n  File "/a.py", line 1, in f\nKeyError: 1'
    events = assemble(one + "\n" + one)
    assert spans(events) == [(1, 3), (4, 6)]


def test_java_trace_with_caused_by() -> None:
    """A log4j line, its exception, `at` frames, `Caused by:` and `... N more` form one event."""
    text = """\
2024-01-01 12:00:00,123 ERROR [main] c.f.Bar - failed
java.lang.IllegalStateException: boom
\tat com.foo.Bar.baz(Bar.java:42)
Caused by: java.io.IOException: disk
\tat com.foo.Disk.read(Disk.java:7)
\t... 2 more
2024-01-01 12:00:01,000 INFO [main] c.f.Bar - ok"""
    events = assemble(text)
    assert spans(events) == [(1, 6), (7, 7)]
    assert events[0].exception_type == "java.lang.IllegalStateException"
    assert events[0].level == "error"


def test_node_trace() -> None:
    """A JS error header and its `    at` frames form one event."""
    text = "TypeError: x is undefined\n    at fn (/app/x.js:10:5)\n    at /app/y.js:1:2\nnext"
    events = assemble(text)
    assert spans(events) == [(1, 3), (4, 4)]
    assert (events[0].exception_type, events[0].level) == ("TypeError", "error")
    assert len(events[0].frames) == 2


def test_go_panic_with_goroutine_dump() -> None:
    """A Go panic keeps its signal line, blank lines, goroutine blocks and frame lines."""
    text = """\
panic: runtime error: index out of range [5] with length 3
[signal SIGSEGV: segmentation violation]

goroutine 1 [running]:
main.fn(...)
\t/app/main.go:12
main.main()
\t/app/main.go:8 +0x1d

goroutine 6 [sleep]:
time.Sleep(0x3b9aca00)
\t/usr/local/go/src/runtime/time.go:195 +0x135
2024/01/01 12:00:00 restarted"""
    events = assemble(text)
    assert spans(events) == [(1, 12), (13, 13)]
    assert events[0].exception_type == "runtime error"
    assert [f.function for f in events[0].frames] == ["main.main", "main.fn"]


def test_ruby_trace() -> None:
    """A Ruby error line and its `from` lines form one event."""
    events = assemble("app.rb:3:in 'foo': boom (RuntimeError)\n\tfrom app.rb:7:in '<main>'\nok")
    assert spans(events) == [(1, 2), (3, 3)]
    assert events[0].exception_type == "RuntimeError"


def test_header_without_frames_is_split_back_off() -> None:
    """An exception-looking line with no frame after it becomes its own event again."""
    events = assemble("INFO started\nError: could not connect\nINFO again")
    assert spans(events) == [(1, 1), (2, 2), (3, 3)]
    assert [e.level for e in events] == ["info", "error", "info"]


def test_header_on_probation_split_by_flush() -> None:
    """A probationary header still pending at flush time comes out as its own event."""
    assembler = Assembler()
    assert spans(assembler.feed_batch(lines_of("ERROR failed\njava.lang.Error: x"))) == []
    assert spans(assembler.flush(force=True)) == [(1, 1), (2, 2)]


def test_exception_header_after_an_info_line_starts_its_own_event() -> None:
    """An exception line never joins an INFO record: the INFO line comes out when it arrives."""
    assembler = Assembler()
    assert spans(assembler.feed_batch(lines_of("INFO started\njava.lang.Error: x"))) == [(1, 1)]
    assert spans(assembler.flush(force=True)) == [(2, 2)]


def test_plain_lines_are_held_one_line() -> None:
    """An ordinary line comes out when the next line of its stream arrives."""
    assembler = Assembler()
    assert assembler.feed(raw("INFO one", 1)) == []
    assert assembler.pending == 1
    assert spans(assembler.feed(raw("INFO two", 2))) == [(1, 1)]
    assert spans(assembler.flush(force=True)) == [(2, 2)]
    assert assembler.pending == 0


def test_json_lines_come_out_at_once() -> None:
    """JSON records never take continuation lines, so they are not held."""
    assembler = Assembler()
    events = assembler.feed(raw('{"level": "info", "msg": "x"}', 1))
    assert spans(events) == [(1, 1)]
    assert assembler.pending == 0


def test_json_line_closes_the_previous_record_first() -> None:
    """A JSON line emits the pending record of its stream, then itself, in order."""
    assembler = Assembler()
    assembler.feed(raw("INFO one", 1))
    assert spans(assembler.feed(raw('{"msg": "two"}', 2))) == [(1, 1), (2, 2)]


def test_interleaved_streams_never_join() -> None:
    """Lines of two streams interleaved assemble separately, each with its own trace."""
    a = lines_of(PY_AFTER_LOG, stream="a")
    b = lines_of("INFO b1\n  indented b\nINFO b2", stream="b", start=101)
    mixed = [a[0], b[0], a[1], b[1], a[2], a[3], b[2], a[4], a[5]]
    assembler = Assembler()
    events = assembler.feed_batch(mixed) + assembler.flush(force=True)
    by_stream = {s: spans([e for e in events if e.stream == s]) for s in ("a", "b")}
    assert by_stream == {"a": [(1, 5), (6, 6)], "b": [(101, 102), (103, 103)]}
    assert next(e for e in events if e.stream == "a").exception_type == "ValueError"


def test_timeout_flush_with_injected_clock() -> None:
    """flush() closes only records idle for longer than the timeout."""
    clock = FakeClock()
    assembler = Assembler(timeout=2.0, clock=clock)
    assembler.feed(raw("INFO a", 1, "a"))
    clock.now += 1.5
    assembler.feed(raw("INFO b", 1, "b"))
    assert assembler.flush() == []
    clock.now += 0.6
    assert [e.stream for e in assembler.flush()] == ["a"]
    assert assembler.pending == 1
    clock.now += 2.0
    assert [e.stream for e in assembler.flush()] == ["b"]


def test_unfinished_trace_closed_by_timeout() -> None:
    """A trace whose end never arrives is emitted by flush() once the stream goes quiet."""
    clock = FakeClock()
    assembler = Assembler(timeout=2.0, clock=clock)
    assembler.feed_batch(lines_of("ERROR failed\nTraceback (most recent call last):"))
    clock.now += 2.5
    events = assembler.flush()
    assert spans(events) == [(1, 2)]
    assert assembler.pending == 0


def test_feed_sweeps_records_of_quiet_streams() -> None:
    """A busy stream's feed also releases a quiet stream's record after the timeout."""
    clock = FakeClock()
    assembler = Assembler(timeout=2.0, clock=clock)
    assembler.feed(raw("INFO quiet", 1, "quiet"))
    clock.now += 3.0
    events = assembler.feed(raw("INFO busy", 1, "busy"))
    assert [(e.stream, e.message) for e in events] == [("quiet", "quiet")]


def test_max_lines_cap_truncates() -> None:
    """A trace longer than max_lines is closed at the cap and marked truncated."""
    text = "ERROR boom\n" + "\n".join(f"\tat a.B.c(B.java:{n})" for n in range(10))
    events = assemble(text, max_lines=4)
    assert spans(events)[0] == (1, 4)
    assert events[0].truncated
    assert sum(e.line_count for e in events) == 11


def test_max_bytes_cap_truncates() -> None:
    """A trace bigger than max_bytes is closed before the line that would overflow it."""
    text = "ERROR boom\n" + "\n".join("\tat " + "x" * 50 for _ in range(10))
    events = assemble(text, max_bytes=200)
    assert events[0].truncated
    assert sum(len(line) for line in events[0].text.split("\n")) <= 200
    assert sum(e.line_count for e in events) == 11


def test_source_truncated_line_marks_event() -> None:
    """A line the source truncated marks the event it ends up in."""
    lines = [raw("ERROR x", 1), RawLine("  more", stream="s", line_no=2, truncated=True)]
    assembler = Assembler()
    events = assembler.feed_batch(lines) + assembler.flush(force=True)
    assert events[0].truncated


def test_indented_lines_continue_any_record() -> None:
    """Indented text (a dumped query, a pretty dict) joins the line above it."""
    events = assemble("WARN slow query:\n    SELECT *\n    FROM t\nINFO next")
    assert spans(events) == [(1, 3), (4, 4)]
    assert events[0].exception_type is None and events[0].level == "warning"


def test_indented_timestamped_line_is_a_new_record() -> None:
    """An indented line that starts with a timestamp is a log line of its own."""
    events = assemble("INFO a\n  2024-01-01 12:00:00 INFO b")
    assert spans(events) == [(1, 1), (2, 2)]


def test_orphan_lines_still_accounted() -> None:
    """Continuation lines with nothing to continue still come out, as events of their own."""
    events = assemble("\tat a.B.c(B.java:1)\nCaused by: x.Y: z\n\n\nDuring handling of it")
    assert sum(e.line_count for e in events) == 5


def test_messages_that_run_on_stay_with_their_trace() -> None:
    """A pydantic error list after a traceback, a PostgreSQL "Detail:" block inside a Java
    "Caused by:", and a Ruby logger backtrace each stay in one event; the next record does not."""
    text = (
        "2026-01-01 10:00:00,000 ERROR [api] bad payload\n"
        "Traceback (most recent call last):\n"
        '  File "/app/x.py", line 3, in f\n'
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for Order\n"
        "items.0.quantity\n"
        "  Input should be greater than 0 [type=greater_than]\n"
        "END RequestId: 8f5c\n"
        "2026-01-01 10:00:01.000 [main] ERROR c.a.S - settle failed\n"
        "org.springframework.dao.CannotAcquireLockException: could not execute statement\n"
        "\tat com.acme.S.settle(S.java:1)\n"
        "Caused by: org.postgresql.util.PSQLException: ERROR: deadlock detected\n"
        "  Detail: Process 1 waits for ShareLock on transaction 2; blocked by process 3.\n"
        "Process 3 waits for ShareLock on transaction 4; blocked by process 1.\n"
        "\tat org.postgresql.core.Q.receive(Q.java:9)\n"
        "E, [2026-01-01T10:00:02.0 #1] ERROR -- app: job failed\n"
        "[HTTP 503] Unable to create record\n"
        "/app/jobs/sms.rb:14:in `perform'\n"
        "time=2026-01-01T10:00:03Z level=info msg=ok\n"
    )
    lines = [RawLine(t, stream="s", line_no=i) for i, t in enumerate(text.splitlines(), 1)]
    asm = Assembler()
    events = asm.feed_batch(lines) + asm.flush(force=True)
    assert [(e.first_line, e.last_line) for e in events] == [
        (1, 6),
        (7, 7),
        (8, 14),
        (15, 17),
        (18, 18),
    ]
    assert events[0].exception_type == "pydantic_core._pydantic_core.ValidationError"
    assert "deadlock detected" in events[2].text
