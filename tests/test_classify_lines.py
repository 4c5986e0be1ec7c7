"""classify's passes line by line (issue 15) decide what the passes over the whole text decide.

`_verdict` searches each line of an event's text once and remembers what the line said; the
verdict is then put together from the lines: JSON if any line is, the explicit answer of the
first line that has one, the message category earliest in MESSAGE_ORDER that any line names.
`_text_verdict` is the search of the whole text, as _verdict was before: both must agree on any
text, with the line memo cold and warm, and `linewise` must refuse every pattern construct that
could match or look at a line break (the built-ins would then fall back to the whole text).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher import classify as classify_module
from watcher.classify import BUILTIN, linewise
from watcher.model import Frame, LogEvent

from .test_classify_equivalence import _EXCEPTIONS, _TEXT, _WORDS, _corpus

# lines that name different categories, explicit answers of both kinds, JSON errors: the order
# in which they stand is what the line-by-line verdict must get right
_NAMING = [
    "limiting requests", "(AccessDenied)", "HTTP 429", "(ExpiredToken)", "in JSON at position 3",
    "Unexpected token", "connection refused", "timed out", "redis", "deadlock", "invalid",
    "nil pointer dereference", "permission denied", "openai", "upstream", "400", "quota exceeded",
]  # fmt: skip
_LINE = st.one_of(_TEXT, st.sampled_from(_NAMING), st.sampled_from(_WORDS))
_LINES = st.lists(_LINE, max_size=7).map("\n".join)


def _fresh(exc: str, text: str) -> classify_module._Verdict:
    """_verdict with its memos cleared (what the lines say is searched again)."""
    classify_module.clear_memo()
    return classify_module._verdict(exc, text)


def _whole(exc: str, text: str) -> classify_module._Verdict:
    return classify_module._text_verdict(exc, text)


@settings(max_examples=800, deadline=None)
@given(_EXCEPTIONS, _LINES)
def test_the_lines_decide_what_the_whole_text_decides(exc: str | None, text: str) -> None:
    exc = exc or ""
    assert _fresh(exc, text) == _whole(exc, text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_EXCEPTIONS, _LINES), min_size=2, max_size=6))
def test_remembered_lines_decide_like_new_ones(pairs: list[tuple[str | None, str]]) -> None:
    """The line memo warm from other texts (the texts' own verdict memo cleared)."""
    classify_module.clear_memo()
    for exc, text in pairs:
        exc = exc or ""
        classify_module._verdict.cache_clear()
        assert classify_module._verdict(exc, text) == _whole(exc, text)
        classify_module._verdict.cache_clear()
        assert classify_module._verdict(exc, text[::-1]) == _whole(exc, text[::-1])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("aeiou rst\n\r\t4290:()-_\u0130\u017f\u212a"), max_size=80))
def test_any_characters_and_line_breaks(text: str) -> None:
    assert _fresh("", text) == _whole("", text)


def test_the_corpus_texts_decide_alike() -> None:
    """Every error event of the repository's logs, one by one and all in a row."""
    pairs = [
        (classify_module._exception_text(e), classify_module._event_text(e))
        for e in _corpus()
        if e.is_error
    ]
    assert sum("\n" in text for _, text in pairs) > 300
    for exc, text in pairs:
        assert _fresh(exc, text) == _whole(exc, text)
    classify_module.clear_memo()
    assert [classify_module._verdict(*p) for p in pairs] == [_whole(*p) for p in pairs]


def test_the_built_in_patterns_are_searched_line_by_line() -> None:
    assert classify_module._LINEWISE
    assert all(linewise(c.message) for c in BUILTIN)


@pytest.mark.parametrize(
    "pattern",
    [
        r"a\sb", r"a\Wb", r"a\Db", r"a[^x]b", r"^a", r"a$", r"\Aa", r"a\Z", r"(?<=a)b",
        r"a(?=\n)", r"a(?!b)", r"(?s)a.b", r"(?m)^a", r"a\nb", "a\nb", r"a\x0ab", r"a[\t-\r]b",
        r"a\Bb", r"a\012b", r"a\u000ab", r"(?x)a b",
    ],
)  # fmt: skip
def test_a_pattern_that_can_see_a_line_break_is_searched_whole(pattern: str) -> None:
    assert not linewise(re.compile(pattern, re.IGNORECASE))


