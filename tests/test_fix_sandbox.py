"""The verify sandbox on real subprocesses and real git: what model-written code can reach.

Each hostile "test" below is what a model could write into a reproduction test and what the old
verification ran in a linked worktree with the daemon's environment: it hunts for the daemon's
keys (/proc/*/environ, its own environment), follows the copy's links back to the user's
checkout (origin URL, objects/info/alternates, the worktree's .git) to plant a hook, and opens
a socket. Every mode the machine offers is tried: `namespaces` (user+PID+net+mount) and, as
root, the documented `uid` fallback.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.fix import sandbox
from watcher.fix.sandbox import Limits, Sandbox, choose_mode, namespaces_available
from watcher.fix.summary import VerifySummary, encodings

KEY = "sk-ant-api03-Zq8XvN2mK5pL7rT9wY3bC6dF1gH4jS0aE"
TOKEN = "ghp_R8mVq2xT7nLp4sKd9wYb3HcJ6fGz1aE5uQoI"
SECRET_ENV = {"ANTHROPIC_API_KEY": KEY, "GITHUB_TOKEN": TOKEN, "PAYMENTS_DSN": "pg://u:Pw9x@db"}
GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def available_modes() -> list[str]:
    """The sandbox modes this machine can run."""
    modes = ["namespaces"] if namespaces_available() else []
    if os.geteuid() == 0:
        modes.append("uid")
    return modes


MODES = available_modes()
needs_a_mode = pytest.mark.skipif(not MODES, reason="no sandbox mode available on this machine")


def git(*args: str, cwd: Path) -> str:
    """Run git with a fixed identity and no user config; stdout."""
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "d@x.org"}
    env.update(GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="d@x.org")
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    """A user's checkout with one commit, a bare origin and a linked worktree."""
    origin, checkout = tmp_path / "origin.git", tmp_path / "checkout"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    git("init", "-q", "-b", "main", str(checkout), cwd=tmp_path)
    (checkout / "app.py").write_text("def answer():\n    return 41\n")
    git("add", ".", cwd=checkout)
    git("commit", "-q", "-m", "app", cwd=checkout)
    git("remote", "add", "origin", str(origin), cwd=checkout)
    git("push", "-q", "origin", "main", cwd=checkout)
    git("worktree", "add", "-q", "--detach", str(tmp_path / "linked"), "HEAD", cwd=checkout)
    yield checkout


def head(repo: Path) -> str:
    """The checkout's HEAD commit."""
    return git("rev-parse", "HEAD", cwd=repo).strip()


def box(repo: Path, mode: str, **kw: object) -> Sandbox:
    """A sandbox over `repo` whose daemon environment holds the keys."""
    environ = {**os.environ, **SECRET_ENV, "HARMLESS": "visible", **GIT_ENV}
    return Sandbox(repo, mode=mode, environ=environ, **kw)  # type: ignore[arg-type]


def python(code: str) -> str:
    """A verify command running `code` with this interpreter."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def leaked(summary: VerifySummary) -> list[str]:
    """The secrets (in any encoding the summary check knows) found in the published summary."""
    text = json.dumps(summary.to_dict())
    found = []
    for secret in (KEY, TOKEN):
        found += [kind for kind, form in encodings(secret) if form in text]
    return found


# --- what runs, where ------------------------------------------------------------------------


@needs_a_mode
@pytest.mark.parametrize("mode", MODES)
async def test_runs_the_patched_copy_at_the_commit(repo: Path, mode: str) -> None:
    """The command runs in a standalone copy at the commit, with the given files written over
    it; the user's checkout is untouched and the copy is gone afterwards."""
    code = (
        "import os, app; print('cwd', os.getcwd()); print('answer', app.answer()); "
        "print(open('.git').read() if os.path.isfile('.git') else 'standalone .git dir')"
    )
    files = {"app.py": "def answer():\n    return 42\n"}
    summary = await box(repo, mode).verify(python(code), commit=head(repo), files=files)
    assert summary.ran and summary.ok and summary.sandbox == mode, summary
    assert "answer 42" in summary.tail and "standalone .git dir" in summary.tail
    assert str(repo) not in summary.tail.split("cwd ", 1)[1].split("\n", 1)[0]
    assert (repo / "app.py").read_text().endswith("return 41\n")
    assert git("status", "--porcelain", cwd=repo) == ""
    assert not list(Path(summary.tail.split("cwd ", 1)[1].split("\n")[0]).parent.glob("*"))


