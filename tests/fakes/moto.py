"""A real moto server on a loopback port, for CloudWatch Logs tests over real HTTP.

Import the fixture into a test module (`from tests.fakes.moto import moto_endpoint`). pytest
makes one fixture definition per importing module, so the server itself is reference-counted
here: every module shares one process, started on first use and stopped after the last user.

The fixture also points boto3 at dummy credentials and a region, and away from the developer's
own ~/.aws files and the EC2 metadata service, for this process and the children it starts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REGION = "us-east-1"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": "/nonexistent/watcher-tests/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/watcher-tests/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}
START_TIMEOUT = 20.0


class _Server:
    """The shared moto process and the environment it replaced."""

    proc: subprocess.Popen[bytes] | None = None
    url = ""
    users = 0
    saved_env: dict[str, str | None] = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int) -> list[str]:
    beside = Path(sys.executable).with_name("moto_server")
    binary = str(beside) if beside.exists() else shutil.which("moto_server")
    if binary:
        return [binary, "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1.0) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _start() -> tuple[subprocess.Popen[bytes], str]:
    """Start moto on a free port; wait (with a deadline) until it answers."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        _command(port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ | ENV
    )
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(url):
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"moto_server exited with {proc.returncode}: {err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("moto_server did not answer within the deadline")
        time.sleep(0.05)
    return proc, url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if proc.stderr:
        proc.stderr.close()


def _acquire() -> str:
    if _Server.users == 0:
        _Server.saved_env = {key: os.environ.get(key) for key in ENV}
        os.environ.update(ENV)
        _Server.proc, _Server.url = _start()
    _Server.users += 1
    return _Server.url


def _release() -> None:
    _Server.users -= 1
    if _Server.users:
        return
    if _Server.proc is not None:
        _stop(_Server.proc)
        _Server.proc = None
    for key, value in _Server.saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a running moto server (dummy AWS credentials are set meanwhile)."""
    url = _acquire()
    try:
        yield url
    finally:
        _release()
