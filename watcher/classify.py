"""What an error is: category, severity, fixable — user rules first, then the built-ins.

Pure functions over a LogEvent; no I/O. The built-in table follows the original error-monitor
spec: nine categories, each with a default fixable flag and a suggested fix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from watcher.memo import remember
from watcher.model import LEVEL_RANK, SEVERITIES, SEVERITY_RANK, Classification, LogEvent
from watcher.parse.traces import TRACE_KEYS


@dataclass(frozen=True, slots=True)
class Category:
    """One built-in category: how to recognise it and what to do about it."""

    name: str
    fixable: bool
    suggested_fix: str
    base_severity: str
    exception: re.Pattern[str] | None  # matched against the exception type
    message: re.Pattern[str] | None  # matched against the message and exception message


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Order matters: the first matching category wins, so narrow categories (rate limit, timeout,
# auth) come before broad ones (provider, external service) that would also match their text.
BUILTIN: tuple[Category, ...] = (
    # crashes first: "invalid memory address" must not read as a validation error
    Category(
        "internal_error",
        False,
        "",
        "high",
        _rx(r"NullPointer|NilPointer|Segmentation|SIGSEGV|StackOverflow|OutOfMemory"),
        _rx(
            r"nil pointer dereference|segmentation (fault|violation)|index out of range"
            r"|\bSIGSEGV\b|stack overflow|out of memory|goroutines are asleep|concurrent map"
        ),
    ),
    Category(
        "rate_limit_error",
        True,
        "Add exponential backoff with jitter and queue requests; respect Retry-After.",
        "medium",
        _rx(r"RateLimit|Throttl|TooManyRequests"),
        _rx(
            r"\brate[ _-]?limit|\btoo many requests\b|\bthrottl|\b429\b|quota exceeded"
            r"|slow ?down|request limit|limiting requests|limiting connections|limit_req"
        ),
    ),
    Category(
        "timeout_error",
        True,
        "Tune timeouts, add a deadline per call, and retry idempotent calls once.",
        "medium",
        _rx(r"Timeout|TimedOut|DeadlineExceeded|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT"),
        _rx(
            r"\btimed? ?out\b|\btimeout\b|deadline exceeded|\b504\b|gateway time-?out"
            r"|took too long|read timeout|connect timeout|\bETIMEDOUT\b|waited \d+ sec"
        ),
    ),
    Category(
        "auth_error",
        True,
        "Rotate or refresh the credential; refresh tokens before expiry.",
        "high",
        _rx(
            r"Auth|Unauthori[sz]ed|Forbidden|PermissionDenied|InvalidToken|ExpiredSignature"
            r"|AccessDenied|InvalidAccessKey|SignatureDoesNotMatch"
        ),
        _rx(
            r"\bunauthori[sz]ed\b|\bforbidden\b|\b401\b|\b403\b|invalid (api )?(key|token)"
            r"|token (has )?expired|expired token|signature has expired|authentication failed"
            r"|permission denied|access denied|invalid credentials|not authenticated"
            r"|accessdenied|rejects connection|no pg_hba\.conf entry|password does not match"
        ),
    ),
    Category(
        "database_error",
        True,
        "Use connection pooling with health checks, retry transient errors, check DB capacity.",
        "high",
        _rx(
            r"OperationalError|DatabaseError|IntegrityError|InterfaceError|ProgrammingError"
            r"|SQL|Psycopg|asyncpg|PDO|Mongo|Sequelize|Prisma|Hibernate|JDBC|DataAccess"
            r"|DeadlockDetected|UniqueViolation|springframework.dao|LockAcquisition|CannotAcquireLock"
            r"|Npgsql|ServerSelection|Hikari|QueuePool|ActiveRecord|PersistenceException|MyBatis"
        ),
        _rx(
            r"\bdatabase\b|\bpostgres|\bmysql|\bsqlite|\bmongo|\bdeadlock"
            r"|too many (connections|clients)"
            r"|connection pool|\bSQLSTATE|relation \"?\w+\"? does not exist|duplicate key"
            r"|could not connect to server|\bORM\b|psycopg|connection pool has been exhausted"
            r"|server has gone away|duplicate entry|unique constraint|walreceiver"
        ),
    ),
    Category(
        "cache_error",
        True,
        "Fall back to the source of truth when the cache fails; add a circuit breaker.",
        "medium",
        _rx(r"Redis|Memcache|Cache"),
        _rx(r"\bredis\b|\bmemcache|\bcache\b|ioredis|rediss?://|redis::"),
    ),
    Category(
        "provider_error",
        True,
        "Add retry logic with backoff for the provider, and a fallback model/provider.",
        "high",
        _rx(r"OpenAI|Anthropic|APIStatusError|APIConnectionError|InternalServerError|Overloaded"),
        _rx(
            r"\bopenai\b|\banthropic\b|\bclaude\b|\bgpt-|\bgemini\b|\bcohere\b|\bbedrock\b"
            # bounded: `model .*` re-scans the line from every "model " (quadratic, 1.5 s on a
            # 64 KiB line of them)
            r"|\boverloaded\b|\bllm\b|model .{0,200} (unavailable|not found)|overloaded_error"
        ),
    ),
    Category(
        "external_service_error",
        True,
        "Retry with backoff and a fallback for the upstream service; alert its owner.",
        "medium",
        _rx(r"ConnectionError|ConnectError|HTTPError|ClientError|Upstream|Stripe|Twilio|Boto"),
        _rx(
            r"\bupstream\b|\b50[023]\b|bad gateway|service unavailable|connection (refused|reset)"
            r"|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENOTFOUND|\bstripe\b|\btwilio\b|\bs3\b"
            r"|\bsendgrid\b|name resolution|no route to host|remote end closed"
            r"|contacting|could not contact|\bbackend\b|mod_jk|\bproxy\b"
        ),
    ),
    Category(
        "validation_error",
        False,
        "",
        "low",
        _rx(
            r"Validation|ValueError|BadRequest|Unprocessable|Schema|Invalid|Malformed|Parse"
            r"|JSONDecode|JsonException"
            # the JVM's and .NET's ValueError of a number or date read from input
            r"|NumberFormatException|\bFormatException"
        ),
        _rx(
            r"\bvalidation\b|\binvalid\b|\b400\b|\b422\b|bad request|unprocessable"
            r"|\bmissing (required )?field|field required|is not a valid|malformed"
            r"|in JSON at position|JSON\.parse|unexpected token"
        ),
    ),
)

INTERNAL = Category(
    "internal_error",
    False,
    "",
    "high",
    None,
    None,
)

CATEGORY_BY_NAME = {c.name: c for c in (*BUILTIN, INTERNAL)}

# --- literal hints: a cheap "cannot match" before each regex search ------------------------------
# An IGNORECASE search of these alternations costs ~5 us even when nothing matches (sre tries
# every alternative at every position). Each top-level alternative starts with a literal run, so
# a lower-cased ASCII text that contains none of a pattern's leading literals cannot match it.

_LITERAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-")
_QUANTIFIERS = frozenset("?*{")


def alternatives(pattern: str) -> list[str]:
    """The pattern split at its top-level `|` (not inside groups, classes or escapes)."""
    parts, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


def _leading_literal(alternative: str) -> str:
    """The literal text every match of `alternative` starts with ("" when there is none)."""
    text = alternative.removeprefix("\\b")
    end = 0
    while end < len(text) and text[end] in _LITERAL_CHARS:
        end += 1
    if end < len(text) and text[end] in _QUANTIFIERS:
        end -= 1  # "timed?": the last character is optional
    return text[:end].lower() if end > 0 else ""


def literal_hints(pattern: re.Pattern[str] | None) -> tuple[str, ...] | None:
    """Lower-cased literals one of which every match contains; None when some branch has none."""
    if pattern is None or pattern.flags & re.VERBOSE:
        return None
    hints = [_leading_literal(alt) for alt in alternatives(pattern.pattern)]
    return None if "" in hints else tuple(dict.fromkeys(hints))


def _may_match(hints: tuple[str, ...] | None, low: str | None) -> bool:
    if hints is None or low is None:
        return True  # no hints, or a non-ASCII text whose case folding the hints cannot model
    for hint in hints:  # noqa: SIM110 - a loop, since any() with a generator is slower
        if hint in low:
            return True
    return False


_HINTS = tuple((literal_hints(c.exception), literal_hints(c.message)) for c in BUILTIN)
# Structured fields that carry the error's own words (logrus/zap/slog `err`, pino `err.message`).
ERROR_FIELDS = ("error", "err", "error.message", "err.message", "exception", "reason", "cause")


# --- user rules: RE2, so that no rule can take more than linear time --------------------------
# Rules run on every error event, and a user's regex such as `(a+)+$` takes Python's backtracking
# `re` exponential time on a line an attacker can write. RE2 (google-re2) matches in time linear
# in the text whatever the pattern. It has no backreferences, lookaround, atomic groups or
# possessive quantifiers; a rule using one is refused with its name and the construct, rather
# than run with `re` behind a heuristic: no static check catches every super-linear pattern
# (`(x|x)*y`, `\d*\d*\d*$` …), and a timeout cannot interrupt `re`, which holds the GIL.

RULE_ENGINE = "re2"


class Matcher(Protocol):
    """A compiled regex as rules use it (an RE2 `_Regexp`; tests may pass a `re.Pattern`)."""

    def search(self, text: str) -> object: ...


# RE2's parse errors -> the construct a Python-style pattern used, for the config error
_UNSUPPORTED = (
    ("(?=", "lookahead (?=…)"),
    ("(?!", "negative lookahead (?!…)"),
    ("(?<=", "lookbehind (?<=…)"),
    ("(?<!", "negative lookbehind (?<!…)"),
    ("(?>", "atomic group (?>…)"),
    ("(?(", "conditional group (?(…)…)"),
    ("(?#", "comment group (?#…)"),
    ("\\Z", "\\Z (RE2 spells the end of text \\z)"),
    ("bad repetition operator", "possessive quantifier (*+, ++, ?+)"),
    ("invalid repetition size", "repetition count over 1000"),
    ("pattern too large", "pattern too large for RE2's memory bound"),
)
_BACKREF = re.compile(r"invalid escape sequence: \\[1-9]")


@functools.cache
def _re2() -> tuple[Any, Any]:
    """The google-re2 module and the options rules compile with (imported only if rules exist)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    return re2, options


