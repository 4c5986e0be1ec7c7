#!/usr/bin/env python3
"""Seeded generator of the signal corpus: real captured traces in every claimed log format.

Reads the traces that `bench/corpus/capture.py` recorded by really running small crashing
programs (`bench/data/signal/traces.jsonl`) and writes a log stream in which each trace appears
in several formats (see `bench/signal_formats.py`), among ordinary INFO traffic and distractors
that are NOT error events: WARNING lines quoting an exception name, 5xx access-log lines,
DeprecationWarnings, INFO lines that say "error" in passing. The truth (`truth.jsonl`, same
fields as the development corpus's: first_line, last_line, group, category, lang, kind, ... plus
`format` and `header`) is the generator's own bookkeeping of the line spans it wrote, never
written by hand. The same trace bytes and seed always give the same stream.

    python bench/signal_corpus.py                      # writes bench/data/signal/{stream.log,truth.jsonl,meta.json}
    python bench/signal_corpus.py --seed 3 --formats-per-trace 2 -o /tmp/signal
"""

# ruff: noqa: E501 -- log lines are verbatim text

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from signal_formats import FORMATS, Ctx, Format, formats_for

DATA = Path(__file__).resolve().parent / "data" / "signal"
SPECIFIC_WEIGHT = 3
START_MS = int(datetime(2024, 3, 4, 8, 0, tzinfo=UTC).timestamp()) * 1000
SERVICE = {
    "python": "api",
    "node": "web",
    "java": "billing",
    "go": "ledger",
    "ruby": "mailer",
    "php": "shop",
}
LOGGER = {
    "python": "app.orders",
    "node": "web.checkout",
    "java": "c.a.orders.OrderController",
    "go": "ledger.worker",
    "ruby": "ReceiptJob",
    "php": "app.http",
}
# The error record's message per language: values vary, the template does not.
HEADER = {
    "python": "Exception on /api/orders/{n} [POST]",
    "node": "request failed: POST /checkout/{n}",
    "java": "Servlet.service() for servlet [dispatcherServlet] in context with path [] threw exception",
    "go": "worker {n} crashed",
    "ruby": "Error performing ReceiptJob (Job ID: {hex}) from Sidekiq(default)",
    "php": "Unhandled exception while serving /cart/{n}",
}
INFO = [
    "GET /api/orders/{n} 200 in {ms}ms",
    "user {n} logged in",
    "cache hit key=cart:{n}",
    "published event order.created id={n}",
    "health check ok ({ms}ms)",
    "processed {ms} jobs, 0 errors",
    "connected to postgres pool size=10",
    "error budget remaining 99.{ms}%",
    "loaded error page templates from /srv/app/templates/errors",
    "GET /api/errors?page={n} 200 in {ms}ms",
    "retry queue drained, 0 failed",
]
WARNINGS = [
    "retrying charge {n} after ConnectionRefusedError (attempt 2/5)",
    "price lookup for SKU-{n} raised KeyError, using catalogue default",
    "upstream inventory TimeoutError after {ms}ms, serving cached stock",
    "slow query ({ms}ms) on orders; NullPointerException guard hit for order {n}",
    "rate limit approaching: {ms} of 1000 requests this minute",
]
DEPRECATIONS = {
    "python": [
        "/srv/app/shopapp/clock.py:12: DeprecationWarning: datetime.datetime.utcnow() is deprecated and scheduled for removal in a future version. Use timezone-aware objects to represent datetimes in UTC: datetime.datetime.now(datetime.UTC).",
        "  now = datetime.utcnow()",
    ],
    "node": [
        "(node:{pid}) [DEP0040] DeprecationWarning: The `punycode` module is deprecated. Please use a userland alternative instead.",
        "(Use `node --trace-deprecation ...` to show where the warning was created)",
    ],
}
ACCESS_5XX = [
    '10.0.{a}.{b} - - [{clf}] "POST /api/orders/{n} HTTP/1.1" 502 157 "-" "python-requests/2.31.0"',
    '10.0.{a}.{b} - - [{clf}] "GET /api/cart/{n} HTTP/1.1" 504 167 "-" "Mozilla/5.0"',
    'INFO:     10.0.{a}.{b}:{port} - "POST /api/orders/{n} HTTP/1.1" 500 Internal Server Error',
]


