"""The trace parsers remember what each frame line said and which language a frame line is
(issue 15, mixed replay: parse_trace was a sixth of an error event's cost); they must parse every
trace exactly like the parsers that read every line again, kept in tests/reference_traces.py."""

from __future__ import annotations

from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from tests import reference_traces
from watcher.parse import traces
from watcher.parse.languages import LANGUAGES, STARTS, common
from watcher.parse.traces import parse_trace

# lines of every runtime's traces, near misses of them, and the log lines around them
_LINES = [
    "Traceback (most recent call last):",
    '  File "/app/api.py", line 10, in handle',
    '  File "/app/api.py", line 11, in handle',
    '\tFile "/app/api.py", line 10, in handle',
    'File "/app/api.py", line 10, in handle',
    '  File "/usr/lib/python3.11/site-packages/lib.py", line 5, in do',
    '  File "/app/x.py", line 99999999999, in  spaced ',
    '  File "<frozen importlib>", line 1',
    '  File "/app/x.py", line ²',
    "    do()",
    "    raise KeyError('x')",
    "KeyError: 'x'",
    "app.errors.RepoError: cannot load",
    "ValueError",
    "During handling of the above exception, another exception occurred:",
    "",
    "   ",
    "2026-11-21 06:00:01,746 ERROR [api] failed",
    'Exception in thread "main" java.lang.IllegalStateException: boom',
    "java.lang.IllegalStateException: boom",
    "Caused by: java.io.IOException: disk",
    "\tat com.foo.Bar.baz(Bar.java:42)",
    "\tat com.foo.Bar.baz(Bar.java:43)",
    "at com.foo.Bar.baz(Bar.java:42)",
    "    at com.foo.Bar$Inner.lambda$run$0(Bar.java:7)",
    "\tat java.base/java.lang.Thread.run(Thread.java:829)",
    "\tat sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)",
    "\tat com.foo.Gen.x(Unknown Source) ~[app.jar:1.0]",
    "\t... 2 more",
    "TypeError: Cannot read properties of undefined (reading 'x')",
    "TypeError: x is not a function",
    "2026-11-21 06:00:01,746 ERROR [api] TypeError: bad",
    "2026-11-21 06:00:01,746 ERROR [api] com.acme.FooException: bad",
    "java.lang.IllegalStateException: other",
    "Uncaught Error: boom",
    "    at fn (/app/src/x.js:10:5)",
    "    at fn (/app/src/x.js:11:5)",
    "    at /app/x.js:1:2",
    "    at async Promise.all (index 0)",
    "    at async handler (file:///srv/app/h.mjs:3:1)",
    "    at Module._compile (node:internal/modules/cjs/loader:1256:14)",
    "    at Object.<anonymous> (/app/node_modules/express/lib/router.js:3:9)",
    "    at new Promise (<anonymous>)",
    "  cause: ConnectTimeoutError: Connect Timeout Error",
    "  code: 'ETIMEDOUT'",
    "System.NullReferenceException: Object reference not set",
    "   at Shop.Seo.T.M(HttpContext ctx) in T.cs:line 259",
    "   at Shop.Seo.T.N() in T.cs:line 260",
    "   --- End of inner exception stack trace ---",
    "panic: runtime error: index out of range",
    "goroutine 1 [running]:",
    "main.main()",
    "\t/app/main.go:11 +0x1d",
    "main.(*proxy).forward",
    "\t/app/cmd/gateway/proxy.go:142",
    "net/http.HandlerFunc.ServeHTTP",
    "\t/usr/local/go/src/net/http/server.go:2220",
    "panic({0x6c8ee0, 0xc000012345})",
    "\t/usr/local/go/src/runtime/panic.go:914 +0x21f",
    "created by main.start in goroutine 7",
    "  /app/main.go:12 +0x1d fp=0xc sp=0xc pc=0x1",
    "/app/mailer.rb:8:in `deliver': undefined method (NoMethodError)",
    "\tfrom /app/jobs.rb:18:in `perform'",
    "PHP Fatal error:  Uncaught TypeError: bad in /srv/a.php:15",
    "#0 /srv/app/crash.php(20): App\\Cart->addItem('x')",
    "Tail of a message",
    "panicked",
    "fatal error: all goroutines are asleep",
]
_DIGITS = str.maketrans("0123456789", "1234567890")
lines = st.sampled_from(_LINES) | st.sampled_from(_LINES).map(lambda s: s.translate(_DIGITS))
traces_ = st.lists(lines, min_size=1, max_size=12)


def _seen(trace: common.Trace | None) -> tuple | None:
    if trace is None:
        return None
    frames = [(f.file, f.line, f.function, f.in_app) for f in trace.frames]
    return (trace.language, trace.exception_type, trace.exception_message, frames, trace.causes)


@settings(max_examples=600, deadline=None)
@given(st.lists(traces_, min_size=1, max_size=4))
def test_the_remembering_parsers_read_every_trace_as_the_reference(batch: list[list[str]]) -> None:
    """Cold and warm (every trace parsed again after the others), each trace parses as the
    reference parses it."""
    for _ in range(2):
        for lines_ in batch:
            assert _seen(parse_trace(lines_)) == _seen(reference_traces.parse_trace(lines_))


@settings(max_examples=100, deadline=None)
@given(st.lists(traces_, min_size=1, max_size=6))
def test_a_full_cache_is_emptied_not_wrong(batch: list[list[str]]) -> None:
    """With room for two lines the caches are cleared all the time: still the same traces."""
    with mock.patch.object(common, "LINE_CACHE_CAP", 2):
        for lines_ in batch * 2:
            assert _seen(parse_trace(lines_)) == _seen(reference_traces.parse_trace(lines_))


def test_every_trace_gets_frames_of_its_own() -> None:
    """A remembered frame line makes a new Frame each time: the pipeline's mark_in_app sets a
    trace's frames' in_app, which must not change another trace's."""
    text = 'Traceback (most recent call last):\n  File "/app/a.py", line 1, in f\nValueError: x'
    first, second = parse_trace(text.split("\n")), parse_trace(text.split("\n"))
    assert first is not None and second is not None
    first.frames[0].in_app = False
    assert second.frames[0].in_app is True and first.frames[0] is not second.frames[0]


def test_a_language_starts_only_with_a_first_character_it_declares() -> None:
    """_detect skips is_start for a line whose first character no language declares: every
    start line of the fixtures opens with one its language declares."""
    for language in STARTS:
        assert language.start_firsts
    for language in LANGUAGES:
        for fixture in language.fixtures:
            for line in [*fixture.text.split("\n"), *_LINES]:
                for starts in STARTS:
                    if starts.is_start(line):  # type: ignore[misc]
                        assert line[:1] in starts.start_firsts, (starts.name, line)
    assert traces._detect(["  at nothing"]) is reference_traces._detect(["  at nothing"])


_STACK = 'Traceback (most recent call last):\n  File "/a.py", line 1, in f\nE: x'
stack_values = st.none() | st.sampled_from(
    [_STACK, "one line", "", [], [{"exc_type": "E", "frames": []}], {"stack": _STACK}, 3]
)
field_keys = st.sampled_from([*traces._STACK_KEYS, "err", "error", "error.type", "msg"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(field_keys, stack_values, max_size=4))
def test_a_trace_in_fields_is_found_as_before(fields: dict[str, object]) -> None:
    """trace_from_fields asks only the stack keys present: the same trace (or none)."""
    assert _seen(traces.trace_from_fields(dict(fields))) == _seen(
        reference_traces.trace_from_fields(dict(fields))
    )
