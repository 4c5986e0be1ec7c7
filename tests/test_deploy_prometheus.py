"""deploy/prometheus: the rules pass promtool, and a real Prometheus computes them from watcher."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from .helpers import DATA, clean_env, free_port, need, start_prometheus, wait_for
from .helpers import prom_query as query
from .test_deploy_grafana import exported_names, metric_names

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "watcher.rules.yml"
ALERTS = {
    "WatcherErrorRateHigh",
    "WatcherNewCriticalPattern",
    "WatcherSourceDown",
    "WatcherSharedSourceUnread",
    "WatcherDown",
    "WatcherFixPipelineFailing",
    "WatcherLLMBudgetExhausted",
    "WatcherDroppingLines",
    "WatcherCriticalErrorBurst",
    "WatcherAlertDeliveryFailing",
    "WatcherAlertsDigested",
}


def rules() -> list[dict]:  # type: ignore[type-arg]
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def test_rules_pass_promtool_check() -> None:
    """`promtool check rules` accepts the file (syntax, PromQL, duplicate rules)."""
    done = subprocess.run(
        [need("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_pass_their_promtool_unit_tests() -> None:
    """`promtool test rules` runs watcher.rules.test.yml: every alert fires when it should."""
    done = subprocess.run(
        [need("promtool"), "test", "rules", "watcher.rules.test.yml"],
        capture_output=True,
        text=True,
        cwd=RULES_DIR,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_unit_tests_cover_every_alert() -> None:
    """Each alert of the rules file has at least one promtool test case that expects it to fire."""
    tests = yaml.safe_load((RULES_DIR / "watcher.rules.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {r["alert"] for r in rules() if "alert" in r} == ALERTS == fired


def test_rules_use_only_exported_metrics() -> None:
    """Rules select watcher's exported metrics, Prometheus' `up`, or series recorded here."""
    recorded = {r["record"] for r in rules() if "record" in r}
    known = exported_names() | recorded | {"up"}
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names, rule["expr"]
        assert names <= known, f"{sorted(names - known)} unknown in {rule['expr']}"


def test_alerts_carry_severity_and_explanations() -> None:
    """Every alert has a severity label and a summary and description for the receiver."""
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def rule_health(port: int) -> dict[str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=2) as r:
            groups = json.load(r)["data"]["groups"]
    except OSError:
        return {}
    return {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}


def test_prometheus_computes_error_rates_and_rules_from_a_running_watcher(
    tmp_path: Path,
) -> None:
    """A real Prometheus scraping the daemon returns rate(watcher_errors_total[1m]) per category,
    evaluates every rule of watcher.rules.yml without error and records job:watcher_errors."""
    prometheus = need("prometheus")
    w_port, p_port = free_port(), free_port()
    log = tmp_path / "app.log"
    log.write_text("")
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\n'
        f'[http]\nlisten = "127.0.0.1:{w_port}"\n'
        f"[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{log}"\npoll_interval = 0.05\n'
    )
    prom_cfg = tmp_path / "prometheus.yml"
    prom_cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n  - job_name: watcher\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{w_port}']\n"
    )
    env = clean_env()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "-c", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    prom = start_prometheus(prometheus, prom_cfg, tmp_path, p_port)
    errors = (DATA / "mixed.log").read_text()
    try:
        wait_for(lambda: query(p_port, 'up{job="watcher"} == 1'), timeout=30, step=0.3)
        with log.open("a") as fh:
            fh.write(errors)
        # a counter's first sample has no predecessor: rate() needs the count to grow after
        # Prometheus has seen the series once, so the errors come in two rounds
        wait_for(lambda: query(p_port, "watcher_errors_total"), timeout=30, step=0.3)
        with log.open("a") as fh:
            fh.write(errors)
        rates = wait_for(
            lambda: query(p_port, 'rate(watcher_errors_total{job="watcher"}[1m]) > 0'),
            timeout=30,
            step=0.3,
        )
        categories = {r["metric"]["category"] for r in rates}  # type: ignore[attr-defined]
        assert {"timeout_error", "cache_error", "external_service_error"} <= categories
        recorded = wait_for(
            lambda: query(p_port, 'job:watcher_errors:rate5m{job="watcher"} > 0'),
            timeout=30,
            step=0.3,
        )
        assert recorded[0]["metric"]["instance"] == f"127.0.0.1:{w_port}"  # type: ignore[index]
        # "unknown" until a rule's first evaluation; "err" if its query fails on real data
        health = wait_for(
            lambda: (h := rule_health(p_port)) and "unknown" not in h.values() and h,
            timeout=30,
            step=0.3,
        )
        assert set(health.values()) == {"ok"}, health  # type: ignore[union-attr]
        names = {r.get("alert") or r.get("record") for r in rules()}
        assert set(health) == names  # type: ignore[arg-type]
    finally:
        daemon.send_signal(signal.SIGTERM)
        prom.terminate()
        assert daemon.wait(15) == 0
        prom.wait(15)


AM_EXAMPLE = RULES_DIR / "alertmanager.yml"


def test_alertmanager_example_passes_amtool() -> None:
    """`amtool check-config` accepts deploy/prometheus/alertmanager.yml."""
    done = subprocess.run(
        [need("amtool"), "check-config", str(AM_EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def routes(*labels: str) -> str:
    """The receivers amtool routes an alert with `labels` to under the example config."""
    done = subprocess.run(
        [need("amtool"), "config", "routes", "test", f"--config.file={AM_EXAMPLE}", *labels],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_alertmanager_example_routes_watchers_alerts() -> None:
    """With the example routing, a critical pattern watcher pushes pages and shows in chat, a
    high one goes to chat only, and watcher not reading its logs pages."""
    pattern = ["alertname=WatcherPattern", "category=database_error", "service=api"]
    assert routes(*pattern, "severity=critical") == "pager,chat"
    assert routes(*pattern, "severity=high") == "chat"
    assert routes("alertname=WatcherSourceDown", "severity=warning") == "pager"