@dataclass(frozen=True)
class Trace:
    lang: str
    bug: str
    group: str
    category: str
    occurrence: int
    value: int
    text: str


def load_traces(path: Path) -> list[Trace]:
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return [
        Trace(
            r["lang"], r["bug"], r["group"], r["category"], r["occurrence"], r["value"], r["text"]
        )
        for r in rows
    ]


class Writer:
    """Appends lines and remembers the span of each error event: the truth is this bookkeeping."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lines: list[str] = []
        self.truth: list[dict] = []
        self.ms = START_MS
        # one process per service: its pid and host stay put, as journald and pino show them
        self.proc = {
            lang: (rng.randint(7, 65000), f"{svc}-7d9f{rng.randint(100, 999)}")
            for lang, svc in SERVICE.items()
        }

    def ctx(self, lang: str) -> Ctx:
        self.ms += self.rng.randint(40, 2500)
        rid = f"{self.rng.getrandbits(32):08x}-{self.rng.getrandbits(16):04x}"
        pid, host = self.proc[lang]
        return Ctx(self.ms, SERVICE[lang], LOGGER[lang], pid, host, rid, lang, {"request_id": rid})

    def fill(self, text: str) -> str:
        r = self.rng
        clf = datetime.fromtimestamp(self.ms / 1000, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
        return text.format(
            n=r.randint(1000, 99999),
            ms=r.randint(2, 900),
            hex=f"{r.getrandbits(48):012x}",
            a=r.randint(0, 9),
            b=r.randint(2, 254),
            port=r.randint(30000, 60000),
            pid=r.randint(7, 65000),
            clf=clf,
        )

    def traffic(self, fmt: Format, lang: str, n: int) -> None:
        for _ in range(n):
            c = self.ctx(lang)
            self.lines += fmt.lines("info", self.fill(self.rng.choice(INFO)), c)

    def distractor(self, fmt: Format, lang: str) -> None:
        """A line that talks about errors but is not an error event."""
        c = self.ctx(lang)
        kind = self.rng.choice(["warning", "warning", "access", "deprecation", "info"])
        if kind == "warning":
            self.lines += fmt.lines("warning", self.fill(self.rng.choice(WARNINGS)), c)
        elif kind == "access":
            self.lines += fmt.raw([self.fill(self.rng.choice(ACCESS_5XX))], c, "stdout")
        elif kind == "deprecation" and lang in DEPRECATIONS:
            self.lines += fmt.raw([self.fill(t) for t in DEPRECATIONS[lang]], c, "stdout")
        else:
            self.lines += fmt.lines(
                "info", self.fill("GET /api/errors/{n} 200 in {ms}ms (error report viewed)"), c
            )

    def event(self, fmt: Format, t: Trace, header: bool) -> None:
        c = self.ctx(t.lang)
        msg = self.fill(HEADER[t.lang])
        lines = fmt.error(msg, t.text, c, header)
        first = len(self.lines) + 1
        lines = self.interleave(fmt, t.lang, lines)
        self.lines += lines
        self.truth.append(
            {
                "first_line": first,
                "last_line": first + len(lines) - 1,
                "group": t.group,
                "category": t.category,
                "lang": t.lang,
                "kind": "json-line" if fmt.one_line else "trace",
                "format": fmt.name,
                "header": header and not fmt.one_line,
                "sample": f"{t.group}#{t.occurrence}",
                "occurrence": t.occurrence,
                "level": "ERROR",
                "reason": f"captured {t.lang} {t.bug} run (value {t.value}) written as {fmt.name}"
                + ("" if header or fmt.one_line else " with no log record before it"),
            }
        )

    def interleave(self, fmt: Format, lang: str, lines: list[str]) -> list[str]:
        """Docker compose and journald mix other processes' lines into a trace; they stay non-events."""
        if fmt.name not in ("compose", "journald") or len(lines) < 4 or self.rng.random() > 0.3:
            return lines
        other = "python" if lang != "python" else "node"
        c = self.ctx(other)
        c.service, c.pid = "worker", c.pid + 1  # another process of the same deployment
        foreign = fmt.lines("info", self.fill("heartbeat ok, {ms} jobs queued"), c)[0]
        at = self.rng.randint(2, len(lines) - 1)
        return [*lines[:at], foreign, *lines[at:]]


