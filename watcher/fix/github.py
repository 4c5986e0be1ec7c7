"""Open or update the fix's pull request and read its state, through PyGithub.

PyGithub is synchronous: every call runs in asyncio.to_thread. Retries live in one layer,
PyGithub's own (`GithubRetry`: 5xx with backoff, secondary rate limits with their wait); this
module adds none. Errors that need a human (bad token, missing scope) become a GitHubError with
a sentence saying what to fix.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Protocol

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.PullRequest import PullRequest
from github.Repository import Repository

from watcher.model import ErrorGroup

DEFAULT_API_URL = "https://api.github.com"
MAX_BODY = 60_000  # GitHub refuses bodies over 65,536 characters


def default_retry() -> GithubRetry:
    """5 attempts with exponential backoff on 5xx; rate-limit waits capped at 5 minutes."""
    return GithubRetry(total=5, backoff_factor=1.0, secondary_rate_wait=60, max_rate_limit_wait=300)


class GitHubError(RuntimeError):
    """A GitHub call failed; the message says what to do about it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class PullRef:
    """The pull request for a fix: opened now (created) or an existing open one updated."""

    number: int
    url: str
    state: str
    created: bool


@dataclass(frozen=True, slots=True)
class ReviewNote:
    """What a reviewer wrote on a fix's PR: a conversation comment, a review's summary (with
    its state, e.g. CHANGES_REQUESTED) or a comment on a diff line of `path`."""

    author: str
    kind: str  # "comment" | "review" | "review_comment"
    body: str
    path: str = ""
    state: str = ""

    def line(self) -> str:
        """One line for the model: who, where, what."""
        where = f" on {self.path}" if self.path else ""
        state = f" ({self.state.lower().replace('_', ' ')})" if self.state else ""
        text = " ".join(self.body.split())[:MAX_NOTE]
        return f"{self.author}, {self.kind.replace('_', ' ')}{where}{state}: {text}"


MAX_NOTE = 1_500  # characters of one comment
MAX_NOTES = 20


class _Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Metrics(Protocol):
    prs_opened: _Counter


class GitHub:
    """The repository `owner/name` on github.com or a GitHub Enterprise `base_url`."""

    def __init__(
        self,
        repo: str,
        *,
        token: str,
        base_url: str = DEFAULT_API_URL,
        metrics: _Metrics | None = None,
        retry: GithubRetry | int | None = None,
        timeout: int = 30,
        throttle: bool = True,
    ) -> None:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
            raise ValueError(f'github repo: expected "owner/name", got {repo!r}')
        if not token:
            raise GitHubError("no GitHub token: set GITHUB_TOKEN")
        self.repo_name = repo
        self.owner = repo.split("/", 1)[0]
        self._metrics = metrics
        # PyGithub spaces writes 1 s apart by default, as GitHub's guidance for content creation
        # asks; tests turn that off against the fake.
        spacing: dict[str, Any] = {}
        if not throttle:
            spacing = {"seconds_between_requests": None, "seconds_between_writes": None}
        self._gh = Github(
            auth=Auth.Token(token),
            base_url=base_url.rstrip("/"),
            retry=default_retry() if retry is None else retry,
            timeout=timeout,
            **spacing,
        )
        self._repo: Repository | None = None
        self._base_url = base_url
        # one call at a time: PyGithub's requester shares a single HTTP connection
        self._lock = asyncio.Lock()

    async def open_or_update_pr(
        self,
        *,
        head: str,
        base: str,
        title: str,
        body: str,
        labels: Sequence[str] = (),
        draft: bool = True,
    ) -> PullRef:
        """Open a PR from `head` into `base`, or update the title/body of the open one."""
        args = (head, base, title, body[:MAX_BODY], draft, list(labels))
        ref: PullRef = await self._call(self._open_or_update, *args)
        if ref.created and self._metrics is not None:
            self._metrics.prs_opened.inc()
        return ref

    async def pr_state(self, number: int) -> str:
        """The PR's state now: "open", "closed" or "merged"."""
        return await self._call(self._state, number)

    async def review_notes(self, number: int) -> list[ReviewNote]:
        """What humans wrote on PR `number` (bots' comments left out): conversation comments,
        review summaries and diff-line comments, oldest first within each kind, at most 20."""
        notes: list[ReviewNote] = await self._call(self._notes, number)
        return notes

    async def close(self) -> None:
        """Release the HTTP connection pool."""
        await asyncio.to_thread(self._gh.close)

    # -- blocking parts (run in a thread) -----------------------------------------------------

    def _repository(self) -> Repository:
        if self._repo is None:
            self._repo = self._gh.get_repo(self.repo_name)
        return self._repo

    def _open_or_update(
        self, head: str, base: str, title: str, body: str, draft: bool, labels: list[str]
    ) -> PullRef:
        pull, created = self._find_or_create(head, base, title, body, draft)
        missing = [name for name in labels if name not in {label.name for label in pull.labels}]
        if missing:
            pull.add_to_labels(*missing)
        return PullRef(pull.number, pull.html_url, pull.state, created)

    def _find_or_create(
        self, head: str, base: str, title: str, body: str, draft: bool
    ) -> tuple[PullRequest, bool]:
        existing = self._find_open(head, base)
        if existing is not None:
            return self._update(existing, title, body), False
        try:
            pull = self._repository().create_pull(
                base=base, head=head, title=title, body=body, draft=draft
            )
        except GithubException as exc:
            text = _error_text(exc)
            if exc.status == 422 and "already exists" in text:
                # opened between our listing and our create (or by a retried POST)
                existing = self._find_open(head, base)
                if existing is not None:
                    return self._update(existing, title, body), False
            if exc.status == 422 and draft and "draft" in text.lower():
                return self._find_or_create(head, base, title, body, draft=False)
            raise
        return pull, True

    def _find_open(self, head: str, base: str) -> PullRequest | None:
        pulls = self._repository().get_pulls(state="open", head=f"{self.owner}:{head}", base=base)
        for pull in pulls:
            if pull.head.ref == head:
                return pull
        return None

    def _update(self, pull: PullRequest, title: str, body: str) -> PullRequest:
        if pull.title != title or (pull.body or "") != body:
            pull.edit(title=title, body=body)
        return pull

    def _notes(self, number: int) -> list[ReviewNote]:
        pull = self._repository().get_pull(number)
        notes = [
            ReviewNote(c.user.login, "comment", c.body or "")
            for c in islice(pull.get_issue_comments(), MAX_NOTES * 2)
            if not _bot(c.user)
        ]
        notes += [
            ReviewNote(r.user.login, "review", r.body, state=r.state or "")
            for r in islice(pull.get_reviews(), MAX_NOTES * 2)
            if r.body and not _bot(r.user)
        ]
        notes += [
            ReviewNote(c.user.login, "review_comment", c.body or "", path=c.path or "")
            for c in islice(pull.get_review_comments(), MAX_NOTES * 2)
            if not _bot(c.user)
        ]
        return [n for n in notes if n.body.strip()][:MAX_NOTES]

    def _state(self, number: int) -> str:
        pull = self._repository().get_pull(number)
        if pull.merged:
            return "merged"
        return "closed" if pull.state == "closed" else "open"

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            async with self._lock:
                return await asyncio.to_thread(fn, *args)
        except GithubException as exc:
            raise _translate(exc, self.repo_name) from exc
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise GitHubError(f"cannot reach GitHub at {self._base_url} ({reason})") from exc


