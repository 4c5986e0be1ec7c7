#!/usr/bin/env python3
"""The long run of tests/test_file_model.py: random (not derandomised) exploration of writes,
rotations, truncations, deletions and daemon restarts against the real `watcher run`.

    .venv/bin/python bench/file_model.py                  # 40 examples of up to 30 steps
    .venv/bin/python bench/file_model.py --examples 200 --steps 50

The suite runs 3 fixed examples; this explores (and shrinks a failure to a minimal sequence).
Exit code: pytest's (0 when every example held).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Run the model-based test with exploration settings; return pytest's exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=40)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args(argv)
    env = {
        **os.environ,
        "WATCHER_MODEL_EXAMPLES": str(args.examples),
        "WATCHER_MODEL_STEPS": str(args.steps),
        "WATCHER_MODEL_EXPLORE": "1",
    }
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
        "tests/test_file_model.py",
    ]
    return subprocess.call(argv, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
