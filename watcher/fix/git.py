"""Branch, commit and push a fix from a private worktree, never the user's checkout.

`git worktree add` gives a second working directory that shares the object store and refs with
the user's repository but has its own index and HEAD, so the user's working copy, index and
current branch are never touched. Every git command runs with hooks off (a repo's hooks would
otherwise run on checkout, commit and push), no terminal prompts, a timeout, and an environment
without the watcher's secrets; the push credential goes only to the commands that talk to the
remote, through GIT_CONFIG_* environment variables — never argv (visible in `ps`), the remote
URL or a config file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from watcher.envnames import SECRET_ENV
from watcher.envnames import secret_name as secret_name
from watcher.fix.patch import GuardResult, apply

BRANCH_PREFIX = "auto-fix"
GIT_TIMEOUT = 120.0
MAX_SUFFIX = 50

_SECRET_ENV = SECRET_ENV  # its name before it moved to watcher.envnames
# What git itself may keep of the above: ssh agent and command for ssh remotes, and where the
# user's git config lives. GIT_CONFIG_COUNT/KEY/VALUE go: they may carry a parent's credential.
_GIT_KEEP = frozenset(
    {"SSH_AUTH_SOCK", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT"}
    | {"GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM"}
)
_URL_USERINFO = re.compile(r"(://)[^/@\s]+@")


class GitError(RuntimeError):
    """A git command failed or a safety rule refused an operation."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A commit author or committer."""

    name: str
    email: str

    @classmethod
    def parse(cls, text: str) -> Identity:
        """`Name <email>` → Identity."""
        match = re.fullmatch(r"\s*(.*?)\s*<([^<>\s]+)>\s*", text)
        if not match or not match.group(1):
            raise ValueError(f"expected 'Name <email>', got {text!r}")
        return cls(match.group(1), match.group(2))


DEFAULT_IDENTITY = Identity("watcher", "watcher@localhost")


@dataclass(frozen=True, slots=True)
class PushResult:
    """A branch this run created on the remote."""

    remote: str
    branch: str
    sha: str
    created: bool = True  # always: the watcher only pushes branches it has just created


def scrubbed_env(
    environ: Mapping[str, str] | None = None, *, keep: frozenset[str] = frozenset()
) -> dict[str, str]:
    """A copy of `environ` (default os.environ) without secrets, except the names in `keep`."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if k in keep or not _SECRET_ENV.search(k)}


def auth_env(remote_url: str, token: str | None) -> dict[str, str]:
    """Env vars that make git send `token` to the remote's host (https remotes only)."""
    if not token or not remote_url.lower().startswith("https://"):
        return {}
    host = urlsplit(remote_url).netloc.rsplit("@", 1)[-1]
    return extraheader_env(f"https://{host}/", token)