def _unsupported(reason: str) -> str:
    """The construct RE2 refused, named the way a Python regex writes it."""
    if _BACKREF.search(reason):
        return "backreference (\\1 …)"
    for needle, construct in _UNSUPPORTED:
        if needle in reason:
            return construct
    if reason.endswith("(?P"):  # RE2 has (?P<name>…) but not (?P=name)
        return "named backreference (?P=…)"
    flags = re.search(r"invalid perl operator: \(\?([a-zA-Z]+)", reason)
    if flags:
        return f"inline flag (?{flags.group(1)}) (RE2 knows i, m, s and U)"
    return reason


class RuleRegex:
    """A user rule's regex under RE2; `search` is True/False and never raises on any text."""

    __slots__ = ("_rx", "pattern")

    def __init__(self, pattern: str, rx: Any) -> None:
        self.pattern, self._rx = pattern, rx

    @property
    def engine(self) -> str:
        """The module matching this rule: "re2" (linear time), never the backtracking "re"."""
        return type(self._rx).__module__

    def search(self, text: str) -> bool:
        """Whether the regex matches anywhere in `text`."""
        # bytes in, so the wrapper skips its offset bookkeeping; a lone surrogate (JSON "\\ud800")
        # cannot be UTF-8 and becomes "?" instead of raising
        return self._rx.search(text.encode("utf-8", "replace")) is not None

    def __repr__(self) -> str:
        return f"RuleRegex({self.pattern!r})"


