"""The first process inside the verify sandbox's namespaces: lock the file system, then exec.

Run by path (`python -I sandbox_init.py …`, importing nothing of watcher) as root of a fresh
user namespace, in its own mount, PID and network namespaces (see watcher.fix.sandbox). It

1. bind-mounts each writable directory (the repository copy and its scratch space) onto itself;
2. remounts every other mount read-only, keeping the flags the kernel locks (nosuid, nodev…):
   the copy's `origin` URL, `objects/info/alternates` and any path in the user's checkout then
   lead only to read-only files;
3. sets the CPU, file-size and core-dump limits (and a process count, when configured);
4. execs the command under `setpriv` with an empty capability bounding set and no_new_privs, so
   the command cannot remount anything writable again (a remount needs CAP_SYS_ADMIN).

Usage: sandbox_init.py --rw DIR [--rw DIR…] --cpu SECONDS --fsize BYTES --nproc N -- ARGV…
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_RELATIME = 1 << 21
# per-mount flags that a remount must repeat, or the kernel refuses it in a user namespace
KEPT = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}
EXIT_SETUP = 125  # the sandbox could not be set up: the command never ran

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, flags: int) -> None:
    src = source.encode() if source else None
    if _libc.mount(src, target.encode(), None, flags, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), target)


def _mount_points() -> list[tuple[str, list[str]]]:
    """(mount point, per-mount options) of every mount this namespace sees."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            # mountinfo escapes space, tab, newline and backslash as octal
            point = fields[4].encode().decode("unicode_escape")
            points.append((point, fields[5].split(",")))
    return points


def lock_down(writable: list[str]) -> list[str]:
    """Bind `writable` onto themselves, remount the rest read-only; the mounts that refused."""
    for path in writable:
        _mount(path, path, MS_BIND | MS_REC)
    refused = []
    for point, options in _mount_points():
        if any(point == w or point.startswith(w.rstrip("/") + "/") for w in writable):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= KEPT.get(option, 0)
        try:
            _mount(None, point, flags)
        except OSError as exc:
            refused.append(f"{point}: {exc.strerror}")
    return refused


def _limits(cpu: int, fsize: int, nproc: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    if nproc:  # counted per real uid across the whole machine: off unless configured
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _parse(args: list[str]) -> tuple[list[str], dict[str, int], list[str]]:
    writable: list[str] = []
    caps = {"--cpu": 600, "--fsize": 1 << 30, "--nproc": 0}
    while args and args[0] != "--":
        flag, value, args = args[0], args[1], args[2:]
        if flag == "--rw":
            writable.append(os.path.realpath(value))
        else:
            caps[flag] = int(value)
    return writable, caps, args[1:]


def main(args: list[str]) -> None:
    """Lock the mounts, set the limits, exec the command without capabilities."""
    writable, caps, argv = _parse(args)
    try:
        refused = lock_down(writable)
    except OSError as exc:
        print(f"sandbox: cannot set up the mounts: {exc}", file=sys.stderr, flush=True)
        os._exit(EXIT_SETUP)
    if refused:  # a mount left writable is a hole: never run the command then
        print(f"sandbox: mounts not made read-only: {refused}", file=sys.stderr, flush=True)
        os._exit(EXIT_SETUP)
    _limits(caps["--cpu"], caps["--fsize"], caps["--nproc"])
    drop = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--"]
    os.execvp(drop[0], drop + argv)


if __name__ == "__main__":
    main(sys.argv[1:])
