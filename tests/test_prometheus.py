"""A real Prometheus server scrapes `watcher run`'s /metrics (Debian's prometheus package)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from .helpers import DATA, clean_env, free_port, need, start_prometheus, wait_for
from .helpers import prom_query as query


def test_prometheus_scrapes_watcher(tmp_path: Path) -> None:
    """Prometheus scrapes the daemon and sees lines and errors by category."""
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
        "global:\n  scrape_interval: 1s\n"
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
    try:
        wait_for(lambda: query(p_port, 'up{job="watcher"} == 1'), timeout=30, step=0.3)
        log.write_text((DATA / "mixed.log").read_text())
        result = wait_for(
            lambda: query(p_port, 'sum(watcher_errors_total{job="watcher"}) >= 7'),
            timeout=30,
            step=0.3,
        )
        assert float(result[0]["value"][1]) == 7  # type: ignore[index]
        lines = query(p_port, 'watcher_lines_total{source="app"}')
        assert float(lines[0]["value"][1]) == 28
        cats = {r["metric"]["category"] for r in query(p_port, "watcher_errors_total")}
        assert {"timeout_error", "cache_error", "external_service_error"} <= cats
    finally:
        daemon.send_signal(signal.SIGTERM)
        prom.terminate()
        assert daemon.wait(15) == 0
        prom.wait(15)
