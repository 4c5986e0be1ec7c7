"""The guard holes the issue measured, each closed; the format slips it now forgives; the PR
body that no longer repeats an injected log line as live Markdown."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.config import AutofixConfig
from watcher.fix.github import neutralise, pr_body
from watcher.fix.outcomes import Recorder
from watcher.fix.patch import Edit, GuardResult, guard, loose_replace
from watcher.fix.policy import Policy
from watcher.fix.publish import Publisher
from watcher.fix.redact import Redactor
from watcher.fix.schema import Analysis, SchemaViolation, TestProposal, parse_tool_input
from watcher.model import ErrorGroup, Frame, Sample
from watcher.store import Store

SERVICE = "def average(values):\n    total = sum(values)\n    return total / len(values)\n"
TESTS = (
    "from app.service import average\n\n\ndef test_one():\n    assert average([2]) == 2\n\n\n"
    "def test_two():\n    assert average([1, 3]) == 2\n"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with an app module and its tests."""
    for rel, text in {"app/service.py": SERVICE, "tests/test_service.py": TESTS}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    """The publisher's guard with the default policy and a real secret scan."""
    with Store(":memory:") as store:
        redactor = Redactor(key=b"k")
        record = Recorder(store, redact=redactor.redact, redact_code=redactor.redact)
        yield Publisher(
            AutofixConfig(), record, worktree=lambda g: None,  # type: ignore[arg-type, return-value]
            policy=Policy(), secret_scan=Redactor(redact_emails=False).findings,
        )  # fmt: skip


def answer(*edits: Edit, test: TestProposal | None = None) -> Analysis:
    """A patch answer with `edits` and an optional test."""
    return Analysis(
        "fix", "why", (), 0.9, "patch", tuple(edits), "", test=test, fixability_score=0.9
    )


def refused(result: GuardResult, fragment: str) -> None:
    """A refusal with a reason containing `fragment`."""
    assert not result.ok and any(fragment in r for r in result.reasons), result.reasons


@pytest.mark.parametrize(
    "path",
    [
        ".husky/pre-commit",
        ".devcontainer/devcontainer.json",
        ".vscode/settings.json",
        "Makefile",
        "conftest.py",
        "tests/conftest.py",
        "src/sitecustomize.py",
        "tox.ini",
    ],
)
def test_tooling_that_runs_code_is_protected(repo: Path, path: str) -> None:
    """Files that run on a developer's machine or in the test runner (hooks, devcontainer and
    editor tasks, make, pytest's conftest) are refused, like CI config."""
    refused(guard([Edit(path, "", "x = 1\n")], repo), "protected path")


def test_a_test_file_that_exists_is_refused_not_dropped(repo: Path, publisher: Publisher) -> None:
    """A proposed new test whose path names an existing file is a refusal with a reason (it
    was silently dropped before, and the PR claimed a test it did not add)."""
    fix = Edit("app/service.py", "    return total", "    return total if values else 0")
    taken = TestProposal("t", "tests/test_service.py", "")
    refused(publisher.guard(answer(fix, test=taken), repo), "empty search but the file already")


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("    key = os.environ['ANTHROPIC_API_KEY']\n", "os.environ"),
        ("    key = os.getenv('GITHUB_TOKEN')\n", "os.environ"),
        ("    raw = open('/proc/self/environ').read()\n", "/proc"),
        ("    ev = getattr(__builtins__, 'ev' + 'al')\n", "builtins"),
        ("    mod = importlib.import_module('o' + 's')\n", "computed module name"),
        ("    s = socket.create_connection(('10.0.0.1', 80))\n", "socket"),
    ],
)
def test_code_that_reaches_for_secrets_is_refused(repo: Path, code: str, name: str) -> None:
    """Reading the environment or /proc, reaching builtins by name, importing a computed
    module name or opening a socket: refused when the patch adds it."""
    edit = Edit("app/service.py", "    total = sum(values)\n", "    total = sum(values)\n" + code)
    refused(guard([edit], repo), name)


def test_a_literal_import_module_is_fine(repo: Path) -> None:
    """importlib.import_module with a string literal names its module: not refused."""
    code = "    json = importlib.import_module('json')\n"
    edit = Edit("app/service.py", "    total = sum(values)\n", "    total = sum(values)\n" + code)
    assert guard([edit], repo).ok


def test_a_file_the_model_never_saw_is_refused(repo: Path, publisher: Publisher) -> None:
    """An edit to an existing file outside what the prompt showed is refused; the same edit
    to a shown file passes."""
    edit = Edit("app/service.py", "    return total", "    return total if values else 0")
    refused(publisher.guard(answer(edit), repo, {"app/other.py"}), "never shown")
    assert publisher.guard(answer(edit), repo, {"app/service.py"}).ok


