"""OTLP/HTTP log requests -> RawLines: pure functions, no I/O.

A request body is binary protobuf or the spec's JSON mapping (hex trace ids, lowerCamelCase keys,
unknown fields ignored); the HTTP layer has already inflated a gzip body. Each log record becomes
lines of one stream per emitter (service + pod or host), so a body holding a printed trace is
assembled by the same multi-line rules as a tailed file. A record that carries the `exception.*`
semantic attributes becomes one JSON line with an `error` object (the shape the JSON parser
already reads a trace from, `trace_from_fields`), so its stacktrace is parsed by the same
language rules as text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from watcher.model import RawLine
from watcher.sources.lines import cap_bytes, decode

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# Resource attributes that say where a record came from: kept as fields (bounded set).
RESOURCE_FIELDS = (
    "service.name",
    "service.namespace",
    "service.version",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "host.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
)
EXCEPTION_KEYS = ("exception.type", "exception.message", "exception.stacktrace")
MAX_RECORD_FIELDS = 32  # a record's own attributes kept as fields, at most
# SeverityNumber ranges (logs data model): 1-4 TRACE … 21-24 FATAL.
_SEVERITY = ("trace", "debug", "info", "warning", "error", "critical")


class BadRequest(ValueError):
    """A body that cannot be decoded: answered 400 and never retried (OTLP "bad data")."""


def parse_request(body: bytes, content_type: str) -> ExportLogsServiceRequest:
    """An ExportLogsServiceRequest from a protobuf or JSON body; BadRequest when it is neither."""
    kind = content_type.split(";")[0].strip().lower()
    request = ExportLogsServiceRequest()
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(f"body is not an ExportLogsServiceRequest: {exc}") from None
        return request
    if kind == JSON:
        try:
            data = json.loads(body)
            _hex_ids_to_base64(data)
            json_format.ParseDict(data, request, ignore_unknown_fields=True)
        except (ValueError, json_format.ParseError, TypeError, AttributeError) as exc:
            raise BadRequest(f"body is not OTLP JSON: {exc}") from None
        return request
    raise BadRequest(f"unsupported Content-Type {kind!r} ({PROTOBUF} or {JSON})")


def _hex_ids_to_base64(data: Any) -> None:
    """OTLP JSON writes traceId/spanId as hex; protobuf's JSON mapping expects base64."""
    for resource in _dicts(data.get("resourceLogs") if isinstance(data, dict) else None):
        for scope in _dicts(resource.get("scopeLogs")):
            for record in _dicts(scope.get("logRecords")):
                for key in ("traceId", "spanId"):
                    value = record.get(key)
                    if isinstance(value, str) and value:
                        try:
                            record[key] = base64.b64encode(bytes.fromhex(value)).decode()
                        except ValueError:
                            raise BadRequest(f"{key} is not hex: {value[:40]!r}") from None


