#!/usr/bin/env bash
# Installs watcher into .venv and replays the bundled example log: prints the
# Production Debug Report for examples/app.log. Usage: ./run.sh [watcher args]
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
if [ $# -eq 0 ]; then
  set -- replay examples/app.log
fi
exec .venv/bin/watcher "$@"
