"""Opening and tracking the fix's pull request: the real PyGithub against the GitHub fake."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from github import GithubRetry

from watcher.fix.github import GitHub, GitHubError, PullRef, pr_body, pr_title
from watcher.fix.patch import DiffStats
from watcher.metrics import Metrics
from watcher.model import ErrorGroup, Frame, Sample

if TYPE_CHECKING:
    from tests.fakes.github_api import GitHubFake

# the fixture module is loaded as a plugin (not imported) so pytest can register `github_fake`
pytest_plugins = ["tests.fakes.github_api"]

HEAD = "auto-fix/internal_error/g1a2b3"


def client(fake: GitHubFake, *, token: str = "", metrics: Metrics | None = None) -> GitHub:
    """A GitHub client for the fake's acme/app with write spacing off and fast retries."""
    retry = GithubRetry(total=2, backoff_factor=0.01)
    return GitHub(
        "acme/app",
        token=token or fake.token,
        base_url=fake.url,
        metrics=metrics,
        retry=retry,
        throttle=False,
    )


async def open_pr(gh: GitHub, **kwargs: object) -> PullRef:
    """open_or_update_pr with the test's defaults."""
    args: dict[str, object] = {
        "head": HEAD,
        "base": "main",
        "title": "fix(internal_error): ZeroDivisionError",
        "body": "Root cause: empty list.",
        "labels": ["auto-fix", "bot"],
        "draft": True,
    }
    return await gh.open_or_update_pr(**{**args, **kwargs})  # type: ignore[arg-type]


async def test_creates_a_draft_pr_with_labels(github_fake: GitHubFake) -> None:
    """The first call opens a draft PR from the head branch and labels it; the metric counts it."""
    metrics = Metrics()
    ref = await open_pr(client(github_fake, metrics=metrics))
    assert ref == PullRef(1, f"{github_fake.root}/acme/app/pull/1", "open", created=True)
    pull = github_fake.pulls[1]
    assert pull["draft"] is True and pull["head"]["ref"] == HEAD and pull["base"]["ref"] == "main"
    assert [label["name"] for label in pull["labels"]] == ["auto-fix", "bot"]
    create = next(
        r for r in github_fake.requests if r.method == "POST" and r.path.endswith("/pulls")
    )
    assert create.body == {
        "base": "main",
        "head": HEAD,
        "title": "fix(internal_error): ZeroDivisionError",
        "body": "Root cause: empty list.",
        "draft": True,
    }
    assert metrics.registry.get_sample_value("watcher_prs_opened_total") == 1


async def test_second_call_updates_instead_of_duplicating(github_fake: GitHubFake) -> None:
    """With an open PR for the head, a second call edits title/body and opens nothing new."""
    gh = client(github_fake)
    await open_pr(gh)
    ref = await open_pr(gh, title="fix: better title", body="Updated analysis.")
    assert ref.created is False and ref.number == 1
    assert len(github_fake.pulls) == 1
    assert github_fake.pulls[1]["title"] == "fix: better title"
    assert github_fake.pulls[1]["body"] == "Updated analysis."
    listing = [r for r in github_fake.requests if r.method == "GET" and r.path.endswith("/pulls")]
    assert listing[-1].query == {"state": "open", "head": f"acme:{HEAD}", "base": "main"}
    posts = [r for r in github_fake.requests if r.method == "POST" and r.path.endswith("/pulls")]
    assert len(posts) == 1
    label_posts = [r for r in github_fake.requests if r.path.endswith("/labels")]
    assert len(label_posts) == 1  # labels already present are not re-added


async def test_unchanged_update_sends_no_edit(github_fake: GitHubFake) -> None:
    """Re-sending the same title and body does not PATCH the PR."""
    gh = client(github_fake)
    await open_pr(gh)
    await open_pr(gh)
    assert not [r for r in github_fake.requests if r.method == "PATCH"]


