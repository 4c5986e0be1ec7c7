"""The auto-fix orchestrator: one error group in, one recorded `Fix` out.

`run_one`: redact the group → read the code around its frames (in a thread) → Claude's analysis
→ decide by fixability and confidence (root cause only | patch written locally | pull request)
→ guard the edits against the base commit → dry run: write `<group>.patch` and `<group>.md`;
else in a private worktree: write, verify, commit, push → open or update the PR → record.

Every failure becomes a recorded Fix ("failed" or "rejected", with the reason), never an
exception, and a branch pushed for a PR that then failed is deleted again. One PR per
fingerprint: the store is checked first, and GitHub updates an open PR for the same branch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import structlog

from watcher import report
from watcher.config import AutofixConfig, Config
from watcher.fix import candidates as gating
from watcher.fix.analyze import AnalysisError, Analyzer, BudgetExceeded, TokenBudget
from watcher.fix.analyze import estimate_tokens as _estimate
from watcher.fix.context import FixContext, build_context
from watcher.fix.git import Identity, PushResult, VerifyResult, Worktree
from watcher.fix.github import GitHub, GitHubError, PullRef, pr_body, pr_title
from watcher.fix.patch import Edit, EditLike, GuardResult, SecretScan, guard
from watcher.fix.policy import Policy
from watcher.fix.prompt import build_prompt, sanitize
from watcher.fix.redact import Redactor
from watcher.fix.schema import Analysis
from watcher.metrics import Metrics
from watcher.model import ErrorGroup, Fix
from watcher.store import Store

log = structlog.get_logger("watcher.fix.pipeline")

HOUR = 3600.0
MAX_REPORT_DIFF = 6000  # characters of the diff shown in a report section


class AnalyzerLike(Protocol):
    """What the pipeline needs of `Analyzer`."""

    async def analyze(self, ctx: FixContext, group: ErrorGroup) -> Analysis: ...
    async def aclose(self) -> None: ...


class PullRequests(Protocol):
    """What the pipeline needs of `GitHub`."""

    async def open_or_update_pr(
        self,
        *,
        head: str,
        base: str,
        title: str,
        body: str,
        labels: Sequence[str] = (),
        draft: bool = True,
    ) -> PullRef: ...
    async def pr_state(self, number: int) -> str: ...
    async def close(self) -> None: ...


class WorktreeLike(Protocol):
    """What the pipeline needs of `Worktree` (an async context manager)."""

    path: Path

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def write(self, result: GuardResult) -> list[str]: ...
    async def verify(self, command: str, *, timeout: float = ...) -> VerifyResult: ...
    async def commit(
        self,
        subject: str,
        body: str = "",
        *,
        author: Identity = ...,
        committer: Identity | None = ...,
    ) -> str | None: ...
    async def push(self) -> PushResult: ...
    async def delete_branch(self) -> None: ...


WorktreeFactory = Callable[[ErrorGroup], WorktreeLike]
GitHubFactory = Callable[[], PullRequests]  # raises GitHubError when GitHub is not configured


class FixPipeline:
    """Runs fixes for groups and records them; `async with` closes the clients."""

    def __init__(
        self,
        settings: AutofixConfig,
        store: Store,
        *,
        analyzer: AnalyzerLike,
        github: GitHubFactory,
        worktree: WorktreeFactory,
        redactor: Redactor,
        code_redactor: Redactor | None = None,
        budget: TokenBudget | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
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
        self.policy = Policy(
            max_files=settings.max_files, max_changed_lines=settings.max_changed_lines
        ).with_extra_denylist(settings.deny_paths)
        self.gate = gating.Gate(
            settings.min_occurrences,
            settings.retry_failed_after,
            settings.llm_deadline + settings.verify_timeout + 6 * settings.git_timeout + 300,
        )
        self._github_factory, self._worktree = github, worktree
        self._github: PullRequests | None = None
        self._running: set[str] = set()
        self._seed_budget()

    @classmethod
    def from_config(
        cls,
        config: Config,
        store: Store,
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
        analyzer = Analyzer(
            model=s.model,
            max_tokens=s.max_output_tokens,
            max_retries=s.llm_max_retries,
            timeout=s.llm_timeout,
            deadline=s.llm_deadline,
            metrics=metrics,
            budget=budget,
            redact=redactor.redact,
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
            budget=budget, metrics=metrics,
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
        chosen = [
            g
            for g in groups
            if gating.skip_reason(g, self._history(g.id), self.gate, now, dry_run=dry) is None
        ]
        try:
            self.budget.check()
        except BudgetExceeded:
            return []
        used = max(self.budget.fixes_used(), self._attempts_last_hour(now))
        return gating.rank(chosen)[: max(self.settings.max_fixes_per_hour - used, 0)]

    async def run_candidates(self, groups: Iterable[ErrorGroup]) -> list[Fix]:
        """Try every candidate among `groups`, one after the other, until the budget runs out."""
        copies = [dataclasses.replace(g) for g in groups if g.fixable]  # the engine mutates them
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
            return self._skipped(group, "a fix for this group is already running", "running")
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
            skipped = self._skipped(group, gating.describe_block(blocking), "exists")
            skipped.pr_url = blocking.pr_url
            return skipped
        fix = Fix(fix_id, group.id, "pending", self.clock())
        fix.details["dry_run"] = dry_run
        try:
            if not dry_run and create_pr:
                # a missing token or repo is the config's fault, not the group's: refuse before
                # any tokens are spent, and record nothing that would hold the group back
                self._pull_requests()
        except GitHubError as exc:
            return self._skipped(group, str(exc), "config")
        try:
            ctx = await asyncio.to_thread(build_context, group, Path(self.settings.repo_path))
            # sized here too (the analyzer builds it again) so an over-budget run is refused
            # before a "pending" record exists that would count against the hour
            estimate = _estimate(build_prompt(ctx, self.redact), self.settings.max_output_tokens)
            self.budget.check(estimate)
        except BudgetExceeded as exc:
            if self.metrics is not None:  # what WatcherLLMBudgetExhausted watches
                self.metrics.llm_requests.labels("budget").inc()
            return self._skipped(group, str(exc), "budget")
        except Exception as exc:
            return await self._finish(fix, "failed", exc)
        await asyncio.to_thread(self.store.save_fix, fix)  # "pending": other processes skip it
        try:
            await self._attempt(fix, group, ctx, create_pr, dry_run)
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(fix, "failed", "cancelled"))
            raise
        except BudgetExceeded as exc:
            fix.details["skip"] = "budget"
            return await self._finish(fix, "skipped", exc)
        except Exception as exc:  # the contract: every failure is a recorded Fix
            return await self._finish(fix, "failed", exc)
        return await self._finish(fix, fix.status)

    async def _attempt(
        self, fix: Fix, group: ErrorGroup, ctx: FixContext, create_pr: bool, dry_run: bool
    ) -> None:
        try:
            analysis = await self.analyzer.analyze(ctx, group)
        except AnalysisError as exc:
            fix.details["tokens"] = {"input": exc.input_tokens, "output": exc.output_tokens}
            raise
        self._record_analysis(fix, analysis)
        s = self.settings
        decision = gating.decide(
            analysis,
            min_confidence_patch=s.min_confidence_patch,
            min_confidence_pr=s.min_confidence_pr,
            create_pr=create_pr,
        )
        fix.details["decision"] = decision.reason
        if decision.stage == "root_cause":
            fix.status = "analyzed"
        elif dry_run or decision.stage == "patch":
            # no fetch, no worktree: checked against the local checkout, nothing remote touched
            result = self._guard(analysis, Path(s.repo_path))
            self._apply_verdict(fix, result, "dry_run" if dry_run else "patched")
        else:
            await self._pull_request(fix, group, analysis)
        if dry_run or decision.stage == "patch":
            fix.details["files"] = self._write_outputs(fix, group)

    def _guard(self, analysis: Analysis, root: Path) -> GuardResult:
        edits: list[EditLike] = list(analysis.edits)
        test = analysis.test
        # the proposed regression test becomes a new file, unless that path is taken already
        if test and test.path and test.content is not None and not (root / test.path).exists():
            edits.append(Edit(test.path, "", test.content))
        return guard(edits, root, self.policy, secret_scan=self.secret_scan)

    def _apply_verdict(self, fix: Fix, result: GuardResult, status: str) -> bool:
        if not result.ok:
            fix.status, fix.error = "rejected", "; ".join(result.reasons)
            fix.details["reasons"] = list(result.reasons)
            return False
        # secrets out, emails kept: code holds addresses legitimately and the patch must apply
        fix.status, fix.diff = status, self.redact_code(result.diff)
        fix.details["stats"] = dataclasses.asdict(result.stats)
        return True

    async def _pull_request(self, fix: Fix, group: ErrorGroup, analysis: Analysis) -> None:
        github = self._pull_requests()
        async with self._worktree(group) as tree:
            result = self._guard(analysis, tree.path)  # the worktree is at the base commit
            if not self._apply_verdict(fix, result, "patched"):
                return
            tree.write(result)
            verified = await self._verify(fix, tree)
            if verified is None:
                return
            title = self.redact(pr_title(analysis.to_dict(), group))
            if not await self._commit(fix, tree, title, analysis, group):
                return
            pushed = await tree.push()
            fix.branch = pushed.branch
            try:
                ref = await self._open_pr(github, pushed, title, analysis, group, result, verified)
            except BaseException:
                # no half-made fix left behind: the branch goes when its PR could not be opened
                await self._delete_pushed(fix, tree)
                raise
        fix.status, fix.pr_url = "pr_open", ref.url
        fix.details.update(pr_number=ref.number, pr_created=ref.created, draft=verified[0])

    async def _delete_pushed(self, fix: Fix, tree: WorktreeLike) -> None:
        """Delete the branch of a PR that could not be opened. If the remote refuses that too,
        the fix keeps the branch name and says so: a branch left behind must not be silent."""
        try:
            await asyncio.shield(tree.delete_branch())
        except Exception as exc:
            error = self.redact(str(exc) or type(exc).__name__)
            fix.details["leftover_branch"] = {"branch": fix.branch, "error": error}
            log.error("Could not delete a fix branch.", branch=fix.branch, error=error)
            return
        fix.branch = ""

    async def _verify(self, fix: Fix, tree: WorktreeLike) -> tuple[bool, str] | None:
        """(draft, note for the PR body) after the verify command; None: do not push."""
        s = self.settings
        if not s.verify_command.strip():
            return s.draft, ""
        verdict = await tree.verify(s.verify_command, timeout=s.verify_timeout)
        output = self.redact(sanitize(verdict.output))
        fix.details["verify"] = {"ok": verdict.ok, "output": output}
        if not verdict.ok and s.verify_failure == "skip":
            fix.status, fix.error = "failed", "verify command failed; not pushed"
            return None
        return s.draft or not verdict.ok, _verify_section(s.verify_command, verdict.ok, output)

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

    async def _open_pr(
        self,
        github: PullRequests,
        pushed: PushResult,
        title: str,
        analysis: Analysis,
        group: ErrorGroup,
        result: GuardResult,
        verified: tuple[bool, str],
    ) -> PullRef:
        s = self.settings
        tokens = {"input": analysis.input_tokens, "output": analysis.output_tokens}
        body = pr_body(analysis.to_dict(), group, result.stats, tokens, None, redact=self.redact)
        draft, note = verified
        return await github.open_or_update_pr(
            head=pushed.branch,
            base=s.base_branch,
            title=title,
            body=body + self.redact(note),
            labels=s.labels,
            draft=draft,
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
            await asyncio.to_thread(self._record_state, fix)
            changed.append(fix)
        return changed

    def _record_state(self, fix: Fix) -> None:
        self.store.save_fix(fix)
        if fix.status == "merged":
            with contextlib.suppress(KeyError):  # the group may never have been stored
                self.store.set_group_status(fix.group_id, "fixed")

    async def run_forever(
        self,
        groups: Callable[[], Iterable[ErrorGroup]],
        *,
        interval: float,
        refresh_interval: float = 900.0,
    ) -> None:
        """For `watcher run`: every `interval`, try the candidates among `groups()`; every
        `refresh_interval`, refresh PR states. Never raises but on cancellation."""
        last_refresh = float("-inf")
        while True:
            await asyncio.sleep(interval)
            try:
                if time.monotonic() - last_refresh >= refresh_interval:
                    last_refresh = time.monotonic()
                    merged = {f.group_id for f in await self.refresh_prs() if f.status == "merged"}
                    # the live group too, or the engine's next persist writes its old status back
                    for group in groups():
                        if group.id in merged:
                            group.status = "fixed"
                await self.run_candidates(groups())
            except Exception as exc:  # a bug here must not stop the daemon
                log.error("Fix loop failed; retrying next interval.", error=repr(exc))

    # --- helpers -----------------------------------------------------------------------------

    def _pull_requests(self) -> PullRequests:
        if self._github is None:
            self._github = self._github_factory()
        return self._github

    def _history(self, group_id: str) -> list[Fix]:
        return self.store.list_fixes(group_id=group_id, limit=50)

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

    def _record_analysis(self, fix: Fix, analysis: Analysis) -> None:
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

    def _write_outputs(self, fix: Fix, group: ErrorGroup) -> list[str]:
        """`<output_dir>/<group>.patch` (when there is a diff) and `<group>.md`, redacted."""
        out = Path(self.settings.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]", "_", group.id)
        written = []
        if fix.diff:
            (out / f"{name}.patch").write_text(fix.diff, encoding="utf-8")
            written.append(str(out / f"{name}.patch"))
        section = report.render_section(1, group, report_analysis(fix))
        (out / f"{name}.md").write_text(self.redact(section) + "\n", encoding="utf-8")
        written.append(str(out / f"{name}.md"))
        return written

    def _skipped(self, group: ErrorGroup, reason: str, kind: str) -> Fix:
        fix = Fix(f"fix-{uuid.uuid4().hex[:12]}", group.id, "skipped", self.clock(), error=reason)
        fix.details["skip"] = kind
        self._count("skipped")
        log.info("Fix skipped.", group=group.id, reason=reason)
        return fix

    async def _finish(self, fix: Fix, status: str, error: object = None) -> Fix:
        fix.status = status
        if error is not None:
            fix.error = self.redact(str(error) or type(error).__name__)
        await asyncio.to_thread(self.store.save_fix, fix)
        self._count(status)
        log.info(
            "Fix done.", group=fix.group_id, status=status, pr=fix.pr_url or None,
            error=fix.error or None,
        )  # fmt: skip
        return fix

    def _count(self, status: str) -> None:
        if self.metrics is not None:
            self.metrics.fixes.labels(status).inc()


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


def _verify_section(command: str, ok: bool, output: str) -> str:
    if ok:
        return f"\n\n## Verification\n\n`{command}` passed in the fix worktree.\n"
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", output)), default=0))
    return (
        f"\n\n## Verification FAILED\n\n`{command}` failed in the fix worktree; this PR is a "
        f"draft until a human looks.\n\n{fence}text\n{output[-4000:]}\n{fence}\n"
    )


def report_analysis(fix: Fix) -> report.Analysis:
    """A recorded fix as the report's per-group analysis: root cause, proposed fix, PR link."""
    details = fix.details
    parts = [str(details["summary"])] if details.get("summary") else []
    if fix.status == "rejected":
        reasons = details.get("reasons") or [fix.error]
        parts.append("The proposed patch was refused:\n\n" + "\n".join(f"- {r}" for r in reasons))
    elif fix.status in ("failed", "skipped"):
        parts.append(f"The fix pipeline did not finish: {fix.error}")
    elif fix.status == "analyzed" and details.get("decision"):
        parts.append(f"Root cause only: {details['decision']}.")
    if fix.diff:
        diff = fix.diff if len(fix.diff) <= MAX_REPORT_DIFF else fix.diff[:MAX_REPORT_DIFF] + "…\n"
        parts.append(report.fenced(diff, "diff"))
    if details.get("files"):
        parts.append("Written to: " + ", ".join(f"`{f}`" for f in details["files"]))
    root_cause = fix.root_cause or (f"No analysis: {fix.error}" if fix.error else "")
    return report.Analysis(root_cause, "\n\n".join(parts), fix.confidence, fix.pr_url)
