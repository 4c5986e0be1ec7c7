"""`watcher run` with an otlp source: the real OTel SDK exporter posts to the daemon's [http]
listener, and the exceptions it logs become one pattern with the exception's type and frame."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from tests.helpers import clean_env, free_port, wait_for

TOKEN = "daemon-otlp-token"


def settle_invoice(amount: int) -> None:
    """Where the test's exception is raised (its frame is what the pattern points at)."""
    raise ValueError(f"invoice total {amount} is negative")


def patterns(port: int) -> list[dict[str, object]]:
    """The daemon's patterns, as the API lists them."""
    url = f"http://127.0.0.1:{port}/error-monitor/errors/patterns?hours=1"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        body = json.loads(response.read())
    return body["patterns"] if isinstance(body, dict) else body


@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")
def test_daemon_groups_exceptions_sent_by_the_sdk_exporter(tmp_path: Path) -> None:
    """Three ValueErrors with different amounts, exported over OTLP/HTTP with the API token,
    are one pattern of count 3 whose type and function come from the stacktrace attribute."""
    port = free_port()
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\ninterval = 1\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        '[[sources]]\ntype = "otlp"\nname = "otel"\n'
    )
    env = {**clean_env(), "WATCHER_API_TOKEN": TOKEN}
    log = (tmp_path / "daemon.log").open("wb")
    argv = [sys.executable, "-m", "watcher", "run", "-c", str(cfg)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        wait_for(lambda: b'"Watching."' in (tmp_path / "daemon.log").read_bytes(), timeout=20)
        provider = LoggerProvider(resource=Resource.create({"service.name": "billing"}))
        exporter = OTLPLogExporter(
            endpoint=f"http://127.0.0.1:{port}/v1/logs",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        logger = logging.getLogger("test.otlp.daemon")
        logger.propagate = False
        logger.handlers = [LoggingHandler(logger_provider=provider)]
        for amount in (-1, -20, -300):
            try:
                settle_invoice(amount)
            except ValueError:
                logger.exception("settlement failed")
        provider.shutdown()

        def grouped() -> dict[str, object] | None:
            found = [p for p in patterns(port) if p.get("error_type") == "ValueError"]
            return found[0] if found and found[0].get("count") == 3 else None

        wait_for(grouped, timeout=20)
        pattern = grouped()
        assert pattern is not None
        assert pattern["function"] == "settle_invoice"
        assert pattern["sources"] == {"otel": 3}
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
