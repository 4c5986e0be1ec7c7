#!/usr/bin/env bash
# Installs everything the tests need into .venv and runs the whole suite (lint included).
# Usage: ./test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check watcher tests bench
.venv/bin/python -m pytest -q "$@"
