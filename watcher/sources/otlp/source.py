"""[[sources]] type = "otlp": log records pushed by OpenTelemetry SDKs and Collectors.

Served on the `[http]` listener at `path` (default `/v1/logs`), protobuf or JSON, gzip or not,
with the API token as a bearer token. Accepted records wait in a queue bounded by
`max_pending_lines`; a request that would overflow it is refused whole with 503 and Retry-After
(the OTLP throttling answer), so the sender keeps and re-sends it: nothing is buffered without a
bound and nothing accepted is dropped for lack of room. Delivery is best effort: lines accepted
but not yet processed when the daemon dies are gone (the sender was already told 200).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from watcher.model import RawLine
from watcher.sources.base import Check, SourceContext
from watcher.sources.lines import MAX_BATCH
from watcher.sources.otlp.decode import (
    JSON,
    PROTOBUF,
    BadRequest,
    Converted,
    Converter,
    parse_request,
    partial_success,
)

_RESERVED = ("/error-monitor/", "/health/", "/metrics", "/static/", "/api/")
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class OtlpSourceConfig:
    """[[sources]] type = "otlp": an OTLP/HTTP logs receiver on the [http] listener."""

    type: str = "otlp"
    name: str = "otlp"
    path: str = "/v1/logs"
    max_pending_lines: int = 20_000  # accepted, not yet processed; past it: 503
    max_body_bytes: int = 16 * 1024 * 1024  # one request, after gzip inflation
    retry_after: int = 5  # seconds, in the 503 Retry-After header

    def validate(self) -> None:
        """Raise ValueError("key: problem") for values no receiver can run with."""
        if not self.path.startswith("/") or self.path.startswith(_RESERVED) or self.path == "/":
            raise ValueError("path: must start with / and not be one of watcher's own routes")
        if self.max_pending_lines < 1:
            raise ValueError("max_pending_lines: must be at least 1")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes: must be at least 1024")
        if self.retry_after < 1:
            raise ValueError("retry_after: must be at least 1")

    async def probe(self) -> list[Check]:
        """`check-config --probe`: a receiver has nothing to connect to; whether exporters can
        reach it is the `[http]` check probe_all adds for every otlp source."""
        said = f"receives at {self.path}: nothing to connect to"
        return [Check(f"source {self.name}", None, said)]

    def build(self, ctx: SourceContext) -> OtlpSource:
        """The source this config describes; it starts accepting at once."""
        self.validate()
        return OtlpSource(self, ctx)


class Refused(Exception):
    """A request answered with an error status and an OTLP Status body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class OtlpSource:
    """Queues what the handler accepts; lines() hands it to the pipeline."""

    delivery = "best_effort"

    def __init__(self, config: OtlpSourceConfig, ctx: SourceContext) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.name
        self.converter = Converter(config.name, ctx.max_line_bytes)
        self._queue: asyncio.Queue[list[RawLine]] = asyncio.Queue()
        self.pending = 0  # lines in _queue: the bound that keeps the queue finite
        self.line_no = 0
        self.refused = 0  # requests answered 503 for lack of room
        self._intake = getattr(ctx, "intake", None)
        if self._intake is not None:
            self._intake.attach(config.path, self.handle)

    # --- the pipeline side ---------------------------------------------------------------

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        """Accepted batches until shutdown; the path answers 503 again once this ends."""
        up = self.ctx.metrics.source_up.labels(self.name)
        up.set(1)
        shutdown = asyncio.ensure_future(self.ctx.shutdown.wait())
        try:
            while True:
                get = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({get, shutdown}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()
                    return
                yield self._take(get.result())
        finally:
            shutdown.cancel()
            up.set(0)
            self._detach()

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """What was pushed and not yet read, then stop: a push source has no history to scan."""
        try:
            while not self._queue.empty():
                yield self._take(self._queue.get_nowait())
        finally:
            self._detach()

    def _take(self, batch: list[RawLine]) -> list[RawLine]:
        self.pending -= len(batch)
        return batch

    def _detach(self) -> None:
        if self._intake is not None:
            self._intake.detach(self.config.path, self.handle)

    # --- the HTTP side -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        """POST /v1/logs: 200 (maybe with partial_success), 400, 413, 415 or 503."""
        json_reply = request.content_type == JSON
        try:
            converted = await self._accept(request)
        except Refused as exc:
            return _status_reply(exc, json_reply)
        reply = ExportLogsServiceResponse()
        partial = partial_success(converted)
        if partial is not None:
            reply.partial_success.rejected_log_records = partial["rejected_log_records"]
            reply.partial_success.error_message = partial["error_message"]
        return _reply(200, reply, json_reply)

    async def _accept(self, request: web.Request) -> Converted:
        if request.content_type not in (JSON, PROTOBUF):
            raise Refused(415, f"Content-Type must be {PROTOBUF} or {JSON}")
        if self.ctx.shutdown.is_set():
            raise self._busy("watcher is shutting down")
        # aiohttp inflates a gzip (or deflate) body as it is read, so the cap below counts
        # inflated bytes: a small gzip bomb stops at max_body_bytes, never in memory whole.
        body = await _read_capped(request, self.config.max_body_bytes)
        try:
            converted = self.converter.convert(parse_request(body, request.content_type))
        except BadRequest as exc:
            raise Refused(400, str(exc)) from None
        self._enqueue(converted)
        return converted

    def _enqueue(self, converted: Converted) -> None:
        lines = converted.lines
        if lines and self.pending + len(lines) > self.config.max_pending_lines:
            raise self._busy("the pipeline is full; retry later")
        for line in lines:
            self.line_no += 1
            line.line_no = self.line_no
        for i in range(0, len(lines), MAX_BATCH):
            self._queue.put_nowait(lines[i : i + MAX_BATCH])
        self.pending += len(lines)
        metrics = self.ctx.metrics
        if converted.truncated:
            metrics.truncated_lines.labels(self.name).inc(converted.truncated)
        if converted.rejected:
            metrics.lines_lost.labels(self.name, "empty_record").inc(converted.rejected)

    def _busy(self, message: str) -> Refused:
        self.refused += 1
        return Refused(503, message, {"Retry-After": str(self.config.retry_after)})


def _too_large(limit: int) -> Refused:
    return Refused(413, f"request body over {limit} bytes; send smaller batches")


async def _read_capped(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing (413) past `limit` bytes without holding more than that."""
    if (request.content_length or 0) > limit:  # the compressed size: already too much
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _reply(status: int, message: object, json_reply: bool, **kw: object) -> web.Response:
    """The spec's rule: answer in the encoding the request used."""
    if json_reply:
        body = json_format.MessageToJson(message, indent=None).encode()  # type: ignore[arg-type]
        return web.Response(status=status, body=body, content_type=JSON, **kw)  # type: ignore[arg-type]
    data = message.SerializeToString()  # type: ignore[attr-defined]
    return web.Response(status=status, body=data, content_type=PROTOBUF, **kw)  # type: ignore[arg-type]


def _status_reply(exc: Refused, json_reply: bool) -> web.Response:
    return _reply(exc.status, Status(message=exc.message), json_reply, headers=exc.headers)
