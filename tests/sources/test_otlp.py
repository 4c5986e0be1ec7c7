"""The otlp source: the real OpenTelemetry SDK exporter posting to watcher's HTTP app on loopback.

Protobuf (what the SDK exporter sends) and the spec's JSON mapping (posted with aiohttp), gzip,
the API token, partial success, bad data, and back-pressure (503 + Retry-After, honoured by the
exporter, with nothing lost or duplicated).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from tests.sources.contract import SourceContract, Tail, make_ctx, wait_for
from watcher.config import load_config
from watcher.configschema import SchemaError, build
from watcher.http.app import AppState, bound_port, make_app, start
from watcher.http.security import SecurityConfig
from watcher.metrics import Metrics
from watcher.parse.formats import parse_line
from watcher.sources.base import Source, SourceContext
from watcher.sources.intake import Intake
from watcher.sources.otlp.source import OtlpSource, OtlpSourceConfig
from watcher.wiring import build_pipeline

# the SDK's own LoggingHandler is deprecated in favour of a separate instrumentation package;
# it is still what sends records through the real exporter here
pytestmark = pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")

TOKEN = "otlp-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RESOURCE = {
    "service.name": "checkout",
    "service.version": "1.4.2",
    "deployment.environment": "production",
    "host.name": "node-7",
    "k8s.pod.name": "checkout-7d9f-abcde",
}


class Receiver:
    """An OtlpSource served by watcher's own HTTP app on a loopback port."""

    def __init__(self, source: OtlpSource, ctx: SourceContext, runner: web.AppRunner) -> None:
        self.source, self.ctx, self.runner = source, ctx, runner
        self.url = f"http://127.0.0.1:{bound_port(runner)}/v1/logs"


async def serve(ctx: SourceContext, token: str | None = TOKEN, **config: Any) -> Receiver:
    """Build the source with an Intake and start the HTTP app that routes /v1/logs to it."""
    ctx.intake = Intake()
    source = OtlpSourceConfig(name=config.pop("name", "otlp"), **config).build(ctx)
    security = SecurityConfig(token=token, ingest_paths=frozenset({"/v1/logs"}))
    app = make_app(AppState(Metrics()), security=security, intake=ctx.intake)
    runner = await start(app, "127.0.0.1:0")
    return Receiver(source, ctx, runner)


@pytest.fixture
async def receivers() -> AsyncIterator[list[Receiver]]:
    """Receivers a test starts; their HTTP servers are stopped after it."""
    started: list[Receiver] = []
    yield started
    for receiver in started:
        await receiver.runner.cleanup()


async def receiver_with(receivers: list[Receiver], **kw: Any) -> Receiver:
    ctx = kw.pop("ctx", None) or make_ctx(max_line_bytes=64 * 1024)
    receiver = await serve(ctx, **kw)
    receivers.append(receiver)
    return receiver


def request_of(bodies: list[bytes | str], resource: dict[str, str] | None = None) -> bytes:
    """A protobuf ExportLogsServiceRequest with one record per body (bytes -> bytes_value)."""
    request = ExportLogsServiceRequest()
    logs = request.resource_logs.add()
    for key, value in (resource or RESOURCE).items():
        attr = logs.resource.attributes.add()
        attr.key, attr.value.string_value = key, value
    records = logs.scope_logs.add().log_records
    for body in bodies:
        record = records.add()
        if isinstance(body, bytes):
            record.body.bytes_value = body
        else:
            record.body.string_value = body
    return request.SerializeToString()


async def post(url: str, data: bytes, content_type: str = "application/x-protobuf", **headers: str):
    """POST to the receiver; (status, headers, body)."""
    async with aiohttp.ClientSession() as session:
        all_headers = {"Content-Type": content_type, **AUTH, **headers}
        async with session.post(url, data=data, headers=all_headers) as response:
            return response.status, response.headers, await response.read()


def sdk_logger(url: str, name: str, **exporter: Any) -> tuple[logging.Logger, LoggerProvider]:
    """A stdlib logger whose records go through the real SDK and OTLP/HTTP exporter."""
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    exp = OTLPLogExporter(endpoint=url, headers=AUTH, timeout=10, **exporter)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exp))
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers = [LoggingHandler(level=logging.INFO, logger_provider=provider)]
    logger.setLevel(logging.INFO)
    return logger, provider


def charge(amount: int) -> None:
    """A function the test's exception is raised in, so its frame can be found."""
    if amount < 0:
        raise ValueError(f"negative amount {amount}")


def log_failures(logger: logging.Logger) -> None:
    """What an application does: a warning, then an exception with its traceback."""
    logger.warning("card declined for order 42")
    try:
        charge(-5)
    except ValueError:
        logger.exception("payment failed")


class TestOtlpContract(SourceContract):
    """The source contract, with lines pushed over HTTP as protobuf bytes_value bodies."""

    name: ClassVar[str] = "otlp"

    @pytest.fixture(autouse=True)
    def _started(self, receivers: list[Receiver]) -> None:
        self.started = receivers

    async def build(
        self, ctx: SourceContext, lines: list[bytes], tmp_path: Path, *, follow: bool
    ) -> Source:
        receiver = await receiver_with(self.started, ctx=ctx)
        if lines:
            status, _, _ = await post(receiver.url, request_of(list(lines)))
            assert status == 200
        return receiver.source


