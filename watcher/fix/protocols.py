"""What the fix pipeline needs of the model, GitHub and git: the seams tests fill with fakes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from watcher.fix.context import FixContext
from watcher.fix.git import Identity, PushResult
from watcher.fix.github import PullRef, ReviewNote
from watcher.fix.patch import GuardResult
from watcher.fix.schema import Analysis
from watcher.model import ErrorGroup


class AnalyzerLike(Protocol):
    """What the pipeline needs of `Analyzer`: a first answer, then repair rounds."""

    async def analyze(self, ctx: FixContext, group: ErrorGroup) -> Analysis: ...
    async def repair(
        self, ctx: FixContext, group: ErrorGroup, turns: list[tuple[Analysis, str]]
    ) -> Analysis: ...
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
    async def review_notes(self, number: int) -> list[ReviewNote]: ...
    async def close(self) -> None: ...


class WorktreeLike(Protocol):
    """What the pipeline needs of `Worktree` (an async context manager)."""

    path: Path
    branch: str  # this run's branch; what a push creates on the remote
    base_sha: str  # the base commit it was made at (set on entering)

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def write(self, result: GuardResult) -> list[str]: ...
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
    async def delete_stale(self, branch: str, sha: str) -> bool: ...


WorktreeFactory = Callable[[ErrorGroup], WorktreeLike]
GitHubFactory = Callable[[], PullRequests]  # raises GitHubError when GitHub is not configured
