"""Railway, Loki and CloudWatch at once: `watcher run` follows all three and `watcher scan`
reports from all three (the fakes and moto on 127.0.0.1)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3

from tests.fakes.loki import serve_in_thread
from tests.fakes.moto import REGION, moto_endpoint  # noqa: F401 (the fixture)
from tests.fakes.railway import FakeRailway

from .helpers import clean_env, free_port, wait_for


def metric(port: int, name: str, source: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    prefix = f'{name}{{source="{source}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_run_and_scan_over_all_three_production_sources(
    tmp_path: Path,
    moto_endpoint: str,  # noqa: F811
) -> None:
    """One config with railway, loki and cloudwatch sources: the daemon counts each one's lines
    and errors; a scan of the last hour reports groups from each of the three."""
    railway = FakeRailway(tmp_path / "railway", start_ns=time.time_ns())
    railway.add_many(
        [f"Payment failed for order {i}: card declined" for i in range(3)], level="error"
    )
    logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name=REGION)
    group = f"/aws/lambda/all-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[
            {"timestamp": now + i, "message": f"[ERROR] Task timed out after {i + 3}.00 seconds"}
            for i in range(3)
        ],
    )
    port = free_port()
    with serve_in_thread() as loki:
        for i in range(3):
            loki.push({"app": "api"}, f'level=error msg="redis unavailable on cache-{i}"')
        cfg = tmp_path / "watcher.toml"
        cfg.write_text(
            f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\ninterval = 1\n'
            f'[http]\nlisten = "127.0.0.1:{port}"\n[parse]\nmultiline_timeout = 0.2\n'
            f'[[sources]]\ntype = "railway"\nname = "api"\nservice = "api"\n'
            f'binary = "{railway.binary}"\n'
            f'[[sources]]\ntype = "loki"\nname = "loki"\nurl = "{loki.url}"\n'
            'query = \'{app="api"}\'\nlookback = "1h"\n'
            f'[[sources]]\ntype = "cloudwatch"\nname = "cw"\nlog_groups = ["{group}"]\n'
            f'region = "{REGION}"\nendpoint_url = "{moto_endpoint}"\n'
            'interval = "200ms"\nlatency = 0\nlookback = "1h"\n'
        )
        env = clean_env()
        daemon = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "-c", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            for source in ("api", "loki", "cw"):
                wait_for(lambda s=source: _lines(port, s) >= 3, timeout=30, step=0.2)
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(20) == 0
        scan = subprocess.run(
            [
                sys.executable,
                "-m",
                "watcher",
                "scan",
                "-c",
                str(cfg),
                "--since",
                "1h",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert scan.returncode == 0, scan.stderr[-2000:]
    report = scan.stdout
    assert "card declined" in report and "redis unavailable" in report
    assert "Task timed out" in report
    for source in ("api", "loki", "cw"):
        assert f"| {source} |" in report  # the accounting counts each source's lines


def _lines(port: int, source: str) -> float:
    try:
        return metric(port, "watcher_lines_total", source)
    except OSError:
        return 0.0
