"""The auto-fix orchestrator: one error group in, one recorded `Fix` out.

`run_one`: redact the group → read the code around its frames (in a thread) → Claude's analysis
→ decide by fixability and confidence (root cause only | patch written locally | pull request)
→ guard the edits against the base commit → dry run: write `<group>.patch` and `<group>.md`;
else in a private worktree: write, verify, commit, push → open or update the PR → record.

Every failure becomes a recorded Fix ("failed" or "rejected", with the reason), never an
exception, and a branch pushed for a PR that then failed is deleted again. A cancellation
records what really happened (the PR opened, the branch deleted or left behind) and goes on.
One PR per fingerprint: the store is checked first, and GitHub updates an open PR for the same
branch. Here: selection, budgets and the order of steps; the seams in `protocols`, the PR step in
`publish`, the recording in `outcomes`, the report view and output files in `reporting`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Self

import structlog

from watcher.config import AutofixConfig, Config
from watcher.fix import candidates as gating
from watcher.fix.analyze import AnalysisError, Analyzer, BudgetExceeded, TokenBudget
from watcher.fix.analyze import estimate_tokens as _estimate
from watcher.fix.context import FixContext, build_context
from watcher.fix.git import GitError, Worktree, head_commit
from watcher.fix.github import GitHub, GitHubError
from watcher.fix.outcomes import Recorder
from watcher.fix.patch import GuardResult, SecretScan
from watcher.fix.policy import Policy
from watcher.fix.prompt import build_prompt, sanitize
from watcher.fix.protocols import (
    AnalyzerLike,
    GitHubFactory,
    PullRequests,
    WorktreeFactory,
    WorktreeLike,
)
from watcher.fix.providers import Endpoint
from watcher.fix.publish import CANCEL_GRACE, Publisher
from watcher.fix.publish import commit_body as commit_body  # re-exported, as all below
from watcher.fix.redact import Redactor
from watcher.fix.repair import RepairLoop, VerifierLike
from watcher.fix.reporting import MAX_REPORT_DIFF as MAX_REPORT_DIFF
from watcher.fix.reporting import report_analysis as report_analysis
from watcher.fix.reporting import write_outputs
from watcher.fix.sandbox import Limits, Sandbox
from watcher.fix.schema import Analysis
from watcher.fleet.leader import NOT_LEADER
from watcher.metrics import Metrics
from watcher.model import ErrorGroup, Fix
from watcher.store import LeaseLost, StateStore

log = structlog.get_logger("watcher.fix.pipeline")

HOUR = 3600.0


class FixPipeline:
    """Runs fixes for groups and records them; `async with` closes the clients."""

    def __init__(
        self,
        settings: AutofixConfig,
        store: StateStore,
        *,
        analyzer: AnalyzerLike,
        github: GitHubFactory,
        worktree: WorktreeFactory,
        redactor: Redactor,
        code_redactor: Redactor | None = None,
        budget: TokenBudget | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        cancel_grace: float = CANCEL_GRACE,
        verifier: VerifierLike | None = None,
        public_url: str = "",
    ) -> None:
        """`cancel_grace`: seconds a cancelled fix gives an in-flight push or PR request to
        answer, and then the deletion of a branch it pushed (see watcher.fix.publish).
        `verifier`: runs verify_command in a sandbox (default: watcher.fix.sandbox.Sandbox
        over repo_path); `public_url`: [http] public_url, for the PR's link to the pattern."""
        self.settings, self.store, self.analyzer = settings, store, analyzer
        self.redact = redactor.redact
        # secrets without emails: for the guard's scan of added code and for diffs
        code_redactor = code_redactor or Redactor(redact_emails=False)
        self.secret_scan: SecretScan = code_redactor.findings
        self.redact_code = code_redactor.redact
        self.budget = budget or TokenBudget(
            settings.max_tokens_per_hour, settings.max_fixes_per_hour
        )
        self.metrics, self.clock = metrics, clock
        self.on_fix: Callable[[ErrorGroup, Fix], None] | None = None
        # fixes whose PR was merged (their patterns are resolved in the store by then)
        self.on_merged: Callable[[list[Fix]], Awaitable[None]] | None = None
        self.policy = Policy(
            max_files=settings.max_files, max_changed_lines=settings.max_changed_lines
        ).with_extra_denylist(settings.deny_paths)
        self.gate = gating.Gate(
            settings.min_occurrences,
            settings.retry_failed_after,
            settings.llm_deadline + settings.verify_timeout + 6 * settings.git_timeout + 300,
        )
        self.record = Recorder(
            store, redact=self.redact, redact_code=self.redact_code, metrics=metrics, clock=clock
        )
        self.publisher = Publisher(
            settings, self.record, worktree=worktree, policy=self.policy,
            secret_scan=self.secret_scan, grace=cancel_grace, public_url=public_url,
        )  # fmt: skip
        if verifier is None and settings.verify_command.strip():
            verifier = Sandbox(
                settings.repo_path, mode=settings.sandbox, passthrough=settings.verify_env,
                limits=Limits(timeout=settings.verify_timeout, cpu=int(settings.verify_cpu)),
                clean=lambda text: self.redact(sanitize(text)),
            )  # fmt: skip
        self.verifier = verifier
        self._github_factory = github
        self._worktree_factory = worktree
        self._github: PullRequests | None = None
        self._running: set[str] = set()
        self._seed_budget()

    @classmethod
    def from_config(
        cls,
        config: Config,
        store: StateStore,
        *,
        metrics: Metrics | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> FixPipeline:
        """The real components: Anthropic (ANTHROPIC_API_KEY/ANTHROPIC_BASE_URL from the
        environment), GitHub (token from the variable named by `token_env`), git worktrees."""
        s, env = config.autofix, os.environ if environ is None else environ
        patterns = config.redact.patterns
        redactor = Redactor(extra_patterns=patterns)
        budget = TokenBudget(s.max_tokens_per_hour, s.max_fixes_per_hour)
        endpoint = Endpoint(
            provider=s.provider, base_url=s.base_url, region=s.region, project=s.project,
            max_retries=s.llm_max_retries, timeout=s.llm_timeout,
        )  # fmt: skip
        analyzer = Analyzer(
            model=s.model,
            max_tokens=s.max_output_tokens,
            deadline=s.llm_deadline,
            metrics=metrics,
            budget=budget,
            redact=redactor.redact,
            endpoint=endpoint,
            max_tool_calls=s.max_tool_calls,
            max_tool_bytes=s.max_tool_bytes,
        )
        token = env.get(s.token_env, "")

        def github() -> PullRequests:
            if not s.github_repo:
                raise GitHubError('autofix.github_repo is not set ("owner/name")')
            if not token:
                raise GitHubError(f"no GitHub token: set {s.token_env}")
            return GitHub(s.github_repo, token=token, base_url=s.github_api_url, metrics=metrics)

        def worktree(group: ErrorGroup) -> WorktreeLike:
            return Worktree(
                s.repo_path, s.base_branch, s.remote, category=group.category, fix_id=group.id,
                token=token or None, timeout=s.git_timeout, environ=env,
            )  # fmt: skip

        return cls(
            s, store, analyzer=analyzer, github=github, worktree=worktree, redactor=redactor,
            code_redactor=Redactor(extra_patterns=patterns, redact_emails=False),
            budget=budget, metrics=metrics, public_url=config.http.public_url,
        )  # fmt: skip

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Anthropic and GitHub clients."""
        await self.analyzer.aclose()
        if self._github is not None:
            await self._github.close()

    # --- candidates --------------------------------------------------------------------------

    def candidates(
        self, groups: Iterable[ErrorGroup], *, dry_run: bool | None = None
    ) -> list[ErrorGroup]:
        """The groups to try now, best first, cut to what the hourly budgets allow.

        Blocking (store reads): call it in a thread from async code, as run_candidates does.
        """
        dry = self.settings.dry_run if dry_run is None else dry_run
        now = self.clock()
        holders = self._location_holders(now)
        chosen = []
        for g in groups:
            if gating.skip_reason(g, self._history(g.id), self.gate, now, dry_run=dry) is not None:
                continue
            holder = gating.held_by(g, holders)
            if holder is not None:
                log.info("Fragment of a bug fixed in an earlier run: not tried.", group=g.id,
                         of=holder.group_id, fix=holder.id)  # fmt: skip
                continue
            chosen.append(g)
        try:
            self.budget.check()
        except BudgetExceeded:
            return []
        used = max(self.budget.fixes_used(), self._attempts_last_hour(now))
        kept, dropped = gating.fragments(gating.rank(chosen))
        for group_id, first in dropped.items():
            log.info("Fragment of another group's bug: not tried.", group=group_id, of=first)
        return kept[: max(self.settings.max_fixes_per_hour - used, 0)]

    async def run_candidates(self, groups: Iterable[ErrorGroup]) -> list[Fix]:
        """Try every candidate among `groups`, one after the other, until the budget runs out."""
        copies = [dataclasses.replace(g) for g in groups]  # the engine mutates them
        fixes: list[Fix] = []
        for group in await asyncio.to_thread(self.candidates, copies):
            fix = await self.run_one(group)
            fixes.append(fix)
            if fix.details.get("skip") in ("budget", "config"):  # the next ones would fail alike
                break
        return fixes

    def latest_fixes(self, group_ids: Iterable[str]) -> dict[str, Fix]:
        """The newest settled fix of each group that has one (for reports). Blocking."""
        found: dict[str, Fix] = {}
        for group_id in group_ids:
            settled = [f for f in self._history(group_id) if f.status not in ("pending", "skipped")]
            if settled:
                found[group_id] = settled[0]
        return found

    # --- one group ---------------------------------------------------------------------------

    async def refusal(self, group_id: str) -> str | None:
        """Why run_one would not start for this group now (running, PR open, budget), or None:
        lets the HTTP API answer at once and run the fix in the background."""
        if group_id in self._running:
            return "a fix for this group is already running"
        history = await asyncio.to_thread(self._history, group_id)
        blocking = gating.blocking_fix(history, self.gate, self.clock())
        if blocking is not None:
            return gating.describe_block(blocking)
        try:
            self.budget.check()
        except BudgetExceeded as exc:
            return str(exc)
        return None

    async def run_one(
        self,
        group: ErrorGroup,
        *,
        create_pr: bool = True,
        dry_run: bool | None = None,
        fix_id: str | None = None,
    ) -> Fix:
        """Analyse `group` and take its fix as far as confidence and config allow; never raises
        (but cancellation). A refusal to start (PR open, running, budget) is returned with
        status "skipped" and not stored. `fix_id`: the id to record under (default: new)."""
        dry = self.settings.dry_run if dry_run is None else dry_run
        if group.id in self._running:
            return self.record.skipped(group, "a fix for this group is already running", "running")
        self._running.add(group.id)
        try:
            fix_id = fix_id or f"fix-{uuid.uuid4().hex[:12]}"
            fix = await self._run(_clean_group(group, self.redact), create_pr, dry, fix_id)
        finally:
            self._running.discard(group.id)
        if self.on_fix is not None and fix.status != "skipped":
            self.on_fix(group, fix)  # e.g. the alerter's "PR opened" message
        return fix

    async def _run(self, group: ErrorGroup, create_pr: bool, dry_run: bool, fix_id: str) -> Fix:
        history = await asyncio.to_thread(self._history, group.id)
        blocking = gating.blocking_fix(history, self.gate, self.clock())
        if blocking is not None:
            skipped = self.record.skipped(group, gating.describe_block(blocking), "exists")
            skipped.pr_url = blocking.pr_url
            return skipped
        holders = await asyncio.to_thread(self._location_holders, self.clock())
        holder = gating.held_by(group, holders)
        if holder is not None:
            skipped = self.record.skipped(group, gating.describe_holder(holder), "exists")
            skipped.pr_url = holder.pr_url
            return skipped
        fix = Fix(fix_id, group.id, "pending", self.clock())
        fix.details["dry_run"] = dry_run
        fix.details["location"] = gating.location(group)
        previous = gating.closed_attempt(history)
        try:
            if not dry_run and create_pr:
                # a missing token or repo is the config's fault, not the group's: refuse before
                # any tokens are spent, and record nothing that would hold the group back
                self._pull_requests()
        except GitHubError as exc:
            return self.record.skipped(group, str(exc), "config")
        try:
            ctx = await asyncio.to_thread(
                build_context, group, Path(self.settings.repo_path),
                service_paths=self.settings.service_dirs(),
            )  # fmt: skip
            # sized here too (the analyzer builds it again) so an over-budget run is refused
            # before a "pending" record exists that would count against the hour
            estimate = _estimate(build_prompt(ctx, self.redact), self.settings.max_output_tokens)
            self.budget.check(estimate)
        except BudgetExceeded as exc:
            if self.metrics is not None:  # what WatcherLLMBudgetExhausted watches
                self.metrics.llm_requests.labels("budget").inc()
            return self.record.skipped(group, str(exc), "budget")
        except Exception as exc:
            return await self.record.finish(fix, "failed", exc)
        try:  # "pending": other processes skip it
            await asyncio.to_thread(self.record.save, fix)
        except LeaseLost:
            return self.record.skipped(group, NOT_LEADER, "leader")
        try:
            return await self._attempt_recorded(fix, group, ctx, previous, create_pr, dry_run)
        except LeaseLost as exc:  # this watcher was deposed meanwhile: the new leader decides
            return self.record.deposed(fix, exc)

    async def _attempt_recorded(
        self,
        fix: Fix,
        group: ErrorGroup,
        ctx: FixContext,
        previous: Fix | None,
        create_pr: bool,
        dry_run: bool,
    ) -> Fix:
        try:
            if previous is not None:
                await self._after_close(fix, group, ctx, previous, dry_run)
            await self._attempt(fix, group, ctx, create_pr, dry_run)
        except asyncio.CancelledError:
            # synchronously: an await here could be cancelled in turn and the record lost
            self.record.cancelled(fix)
            raise
        except BudgetExceeded as exc:
            fix.details["skip"] = "budget"
            return await self.record.finish(fix, "skipped", exc)
        except Exception as exc:  # the contract: every failure is a recorded Fix
            return await self.record.finish(fix, "failed", exc)
        return await self.record.finish(fix, fix.status)

    async def _attempt(
        self, fix: Fix, group: ErrorGroup, ctx: FixContext, create_pr: bool, dry_run: bool
    ) -> None:
        try:
            await self._analyze_and_act(fix, group, ctx, create_pr, dry_run)
        finally:
            if ctx.tool_calls:  # what the model read of the repo, for the record
                fix.details["tool_calls"] = [call.to_dict() for call in ctx.tool_calls]

    async def _analyze_and_act(
        self, fix: Fix, group: ErrorGroup, ctx: FixContext, create_pr: bool, dry_run: bool
    ) -> None:
        try:
            first = await self.analyzer.analyze(ctx, group)
        except AnalysisError as exc:
            fix.details["tokens"] = {"input": exc.input_tokens, "output": exc.output_tokens}
            raise
        self.record.analysis(fix, first)
        s = self.settings
        decision = gating.decide(
            first,
            min_confidence_patch=s.min_confidence_patch,
            min_confidence_pr=s.min_confidence_pr,
            create_pr=create_pr,
            min_fixability=s.min_fixability,
        )
        fix.details["decision"] = decision.reason
        loop = self._loop(ctx)
        if decision.stage == "root_cause":
            fix.status = "analyzed"
        elif dry_run or decision.stage == "patch":
            # no fetch, no worktree: against the local checkout, nothing remote touched
            root = Path(s.repo_path)
            commit = await head_commit(root)
            outcome = await loop.run(first, ctx, group, root=root, commit=commit)
            self.publisher.settle(fix, outcome, "dry_run" if dry_run else "patched")
        else:
            await self.publisher.publish(fix, group, first, ctx, self._pull_requests(), loop)
        if dry_run or decision.stage == "patch":
            fix.details["files"] = write_outputs(fix, group, s.output_dir, self.redact)

    async def _after_close(
        self, fix: Fix, group: ErrorGroup, ctx: FixContext, previous: Fix, dry_run: bool
    ) -> None:
        """A retry after a reviewer closed the last PR: their comments and the rejected patch
        go into the prompt, and (for a real run) that PR's branch is deleted, unless someone
        added work to it. Failures here are logged and recorded, never fatal."""
        number = previous.details.get("pr_number")
        notes: list[str] = []
        try:
            if isinstance(number, int):
                notes = [n.line() for n in await self._pull_requests().review_notes(number)]
        except GitHubError as exc:
            log.warning("Cannot read the closed PR's comments.", error=self.redact(str(exc)))
        ctx.evidence["previous_attempt"] = {
            "pr_url": previous.pr_url, "diff": previous.diff, "notes": notes,
        }  # fmt: skip
        fix.details["previous"] = {"fix": previous.id, "pr_url": previous.pr_url,
                                   "notes": len(notes)}  # fmt: skip
        sha = str(previous.details.get("commit") or "")
        if dry_run or not previous.branch:
            return
        try:
            deleted = await self._worktree_factory(group).delete_stale(previous.branch, sha)
        except (GitError, OSError) as exc:
            deleted = False
            log.warning("Stale fix branch not deleted.", error=self.redact(str(exc)))
        fix.details["stale_branch"] = {"branch": previous.branch, "deleted": deleted}
        log.info("Stale fix branch.", branch=previous.branch, deleted=deleted, group=group.id)

    def _loop(self, ctx: FixContext) -> RepairLoop:
        """The repair loop for one fix: its guard refuses edits to files the model never saw
        (shown in the prompt, or read with its tools up to that round)."""
        s = self.settings

        def guard(answer: Analysis, root: Path) -> GuardResult:
            return self.publisher.guard(answer, root, {f.path for f in ctx.files} | ctx.read)

        return RepairLoop(
            self.analyzer,
            guard,
            verifier=self.verifier,
            verify_command=s.verify_command,
            repair_rounds=s.repair_rounds,
            min_fixability=s.min_fixability,
        )

    # --- PR state ----------------------------------------------------------------------------

    async def refresh_prs(self) -> list[Fix]:
        """Ask GitHub about every fix with an open PR; record merged/closed ones (a merge marks
        the group "fixed"). Returns the fixes that changed; errors are logged, not raised."""
        fixes = await asyncio.to_thread(self.store.list_fixes, status="pr_open", limit=1000)
        if not fixes:
            return []
        try:
            github = self._pull_requests()
        except GitHubError as exc:
            log.warning("Cannot check pull requests.", error=self.redact(str(exc)))
            return []
        return await self.record.pr_states(fixes, github)

    async def run_forever(
        self,
        groups: Callable[[], Iterable[ErrorGroup]],
        *,
        interval: float,
        refresh_interval: float = 900.0,
        leading: Callable[[], bool] | None = None,
    ) -> None:
        """For `watcher run`: every `interval`, try the candidates among `groups()`; every
        `refresh_interval`, refresh PR states; only while `leading()` (the fleet's leader).
        Never raises but on cancellation."""
        last_refresh = float("-inf")
        while True:
            await asyncio.sleep(interval)
            if leading is not None and not leading():  # a follower: the leader runs fixes
                continue
            try:
                if time.monotonic() - last_refresh >= refresh_interval:
                    last_refresh = time.monotonic()
                    merged = [f for f in await self.refresh_prs() if f.status == "merged"]
                    if self.on_merged is not None:
                        await self.on_merged(merged)  # the daemon resolves its live groups
                    ids = {f.group_id for f in merged}
                    # the live group too, or the engine's next persist writes its old status back
                    for group in groups():
                        if group.id in ids:
                            group.status = "fixed"
                await self.run_candidates(groups())
            except Exception as exc:  # a bug here must not stop the daemon
                log.error("Fix loop failed; retrying next interval.", error=repr(exc))

    def adopt_pending(self, epoch: int) -> list[Fix]:
        """On becoming the leader at `epoch`: settle the "pending" fixes earlier leaders left
        (their process died or lost the lease mid-fix), so their groups are not held back for
        `stale_after`. One stopped before its PR step is retried at once ("skipped"); one
        stopped while pushing or opening its PR is "failed" (a PR may exist: not retried
        automatically for retry_failed_after). Blocking; returns the fixes settled."""
        settled = []
        for fix in self.store.list_fixes(status="pending", limit=1000):
            if int(fix.details.get("leader_epoch", 0)) >= epoch:
                continue  # this tenure's own (an API request already running)
            if fix.details.get("publishing"):
                where = fix.branch or "the fix branches"
                fix.status, fix.error = "failed", f"its leader stopped publishing it; see {where}"
            else:
                fix.status, fix.error = "skipped", "its leader stopped before it finished"
                fix.details["skip"] = "leader"
            self.record.save(fix)
            settled.append(fix)
            log.info("Fix left by an earlier leader settled.", fix=fix.id, status=fix.status)
        return settled

    # --- helpers -----------------------------------------------------------------------------

    def _pull_requests(self) -> PullRequests:
        if self._github is None:
            self._github = self._github_factory()
        return self._github

    def _history(self, group_id: str) -> list[Fix]:
        return self.store.list_fixes(group_id=group_id, limit=50)

    def _location_holders(self, now: float) -> dict[str, Fix]:
        """Blocking: the fixes holding a code location (see gating.location_holders)."""
        fixes = [
            f for s in gating.HOLDS_LOCATION for f in self.store.list_fixes(status=s, limit=1000)
        ]
        return gating.location_holders(fixes, self.gate, now)

    def _attempts_last_hour(self, now: float) -> int:
        return gating.attempts_since(self.store.list_fixes(limit=1000), now - HOUR)

    def _seed_budget(self) -> None:
        """A restarted process still owes the last hour's spend (charged as of now: it errs on
        the side of spending less)."""
        since = self.clock() - HOUR
        for fix in self.store.list_fixes(limit=1000):
            if fix.created >= since and fix.status not in gating.NOT_AN_ATTEMPT:
                tokens = fix.details.get("tokens") or {}
                self.budget.charge(int(tokens.get("input", 0)) + int(tokens.get("output", 0)))


def _clean_group(group: ErrorGroup, redact: Callable[[str], str]) -> ErrorGroup:
    """A copy whose log-derived text is cleaned and redacted (frames kept: they locate code).

    Cleaned first: an invisible character inside a token would hide it from the redactor."""

    def clean(text: str) -> str:
        return redact(sanitize(text))

    return dataclasses.replace(
        group,
        template=clean(group.template),
        suggested_fix=clean(group.suggested_fix),
        samples=[dataclasses.replace(s, text=clean(s.text)) for s in group.samples],
        sources={clean(k): v for k, v in group.sources.items()},
        frames=list(group.frames),
        window_counts=dict(group.window_counts),
    )