def compile_rule(pattern: str) -> RuleRegex:
    """A user rule's regex, compiled with RE2 (linear time in the text, whatever the pattern).

    Raises ValueError naming the problem: an invalid pattern, or a construct RE2 lacks.
    """
    re2, options = _re2()
    try:
        encoded = pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("invalid regular expression: a lone surrogate is not text") from None
    try:
        return RuleRegex(pattern, re2.compile(encoded, options))
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args else str(exc)
        try:
            re.compile(pattern)
        except re.error as py_exc:
            raise ValueError(f"invalid regular expression: {py_exc}") from None
        raise ValueError(
            f"{_unsupported(reason)} is not supported: rules use RE2, a linear-time engine "
            "(no lookaround, backreferences, atomic groups or possessive quantifiers)"
        ) from None


@dataclass(frozen=True, slots=True)
class Rule:
    """A user rule from `[[classify.rules]]`: a regex over chosen fields, and what it sets."""

    match: Matcher
    on: tuple[str, ...] = ("message", "exception", "logger")
    category: str | None = None
    severity: str | None = None
    fixable: bool | None = None
    ignore: bool = False
    name: str = "rule"


def rule_subject(event: LogEvent, fields: Iterable[str]) -> str:
    """The text a rule's regex runs over: the chosen fields joined by newlines."""
    parts: list[str] = []
    for name in fields:
        if name == "message":
            parts.append(event.message)
        elif name == "exception":
            parts.append(f"{event.exception_type or ''}: {event.exception_message or ''}")
        elif name == "logger":
            parts.append(event.logger or "")
        elif name == "source":
            parts.append(event.source)
        elif name == "text":
            parts.append(event.text or event.message)
    return "\n".join(parts)


# The exception pass names the failing resource before the symptom: a connection pool that
# timed out is a database error ("Npgsql…Exception ---> TimeoutException"), a Redis client that
# timed out a cache error. The message pass reads symptoms first: "failed to connect to database:
# context deadline exceeded" is a timeout.
EXCEPTION_ORDER = (
    "internal_error",
    "rate_limit_error",
    "auth_error",
    "cache_error",
    "database_error",
    "timeout_error",
    "provider_error",
    "external_service_error",
    "validation_error",
)
MESSAGE_ORDER = (
    "internal_error",
    "rate_limit_error",
    "auth_error",
    "cache_error",
    "timeout_error",
    "database_error",
    "provider_error",
    "external_service_error",
    "validation_error",
)
# which client library threw, from the library frames' paths: the resource that failed
CLIENT_FRAMES = (
    (
        "cache_error",
        (
            "/ioredis/",
            "/redis/",
            "redis-py",
            "/jedis/",
            "lettuce",
            "stackexchange",
            "memcache",
            "/dalli/",
        ),
    ),
    (
        "database_error",
        (
            "psycopg",
            "sqlalchemy",
            "django/db/",
            "@prisma",
            "pymongo",
            "mysql",
            "/jdbc",
            "hikari",
            "npgsql",
            "sequelize",
            "typeorm",
            "knex",
            "activerecord",
            "active_record",
            "asyncpg",
            "/pg/lib",
            "mongoose",
            "mybatis",
        ),
    ),
)
# a parse error of an incoming request body: the client sent bad data
_BODY_PARSER = re.compile(
    r"(?i)body-parser|raw-body|express/lib|request\.get_json|/rest_framework/"
    r"parsers|starlette/requests|request body"
)
_HTTP_CLIENT = re.compile(
    r"(?i)/requests/models|axios|node-fetch|undici|okhttp|/httpx/|aiohttp/client"
)
_JSON_PARSE = re.compile(
    r"(?i)in JSON at position|JSONDecodeError|JsonParseException|JsonException"
    r"|Unexpected token|Expecting value"
)

