"""What a physical line can be to the record before it: the line kinds the assembler's rules
speak of (an ordinary record start, a blank or indented line, a trace start of some runtime, a
PostgreSQL continuation record, prose that runs on) and the record states they lead to.

Pure and cheap: the usual timestamped line costs one or two character checks.
"""

from __future__ import annotations

import re

from watcher.model import LEVEL_RANK
from watcher.parse.formats import ACCESS_LINE

WARNING_RANK = LEVEL_RANK["warning"]

# line kinds; every kind from TB on can start or continue a trace
(
    OTHER,
    BLANK,
    INDENT,
    JSON,
    PROSE,
    MAYBE,
    PG,
    AT0,
    TB,
    CHAIN,
    CAUSED,
    GOROUTINE,
    GOHEAD,
    EXC,
    JVM_HEAD,
    RUBY_HEAD,
    FRAME,
    NODE_PRE,
    RUBY_ERR,
    K8S,
) = range(20)
# record states
(
    OPEN,
    TENTATIVE,
    BODY,
    PY,
    PY_DONE,
    PY_CHAIN,
    GO,
    JMSG,
    RUBY,
    RUNON,
    NODE_PRE_S,
    JSON_ERR,
) = range(12)

_PREFIX_KINDS = (
    ("Traceback (most recent call last)", TB),
    ("During handling of the above exception", CHAIN),
    ("The above exception was the direct cause", CHAIN),
    ("Caused by: ", CAUSED),
    ("goroutine ", GOROUTINE),
    ("panic: ", GOHEAD),
    ("fatal error: ", GOHEAD),
    ("Exception in thread ", JVM_HEAD),
    ("Unhandled exception. ", JVM_HEAD),  # .NET's crash report
    ("Unhandled Exception: ", JVM_HEAD),
    ("PHP Fatal error: ", JVM_HEAD),
    ("PHP Warning: ", OTHER),
    ("Uncaught ", EXC),
    ("FATAL EXCEPTION: ", JVM_HEAD),  # Android's AndroidRuntime crash header
)
_PREFIXES = tuple(prefix for prefix, _ in _PREFIX_KINDS)
STATE_OF_HEAD = {
    TB: PY,
    CHAIN: PY_CHAIN,
    CAUSED: JMSG,
    GOROUTINE: GO,
    GOHEAD: GO,
    RUBY_HEAD: RUBY,
    FRAME: PY,
    NODE_PRE: NODE_PRE_S,
    RUBY_ERR: BODY,
    JVM_HEAD: BODY,
}

# "com.foo.BarException: msg" (a qualified class), "TypeError: msg" / "Error" (JS), .NET's
# "Npgsql.NpgsqlException (0x80004005): msg"
_EXC_HEADER = re.compile(
    r"(?:(?:[A-Za-z_$][\w$]*\.)+[A-Z][\w$]*|(?:Uncaught )?[A-Z][\w$]*(?:Error|Exception|Rejection)"
    r"(?: \[[\w-]+\])?|Error)(?: \(0x[0-9A-Fa-f]+\))?(?::\s|:?\s*$)"
)
# Node's print of an error object without a stack: "[TypeError: fetch failed] {"
_BRACKET_ERROR = re.compile(r"\s*\[[A-Z]\w*(?:Error|Exception|Rejection)\b(?::|\])")
# Node's crash preamble: the throwing source location, alone on its line
_NODE_LOCATION = re.compile(
    r"(?:node:[\w/.-]+|(?:file://)?(?:[A-Za-z]:)?[^\s:]*\.(?:js|mjs|cjs|ts|jsx|tsx)):\d+$"
)
PY_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(?::|\s*$)")
# Ruby's first trace line: "app/models/user.rb:12:in `name': undefined method … (NoMethodError)"
_RUBY_HEADER = re.compile(r"\S+:\d+:in [`'].*\(([A-Z]\w*(?:::[A-Z]\w*)*)\)$")
# a Ruby Logger line: severity letter, process, progname and the request tags that open its text
RUBY_KEY = re.compile(r"([A-Z]), \[\S+ #(\d+)\]\s+\w+ -- ([^:]*): ((?:\[[^\]]*\] ?)*)")
# a line that starts a new record rather than continuing a message
_LEVEL_START = r"(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|FATAL|CRITICAL)\b"
RECORD_HEAD = re.compile(r"[\d\[<{]|[\w.-]+=|[A-Z], \[|" + _LEVEL_START, re.IGNORECASE)
# the same for a Ruby record, whose message lines may start with "[" ("[HTTP 503] …")
RUBY_STOP = re.compile(r"[\d{]|[\w.-]+=|[A-Z], \[|" + _LEVEL_START, re.IGNORECASE)
# prose that cannot start a record: no level word, timestamp, key=value, path or bracket
_NOT_PROSE = re.compile(
    r"[\d\[<{(/\\>$@*|=+-]|[\w.-]+=|[A-Z], \[|\w+:\s|" + _LEVEL_START, re.IGNORECASE
)
FRAME_LINE = re.compile(r"\s+(?:at |\.\.\. \d+ more|from )")
GO_FUNC = re.compile(r"[^\s(]+\(.*\)$|created by |\[signal |exit status ")
# an indented line that is itself a timestamped log line does not continue anything
_INDENTED_LOG = re.compile(r"\s+\d{4}-\d\d-\d\d[T ]\d\d:")
# PostgreSQL's continuation records ("DETAIL:  …", two spaces), after any log_line_prefix
_PG_KEYS = ("DETAIL:  ", "HINT:  ", "CONTEXT:  ", "STATEMENT:  ", "QUERY:  ", "LOCATION:  ")
_PG_CONT = re.compile(r"(?:.{0,160}?[\s\]:])?(?:DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):  ")
# a kubectl describe / get events row of type Warning: each row is an event of its own
_K8S_WARNING = re.compile(r"\s*(?:\S+\s+){0,6}?Warning\s+[A-Z]\w+\s")
# a column-0 .NET/JVM frame or async boundary, as journald and some log viewers leave them
AT0 = re.compile(r"at [\w$.<>`|\[\],+-]+[.(:]")
# a head that announces an error without a level: words of failure, or a line ending in ":"
FAILURE_WORDS = re.compile(
    r"(?i)\b(?:error|errors|exception|fail(?:ed|ure)?|fatal|panic|traceback|unhandled|uncaught"
    r"|crash(?:ed)?|abort(?:ed)?|rejection)\b"
)
# access log lines and request summaries: traffic, not a report of an error
ACCESS_LOG = ACCESS_LINE

