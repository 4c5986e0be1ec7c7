"""The process's file-descriptor limit: raised at start, and shared out between its users.

The default soft RLIMIT_NOFILE of 1,024 is far below what a daemon following many files and
serving HTTP needs, and running into it turns every accept() and open() into an error: the HTTP
server's connection cap and the file source's `max_open_files` are clamped to a share of it.
"""

from __future__ import annotations

import resource

# Descriptors kept free for everything else the daemon opens (the state DB, sockets, pipes).
RESERVED_FDS = 64


def fd_budget(wanted: int, share: float) -> int:
    """`wanted`, or fewer when the limit could not hold that many beside the rest of the
    daemon: at most `share` of the descriptors left after a reserve (at least 8)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(8, min(wanted, int((soft - RESERVED_FDS) * share)))


def raise_fd_limit(target: int = 65536) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards the hard limit, as Go's runtime does; (old, new)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            return soft, soft
        return soft, want
    return soft, soft