_ORDERED = {name: i for i, name in enumerate(c.name for c in BUILTIN)}
_EXPLICIT = re.compile(
    r"(limiting requests|limiting connections|\bHTTP (?:Error )?429\b|\b429 Too Many Requests\b)"
    r"|\((?:AccessDenied|UnauthorizedOperation|InvalidClientTokenId|ExpiredToken|Forbidden)\)"
)


def _event_text(event: LogEvent) -> str:
    """Message, exception message, the cause chain and the error's own fields, capped."""
    text = event.message
    if event.exception_message:
        text = f"{text}\n{event.exception_message}"
    if event.frames and "Caused by: " in event.text:
        # a JVM wrapper's root cause names the real failure ("deadlock detected"); a trace a
        # JSON record carries in a field has its lines in that field, not in the record's
        causes = [ln for ln in _trace_text(event).splitlines() if ln.startswith("Caused by: ")]
        text = "\n".join([text, *causes])[:4000]
    elif event.line_count > 1 and event.text:
        # the other lines of a multi-line report (".NET ---> inner", Node "code: 'ETIMEDOUT'",
        # PostgreSQL DETAIL, a Rails block's exception line) without its frames
        # (the first 24 lines, 1,500 characters: the words that name a failure come early)
        text = "\n".join([text, *_report_lines(event.text)])[:1500]
    fields = event.fields
    # (most records hold none of these fields: one set test instead of a look-up per key)
    for key in ERROR_FIELDS if fields and not fields.keys().isdisjoint(ERROR_FIELDS) else ():
        value = fields.get(key)
        if isinstance(value, str):
            text = f"{text}\n{value[:2000]}"
        elif isinstance(value, dict) and isinstance(value.get("message"), str):
            text = f"{text}\n{value['message'][:2000]}"
    return text


def _report_lines(report: str) -> Sequence[str]:
    """Lines 2 to 24 of a multi-line report's first 3,000 characters, without its frames."""
    end = report.find("\n")
    # the lines after the first repeat from event to event (the mixed log: 3,127 multi-line error
    # events, 1,277 different after their first line): what they keep is remembered. Only where
    # the first line ends at its "\n" (no other line break in it: each is unprintable), and no
    # 3,000-character cut falls in the rest.
    if end >= 0 and len(report) <= 3000 and report[:end].isprintable():
        rest = report[end + 1 :]
        found = _REPORT_LINES.get(rest)
        if found is None:
            found = tuple(_without_frames(rest.splitlines()[:23]))
            remember(_REPORT_LINES, rest, found, _REPORT_LINES_CAP, 3000)
        return found
    return _without_frames(report[:3000].splitlines()[1:24])


def _without_frames(lines: list[str]) -> list[str]:
    return [ln for ln in lines if not ln.lstrip().startswith(_FRAME_STARTS) and ".go:" not in ln]


_REPORT_LINES: dict[str, tuple[str, ...]] = {}
_REPORT_LINES_CAP = 1024  # reports of at most 3,000 characters: ~3 MB at most; cleared when full


def _trace_text(event: LogEvent) -> str:
    """The lines of the event's trace: its own text, or the field a one-line record held it in."""
    if event.line_count > 1 or not event.fields:
        return event.text
    for key in TRACE_KEYS:
        value = event.fields.get(key)
        if isinstance(value, str) and "\n" in value:
            return value
    return event.text


def builtin_category(event: LogEvent) -> Category:
    """The first built-in category that the event's exceptions, client frames or words name."""
    return _resolve(_verdict(_exception_text(event), _event_text(event)), event)


# frame lines of the runtimes: their words are file and function names, not the failure's
_FRAME_STARTS = ("at ", 'File "', "from ", "#")


def _exception_text(event: LogEvent) -> str:
    exc = event.exception_type or ""
    causes = event.fields.get("causes") if event.fields else None
    if isinstance(causes, list) and causes:
        exc = " ".join([exc, *map(str, causes[:8])])
    return exc


# literal pre-checks (lower-cased) for the regexes below: most events contain none of them
_JSON_HINTS = ("json", "unexpected token", "expecting value")
_EXPLICIT_HINTS = (
    "limiting ",
    "429",
    "(accessdenied)",
    "(unauthorizedoperation)",
    "(invalidclienttokenid)",
    "(expiredtoken)",
    "(forbidden)",
)


def literal_trie(words: Iterable[str]) -> str:
    """A regex matching exactly where one of `words` (non-empty literals) starts, as a trie of
    alternatives: the engine tries one branch per distinct next character instead of one per
    word, so one search for ~120 literals costs about what 50 `in` tests did."""
    by_first: dict[str, list[str]] = {}
    for word in sorted(set(words)):
        by_first.setdefault(word[0], []).append(word[1:])
    branches = []
    for first, rests in by_first.items():
        longer = [rest for rest in rests if rest]
        if not longer:
            branches.append(re.escape(first))
            continue
        # a word that ends here makes the rest optional: "time" and "timeout" both start here
        tail = f"(?:{literal_trie(longer)})" + ("?" if "" in rests else "")
        branches.append(re.escape(first) + tail)
    return "|".join(branches)


