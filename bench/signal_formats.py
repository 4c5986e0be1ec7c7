"""The log formats the signal corpus wraps real traces in: one renderer per format, one registry.

A `Format` turns a record (level, logger, message, fields) into its log line(s) and an error
(a header record plus a captured multi-line trace) into the lines one error event occupies. Prefix
formats (journald, docker compose, Kubernetes/CRI) put their prefix on every physical line of the
inner plain-text record, as those shippers do. Used by `bench/signal_corpus.py`; stdlib only.
"""

# ruff: noqa: E501 -- the strings are verbatim log layouts; wrapping them hurts more

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

LEVEL_NUM = {"debug": 20, "info": 30, "warning": 40, "error": 50, "critical": 60}
EXC_LINE = re.compile(
    r"^(?:PHP Fatal error:  Uncaught |Exception in thread \"[^\"]*\" |panic: )?"
    r"([A-Za-z_][\w.$\\]*(?:Error|Exception|Rejection)\w*)(?: \[\w+\])?: (.*)"
)


@dataclass
class Ctx:
    """What one record knows about where it comes from."""

    ts_ms: int
    service: str
    logger: str
    pid: int
    host: str
    request_id: str
    lang: str
    fields: dict[str, str | int] = field(default_factory=dict)

    @property
    def dt(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000, tz=UTC)

    def iso(self, digits: int = 3) -> str:
        frac = f"{self.ts_ms % 1000:03d}" + "0" * (digits - 3)
        return self.dt.strftime("%Y-%m-%dT%H:%M:%S.") + frac + "Z"

    def py_time(self) -> str:
        return self.dt.strftime("%Y-%m-%d %H:%M:%S,") + f"{self.ts_ms % 1000:03d}"


def exception_of(trace: str) -> tuple[str, str]:
    """(type, message) of the first exception line of a trace, for serializers that store them."""
    for line in trace.split("\n"):
        m = EXC_LINE.match(line.strip())
        if m:
            return m.group(1), m.group(2)
    return "Error", trace.split("\n", 1)[0]


def kv(fields: dict[str, str | int]) -> str:
    return " ".join(
        f"{k}={json.dumps(v) if isinstance(v, str) and ' ' in v else v}" for k, v in fields.items()
    )


# --- one record (a single log call) per format -------------------------------------------------


def plain(level: str, msg: str, c: Ctx) -> list[str]:
    return [f"{c.py_time()} {level.upper()} [{c.logger}] {msg}"]


def json_line(level: str, msg: str, c: Ctx) -> list[str]:
    rec = {"time": c.iso(), "level": level, "logger": c.logger, "msg": msg, **c.fields}
    return [json.dumps(rec)]


def logfmt(level: str, msg: str, c: Ctx) -> list[str]:
    return [
        f"time={c.iso()} level={level} logger={c.logger} msg={json.dumps(msg)} {kv(c.fields)}".rstrip()
    ]


def railway(level: str, msg: str, c: Ctx) -> list[str]:
    return [json.dumps({"message": msg, "timestamp": c.iso(9), "level": level})]


def pino(level: str, msg: str, c: Ctx) -> list[str]:
    rec = {
        "level": LEVEL_NUM[level],
        "time": c.ts_ms,
        "pid": c.pid,
        "hostname": c.host,
        "reqId": c.request_id,
        "msg": msg,
    }
    return [json.dumps(rec, separators=(",", ":"))]


def structlog(level: str, msg: str, c: Ctx) -> list[str]:
    return [f"{c.iso(6)} [{level:<9}] {msg:<32} [{c.logger}] {kv(c.fields)}".rstrip()]


def spring(level: str, msg: str, c: Ctx) -> list[str]:
    ts = c.dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{c.ts_ms % 1000:03d}"
    lvl = {"warning": "WARN"}.get(level, level.upper())
    return [f"{ts} {lvl:>5} 1 --- [nio-8080-exec-{c.pid % 10 + 1}] {c.logger:<40} : {msg}"]


def uvicorn(level: str, msg: str, c: Ctx) -> list[str]:
    if int(c.request_id[:8], 16) % 2:  # gunicorn's error log layout (else uvicorn's)
        ts = c.dt.strftime("[%Y-%m-%d %H:%M:%S +0000]")
        return [f"{ts} [{c.pid}] [{level.upper()}] {msg}"]
    return [f"{(level.upper() + ':'):<9} {msg}"]