def _bot(user: Any) -> bool:
    """A GitHub App or bot account (CI, coverage): not a reviewer."""
    return user is None or getattr(user, "type", "") == "Bot" or user.login.endswith("[bot]")


def _error_text(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, Mapping) else {}
    parts = [str(data.get("message", ""))]
    for error in data.get("errors", []):
        if isinstance(error, Mapping):
            parts.append(str(error.get("message") or f"{error.get('field')} {error.get('code')}"))
    return " ".join(p for p in parts if p)


def _translate(exc: GithubException, repo: str) -> GitHubError:
    """A GitHubError whose message says what the user has to change."""
    status = exc.status
    if status == 401:
        return GitHubError("GitHub token rejected (401): check GITHUB_TOKEN", status)
    if status == 403 and "rate limit" not in _error_text(exc).lower():
        message = "token lacks permission: needs pull_requests:write and contents:write"
        return GitHubError(f"{message} on {repo} (403)", status)
    if status == 404:
        return GitHubError(f"repository {repo} not found, or not visible to the token", status)
    return GitHubError(f"GitHub API error {status} on {repo}: {_error_text(exc)[:300]}", status)


# -- PR body ------------------------------------------------------------------------------------


def pr_title(analysis: Mapping[str, Any], group: ErrorGroup) -> str:
    """A one-line title: the analysis' summary, else the group's exception or template."""
    text = analysis.get("summary") or group.exception_type or group.template
    text = " ".join(str(text).split())
    return f"fix({group.category}): {text}"[:120]


def pr_body(
    analysis: Mapping[str, Any],
    group: ErrorGroup,
    diff_stats: Any,
    tokens: Mapping[str, int] | int | None,
    report_link: str | None,
    *,
    redact: Callable[[str], str],
    verification: str = "",
    new_files: Sequence[str] = (),
) -> str:
    """The PR description: root cause, evidence, occurrences, the proposed edits with their
    rationale, the added test, the verification verdict, a collapsed redacted sample, cost.

    Text from logs or the model (which may echo an injected log line) is untrusted: @-mentions
    and links in it are neutralised so the PR pings nobody and links nowhere, and the samples
    sit collapsed in <details>. `redact` runs over the whole body."""
    sections = [
        "## Root cause\n\n" + neutralise(str(analysis.get("root_cause") or "(not given)")),
        "## Evidence\n\n" + _evidence_table(group) + _bullets(analysis.get("evidence")),
        _proposed(analysis, diff_stats, new_files),
        "## Verification\n\n" + neutralise(verification) if verification else "",
        _sample(group),
        _footer(tokens, report_link, analysis),
    ]
    return redact("\n\n".join(s for s in sections if s).strip() + "\n")[:MAX_BODY]


