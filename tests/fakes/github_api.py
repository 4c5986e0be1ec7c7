"""A GitHub REST fake for PyGithub: repos, pulls, labels, issue reads and a pull's discussion
(conversation comments, reviews, review comments), on 127.0.0.1.

PyGithub is synchronous, so the aiohttp app runs on its own event loop in a background thread
and PyGithub talks to it over real HTTP (`Github(base_url=fake.url)`). The fake serves under
`/api/v3` as GitHub Enterprise does, so the base_url handling is exercised too. Every request is
recorded (method, path without the prefix, query, headers, JSON body). Response shapes follow
the REST docs for the fields PyGithub reads; errors use GitHub's real bodies.

Knobs: `token` (anything else gets 401 "Bad credentials"), `forbid_writes` (403 "Resource not
accessible by personal access token" on POST/PATCH/PUT/DELETE), `list_lag` (that many pull
listings return [] — GitHub's listing lags a create, which is how a 422 "already exists" reaches
a client that listed first), `fail(status, ...)` (one-shot injected responses),
`set_state(number, ...)` for merges and closes done "on GitHub", `comment(number, ...)` for
what reviewers wrote there, and `on(method, path, callback)`
(a one-shot hook run once a request has taken effect, before its answer is sent).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

PREFIX = "/api/v3"
TOKEN = "ghp_fakeTokenForTests0123456789abcdefABCD"
DOCS = "https://docs.github.com/rest"
JSON_BODY = web.RequestKey("json_body", object)


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: str


@dataclass
class Injected:
    status: int
    body: Any
    headers: dict[str, str]
    method: str | None
    path_contains: str | None
    process: bool


@dataclass
class Hook:
    """A callback waiting for a request (see GitHubFake.on)."""

    method: str
    path_contains: str
    callback: Callable[[], None]


@dataclass
class Repo:
    owner: str
    name: str
    default_branch: str = "main"
    labels: set[str] = field(default_factory=set)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class GitHubFake:
    """The fake server and its state; start() / stop(), or use the `github_fake` fixture."""

    def __init__(self, repo: str = "acme/app", *, token: str = TOKEN) -> None:
        owner, name = repo.split("/")
        self.repos: dict[str, Repo] = {repo.lower(): Repo(owner, name)}
        self.token = token
        self.forbid_writes = False
        self.list_lag = 0
        self.pulls: dict[int, dict[str, Any]] = {}
        # per pull number: issue comments, reviews, review (diff line) comments
        self.discussion: dict[int, dict[str, list[dict[str, Any]]]] = {}
        self.requests: list[Recorded] = []
        self._injected: list[Injected] = []
        self._hooks: list[Hook] = []
        self._next_number = 1
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.root = ""
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> GitHubFake:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_route("*", PREFIX + "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.root = f"http://{host}:{port}"
        self.url = self.root + PREFIX

    # -- knobs -------------------------------------------------------------------------------

    def fail(
        self,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        process: bool = False,
    ) -> None:
        """Answer the next matching request with `status` (once). With `process`, the request
        takes effect first (a create that succeeded but whose answer was lost)."""
        body = body if body is not None else {"message": "Server Error", "status": str(status)}
        self._injected.append(Injected(status, body, headers or {}, method, path_contains, process))

    def on(self, method: str, path_contains: str, callback: Callable[[], None]) -> None:
        """Call `callback` (once, in the fake's thread) when the next matching request has been
        handled and before its answer is sent: "the PR exists now, its creator does not know"."""
        self._hooks.append(Hook(method, path_contains, callback))

    def set_state(self, number: int, state: str, *, merged: bool = False) -> None:
        """Close, reopen or merge a pull as if it happened on GitHub."""
        with self._lock:
            pull = self.pulls[number]
            pull["state"] = state
            pull["merged"] = merged
            pull["merged_at"] = "2024-05-02T10:00:00Z" if merged else None
            pull["closed_at"] = "2024-05-02T10:00:00Z" if state == "closed" else None

    def comment(
        self,
        number: int,
        body: str,
        *,
        kind: str = "issue",
        user: str = "alice",
        user_type: str = "User",
        path: str = "",
        line: int = 1,
        state: str = "CHANGES_REQUESTED",
    ) -> dict[str, Any]:
        """Add what a reviewer wrote on GitHub: `kind` "issue" (a PR conversation comment,
        GET /issues/{n}/comments), "review" (a review with its summary body and `state`,
        GET /pulls/{n}/reviews) or "review_comment" (on a diff line of `path`,
        GET /pulls/{n}/comments). Shapes from the REST docs."""
        repo = next(iter(self.repos.values()))
        with self._lock:
            pull = self.pulls[number]
            items = self.discussion.setdefault(number, {}).setdefault(kind, [])
            ident = 5000 + sum(len(v) for d in self.discussion.values() for v in d.values())
            when = "2024-05-02T09:00:00Z"
            who = {"login": user, "id": 100 + len(user), "type": user_type}
            item: dict[str, Any] = {"id": ident, "node_id": f"C_{ident}", "user": who,
                                    "body": body, "author_association": "MEMBER"}  # fmt: skip
            if kind == "issue":
                item.update(
                    url=self._api(repo, "issues", "comments", ident),
                    html_url=f"{pull['html_url']}#issuecomment-{ident}",
                    issue_url=pull["issue_url"], created_at=when, updated_at=when,
                )  # fmt: skip
            elif kind == "review":
                item.update(
                    state=state, commit_id=pull["head"]["sha"], submitted_at=when,
                    html_url=f"{pull['html_url']}#pullrequestreview-{ident}",
                    pull_request_url=pull["url"],
                )  # fmt: skip
            else:
                item.update(
                    url=self._api(repo, "pulls", "comments", ident), path=path, line=line,
                    original_line=line, side="RIGHT", position=line, original_position=line,
                    commit_id=pull["head"]["sha"], original_commit_id=pull["head"]["sha"],
                    diff_hunk=f"@@ -{line},1 +{line},1 @@", pull_request_review_id=None,
                    html_url=f"{pull['html_url']}#discussion_r{ident}",
                    pull_request_url=pull["url"], created_at=when, updated_at=when,
                )  # fmt: skip
            items.append(item)
            return item

    def add_pull(self, *, head: str, base: str = "main", title: str = "existing") -> dict[str, Any]:
        """Create a pull directly in the state (someone else opened it)."""
        repo = next(iter(self.repos.values()))
        with self._lock:
            return self._new_pull(repo, {"head": head, "base": base, "title": title, "body": ""})

    def bodies(self) -> list[str]:
        """The raw body of every request received (for leak checks)."""
        return [r.raw for r in self.requests]

    # -- HTTP --------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        path = request.path.removeprefix(PREFIX)
        headers = dict(request.headers)
        self.requests.append(
            Recorded(request.method, path, dict(request.query), headers, body, raw)
        )
        if request.headers.get("Authorization") != f"token {self.token}":
            return _json(401, {"message": "Bad credentials", "documentation_url": DOCS})
        injected = self._take_injected(request.method, path)
        if injected is not None and not injected.process:
            return _json(injected.status, injected.body, injected.headers)
        if self.forbid_writes and request.method in ("POST", "PATCH", "PUT", "DELETE"):
            message = "Resource not accessible by personal access token"
            return _json(403, {"message": message, "documentation_url": DOCS, "status": "403"})
        request[JSON_BODY] = body
        response = await handler(request)
        self._run_hook(request.method, path)
        if injected is not None:
            return _json(injected.status, injected.body, injected.headers)
        return response

    def _take_injected(self, method: str, path: str) -> Injected | None:
        for i, item in enumerate(self._injected):
            if item.method not in (None, method):
                continue
            if item.path_contains is not None and item.path_contains not in path:
                continue
            return self._injected.pop(i)
        return None

    def _run_hook(self, method: str, path: str) -> None:
        for i, hook in enumerate(self._hooks):
            if hook.method == method and hook.path_contains in path:
                self._hooks.pop(i).callback()
                return

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = request.match_info["tail"].strip("/").split("/")
        if len(parts) < 3 or parts[0] != "repos":
            return _not_found()
        repo = self.repos.get(f"{parts[1]}/{parts[2]}".lower())
        if repo is None:
            return _not_found()
        rest, method = parts[3:], request.method
        with self._lock:
            return self._route(repo, rest, method, request)

    def _route(
        self, repo: Repo, rest: list[str], method: str, request: web.Request
    ) -> web.Response:
        body = request[JSON_BODY]
        if not rest and method == "GET":
            return _json(200, self._repo_json(repo))
        if rest == ["pulls"] and method == "GET":
            return _json(200, self._list_pulls(repo, request.query))
        if rest == ["pulls"] and method == "POST":
            return self._create_pull(repo, body or {})
        number = int(rest[1]) if len(rest) >= 2 and rest[1].isdigit() else None
        pull = self.pulls.get(number) if number is not None else None
        if pull is None:
            return _not_found()
        if rest[0] == "pulls" and len(rest) == 2 and method == "GET":
            return _json(200, pull)
        if rest[0] == "pulls" and len(rest) == 2 and method == "PATCH":
            return self._edit_pull(pull, body or {})
        if rest[0] == "pulls" and rest[2:] == ["merge"] and method == "GET":
            return web.Response(status=204) if pull["merged"] else _not_found()
        if rest[0] == "issues" and len(rest) == 2 and method == "GET":
            return _json(200, self._issue_json(pull))
        talk = self.discussion.get(pull["number"], {})
        if rest[0] == "issues" and rest[2:] == ["comments"] and method == "GET":
            return _json(200, talk.get("issue", []))
        if rest[0] == "pulls" and rest[2:] == ["reviews"] and method == "GET":
            return _json(200, talk.get("review", []))
        if rest[0] == "pulls" and rest[2:] == ["comments"] and method == "GET":
            return _json(200, talk.get("review_comment", []))
        if rest[0] == "issues" and rest[2:] == ["labels"] and method in ("POST", "PUT"):
            return self._labels(repo, pull, body, replace=method == "PUT")
        return _not_found()

    # -- resources ---------------------------------------------------------------------------

    def _api(self, repo: Repo, *tail: object) -> str:
        return "/".join([f"{self.url}/repos/{repo.full_name}", *map(str, tail)])

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        return {
            "id": 1,
            "node_id": "R_1",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": {"login": repo.owner, "id": 2, "type": "Organization"},
            "private": True,
            "default_branch": repo.default_branch,
            "url": self._api(repo).rstrip("/"),
            "html_url": f"{self.root}/{repo.full_name}",
            "permissions": {"admin": False, "push": True, "pull": True},
        }

    def _list_pulls(self, repo: Repo, query: Any) -> list[dict[str, Any]]:
        if self.list_lag > 0:
            self.list_lag -= 1
            return []
        state = query.get("state", "open")
        found = [p for p in self.pulls.values() if state == "all" or p["state"] == state]
        head = query.get("head")
        if head and ":" in head:  # like GitHub, a head filter without "owner:" is ignored
            owner, ref = head.split(":", 1)
            found = [p for p in found if p["head"]["label"].lower() == f"{owner}:{ref}".lower()]
        if query.get("base"):
            found = [p for p in found if p["base"]["ref"] == query["base"]]
        return sorted(found, key=lambda p: -p["number"])

    def _create_pull(self, repo: Repo, body: dict[str, Any]) -> web.Response:
        missing = [k for k in ("head", "base") if not body.get(k)]
        if missing or not (body.get("title") or body.get("issue")):
            errors = [
                {"resource": "PullRequest", "field": k, "code": "missing_field"} for k in missing
            ]
            return _validation(errors)
        head = body["head"] if ":" in body["head"] else f"{repo.owner}:{body['head']}"
        for pull in self.pulls.values():
            if pull["state"] == "open" and pull["head"]["label"] == head:
                message = f"A pull request already exists for {head}."
                return _validation(
                    [{"resource": "PullRequest", "code": "custom", "message": message}]
                )
        return _json(201, self._new_pull(repo, body))

    def _new_pull(self, repo: Repo, body: dict[str, Any]) -> dict[str, Any]:
        number, self._next_number = self._next_number, self._next_number + 1
        head_ref = body["head"].split(":", 1)[-1]
        pull = {
            "id": 1000 + number,
            "node_id": f"PR_{number}",
            "number": number,
            "url": self._api(repo, "pulls", number),
            "html_url": f"{self.root}/{repo.full_name}/pull/{number}",
            "issue_url": self._api(repo, "issues", number),
            "state": "open",
            "locked": False,
            "title": body.get("title", ""),
            "body": body.get("body"),
            "draft": bool(body.get("draft", False)),
            "merged": False,
            "merged_at": None,
            "closed_at": None,
            "created_at": "2024-05-01T10:00:00Z",
            "updated_at": "2024-05-01T10:00:00Z",
            "user": {"login": "watcher-bot", "id": 3, "type": "User"},
            "labels": [],
            "head": self._part(repo, head_ref),
            "base": self._part(repo, body["base"]),
        }
        self.pulls[number] = pull
        return pull

    def _part(self, repo: Repo, ref: str) -> dict[str, Any]:
        return {
            "label": f"{repo.owner}:{ref}",
            "ref": ref,
            "sha": "0" * 40,
            "repo": self._repo_json(repo),
            "user": {"login": repo.owner, "id": 2},
        }

    def _edit_pull(self, pull: dict[str, Any], body: dict[str, Any]) -> web.Response:
        for key in ("title", "body"):
            if key in body:
                pull[key] = body[key]
        if body.get("state") in ("open", "closed") and not pull["merged"]:
            pull["state"] = body["state"]
        if body.get("base"):
            pull["base"]["ref"] = body["base"]
        pull["updated_at"] = "2024-05-01T11:00:00Z"
        return _json(200, pull)

    def _issue_json(self, pull: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "node_id", "number", "title", "body", "state", "labels", "user", "html_url")
        issue = {k: pull[k] for k in keys}
        issue["url"] = pull["issue_url"]
        issue["pull_request"] = {"url": pull["url"], "html_url": pull["html_url"]}
        return issue

    def _labels(
        self, repo: Repo, pull: dict[str, Any], body: Any, *, replace: bool
    ) -> web.Response:
        names = body.get("labels", []) if isinstance(body, dict) else body or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return _validation([{"resource": "Label", "field": "labels", "code": "invalid"}])
        current = [] if replace else [label["name"] for label in pull["labels"]]
        merged = list(dict.fromkeys(current + names))
        repo.labels.update(merged)
        pull["labels"] = [
            {"id": i, "name": n, "color": "ededed", "url": self._api(repo, "labels", n)}
            for i, n in enumerate(merged, start=1)
        ]
        return _json(200, pull["labels"])


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    base = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999"}
    return web.json_response(body, status=status, headers={**base, **(headers or {})})


def _not_found() -> web.Response:
    return _json(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})


def _validation(errors: list[dict[str, Any]]) -> web.Response:
    body = {"message": "Validation Failed", "errors": errors, "documentation_url": DOCS}
    return _json(422, {**body, "status": "422"})


@pytest.fixture
def github_fake() -> Iterator[GitHubFake]:
    """A started GitHubFake serving acme/app; stopped after the test."""
    fake = GitHubFake().start()
    try:
        yield fake
    finally:
        fake.stop()
