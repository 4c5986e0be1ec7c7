"""A fix task cancelled (SIGTERM) at each step records what really happened, then stops.

Real FixPipeline, real git (the sample app and a bare origin), the real anthropic SDK and
PyGithub against the local fakes. The task is cancelled during the analysis, right after the
push, as GitHub creates the pull request, and as the worktree is left after it; the remote's
hooks refuse or stall the branch deletion, or stall the push. Each time the cancellation
propagates within a bounded time, and the stored fix tells the truth: a PR that exists is
recorded as a normal success records it; a pushed branch without a PR is deleted, or named as
left behind when the remote does not delete it in time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.fakes.anthropic_api import AnthropicFake, rate_limited, tool_use
from tests.fakes.github_api import GitHubFake
from tests.test_autofix_e2e import FIX_INPUT, Shop, shop  # noqa: F401 - the fixture
from tests.test_fix_faults import Rig, github, pricing_group, rigged  # noqa: F401 - the fixture
from watcher.fix.git import PushResult, Worktree
from watcher.model import Fix

GRACE = 0.5  # the pipeline's cancel_grace in these tests
STALL = 3.0  # seconds a stalling remote hook holds a push
PROMPT = GRACE * 2 + 1.5  # a cancelled fix ends within this (two grace periods + local cleanup)


@dataclass
class Cancel:
    """Cancels the fix task at the named moment; `task` is the fix task, `at` when it fired."""

    moment: str = ""
    task: asyncio.Task[Fix] | None = None
    at: float = 0.0

    def __call__(self) -> None:
        assert self.task is not None
        self.at = time.monotonic()
        self.task.cancel()

    def at_moment(self, moment: str) -> None:
        """Cancel now if `moment` is the one asked for."""
        if moment == self.moment:
            self()


class CancellingWorktree(Worktree):
    """A real Worktree that cancels the fix task right after its push returned ("push") or as
    the fix leaves it after opening the PR ("exit")."""

    def __init__(self, *args: Any, cancel: Cancel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cancel = cancel

    async def push(self) -> PushResult:
        pushed = await super().push()
        self.cancel.at_moment("push")
        return pushed

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if e is None:
            self.cancel.at_moment("exit")
        await super().__aexit__(t, e, tb)


@pytest.fixture
def cancel() -> Cancel:
    """The canceller the rig's worktrees call; the test names its moment."""
    return Cancel()


@pytest.fixture
def rig(
    shop: Shop,  # noqa: F811 - the fixture imported above
    github: GitHubFake,  # noqa: F811 - the fixture imported above
    anthropic_fake: AnthropicFake,
    tmp_path: Path,
    cancel: Cancel,
) -> Iterator[Rig]:
    """The fault tests' rig, with cancelling worktrees and a short cancel grace."""

    def worktree(*args: Any, **kwargs: Any) -> CancellingWorktree:
        return CancellingWorktree(*args, cancel=cancel, **kwargs)

    with rigged(
        shop, github, anthropic_fake, tmp_path, worktree=worktree, cancel_grace=GRACE
    ) as made:
        yield made


async def run_cancelled(
    rig: Rig, cancel: Cancel, *, when: Callable[[], Awaitable[None]] | None = None
) -> Fix:
    """Run one fix for the pricing group, cancelled as `cancel` (or, after `when`, the test)
    says; assert the cancellation propagated promptly; the stored fix."""
    cancel.task = asyncio.create_task(rig.pipeline.run_one(pricing_group()))
    if when is not None:
        await when()
        cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancel.task
    assert cancel.at, "the moment never came"
    assert time.monotonic() - cancel.at < PROMPT
    [fix] = rig.store.list_fixes(group_id=pricing_group().id)
    return fix


async def until(check: Callable[[], object], timeout: float = 15.0) -> None:
    """Wait until `check()` is true (the remote's stalled hook finishing, say)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def hook(rig: Rig, body: str) -> None:
    """A pre-receive hook on the bare origin; `$new` is the pushed sha (zeros: a deletion)."""
    path = rig.shop.remote / "hooks" / "pre-receive"
    path.write_text(f"#!/bin/sh\nwhile read old new ref; do\n{body}\ndone\n")
    path.chmod(0o755)


DELETION = '  case "$new" in 0000000000000000000000000000000000000000) {};; esac'


# --- nothing pushed yet ----------------------------------------------------------------------


async def test_cancelled_during_the_analysis(rig: Rig, cancel: Cancel) -> None:
    """Cancelled while the model is asked: "failed" ("cancelled"), no worktree, nothing sent to
    the remote or to GitHub."""
    rig.model.script(rate_limited(30))  # the SDK waits 30 s before retrying: the cancel lands

    async def asked() -> None:
        await until(lambda: rig.model.messages)

    fix = await run_cancelled(rig, cancel, when=asked)
    assert (fix.status, fix.error, fix.branch, fix.pr_url) == ("failed", "cancelled", "", "")
    assert rig.remote_branches() == [] and rig.github.requests == []
    assert rig.local_leftovers() == ([], 1)


# --- pushed, no PR ---------------------------------------------------------------------------


async def test_cancelled_right_after_the_push_deletes_the_branch(rig: Rig, cancel: Cancel) -> None:
    """Cancelled the moment the push returned: the PR is not requested, the pushed branch is
    deleted, the fix is "failed" ("cancelled") without a branch; a later run opens one PR."""
    rig.model.script(tool_use(FIX_INPUT))
    cancel.moment = "push"
    fix = await run_cancelled(rig, cancel)
    assert (fix.status, fix.error, fix.branch) == ("failed", "cancelled", "")
    assert "leftover_branch" not in fix.details
    assert rig.remote_branches() == [] and rig.github.requests == []
    await until(lambda: rig.local_leftovers() == ([], 1))

    rig.model.script(tool_use(FIX_INPUT))
    cancel.moment = ""
    assert await rig.pipeline.run_candidates([pricing_group()]) == []  # not before retry time
    rig.later()
    [retried] = await rig.pipeline.run_candidates([pricing_group()])
    assert retried.status == "pr_open" and len(rig.github.pulls) == 1


async def test_a_branch_the_remote_refuses_to_delete_is_named(rig: Rig, cancel: Cancel) -> None:
    """Cancelled after the push, and the remote refuses the deletion: the fix is "failed"
    ("cancelled") and names the branch left behind, with the remote's reason."""
    hook(rig, DELETION.format("echo 'deletion refused' >&2; exit 1"))
    rig.model.script(tool_use(FIX_INPUT))
    cancel.moment = "push"
    fix = await run_cancelled(rig, cancel)
    assert (fix.status, fix.error) == ("failed", "cancelled")
    [left] = rig.remote_branches()
    assert fix.branch == left == fix.details["leftover_branch"]["branch"]
    assert "pre-receive hook declined" in fix.details["leftover_branch"]["error"]
    assert rig.github.requests == []


