"""parse_trace and is_in_app: each language's exception type, message and frames."""

from __future__ import annotations

import pytest

from watcher.parse.traces import is_in_app, parse_trace


def frames_of(text: str) -> list[tuple[str, int | None, str, bool]]:
    trace = parse_trace(text.split("\n"))
    assert trace is not None
    return [(f.file, f.line, f.function, f.in_app) for f in trace.frames]


PYTHON = """\
Traceback (most recent call last):
  File "/app/api.py", line 10, in handle
    do()
  File "/usr/lib/python3.11/site-packages/lib.py", line 5, in do
    raise KeyError("x")
KeyError: 'x'"""

PYTHON_CHAINED = """\
Traceback (most recent call last):
  File "/app/db.py", line 3, in query
    raise ConnectionError("refused")
ConnectionError: refused

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/api.py", line 12, in handle
    query()
  File "/app/repo.py", line 7, in load
    raise RepoError("cannot load") from exc
app.errors.RepoError: cannot load"""

JAVA = """\
Exception in thread "main" java.lang.IllegalStateException: boom: twice
\tat com.foo.Bar.baz(Bar.java:42)
\tat com.foo.Bar$Inner.lambda$run$0(Bar.java:7)
\tat java.base/java.lang.Thread.run(Thread.java:829)
\tat sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
Caused by: java.io.IOException: disk
\tat com.foo.Disk.read(Disk.java:7)
\t... 2 more"""

NODE = """\
TypeError: Cannot read properties of undefined (reading 'x')
    at fn (/app/src/x.js:10:5)
    at /app/x.js:1:2
    at async Promise.all (index 0)
    at Module._compile (node:internal/modules/cjs/loader:1256:14)
    at Object.<anonymous> (/app/node_modules/express/lib/router.js:3:9)"""

GO = """\
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1234]

goroutine 1 [running]:
main.(*Server).handle(0xc000010000, {0x1, 0x2})
\t/app/server.go:12 +0x1d
main.main()
\t/app/main.go:8 +0x25

goroutine 7 [chan receive]:
main.worker()
\t/app/worker.go:3 +0x10"""

RUBY = """\
app.rb:3:in 'foo': boom (RuntimeError)
\tfrom /usr/lib/ruby/gems/3.3.0/gems/rack-3.0/lib/rack.rb:9:in 'call'
\tfrom app.rb:7:in '<main>'"""


def test_python_trace() -> None:
    """Python: type, message and frames outermost-first with library frames marked."""
    trace = parse_trace(PYTHON.split("\n"))
    assert trace is not None
    assert (trace.language, trace.exception_type, trace.exception_message) == (
        "python",
        "KeyError",
        "'x'",
    )
    assert frames_of(PYTHON) == [
        ("/app/api.py", 10, "handle", True),
        ("/usr/lib/python3.11/site-packages/lib.py", 5, "do", False),
    ]


def test_python_chained_trace_reports_last_exception() -> None:
    """A chained traceback reports the last exception and the frames of the last traceback."""
    trace = parse_trace(PYTHON_CHAINED.split("\n"))
    assert trace is not None
    assert (trace.exception_type, trace.exception_message) == (
        "app.errors.RepoError",
        "cannot load",
    )
    assert [f.file for f in trace.frames] == ["/app/api.py", "/app/repo.py"]


def test_python_trace_after_log_line() -> None:
    """The log line that reported the traceback does not confuse the parser."""
    trace = parse_trace(["2024-01-01 ERROR app failed", *PYTHON.split("\n")])
    assert trace is not None and trace.exception_type == "KeyError"


def test_java_trace_top_level_exception_and_outer_frames() -> None:
    """Java: the top-level exception and the frames of the outermost trace, not Caused by's."""
    trace = parse_trace(JAVA.split("\n"))
    assert trace is not None
    assert (trace.language, trace.exception_type, trace.exception_message) == (
        "java",
        "java.lang.IllegalStateException",
        "boom: twice",
    )
    assert frames_of(JAVA) == [
        ("sun/reflect/NativeMethodAccessorImpl", None, "NativeMethodAccessorImpl.invoke0", False),
        ("java/lang/Thread.java", 829, "Thread.run", False),
        ("com/foo/Bar.java", 7, "Bar$Inner.lambda$run$0", True),
        ("com/foo/Bar.java", 42, "Bar.baz", True),
    ]


