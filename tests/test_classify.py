"""Classification: the nine built-in categories, severities, and user rules first."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher import classify as classify_module
from watcher.classify import (
    BUILTIN,
    CATEGORY_BY_NAME,
    EXCEPTION_ORDER,
    MESSAGE_ORDER,
    Rule,
    builtin_category,
    classify,
    literal_hints,
    raise_severity,
)
from watcher.model import CATEGORIES, Classification, LogEvent


def ev(
    message: str,
    *,
    exc: str | None = None,
    exc_msg: str | None = None,
    level: str = "error",
    logger: str | None = None,
) -> LogEvent:
    return LogEvent(
        message=message,
        level=level,
        exception_type=exc,
        exception_message=exc_msg,
        logger=logger,
        source="app",
    )


@pytest.mark.parametrize(
    ("message", "exc", "category"),
    [
        ("OpenAI API returned 503: The server is overloaded", None, "provider_error"),
        ("request failed", "anthropic.InternalServerError", "provider_error"),
        (
            "could not connect to server: Connection refused (postgres)",
            "psycopg2.OperationalError",
            "database_error",
        ),
        ("FATAL: sorry, too many connections for role app", None, "database_error"),
        ("HTTP 429 Too Many Requests from api.github.com", None, "rate_limit_error"),
        ("Rate limit exceeded, retry in 20s", None, "rate_limit_error"),
        ("upstream call", "httpx.ReadTimeout", "timeout_error"),
        ("rpc error: context deadline exceeded", None, "timeout_error"),
        ("401 Unauthorized: invalid token", None, "auth_error"),
        ("decode failed", "jwt.exceptions.ExpiredSignatureError", "auth_error"),
        (
            "1 validation error for Order: field required",
            "pydantic.ValidationError",
            "validation_error",
        ),
        (
            "Error 111 connecting to localhost:6379",
            "redis.exceptions.ConnectionError",
            "cache_error",
        ),
        ("Stripe charge failed: card_declined", None, "external_service_error"),
        ("upstream returned 502 Bad Gateway", None, "external_service_error"),
        ("unexpected", "KeyError", "internal_error"),
        ("Cannot read properties of undefined (reading 'id')", "TypeError", "internal_error"),
    ],
)
def test_builtin_categories(message: str, exc: str | None, category: str) -> None:
    """Typical production errors land in the category the original spec names."""
    assert classify(ev(message, exc=exc)).category == category


def test_every_category_has_fix_policy() -> None:
    """All nine categories exist, and only validation/internal errors are not fixable."""
    assert set(CATEGORY_BY_NAME) == set(CATEGORIES)
    unfixable = {n for n, c in CATEGORY_BY_NAME.items() if not c.fixable}
    assert unfixable == {"validation_error", "internal_error"}
    assert all(c.suggested_fix for c in CATEGORY_BY_NAME.values() if c.fixable)


def test_exception_type_beats_message_words() -> None:
    """A typed exception decides the category even when the message mentions another one."""
    cls = classify(ev("retrying after rate limit", exc="psycopg2.OperationalError"))
    assert cls.category == "database_error"


def test_critical_level_is_critical() -> None:
    """A fatal/critical line is critical whatever its category."""
    assert classify(ev("Rate limit exceeded", level="critical")).severity == "critical"
    assert classify(ev("Rate limit exceeded")).severity == "medium"


def test_user_rule_first_and_partial() -> None:
    """A user rule overrides only what it sets; the rest comes from the built-ins."""
    rules = [
        Rule(match=re.compile("(?i)stripe"), category="external_service_error", severity="critical")
    ]
    cls = classify(ev("Stripe webhook timed out"), rules)
    assert (cls.category, cls.severity, cls.fixable) == ("external_service_error", "critical", True)
    assert cls.rule == "rule"
    rules = [Rule(match=re.compile("ValidationError"), on=("exception",), fixable=True)]
    cls = classify(ev("bad", exc="pydantic.ValidationError"), rules)
    assert (cls.category, cls.fixable) == ("validation_error", True)


def test_user_rule_ignore_and_fields() -> None:
    """An ignore rule marks the event ignored; a rule on `logger` does not see the message."""
    ignore = [Rule(match=re.compile("healthcheck"), ignore=True)]
    assert classify(ev("healthcheck failed: 503"), ignore).ignored
    on_logger = [Rule(match=re.compile("payments"), on=("logger",), severity="critical")]
    assert classify(ev("payments failed", logger="api.orders"), on_logger).severity != "critical"
    assert classify(ev("x failed", logger="api.payments"), on_logger).severity == "critical"


def test_raise_severity_caps() -> None:
    """Escalation moves one step and stops at critical."""
    assert raise_severity("medium") == "high"
    assert raise_severity("critical") == "critical"


def test_crash_words_are_internal_not_validation() -> None:
    """A Go nil-pointer panic is an internal error although it says "invalid"."""
    msg = "runtime error: invalid memory address or nil pointer dereference"
    assert classify(ev(msg)).category == "internal_error"


def test_error_field_words_count() -> None:
    """The `err` field of a structured line decides the category when the message is vague."""
    event = ev("acquire db connection")
    event.fields = {"err": "FATAL: sorry, too many clients already (SQLSTATE 53300)"}
    assert classify(event).category == "database_error"


@pytest.mark.parametrize(
    ("pattern", "hints"),
    [
        (r"\btimed? ?out\b|deadline exceeded", ("time", "deadline exceeded")),
        (r"slow ?down|\b50[023]\b", ("slow", "50")),
        (r"invalid (api )?(key|token)|gateway time-?out", ("invalid ", "gateway time")),
        (r"Redis|Memcache", ("redis", "memcache")),
        (r"(?:a|b)c|d", None),  # a branch that starts with a group has no literal
        (r"\w+ failed", None),
    ],
)
def test_literal_hints(pattern: str, hints: tuple[str, ...] | None) -> None:
    """Hints are each top-level branch's leading literal, lower-cased; None if one has none."""
    assert literal_hints(re.compile(pattern, re.IGNORECASE)) == hints


