"""A pattern's life on a real daemon, through its API and the `watcher groups` CLI.

One daemon (`watcher run` as a child process, a file source, the API on a loopback port) is
driven the way an on-call engineer would: resolve from the CLI, see the pattern regress when the
error comes back, ignore for N events, merge two patterns and see later events follow, then
restart and find the windows, states and merges as they were.
"""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import clean_env, free_port, wait_for
from tests.watcher_proc import WatcherProcess

TOKEN = "test-token-123"


def line(message: str, **fields: Any) -> str:
    """A JSON error line stamped now (a "logger" key: a bare {timestamp, level, message} line
    reads as a Railway wrapper, whose inner message carries no level of its own)."""
    stamp = datetime.now(UTC).isoformat()
    record = {"timestamp": stamp, "level": "error", "logger": "app", "message": message}
    return json.dumps({**record, **fields}) + "\n"


PAY = "payment failed for order {n}"
CACHE = "cache node {n} unreachable after 3 tries"


class Hook(http.server.ThreadingHTTPServer):
    """A webhook receiver on loopback that keeps the "kind" of every JSON alert posted to it."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.kinds.append(json.loads(body).get("kind", ""))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"


class Rig:
    """The daemon, its log file, and helpers to write errors and ask the API and the CLI."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.hook = Hook()
        self.log = tmp_path / "app.log"
        self.log.write_text("")
        self.port = free_port()
        self.cfg = tmp_path / "watcher.toml"
        self.cfg.write_text(
            f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\ninterval = 1\n'
            "persist_interval = 0.3\n"
            f'[http]\nlisten = "127.0.0.1:{self.port}"\n'
            "[parse]\nmultiline_timeout = 0.2\n"
            f'[[sources]]\ntype = "file"\nname = "app"\npath = "{self.log}"\n'
            'read_from = "beginning"\npoll_interval = 0.05\n'
            '[alerts]\nbatch_window = "0s"\nmin_severity = "info"\n'
            f'[[alerts.destinations]]\ntype = "webhook"\nurl = "{self.hook.url}"\n'
            'format = "json"\nkinds = ["regressed", "resolved"]\ncooldown = "0s"\n'
        )
        self.proc = WatcherProcess(self.cfg, tmp_path / "daemon.log")
        self.proc.env["WATCHER_API_TOKEN"] = TOKEN
        self.n = 0

    def start(self) -> None:
        """Start the daemon and wait until it is ready (its groups restored from the store)."""
        self.proc.start()
        self.proc.wait_started()

        def ready() -> bool:
            try:
                return bool(self.api("/health/ready")["ready"])
            except OSError:  # 503 (HTTPError) while starting, or not listening yet
                return False

        wait_for(ready, timeout=20)

    def write(self, template: str, times: int = 1, **fields: Any) -> None:
        with self.log.open("a") as fh:
            for _ in range(times):
                self.n += 1
                fh.write(line(template.format(n=self.n), **fields))

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def patterns(self) -> dict[str, dict[str, Any]]:
        found = self.api("/error-monitor/errors/patterns?limit=100")["patterns"]
        return {p["template"]: p for p in found}

    def pattern(self, template: str, count: int | None = None) -> dict[str, Any]:
        """The pattern with this template once it exists (and has `count` events)."""

        def ready() -> dict[str, Any] | None:
            found = self.patterns().get(template)
            return found if found and (count is None or found["count"] == count) else None

        return wait_for(ready, timeout=15)  # type: ignore[return-value]

    def cli(self, *args: str, token: bool = True) -> subprocess.CompletedProcess[str]:
        env = clean_env()
        if token:
            env["WATCHER_API_TOKEN"] = TOKEN
        argv = [sys.executable, "-m", "watcher", "groups", *args, "-c", str(self.cfg)]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(tmp_path)
    rig.start()
    try:
        yield rig
    finally:
        rig.proc.close()
        rig.hook.shutdown()


PAY_T = "payment failed for order <*>"
CACHE_T = "cache node <*> unreachable after <*> tries"