def test_java_header_after_log4j_line() -> None:
    """A log4j line followed by the exception: the header is the line above the frames."""
    lines = [
        "2024-01-01 12:00:00,123 ERROR [main] c.f.Bar - failed",
        "com.foo.BarException: nope",
        "\tat com.foo.Bar.run(Bar.kt:3) ~[app.jar:1.0]",
    ]
    trace = parse_trace(lines)
    assert trace is not None
    assert (trace.exception_type, trace.exception_message) == ("com.foo.BarException", "nope")
    assert trace.frames[0].file == "com/foo/Bar.kt"


def test_node_trace() -> None:
    """Node: header type/message, named and anonymous frames, node:internal and node_modules."""
    trace = parse_trace(NODE.split("\n"))
    assert trace is not None
    assert (trace.language, trace.exception_type) == ("node", "TypeError")
    assert trace.exception_message == "Cannot read properties of undefined (reading 'x')"
    assert frames_of(NODE) == [
        ("/app/node_modules/express/lib/router.js", 3, "Object.<anonymous>", False),
        ("node:internal/modules/cjs/loader", 1256, "Module._compile", False),
        ("/app/x.js", 1, "<anonymous>", True),
        ("/app/src/x.js", 10, "fn", True),
    ]


def test_node_error_code_in_header() -> None:
    """`TypeError [ERR_X]: msg` reports the class name without the code."""
    trace = parse_trace(["TypeError [ERR_INVALID_ARG_TYPE]: bad arg", "    at f (/a.js:1:1)"])
    assert trace is not None
    assert (trace.exception_type, trace.exception_message) == ("TypeError", "bad arg")


def test_go_panic() -> None:
    """Go: runtime error type, message, and only the panicking goroutine's frames."""
    trace = parse_trace(GO.split("\n"))
    assert trace is not None
    assert (trace.language, trace.exception_type) == ("go", "runtime error")
    assert trace.exception_message == "invalid memory address or nil pointer dereference"
    assert frames_of(GO) == [
        ("/app/main.go", 8, "main.main", True),
        ("/app/server.go", 12, "main.(*Server).handle", True),
    ]


def test_go_plain_panic_and_created_by() -> None:
    """A plain panic is type "panic"; "created by" frames and GOROOT files are handled."""
    lines = [
        "panic: boom [recovered]",
        "goroutine 5 [running]:",
        "panic({0x4a, 0x5b})",
        "\t/usr/local/go/src/runtime/panic.go:884 +0x213",
        "created by main.start in goroutine 1",
        "\t/app/start.go:20 +0x4f",
    ]
    trace = parse_trace(lines)
    assert trace is not None
    assert (trace.exception_type, trace.exception_message) == ("panic", "boom")
    # the runtime's panic() frame is where the panic was re-raised, not where it happened
    assert [(f.function, f.in_app) for f in trace.frames] == [("main.start", True)]


def test_go_repanic_in_a_deferred_recover_points_at_the_first_panic() -> None:
    """A deferred func that recovers and panics again is not the top frame: the frame below the
    last runtime panic() is (where the error happened), whatever re-raised it."""
    lines = [
        "panic: runtime error: index out of range [5] with length 3 [recovered]",
        "\tpanic: runtime error: index out of range [5] with length 3",
        "",
        "goroutine 1 [running]:",
        "main.handle.func1()",
        "\t/app/handler.go:12 +0x8c",
        "panic({0x4a2f60?, 0xc000014138?})",
        "\t/usr/local/go/src/runtime/panic.go:914 +0x21f",
        "main.lookup(...)",
        "\t/app/store.go:40",
        "main.handle()",
        "\t/app/handler.go:18 +0x5d",
        "main.main()",
        "\t/app/main.go:7 +0x17",
    ]
    trace = parse_trace(lines)
    assert trace is not None
    assert [f.function for f in trace.frames] == ["main.main", "main.handle", "main.lookup"]


def test_go_frames_indented_with_spaces() -> None:
    """A goroutine dump pasted or re-indented with spaces still yields its frames."""
    lines = [
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "goroutine 1 [running]:",
        "main.main()",
        "    /app/main.go:69 +0x1af",
    ]
    trace = parse_trace(lines)
    assert trace is not None and [(f.file, f.line) for f in trace.frames] == [("/app/main.go", 69)]