async def test_sdk_exporter_protobuf_with_exception(receivers: list[Receiver]) -> None:
    """The SDK exporter's records arrive with resource fields and levels, and an exception
    becomes one event whose type, message and frames come from the trace rules."""
    receiver = await receiver_with(receivers)
    tail = Tail(receiver.source, receiver.ctx)
    logger, provider = sdk_logger(receiver.url, "test.otlp.proto")
    await asyncio.to_thread(log_failures, logger)
    await asyncio.to_thread(provider.shutdown)
    await tail.wait(2)
    await tail.stop()
    warning, failure = (parse_line(line) for line in tail.lines)
    assert warning.message == "card declined for order 42"
    assert warning.level == "warning"
    for key, value in RESOURCE.items():
        assert warning.fields[key] == value
    assert failure.level == "error"
    assert failure.exception_type == "ValueError"
    assert failure.exception_message == "negative amount -5"
    assert [f.function for f in failure.frames][-1] == "charge"
    assert failure.fields["k8s.pod.name"] == "checkout-7d9f-abcde"
    assert {line.stream for line in tail.lines} == {"otlp/checkout/checkout-7d9f-abcde"}


async def test_sdk_exporter_gzip(receivers: list[Receiver]) -> None:
    """A gzip-compressed export from the SDK is inflated and read like an uncompressed one."""
    receiver = await receiver_with(receivers)
    tail = Tail(receiver.source, receiver.ctx)
    logger, provider = sdk_logger(receiver.url, "test.otlp.gzip", compression=Compression.Gzip)
    await asyncio.to_thread(logger.error, "upstream timed out after 30s")
    await asyncio.to_thread(provider.shutdown)
    assert await tail.wait(1) == ["upstream timed out after 30s"]
    await tail.stop()
    assert not receiver.ctx.intake.serves("/v1/logs")  # stopped: the path answers 503 again


def json_request(trace_id: str) -> dict[str, Any]:
    """The spec's JSON mapping: lowerCamelCase keys, integer enums, hex trace ids."""
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "billing"}},
                        {"key": "host.name", "value": {"stringValue": "vm-3"}},
                    ]
                },
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "traceId": trace_id,
                                "spanId": "00f067aa0ba902b7",
                                "body": {"stringValue": "invoice failed"},
                                "attributes": [
                                    {"key": "exception.type", "value": {"stringValue": "KeyError"}},
                                    {
                                        "key": "exception.stacktrace",
                                        "value": {
                                            "stringValue": "Traceback (most recent call last):\n"
                                            '  File "/app/billing.py", line 12, in total\n'
                                            "    return prices[sku]\n"
                                            "KeyError: 'sku-9'"
                                        },
                                    },
                                    {"key": "futureField", "value": {"intValue": "3"}},
                                ],
                                "someFutureKey": {"x": 1},
                            }
                        ]
                    }
                ],
            }
        ]
    }


async def test_json_encoding_gzip(receivers: list[Receiver]) -> None:
    """OTLP JSON (hex trace ids, unknown fields ignored), gzip-compressed, is accepted and
    answered in JSON; its exception is parsed from the stacktrace."""
    receiver = await receiver_with(receivers)
    trace_id = "5B8EFFF798038103D269B633813FC60C"
    data = gzip.compress(json_format.json.dumps(json_request(trace_id)).encode())
    status, headers, body = await post(
        receiver.url, data, "application/json", **{"Content-Encoding": "gzip"}
    )
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json_format.json.loads(body) == {}  # full success: partial_success left unset
    (line,) = [line async for batch in receiver.source.window(None, None) for line in batch]
    event = parse_line(line)
    assert event.exception_type == "KeyError"
    assert [(f.file, f.line, f.function) for f in event.frames] == [
        ("/app/billing.py", 12, "total")
    ]
    assert event.level == "error" and event.timestamp == 1_700_000_000.0
    assert event.fields["trace_id"] == trace_id.lower()
    assert event.fields["service.name"] == "billing"


async def test_partial_success_for_empty_records(receivers: list[Receiver]) -> None:
    """A record with nothing to read is rejected and counted in partial_success; the rest of
    the request is accepted (200, so the client does not retry it)."""
    receiver = await receiver_with(receivers)
    status, _, body = await post(receiver.url, request_of(["db down", "  "]))
    assert status == 200
    reply = ExportLogsServiceResponse.FromString(body)
    assert reply.partial_success.rejected_log_records == 1
    assert "no body" in reply.partial_success.error_message
    got = [line.text async for batch in receiver.source.window(None, None) for line in batch]
    assert got == ["db down"]


