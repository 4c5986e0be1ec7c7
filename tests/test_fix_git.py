"""The fix's git work against a real repository and a bare remote in tmp_path."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from watcher.fix.git import (
    GitError,
    Identity,
    Worktree,
    auth_env,
    branch_name,
    extraheader_env,
    scrubbed_env,
)
from watcher.fix.patch import Edit, GuardResult, guard

SERVICE = """def average(values):
    total = sum(values)
    return total / len(values)
"""
FIX = Edit(
    "app/service.py", "    return total", "    if not values:\n        return 0.0\n    return total"
)
BRANCH = "auto-fix/internal_error/g1a2b3"
AUTHOR = Identity("Watcher Bot", "bot@example.com")
COMMITTER = Identity("Watcher CI", "ci@example.com")


def git(*args: str, cwd: Path) -> str:
    """Run git in cwd with a fixed identity and no user config; stdout."""
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def remote_has(remote: Path, branch: str) -> bool:
    """Whether the bare remote has refs/heads/<branch>."""
    return bool(git("for-each-ref", f"refs/heads/{branch}", cwd=remote).strip())


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A user's checkout (dirty, with hooks) whose origin is a bare repo holding main."""
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=tmp_path)
    repo = tmp_path / "app"
    git("init", "-q", "-b", "main", str(repo), cwd=tmp_path)
    (repo / "app").mkdir()
    (repo / "app/service.py").write_text(SERVICE)
    (repo / "README.md").write_text("sample\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "initial", cwd=repo)
    git("remote", "add", "origin", str(remote), cwd=repo)
    git("push", "-q", "origin", "main", cwd=repo)
    # the user is mid-work: a staged change, an unstaged change, an untracked file
    (repo / "README.md").write_text("sample\nstaged\n")
    git("add", "README.md", cwd=repo)
    (repo / "app/service.py").write_text(SERVICE + "# wip\n")
    (repo / "notes.txt").write_text("todo\n")
    for hook in ("post-checkout", "pre-commit", "pre-push", "commit-msg"):
        path = repo / ".git/hooks" / hook
        path.write_text(f"#!/bin/sh\ntouch {tmp_path}/hook-{hook}-ran\n")
        path.chmod(0o755)
    return repo


def user_state(repo: Path) -> dict[str, str]:
    """Everything of the user's checkout a fix must not change."""
    return {
        "status": git("status", "--porcelain=v1", "--untracked-files=all", cwd=repo),
        "head": git("rev-parse", "HEAD", cwd=repo),
        "branch": git("symbolic-ref", "HEAD", cwd=repo),
        "diff": git("diff", cwd=repo),
        "cached": git("diff", "--cached", cwd=repo),
        "index": hashlib.sha256((repo / ".git/index").read_bytes()).hexdigest(),
        "worktrees": git("worktree", "list", "--porcelain", cwd=repo),
        "branches": git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=repo),
    }


def open_tree(app: Path, **kwargs: object) -> Worktree:
    """A Worktree for the fixture's group, base main, remote origin."""
    kwargs.setdefault("category", "internal_error")
    kwargs.setdefault("fix_id", "g1a2b3")
    return Worktree(app, "main", "origin", **kwargs)  # type: ignore[arg-type]


async def test_branch_on_remote_has_the_guarded_diff(app: Path) -> None:
    """The pushed branch holds one commit on main with exactly the guarded diff and identities."""
    remote = app.parent / "remote.git"
    async with open_tree(app) as wt:
        assert wt.branch == BRANCH and wt.path.is_dir() and not wt.path.is_relative_to(app)
        result = guard([FIX], wt.path)  # guarded against the base commit, not the dirty checkout
        assert result.ok, result.reasons
        wt.write(result)
        sha = await wt.commit(
            "fix: guard empty input",
            "Root cause: len([]) is 0.",
            author=AUTHOR,
            committer=COMMITTER,
        )
        pushed = await wt.push()
    assert pushed.branch == BRANCH and pushed.sha == sha and pushed.created
    fmt = "%an <%ae>|%cn <%ce>|%s|%b"
    shown = git("show", "-s", f"--format={fmt}", BRANCH, cwd=remote)
    assert shown.strip() == (
        "Watcher Bot <bot@example.com>|Watcher CI <ci@example.com>|fix: guard empty input|"
        "Root cause: len([]) is 0."
    )
    assert git("rev-parse", f"{BRANCH}~1", cwd=remote) == git("rev-parse", "main", cwd=remote)
    diff = git("diff", "main", BRANCH, cwd=remote)
    assert _without_index_line(diff) == result.diff
    assert not wt.path.exists()