def test_ruby_trace() -> None:
    """Ruby: `file:line:in 'fn': msg (Type)` plus `from` lines, gems marked as library."""
    trace = parse_trace(RUBY.split("\n"))
    assert trace is not None
    assert (trace.language, trace.exception_type, trace.exception_message) == (
        "ruby",
        "RuntimeError",
        "boom",
    )
    assert frames_of(RUBY) == [
        ("app.rb", 7, "<main>", True),
        ("/usr/lib/ruby/gems/3.3.0/gems/rack-3.0/lib/rack.rb", 9, "call", False),
        ("app.rb", 3, "foo", True),
    ]


def test_ruby_legacy_backtick_quotes() -> None:
    """Ruby before 3.4 quotes methods with a backtick."""
    trace = parse_trace(["x.rb:1:in `go': bad (ArgumentError)", "\tfrom x.rb:2:in `<main>'"])
    assert trace is not None
    assert trace.exception_type == "ArgumentError"
    assert [f.function for f in trace.frames] == ["<main>", "go"]


@pytest.mark.parametrize(
    ("lines", "language", "exc_type"),
    [
        (["panic: oh no"], "go", "panic"),
        (["fatal error: all goroutines are asleep - deadlock!"], "go", "fatal error"),
        (['Exception in thread "main" java.lang.Error: x'], "java", "java.lang.Error"),
        (
            ["org.postgresql.util.PSQLException: refused"],
            "java",
            "org.postgresql.util.PSQLException",
        ),
    ],
)
def test_header_only_traces(lines: list[str], language: str, exc_type: str) -> None:
    """A lone trace header names the exception even without frames."""
    trace = parse_trace(lines)
    assert trace is not None
    assert (trace.language, trace.exception_type, trace.frames) == (language, exc_type, [])


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [""],
        ["just text"],
        ["Error: could not connect"],
        ["app.Server: started"],
        ["  indented"],
    ],
)
def test_no_trace(lines: list[str]) -> None:
    """Lines without frames or a trace header are not a trace."""
    assert parse_trace(lines) is None


@pytest.mark.parametrize(
    ("path", "in_app"),
    [
        ("/app/api.py", True),
        ("/usr/lib/python3.11/json/decoder.py", False),
        ("/venv/lib/python3.11/site-packages/requests/api.py", False),
        ("/usr/lib/python3/dist-packages/x.py", False),
        ("<frozen importlib._bootstrap>", False),
        ("/app/node_modules/express/index.js", False),
        ("node:internal/process/task_queues", False),
        ("node:events", False),
        ("java/lang/Thread.java", False),
        ("javax/servlet/Filter.java", False),
        ("org/springframework/web/Servlet.java", False),
        ("kotlin/coroutines/Continuation.kt", False),
        ("jdk/internal/misc/Unsafe.java", False),
        ("java.lang.Thread", False),
        ("com/acme/Service.java", True),
        ("java.py", True),
        ("/usr/local/go/src/runtime/proc.go", False),
        ("/root/go/pkg/mod/github.com/gin-gonic/gin@v1.9.1/context.go", False),
        ("/app/main.go", True),
        ("/usr/local/bundle/gems/rack-3.0/lib/rack.rb", False),
        ("app/models/user.rb", True),
        ("C:\\venv\\Lib\\site-packages\\x.py", False),
    ],
)
def test_is_in_app(path: str, in_app: bool) -> None:
    """Library frames (stdlib, site-packages, node_modules, JVM, GOROOT, gems) are not in-app."""
    assert is_in_app(path) is in_app


def test_node_error_after_a_log_prefix_keeps_its_type() -> None:
    """A Node error logged behind a timestamp and level still yields its class and message."""
    trace = parse_trace(
        [
            "2024-01-01T00:00:00.000Z ERROR TypeError: x is undefined",
            "    at handler (/var/task/index.js:3:25)",
            "    at Runtime.handleOnce (file:///var/runtime/index.mjs:1173:29)",
        ]
    )
    assert trace is not None
    assert (trace.exception_type, trace.exception_message) == ("TypeError", "x is undefined")
    assert len(trace.frames) == 2


def test_lambda_runtime_frames_are_library() -> None:
    """AWS Lambda's runtime (/var/runtime, /var/lang) is library code; /var/task is the app."""
    assert not is_in_app("/var/runtime/bootstrap.py")
    assert not is_in_app("file:///var/runtime/index.mjs")
    assert not is_in_app("/var/lang/lib/python3.12/json/decoder.py")
    assert is_in_app("/var/task/app.py")