# Every literal whose absence lets _verdict skip a regex pass (the JSON and explicit pre-checks
# and the message hints of every category): most error lines hold none of them (a flood of
# unique messages), and one search of them all costs less than the ~120 `in` tests their absence
# took one by one.
#
# sre runs its matcher at every position whose character can start a match, and the hints start
# with almost every letter (~450 instructions a character). So each hint is searched from its
# rarest character (by English letter frequency): the part before it is checked by a lookbehind
# once the rest has matched, and the matcher runs only where a rarer character stands. A branch
# that begins with `\b` keeps its word boundary (a negative lookbehind of a word character), so
# "seq=150" or "ref=a50f" no longer send a flood's line through every pass for "50".
# Per flood line: 34.5k -> 23.6k instructions; lines let through: 8 % -> 1.6 %.

# frequency of a character in English text (%); digits and punctuation by guess
_FREQUENCY = dict(
    zip(
        " etaoinsrhldcumfpgwybvkxjqz",
        (17, 10, 7.5, 6.5, 6, 6, 5.5, 5.5, 5, 4, 3.5, 3.5, 2.5, 2.5, 2, 1.8, 1.8, 1.6, 1.5, 1.5,
         1.2, 0.8, 0.6, 0.2, 0.1, 0.1, 0.1),
        strict=True,
    )
)  # fmt: skip
_FREQUENCY.update(dict.fromkeys("0123456789", 1.5), _=0.5)


def hint_literals() -> list[tuple[str, bool]]:
    """(literal, at a word start) for every branch of the message patterns and the JSON and
    explicit pre-checks; a literal that holds (or, at a word start, begins with) another is
    implied by it and left out."""
    found = {(h, False) for h in (*_JSON_HINTS, *_EXPLICIT_HINTS)}
    for cat in BUILTIN:
        for branch in alternatives(cat.message.pattern) if cat.message is not None else ():
            found.add((_leading_literal(branch), branch.startswith("\\b")))
    return sorted(
        (lit, bounded)
        for lit, bounded in found
        if not any(
            (other, o_bounded) != (lit, bounded)
            and (other in lit if not o_bounded else bounded and lit.startswith(other))
            for other, o_bounded in found
        )
    )


def anchored_hints(literals: Iterable[tuple[str, bool]]) -> str:
    """A regex matching where one of `literals` occurs (at a word start if flagged), each
    searched from its rarest character; a trie of the parts from there on."""
    trie: dict[str | None, Any] = {}
    for lit, bounded in literals:
        i = min(range(len(lit)), key=lambda k: (_FREQUENCY.get(lit[k], 1.0), k))
        node = trie.setdefault(lit[i], {})
        for ch in lit[i + 1 :]:
            node = node.setdefault(ch, {})
        check = f"(?<={re.escape(lit)})" if i else ""  # the part before the rarest character
        check += f"(?<!\\w{re.escape(lit)})" if bounded else ""  # \b: not after a word char
        node.setdefault(None, set()).add(check)
    return _render(trie, top=True)


def _render(node: dict[str | None, Any], top: bool = False) -> str:
    ends = node.get(None, set())
    if "" in ends:
        return ""  # a literal ends here unchecked: whatever follows is implied
    parts = [re.escape(ch) + _render(node[ch]) for ch in sorted(c for c in node if c is not None)]
    parts += sorted(ends)
    return "|".join(parts) if top or len(parts) == 1 else f"(?:{'|'.join(parts)})"


_ANY_HINT = (
    re.compile(anchored_hints(hint_literals())) if all(m is not None for _, m in _HINTS) else None
)


def _any_in(hints: tuple[str, ...], low: str | None) -> bool:
    if low is None:
        return True  # non-ASCII: let the regex decide
    for hint in hints:  # noqa: SIM110
        if hint in low:
            return True
    return False


# --- the passes over the words, memoized -----------------------------------------------------
# What the JSON, explicit, exception and message passes find depends only on the two strings
# (exception names, event text); the frames and the logger only break ties between them. Retries
# and floods repeat those strings within a few events (46 % of the mixed log's error events
# repeat one of the previous 256), so the verdict of the strings is memoized, and the cheap
# frame and logger checks run on every event.

_MEMO_SIZE = 512  # repeats come close together: 256 catch 99 % of what 16,384 would


class _Verdict(NamedTuple):
    """What an event's strings decide, before its frames and logger are looked at."""

    json: bool  # a JSON parse error: the frames say whose (a request body's or an upstream's)
    decided: Category | None  # a service's explicit answer or the exception type: final
    message: Category | None  # the words' category, if no client library in the frames names one


def _resolve(verdict: _Verdict, event: LogEvent) -> Category:
    """The category, in the passes' order: JSON, explicit/exception, client frames, message."""
    if verdict.json:
        found = _json_by_frames(event)
        if found is not None:
            return found
    if verdict.decided is not None:
        return verdict.decided
    if event.frames:
        found = _by_client_frames(event)
        if found is not None:
            return found
    return verdict.message or _MESSAGELESS.get(event.logger or "", INTERNAL)