def _dicts(items: Any) -> Iterable[dict[str, Any]]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def value_of(value: AnyValue) -> Any:
    """An AnyValue as plain Python (bytes decoded as UTF-8 with replacement)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "bytes_value":
        return decode(value.bytes_value)
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    """KeyValue pairs as a dict (a repeated key: the last one wins)."""
    return {kv.key: value_of(kv.value) for kv in pairs}


def level_of(record: LogRecord) -> str | None:
    """severity_number mapped by the data model's ranges; else severity_text; else None."""
    number = record.severity_number
    if 1 <= number <= 24:
        return _SEVERITY[(number - 1) // 4 if number < 21 else 5]
    text = record.severity_text.strip().lower()
    return text or None


@dataclass
class Converted:
    """Lines made from one request, and the records that could not become any."""

    lines: list[RawLine] = field(default_factory=list)
    records: int = 0
    rejected: int = 0
    truncated: int = 0


@dataclass
class Converter:
    """Turns requests into RawLines for source `source`, capping each line at `max_line_bytes`."""

    source: str
    max_line_bytes: int

    def convert(self, request: ExportLogsServiceRequest) -> Converted:
        """Every record's lines, in request order; records with nothing to read are rejected."""
        out = Converted()
        for resource_logs in request.resource_logs:
            resource = attributes(resource_logs.resource.attributes)
            base = {k: resource[k] for k in RESOURCE_FIELDS if resource.get(k) not in (None, "")}
            stream = _stream_of(self.source, base)
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    out.records += 1
                    if not self._record(record, base, stream, out):
                        out.rejected += 1
        return out

    def _record(self, record: LogRecord, base: dict[str, Any], stream: str, out: Converted) -> bool:
        attrs = attributes(record.attributes)
        body = value_of(record.body)
        text = body if isinstance(body, str) else "" if body is None else _json(body)
        exception = {k: attrs.pop(k) for k in EXCEPTION_KEYS if k in attrs}
        if not text.strip() and not exception:
            return False
        fields = _fields(base, attrs, record)
        stamp = record.time_unix_nano or record.observed_time_unix_nano
        when = stamp / 1e9 if stamp else None
        lines = text.rstrip("\r\n").split("\n")  # a trailing newline is not an empty line
        texts = [self._exception_line(text, fields, exception)] if exception else lines
        for part in texts:
            out.lines.append(self._line(part, stream, when, fields, out))
        return True

    def _exception_line(self, body: str, fields: dict[str, Any], exc: dict[str, Any]) -> str:
        """One JSON record holding the exception the way the JSON parser reads traces."""
        kind, message = exc.get("exception.type"), exc.get("exception.message")
        stack = exc.get("exception.stacktrace")
        if isinstance(stack, str):  # leave room for the rest of the record within the cap
            stack = cap_bytes(stack.encode(), max(0, self.max_line_bytes - 1024)).decode(
                "utf-8", "replace"
            )
        summary = ": ".join(str(p) for p in (kind, message) if p)
        record: dict[str, Any] = {"message": body.strip() or summary}
        if fields.get("level"):
            record["level"] = fields["level"]
        record["error"] = {"type": kind, "message": message, "stack": stack}
        return json.dumps(record, ensure_ascii=False)

    def _line(
        self, text: str, stream: str, when: float | None, fields: dict[str, Any], out: Converted
    ) -> RawLine:
        text = text[:-1] if text.endswith("\r") else text
        line = RawLine(text, self.source, stream, None, 0, when, fields)
        data = text.encode("utf-8", "surrogatepass")
        if len(data) > self.max_line_bytes:
            line.text = decode(cap_bytes(data, self.max_line_bytes))
            line.truncated = True
            out.truncated += 1
        return line


def _fields(base: dict[str, Any], attrs: dict[str, Any], record: LogRecord) -> dict[str, Any]:
    fields = dict(base)
    for key in list(attrs)[:MAX_RECORD_FIELDS]:
        fields.setdefault(key, attrs[key])
    level = level_of(record)
    if level:
        fields["level"] = level
    if record.trace_id:
        fields["trace_id"] = record.trace_id.hex()
    if record.span_id:
        fields["span_id"] = record.span_id.hex()
    return fields


def _stream_of(source: str, resource: dict[str, Any]) -> str:
    """One stream per emitter, so lines of one process are assembled together."""
    service = resource.get("service.name") or "unknown"
    where = resource.get("k8s.pod.name") or resource.get("service.instance.id")
    where = where or resource.get("host.name")
    return f"{source}/{service}/{where}" if where else f"{source}/{service}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def partial_success(converted: Converted) -> dict[str, Any] | None:
    """The partial_success to report, or None for a full success (the spec: leave it unset)."""
    if not converted.rejected:
        return None
    return {
        "rejected_log_records": converted.rejected,
        "error_message": f"{converted.rejected} log record(s) had no body and no exception "
        "attributes: nothing to read",
    }
