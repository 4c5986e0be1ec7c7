"""ReDoS: user rules run on RE2 (linear by construction), constructs RE2 lacks are refused at
config load, and the built-in patterns that re-scanned long runs are bounded.

No timings here: bench/redos_bench.py prints them. These tests pin down the properties that
make the times linear — the engine a rule runs on, and the shape of the built-in patterns.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from watcher.classify import BUILTIN, Rule, alternatives, classify, compile_rule
from watcher.config import ConfigError, load_config
from watcher.group.mask import _KINDS, mask
from watcher.model import LogEvent
from watcher.wiring import rules_from

# rule -> (a 50 KB line that drives a backtracking engine exponential, does the rule match)
ADVERSARIAL = {
    r"(a+)+$": ("a" * 50_000 + "!", False),
    r"(x|x)*y": ("x" * 50_000, False),
    r"(\w+\s?)+$": ("a " * 25_000 + "!", False),
    r"(?i)(stripe|.*stripe.*)+timeout": ("stripe" * 8_000 + "Timeout", True),
    r"(.*a){20}": ("a" * 50_000, True),
}


def event(message: str, **fields: object) -> LogEvent:
    """An error event with `message`."""
    return LogEvent(message=message, source="app", level="error", text=message, **fields)  # type: ignore[arg-type]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text(body, encoding="utf-8")
    return path


def rules_toml(*patterns: str) -> str:
    """[[classify.rules]] entries, one per pattern (TOML literal strings)."""
    return "".join(f"[[classify.rules]]\nmatch = '{p}'\nignore = true\n\n" for p in patterns)


def test_configured_rules_run_on_re2(tmp_path: Path) -> None:
    """Every rule loaded from the config is compiled with RE2, including catastrophic ones."""
    config = load_config(write(tmp_path, rules_toml(*ADVERSARIAL)), {})
    rules = rules_from(config)
    assert [r.match.engine for r in rules] == ["re2"] * len(ADVERSARIAL)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("pattern", "case"), list(ADVERSARIAL.items()))
def test_catastrophic_rules_classify_adversarial_lines(
    pattern: str, case: tuple[str, bool]
) -> None:
    """A rule that would backtrack for ever under `re` gives the right verdict on a 50 KB line
    (and agrees with `re` on a line short enough for it)."""
    line, matches = case
    rule = Rule(match=compile_rule(pattern), category="cache_error", name="evil")
    assert (classify(event(line), [rule]).rule == "evil") is matches
    short = line[:12] + line[-1]
    assert rule.match.search(short) is (re.search(pattern, short) is not None)


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"(?=stripe)s", "lookahead"),
        (r"(?<!x)timeout", "negative lookbehind"),
        (r"(a)\1", "backreference"),
        (r"(?P<x>a)(?P=x)", "named backreference"),
        (r"(?>a+)b", "atomic group"),
        (r"a++b", "possessive quantifier"),
        (r"timeout\Z", r"\Z (RE2 spells the end of text \z)"),
        (r"(?x) a b", "inline flag (?x)"),
        (r"a{2000}", "repetition count over 1000"),
    ],
)
def test_constructs_re2_lacks_are_refused_with_the_rule_named(
    tmp_path: Path, pattern: str, construct: str
) -> None:
    """A rule RE2 cannot run stops the start with one line naming the file, line, rule and
    the construct, and RE2 itself prints nothing to stderr."""
    path = write(tmp_path, rules_toml("ok") + rules_toml(pattern))
    with pytest.raises(ConfigError) as raised:
        load_config(path, {})
    message = str(raised.value)
    assert message.startswith(f"{path}:6: classify.rules[1].match: {construct}"), message
    assert "not supported: rules use RE2" in message


def test_refused_rules_print_nothing_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """RE2's own error log is off: `watcher check-config` shows only its one line."""
    with pytest.raises(ValueError, match="lookahead"):
        compile_rule("(?=x)")
    assert capfd.readouterr().err == ""


def test_invalid_patterns_keep_pythons_message() -> None:
    """A pattern invalid for both engines says so the way Python's re does."""
    with pytest.raises(ValueError, match=r"^invalid regular expression: missing \)"):
        compile_rule("(unclosed")


@pytest.mark.parametrize(
    "text", ["x \ud800 stripe", "\udfff", "stripe\x00", "\u202e stripe", "é" * 10 + "stripe"]
)
def test_rules_take_any_text(text: str) -> None:
    """Lone surrogates (JSON "\\ud800"), NULs and bidi controls never make a rule raise."""
    assert compile_rule("(?i)stripe").search(text) is ("stripe" in text)


def test_rules_keep_python_syntax_that_re2_shares() -> None:
    """Named groups, classes, flags and Unicode classes work as users write them."""
    for pattern, text in [
        (r"(?P<svc>stripe|twilio)\.com", "call to stripe.com failed"),
        (r"(?i)^ERROR\b", "error: x"),
        (r"(?s)begin.*end", "begin\nend"),
        (r"\d{3}-\d{4}", "call 555-1234"),
        (r"\p{Greek}+", "σφάλμα"),
    ]:
        assert compile_rule(pattern).search(text), pattern


# --- built-in patterns -----------------------------------------------------------------------

# A kind that starts with an unbounded run of a class, with no look-behind, is retried from
# every position of a long run of that class, each try scanning to the run's end: quadratic.
_UNGUARDED_START = re.compile(r"^(?:\[[^\]]+\]|\\[wdsS]|\.)[*+]")


def test_mask_kinds_only_start_runs_behind_a_look_behind() -> None:
    """No masking kind begins with an unbounded class run unless a look-behind pins it to the
    start of the run (the e-mail, URL and catch-all kinds were quadratic on "a-a-a-…")."""
    unguarded = [
        alt for kind in _KINDS for alt in alternatives(kind) if _UNGUARDED_START.match(alt)
    ]
    assert unguarded == []


def test_classify_builtins_have_no_unbounded_wildcard() -> None:
    """No built-in category pattern holds `.*`/`.+` (re-scanned from every occurrence of the
    literal before it: "model .* unavailable" was quadratic on "model model model …")."""
    for cat in BUILTIN:
        for rx in (cat.exception, cat.message):
            assert rx is None or not re.search(r"\.[*+]", rx.pattern), (cat.name, rx.pattern)


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("a-" * 5000, "a-" * 5000),
        ("x " + "a-" * 3000 + "7", "x <*>"),
        ("mail " + "a." * 2000 + "@example.com", "mail <*>"),
        ("see " + "ab" * 3000 + "://host/x", "see <*>"),
        ("0x1f-12 and node-7 at http://h/x", "<*><*> and <*> at <*>"),
        ("2024-01-01T10:00:00Z-x5 " + "b-" * 3000, "<*><*> " + "b-" * 3000),
    ],
)
def test_mask_of_long_runs_is_unchanged(line: str, masked: str) -> None:
    """Long runs mask as before the fix: digitless runs stay, runs with a digit, e-mails and
    URLs become <*>."""
    assert mask(line) == masked