def _json_by_frames(event: LogEvent) -> Category | None:
    """Whose JSON failed to parse: an upstream's response, or the client's request body."""
    where = " ".join(f.file for f in event.frames) + " " + event.message
    if _HTTP_CLIENT.search(where):
        return CATEGORY_BY_NAME["external_service_error"]  # an upstream's bad response
    if _BODY_PARSER.search(where) or not event.frames:
        return CATEGORY_BY_NAME["validation_error"]  # the client's bad request body
    return None


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _verdict(exc: str, text: str) -> _Verdict:
    """The JSON, explicit, exception and message passes over the exception names and text."""
    if not _LINEWISE:
        return _text_verdict(exc, text)
    # line by line (see _LINEWISE): a trace's lines repeat from event to event, only its first
    # line (ids, numbers) is new, so each line's passes are remembered (_line_passes)
    memo = _LINES
    json = False
    explicit = 0
    hinted: list[list[Any]] = []  # the lines with a hint: only they can name a category
    for line in text.split("\n"):
        entry = memo.get(line)
        if entry is None:
            entry = _line_passes(line)
            remember(memo, line, entry, _LINES_CAP, _LONGEST_LINE)
        if entry is _QUIET:
            continue
        hinted.append(entry)
        if entry[0]:
            json = True
        if not explicit:
            explicit = entry[1]  # the first explicit answer in the text decides, as a search does
    if not json and exc:
        json = _exception_json(exc)
    if explicit:
        # a service's explicit answer (nginx "limiting requests", S3 "(AccessDenied)") outranks
        # a client's generic exception type (botocore's ClientError, an HTTPError)
        return _made_verdict(json, _EXPLICIT_CATEGORIES[explicit], None)
    found = _exception_category(exc)
    if found is not None:
        return _made_verdict(json, found, None)
    # the first category in MESSAGE_ORDER that matches anywhere: the earliest of each line's
    best = _NO_MESSAGE
    for entry in hinted:
        position = entry[2]
        if position < 0:
            position = entry[2] = _message_position(entry[3])
        if position < best:
            best = position
    return _made_verdict(json, None, _MESSAGE_CATEGORIES[best])


def _text_verdict(exc: str, text: str) -> _Verdict:
    """_verdict over the whole text at once: for patterns a line-by-line search could not
    stand in for (see _LINEWISE)."""
    low_all = f"{exc}\n{text}".lower() if (exc.isascii() and text.isascii()) else None
    if low_all is not None and _ANY_HINT is not None and _ANY_HINT.search(low_all) is None:
        # no hint of the JSON, explicit or message passes: only the exception type can decide
        return _NO_HINT_VERDICT[_exception_category(exc)]
    json = _any_in(_JSON_HINTS, low_all) and (
        _JSON_PARSE.search(exc) is not None or _JSON_PARSE.search(text) is not None
    )
    explicit = _EXPLICIT.search(text) if _any_in(_EXPLICIT_HINTS, low_all) else None
    if explicit:
        # a service's explicit answer (nginx "limiting requests", S3 "(AccessDenied)") outranks
        # a client's generic exception type (botocore's ClientError, an HTTPError)
        cat = CATEGORY_BY_NAME["rate_limit_error" if explicit.group(1) else "auth_error"]
        return _Verdict(json, cat, None)
    found = _exception_category(exc)
    if found is not None:
        return _Verdict(json, found, None)
    return _Verdict(json, None, _message_category(text, low_all))


# the verdicts of a text without hints, made once (a NamedTuple costs ~1.5k instructions to make)
_NO_HINT_VERDICT = {cat: _Verdict(False, cat, None) for cat in (None, *BUILTIN)}
_VERDICTS: dict[tuple[bool, Category | None, Category | None], _Verdict] = {}


def _made_verdict(json: bool, decided: Category | None, message: Category | None) -> _Verdict:
    """The verdict of these parts, made once (the parts are a few dozen combinations)."""
    key = (json, decided, message)
    verdict = _VERDICTS.get(key)
    if verdict is None:
        verdict = _VERDICTS[key] = _Verdict(json, decided, message)
    return verdict


# --- the passes line by line -----------------------------------------------------------------
# A search of the whole text matches where it matches one of its lines, as long as no pattern
# can match or look at a line break: then the JSON pass is any line's, the explicit answer the
# first line's that has one, the message category the earliest (in MESSAGE_ORDER) any line
# names. What each line says is remembered: a trace's lines repeat from event to event (the
# mixed log's error events: 4,198 of 7,883 texts new to the memo of _verdict, most of their lines
# not), so only the new lines are searched. Per error event of the mixed log's first 200k
# lines, classify() took 127k instructions, 86k line by line.

# escapes that cannot match a line break nor look past one; every other escape (\s, \W, \D,
# \A, \Z, \B, a character by its code …) makes a pattern whole-text only
_SAFE_ESCAPE = re.compile(r"\\[bdwS]|\\[^A-Za-z0-9]")
_LINE_UNSAFE = ("[^", "^", "$", "(?<", "(?=", "(?!", "(?s", "(?m", "(?x", "(?#")