def extraheader_env(scope: str, token: str) -> dict[str, str]:
    """`http.<scope>.extraheader` as GitHub wants it (basic x-access-token), via GIT_CONFIG_*."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{scope}.extraheader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


async def head_commit(repo: Path, timeout: float = GIT_TIMEOUT) -> str:
    """The checkout's HEAD commit, or "" when `repo` is not a git checkout (nothing to verify
    against then)."""
    env = scrubbed_env(keep=_GIT_KEEP)
    try:
        code, out = await _run(
            ["git", "rev-parse", "--verify", "HEAD^{commit}"], cwd=repo, env=env, timeout=timeout
        )
    except (OSError, TimeoutError):
        return ""
    return out.strip() if code == 0 else ""


def branch_name(category: str, fix_id: str, prefix: str = BRANCH_PREFIX) -> str:
    """`auto-fix/{category}/{id}` with each part reduced to characters safe in a ref."""
    return f"{prefix}/{_slug(category) or 'fix'}/{_slug(fix_id) or 'x'}"


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    return re.sub(r"\.{2,}", ".", slug)[:60].rstrip(".-")


class Worktree:
    """`async with Worktree(repo, "main", "origin", category=..., fix_id=...) as wt:` fetches
    the remote base, checks out a new branch in a temp worktree, and always removes the worktree
    and the local branch on exit. Inside: `write`, `commit`, `push`. Model-written code never
    runs here (the worktree shares the user's `.git`): verification is watcher.fix.sandbox's."""

    def __init__(
        self,
        repo: Path | str,
        base_branch: str = "main",
        remote: str = "origin",
        *,
        category: str = "fix",
        fix_id: str,
        token: str | None = None,
        timeout: float = GIT_TIMEOUT,
        environ: Mapping[str, str] | None = None,
        prefix: str = BRANCH_PREFIX,
    ) -> None:
        self.repo = Path(repo)
        self.base_branch = base_branch
        self.remote = remote
        self.timeout = timeout
        self.prefix = prefix
        self.wanted = branch_name(category, fix_id, prefix)
        self.branch = ""
        self.base_sha = ""
        self.path = Path()
        self.created_branches: list[str] = []
        self.pushed: PushResult | None = None
        self._token = token
        self._environ = environ
        self._tmp: Path | None = None
        self._result: GuardResult | None = None
        self._committed: str | None = None
        self._remote_auth: dict[str, str] = {}

    async def __aenter__(self) -> Self:
        url = (await self._git("remote", "get-url", self.remote)).strip()
        self._remote_auth = auth_env(url, self._token)
        tracking = f"refs/remotes/{self.remote}/{self.base_branch}"
        refspec = f"+refs/heads/{self.base_branch}:{tracking}"
        await self._git("fetch", "--no-tags", "--quiet", self.remote, refspec, network=True)
        self.base_sha = (await self._git("rev-parse", "--verify", f"{tracking}^{{commit}}")).strip()
        self.branch = await self._free_branch()
        self._tmp = Path(tempfile.mkdtemp(prefix="watcher-fix-"))
        self.path = self._tmp / "worktree"
        add = ["add", "--quiet", "--no-track", "-b", self.branch, str(self.path), self.base_sha]
        try:
            await self._git("worktree", *add)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self.created_branches.append(self.branch)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # shielded: a cancelled fix task must still remove its worktree
        await asyncio.shield(self._cleanup())

    async def _cleanup(self) -> None:
        with contextlib.suppress(GitError, OSError):
            await self._git("worktree", "remove", "--force", str(self.path))
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        with contextlib.suppress(GitError, OSError):
            await self._git("worktree", "prune")
        # the branch lives on in the remote if pushed; locally it would only clutter `git branch`
        with contextlib.suppress(GitError, OSError):
            await self._delete_local(self.branch)

    def write(self, result: GuardResult) -> list[str]:
        """Write an accepted patch's files into the worktree."""
        self._result = result
        return apply(result, self.path)

    async def commit(
        self,
        subject: str,
        body: str = "",
        *,
        author: Identity = DEFAULT_IDENTITY,
        committer: Identity | None = None,
    ) -> str | None:
        """Commit the written files; the new sha, or None (branch deleted) when nothing changed."""
        if self._result is None:
            raise GitError("nothing written to commit")
        # rewrite first: a verify command (a formatter, a code generator) may have changed them
        files = apply(self._result, self.path)
        await self._git(
            "add", "--all", "--", *files, cwd=self.path, extra={"GIT_LITERAL_PATHSPECS": "1"}
        )
        if await self._git_code("diff", "--cached", "--quiet", cwd=self.path) == 0:
            await self.delete_branch()
            return None
        committer = committer or author
        ident = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
        }
        message = f"{subject.strip()}\n\n{body.strip()}\n" if body.strip() else subject.strip()
        commit = ["-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-F", "-"]
        await self._git(*commit, cwd=self.path, extra=ident, stdin=message)
        self._committed = (await self._git("rev-parse", "HEAD", cwd=self.path)).strip()
        return self._committed

    async def push(self) -> PushResult:
        """Create the branch on the remote: create-only, never to the base branch.

        A plain push would fast-forward a branch someone else made meanwhile if ours happens to
        descend from it. A lease with an empty expected value ("this ref must not exist") is
        checked by the remote under its ref lock, so the push can only create; if the name was
        taken, the run moves on to the next free suffix.
        """
        if self._committed is None:
            raise GitError("nothing committed to push")
        for _ in range(3):
            self._check_pushable(self.branch)
            ref = f"refs/heads/{self.branch}"
            push = ["push", "--no-verify", "--porcelain", f"--force-with-lease={ref}:"]
            push += [self.remote, f"{self._committed}:{ref}"]
            code, output = await self._git_run(*push, network=True)
            if code == 0:
                self.pushed = PushResult(self.remote, self.branch, self._committed)
                return self.pushed
            if "[rejected]" not in output and "already exists" not in output:
                raise GitError(f"git push failed: {_clean(output)}")
            await self._rename(await self._free_branch())  # someone took the name meanwhile
        raise GitError(f"git push rejected three times for {self.wanted}")

    async def delete_branch(self) -> None:
        """Delete this run's branch locally and, if this run pushed it, on the remote — there
        only while it still points at the pushed commit (nobody has added work to it)."""
        if self.pushed is not None:
            self._check_pushable(self.pushed.branch)
            ref = f"refs/heads/{self.pushed.branch}"
            lease = f"--force-with-lease={ref}:{self.pushed.sha}"
            await self._git("push", "--no-verify", lease, self.remote, f":{ref}", network=True)
            self.pushed = None
        await self._git("checkout", "--quiet", "--detach", cwd=self.path)
        await self._delete_local(self.branch)

    async def delete_stale(self, branch: str, sha: str) -> bool:
        """Delete the remote branch of an earlier, closed fix (no need to enter the worktree):
        only a branch under the fix prefix, and only while it still points at `sha`, the commit
        that fix pushed — a branch someone has added work to is kept. True when it is gone
        (deleted now, or already deleted on GitHub)."""
        if not branch.startswith(f"{self.prefix}/") or branch == self.base_branch or not sha:
            raise GitError(f"refusing to delete {branch!r}: not a fix branch with a known commit")
        if not self._remote_auth:
            url = (await self._git("remote", "get-url", self.remote)).strip()
            self._remote_auth = auth_env(url, self._token)
        ref = f"refs/heads/{branch}"
        listed = await self._git("ls-remote", self.remote, ref, network=True)
        now = listed.split()[0] if listed.strip() else ""
        if not now:
            return True
        if now != sha:
            return False
        code, output = await self._git_run(
            "push", "--no-verify", "--porcelain", f"--force-with-lease={ref}:{sha}",
            self.remote, f":{ref}", network=True,
        )  # fmt: skip
        if code != 0 and ("stale info" in output or "[rejected]" in output):
            return False  # moved between the listing and the push
        if code != 0:
            raise GitError(f"git push --delete failed: {_clean(output)}")
        return True

    def _check_pushable(self, branch: str) -> None:
        if branch in (self.base_branch, "") or branch not in self.created_branches:
            raise GitError(f"refusing to push {branch!r}: not a branch this run created")
        if not branch.startswith(f"{self.prefix}/"):
            raise GitError(f"refusing to push {branch!r}: outside {self.prefix}/")

    async def _free_branch(self) -> str:
        """The wanted branch name, or with the first -2, -3 … suffix free locally and remotely."""
        local = await self._git("for-each-ref", "--format=%(refname)", f"refs/heads/{self.prefix}/")
        remote = await self._git("ls-remote", "--heads", self.remote, network=True)
        taken = set(local.split()) | {line.split()[-1] for line in remote.splitlines() if line}
        for n in range(1, MAX_SUFFIX + 1):
            name = self.wanted if n == 1 else f"{self.wanted}-{n}"
            if f"refs/heads/{name}" not in taken and name != self.base_branch:
                return name
        raise GitError(f"no free branch name for {self.wanted}")

    async def _rename(self, new: str) -> None:
        await self._git("branch", "-m", self.branch, new, cwd=self.path)
        self.created_branches.append(new)
        self.branch = new

    async def _delete_local(self, branch: str) -> None:
        if branch in self.created_branches:
            ref = f"refs/heads/{branch}"
            if await self._git_code("show-ref", "--verify", "--quiet", ref) == 0:
                await self._git("branch", "-D", "--quiet", branch)

    async def _git(
        self,
        *args: str,
        cwd: Path | None = None,
        network: bool = False,
        extra: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> str:
        code, output = await self._git_run(
            *args, cwd=cwd, network=network, extra=extra, stdin=stdin
        )
        if code != 0:
            raise GitError(f"git {args[0]} failed ({code}): {_clean(output)}")
        return output

    async def _git_code(self, *args: str, cwd: Path | None = None) -> int:
        return (await self._git_run(*args, cwd=cwd))[0]

    async def _git_run(
        self,
        *args: str,
        cwd: Path | None = None,
        network: bool = False,
        extra: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> tuple[int, str]:
        env = scrubbed_env(self._environ, keep=_GIT_KEEP)
        env.update(GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never", LC_ALL="C")
        env.update(extra or {})
        if network:
            env.update(self._remote_auth)
        argv = ["git", "-c", "core.hooksPath=/dev/null", *args]
        try:
            return await _run(
                argv, cwd=cwd or self.repo, env=env, timeout=self.timeout, stdin=stdin
            )
        except TimeoutError as exc:
            raise GitError(f"git {args[0]} timed out after {self.timeout:g}s") from exc


async def _run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    stdin: str | None = None,
    merge: bool = False,
) -> tuple[int, str]:
    """Run argv in its own process group; (exit code, stdout [+ stderr]). On timeout the whole
    group is killed and TimeoutError carries the output so far."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge else asyncio.subprocess.PIPE,
    )
    task = asyncio.ensure_future(proc.communicate(stdin.encode() if stdin is not None else None))
    try:
        out, err = await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out = b""
        # a grandchild that left the group may hold the pipe open: do not wait for it forever
        with contextlib.suppress(TimeoutError):
            out, _ = await asyncio.wait_for(task, 5.0)
        raise TimeoutError(out.decode("utf-8", "replace")) from None
    text = out.decode("utf-8", "replace") + (err or b"").decode("utf-8", "replace")
    return proc.returncode or 0, text


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def _clean(output: str) -> str:
    """Git output fit for an error message: credentials in URLs masked, trimmed."""
    return _tail(_URL_USERINFO.sub(r"\1***@", output.strip()), 600)