async def test_422_already_exists_finds_and_updates(github_fake: GitHubFake) -> None:
    """A PR the listing missed makes create fail with 422; the client finds and updates it."""
    existing = github_fake.add_pull(head=f"acme:{HEAD}", title="opened elsewhere")
    github_fake.list_lag = 1  # the first listing does not show it yet
    ref = await open_pr(client(github_fake), title="new title")
    assert ref == PullRef(existing["number"], existing["html_url"], "open", created=False)
    assert github_fake.pulls[existing["number"]]["title"] == "new title"
    assert len(github_fake.pulls) == 1
    statuses = [r.method + " " + r.path for r in github_fake.requests]
    assert statuses.count("POST /repos/acme/app/pulls") == 1


async def test_closed_pr_for_head_does_not_block_a_new_one(github_fake: GitHubFake) -> None:
    """Only open PRs are reused: after a close, the same head gets a new PR."""
    gh = client(github_fake)
    first = await open_pr(gh)
    github_fake.set_state(first.number, "closed")
    second = await open_pr(gh)
    assert second.created and second.number != first.number


async def test_state_tracking(github_fake: GitHubFake) -> None:
    """pr_state follows GitHub: open, then closed, and merged when merged."""
    gh = client(github_fake)
    one = await open_pr(gh)
    two = await open_pr(gh, head="auto-fix/db/x")
    assert await gh.pr_state(one.number) == "open"
    github_fake.set_state(one.number, "closed")
    github_fake.set_state(two.number, "closed", merged=True)
    assert await gh.pr_state(one.number) == "closed"
    assert await gh.pr_state(two.number) == "merged"


async def test_bad_token_is_a_clear_error(github_fake: GitHubFake) -> None:
    """A rejected token (401) raises GitHubError saying so."""
    with pytest.raises(GitHubError, match="GitHub token rejected") as info:
        await open_pr(client(github_fake, token="ghp_wrong"))
    assert info.value.status == 401


async def test_missing_permission_is_a_clear_error(github_fake: GitHubFake) -> None:
    """A 403 on write names the permissions the token needs."""
    github_fake.forbid_writes = True
    with pytest.raises(GitHubError, match="needs pull_requests:write and contents:write"):
        await open_pr(client(github_fake))
    assert not github_fake.pulls


async def test_unknown_repo_is_a_clear_error(github_fake: GitHubFake) -> None:
    """A repo the token cannot see (404) says so."""
    gh = GitHub("acme/other", token=github_fake.token, base_url=github_fake.url, throttle=False)
    with pytest.raises(GitHubError, match="not found, or not visible"):
        await gh.pr_state(1)


async def test_server_errors_are_retried_by_pygithub(github_fake: GitHubFake) -> None:
    """A 502 on a read is retried by PyGithub's own retry and the call succeeds."""
    github_fake.fail(502, method="GET", path_contains="/pulls")
    ref = await open_pr(client(github_fake))
    assert ref.created
    listing = [r for r in github_fake.requests if r.method == "GET" and r.path.endswith("/pulls")]
    assert len(listing) == 2


async def test_lost_create_response_is_retried_and_resolved(github_fake: GitHubFake) -> None:
    """A create that worked but answered 502 is retried by PyGithub, gets 422, and resolves to
    the one PR — never a duplicate."""
    github_fake.fail(502, method="POST", path_contains="/pulls", process=True)
    ref = await open_pr(client(github_fake))
    assert ref.number == 1 and len(github_fake.pulls) == 1
    posts = [r for r in github_fake.requests if r.method == "POST" and r.path.endswith("/pulls")]
    assert len(posts) == 2


async def test_requests_carry_the_token_only_in_the_header(github_fake: GitHubFake) -> None:
    """The token is sent as the Authorization header and never in a URL or body."""
    gh = client(github_fake)
    await open_pr(gh, body="see logs")
    await gh.pr_state(1)
    assert github_fake.requests
    for request in github_fake.requests:
        token = github_fake.token
        assert request.headers["Authorization"] == f"token {token}"
        assert token not in request.raw and token not in request.path
        assert token not in json.dumps(request.query)