async def test_bad_data_and_oversized_bodies(receivers: list[Receiver]) -> None:
    """Undecodable bodies get 400, unknown types 415 and gzip bombs 413, each with a Status."""
    receiver = await receiver_with(receivers, max_body_bytes=64 * 1024)
    status, _, body = await post(receiver.url, b"\xff\xff\xff\xff not protobuf")
    assert status == 400 and Status.FromString(body).message
    status, _, _ = await post(receiver.url, b"x", "text/plain")
    assert status == 415
    bomb = gzip.compress(request_of(["a" * 200_000]))
    assert len(bomb) < 64 * 1024
    status, _, body = await post(receiver.url, bomb, **{"Content-Encoding": "gzip"})
    assert status == 413 and "bytes" in Status.FromString(body).message
    assert receiver.source.pending == 0


async def test_token_required(receivers: list[Receiver]) -> None:
    """Without the API token the intake is refused: 401 for a missing or wrong token, 403
    when the daemon has no token configured at all."""
    receiver = await receiver_with(receivers)
    async with aiohttp.ClientSession() as session:
        headers = {"Content-Type": "application/x-protobuf"}
        async with session.post(receiver.url, data=request_of(["x"]), headers=headers) as r:
            assert r.status == 401
        headers["Authorization"] = "Bearer wrong"
        async with session.post(receiver.url, data=request_of(["x"]), headers=headers) as r:
            assert r.status == 401
    open_receiver = await receiver_with(receivers, token=None)
    status, _, _ = await post(open_receiver.url, request_of(["x"]))
    assert status == 403
    assert receiver.source.pending == 0 and open_receiver.source.pending == 0


async def test_full_pipeline_answers_503_and_exporter_retries(receivers: list[Receiver]) -> None:
    """With the queue full, a request is refused whole with 503 and Retry-After; the SDK
    exporter waits and re-sends, and every record arrives exactly once."""
    receiver = await receiver_with(receivers, max_pending_lines=2, retry_after=1)
    status, headers, _ = await post(receiver.url, request_of(["one", "two"]))
    assert status == 200
    status, headers, body = await post(receiver.url, request_of(["three"]))
    assert status == 503 and headers["Retry-After"] == "1"
    assert "full" in Status.FromString(body).message
    logger, provider = sdk_logger(receiver.url, "test.otlp.backpressure")
    export = asyncio.create_task(asyncio.to_thread(logger.error, "three"))
    await wait_for(lambda: receiver.source.refused >= 2)  # the exporter was refused too
    tail = Tail(receiver.source, receiver.ctx)  # the pipeline starts reading: room again
    assert await tail.wait(3) == ["one", "two", "three"]
    await export
    await asyncio.to_thread(provider.shutdown)
    await tail.stop()
    assert tail.texts() == ["one", "two", "three"]


async def test_not_running_path_answers_503() -> None:
    """Before the source is built (or after it stopped) its path answers 503 + Retry-After."""
    intake = Intake()
    security = SecurityConfig(token=TOKEN, ingest_paths=frozenset({"/v1/logs"}))
    runner = await start(
        make_app(AppState(Metrics()), security=security, intake=intake), "127.0.0.1:0"
    )
    try:
        url = f"http://127.0.0.1:{bound_port(runner)}/v1/logs"
        status, headers, _ = await post(url, request_of(["x"]))
        assert status == 503 and "Retry-After" in headers
    finally:
        await runner.cleanup()


def test_two_otlp_sources_on_one_path_is_a_config_error(tmp_path: Path) -> None:
    """Two otlp sources on the same path are refused at load, naming the second one's key."""
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        '[[sources]]\ntype = "otlp"\nname = "a"\n[[sources]]\ntype = "otlp"\nname = "b"\n'
    )
    with pytest.raises(Exception, match=r"sources\[1\]\.path.*already served by sources\[0\]"):
        load_config(cfg, {})


def test_config_rejects_reserved_paths() -> None:
    """A path that would shadow watcher's own routes is a config error naming the key."""
    with pytest.raises(SchemaError, match="path"):
        build(OtlpSourceConfig, {"type": "otlp", "name": "o", "path": "/error-monitor/x"})
    assert build(OtlpSourceConfig, {"type": "otlp", "name": "o"}).path == "/v1/logs"


async def test_body_holding_a_printed_trace_is_assembled(receivers: list[Receiver]) -> None:
    """A body that is a whole printed traceback (no exception attributes) is split into lines
    that the real pipeline assembles into one event with the trace's type and frame."""
    receiver = await receiver_with(receivers)
    body = (
        "Traceback (most recent call last):\n"
        '  File "/app/worker.py", line 40, in handle\n'
        "    conn.execute(query)\n"
        "ConnectionError: database is unreachable\n"
    )
    status, _, _ = await post(receiver.url, request_of([body]))
    assert status == 200
    lines = [line async for batch in receiver.source.window(None, None) for line in batch]
    assert len(lines) == 4  # the trailing newline makes no empty line
    pipeline = build_pipeline(load_config(None, {}), Metrics())
    updates = pipeline.feed(lines) + pipeline.flush(force=True)
    (update,) = updates
    assert update.event.exception_type == "ConnectionError"
    assert update.event.frames[-1].function == "handle"