def assign_formats(
    traces: list[Trace], per_trace: int, rng: random.Random
) -> list[tuple[Trace, Format]]:
    """Each trace in `per_trace` formats, cycling through its language's formats.

    A language's own formats (pino for node, Spring for java, ...) get SPECIFIC_WEIGHT slots in
    the cycle so that each has enough events to be scored on its own.
    """
    out = []
    for lang in sorted({t.lang for t in traces}):
        names = [
            f.name for f in formats_for(lang) for _ in range(SPECIFIC_WEIGHT if f.langs else 1)
        ]
        rng.shuffle(names)
        i = 0
        for t in (t for t in traces if t.lang == lang):
            for k in range(per_trace):
                out.append((t, FORMATS[names[(i + k) % len(names)]]))
            i += per_trace
    rng.shuffle(out)
    return out


def generate(
    traces: list[Trace], seed: int = 11, per_trace: int = 3
) -> tuple[list[str], list[dict]]:
    rng = random.Random(seed)
    w = Writer(rng)
    for t, fmt in assign_formats(traces, per_trace, rng):
        w.traffic(fmt, t.lang, rng.randint(1, 6))
        if rng.random() < 0.5:
            w.distractor(fmt, t.lang)
            w.traffic(fmt, t.lang, rng.randint(0, 2))
        bare = fmt.headerless_ok and rng.random() < 0.3
        # a one-line error (Go's log.Fatalf) is its own record: no header is written before it
        w.event(fmt, t, header=not bare and "\n" in t.text)
    w.traffic(FORMATS["plain"], "python", 3)
    return w.lines, w.truth


def meta(lines: list[str], truth: list[dict], seed: int, per_trace: int) -> dict:
    return {
        "seed": seed,
        "formats_per_trace": per_trace,
        "lines": len(lines),
        "events": len(truth),
        "groups": len({t["group"] for t in truth}),
        "event_lines": sum(t["last_line"] - t["first_line"] + 1 for t in truth),
        "events_per_lang": dict(sorted(Counter(t["lang"] for t in truth).items())),
        "groups_per_lang": dict(
            sorted(Counter(g.split(".")[0] for g in {t["group"] for t in truth}).items())
        ),
        "events_per_format": dict(sorted(Counter(t["format"] for t in truth).items())),
        "events_per_category": dict(sorted(Counter(t["category"] for t in truth).items())),
        "headerless_events": sum(1 for t in truth if not t["header"] and t["kind"] == "trace"),
    }


def write(out: Path, lines: list[str], truth: list[dict], info: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "stream.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (out / "truth.jsonl").open("w", encoding="utf-8") as f:
        for t in truth:
            f.write(json.dumps(t) + "\n")
    (out / "meta.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--traces",
        type=Path,
        default=DATA / "traces.jsonl",
        help="captured traces (bench/corpus/capture.py)",
    )
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument(
        "--formats-per-trace",
        type=int,
        default=3,
        help="how many formats each captured trace is written in",
    )
    ap.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DATA,
        help="directory for stream.log, truth.jsonl, meta.json",
    )
    args = ap.parse_args(argv)
    lines, truth = generate(load_traces(args.traces), args.seed, args.formats_per_trace)
    info = meta(lines, truth, args.seed, args.formats_per_trace)
    write(args.output, lines, truth, info)
    print(
        f"wrote {info['lines']} lines, {info['events']} events in {info['groups']} groups to {args.output}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