def linewise(pattern: re.Pattern[str] | None) -> bool:
    """Whether `pattern` finds a match in a text exactly where it finds one in one of the text's
    lines: no part of it can match a line break or look at one (no \\s, \\W, negated class,
    anchor, lookaround, DOTALL/MULTILINE/VERBOSE); `.` does not match a line break, and the
    edges of a line look like the edges of the text to \\b."""
    if pattern is None:
        return True
    if pattern.flags & (re.DOTALL | re.MULTILINE | re.VERBOSE):
        return False
    source = pattern.pattern
    if not source.isprintable():  # a raw control character (a line break, a tab range …)
        return False
    if any(token in source for token in _LINE_UNSAFE):
        return False
    return "\\" not in _SAFE_ESCAPE.sub("", source)


_LINES: dict[str, Any] = {}  # line -> _QUIET, or [json, explicit, message position, line]
_LINES_CAP = 8192  # cleared when full
_LONGEST_LINE = 512  # longer lines are searched every time (bounds the memo's memory)
_NO_MESSAGE = len(MESSAGE_ORDER)  # the message position of a line no message pattern names
_QUIET = (False, 0, _NO_MESSAGE)  # a line without a hint of any pass: most lines of a trace
_EXPLICIT_CATEGORIES = (None, CATEGORY_BY_NAME["rate_limit_error"], CATEGORY_BY_NAME["auth_error"])


def _line_passes(line: str) -> Any:
    """What one line says to the JSON and explicit passes (its message pass is made when a
    verdict needs it): _QUIET, or [json, explicit (1 a rate limit, 2 a refusal), -1, line]."""
    low = line.lower() if line.isascii() else None
    if low is not None and _ANY_HINT is not None and _ANY_HINT.search(low) is None:
        return _QUIET
    json = _any_in(_JSON_HINTS, low) and _JSON_PARSE.search(line) is not None
    explicit = _EXPLICIT.search(line) if _any_in(_EXPLICIT_HINTS, low) else None
    return [json, 0 if explicit is None else 1 if explicit.group(1) else 2, -1, line]


def _message_position(line: str) -> int:
    """The position in MESSAGE_ORDER of the first message pattern that matches the line."""
    low = line.lower() if line.isascii() else None
    for position, index in enumerate(_MESSAGE_INDEXES):
        if _may_match(_HINTS[index][1], low) and _search(
            _LOWERED[index][1], BUILTIN[index].message, line, low
        ):
            return position
    return _NO_MESSAGE


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _exception_json(exc: str) -> bool:
    """The JSON pass over the exception names."""
    return _JSON_PARSE.search(exc) is not None


def _message_category(text: str, low_all: str | None) -> Category | None:
    """The first category, in MESSAGE_ORDER, whose message pattern matches the text."""
    # the lower-cased text for the lower-cased patterns (ASCII: lower() keeps every offset)
    low = low_all[len(low_all) - len(text) :] if low_all is not None else None
    for index in _MESSAGE_INDEXES:
        cat, hints = BUILTIN[index], _HINTS[index][1]
        if _may_match(hints, low_all) and _search(_LOWERED[index][1], cat.message, text, low):
            return cat
    return None


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _exception_category(exc: str) -> Category | None:
    """The first category, in EXCEPTION_ORDER, whose exception pattern matches the names."""
    if not exc:
        return None
    low = exc.lower() if exc.isascii() else None
    for index in _EXCEPTION_INDEXES:
        cat, hints = BUILTIN[index], _HINTS[index][0]
        if _may_match(hints, low) and _search(_LOWERED[index][0], cat.exception, exc, low):
            return cat
    return None


def _search(
    lowered: re.Pattern[str] | None, pattern: re.Pattern[str] | None, text: str, low: str | None
) -> bool:
    """pattern.search(text), by its lower-cased twin over the lower-cased text when there is one."""
    if lowered is not None and low is not None:
        return lowered.search(low) is not None
    return pattern is not None and pattern.search(text) is not None


def clear_memo() -> None:
    """Forget the memoized verdicts (tests that compare the passes with and without it)."""
    _verdict.cache_clear()
    _exception_category.cache_clear()
    _exception_json.cache_clear()
    _LINES.clear()
    _CLIENT_OF_FILE.clear()
    _REPORT_LINES.clear()


# what an event no pattern names is, by its logger
_MESSAGELESS = {"postgres": CATEGORY_BY_NAME["database_error"]}  # the database server's report


def _by_client_frames(event: LogEvent) -> Category | None:
    """The category of the client library in the library frames' paths, if any: the first of
    CLIENT_FRAMES whose needle is in one of them (no needle holds a space, so none can span two
    paths of the space-joined text the needles were first looked for in)."""
    best = _NO_CLIENT
    memo = _CLIENT_OF_FILE
    for frame in event.frames:
        if frame.in_app:
            continue
        file = frame.file
        found = memo.get(file)
        if found is None:
            found = _client_of_file(file)
            remember(memo, file, found, _LINES_CAP, _LONGEST_LINE)
        if found < best:
            best = found
    return _CLIENT_CATEGORIES[best]


