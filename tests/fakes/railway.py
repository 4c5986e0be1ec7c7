"""A fake `railway` CLI on PATH, and the handle tests drive it with.

`FakeRailway(dir)` writes an executable `dir/bin/railway` (a shell shim that execs
tests/fakes/railway_cli.py with this interpreter) plus the fake's state files; the
`railway_fake` fixture also puts that bin dir first on PATH. Tests append logs to the backlog
(`add`, `add_raw`) and turn knobs (`set`, `close_stream`, `redeploy`) while the CLI runs.

Knobs (control.json): auth "ok" | "unauthorized" | "invalid_token" | "not_signed_in";
require_token (RAILWAY_TOKEN must equal it); fail_next (that many runs fail transiently);
services (names `--service` may take); hang (print nothing, never exit); close (bump to end
running streams); deployment (the latest one, "d1"); wrap (wrap lines at the terminal width);
crlf (end lines with "\\r\\n"); stderr (a line to print on stderr, then carry on).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

FAKE_CLI = Path(__file__).with_name("railway_cli.py")
BASE_NS = 1_795_341_600 * 1_000_000_000  # 2026-11-22T10:00:00Z
STEP_NS = 1_000_000  # 1 ms between generated timestamps


def rfc3339(ns: int) -> str:
    """A Railway-style timestamp: RFC3339, UTC, nanoseconds."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    day = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{day}.{fraction:09d}Z"


class FakeRailway:
    """The fake CLI's files under `root`; re-opening an existing root keeps its backlog."""

    def __init__(self, root: Path, *, start_ns: int = BASE_NS) -> None:
        self.root = root
        self.bin = root / "bin"
        self.binary = self.bin / "railway"
        self.backlog = root / "backlog.jsonl"
        self.bin.mkdir(parents=True, exist_ok=True)
        if not self.binary.exists():
            self.binary.write_text(
                "#!/bin/sh\n"
                f"RAILWAY_FAKE_DIR={shlex.quote(str(root))}; export RAILWAY_FAKE_DIR\n"
                f'exec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE_CLI))} "$@"\n'
            )
            self.binary.chmod(0o755)
        if not self.backlog.exists():
            self.backlog.write_bytes(b"")
        if not (root / "control.json").exists():
            self._write_control({"deployment": "d1", "close": 0})
        self._count = sum(1 for _ in self.backlog.open("rb"))
        self.start_ns = start_ns

    # --- the backlog ----------------------------------------------------------------------

    def next_timestamp(self) -> str:
        """The timestamp the next generated entry gets (1 ms after the previous one)."""
        return rfc3339(self.start_ns + self._count * STEP_NS)

    def add(
        self,
        message: str,
        *,
        level: str = "info",
        ts: str | None = None,
        deployment: str | None = None,
        kind: str = "deploy",
        **attributes: Any,
    ) -> dict[str, Any]:
        """Append one log entry; returns it as the CLI will print it (keys in any order)."""
        entry = {"message": message, "timestamp": ts or self.next_timestamp(), "level": level}
        entry.update(attributes)
        self._append({"d": deployment or self.control()["deployment"], "k": kind, "e": entry})
        return entry

    def add_many(self, messages: list[str], **kwargs: Any) -> list[dict[str, Any]]:
        """Append several entries in one write (so a streaming CLI sees them together)."""
        deployment = kwargs.pop("deployment", None) or self.control()["deployment"]
        level = kwargs.pop("level", "info")
        records, entries = [], []
        for message in messages:
            entry = {"message": message, "timestamp": self.next_timestamp(), "level": level}
            entry.update(kwargs)
            entries.append(entry)
            records.append({"d": deployment, "k": "deploy", "e": entry})
            self._count += 1
        with self.backlog.open("a") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in records))
        return entries

    def add_raw(self, data: bytes, *, deployment: str | None = None) -> None:
        """Append output that is printed as it is (a banner, garbage, invalid UTF-8)."""
        self._append({"d": deployment or self.control()["deployment"], "raw": data.hex()})

    def _append(self, record: dict[str, Any]) -> None:
        with self.backlog.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        self._count += 1

    # --- knobs and records ----------------------------------------------------------------

    def control(self) -> dict[str, Any]:
        """The current knobs."""
        return json.loads((self.root / "control.json").read_text())

    def set(self, **knobs: Any) -> None:
        """Change knobs; a running fake picks them up within ~20 ms."""
        self._write_control({**self.control(), **knobs})

    def close_stream(self) -> None:
        """End every running stream, as the server closing the subscription does."""
        self.set(close=self.control()["close"] + 1)

    def redeploy(self, deployment: str) -> None:
        """Make `deployment` the latest; streams following the old one end."""
        self.set(deployment=deployment)

    def invocations(self) -> list[dict[str, Any]]:
        """One record per run of the fake: argv, tty, terminal columns, env flags."""
        path = self.root / "invocations.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def log_runs(self) -> list[dict[str, Any]]:
        """The invocations that were `railway logs …` (not --version)."""
        return [i for i in self.invocations() if i["argv"][:1] == ["logs"]]

    def _write_control(self, control: dict[str, Any]) -> None:
        tmp = self.root / "control.json.tmp"
        tmp.write_text(json.dumps(control))
        os.replace(tmp, self.root / "control.json")


def put_on_path(fake: FakeRailway, monkeypatch: pytest.MonkeyPatch) -> FakeRailway:
    """Make the fake the `railway` that PATH finds first (undone with the monkeypatch)."""
    monkeypatch.setenv("PATH", f"{fake.bin}{os.pathsep}{os.environ.get('PATH', '')}")
    return fake


@pytest.fixture
def railway_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRailway]:
    """A FakeRailway whose `railway` is first on PATH."""
    yield put_on_path(FakeRailway(tmp_path / "railway-fake"), monkeypatch)