async def test_users_checkout_is_untouched(app: Path) -> None:
    """Status, index, HEAD, branches and worktrees are unchanged by a full run; no hook ran."""
    before = user_state(app)
    async with open_tree(app) as wt:
        wt.write(guard([FIX], wt.path))
        await wt.commit("fix", author=AUTHOR)
        await wt.push()
    assert user_state(app) == before
    assert not list(app.parent.glob("hook-*-ran"))


async def test_branch_name_collision_gets_a_suffix(app: Path) -> None:
    """A name taken on the remote (or locally) moves on to -2, -3."""
    remote = app.parent / "remote.git"
    git("push", "-q", "origin", f"main:refs/heads/{BRANCH}", cwd=app)
    git("branch", f"{BRANCH}-2", "main", cwd=app)
    async with open_tree(app) as wt:
        assert wt.branch == f"{BRANCH}-3"
        wt.write(guard([FIX], wt.path))
        await wt.commit("fix", author=AUTHOR)
        await wt.push()
    assert remote_has(remote, f"{BRANCH}-3")
    # the branches that were there before are untouched (the user's local one too)
    assert git("rev-parse", BRANCH, cwd=remote) == git("rev-parse", "main", cwd=remote)
    assert git("rev-parse", f"{BRANCH}-2", cwd=app) == git("rev-parse", "main", cwd=app)


async def test_push_race_takes_next_name_without_force(app: Path) -> None:
    """If the name is taken between the check and the push, the run renames; nothing is forced."""
    remote = app.parent / "remote.git"
    async with open_tree(app) as wt:
        git("push", "-q", "origin", f"main:refs/heads/{BRANCH}", cwd=app)  # someone else
        wt.write(guard([FIX], wt.path))
        await wt.commit("fix", author=AUTHOR)
        pushed = await wt.push()
    assert pushed.branch == f"{BRANCH}-2"
    assert git("rev-parse", BRANCH, cwd=remote) == git("rev-parse", "main", cwd=remote)
    assert remote_has(remote, f"{BRANCH}-2")


async def test_empty_commit_deletes_the_branch(app: Path) -> None:
    """When the written files equal the base, commit returns None and no branch is left."""
    remote = app.parent / "remote.git"
    same = GuardResult(True, [], "", {"app/service.py": SERVICE})
    async with open_tree(app) as wt:
        wt.write(same)
        assert await wt.commit("fix", author=AUTHOR) is None
        with pytest.raises(GitError, match="nothing committed"):
            await wt.push()
    assert not git("for-each-ref", "refs/heads/auto-fix", cwd=app).strip()
    assert not remote_has(remote, BRANCH)


async def test_delete_branch_removes_a_pushed_branch(app: Path) -> None:
    """A branch this run pushed can be deleted again, locally and on the remote."""
    remote = app.parent / "remote.git"
    async with open_tree(app) as wt:
        wt.write(guard([FIX], wt.path))
        await wt.commit("fix", author=AUTHOR)
        await wt.push()
        assert remote_has(remote, BRANCH)
        await wt.delete_branch()
    assert not remote_has(remote, BRANCH)


@pytest.mark.parametrize("target", ["main", "feature/user-work"])
async def test_refuses_to_push_other_branches(app: Path, target: str) -> None:
    """Push refuses the base branch and any branch this run did not create; the remote keeps it."""
    remote = app.parent / "remote.git"
    main_before = git("rev-parse", "main", cwd=remote)
    async with open_tree(app) as wt:
        wt.write(guard([FIX], wt.path))
        await wt.commit("fix", author=AUTHOR)
        wt.branch = target  # as if a bug or a hostile name pointed it elsewhere
        with pytest.raises(GitError, match="refusing to push"):
            await wt.push()
        wt.branch = BRANCH
    assert git("rev-parse", "main", cwd=remote) == main_before
    assert not remote_has(remote, "feature/user-work")


async def test_token_is_never_written_to_config(app: Path) -> None:
    """With a token set, no config file or remote URL in either repository mentions it."""
    token = "ghp_pushtokenNeverStored123"
    async with open_tree(app, token=token) as wt:
        wt.write(guard([FIX], wt.path))
        await wt.commit("fix", author=AUTHOR)
        await wt.push()
    for config in (app / ".git/config", app.parent / "remote.git/config"):
        assert token not in config.read_text()
    assert git("remote", "get-url", "origin", cwd=app).strip() == str(app.parent / "remote.git")


