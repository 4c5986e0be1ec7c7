"""The repair loop: from the model's first answer to a patch that reproduces and fixes the bug.

1. Gate: below `[autofix] min_fixability` (the model's fixability score) no code is asked for:
   the outcome is the root cause only.
2. Baseline: verify_command on the base commit, so failures that were there already are known.
3. Reproduction: the answer's test, added alone to the base commit, must fail there.
4. Fix: the edits (plus the test) must pass the guard, and with them the test must pass and no
   test that passed on the base commit may fail.
5. Each refusal — no test, a test that passes on the base, a guard's reasons, a verification
   summary — goes back to the model as the result of its tool call, for up to `repair_rounds`
   more rounds (each a request of its own, charged to the budget).

Without a verify_command (or a sandbox to run it in) only the guard loops. When the edits stay
unusable, the root cause is kept: an RCA-only outcome, still reported. Only summaries of the
sandboxed runs are ever fed back or recorded (see watcher.fix.summary).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from watcher.fix.analyze import AnalysisError
from watcher.fix.context import FixContext
from watcher.fix.patch import GuardResult
from watcher.fix.schema import Analysis
from watcher.fix.summary import VerifySummary
from watcher.model import ErrorGroup

Guard = Callable[[Analysis, Path], GuardResult]


class AnalystLike(Protocol):
    """What the loop needs of the analyzer."""

    async def repair(
        self, ctx: FixContext, group: ErrorGroup, turns: list[tuple[Analysis, str]]
    ) -> Analysis: ...


class VerifierLike(Protocol):
    """What the loop needs of the sandbox (watcher.fix.sandbox.Sandbox)."""

    async def verify(
        self, command: str, *, commit: str, files: Mapping[str, str] | None = None
    ) -> VerifySummary: ...


@dataclass
class Outcome:
    """Where the loop ended: the last answer, and the accepted patch if there is one."""

    analysis: Analysis
    result: GuardResult | None = None  # None: root cause only
    reason: str = ""  # why there is no patch, or "" when there is
    rounds: int = 0  # repair rounds used (0: the first answer was taken)
    input_tokens: int = 0
    output_tokens: int = 0
    runs: dict[str, VerifySummary] = field(default_factory=dict)  # baseline/reproduction/after
    verified: bool | None = None  # None: no verification ran
    reproduced: bool | None = None
    feedback: list[str] = field(default_factory=list)
    refused: GuardResult | None = None  # the last patch the guard refused
    unverified: GuardResult | None = None  # the last guarded patch whose verification failed

    def details(self) -> dict[str, Any]:
        """For Fix.details["verify"]: the verdict and the summaries (never raw output)."""
        return {
            "verified": self.verified,
            "reproduced": self.reproduced,
            "rounds": self.rounds,
            "runs": {name: run.to_dict() for name, run in self.runs.items()},
        }


class Rejected(Exception):
    """One answer is not good enough; the message is the feedback for the model."""


class RepairLoop:
    """Runs the rounds for one group; see the module doc."""

    def __init__(
        self,
        analyst: AnalystLike,
        guard: Guard,
        *,
        verifier: VerifierLike | None,
        verify_command: str,
        repair_rounds: int = 2,
        min_fixability: float = 0.5,
    ) -> None:
        self.analyst, self.guard, self.verifier = analyst, guard, verifier
        self.command, self.rounds = verify_command.strip(), repair_rounds
        self.min_fixability = min_fixability

    async def run(
        self, first: Analysis, ctx: FixContext, group: ErrorGroup, *, root: Path, commit: str
    ) -> Outcome:
        """Take `first` (already paid for) through the rounds against `root` at `commit`."""
        out = Outcome(first)
        too_low = gate(first, self.min_fixability)
        if too_low:
            out.reason = too_low
            return out
        checker = _Checks(self, out, root, commit)
        await checker.baseline()
        turns: list[tuple[Analysis, str]] = []
        answer = first
        while True:
            try:
                out.result = await checker.check(answer)
                out.reason = ""
                return out
            except Rejected as exc:
                out.reason = str(exc)
            if len(turns) >= self.rounds:
                out.reason = f"after {len(turns)} repair round(s): {out.reason}"
                return out
            out.feedback.append(out.reason)
            turns.append((answer, _instruction(out.reason)))
            try:
                answer = await self.analyst.repair(ctx, group, list(turns))
            except AnalysisError as exc:  # what the last round found still stands
                out.input_tokens += exc.input_tokens
                out.output_tokens += exc.output_tokens
                out.reason = f"{out.reason} (repair round {len(turns)} failed: {exc})"
                return out
            out.analysis, out.rounds = answer, len(turns)
            out.input_tokens += answer.input_tokens
            out.output_tokens += answer.output_tokens
            if gate(answer, self.min_fixability):
                out.reason = gate(answer, self.min_fixability)
                return out


def gate(answer: Analysis, min_fixability: float) -> str:
    """Why no code is generated for this answer ("" when it may be)."""
    if answer.fixability != "patch":
        return f"the analysis proposes no patch ({answer.fixability})"
    if answer.score < min_fixability:
        return f"fixability {answer.score:.2f} below min_fixability {min_fixability:.2f}"
    return ""


class _Checks:
    """The checks of one loop, remembering the baseline and the reproduced test."""

    def __init__(self, loop: RepairLoop, out: Outcome, root: Path, commit: str) -> None:
        self.loop, self.out, self.root, self.commit = loop, out, root, commit
        self.can_verify = bool(loop.verifier is not None and loop.command and commit)
        self.reproduced: tuple[str, str] | None = None  # (path, content) that failed on base

    async def baseline(self) -> None:
        if not self.can_verify:
            return
        run = await self._verify({})
        self.out.runs["baseline"] = run
        if not run.ran:  # no sandbox: the guard alone decides, and the PR says NOT verified
            self.can_verify = False

    async def check(self, answer: Analysis) -> GuardResult:
        """The accepted patch of `answer`, or Rejected with what to fix. The guard comes first:
        a refused patch is never run, and its reasons are what the model must hear."""
        result = self.loop.guard(answer, self.root) if answer.edits else None
        if result is not None and not result.ok:
            self.out.refused = result
            raise Rejected("The guard refused the patch: " + "; ".join(result.reasons))
        self.out.refused = None
        if self.can_verify:
            await self._reproduce(answer)
        if result is None:
            if self.can_verify:
                raise Rejected("The reproduction test fails on the base commit. Now give the fix.")
            raise Rejected("the answer holds no edits")
        if self.can_verify:
            self.out.unverified = result
            await self._after(result, answer)
            self.out.unverified = None
        return result

    async def _reproduce(self, answer: Analysis) -> None:
        test = answer.test
        if test is None or not test.path or test.content is None:
            raise Rejected(
                "Give a reproduction test first: a new test file (test.path, test.content) that "
                "fails on the current code because of this bug."
            )
        if self.reproduced == (test.path, test.content):
            return
        alone = self.loop.guard(_test_only(answer), self.root)
        if not alone.ok:
            raise Rejected("The guard refused the test: " + "; ".join(alone.reasons))
        run = await self._verify(alone.files)
        self.out.runs["reproduction"] = run
        failing = _own(run, test.path)
        if not failing and not (run.ok is False and not run.failing and _base_ok(self.out)):
            self.out.reproduced = False
            raise Rejected(
                f"The test {test.path} does not fail on the base commit, so it does not "
                f"reproduce the bug: {describe(run)}"
            )
        self.out.reproduced, self.reproduced = True, (test.path, test.content)

    async def _after(self, result: GuardResult, answer: Analysis) -> None:
        run = await self._verify(result.files)
        self.out.runs["after"] = run
        base = self.out.runs.get("baseline")
        before = set(base.failing) if base is not None else set()
        broken = [name for name in run.failing if name not in before]
        test_path = answer.test.path if answer.test is not None else ""
        if run.timed_out or (not run.ok and (broken or not run.failing)):
            self.out.verified = False
            what = f"these tests fail now: {', '.join(broken[:10])}" if broken else describe(run)
            still = " (the reproduction test still fails)" if _own(run, test_path or "") else ""
            raise Rejected(f"With the fix, verification fails{still}: {what}")
        self.out.verified = True

    async def _verify(self, files: Mapping[str, str]) -> VerifySummary:
        assert self.loop.verifier is not None
        return await self.loop.verifier.verify(self.loop.command, commit=self.commit, files=files)


def _test_only(answer: Analysis) -> Analysis:
    return replace(answer, edits=())


def _base_ok(out: Outcome) -> bool:
    base = out.runs.get("baseline")
    return base is not None and base.ok


def _own(run: VerifySummary, test_path: str) -> list[str]:
    """The failing ids that belong to the test file at `test_path` (pytest node ids start with
    the path; unittest ids with its dotted module). A file that did not even load is not a
    reproduction: pytest names it alone, without "::"."""
    if not test_path:
        return []
    parts = PurePosixPath(test_path).with_suffix("").parts
    # unittest names a module from wherever discovery started: any tail of the dotted path
    modules = tuple(".".join(parts[i:]) + "." for i in range(len(parts)))
    return [
        name
        for name in run.failing
        if name.startswith(f"{test_path}::") or name.startswith(modules)
    ]


def describe(run: VerifySummary) -> str:
    """One line of a run for the model and the PR: counts, failing tests, the tail."""
    if not run.ran:
        return f"not run ({run.note})"
    parts = [("timed out; " if run.timed_out else "") + run.counts()]
    if run.failing:
        parts.append("failing: " + ", ".join(run.failing[:10]))
    if run.tail:
        parts.append("output tail:\n" + run.tail[-1500:])
    elif run.withheld:
        parts.append(run.withheld)
    return "; ".join(parts)


def _instruction(reason: str) -> str:
    return (
        f"{reason}\n\nCall report_fix again with the corrected answer (keep the root cause; "
        "fix the test and/or the edits). Do not weaken or delete existing tests."
    )