_MENTION = re.compile(r"(?<![\w`])@(?=[A-Za-z0-9])")
_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\n]*)\)|\b(?:https?|ftp)://[^\s<>`]+|\bwww\.[^\s<>`]+")


def neutralise(text: str) -> str:
    """Untrusted text made inert in Markdown: `@name` cannot mention (a zero-width joiner after
    the @), links become plain code spans, HTML tags are escaped."""
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    text = _MENTION.sub("@\u200d", text)

    def plain(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return f"{match.group(1)} (`{match.group(2).replace('`', '')}`)"
        return f"`{match.group(0)}`"

    return _LINK.sub(plain, text)


def pattern_link(public_url: str, group_id: str) -> str | None:
    """The pattern's page in watcher's API ([http] public_url), or None when not configured."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/error-monitor/errors/patterns/{group_id}"


def _evidence_table(group: ErrorGroup) -> str:
    frame = group.top_frame
    location = f"`{frame.file}:{frame.line}` in `{frame.function}`" if frame else "—"
    windows = ", ".join(f"{k}: {v}" for k, v in group.window_counts.items()) or "—"
    rows = [
        ("Pattern", f"`{_cell(group.template)[:200].replace('`', '')}`"),
        ("Exception", f"`{group.exception_type}`" if group.exception_type else "—"),
        ("Category / severity", f"{group.category} / {group.severity}"),
        ("Occurrences", f"{group.count} (recent: {windows})"),
        ("First seen", _when(group.first_seen)),
        ("Last seen", _when(group.last_seen)),
        ("Sources", ", ".join(f"{k} ({v})" for k, v in sorted(group.sources.items())) or "—"),
        ("Location", location),
        ("Group", f"`{group.id}`"),
    ]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {_cell(v)} |" for k, v in rows)


def _bullets(items: Any) -> str:
    if not items:
        return ""
    if isinstance(items, str):
        items = [items]
    return "\n\n" + "\n".join(f"- {neutralise(' '.join(str(item).split()))}" for item in items)


def _proposed(analysis: Mapping[str, Any], stats: Any, new_files: Sequence[str] = ()) -> str:
    lines = ["## Proposed fix"]
    if analysis.get("summary"):
        lines.append(neutralise(str(analysis["summary"])))
    if analysis.get("plan"):
        lines.append("Plan: " + neutralise(str(analysis["plan"])))
    edits = [e for e in analysis.get("edits") or () if isinstance(e, Mapping)]
    rationale = [
        f"- `{_cell(str(e.get('path')))}`: {neutralise(' '.join(str(e['rationale']).split()))}"
        for e in edits
        if e.get("rationale")
    ]
    if rationale:
        lines.append("\n".join(rationale))
    if stats is not None:
        files, added, removed = (getattr(stats, k, 0) for k in ("files", "added", "removed"))
        lines.append(f"{files} file(s) changed, +{added} -{removed} lines.")
    confidence = analysis.get("confidence")
    if isinstance(confidence, int | float):
        lines.append(f"Confidence: {confidence:.0%}.")
    if analysis.get("risk"):
        lines.append(f"Risk: {neutralise(str(analysis['risk']))}")
    test = analysis.get("test")
    if isinstance(test, Mapping) and test.get("description"):
        added = test.get("path") in new_files and test.get("path")
        where = f" (added: `{_cell(str(added))}`)" if added else " (not added)"
        lines.append(f"Test: {neutralise(str(test['description']))}{where}")
    return "\n\n".join(lines)


def _sample(group: ErrorGroup) -> str:
    """The first sample, collapsed: log text is untrusted, so it is shown only on request and
    inside a fence, where GitHub renders neither mentions nor links."""
    if not group.samples:
        return ""
    text = group.samples[0].text[:4000]
    runs = re.findall(r"`+", text)
    fence = "`" * max(3, 1 + max((len(r) for r in runs), default=0))
    return (
        "<details><summary>Sample log event (untrusted, redacted)</summary>\n\n"
        f"{fence}text\n{text}\n{fence}\n\n</details>"
    )


def _footer(
    tokens: Mapping[str, int] | int | None, link: str | None, analysis: Mapping[str, Any]
) -> str:
    if tokens is None:  # the schema's Analysis.to_dict() carries its own counts
        tokens = {
            "input": analysis.get("input_tokens", 0),
            "output": analysis.get("output_tokens", 0),
        }
    if isinstance(tokens, Mapping):
        cost = f"{tokens.get('input', 0):,} input + {tokens.get('output', 0):,} output tokens"
    else:
        cost = f"{tokens:,} tokens"
    model = f" ({analysis['model']})" if analysis.get("model") else ""
    lines = [f"---\nAnalysis cost: {cost}{model}."]
    if link:
        lines.append(f"Report: {link}")
    lines.append("Opened by watcher. Review before merging: the change was written by a model.")
    return "\n\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "—"