def test_auth_env_only_for_https() -> None:
    """The credential header is scoped to the https remote's host; other remotes get nothing."""
    env = auth_env("https://github.com/acme/app.git", "tok")
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraheader"
    assert (
        env["GIT_CONFIG_VALUE_0"]
        == "Authorization: Basic " + base64.b64encode(b"x-access-token:tok").decode()
    )
    assert auth_env("https://user:pw@ghe.example/acme/app.git", "t")["GIT_CONFIG_KEY_0"] == (
        "http.https://ghe.example/.extraheader"
    )
    assert auth_env("git@github.com:acme/app.git", "tok") == {}
    assert auth_env("http://insecure.example/app.git", "tok") == {}
    assert auth_env("https://github.com/acme/app.git", None) == {}


@pytest.fixture
def http_recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A loopback HTTP server that records request headers and answers 403 (in a thread)."""
    import asyncio
    import threading

    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(status=403, text="no")

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)

    async def start() -> str:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}/"

    url = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield url, seen
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_git_sends_the_extraheader(http_recorder: tuple[str, list[dict[str, str]]]) -> None:
    """Real git sends the env-configured Authorization header to the scoped host."""
    url, seen = http_recorder
    env = {**scrubbed_env(), "GIT_TERMINAL_PROMPT": "0", **extraheader_env(url, "tok123")}
    subprocess.run(["git", "ls-remote", url + "acme/app.git"], env=env, capture_output=True)
    assert seen, "git never reached the server"
    want = "Basic " + base64.b64encode(b"x-access-token:tok123").decode()
    assert seen[0].get("Authorization") == want


def test_scrubbed_env_keeps_ordinary_variables() -> None:
    """PATH, HOME and LANG survive; token-ish names go; `keep` re-admits named ones."""
    env = {
        "PATH": "/bin",
        "HOME": "/h",
        "LANG": "C",
        "GH_TOKEN": "x",
        "DB_PASSWORD": "y",
        "GIT_CONFIG_VALUE_0": "z",
        "SSH_AUTH_SOCK": "/s",
    }
    assert scrubbed_env(env) == {"PATH": "/bin", "HOME": "/h", "LANG": "C"}
    kept = scrubbed_env(env, keep=frozenset({"SSH_AUTH_SOCK"}))
    assert kept["SSH_AUTH_SOCK"] == "/s"


def test_branch_name_is_ref_safe() -> None:
    """Category and id are reduced to ref-safe slugs."""
    assert branch_name("internal_error", "g1a2b3") == BRANCH
    assert branch_name("Weird Cat!", "../..:id~^") == "auto-fix/weird-cat/id"
    check = subprocess.run(["git", "check-ref-format", "--branch", branch_name("a b", "c..d")])
    assert check.returncode == 0


def _quote(code: str) -> str:
    import shlex

    return shlex.quote(code)


def _without_index_line(diff: str) -> str:
    return "".join(line for line in diff.splitlines(keepends=True) if not line.startswith("index "))


async def test_hung_git_times_out(app: Path, tmp_path: Path) -> None:
    """A git command that hangs (a dead remote, a prompt) is killed at the timeout."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "git").write_text("#!/bin/sh\nsleep 30\n")
    (fake_bin / "git").chmod(0o755)
    environ = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    started = time.monotonic()
    with pytest.raises(GitError, match=r"timed out after 0\.5s"):
        async with open_tree(app, timeout=0.5, environ=environ):
            pass
    assert time.monotonic() - started < 10


async def test_errors_mask_credentials_in_remote_urls(app: Path) -> None:
    """A failing fetch from a URL with user:password never shows the password."""
    git("remote", "set-url", "origin", "https://bob:hunter2pw@127.0.0.1:9/acme/app.git", cwd=app)
    with pytest.raises(GitError) as info:
        async with open_tree(app, token="ghp_tokenvalue"):
            pass
    assert "hunter2pw" not in str(info.value) and "ghp_tokenvalue" not in str(info.value)
    assert "fetch failed" in str(info.value)


async def test_delete_keeps_a_branch_someone_added_to(app: Path, tmp_path: Path) -> None:
    """A pushed branch that a human has since added commits to is not deleted."""
    remote = app.parent / "remote.git"
    other = tmp_path / "other"
    async with open_tree(app) as wt:
        wt.write(guard([FIX], wt.path))
        await wt.commit("fix", author=AUTHOR)
        await wt.push()
        git("clone", "-q", "-b", BRANCH, str(remote), str(other), cwd=tmp_path)
        (other / "extra.txt").write_text("review fixup\n")
        git("add", "extra.txt", cwd=other)
        git("commit", "-q", "-m", "fixup", cwd=other)
        git("push", "-q", "origin", BRANCH, cwd=other)
        with pytest.raises(GitError, match="push failed"):
            await wt.delete_branch()
    assert git("rev-parse", BRANCH, cwd=remote) == git("rev-parse", "HEAD", cwd=other)