def rails(level: str, msg: str, c: Ctx) -> list[str]:
    ts = (
        c.dt.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{c.ts_ms % 1000:03d}{int(c.request_id[:3], 16) % 1000:03d}"
    )
    lvl = {"warning": "WARN", "critical": "FATAL"}.get(level, level.upper())
    return [f"{lvl[0]}, [{ts} #{c.pid}] {lvl:>5} -- : [{c.request_id}] {msg}"]


# --- the formats ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """How one log format writes a record, and an error record followed by its trace."""

    name: str
    record: Callable[[str, str, Ctx], list[str]]
    langs: tuple[str, ...] = ()  # empty: every language writes it
    prefix: Callable[[Ctx, str], str] | None = None  # put on every physical line
    one_line: bool = False  # the trace goes into a field of the error record
    headerless_ok: bool = True  # an uncaught crash may print its trace with no log record

    def lines(self, level: str, msg: str, c: Ctx) -> list[str]:
        return self.with_prefix(self.record(level, msg, c), c, "stdout")

    def raw(self, text_lines: list[str], c: Ctx, stream: str = "stderr") -> list[str]:
        """Lines a program writes straight to its stderr (warnings module, runtime crashes)."""
        if self.record is railway:
            return [
                json.dumps(
                    {
                        "message": t,
                        "timestamp": c.iso(9),
                        "level": "error" if stream == "stderr" else "info",
                    }
                )
                for t in text_lines
            ]
        if self.record is rails:
            # Rails tags every line of a FATAL block; other raw output is plain INFO traffic
            level = "critical" if stream == "stderr" else "info"
            return [rails(level, t, c)[0] for t in text_lines]
        return self.with_prefix(text_lines, c, stream)

    def with_prefix(self, lines: list[str], c: Ctx, stream: str) -> list[str]:
        if self.prefix is None:
            return lines
        return [self.prefix(c, stream) + line for line in lines]

    def error(self, msg: str, trace: str, c: Ctx, header: bool) -> list[str]:
        """One error event: the error record (unless an uncaught crash) and its trace."""
        if self.one_line:
            return [self.one_line_error(msg, trace, c)]
        head = self.error_header(msg, c) if header else []
        return head + self.raw(trace.split("\n"), c, "stderr")

    def error_header(self, msg: str, c: Ctx) -> list[str]:
        if self.record is rails:  # Rails' tagged FATAL block opens with an empty tagged line
            return [rails("critical", "  ", c)[0]]
        level = "error"
        return self.with_prefix(self.record(level, msg, c), c, "stderr")

    def one_line_error(self, msg: str, trace: str, c: Ctx) -> str:
        if self.record is pino:
            etype, emsg = exception_of(trace)
            rec = {
                "level": 50,
                "time": c.ts_ms,
                "pid": c.pid,
                "hostname": c.host,
                "reqId": c.request_id,
                "err": {"type": etype, "message": emsg, "stack": trace},
                "msg": msg,
            }
            return json.dumps(rec, separators=(",", ":"))
        key = "exc_info" if c.lang == "python" else "stack"
        rec = {
            "time": c.iso(),
            "level": "ERROR",
            "logger": c.logger,
            "message": msg,
            **c.fields,
            key: trace,
        }
        return json.dumps(rec)


def journald_prefix(c: Ctx, stream: str) -> str:
    return f"{c.dt.strftime('%b %d %H:%M:%S')} {c.host} {c.service}[{c.pid}]: "


def compose_prefix(c: Ctx, stream: str) -> str:
    return f"{(c.service + '-1'):<11}| "


def cri_prefix(c: Ctx, stream: str) -> str:
    ns = f"{c.ts_ms % 1000:03d}{(c.ts_ms * 7919) % 1000000:06d}"
    return c.dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns}Z {stream} F "


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("plain", plain),
        Format("json_header", json_line, headerless_ok=False),
        Format("json_field", json_line, one_line=True, headerless_ok=False),
        Format("logfmt", logfmt, headerless_ok=False),
        Format("railway", railway),
        Format("pino", pino, langs=("node",), one_line=True, headerless_ok=False),
        Format("structlog", structlog, langs=("python",), headerless_ok=False),
        Format("spring", spring, langs=("java",), headerless_ok=False),
        Format("uvicorn", uvicorn, langs=("python",), headerless_ok=False),
        Format("rails", rails, langs=("ruby",), headerless_ok=False),
        Format("journald", plain, prefix=journald_prefix),
        Format("compose", plain, prefix=compose_prefix),
        Format("cri", plain, prefix=cri_prefix),
    )
}


def formats_for(lang: str) -> list[Format]:
    return [f for f in FORMATS.values() if not f.langs or lang in f.langs]
