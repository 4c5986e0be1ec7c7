"""Publishing a fix as a pull request: in a private worktree at the base commit, guard the
edits, then write, verify, commit and push them, and open (or update) the PR.

A branch pushed for a PR that could not be opened is deleted again. A cancellation (SIGTERM)
can arrive while the push or the PR request is on its way, and neither can be called back: the
step gets `grace` seconds to answer, and the fix records what it came to — the PR opened; or
the branch pushed, then deleted; or, when the remote refuses or is too slow, the branch named as
left behind. Then the cancellation goes on: a stopping daemon waits here at most twice `grace`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Collection, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import structlog

from watcher.config import AutofixConfig
from watcher.fix.context import FixContext
from watcher.fix.git import Identity, PushResult
from watcher.fix.github import PullRef, pattern_link, pr_body, pr_title
from watcher.fix.outcomes import Recorder
from watcher.fix.patch import Edit, EditLike, GuardResult, SecretScan, guard
from watcher.fix.policy import Policy
from watcher.fix.protocols import PullRequests, WorktreeFactory, WorktreeLike
from watcher.fix.repair import Outcome, RepairLoop, describe
from watcher.fix.schema import Analysis
from watcher.model import ErrorGroup, Fix

log = structlog.get_logger("watcher.fix.pipeline")  # one logger for the whole pipeline
T = TypeVar("T")

CANCEL_GRACE = 3.0  # seconds a cancelled fix gives an in-flight step, then the branch deletion


class Interrupted(asyncio.CancelledError):
    """A cancellation that arrived while a remote step was in flight, with what the step came
    to within the grace period: `result` (None: it failed, or had not finished) and `finished`
    (False: it was still running, and its effect may yet land)."""

    def __init__(self, result: Any, *, finished: bool) -> None:
        super().__init__("cancelled")
        self.result, self.finished = result, finished


async def in_flight(start: Callable[[], Coroutine[Any, Any, T]], grace: float) -> T:
    """Run a remote step (a push, a PR request) that cannot be called back once sent.

    Cancelled meanwhile, the step still gets `grace` seconds to answer, and the cancellation
    goes on as `Interrupted` carrying that answer: the caller learns what now exists."""
    await asyncio.sleep(0)  # a cancellation requested already stops us before anything is sent
    step = asyncio.ensure_future(start())
    try:
        return await asyncio.shield(step)
    except asyncio.CancelledError:
        await asyncio.wait([step], timeout=grace)
        if not step.done():
            step.cancel()
            raise Interrupted(None, finished=False) from None
        failed = step.cancelled() or step.exception() is not None
        raise Interrupted(None if failed else step.result(), finished=True) from None


class Publisher:
    """Takes an analysis to a pushed branch and an open PR; each outcome goes into the Fix."""

    def __init__(
        self,
        settings: AutofixConfig,
        record: Recorder,
        *,
        worktree: WorktreeFactory,
        policy: Policy,
        secret_scan: SecretScan,
        grace: float = CANCEL_GRACE,
        public_url: str = "",
    ) -> None:
        self.settings, self.record, self.redact = settings, record, record.redact
        self.settings_public_url = public_url
        self.policy, self.secret_scan, self.grace = policy, secret_scan, grace
        self._worktree = worktree

    def guard(
        self, analysis: Analysis, root: Path, shown: Collection[str] | None = None
    ) -> GuardResult:
        """The analysis' edits (and its test, as a new file) checked against `root`. With
        `shown` (the paths the model was shown), an edit to any other existing file is refused:
        the model cannot have copied its search text from code it never saw."""
        edits: list[EditLike] = list(analysis.edits)
        test = analysis.test
        if test and test.path and test.content is not None:
            # a new file: a path that names an existing file is refused by the guard, not
            # silently dropped (the PR would claim a test it does not add)
            edits.append(Edit(test.path, "", test.content))
        result = guard(edits, root, self.policy, secret_scan=self.secret_scan)
        unseen = sorted(
            {e.path for e in analysis.edits if e.search and e.path not in (shown or {e.path})}
        )
        if not unseen:
            return result
        never = [f"{path}: edits a file the model was never shown" for path in unseen]
        reasons = [*result.reasons, *never]
        return GuardResult(False, reasons, "", {}, result.stats)

    def settle(self, fix: Fix, outcome: Outcome, status: str) -> GuardResult | None:
        """Record the loop's outcome in `fix`: the final analysis, every round's tokens and the
        verification summaries; then the patch to publish with `status` ("patched",
        "dry_run"), or None with the fix "rejected" (the guard's reasons), "failed"
        (verification failed and verify_failure is "skip") or "analyzed" (root cause only)."""
        first_tokens = fix.details.get("tokens") or {"input": 0, "output": 0}
        self.record.analysis(fix, outcome.analysis)
        fix.details["tokens"] = {
            "input": first_tokens["input"] + outcome.input_tokens,
            "output": first_tokens["output"] + outcome.output_tokens,
        }
        fix.details["repair_rounds"] = outcome.rounds
        if outcome.runs:
            fix.details["verify"] = outcome.details()
        if outcome.result is not None:
            return outcome.result if self.record.verdict(fix, outcome.result, status) else None
        if outcome.unverified is not None and self.settings.verify_failure == "draft":
            self.record.verdict(fix, outcome.unverified, status)
            return outcome.unverified
        if outcome.refused is not None:
            self.record.verdict(fix, outcome.refused, status)
            return None
        if outcome.unverified is not None:
            fix.status, fix.error = "failed", "verify command failed; not pushed"
            return None
        fix.status = "analyzed"  # root cause only: kept and reported
        fix.details["decision"] = self.redact(outcome.reason)
        return None

    async def publish(
        self,
        fix: Fix,
        group: ErrorGroup,
        first: Analysis,
        ctx: FixContext,
        github: PullRequests,
        loop: RepairLoop,
    ) -> None:
        """Set `fix` to "pr_open", "rejected", "analyzed" or "failed"; raise on a failed remote
        step (once its branch is deleted) and on cancellation (once the outcome is in `fix`)."""
        async with self._worktree(group) as tree:
            # the worktree is at the base commit: the loop guards and verifies against it
            outcome = await loop.run(first, ctx, group, root=tree.path, commit=tree.base_sha)
            result = self.settle(fix, outcome, "patched")
            if result is None or await self._duplicate(fix):
                return
            analysis = outcome.analysis
            tree.write(result)
            draft, note = self._verdict(outcome)
            title = self.redact(pr_title(analysis.to_dict(), group))
            if not await self._commit(fix, tree, title, analysis, group):
                return
            await self._claim(fix, tree.branch)
            pushed = await self._push(fix, tree)
            body = self._pr_body(analysis, group, result, note)
            ref = await self._open_pr(
                fix, tree, github, head=pushed.branch, title=title, body=body, draft=draft
            )
            # before the worktree's exit: a cancellation there must find the PR recorded
            self.record.pull_request(fix, ref, draft=draft)

    async def _claim(self, fix: Fix, branch: str) -> None:
        """Before anything leaves for the remote: the fix, still "pending", marked publishing,
        under the leader's fence. A deposed leader stops here (LeaseLost), so it never pushes
        nor opens a PR the new leader may open too."""
        details = {**fix.details, "publishing": True}
        claim = dataclasses.replace(fix, status="pending", branch=branch, details=details)
        await asyncio.to_thread(self.record.save, claim)

    async def _duplicate(self, fix: Fix) -> bool:
        """Whether an open PR (another group's) already holds this very patch: then no second
        PR; the fix says which one it duplicates."""
        open_fixes = await asyncio.to_thread(self.record.store.list_fixes, status="pr_open")
        same = next((f for f in open_fixes if f.diff and f.diff == fix.diff), None)
        if same is None:
            return False
        fix.status = "analyzed"
        fix.details.update(duplicate_of=same.pr_url, decision=f"the same patch is {same.pr_url}")
        return True

    def _pr_body(
        self, analysis: Analysis, group: ErrorGroup, result: GuardResult, note: str
    ) -> str:
        tokens = {"input": analysis.input_tokens, "output": analysis.output_tokens}
        link = pattern_link(self.settings_public_url, group.id)
        body = pr_body(
            analysis.to_dict(), group, result.stats, tokens, link, redact=self.redact,
            verification=note, new_files=result.new_files,
        )  # fmt: skip
        return body

    def _verdict(self, outcome: Outcome) -> tuple[bool, str]:
        """(draft, the PR body's verification line): verified PRs follow `draft`; anything
        else is a draft that says NOT verified, and why."""
        s = self.settings
        if outcome.verified:
            after = outcome.runs.get("after")
            counts = after.counts() if after is not None else "passed"
            repro = " The reproduction test failed before the fix and passes with it."
            return s.draft, f"verified: {counts} (`{s.verify_command}` in the sandbox).{repro}"
        if outcome.verified is False:
            after = outcome.runs.get("after")
            detail = describe(after) if after is not None else "failed"
            return True, f"NOT verified: `{s.verify_command}` failed with the fix: {detail}"
        base = outcome.runs.get("baseline")
        if not s.verify_command.strip():
            why = "no verify_command is configured"
        elif base is not None and not base.ran:
            why = base.note
        else:
            why = "the reproduction test was not run"
        return True, f"NOT verified: {why}."

    async def _commit(
        self, fix: Fix, tree: WorktreeLike, title: str, analysis: Analysis, group: ErrorGroup
    ) -> bool:
        s = self.settings
        committer = Identity.parse(s.committer) if s.committer else None
        body = self.redact(commit_body(analysis, group))
        sha = await tree.commit(title, body, author=Identity.parse(s.author), committer=committer)
        if sha is None:
            fix.status, fix.error = "rejected", "the patch changes nothing once written"
        return sha is not None

    async def _push(self, fix: Fix, tree: WorktreeLike) -> PushResult:
        try:
            pushed = await in_flight(tree.push, self.grace)
        except Interrupted as stop:
            if stop.result is not None:  # pushed as the cancellation came: no PR, so it goes
                fix.branch = stop.result.branch
                await self._delete_pushed(fix, tree, timeout=self.grace)
            elif not stop.finished:
                error = "the push was still running when the fix was cancelled"
                self.record.left_behind(fix, tree.branch, error)
            raise
        fix.branch = pushed.branch
        fix.details["commit"] = pushed.sha  # a retry after a close deletes the branch at it
        return pushed

    async def _open_pr(
        self,
        fix: Fix,
        tree: WorktreeLike,
        github: PullRequests,
        *,
        head: str,
        title: str,
        body: str,
        draft: bool,
    ) -> PullRef:
        s = self.settings

        def request() -> Coroutine[Any, Any, PullRef]:
            return github.open_or_update_pr(
                head=head, base=s.base_branch, title=title, body=body, labels=s.labels,
                draft=draft,
            )  # fmt: skip

        try:
            return await in_flight(request, self.grace)
        except BaseException as exc:
            opened = exc.result if isinstance(exc, Interrupted) else None
            if opened is not None:  # the PR exists: recorded, then the cancellation goes on
                self.record.pull_request(fix, opened, draft=draft)
                raise
            # no half-made fix left behind: the branch goes when its PR could not be opened
            cancelled = isinstance(exc, asyncio.CancelledError)
            await self._delete_pushed(fix, tree, timeout=self.grace if cancelled else None)
            raise

    async def _delete_pushed(
        self, fix: Fix, tree: WorktreeLike, *, timeout: float | None = None
    ) -> None:
        """Delete the branch of a PR that could not be opened (within `timeout`). If the remote
        refuses, or is too slow, the fix keeps the branch name and says so: a branch left
        behind must not be silent."""
        deleting = asyncio.ensure_future(tree.delete_branch())
        try:
            await asyncio.wait_for(asyncio.shield(deleting), timeout)
        except TimeoutError:
            deleting.add_done_callback(self._late_deletion)
            error = f"not deleted within {timeout:g} s of the cancellation; it may still be"
            self.record.left_behind(fix, fix.branch, error)
            return
        except Exception as exc:
            self.record.left_behind(fix, fix.branch, self.redact(str(exc) or type(exc).__name__))
            return
        fix.branch = ""

    def _late_deletion(self, task: asyncio.Future[None]) -> None:
        """A deletion that outlived its grace period: its failure is logged, not lost."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            error = self.redact(str(exc) or type(exc).__name__)
            log.warning("A fix branch deletion failed after the fix was cancelled.", error=error)


def commit_body(analysis: Analysis, group: ErrorGroup) -> str:
    """The commit message body: the analysis, so the history explains the change."""
    lines = [f"Root cause: {analysis.root_cause.strip()}", ""]
    if analysis.evidence:
        lines += ["Evidence:", *(f"- {' '.join(e.split())}" for e in analysis.evidence), ""]
    if analysis.risk.strip():
        lines += [f"Risk: {analysis.risk.strip()}", ""]
    lines.append(
        f"Watcher group {group.id}: {group.count} occurrences; confidence "
        f"{analysis.confidence:.0%}; analysed by {analysis.model or 'the model'} "
        f"({analysis.input_tokens} + {analysis.output_tokens} tokens)."
    )
    return "\n".join(lines)