def _client_of_file(file: str) -> int:
    """The index in CLIENT_FRAMES of the first client library a library path names."""
    low = file.lower()
    for index, (_, needles) in enumerate(CLIENT_FRAMES):
        for needle in needles:
            if needle in low:
                return index
    return _NO_CLIENT


# a service's traces repeat the same library files: what each names is remembered (per event
# with library frames, ~3.7 us joining and searching the paths)
_CLIENT_OF_FILE: dict[str, int] = {}
_NO_CLIENT = len(CLIENT_FRAMES)
_CLIENT_CATEGORIES = (*(CATEGORY_BY_NAME[name] for name, _ in CLIENT_FRAMES), None)


# --- lower-cased patterns: case-sensitive search of lower-cased text -------------------------
# An IGNORECASE pattern cannot use sre's fast paths (a literal prefix, a set of first characters,
# skipping a branch on its first literal): on ASCII text, the same pattern lower-cased, searched
# case-sensitively over the lower-cased text, finds the same matches 1.3-2.6x faster.

# \S, \W, \B …: lower-casing changes what they mean; \x41, \u0041, \101 name a character by
# its code, which may be an upper-case letter the lower-cased text never holds
_UPPER_ESCAPE = re.compile(r"\\(?:[A-Zxu0]|[1-7][0-7]{2})")
_CLASS = re.compile(r"\[(?:\\.|[^\]])*\]")


def lowered(pattern: re.Pattern[str] | None) -> re.Pattern[str] | None:
    """`pattern` lower-cased and case-sensitive, or None where that could change its matches.

    Sound for ASCII text searched lower-cased: an ASCII letter matches case-insensitively
    exactly what its lower case matches in lower-cased text. Refused: patterns without
    IGNORECASE, non-ASCII ones (their case folding is not lower()), escapes of upper-case
    letters, inline flags, and classes with an upper-case letter ([A-z] is not [a-z]).
    """
    if pattern is None or pattern.flags & (re.VERBOSE | re.IGNORECASE) != re.IGNORECASE:
        return None
    source = pattern.pattern
    if (
        not source.isascii()
        or _UPPER_ESCAPE.search(source)
        or "(?" in source.replace("(?:", "")
        or any(c.isupper() for c in "".join(_CLASS.findall(source)))
    ):
        return None
    return re.compile(source.lower())


_LOWERED = tuple((lowered(c.exception), lowered(c.message)) for c in BUILTIN)
_MESSAGE_INDEXES = tuple(_ORDERED[name] for name in MESSAGE_ORDER)
_EXCEPTION_INDEXES = tuple(_ORDERED[name] for name in EXCEPTION_ORDER)
# the category at each message position, and None for _NO_MESSAGE
_MESSAGE_CATEGORIES = (*(BUILTIN[index] for index in _MESSAGE_INDEXES), None)
_LINEWISE = all(
    linewise(rx)
    for rx in (
        _JSON_PARSE,
        _EXPLICIT,
        *(c.message for c in BUILTIN),
        *(twin for pair in _LOWERED for twin in pair[1:]),
    )
)


def base_severity(event: LogEvent, cat: Category) -> str:
    """Severity from the level and the category: critical/fatal lines are always critical."""
    if event.level is not None and LEVEL_RANK.get(event.level, 0) >= LEVEL_RANK["critical"]:
        return "critical"
    if event.exception_type and cat.name == "internal_error":
        return "high"
    return cat.base_severity


def raise_severity(severity: str, steps: int = 1) -> str:
    """One (or more) severity steps up, capped at critical: used when a group's rate spikes."""
    rank = min(SEVERITY_RANK[severity] + steps, len(SEVERITIES) - 1)
    return SEVERITIES[rank]


def classify(event: LogEvent, rules: Sequence[Rule] = ()) -> Classification:
    """Category, severity, fixable and suggested fix of one error event.

    The first user rule that matches overrides what it sets; the built-ins fill in the rest.
    """
    cat = builtin_category(event)
    severity = base_severity(event, cat)
    fixable = cat.fixable
    for rule in rules:
        if not rule.match.search(rule_subject(event, rule.on)):
            continue
        if rule.ignore:
            return Classification(cat.name, "info", False, "", ignored=True, rule=rule.name)
        if rule.category is not None:
            cat = CATEGORY_BY_NAME[rule.category]
            severity = base_severity(event, cat)
            fixable = cat.fixable
        if rule.severity is not None:
            severity = rule.severity
        if rule.fixable is not None:
            fixable = rule.fixable
        return Classification(cat.name, severity, fixable, cat.suggested_fix, rule=rule.name)
    # no rule matched: one of a few built-in answers, made once (frozen, so shared safely; a
    # frozen dataclass costs ~1.5 us to make, a tenth of a flood's classification)
    key = (cat.name, severity)
    cls = _BUILTIN_ANSWERS.get(key)
    if cls is None:
        cls = _BUILTIN_ANSWERS[key] = Classification(cat.name, severity, fixable, cat.suggested_fix)
    return cls


_BUILTIN_ANSWERS: dict[tuple[str, str], Classification] = {}
