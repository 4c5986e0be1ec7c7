"""Run verify_command on model-written code where it cannot reach the daemon or the user's repo.

Each run gets a fresh standalone copy (`git clone --shared` into a temp dir at the base commit,
plus the files under test) — never the linked worktree, which shares the user's `.git`, and
never the same copy twice, since code that ran in a copy may have rewritten its `.git/config`.
The command then runs in one of these modes (`[autofix] sandbox`):

- `namespaces` (preferred; `auto` picks it when the kernel allows): `unshare --user
  --map-root-user --pid --net --mount --mount-proc --fork --kill-child`, then sandbox_init.py
  remounts everything but the copy read-only and drops every capability. The command sees no
  process of the host (so not the daemon's /proc/PID/environ or memory), has no network but a
  downed loopback, and cannot write outside its copy — following the copy's `origin` URL or
  `objects/info/alternates` into the user's checkout hits a read-only file system.
- `uid` (the fallback `auto` takes when the kernel refuses user namespaces but watcher runs as
  root): `setpriv` as uid/gid 65534 with no capabilities, the copy chowned to it. Another uid
  cannot read the daemon's environ or memory, nor write the user's (root-owned) checkout; but
  the network is NOT isolated and other processes are visible. Logged as a warning.
- `off`: no isolation at all, only the allowlisted environment. Only when set explicitly.

`auto` with neither available does not run the command: the fix is published "NOT verified".
In every mode the environment is built from an allowlist (PATH, locale, TZ and the names in
`[autofix] verify_env`), the CPU time, file size and wall time are capped, and only the last
`OUTPUT_CAP` bytes of output are kept; only a `VerifySummary` leaves (see watcher.fix.summary).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import structlog

from watcher.envnames import secret_name
from watcher.fix import sandbox_init
from watcher.fix.summary import VerifySummary, known_secrets, not_run, summarise

log = structlog.get_logger("watcher.fix.sandbox")

Mode = Literal["namespaces", "uid", "off"]
MODES = ("auto", "namespaces", "uid", "off")
NOBODY = 65534
OUTPUT_CAP = 256 * 1024  # bytes of output kept (the tail); the rest is counted, not stored
MAX_OUTPUT = 64 * 1024 * 1024  # a command printing more than this is killed
ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
UNSHARE = ("unshare", "--user", "--map-root-user", "--pid", "--net", "--mount")
UNSHARE_TAIL = ("--mount-proc", "--fork", "--kill-child")
INIT = Path(sandbox_init.__file__)


@functools.cache
def namespaces_problem() -> str | None:
    """Why this machine refuses the user+PID+net+mount namespaces (None: it allows them);
    probed once, by running the sandbox's own setup on `true`."""
    missing = [name for name in ("unshare", "setpriv") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (util-linux)"
    probe = [*UNSHARE, *UNSHARE_TAIL, sys.executable, "-I", str(INIT), "--rw", "/tmp"]
    try:
        done = subprocess.run([*probe, "--", "true"], capture_output=True, timeout=20, check=False)
    except OSError as exc:
        return f"cannot run unshare: {exc}"
    except subprocess.TimeoutExpired:
        return "the namespace probe timed out"
    if done.returncode == 0:
        return None
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return (lines[-1] if lines else f"unshare exited {done.returncode}")[:200]


def namespaces_available() -> bool:
    """Whether this kernel lets us create the user+PID+net+mount namespaces (probed once)."""
    return namespaces_problem() is None


def choose_mode(wanted: str) -> tuple[Mode | None, str]:
    """The mode to run in (None: none usable) and a sentence for the log and the summary."""
    if wanted == "off":
        return "off", "sandbox off by configuration: verify_command runs unisolated"
    if wanted in ("auto", "namespaces") and namespaces_available():
        return "namespaces", "user, PID, network and mount namespaces"
    refused = f"user namespaces refused: {namespaces_problem() or 'probe failed'}"
    if wanted == "namespaces":
        return None, f"{refused} (sandbox = namespaces)"
    if os.geteuid() == 0 and shutil.which("setpriv") is not None:
        return "uid", f"fallback: a separate uid (65534); network NOT isolated ({refused})"
    return None, f"no sandbox available: not running as root and {refused}"


SYSTEMD_DROP_IN = "deploy/systemd/watcher-autofix-sandbox.conf"


def explain(wanted: str, verify_command: str, environ: Mapping[str, str]) -> list[str]:
    """What `watcher check-config` says about the verify sandbox: the mode it will run in and
    why, and under systemd (INVOCATION_ID set) how to allow the namespaces."""
    if not verify_command.strip():
        return ["verify sandbox: not used: verify_command is empty (fix PRs say NOT verified)"]
    mode, why = choose_mode(wanted)
    label = mode or "NONE: verify_command will not run (PRs say NOT verified)"
    lines = [f"verify sandbox: {label} ({why})"]
    if mode != "namespaces" and wanted != "off" and environ.get("INVOCATION_ID"):
        lines.append(
            "under systemd, RestrictNamespaces=yes and the @privileged filter refuse the "
            f"namespaces: install {SYSTEMD_DROP_IN} as a drop-in (README, Auto-fix)"
        )
    return lines


def sandbox_env(
    environ: Mapping[str, str], passthrough: Sequence[str], home: Path, tmp: Path
) -> dict[str, str]:
    """The command's whole environment: allowlisted names only, never a secret-looking one."""
    env = {k: environ[k] for k in (*ENV_ALLOW, *passthrough) if k in environ}
    env = {k: v for k, v in env.items() if not secret_name(k)}
    env.setdefault("PATH", os.defpath)
    env.update(
        HOME=str(home), TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1", CI="true",
        GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, NO_COLOR="1",
    )  # fmt: skip
    return env


@dataclass(frozen=True)
class Limits:
    """What one verify run may use."""

    timeout: float = 600.0  # wall seconds
    cpu: int = 600  # CPU seconds (RLIMIT_CPU)
    file_size: int = 1 << 30  # bytes one file may grow to (RLIMIT_FSIZE)
    output: int = OUTPUT_CAP


class Sandbox:
    """Runs verify_command on `files` over a fresh copy of `repo` at a commit; returns only a
    `VerifySummary`. Safe to share: every run has its own copy."""

    def __init__(
        self,
        repo: Path | str,
        *,
        mode: str = "auto",
        limits: Limits = Limits(),
        environ: Mapping[str, str] | None = None,
        passthrough: Sequence[str] = (),
        clean: Callable[[str], str] = lambda text: text,
        extra_secrets: Sequence[str] = (),
    ) -> None:
        self.repo = Path(repo)
        self.wanted, self.limits, self.clean = mode, limits, clean
        self.passthrough = tuple(passthrough)
        self._environ = dict(os.environ if environ is None else environ)
        self._secrets = [*known_secrets(self._environ, secret_name), *extra_secrets]

    async def verify(
        self, command: str, *, commit: str, files: Mapping[str, str] | None = None
    ) -> VerifySummary:
        """Run `command` on `commit` with `files` (relative path → content) written over it."""
        argv = shlex.split(command)
        if not argv:
            return not_run("no verify_command configured")
        mode, why = await asyncio.to_thread(choose_mode, self.wanted)
        if mode is None and self._environ.get("INVOCATION_ID"):  # started by systemd
            why += f"; under systemd see {SYSTEMD_DROP_IN}"
        if mode is None:
            log.warning("verify_command not run: no sandbox.", reason=why)
            return not_run(why)
        if mode != "namespaces":
            log.warning("verify_command runs with a weaker sandbox.", mode=mode, reason=why)
        top = Path(tempfile.mkdtemp(prefix="watcher-verify-"))
        try:
            return await self._run(argv, mode, top, commit, files or {})
        finally:
            await asyncio.to_thread(shutil.rmtree, top, True)

    async def _run(
        self, argv: list[str], mode: Mode, top: Path, commit: str, files: Mapping[str, str]
    ) -> VerifySummary:
        copy, home, tmp = top / "repo", top / "home", top / "tmp"
        try:
            await self._clone(copy, commit)
            write_files(copy, files)
        except (OSError, ValueError, RuntimeError) as exc:
            return not_run(self.clean(f"could not prepare the copy: {exc}"), mode)
        home.mkdir()
        tmp.mkdir()
        if mode == "uid":
            await asyncio.to_thread(_chown_tree, top, NOBODY)
        env = sandbox_env(self._environ, self.passthrough, home, tmp)
        code, output, timed_out = await run_capped(
            self._wrap(argv, mode, top), cwd=copy, env=env, limits=self.limits
        )
        if code == sandbox_init.EXIT_SETUP and "sandbox:" in output:
            log.error("The verify sandbox could not be set up.", output=self.clean(output[-500:]))
            return not_run("the sandbox could not be set up (see the log)", mode)
        return summarise(
            code, output, secrets=self._secrets, clean=self.clean, timed_out=timed_out,
            sandbox=mode,
        )  # fmt: skip

    def _wrap(self, argv: list[str], mode: Mode, top: Path) -> list[str]:
        lim = self.limits
        if mode == "namespaces":
            init = [sys.executable, "-I", str(INIT), "--rw", str(top)]
            init += ["--cpu", str(lim.cpu), "--fsize", str(lim.file_size), "--"]
            return [*UNSHARE, *UNSHARE_TAIL, *init, *argv]
        caps = [f"--cpu={lim.cpu}", f"--fsize={lim.file_size}", "--core=0", "--"]
        if mode == "uid":
            drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
            drop += ["--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--"]
            return ["prlimit", *caps, *drop, *argv]
        return ["prlimit", *caps, *argv]

    async def _clone(self, copy: Path, commit: str) -> None:
        """A standalone clone at `commit`, made with hooks off and no user config."""
        if not re.fullmatch(r"[0-9a-f]{7,64}", commit):
            raise ValueError(f"not a commit id: {commit!r}")
        env = {"PATH": self._environ.get("PATH", os.defpath), "GIT_CONFIG_NOSYSTEM": "1"}
        env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        base = ["git", "-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=always"]
        steps = {
            "clone": ["clone", "--quiet", "--shared", "--no-checkout", str(self.repo), str(copy)],
            "checkout": ["-C", str(copy), "checkout", "--quiet", "--detach", commit],
        }
        for name, step in steps.items():
            code, output, _ = await run_capped(
                [*base, *step], cwd=copy.parent, env=env, limits=Limits(timeout=300)
            )
            if code != 0:
                raise RuntimeError(f"git {name} failed: {output.strip()[-300:]}")


def write_files(root: Path, files: Mapping[str, str]) -> None:
    """Write relative path → content under `root`, refusing paths that leave it."""
    base = root.resolve()
    for rel, text in files.items():
        pure = PurePosixPath(rel)
        target = base / pure
        if pure.is_absolute() or ".." in pure.parts or not target.resolve().is_relative_to(base):
            raise ValueError(f"{rel}: outside the copy")
        if target.is_symlink():
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def _chown_tree(top: Path, uid: int) -> None:
    for directory, dirs, names in os.walk(top):
        os.chown(directory, uid, uid, follow_symlinks=False)
        for name in dirs + names:
            os.chown(os.path.join(directory, name), uid, uid, follow_symlinks=False)


async def run_capped(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], limits: Limits
) -> tuple[int | None, str, bool]:
    """(exit code, the last `limits.output` bytes of stdout+stderr, timed out). The process
    group is killed at the timeout or past MAX_OUTPUT bytes; a missing program is exit 127."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=dict(env), start_new_session=True,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    except FileNotFoundError:
        return 127, f"command not found: {argv[0]}", False
    assert proc.stdout is not None
    kept = bytearray()
    total, timed_out = 0, False
    try:
        async with asyncio.timeout(limits.timeout):
            while chunk := await proc.stdout.read(65536):
                total += len(chunk)
                kept += chunk
                del kept[: max(0, len(kept) - limits.output)]
                if total > MAX_OUTPUT:
                    kept += b"\n[output cap reached: killed]\n"
                    break
    except TimeoutError:
        timed_out = True
        kept += f"\n[timed out after {limits.timeout:g} s: killed]\n".encode()
    with contextlib.suppress(ProcessLookupError):
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), 10)
    code = None if timed_out else proc.returncode
    return code, kept.decode("utf-8", "replace"), timed_out