PHP_CONT = re.compile(r"Stack trace:$|#\d+ \S|\{main\}")
ATTACHED = frozenset((TB, EXC, FRAME, CAUSED, RUBY_ERR))
TRACE_STARTS = frozenset((TB, EXC, GOHEAD, JVM_HEAD, FRAME, NODE_PRE, RUBY_ERR))


def line_kind(text: str) -> int:
    """What a line could be to the record before it; ordinary log lines cost one or two checks."""
    first = text[:1]
    if first == "{":
        return JSON
    if first == " " or first == "\t":
        return indented_kind(text)
    if not first:
        return BLANK
    if first.isdigit() or first == "[":
        if first == "[" and text[1:2].isupper() and _BRACKET_ERROR.match(text):
            return EXC
        return PG if ":  " in text and _PG_CONT.match(text) else OTHER
    if first.islower():
        equals = text.find("=", 1, 40)
        if equals > 0 and text.find(" ", 0, equals) < 0:
            return OTHER  # logfmt ("time=… level=info …"): a record of its own, nothing more
    if text[1:4] == ", [" and first in "EFA":
        return RUBY_HEAD  # Ruby Logger "E, [time #pid] ERROR -- prog: msg"
    if text.startswith(_PREFIXES):
        for prefix, kind in _PREFIX_KINDS:
            if text.startswith(prefix):
                if kind == GOROUTINE and " [" not in text:
                    return OTHER
                return kind
    if text.startswith(_PG_KEYS):
        return PG
    if _EXC_HEADER.match(text):
        return EXC
    if (first == "/" or first.isalpha()) and _RUBY_HEADER.match(text):
        return RUBY_ERR  # "app.rb:12:in `f': msg (Error)": a frame itself, not on probation
    if first == "a" and text.startswith("at ") and AT0.match(text):
        return AT0
    if first == "-" and text.startswith(("--- End of ", "---> ")):
        return AT0  # .NET's async boundary and inner exception, unindented by journald
    if text[-1:].isdigit() and " " not in text and _node_location(text):
        return NODE_PRE
    # whether it is prose (a message that runs on) only matters under an error record: the
    # caller decides with resolve_prose() when it does
    return MAYBE


def _node_location(text: str) -> bool:
    """ "file.js:12" alone on its line: digits after the last colon, no space (cheap checks
    first: most lines ending in a digit are "status=200" and the like)."""
    colon = text.rfind(":")
    return (
        colon > 0
        and text[colon + 1 :].isdigit()
        and " " not in text
        and bool(_NODE_LOCATION.match(text))
    )


def resolve_prose(kind: int, text: str) -> int:
    """What the fast path leaves open, decided where it matters (under a record that may be an
    error): MAYBE is PROSE for a line that cannot start a record, else OTHER; an OTHER line
    may be a PostgreSQL continuation record."""
    if kind == MAYBE:
        return OTHER if _NOT_PROSE.match(text) else PROSE
    if kind == OTHER and ":  " in text and _PG_CONT.match(text):
        return PG
    return kind


def indented_kind(text: str) -> int:
    """What a line that starts with white space is: blank, a frame, an indented log line…"""
    if text.isspace():
        return BLANK
    stripped = text.lstrip()
    # _INDENTED_LOG's white space ends where its digit must follow: no digit, no match to try
    if text[1:2].isspace() and stripped[:1].isdigit() and _INDENTED_LOG.match(text):
        return OTHER
    if stripped.startswith('File "'):
        return FRAME
    if stripped[:1] == "[" and _BRACKET_ERROR.match(text):
        return EXC
    if "Warning" in text and _K8S_WARNING.match(text):
        return K8S
    return INDENT


def may_have_prefix(text: str, first: str) -> bool:
    """A cheap look at a line that starts with neither a digit nor "[" or "{": could
    strip_prefix find something? (journald's "Mar 04 …", a compose "api-1  | ", a terminal
    glyph, colours at the start). Colours inside an ordinary letter-first line are left alone:
    looking for them costs a scan of every such line."""
    if first.isupper():
        return text[3:4] == " " and text[6:7] == " "
    if first.islower():
        return text.find("| ", 0, 72) >= 0
    if first == " ":
        return not text[:12].lstrip()[:1].isascii()  # a glyph after the indent
    return first != "\t"