def test_resolve_regress_ignore_merge_and_restart_on_a_real_daemon(rig: Rig) -> None:
    """Resolve by CLI (through the daemon's API) -> a new event regresses the pattern (state,
    raised severity, activity); ignore for 2 events -> open again after them; a merge makes
    later events of the merged pattern count in the survivor; after a restart the states, the
    merge, the sliding windows and the rate chart are as they were. A change while the daemon
    runs needs its API (no token: exit 2, nothing changed); with the daemon stopped the CLI
    changes the state file, and the next daemon starts with the change."""
    rig.write(PAY, 2, host="web-1", release="v1.2.3")
    rig.write(CACHE, 2, pod="api-7f9")
    pay = rig.pattern(PAY_T, 2)
    cache = rig.pattern(CACHE_T, 2)
    assert pay["tags"] == {"host": {"web-1": 2}, "release": {"v1.2.3": 2}}

    done = rig.cli("resolve", pay["id"], "--actor", "ann")
    assert done.returncode == 0, done.stderr
    assert rig.patterns()[PAY_T]["state"] == "resolved"

    rig.write(PAY)
    regressed = wait_for(lambda: rig.patterns()[PAY_T]["state"] == "regressed" and rig.patterns())
    wait_for(lambda: "regressed" in rig.hook.kinds)  # the regression is an alert of its kind
    assert _rank(regressed[PAY_T]["severity"]) > _rank(pay["severity"])  # type: ignore[index]
    listed = rig.api(f"/error-monitor/activity?group_id={pay['id']}")["activity"]
    actions = [(a["action"], a["actor"]) for a in listed]
    assert actions[:2] == [("regressed", "watcher"), ("resolved", "cli:ann")]

    rig.api(f"/error-monitor/errors/patterns/{cache['id']}/ignore?count=2&actor=bob", "POST")
    rig.write(CACHE)
    assert rig.pattern(CACHE_T, 3)["state"] == "ignored"
    rig.write(CACHE)
    assert rig.pattern(CACHE_T, 4)["state"] == "open"

    rig.api(f"/error-monitor/errors/patterns/{pay['id']}/merge?ids={cache['id']}", "POST")
    rig.pattern(PAY_T, 3 + 4)
    rig.write(CACHE)  # the merged pattern's events now count in the survivor
    rig.pattern(PAY_T, 8)
    assert CACHE_T not in rig.patterns()
    # a link to the merged-away pattern (an old alert) opens the one it was merged into
    assert rig.api(f"/error-monitor/errors/patterns/{cache['id']}")["pattern"]["id"] == pay["id"]

    assert rig.proc.stop() == 0
    rig.start()
    after = rig.pattern(PAY_T, 8)
    assert after["state"] == "regressed"
    assert after["window_counts"]["1h"] == 8  # windows survive the restart
    rates = rig.api("/error-monitor/rates?window=1h")["series"]  # and so does the rate chart
    assert sum(sum(counts) for counts in rates.values()) == 8
    rig.write(CACHE)
    rig.pattern(PAY_T, 9)  # the merge sticks across the restart
    assert CACHE_T not in rig.patterns()

    refused = rig.cli("resolve", pay["id"], token=False)  # a daemon runs: only its API may
    assert refused.returncode == 2
    assert "WATCHER_API_TOKEN" in refused.stderr
    assert rig.patterns()[PAY_T]["state"] == "regressed"

    # no daemon: the change goes into the state file, and the next daemon starts with it
    assert rig.proc.stop() == 0
    done = rig.cli("resolve", pay["id"], "--actor", "carol", token=False)
    assert done.returncode == 0, done.stderr
    shown = json.loads(rig.cli("show", pay["id"], "--json", token=False).stdout)
    assert shown["state"] == "resolved"
    assert (shown["activity"][0]["action"], shown["activity"][0]["actor"]) == (
        "resolved",
        "cli:carol",
    )
    owned = {f["fingerprint"] for f in shown["fingerprints"]}
    assert owned == {pay["id"], cache["id"]}
    rig.start()
    assert rig.pattern(PAY_T, 9)["state"] == "resolved"


def _rank(severity: str) -> int:
    return ["info", "low", "medium", "high", "critical"].index(severity)


WORDS = ("alpha", "bravo", "charlie", "delta", "echo")
WORDS += ("foxtrot", "golf", "hotel", "india", "juliet")


def test_sighup_reclassifies_live_and_stored_patterns(tmp_path: Path) -> None:
    """A rule added to the config and applied by SIGHUP changes the category, severity and
    fixable flag of the patterns that already exist — a live one, and one only in the store
    (evicted by ten newer ones: max_groups = 10) — and each change is in the activity list."""
    rig = Rig(tmp_path)
    grouping = "[grouping]\nmax_groups = 10\n[parse]"
    rig.cfg.write_text(rig.cfg.read_text().replace("[parse]", grouping))
    rig.start()
    try:
        rig.write(PAY, 2)
        for word in WORDS:
            rig.write(word + " subsystem crashed with code {n}")
        alpha = "alpha subsystem crashed with code <*>"
        wait_for(lambda: {PAY_T, alpha} <= set(rig.patterns()), timeout=15)
        before = rig.patterns()
        assert before[PAY_T]["category"] != "external_service_error"
        rule = '[[classify.rules]]\nmatch = "(?i)payment|alpha"\n'
        rule += 'category = "external_service_error"\nseverity = "critical"\nfixable = true\n'
        rig.cfg.write_text(rig.cfg.read_text() + rule)
        assert rig.proc.proc is not None
        rig.proc.proc.send_signal(signal.SIGHUP)

        def reclassified() -> bool:
            found = rig.patterns()
            # .get: an evicted pattern shows once the API's store cache refreshes (5 s)
            cats = [found.get(t, {}).get("category") for t in (PAY_T, alpha)]
            return cats == ["external_service_error"] * 2

        wait_for(reclassified, timeout=15)
        after = rig.patterns()
        assert {after[t]["severity"] for t in (PAY_T, alpha)} == {"critical"}
        bravo = after["bravo subsystem crashed with code <*>"]
        assert bravo["category"] != "external_service_error"
        listed = rig.api("/error-monitor/activity")["activity"]
        changed = {a["group_id"] for a in listed if a["action"] == "reclassified"}
        assert changed == {before[PAY_T]["id"], before[alpha]["id"]}
    finally:
        rig.proc.close()
        rig.hook.shutdown()
