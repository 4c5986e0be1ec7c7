"""bench/reliability.py --smoke: the Load suite runs end to end at tiny sizes and loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "reliability.py"


def test_reliability_smoke_loses_no_line(tmp_path: Path) -> None:
    """Every scenario of the reliability suite counts every line written (lost == 0)."""
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.exists(), proc.stdout + proc.stderr
    rows = json.loads(out.read_text())
    scenarios = {row["scenario"].split()[0] for row in rows}
    assert {"sustained", "burst", "back-pressure", "cardinality"} <= scenarios
    for row in rows:
        assert row["lines_in"] > 0, row
        assert row["lost"] == 0, row
        assert row["duplicates"] == 0, row
        details = row["details"]
        if "daemon_exit" in details:
            assert details["daemon_exit"] == 0, details
        if "records_written" in details:  # multi-line records assembled back into events
            assert details["events_counted"] == details["records_written"], details
