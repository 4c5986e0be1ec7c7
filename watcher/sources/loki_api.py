"""Talking to Loki's HTTP API: requests, auth headers, error classes and both value shapes.

Only what the loki source needs: `GET /loki/api/v1/query_range` (forward, one page) and the
`/loki/api/v1/tail` websocket. The base URL may carry a path (a Grafana datasource proxy,
`https://grafana/api/datasources/proxy/uid/<uid>`); the API paths are appended to it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import aiohttp
from yarl import URL

QUERY_RANGE = "/loki/api/v1/query_range"
TAIL = "/loki/api/v1/tail"
# Loki 3.x: values become [ts, line, {"structuredMetadata": …, "parsed": …}] and "stream" holds
# only the indexed labels, so high-cardinality metadata (trace ids) does not split streams.
# Older servers ignore the header and fold everything into the stream labels.
ENCODING_FLAGS = "X-Loki-Response-Encoding-Flags"
CATEGORIZE_LABELS = "categorize-labels"
_BODY_EXCERPT = 300  # characters of an error body worth putting in a one-line message


class LokiError(Exception):
    """A failed Loki request; `fatal` when retrying the same request cannot succeed."""

    def __init__(self, message: str, *, fatal: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.fatal = fatal
        self.status = status


@dataclass(slots=True)
class Entry:
    """One log entry as Loki returned it."""

    ns: int
    line: str
    stream: str  # canonical text of the stream's labels: the multi-line assembly key
    fields: dict[str, str]  # stream labels plus structured metadata
    ident: bytes  # digest of (all labels, line): with `ns`, what makes an entry unique


def canonical(labels: Mapping[str, Any]) -> str:
    """`{a="b", c="d"}`: a label set as LogQL writes it, keys sorted, so it is stable."""
    inner = ", ".join(
        f"{k}={json.dumps(str(v), ensure_ascii=False)}" for k, v in sorted(labels.items())
    )
    return "{" + inner + "}"


def digest(folded: str, line: str) -> bytes:
    """An 8-byte identity for (labels, line); stable across processes, unlike hash()."""
    data = folded.encode("utf-8", "surrogatepass") + b"\0" + line.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8).digest()


def _bad_shape(what: str) -> LokiError:
    return LokiError(f"unexpected Loki response: {what}", fatal=True)


def parse_streams(result: Any) -> list[Entry]:
    """The entries of a `streams` result (2- or 3-tuple values), oldest first across streams."""
    if not isinstance(result, list):
        raise _bad_shape("result is not a list")
    entries: list[Entry] = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise _bad_shape("a stream without values")
        labels = item.get("stream") or {}
        if not isinstance(labels, dict):
            raise _bad_shape("stream labels are not an object")
        entries.extend(_stream_entries(labels, item["values"]))
    entries.sort(key=attrgetter("ns"))  # stable: ties keep Loki's order
    return entries


def _stream_entries(labels: dict[str, str], values: list[Any]) -> list[Entry]:
    key = canonical(labels)
    out: list[Entry] = []
    for value in values:
        try:
            ns, line = int(value[0]), value[1]
        except (TypeError, ValueError, IndexError):
            raise _bad_shape(f"a value is not [ts, line]: {str(value)[:80]}") from None
        if not isinstance(line, str):
            raise _bad_shape("a log line is not a string")
        extra = _categorized(value[2]) if len(value) > 2 else None
        if extra:
            fields = {**labels, **extra}
            # fold the metadata into the identity, as a 2-tuple response would have folded it
            # into the stream labels: the same entry then has one identity in both shapes
            out.append(Entry(ns, line, key, fields, digest(canonical(fields), line)))
        else:
            out.append(Entry(ns, line, key, labels, digest(key, line)))
    return out


def _categorized(extra: Any) -> dict[str, str]:
    """Structured metadata and parsed labels of a 3-tuple value (either may be absent)."""
    if not isinstance(extra, dict):
        return {}
    out: dict[str, str] = {}
    for part in ("structuredMetadata", "parsed"):
        labels = extra.get(part)
        if isinstance(labels, dict):
            out.update({str(k): str(v) for k, v in labels.items()})
    return out


def parse_tail_message(text: str) -> tuple[list[Entry], int]:
    """(entries, how many entries the server says it dropped) of one tail websocket message."""
    try:
        data = json.loads(text)
    except ValueError:
        raise _bad_shape("a tail message is not JSON") from None
    if not isinstance(data, dict):
        raise _bad_shape("a tail message is not an object")
    entries = parse_streams(data.get("streams") or [])
    dropped = data.get("dropped_entries") or []
    return entries, len(dropped) if isinstance(dropped, list) else 0


def auth_headers(
    *, tenant: str = "", username: str = "", password: str = "", token: str = ""
) -> dict[str, str]:
    """The headers that authenticate every request (values are secrets: never log them)."""
    headers = {ENCODING_FLAGS: CATEGORIZE_LABELS}
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif username:
        pair = f"{username}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    return headers


def status_error(status: int, body: str, what: str) -> LokiError:
    """The error for a non-success HTTP status: fatal when the request itself is wrong."""
    excerpt = " ".join(body.split())[:_BODY_EXCERPT]
    detail = f" ({excerpt})" if excerpt else ""
    if status in (401, 403):
        return LokiError(f"Loki refused the credentials: HTTP {status}{detail}", fatal=True)
    if status == 404:
        message = f"no Loki API at this url: HTTP 404 on {what}{detail}"
        return LokiError(message, fatal=True, status=status)
    if status == 400:
        return LokiError(f"Loki rejected the {what}: HTTP 400{detail}", fatal=True, status=status)
    return LokiError(f"Loki {what} failed: HTTP {status}{detail}", status=status)


class LokiClient:
    """One Loki endpoint: the base URL, the auth headers, a request timeout."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float = 30.0,
        ssl: Any = True,
    ) -> None:
        self.session = session
        self.base = base_url.rstrip("/")  # Loki 404s on a double slash (grafana/loki#1985)
        self.headers = dict(headers)
        self.timeout = timeout
        self.ssl = ssl

    async def query_range(self, query: str, start_ns: int, end_ns: int, limit: int) -> list[Entry]:
        """One forward page: at most `limit` entries of [start_ns, end_ns), oldest first."""
        params = {
            "query": query,
            "start": str(start_ns),
            "end": str(end_ns),
            "limit": str(limit),
            "direction": "forward",
        }
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self.session.get(
                self.base + QUERY_RANGE,
                params=params,
                headers=self.headers,
                timeout=timeout,
                ssl=self.ssl,
            ) as resp:
                body = await resp.text(errors="replace")
                if resp.status != 200:
                    raise status_error(resp.status, body, "query")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LokiError(f"Loki query failed: {_describe(exc)}") from None
        return _streams_of(body)

    async def open_tail(
        self, query: str, start_ns: int, limit: int, delay_for: int
    ) -> aiohttp.ClientWebSocketResponse:
        """The open tail websocket (the caller closes it); handshake errors become LokiError."""
        params = {
            "query": query,
            "start": str(start_ns),
            "limit": str(limit),
            "delay_for": str(delay_for),
        }
        try:
            async with asyncio.timeout(self.timeout):
                return await self.session.ws_connect(
                    self.base + TAIL,
                    params=params,
                    headers=self.headers,
                    ssl=self.ssl,
                    # pings notice a silently dead connection (NAT, proxy) within a minute
                    heartbeat=30.0,
                    max_msg_size=64 * 1024 * 1024,
                )
        except aiohttp.WSServerHandshakeError as exc:
            # a refused tail is rarely the query's fault: query_range has just accepted it, and
            # "max concurrent tail requests limit exceeded" is a 400 that goes away
            if exc.status in (401, 403, 404):
                raise status_error(exc.status, "", "tail") from None
            raise LokiError(f"Loki tail refused: HTTP {exc.status}", status=exc.status) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LokiError(f"Loki tail failed: {_describe(exc)}") from None