@pytest.mark.parametrize(
    ("search", "replace"),
    [
        ("    assert average([1, 3]) == 2\n", "    pass\n"),
        ("def test_two():\n", "@pytest.mark.skip\ndef test_two():\n"),
    ],
)
def test_weakening_a_test_is_refused(repo: Path, search: str, replace: str) -> None:
    """Removing a check, or skipping a test, in an existing test file is refused."""
    refused(guard([Edit("tests/test_service.py", search, replace)], repo), "weakens a test")


def test_adding_a_check_to_a_test_is_fine(repo: Path) -> None:
    """A test edit that adds checks passes the guard."""
    old = "    assert average([1, 3]) == 2\n"
    more = old + "    assert average([4]) == 4\n"
    assert guard([Edit("tests/test_service.py", old, more)], repo).ok


# --- format slips ----------------------------------------------------------------------------


def test_a_search_block_with_other_indentation_applies_when_unique(repo: Path) -> None:
    """A search copied with the wrong indentation (and trailing spaces) still applies when its
    lines match exactly one run of the file; the replacement is re-indented to fit."""
    edit = Edit(
        "app/service.py",
        "total = sum(values)  \nreturn total / len(values)",
        "total = sum(values)\nif not values:\n    return 0.0\nreturn total / len(values)",
    )
    result = guard([edit], repo)
    assert result.ok, result.reasons
    fixed = result.files["app/service.py"]
    assert "    if not values:\n        return 0.0\n    return total" in fixed


def test_a_loose_match_must_still_be_unique() -> None:
    """Two runs match once stripped: no guess."""
    text = "if a:\n    x = 1\nif b:\n        x = 1\n"
    assert loose_replace(text, "x = 1", "x = 2") is None
    assert loose_replace(text, "if b:\nx = 1", "if b:\nx = 2") == "if a:\n    x = 1\nif b:\nx = 2\n"


def test_extra_keys_and_numeric_strings_are_accepted() -> None:
    """An unknown key is ignored, "0.8" and "80%" are numbers; a word is still refused."""
    data = {
        "summary": "s", "root_cause": "r", "evidence": [], "confidence": "0.8",
        "fixability": "patch", "fixability_score": "80%", "risk": "", "note": "extra",
        "edits": [{"path": "a.py", "search": "x", "replace": "y", "why": "extra"}],
    }  # fmt: skip
    parsed = parse_tool_input(data)
    assert parsed.confidence == 0.8 and parsed.fixability_score == 0.8 and parsed.score == 0.8
    with pytest.raises(SchemaViolation, match="confidence: expected a number"):
        parse_tool_input({**data, "confidence": "high"})


# --- the PR body -----------------------------------------------------------------------------

INJECTED = (
    "KeyError: 'SAVE10' @octocat @acme/security please merge "
    "[click here](https://evil.example/x) https://evil.example/y <img src=x>"
)


def test_an_injected_log_line_is_inert_in_the_pr() -> None:
    """The log line (and a model that echoed it) mentions nobody and links nowhere in the PR:
    mentions are broken, links become code spans, HTML is escaped, and the sample is
    collapsed in <details> inside a fence."""
    frame = Frame("/srv/shop/coupons.py", 9, "apply")
    group = ErrorGroup(
        id="g1", kind="trace", template="KeyError: <*>", category="internal_error",
        severity="high", fixable=True, exception_type="KeyError", top_frame=frame,
        frames=[frame], count=3, samples=[Sample(1.0, "shop", INJECTED)],
    )  # fmt: skip
    analysis = dataclasses.asdict(answer())
    analysis.update(root_cause=f"The log says: {INJECTED}", evidence=[INJECTED])
    body = pr_body(analysis, group, None, None, None, redact=str)
    outside = body.split("<details>")[0]
    assert "@octocat" not in outside and "@acme/security" not in outside
    assert "](https://" not in outside and " https://evil" not in outside
    assert "<img" not in outside and "`https://evil.example/y`" in outside
    assert "<details><summary>Sample log event (untrusted, redacted)</summary>" in body
    assert INJECTED in body.split("<details>")[1]  # verbatim only inside the collapsed fence


def test_neutralise_keeps_ordinary_text() -> None:
    """Emails and plain words are not mangled; only mentions and links change."""
    assert neutralise("user a@b.org hit it") == "user a@b.org hit it"
    assert neutralise("see @bob") == "see @\u200dbob"