@pytest.mark.parametrize("pattern", [r"\bredis\b", r"model .{0,200} x", r"a[ _-]?b", r"\d+\S"])
def test_patterns_without_line_breaks_are_searched_line_by_line(pattern: str) -> None:
    assert linewise(re.compile(pattern, re.IGNORECASE))


# --- the client library of the frames, file by file ----------------------------------------------


def _reference_client(event: LogEvent) -> str | None:
    """_by_client_frames as it was: the needles searched in the joined, lower-cased paths."""
    library = " ".join(f.file for f in event.frames if not f.in_app).lower()
    for name, needles in classify_module.CLIENT_FRAMES:
        for needle in needles:
            if needle in library:
                return name
    return None


_PATHS = st.sampled_from(
    [
        "/usr/lib/python3/site-packages/psycopg2/pool.py", "node_modules/ioredis/built/redis.js",
        "/x/redis-py/client.py", "/gems/activerecord/lib/base.rb", "org/hibernate/jdbc/Work.java",
        "/app/orders.py", "node_modules/axios/lib/core.js", "/srv/MySQL/Conn.cs", "HIKARI/x",
        "/pkg/mod/github.com/jackc/pgx/conn.go", "/DALLI/", "", " ", "mem cache", "memcache",
    ]
)  # fmt: skip
_CLIENT_FRAMES = st.lists(
    st.builds(Frame, file=_PATHS, line=st.just(1), function=st.just("f"), in_app=st.booleans()),
    max_size=6,
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_CLIENT_FRAMES, min_size=1, max_size=4))
def test_the_client_library_file_by_file_is_the_joined_paths(batches: list[list[Frame]]) -> None:
    """Cold and warm (the files' memo filled by the other events): the same library."""
    classify_module.clear_memo()
    for _ in range(2):
        for frames in batches:
            event = LogEvent(message="x", level="error", frames=frames)
            found = classify_module._by_client_frames(event)
            assert (found.name if found else None) == _reference_client(event)


# --- the lines of a multi-line report, remembered after its first line ---------------------------


def _reference_report_lines(report: str) -> list[str]:
    """_event_text's lines of a multi-line report as it took them, every time."""
    return [
        ln
        for ln in report[:3000].splitlines()[1:24]
        if not ln.lstrip().startswith(("at ", 'File "', "from ", "#")) and ".go:" not in ln
    ]


_REPORT_LINE = st.sampled_from(
    [
        "2026-11-21 06:00:01,746 ERROR [api] failed", "Traceback (most recent call last):",
        '  File "/app/a.py", line 1, in f', "    at fn (/app/x.js:1:2)", "\tat com.x.Y.z(Y.java:1)",
        "main.go:12 +0x1d", "#0 /srv/a.php(2): f()", "from /app/jobs.rb:18", "ValueError: bad",
        "", " ", "code: 'ETIMEDOUT'", "x" * 700, "é", "a\u2028b", "a\x85b", "tab\there",
        "\u00a0nbsp",
    ]
)  # fmt: skip
_BREAK = st.sampled_from(["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\u2029", "\n\n"])
_REPORTS = st.lists(st.tuples(_REPORT_LINE, _BREAK), min_size=1, max_size=30).map(
    lambda pairs: "".join(line + brk for line, brk in pairs)
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_REPORTS, min_size=1, max_size=4), st.sampled_from(["", "head\n", "2026 x\r\n"]))
def test_a_reports_lines_are_taken_alike_cold_and_warm(reports: list[str], head: str) -> None:
    """Any line breaks, long reports, first lines that are alike or not (the memo's key is the
    report after its first line)."""
    classify_module.clear_memo()
    for _ in range(2):
        for report in reports:
            for text in (report, head + report):
                assert list(classify_module._report_lines(text)) == _reference_report_lines(text)


def test_a_report_cut_at_3000_characters_is_cut_before_its_lines_are_taken() -> None:
    classify_module.clear_memo()
    report = "head\n" + "\n".join(f"{i} " + "y" * 700 for i in range(6))
    for text in (report, report[:2990], "other head\n" + report[5:]):
        assert list(classify_module._report_lines(text)) == _reference_report_lines(text)
