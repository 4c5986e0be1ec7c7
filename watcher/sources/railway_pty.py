"""One run of the Railway CLI, with its stdout on a pseudo-terminal or a pipe.

`railway logs` streams only when its stdout is a terminal; into a pipe it prints the last lines
and exits. Follow mode therefore gives it the slave side of a pty (as wide as a winsize can say,
so nothing the CLI lays out for the terminal wraps) and reads the master side without blocking
the loop: a reader callback wakes the coroutine, which then reads directly, so a slow consumer
back-pressures the CLI through the terminal's buffer instead of filling memory. The terminal
turns "\\n" into "\\r\\n"; the splitter strips the "\\r". Fetches (poll mode, scans) use a pipe.
stderr always goes to a pipe: it holds the CLI's diagnostics (errors, warnings), which are
reported as they arrive and kept to explain an exit, never mixed into the service's log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import struct
import termios
from collections import deque
from collections.abc import Callable, Sequence

from watcher.sources.lines import LineSplitter
from watcher.sources.process import stop_group

READ_CHUNK = 256 * 1024
_COLUMNS = 65535  # the largest value struct winsize can hold
_ROWS = 50
_TAIL_LINES = 8  # stderr lines kept to explain an exit
_STDERR_LINE_CAP = 4096
_STDERR_WAIT = 2.0  # seconds to collect the last stderr after the process ended
_VERSION_TIMEOUT = 10.0
# Colour would only add escape codes, and a self-update replacing the binary under a running
# daemon would surprise its operator; the user's own settings win.
_CHILD_DEFAULTS = {"NO_COLOR": "1", "RAILWAY_NO_AUTO_UPDATE": "1"}


def child_env() -> dict[str, str]:
    """The CLI's environment: ours (RAILWAY_TOKEN / RAILWAY_API_TOKEN pass through) + defaults."""
    return {**_CHILD_DEFAULTS, **os.environ}


async def cli_version(binary: str, env: dict[str, str]) -> str:
    """The first line `binary --version` prints; OSError when it cannot be run at all."""
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--version",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        async with asyncio.timeout(_VERSION_TIMEOUT):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return "unknown (--version timed out)"
    text = out.decode("utf-8", "replace").strip()
    return text.splitlines()[0][:80] if text else "unknown"


class CliRun:
    """A started CLI process: read its output in chunks, then finish() to reap it."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        fd: int,
        shutdown: asyncio.Event,
        *,
        pty: bool,
        on_stderr: Callable[[str], None] | None = None,
    ) -> None:
        self.proc = proc
        self.fd = fd
        self.pty = pty
        self.stderr_tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._on_stderr = on_stderr
        self._stopped = asyncio.ensure_future(shutdown.wait())
        self._stderr = asyncio.ensure_future(self._collect_stderr())
        self._closed = False

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        env: dict[str, str],
        shutdown: asyncio.Event,
        *,
        pty: bool,
        on_stderr: Callable[[str], None] | None = None,
    ) -> CliRun:
        """Spawn `argv` in its own process group; OSError when it cannot be started.

        `on_stderr` sees each diagnostic line as it arrives (a warning at start-up would
        otherwise stay invisible for as long as the stream runs).
        """
        read_fd, write_fd = os.openpty() if pty else os.pipe()
        try:
            if pty:
                winsize = struct.pack("HHHH", _ROWS, _COLUMNS, 0, 0)
                fcntl.ioctl(write_fd, termios.TIOCSWINSZ, winsize)
            os.set_blocking(read_fd, False)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,  # never a prompt: the CLI sees no terminal input
                stdout=write_fd,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                # its own session: no controlling terminal, and one killpg stops all of it
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            # Only the child may hold the writing side, or the end of its output never shows.
            os.close(write_fd)
        return cls(proc, read_fd, shutdown, pty=pty, on_stderr=on_stderr)

    async def read(self, timeout: float | None = None) -> bytes | None:
        """The next chunk; b"" once the output ended; None on shutdown or after `timeout` idle."""
        loop = asyncio.get_running_loop()
        while True:
            data = self._try_read()
            if data is not None:
                return data
            if self._stopped.done():
                return None
            ready = loop.create_future()
            loop.add_reader(self.fd, _resolve, ready)
            try:
                done, _ = await asyncio.wait(
                    {ready, self._stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                loop.remove_reader(self.fd)
                ready.cancel()
            if not done or self._stopped.done():
                return None

    def _try_read(self) -> bytes | None:
        try:
            return os.read(self.fd, READ_CHUNK)
        except BlockingIOError:
            return None
        except OSError as exc:
            # A pty master reports EIO once every holder of the slave side has closed it.
            if exc.errno == errno.EIO:
                return b""
            raise

    async def finish(self, grace: float) -> int:
        """Stop the process if it still runs (SIGTERM, SIGKILL after `grace`); its exit code."""
        proc = self.proc
        try:
            await stop_group(proc, grace)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_STDERR_WAIT):
                    await asyncio.shield(self._stderr)
        finally:
            self.close()
        assert proc.returncode is not None
        return proc.returncode

    def close(self) -> None:
        """Release the fd and the helper tasks (finish() calls it)."""
        if self._closed:
            return
        self._closed = True
        self._stopped.cancel()
        self._stderr.cancel()
        os.close(self.fd)

    async def _collect_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        splitter = LineSplitter(_STDERR_LINE_CAP)
        while data := await stream.read(READ_CHUNK):
            splitter.feed(data)
            while (lines := splitter.take()).texts:
                self._keep(lines.texts)
        self._keep(splitter.flush().texts)

    def _keep(self, texts: list[str]) -> None:
        for text in texts:
            if text.strip():
                self.stderr_tail.append(text)
                if self._on_stderr is not None:
                    self._on_stderr(text)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
