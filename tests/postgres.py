"""A throwaway PostgreSQL cluster for the test session, and a fresh database per test.

`initdb` in a temp dir, its own free port, the unix socket in that dir, no TCP; run as a
non-root user (PostgreSQL refuses to run as root: tests run as root in CI, so the server runs
as `nobody` through `runuser`). Skipped, with the reason, only when no PostgreSQL binaries are
found (test.sh installs Debian's `postgresql`).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

RUN_AS = "nobody"
_names = itertools.count(1)


def bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl (PATH first, then Debian's versioned ones)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").is_file():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", RUN_AS, "--", *argv]


class Cluster:
    """One running server: `url(db)` for a database on it, `create()` for a fresh one."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.data, self.port = root / "data", _free_port()

    def start(self) -> None:
        """initdb (trust auth, C locale) and start; raises CalledProcessError with its output."""
        if os.geteuid() == 0:
            shutil.chown(self.root, RUN_AS)
        common = {"capture_output": True, "text": True, "check": True, "cwd": self.root}
        subprocess.run(
            _as_server_user([str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                             "-U", "postgres", "--locale=C", "-E", "UTF8", "--no-sync"]),
            **common,
        )  # fmt: skip
        self.resume()

    def resume(self) -> None:
        """Start the server on its existing data (after `start`'s initdb, or a `pause`)."""
        options = f"-k {self.root} -p {self.port} -c listen_addresses='' -c fsync=off"
        subprocess.run(
            _as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                             "-l", str(self.root / "server.log"), "-w", "start"]),
            capture_output=True, text=True, check=True, cwd=self.root,
        )  # fmt: skip

    def pause(self) -> None:
        """Stop the server as an outage does (clients cut off at once), keeping its data:
        `resume` brings it back."""
        subprocess.run(
            _as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                             "-w", "stop"]),
            capture_output=True, text=True, check=True, cwd=self.root,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away)."""
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            subprocess.run(
                _as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m",
                                 "immediate", "-w", "stop"]),
                capture_output=True, check=True,
            )  # fmt: skip

    def url(self, db: str = "postgres") -> str:
        """A libpq URL for a database on this server (user postgres, through the socket)."""
        return f"postgresql://postgres@/{db}?host={self.root}&port={self.port}"

    def create(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A cluster for the duration of the block; pytest.skip when PostgreSQL is not installed."""
    bindir = bin_dir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl): ./test.sh installs postgresql")
    root = Path(tempfile.mkdtemp(prefix="watcher-pg-"))
    cluster = Cluster(bindir, root)
    try:
        try:
            cluster.start()
        except subprocess.CalledProcessError as exc:
            log = root / "server.log"
            detail = log.read_text() if log.is_file() else ""
            message = f"PostgreSQL did not start: {exc.stderr}{exc.stdout}{detail}"
            raise RuntimeError(message) from exc
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
