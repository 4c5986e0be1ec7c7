"""`watcher run` on a cloudwatch source (moto), SIGKILLed mid-stream and restarted: every error
event is counted exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fakes.moto import REGION, moto_endpoint  # noqa: F401 (the fixture)
from tests.helpers import clean_env, stored_groups, stored_total, wait_for

# Several log streams (one per Lambda container) is the usual case: the pipeline must then hold
# back the counts of events whose cursors wait behind another stream's open record.


def write_config(tmp_path: Path, endpoint: str, group: str) -> Path:
    """A daemon config: the cloudwatch source on moto, no HTTP, state in tmp_path."""
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\ninterval = 1\n'
        "[http]\nenabled = false\n"
        "[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "cloudwatch"\nname = "lambda"\nlog_groups = ["{group}"]\n'
        f'region = "{REGION}"\nendpoint_url = "{endpoint}"\n'
        'interval = "200ms"\nlatency = 0\nmax_backoff = 0.5\n'
    )
    return cfg


class Feeder:
    """Writes Lambda invocations to CloudWatch: START, one error event of one of three kinds
    (a logged error, an unhandled Python traceback, a Node Invoke Error), END, REPORT."""

    def __init__(self, logs: Any, group: str, streams: int) -> None:
        self.logs = logs
        self.group = group
        self.stream_count = streams
        self.errors = 0
        self.streams: set[str] = set()

    def invocation(self, n: int) -> list[str]:
        """The events of one invocation; exactly one of them is an error."""
        rid = str(uuid.UUID(int=n))
        kind = n % 3
        if kind == 0:
            error = f"[ERROR]\t2026-01-01T00:00:00.000Z\t{rid}\tPayment declined for order {n}\n"
        elif kind == 1:
            error = (
                f"[ERROR] KeyError: 'k{n}'\nTraceback (most recent call last):\n"
                '  File "/var/task/app.py", line 3, in handler\n    return event["k"]\n'
            )
        else:
            error = (
                f"2026-01-01T00:00:00.000Z\t{rid}\tERROR\tInvoke Error \t"
                f'{{"errorType":"TypeError","errorMessage":"x{n} is undefined",'
                f'"stack":["TypeError: x{n} is undefined",'
                '"    at Runtime.handler (file:///var/task/index.mjs:3:25)"]}\n'
            )
        return [
            f"START RequestId: {rid} Version: $LATEST\n",
            error,
            f"END RequestId: {rid}\n",
            f"REPORT RequestId: {rid}\tDuration: 2.00 ms\tBilled Duration: 2 ms\t"
            "Memory Size: 128 MB\tMax Memory Used: 40 MB\t\n",
        ]

    def feed(self, count: int) -> None:
        """Write `count` invocations, spread over the log streams (one call per stream)."""
        by_stream: dict[str, list[dict[str, Any]]] = {}
        for _ in range(count):
            n = self.errors
            stream = f"2026/01/01/[$LATEST]{n % self.stream_count:032x}"
            ts = int(time.time() * 1000)
            events = by_stream.setdefault(stream, [])
            events.extend({"timestamp": ts, "message": m} for m in self.invocation(n))
            self.errors += 1
        for stream, events in by_stream.items():
            if stream not in self.streams:
                self.logs.create_log_stream(logGroupName=self.group, logStreamName=stream)
                self.streams.add(stream)
            self.logs.put_log_events(
                logGroupName=self.group, logStreamName=stream, logEvents=events
            )


@pytest.mark.parametrize("streams", [1, 3])
def test_sigkill_mid_stream_then_restart_counts_each_error_once(
    tmp_path: Path,
    moto_endpoint: str,  # noqa: F811
    streams: int,
) -> None:
    """Kill -9 mid-stream, write while down, restart: the group total equals the errors
    written, although the restart re-reads the overlap behind its checkpoint."""
    logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name=REGION)
    group = f"/aws/lambda/daemon-{uuid.uuid4().hex[:10]}"
    logs.create_log_group(logGroupName=group)
    env = clean_env()
    db = tmp_path / "state.db"
    log = tmp_path / "daemon.log"
    cfg = write_config(tmp_path, moto_endpoint, group)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "-c", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),  # a file: a full pipe would stall the daemon
            env=env,
        )

    feeder = Feeder(logs, group, streams)
    proc = start()
    try:
        feeder.feed(30)
        # a checkpoint was committed for part of the stream (persisted every ~5 s) …
        wait_for(lambda: stored_total(db) >= 10, timeout=15)
        # … and more is in flight when the daemon dies without any chance to flush
        feeder.feed(15)
        time.sleep(0.3)  # about one poll: let the daemon read some of it
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = stored_total(db)
        feeder.feed(15)  # while nothing is watching
        proc = start()
        feeder.feed(15)
        wait_for(lambda: stored_total(db) >= feeder.errors, timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert 0 < killed_at < 75  # the kill really was mid-stream
    assert stored_total(db) == feeder.errors == 75, log.read_text()[-2000:]
    assert stored_groups(db) == 3
