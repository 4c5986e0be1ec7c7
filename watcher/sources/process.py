"""Stopping a source's child process: the command and Railway sources start theirs in a session
of their own, so one signal to the process group reaches every process the child started."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


async def stop_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; reap the child."""
    if proc.returncode is not None:
        return
    signal_group(proc, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        signal_group(proc, signal.SIGKILL)
        await proc.wait()


def signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    # gone already (or reaped by someone else): nothing left to stop
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
