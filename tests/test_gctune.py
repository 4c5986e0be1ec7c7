"""The cyclic-GC settings reach every process that runs the pipeline: the CLI's and each
worker's (a new interpreter, launch.py, which inherits nothing from its parent)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from watcher.gctune import THRESHOLDS

ROOT = Path(__file__).resolve().parent.parent

# Runs child.main as launch.py's interpreter does, with Worker replaced by one that reports
# the GC state it runs under instead of reading sources.
_WORKER = textwrap.dedent(
    """
    import gc, json, sys
    from multiprocessing import Pipe
    from watcher.config import load_config
    from watcher.workers import child

    class Reporting:
        def __init__(self, conn, setup):
            pass

        async def run(self):
            print(json.dumps([list(gc.get_threshold()), gc.get_freeze_count()]))

    child.Worker = Reporting
    ours, theirs = Pipe()
    child.main(theirs, child.Setup(0, load_config(None), False, (None, None), False))
    """
)


def _run(code: str) -> list:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_process_runs_with_the_tuned_gc() -> None:
    thresholds, frozen = _run(_WORKER)
    assert tuple(thresholds) == THRESHOLDS
    assert frozen > 0  # start-up's objects (modules, config) are out of every collection


def test_the_cli_tunes_the_gc_before_it_runs_a_command(tmp_path: Path) -> None:
    """`watcher replay` runs under the same settings (checked inside the command)."""
    log = tmp_path / "app.log"
    log.write_text("2026-12-07 12:00:00 ERROR boom\n")
    code = textwrap.dedent(
        f"""
        import gc, json, sys
        from watcher import cli, scan

        real = scan.scan

        async def reporting(*args, **kwargs):
            print(json.dumps([list(gc.get_threshold()), gc.get_freeze_count()]), file=sys.stderr)
            return await real(*args, **kwargs)

        scan.scan = reporting
        sys.argv = ["watcher", "replay", {str(log)!r}, "--no-progress", "-o", "/dev/null"]
        try:
            cli.main()
        except SystemExit:
            pass
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.startswith("[[")]
    assert lines, done.stderr[-2000:]
    thresholds, frozen = json.loads(lines[-1])
    assert tuple(thresholds) == THRESHOLDS
    assert frozen > 0
