"""SIGHUP tells the truth: it applies [classify], [redact] and [[sources]] to the running daemon
and names every other changed section as needing a restart, instead of logging "Reloaded the
config." over changes it ignored."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.helpers import clean_env, free_port, wait_for

CONFIG = """
[watcher]
state_path = "{state}"
interval = 1
persist_interval = 0.3
[http]
listen = "127.0.0.1:{port}"
posts_per_minute = {posts}
[alerts]
min_severity = "{severity}"
[redact]
patterns = [{patterns}]
[[sources]]
type = "file"
name = "app"
path = "{log}"
read_from = "beginning"
poll_interval = 0.05
"""


def samples(port: int) -> str:
    """Every sample text the API shows, joined ('' while nothing is stored)."""
    base = f"http://127.0.0.1:{port}/error-monitor/errors/patterns"
    try:
        with urllib.request.urlopen(base, timeout=2) as r:
            ids = [p["id"] for p in json.load(r)["patterns"]]
        texts = []
        for gid in ids:
            with urllib.request.urlopen(f"{base}/{gid}", timeout=2) as r:
                texts.append(r.read().decode())
        return "\n".join(texts)
    except OSError:
        return ""


def test_sighup_applies_redact_patterns_and_names_what_needs_a_restart(tmp_path: Path) -> None:
    """After a SIGHUP that adds a [redact] pattern and changes [http] and [alerts], new samples
    are redacted with the pattern, and the reload's log line names alerts and http as needing
    a restart (and says so at warning level)."""
    log, port, cfg = tmp_path / "app.log", free_port(), tmp_path / "watcher.toml"
    log.write_text("")
    fields = {"state": tmp_path / "state.db", "port": port, "log": log}
    cfg.write_text(CONFIG.format(**fields, posts=10, severity="high", patterns=""))
    err = tmp_path / "daemon.log"
    with err.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "-c", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=out, env=clean_env(),
        )
    try:
        with log.open("a") as fh:
            fh.write("ERROR payment failed for customer ACME-123456\n")
        wait_for(lambda: "ACME-123456" in samples(port), timeout=20)
        cfg.write_text(CONFIG.format(**fields, posts=20, severity="low", patterns="'ACME-\\d{6}'"))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "Reloaded the config" in err.read_text(), timeout=10)
        time.sleep(0.2)
        with log.open("a") as fh:
            fh.write("ERROR payment failed for customer ACME-654321\n")
        wait_for(lambda: samples(port).count("<secret:custom") >= 1, timeout=20)
        assert "ACME-654321" not in samples(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    (line,) = [json.loads(x) for x in err.read_text().splitlines() if "Reloaded the config" in x]
    assert line["restart_needed"] == ["http", "alerts"]
    assert line["level"] == "warning"
    assert "redact" in line["applied"]