@needs_a_mode
@pytest.mark.parametrize("mode", MODES)
async def test_environment_is_an_allowlist(repo: Path, mode: str) -> None:
    """Only allowlisted variables (and verify_env's) reach the command: no secret, and no
    ordinary variable that was not asked for either."""
    code = "import os, json; print(json.dumps(sorted(os.environ)))"
    summary = await box(repo, mode, passthrough=("HARMLESS",)).verify(
        python(code), commit=head(repo)
    )
    names = json.loads(summary.tail.strip().splitlines()[-1])
    assert "HARMLESS" in names and "PATH" in names and "HOME" in names
    assert not set(names) & {*SECRET_ENV, "GIT_CONFIG_GLOBAL_X", "PYTEST_CURRENT_TEST"}
    plain = await box(repo, mode).verify(python(code), commit=head(repo))
    assert "HARMLESS" not in json.loads(plain.tail.strip().splitlines()[-1])


# --- exfiltration ----------------------------------------------------------------------------

EXFILTRATE = r"""
import base64, glob, os, sys
seen = []
for path in ["/proc/%d/environ" % os.getppid(), *glob.glob("/proc/*/environ")]:
    try:
        data = open(path, "rb").read()
    except OSError:
        continue
    seen.append(data)
seen.append(repr(dict(os.environ)).encode())
found = [d for d in seen if b"sk-ant-" in d or b"ghp_" in d]
for blob in seen:  # what the measured attack printed: every environment, base64-encoded
    print(base64.b64encode(blob).decode())
    print(blob.hex())
print("FOUND" if found else "NOTHING")
sys.exit(3 if found else 4)
"""


DAEMON = """
import asyncio, json, sys
from watcher.fix.sandbox import Sandbox
box = Sandbox(sys.argv[1], mode=sys.argv[2])
summary = asyncio.run(box.verify(sys.argv[3], commit=sys.argv[4]))
print(json.dumps(summary.to_dict()))
"""


async def daemon_verify(repo: Path, mode: str, command: str) -> VerifySummary:
    """Verify from a separate "daemon" process whose own environment (so its
    /proc/PID/environ) holds the keys, as watcher's does in production."""
    env = {**os.environ, **SECRET_ENV, **GIT_ENV}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DAEMON, str(repo), mode, command, head(repo), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    data = json.loads(out.decode().strip().splitlines()[-1])
    data["failing"] = tuple(data["failing"])
    return VerifySummary(**data)


@needs_a_mode
@pytest.mark.parametrize("mode", MODES)
async def test_the_daemons_environment_cannot_be_read(repo: Path, mode: str) -> None:
    """The test from the issue: it reads /proc/$PPID/environ and every other environ it can,
    prints them base64- and hex-encoded and fails. In the sandbox it finds neither key, and
    nothing in the summary carries one in any encoding."""
    summary = await daemon_verify(repo, mode, python(EXFILTRATE))
    assert summary.ran and summary.exit_code == 4, summary  # 4: it found no key
    assert leaked(summary) == []


async def test_unsandboxed_the_same_test_finds_the_keys_and_the_summary_drops_them(
    repo: Path,
) -> None:
    """The control: with the sandbox off, the same test does find the daemon's keys through
    /proc (so the test above can fail) — and the summary still publishes none of them: the
    encoded output is withheld."""
    summary = await daemon_verify(repo, "off", python(EXFILTRATE))
    assert summary.exit_code == 3, summary  # 3: it found a key
    assert summary.tail == "" and summary.withheld.startswith("output withheld")
    assert leaked(summary) == []


async def test_an_encoded_secret_in_the_output_is_withheld(repo: Path) -> None:
    """Were a key to reach the output (mode "off", the key passed on by name), the summary
    drops the tail rather than post it, and says why; counts and exit status remain."""
    code = (
        "import base64, os; k = os.environ['KEYISH'].encode(); "
        "print('1 failed, 2 passed in 0.1s'); print('noise' + base64.b64encode(b'x=' + k).decode())"
        "; raise SystemExit(1)"
    )
    environ = {**os.environ, **GIT_ENV, "KEYISH": KEY, "ANTHROPIC_API_KEY": KEY}
    sb = Sandbox(repo, mode="off", environ=environ, passthrough=("KEYISH",))
    summary = await sb.verify(python(code), commit=head(repo))
    assert summary.ran and summary.exit_code == 1 and (summary.failed, summary.passed) == (1, 2)
    assert summary.tail == "" and "secret of this process (base64)" in summary.withheld
    assert leaked(summary) == []


