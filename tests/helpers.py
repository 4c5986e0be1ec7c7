"""Small helpers shared by tests (no fixtures with side effects here)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import socket
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from watcher.model import RawLine

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def load_genlogs() -> ModuleType:
    """bench/genlogs.py, the mixed-log generator. bench/ is scripts, not a package: the file is
    loaded by path, registered first so dataclasses can resolve the module while the class
    bodies run."""
    spec = importlib.util.spec_from_file_location("genlogs", ROOT / "bench" / "genlogs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["genlogs"] = module
    spec.loader.exec_module(module)
    return module


def raw_lines(text: str, *, source: str = "app", stream: str = "s") -> list[RawLine]:
    """RawLines for each line of text, numbered from 1, cursor = line number."""
    return [
        RawLine(line, source=source, stream=stream, cursor=i, line_no=i)
        for i, line in enumerate(text.splitlines(), start=1)
    ]


def wait_for(cond: Callable[[], object], timeout: float = 10.0, step: float = 0.02) -> object:
    """Poll until cond() is truthy; fail with AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met before the deadline")


VENV_BIN = Path(sys.executable).parent


def need(binary: str) -> str:
    """The path of a tool the tests drive for real; fail under CI (test.sh installs it), else
    skip."""
    path = shutil.which(binary) or shutil.which(binary, path=str(VENV_BIN))
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed; test.sh installs it")
        pytest.skip(f"{binary} not installed (./test.sh installs it)")
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prom_query(port: int, expr: str) -> list[dict[str, Any]]:
    """The result vector of a Prometheus instant query ([] while the server is not up)."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return list(json.load(r)["data"]["result"])
    except OSError:
        return []


def read_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of a query on a state DB opened read-only, beside a daemon that writes it;
    [] before its file or its tables exist."""
    import sqlite3

    if not Path(db).exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def stored_total(db: Path) -> int:
    """SUM(count) over the groups in a state DB (0 before the first write)."""
    import sqlite3

    if not Path(db).exists():
        return 0
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT COALESCE(SUM(count), 0) FROM groups").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def stored_groups(db: Path) -> int:
    """How many groups a state DB holds."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT COUNT(*) FROM groups").fetchone()[0])
    finally:
        con.close()


def clean_env() -> dict[str, str]:
    """This process's environment without WATCHER_*/LOG_* variables, for a child `watcher`
    whose behaviour must come from its config file alone."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "LOG_"))}


def start_prometheus(binary: str, config: Path, tmp_path: Path, port: int) -> Any:
    """A real Prometheus server on 127.0.0.1:`port` with `config`, its TSDB under tmp_path."""
    import subprocess

    return subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
