"""Who this process is: its instance name, the node its pid means something on, pid liveness."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def instance_name(configured: str) -> str:
    """`[watcher] instance`, else the host name: a Kubernetes pod's name, a Compose replica's
    container id, a VM's host name — unique per replica without any configuration."""
    return configured or socket.gethostname()


def node_id() -> str:
    """The kernel boot and pid namespace this process runs in: two rows with the same node can
    tell from a pid whether the other process is alive; rows from other nodes cannot."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:  # not Linux: the host name is the best there is
        return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists here (signal 0 checks without sending)."""
    if pid <= 0:  # 0 and negatives name process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