HOOK = r"""
import os, pathlib, subprocess, sys
targets = set()
alternates = pathlib.Path(".git/objects/info/alternates")
if alternates.exists():  # the user's object store: its parent is the user's .git
    targets.add(pathlib.Path(alternates.read_text().split()[0]).parent)
origin = subprocess.run(["git", "remote", "get-url", "origin"], capture_output=True, text=True)
if origin.stdout.strip():
    targets.add(pathlib.Path(origin.stdout.strip()) / ".git")
wrote = []
for git_dir in targets:
    for target in (git_dir / "hooks" / "pre-commit", git_dir.parent / "planted.txt",
                   git_dir / "worktrees" / "planted"):
        try:
            target.write_text("#!/bin/sh\ntouch /tmp/pwned\n")
            wrote.append(str(target))
        except OSError as exc:
            print("refused", target, exc.strerror)
print("targets", len(targets), "wrote", wrote)
sys.exit(5 if wrote else (6 if targets else 7))
"""


@needs_a_mode
@pytest.mark.parametrize("mode", MODES)
async def test_links_back_to_the_users_checkout_are_read_only(repo: Path, mode: str) -> None:
    """The test follows the copy's alternates and origin URL to the user's .git and tries to
    plant a pre-commit hook, a file in the checkout and a worktree entry: every write is
    refused and the user's repository is exactly as it was."""
    hooks_before = sorted(p.name for p in (repo / ".git/hooks").iterdir())
    summary = await box(repo, mode).verify(python(HOOK), commit=head(repo))
    assert summary.exit_code == 6, summary  # 6: it found the user's .git, and wrote nothing
    assert sorted(p.name for p in (repo / ".git/hooks").iterdir()) == hooks_before
    assert not (repo / "planted.txt").exists() and not (repo / ".git/worktrees/planted").exists()
    assert git("status", "--porcelain", cwd=repo) == ""


SOCKET = r"""
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).sendall(b"leak")
except OSError as exc:
    print("no network:", type(exc).__name__)
    sys.exit(8)
print("connected")
sys.exit(9)
"""


@pytest.mark.skipif("namespaces" not in MODES, reason="the uid fallback leaves the network")
async def test_no_network_in_the_namespaces(repo: Path) -> None:
    """A test that opens a socket to a server on the host's loopback gets no connection (the
    sandbox has its own, downed, loopback); the server receives nothing."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(100))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        summary = await box(repo, "namespaces").verify(
            f"{python(SOCKET)} {port}", commit=head(repo)
        )
        await asyncio.sleep(0.2)
    assert summary.exit_code == 8 and received == [], summary


@pytest.mark.skipif("namespaces" not in MODES, reason="needs the namespaces mode")
async def test_the_command_cannot_remount_or_see_host_processes(repo: Path) -> None:
    """Inside, the command has no capabilities (a remount read-write is refused) and sees only
    its own processes: the daemon's PID is not there."""
    code = (
        "import os, subprocess; "
        "r = subprocess.run(['mount', '-o', 'remount,rw', '/'], capture_output=True); "
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]; "
        f"print('remount', r.returncode, 'daemon-visible', str({os.getpid()}) in pids, len(pids))"
    )
    summary = await box(repo, "namespaces").verify(python(code), commit=head(repo))
    line = summary.tail.strip().splitlines()[-1].split()
    assert line[1] != "0" and line[3] == "False" and int(line[4]) < 10, summary


async def test_each_run_gets_a_fresh_copy(repo: Path) -> None:
    """What one run does to its copy (a .git/config that would run a command on the next git
    call, a stray file) is gone in the next run."""
    mode = MODES[0] if MODES else "off"
    poison = (
        "import subprocess; open('stray.txt', 'w').write('x'); "
        "subprocess.run(['git', 'config', 'core.fsmonitor', 'touch /tmp/fsmonitor-ran'])"
    )
    await box(repo, mode).verify(python(poison), commit=head(repo))
    check = "import os; print('stray' if os.path.exists('stray.txt') else 'clean')"
    summary = await box(repo, mode).verify(python(check), commit=head(repo))
    assert summary.tail.strip().endswith("clean")


