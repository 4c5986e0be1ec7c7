"""One daemon per state file: an advisory lock on `<state_path>.lock`, held while it runs.

Two daemons on one state file would both follow the same sources and both commit counts and
cursors (161 of 2,000 lines counted twice in a test): the second one must refuse to start. The
lock is `flock(2)` on a side file, so it is released by the kernel when the holder dies, even
by SIGKILL; the holder's PID is written into it for the error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os


class StateLocked(Exception):
    """Another process holds the state file's lock."""

    def __init__(self, path: str, holder: str) -> None:
        who = f"pid {holder}" if holder else "another process"
        super().__init__(f"{path} is in use by another watcher ({who}); stop it first")
        self.path, self.holder = path, holder


class StateLock:
    """The lock of one state file; `acquire()` raises StateLocked when it is taken."""

    def __init__(self, state_path: str) -> None:
        self.path = f"{state_path}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (non-blocking) and write our PID into the lock file; OSError when the
        lock file cannot be made (the store will then fail to open the state file too)."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise StateLocked(self.path.removesuffix(".lock"), holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (the lock file stays: removing it would race a new holder)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