def _streams_of(body: str) -> list[Entry]:
    try:
        data = json.loads(body)
    except ValueError:
        raise _bad_shape("the body is not JSON (is url the Loki API?)") from None
    if not isinstance(data, dict) or data.get("status") != "success":
        raise _bad_shape(f"status is not success: {body[:_BODY_EXCERPT]}")
    inner = data.get("data")
    if not isinstance(inner, dict) or inner.get("resultType") != "streams":
        raise _bad_shape("not a log query (resultType is not streams): use a log query")
    return parse_streams(inner.get("result"))


def _describe(exc: BaseException) -> str:
    """A short cause for a network error (aiohttp's own text can be empty)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_url(url: str) -> None:
    """ValueError("url: …") unless `url` is an http(s) base URL without secrets or a query."""
    try:
        parsed = URL(url)
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"url: expected an http(s) URL such as http://loki:3100, got {url!r}")
    if parsed.user or parsed.password:
        # a URL ends up in logs and error messages; secrets come from the environment
        raise ValueError("url: put credentials in username/password_env or token_env")
    if parsed.query_string or parsed.fragment:
        raise ValueError("url: must not have a query string; put LogQL in query")


def read_secret(env_name: str, key: str) -> str:
    """The value of the environment variable a config key names ("" when none is named)."""
    if not env_name:
        return ""
    value = os.environ.get(env_name, "")
    if not value:
        raise LokiError(f"{key}: environment variable {env_name} is not set", fatal=True)
    return value


def ssl_option(tls_verify: bool, ca_file: str) -> Any:
    """aiohttp's `ssl` argument: verification on, off, or against a private CA."""
    if not tls_verify:
        return False
    if not ca_file:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise LokiError(f"ca_file: cannot load {ca_file}: {exc}", fatal=True) from None