def test_every_builtin_pattern_has_hints() -> None:
    """The built-in patterns all get the cheap pre-check (a new one without hints is slow)."""
    for cat in BUILTIN:
        assert literal_hints(cat.exception) is not None, cat.name
        assert literal_hints(cat.message) is not None, cat.name


def _reference_category(event: LogEvent) -> str:
    """builtin_category's exception and message passes without the hints: every regex searched."""
    exc = event.exception_type or ""
    text = "\n".join(
        [event.message, *([event.exception_message] if event.exception_message else [])]
    )
    by_name = {cat.name: cat for cat in BUILTIN}
    for name in EXCEPTION_ORDER:
        cat = by_name[name]
        if exc and cat.exception is not None and cat.exception.search(exc):
            return cat.name
    for name in MESSAGE_ORDER:
        cat = by_name[name]
        if cat.message is not None and cat.message.search(text):
            return cat.name
    return "internal_error"


@pytest.mark.parametrize(
    "message",
    [
        "upstream connect error",
        "Too Many Requests",
        "\u017ftripe charge failed",  # non-ASCII (long s): the hints step aside, the regexes decide
        "\u0130nvalid token",
        "Gateway Time-out",
        "nothing to see",
        "SQLSTATE[08006]",
    ],
)
def test_hints_never_change_the_category(message: str) -> None:
    """With or without the literal pre-check, an event gets the same category."""
    for exc in (None, "ValueError", "redis.ConnectionError", "Ünknown"):
        event = ev(message, exc=exc, exc_msg="read timeout" if exc == "ValueError" else None)
        assert builtin_category(event).name == _reference_category(event)


# words of the hints (whole, cut short, run together) and others, for texts near every hint
_ALL_HINTS = sorted({h for _, m in classify_module._HINTS for h in m or ()})
_WORDS = st.sampled_from(
    [*_ALL_HINTS, *(h[:-1] for h in _ALL_HINTS if len(h) > 1), *(h[1:] for h in _ALL_HINTS),
     *("x" + h for h in _ALL_HINTS[::2]), "tivubove", "ref=f5cae3bf",
     "JSON", "Limiting", "(AccessDenied)", "Time", "429", "50", "\u0130nvalid", "x", "-", ""]
)  # fmt: skip
_HINT_TEXT = st.lists(st.tuples(_WORDS, st.sampled_from(["", " ", "\n", "_", ": "]))).map(
    lambda pairs: "".join(word + sep for word, sep in pairs)
)


def _occurs(literal: str, at_word_start: bool, low: str) -> bool:
    """Whether `literal` is in `low` (after a non-word character or the start, if flagged)."""
    start = low.find(literal)
    while start >= 0 and at_word_start and start > 0 and re.match(r"\w", low[start - 1]):
        start = low.find(literal, start + 1)
    return start >= 0


@settings(max_examples=500, deadline=None)
@given(_HINT_TEXT)
def test_one_search_finds_a_hint_exactly_where_one_is_in_the_text(text: str) -> None:
    """The anchored search matches a text exactly when one pre-check literal occurs in it (at a
    word start for the branches that begin with \\b), whichever character it is anchored at."""
    low = text.lower()
    found = classify_module._ANY_HINT.search(low) is not None
    literals = classify_module.hint_literals()
    assert found == any(_occurs(lit, bounded, low) for lit, bounded in literals)


def test_the_pre_check_literals_cover_every_pass() -> None:
    """Each hint of the JSON, explicit and message passes is implied by a pre-check literal."""
    literals = classify_module.hint_literals()
    for hint in [*classify_module._JSON_HINTS, *classify_module._EXPLICIT_HINTS, *_ALL_HINTS]:
        assert any(lit in hint for lit, _ in literals), hint
    assert ("50", True) in literals and ("json", False) in literals


@settings(max_examples=300, deadline=None)
@given(
    _HINT_TEXT,
    st.sampled_from([None, "ValueError", "redis.ConnectionError", "JSONDecodeError", "Ünknown"]),
    st.sampled_from([None, "postgres", "app"]),
)
def test_skipping_the_passes_when_no_hint_is_found_never_changes_the_category(
    message: str, exc: str | None, logger: str | None
) -> None:
    """builtin_category with the one-search skip gives what the passes one by one give."""
    event = ev(message, exc=exc, logger=logger)
    classify_module.clear_memo()  # the memo would answer the second call from the first
    with mock.patch.object(classify_module, "_ANY_HINT", None):
        expected = builtin_category(event)
    classify_module.clear_memo()
    assert builtin_category(event) is expected


def test_a_line_without_any_hint_skips_every_pass() -> None:
    """A flood's line holding no hint costs one search: no category regex is run on it."""
    event = ev("tivubove safaloze mudugate ref=f5cae3bf seq=1")
    classify_module.clear_memo()
    with mock.patch.object(classify_module, "_may_match", side_effect=AssertionError("pass")):
        assert builtin_category(event).name == "internal_error"
    assert builtin_category(ev("tivubove", logger="postgres")).name == "database_error"


def test_answers_without_a_rule_are_shared_and_equal_a_fresh_one() -> None:
    """classify() hands out one frozen answer per built-in outcome, equal to a fresh one."""
    first, again = classify(ev("read timeout")), classify(ev("connect timeout"))
    assert first is again
    assert first == Classification("timeout_error", "medium", True, first.suggested_fix)
    critical = classify(ev("read timeout", level="critical"))
    assert critical.severity == "critical" and critical is not first