# --- limits ----------------------------------------------------------------------------------


async def test_timeout_kills_the_whole_tree(repo: Path) -> None:
    """A hung command (with a background child) is killed at the timeout; the summary says so."""
    mode = MODES[0] if MODES else "off"
    started = time.monotonic()
    summary = await box(repo, mode, limits=Limits(timeout=1.0)).verify(
        "sh -c 'echo started; sleep 30 & sleep 30'", commit=head(repo)
    )
    assert summary.timed_out and not summary.ok and summary.exit_code is None
    assert "started" in summary.tail and time.monotonic() - started < 15


async def test_output_is_capped(repo: Path) -> None:
    """Only the tail of a huge output is kept and published (bounded)."""
    code = "import sys; [print('line', i) for i in range(200000)]; sys.exit(1)"
    mode = MODES[0] if MODES else "off"
    summary = await box(repo, mode).verify(python(code), commit=head(repo))
    assert summary.exit_code == 1 and summary.tail.endswith("line 199999\n")
    assert len(summary.tail) <= 2001


async def test_a_missing_command_is_a_failure_not_a_crash(repo: Path) -> None:
    """A verify command that does not exist fails with exit status 127."""
    mode = MODES[0] if MODES else "off"
    summary = await box(repo, mode).verify("definitely-not-a-command-xyz", commit=head(repo))
    assert summary.ran and not summary.ok and summary.exit_code == 127


async def test_a_bad_commit_is_not_run(repo: Path) -> None:
    """A commit the repository does not have: the copy cannot be made, nothing runs."""
    summary = await box(repo, "off").verify("true", commit="0" * 40)
    assert not summary.ran and "could not prepare the copy" in summary.note


# --- choosing a mode -------------------------------------------------------------------------


def test_fallbacks_are_chosen_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without user namespaces, root falls back to the uid sandbox and says the network is not
    isolated; a non-root user gets no sandbox (verification does not run); "off" is only ever
    chosen explicitly."""
    monkeypatch.setattr(sandbox, "namespaces_available", lambda: False)
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    mode, why = choose_mode("auto")
    assert mode == "uid" and why.startswith(
        "fallback: a separate uid (65534); network NOT isolated"
    )
    assert "user namespaces refused" in why
    assert choose_mode("namespaces")[0] is None
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    mode, why = choose_mode("auto")
    assert mode is None and "no sandbox available" in why
    assert choose_mode("off")[0] == "off"


def test_check_config_says_the_mode_and_under_systemd_points_to_the_drop_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """check-config's lines: the mode verify_command will run in with the kernel's reason when
    namespaces are refused, and — only when started by systemd (INVOCATION_ID) — the drop-in
    that allows them; with no verify_command, that nothing runs and PRs say NOT verified."""
    monkeypatch.setattr(sandbox, "namespaces_available", lambda: False)
    monkeypatch.setattr(
        sandbox, "namespaces_problem", lambda: "unshare failed: Operation not permitted"
    )
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 61234)  # DynamicUser: not root
    [line, hint] = sandbox.explain("auto", "pytest -q", {"INVOCATION_ID": "abc"})
    assert line.startswith("verify sandbox: NONE: verify_command will not run")
    assert "unshare failed: Operation not permitted" in line
    assert "deploy/systemd/watcher-autofix-sandbox.conf" in hint
    assert len(sandbox.explain("auto", "pytest -q", {})) == 1  # not under systemd: no hint
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    [line, _] = sandbox.explain("auto", "pytest -q", {"INVOCATION_ID": "abc"})
    assert line.startswith("verify sandbox: uid (fallback") and "network NOT isolated" in line
    assert sandbox.explain("auto", " ", {}) == [
        "verify sandbox: not used: verify_command is empty (fix PRs say NOT verified)"
    ]


async def test_no_sandbox_means_not_run(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no sandbox available, the command is not run at all and the summary says why."""
    monkeypatch.setattr(sandbox, "choose_mode", lambda wanted: (None, "no sandbox available"))
    marker = repo.parent / "ran"
    summary = await box(repo, "auto").verify(f"touch {marker}", commit=head(repo))
    assert not summary.ran and summary.note == "no sandbox available" and not marker.exists()