async def test_a_deletion_that_outlasts_the_grace_is_named(rig: Rig, cancel: Cancel) -> None:
    """Cancelled after the push, and the remote holds the deletion past the grace period: the
    task ends anyway, and the fix names the branch as left behind (the deletion may still land,
    as it does here once the hook lets go)."""
    hook(rig, DELETION.format(f"sleep {STALL}"))
    rig.model.script(tool_use(FIX_INPUT))
    cancel.moment = "push"
    fix = await run_cancelled(rig, cancel)
    assert (fix.status, fix.error) == ("failed", "cancelled")
    [left] = rig.remote_branches()
    assert fix.branch == left == fix.details["leftover_branch"]["branch"]
    assert f"not deleted within {GRACE:g} s" in fix.details["leftover_branch"]["error"]
    await until(lambda: rig.remote_branches() == [])  # the stalled deletion went through


async def test_a_push_that_outlasts_the_grace_is_named(
    rig: Rig, cancel: Cancel, tmp_path: Path
) -> None:
    """Cancelled while the push is held by the remote past the grace period: the task ends
    anyway, and the fix names the branch the push may still create (it does, here)."""
    started = tmp_path / "push-started"
    hook(rig, f'  touch "{started}"; sleep {STALL}')
    rig.model.script(tool_use(FIX_INPUT))

    async def pushing() -> None:
        await until(started.exists, timeout=60)

    fix = await run_cancelled(rig, cancel, when=pushing)
    assert (fix.status, fix.error) == ("failed", "cancelled")
    branch = fix.details["leftover_branch"]["branch"]
    assert branch == fix.branch == "auto-fix/internal_error/pricing0001"
    assert "still running" in fix.details["leftover_branch"]["error"]
    assert rig.github.requests == []
    await until(lambda: rig.remote_branches() == [branch])  # the push did land


# --- the PR exists ---------------------------------------------------------------------------


def assert_recorded_with_its_pr(rig: Rig, fix: Fix) -> None:
    """The fix is stored as a normal success stores it: "pr_open", its PR and branch."""
    [pull] = rig.github.pulls.values()
    assert (fix.status, fix.error, fix.pr_url) == ("pr_open", "", pull["html_url"])
    assert fix.details["pr_number"] == pull["number"] and fix.details["pr_created"] is True
    assert fix.details["draft"] is True and fix.diff and fix.root_cause
    assert rig.remote_branches() == [pull["head"]["ref"]] == [fix.branch]


async def test_cancelled_as_github_creates_the_pr(rig: Rig, cancel: Cancel) -> None:
    """Cancelled once GitHub has created the PR but before its answer arrived: the answer is
    awaited (within the grace period) and the fix recorded with its PR and branch; the group is
    held by that PR like any other."""
    loop = asyncio.get_running_loop()
    rig.github.on("POST", "/pulls", lambda: loop.call_soon_threadsafe(cancel))
    rig.model.script(tool_use(FIX_INPUT))
    fix = await run_cancelled(rig, cancel)
    assert_recorded_with_its_pr(rig, fix)
    assert rig.github.pulls[fix.details["pr_number"]]["labels"]  # the request completed
    rig.later()
    assert await rig.pipeline.run_candidates([pricing_group()]) == []


async def test_cancelled_after_the_pr_was_opened(rig: Rig, cancel: Cancel) -> None:
    """Cancelled as the worktree is left, the PR already opened: recorded "pr_open" with it."""
    rig.model.script(tool_use(FIX_INPUT))
    cancel.moment = "exit"
    fix = await run_cancelled(rig, cancel)
    assert_recorded_with_its_pr(rig, fix)
    await until(lambda: rig.local_leftovers() == ([], 1))  # the shielded cleanup finished
