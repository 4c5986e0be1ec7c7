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
# Debian packages the integration tests drive for real: prometheus + promtool (a real scrape,
# rule checks), prometheus-alertmanager (the Alertmanager destination posts to it), chromium
# (the dashboard through Playwright; never `playwright install`), systemd (systemd-analyze verify
# on the unit files; no systemd needs to run) and systemd-journal-remote (real journal files for
# the journald source).
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)  # verifies the unit files
# the journald source's tests write real journal files from the export format, read by journalctl
[ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote)
# the store contract suite runs against a real PostgreSQL: the tests initdb a throwaway cluster
# (Debian keeps initdb/pg_ctl in /usr/lib/postgresql/<version>/bin, off PATH)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
fi
.venv/bin/ruff check watcher tests bench deploy
# one worker per core: most integration tests wait on daemons, servers and browsers, so two
# workers on two cores take ~40 % less time than one (-n 0 runs in one process)
.venv/bin/python -m pytest -q -n auto "$@"