def test_constructor_validates() -> None:
    """A malformed repo name or an empty token fails before any request."""
    with pytest.raises(ValueError, match="owner/name"):
        GitHub("not-a-repo", token="t")
    with pytest.raises(GitHubError, match="no GitHub token"):
        GitHub("acme/app", token="")


def sample_group() -> ErrorGroup:
    """A trace group as the grouper makes it."""
    frame = Frame("app/service.py", 3, "average")
    return ErrorGroup(
        id="g1a2b3",
        kind="trace",
        template="ZeroDivisionError: division by zero",
        category="internal_error",
        severity="high",
        fixable=True,
        exception_type="ZeroDivisionError",
        top_frame=frame,
        frames=[frame],
        count=42,
        first_seen=1714557600.0,
        last_seen=1714561200.0,
        sources={"api": 40, "worker": 2},
        samples=[
            Sample(1714561200.0, "api", "Traceback ...\n```\nZeroDivisionError <secret:x:1a2b>")
        ],
        window_counts={"5m": 3, "1h": 42},
    )


def test_pr_body_sections() -> None:
    """The body has root cause, an evidence table, the fix, a safely fenced sample and the cost."""
    analysis = {
        "summary": "Return 0.0 for an empty list",
        "root_cause": "average() divides by len(values), which is 0 for an empty list.",
        "evidence": ["42 occurrences at app/service.py:3", "all with values=[]"],
        "confidence": 0.85,
        "risk": "Callers expecting an exception.",
        "test": {"description": "average([]) returns 0.0", "path": None, "content": None},
        "model": "claude-sonnet-4-5",
    }
    body = pr_body(
        analysis,
        sample_group(),
        DiffStats(1, 2, 0),
        {"input": 12345, "output": 678},
        "http://watcher.local/report#g1a2b3",
        redact=lambda text: text.replace("ZeroDivisionError <secret", "ZeroDivisionError <SECRET"),
    )
    assert body.index("## Root cause") < body.index("## Evidence") < body.index("## Proposed fix")
    assert "| Occurrences | 42 (recent: 5m: 3, 1h: 42) |" in body
    assert "| Location | `app/service.py:3` in `average` |" in body
    assert "- all with values=[]" in body
    assert "1 file(s) changed, +2 -0 lines." in body and "Confidence: 85%." in body
    assert "Test: average([]) returns 0.0 (not added)" in body
    assert "````text\nTraceback ...\n```\nZeroDivisionError <SECRET:x:1a2b>\n````" in body
    assert "Analysis cost: 12,345 input + 678 output tokens (claude-sonnet-4-5)." in body
    assert "Report: http://watcher.local/report#g1a2b3" in body


def test_pr_body_takes_token_counts_from_analysis() -> None:
    """Without explicit counts the body uses the analysis' input/output tokens."""
    analysis = {"root_cause": "x", "input_tokens": 10, "output_tokens": 5}
    body = pr_body(analysis, sample_group(), None, None, None, redact=str)
    assert "Analysis cost: 10 input + 5 output tokens." in body


def test_pr_title_is_one_bounded_line() -> None:
    """The title is the summary on one line, prefixed with the category, at most 120 chars."""
    title = pr_title({"summary": "Guard\nempty   input " + "x" * 200}, sample_group())
    assert title.startswith("fix(internal_error): Guard empty input x") and len(title) == 120
    assert pr_title({}, sample_group()) == "fix(internal_error): ZeroDivisionError"


async def test_unreachable_api_is_a_clear_error(github_fake: GitHubFake) -> None:
    """A connection failure (nothing listening) becomes a GitHubError naming the URL."""
    url = github_fake.url
    github_fake.stop()
    gh = GitHub("acme/app", token="t", base_url=url, retry=0, throttle=False)
    with pytest.raises(GitHubError, match="cannot reach GitHub at"):
        await gh.pr_state(1)
