"""How a worker process starts: its own interpreter, run with `python -c`, on a socket pair.

Not multiprocessing's start methods, for memory (issue 15: the peak resident memory of all the
processes together under a flood of unique errors must stay within 300 MB):
- a plain fork would copy the locks the parent's threads hold (the file readers', the
  executor's), and every page of the parent would count in the worker's RSS;
- "forkserver" keeps a third process holding every module a worker imports (~38 MB RSS, each
  page counted again in every worker's RSS since a forked page is resident in both) and starts
  multiprocessing's resource tracker (~12 MB), which nothing here needs (no named semaphores or
  shared memory); together a sixth of the budget;
- "spawn" starts the resource tracker too, and imports the parent's `__main__` (the whole CLI)
  in the worker.

A worker imports its modules itself (~0.4 CPU-s on an idle core, in parallel with the other
workers: about what the fork server's one import took before its first fork, on the same
critical path), and a restart after a crash takes that long too instead of milliseconds.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any

# what the new interpreter runs: the parent's import path (a checkout on PYTHONPATH, a venv),
# then the worker's entry point on the inherited socket
_BOOT = "import sys; sys.path[:] = {path!r}; from watcher.workers.child import serve; serve({fd})"


class WorkerProcess:
    """A started worker: the parent's end of its pipe, and the few calls the pool makes of a
    process (those of multiprocessing.Process it used)."""

    def __init__(self, setup: Any, name: str) -> None:
        ours, theirs = socket.socketpair()
        try:
            fd = theirs.fileno()
            argv = [sys.executable, "-c", _BOOT.format(path=list(sys.path), fd=fd)]
            # its own process group: Ctrl-C in a terminal reaches the parent only, which stops
            # its workers after their sources drained (SIGTERM of a whole control group is
            # ignored by the worker itself, child.main)
            self._popen = subprocess.Popen(
                argv, pass_fds=(fd,), stdin=subprocess.DEVNULL, process_group=0
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the child's end: our recv sees EOF when the child dies
        self.name = name
        self.conn = Connection(ours.detach())
        self.conn.send(setup)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()
