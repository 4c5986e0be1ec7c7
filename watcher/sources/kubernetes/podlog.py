"""One container's log stream: `GET …/pods/{pod}/log?follow=true&timestamps=true&sinceTime=…`.

Resuming is by time: the stream asks for `sinceTime` (which the API applies at second
precision) and drops what it already delivered: lines older than the last timestamp, and lines
at that timestamp whose hash it has seen. The cursor of a line is that position, so a restarted
daemon resumes the same way from its checkpoint.

The generated client's `read_namespaced_pod_log` has no `since_time` parameter (only
`since_seconds`, which drifts between computing and sending), so the request goes through the
client's own `call_api`: same auth, TLS and session, with the API's real `sinceTime` query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from watcher.model import RawLine
from watcher.sources.lines import Lines, LineSplitter, cap_bytes, decode

NS = 1_000_000_000
_SEEN_CAP = 256  # hashes kept for one timestamp (lines sharing one nanosecond are rare)
_TS_ROOM = 40  # the timestamp prefix, beyond the line cap


@dataclass
class Position:
    """Where a stream is: the newest timestamp delivered and the lines delivered at it."""

    ns: int = 0
    seen: set[str] = field(default_factory=set)

    @classmethod
    def from_cursor(cls, cursor: Any) -> Position | None:
        """A position from a stored cursor, or None when it is not one."""
        if not isinstance(cursor, dict) or not isinstance(cursor.get("ns"), int):
            return None
        seen = cursor.get("seen")
        return cls(cursor["ns"], {s for s in seen if isinstance(s, str)} if seen else set())

    def admit(self, ns: int, text: str) -> bool:
        """True for a line not delivered before (and records it)."""
        if ns < self.ns:
            return False
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
        if ns == self.ns:
            if digest in self.seen:
                return False
            if len(self.seen) < _SEEN_CAP:
                self.seen.add(digest)
        else:
            self.ns, self.seen = ns, {digest}
        return True

    def cursor(self) -> dict[str, Any]:
        """JSON-serialisable: what a restarted daemon resumes from."""
        return {"ns": self.ns, "seen": sorted(self.seen)}

    def since_time(self) -> str:
        """The `sinceTime` to ask for (whole seconds: finer is dropped by the API anyway)."""
        when = dt.datetime.fromtimestamp(self.ns // NS, dt.UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(prefix: str) -> int | None:
    """An RFC3339(Nano) timestamp as integer nanoseconds, or None."""
    head, _, frac = prefix.rstrip("Z").partition(".")
    try:
        when = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    digits = "".join(c for c in frac if c.isdigit())[:9].ljust(9, "0")
    return int(when.timestamp()) * NS + int(digits)


@dataclass
class PodLog:
    """Reads one container's log into RawLines, dropping what was delivered before."""

    source: str
    stream: str
    position: Position
    max_line_bytes: int
    line_no: int = 0
    truncated: int = 0

    def request(self, namespace: str, pod: str, container: str, follow: bool) -> dict[str, Any]:
        """The call_api arguments of the log request."""
        query: list[tuple[str, str]] = [
            ("container", container),
            ("timestamps", "true"),
            ("follow", "true" if follow else "false"),
        ]
        if self.position.ns:
            query.append(("sinceTime", self.position.since_time()))
        return {
            "resource_path": "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "method": "GET",
            "path_params": {"namespace": namespace, "name": pod},
            "query_params": query,
            "header_params": {"Accept": "*/*"},
            "auth_settings": ["BearerToken"],
            "_preload_content": False,
        }

    async def read(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[list[RawLine]]:
        """Batches of new lines from the response body's chunks."""
        splitter = LineSplitter(self.max_line_bytes + _TS_ROOM)
        async for chunk in chunks:
            splitter.feed(chunk)
            while (lines := splitter.take()).texts:
                if batch := self._batch(lines):
                    yield batch
        if batch := self._batch(splitter.flush()):
            yield batch

    def _batch(self, lines: Lines) -> list[RawLine]:
        out: list[RawLine] = []
        truncated = set(lines.truncated)
        for i, raw in enumerate(lines.texts):
            stamp, _, text = raw.partition(" ")
            ns = parse_timestamp(stamp)
            if ns is None:  # no prefix (should not happen with timestamps=true): keep it
                ns, text = self.position.ns, raw
            if not self.position.admit(ns, text):
                continue
            self.line_no += 1
            line = RawLine(text, self.source, self.stream, self.position.cursor(), self.line_no)
            line.timestamp = ns / NS
            data = text.encode("utf-8", "surrogatepass")
            if i in truncated or len(data) > self.max_line_bytes:
                line.text = decode(cap_bytes(data, self.max_line_bytes))
                line.truncated = True
                self.truncated += 1
            out.append(line)
        return out
