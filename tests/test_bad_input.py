"""Hostile input through the whole pipeline: nothing crashes, every line is counted."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def replay(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", "replay", str(path), "--no-progress", *extra],
        capture_output=True, text=True, timeout=120,
    )


def accounting(report: str) -> dict[str, int]:
    rows = re.findall(r"^\| ([A-Za-z][^|(]*?)(?: \([^|]*\))? \| ([\d,]+) \|$", report, re.M)
    return {k.strip(): int(v.replace(",", "")) for k, v in rows}


def test_hostile_file_is_counted_line_by_line(tmp_path: Path) -> None:
    """Invalid UTF-8, NULs, a 10 MB line, truncated JSON, garbage: all counted, none lost."""
    endless = ["Traceback (most recent call last):"] + [
        f'  File "/app/loop.py", line {i}, in f{i}' for i in range(1, 1200)
    ]
    parts: list[bytes] = [
        b"2026-11-21 10:00:00,000 INFO start\n",
        b"ERROR bad bytes \xff\xfe\xc3( here\n",
        b"ERROR nul \x00\x00 inside\n",
        b"ERROR " + b"x" * (10 * 1024 * 1024) + b"\n",
        b'{"level":"error","msg":"truncated json\n',
        b"[1, 2, 3]\n",
        bytes(range(256)) + b"\n",
        ("\n".join(endless) + "\n").encode(),
        b"ERROR last line without newline",
    ]
    path = tmp_path / "hostile.log"
    path.write_bytes(b"".join(parts))
    physical = path.read_bytes().count(b"\n") + 1
    r = replay(path)
    assert r.returncode == 0, r.stderr[-2000:]
    acc = accounting(r.stdout)
    assert acc["Lines read"] == physical
    assert acc["Lines truncated"] >= 1
    events = replay(path, "--emit", "events")
    spans = [json.loads(line) for line in events.stdout.splitlines()]
    covered = sum(e["last_line"] - e["first_line"] + 1 for e in spans)
    assert covered <= physical
    assert acc["Events"] >= 9  # the truncated JSON and the garbage are events too
    assert any(e["first_line"] == 4 for e in spans)  # the 10 MB line is an event, truncated


def test_random_bytes_never_crash(tmp_path: Path) -> None:
    """A megabyte of random bytes replays with exit 0 and every line counted."""
    import random

    rng = random.Random(5)
    data = bytes(rng.getrandbits(8) for _ in range(1 << 20))
    path = tmp_path / "random.bin"
    path.write_bytes(data)
    r = replay(path)
    assert r.returncode == 0, r.stderr[-2000:]
    expected = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    assert accounting(r.stdout)["Lines read"] == expected
