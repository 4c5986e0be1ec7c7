"""Recording a fix's outcome: the fields each outcome sets, then the store, metric and log line.

A finished fix is saved in a thread, as all store access from async code is. A cancelled one is
saved synchronously before the cancellation goes on: an await there could be cancelled in turn
(a second signal, the loop shutting down) and the record lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable

import structlog

from watcher.fix.github import GitHubError, PullRef
from watcher.fix.patch import GuardResult
from watcher.fix.protocols import PullRequests
from watcher.fix.schema import Analysis
from watcher.group import lifecycle
from watcher.metrics import Metrics
from watcher.model import ErrorGroup, Fix
from watcher.store import Fence, StateStore

log = structlog.get_logger("watcher.fix.pipeline")  # one logger for the whole pipeline


class Recorder:
    """Sets the outcome fields of fixes, stores them, counts them in watcher_fixes_total."""

    def __init__(
        self,
        store: StateStore,
        *,
        redact: Callable[[str], str],
        redact_code: Callable[[str], str],
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.redact, self.redact_code = store, redact, redact_code
        self.metrics, self.clock = metrics, clock
        # the leader's fence (watcher.fleet.leader.Leader.fence) on a shared state: every fix
        # write then lands only while this watcher leads (else LeaseLost, nothing written)
        self.fence: Callable[[], Fence | None] = lambda: None

    def save(self, fix: Fix) -> None:
        """Store `fix` under the fence, with the epoch it was written at. Blocking."""
        fence = self.fence()
        if fence is not None:
            fix.details.setdefault("leader_epoch", fence.epoch)
        self.store.save_fix(fix, fence=fence)

    # --- the fields of each outcome -----------------------------------------------------------

    def analysis(self, fix: Fix, analysis: Analysis) -> None:
        """The model's analysis, redacted, and its cost."""
        fix.root_cause = self.redact(analysis.root_cause)
        fix.confidence = analysis.confidence
        fix.details.update(
            summary=self.redact(analysis.summary),
            fixability=analysis.fixability,
            evidence=[self.redact(e) for e in analysis.evidence],
            risk=self.redact(analysis.risk),
            model=analysis.model,
            tokens={"input": analysis.input_tokens, "output": analysis.output_tokens},
        )

    def verdict(self, fix: Fix, result: GuardResult, status: str) -> bool:
        """The guard's verdict: "rejected" with its reasons, or `status` with the diff. True
        when the patch was accepted."""
        if not result.ok:
            fix.status, fix.error = "rejected", "; ".join(result.reasons)
            fix.details["reasons"] = list(result.reasons)
            return False
        # secrets out, emails kept: code holds addresses legitimately and the patch must apply
        fix.status, fix.diff = status, self.redact_code(result.diff)
        fix.details["stats"] = dataclasses.asdict(result.stats)
        return True

    def pull_request(self, fix: Fix, ref: PullRef, *, draft: bool) -> None:
        """The PR opened (or updated) for the fix."""
        fix.status, fix.pr_url = "pr_open", ref.url
        fix.details.update(pr_number=ref.number, pr_created=ref.created, draft=draft)

    def left_behind(self, fix: Fix, branch: str, error: str) -> None:
        """A pushed branch that may outlive the fix: named, never silent."""
        fix.branch = branch
        fix.details["leftover_branch"] = {"branch": branch, "error": error}
        log.error("Could not delete a fix branch.", branch=branch, error=error)

    # --- recording ----------------------------------------------------------------------------

    def skipped(self, group: ErrorGroup, reason: str, kind: str) -> Fix:
        """A refusal to start: returned, counted, logged, not stored."""
        fix = Fix(f"fix-{uuid.uuid4().hex[:12]}", group.id, "skipped", self.clock(), error=reason)
        fix.details["skip"] = kind
        self.count("skipped")
        log.info("Fix skipped.", group=group.id, reason=reason)
        return fix

    def deposed(self, fix: Fix, error: BaseException) -> Fix:
        """A fix this watcher can no longer record (it lost the leadership): abandoned, left
        "pending" in the store for the new leader to settle (Pipeline.adopt_pending)."""
        fix.status, fix.error = "skipped", str(error)
        fix.details["skip"] = "leader"
        self.count("skipped")
        log.warning("Leadership lost during a fix; abandoned to the new leader.", fix=fix.id,
                    group=fix.group_id, error=str(error))  # fmt: skip
        return fix

    async def finish(self, fix: Fix, status: str, error: object = None) -> Fix:
        """Record `fix` with its final `status` (and the redacted `error`)."""
        fix.status = status
        if error is not None:
            fix.error = self.redact(str(error) or type(error).__name__)
        await asyncio.to_thread(self.save, fix)
        self._done(fix)
        return fix

    def cancelled(self, fix: Fix) -> Fix:
        """Record a fix whose task is being cancelled, synchronously (see the module doc).

        A PR opened before the cancellation is recorded as a normal success records it;
        anything else is "failed" ("cancelled"), naming a pushed branch still on the remote."""
        if fix.status != "pr_open":
            if fix.branch and "leftover_branch" not in fix.details:
                self.left_behind(fix, fix.branch, "cancelled before the branch could be deleted")
            fix.status, fix.error = "failed", "cancelled"
        try:
            self.save(fix)
        except Exception as exc:  # the cancellation must go on; the record is lost, say so
            log.error("Could not record a cancelled fix.", fix=fix.id, error=repr(exc))
            return fix
        self._done(fix)
        return fix

    async def pr_states(self, fixes: Iterable[Fix], github: PullRequests) -> list[Fix]:
        """Ask GitHub about the PRs of `fixes`; record the merged and closed ones. The fixes
        that changed; errors are logged, not raised."""
        changed = []
        for fix in fixes:
            number = fix.details.get("pr_number")
            if not isinstance(number, int):
                continue
            try:
                state = await github.pr_state(number)
            except GitHubError as exc:
                log.warning("PR state unknown.", pr=fix.pr_url, error=self.redact(str(exc)))
                continue
            if state == "open":
                continue
            fix.status = state
            fix.details["pr_state_checked"] = self.clock()
            await asyncio.to_thread(self.state, fix)
            changed.append(fix)
        return changed

    def state(self, fix: Fix) -> None:
        """A PR's new state: "merged" marks the group "fixed" and resolves the pattern (a
        recurrence after the merge regresses it), recorded in the activity list. Blocking."""
        self.save(fix)
        if fix.status != "merged":
            return
        group = self.store.get_group(fix.group_id)  # None: the group was never stored
        if group is not None:
            group.status = "fixed"
            entry = lifecycle.resolve(group, f"fix:{fix.id}", self.clock(), pr_url=fix.pr_url)
            self.store.commit([group], activity=[entry])

    def count(self, status: str) -> None:
        """watcher_fixes_total{status} += 1."""
        if self.metrics is not None:
            self.metrics.fixes.labels(status).inc()

    def _done(self, fix: Fix) -> None:
        self.count(fix.status)
        log.info(
            "Fix done.", group=fix.group_id, status=fix.status, pr=fix.pr_url or None,
            error=fix.error or None,
        )  # fmt: skip
