"""OTLP receiver throughput: protobuf requests posted over loopback to watcher's HTTP app.

Prints records/s accepted (decode + convert + queue, the pipeline not included: a consumer
drains the source), for plain records and for records carrying exception attributes, and the
503s a small queue answers while nobody reads. Usage: python bench/otlp_receiver.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import aiohttp
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from watcher.http.app import AppState, bound_port, make_app, start
from watcher.http.security import SecurityConfig
from watcher.metrics import Metrics
from watcher.sources.base import SourceContext
from watcher.sources.intake import Intake
from watcher.sources.otlp.source import OtlpSourceConfig

TOKEN = "bench"
STACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/billing.py", line 12, in total\n'
    "    return prices[sku]\n"
    "KeyError: 'sku-{n}'"
)


def request(records: int, exceptions: bool) -> bytes:
    """One ExportLogsServiceRequest of `records` records from one service."""
    req = ExportLogsServiceRequest()
    logs = req.resource_logs.add()
    attr = logs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "billing"
    scope = logs.scope_logs.add()
    for n in range(records):
        record = scope.log_records.add()
        record.time_unix_nano = time.time_ns()
        record.severity_number = 17
        record.body.string_value = f"invoice {n} failed for customer {n * 7}"
        if exceptions:
            for key, value in (("exception.type", "KeyError"), ("exception.stacktrace", STACK)):
                a = record.attributes.add()
                a.key, a.value.string_value = key, value.format(n=n)
    return req.SerializeToString()


async def run(requests: int, records: int, exceptions: bool) -> tuple[float, int]:
    """Records/s for `requests` posts, and how many posts were refused."""
    ctx = SourceContext(intake=Intake())
    source = OtlpSourceConfig().build(ctx)
    security = SecurityConfig(token=TOKEN, ingest_paths=frozenset({"/v1/logs"}))
    runner = await start(
        make_app(AppState(Metrics()), security=security, intake=ctx.intake), "127.0.0.1:0"
    )
    url = f"http://127.0.0.1:{bound_port(runner)}/v1/logs"
    drained = 0

    async def drain() -> None:
        nonlocal drained
        async for batch in source.lines():
            drained += len(batch)

    consumer = asyncio.create_task(drain())
    body = request(records, exceptions)
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {TOKEN}"}
    refused = 0
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for _ in range(requests):
            async with session.post(url, data=body, headers=headers) as response:
                refused += response.status == 503
                await response.read()
    elapsed = time.perf_counter() - started
    ctx.shutdown.set()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    await runner.cleanup()
    return (requests - refused) * records / elapsed, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--records", type=int, default=500)
    args = parser.parse_args()
    for exceptions in (False, True):
        rate, refused = asyncio.run(run(args.requests, args.records, exceptions))
        kind = "with exception attributes" if exceptions else "plain"
        print(f"otlp {kind:26s} {rate:10,.0f} records/s  ({refused} requests refused with 503)")


if __name__ == "__main__":
    main()
