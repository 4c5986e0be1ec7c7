#!/usr/bin/env python3
"""Load generator for the reliability suite: sequence-numbered log records at a target rate.

Each record is one line, or (a share of the errors) a Python traceback of several lines. Every
record's first line carries `seq=N` (N counts records from 1), so a reader can tell which records
arrived. The messages come from a fixed set of templates (`--templates`, default 1000) with
variable parts (ids, durations, hex) that watcher masks; `--unique` instead makes every error
message unique with random pronounceable words that no mask removes (the cardinality attack).

Rates: `--error-rate` (default 0.05) is the share of records that are errors, `--trace-rate`
(default 0.10) the share of error records that carry a multi-line traceback. With the defaults a
record is 1.0225 lines on average.

    python bench/loadgen.py --rate 20000 --duration 30                    # to stdout
    python bench/loadgen.py --rate 20000 --duration 30 -o app.log --progress p.jsonl
    python bench/loadgen.py --rate 0 --lines 1000000 -o burst.log         # as fast as possible

`--progress PATH` appends one JSON object per write: {"t": epoch seconds just before the write,
"lines", "records", "errors"} (cumulative), and a last one with "done": true. The suite uses it
to know what was written and when (latency). It is usable as a `command` source's argv: output
goes to stdout, a closed pipe ends it quietly. Stdlib only; importable (`Generator`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import IO

TICK = 0.01  # seconds between writes when paced: small enough for smooth latency figures
FAST_CHUNK = 20_000  # lines per write when unpaced


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_VERBS = _words(
    "load sync fetch store render charge refund notify resolve publish parse validate "
    "schedule dispatch compress upload download index migrate reconcile"
)
_NOUNS = _words(
    "order invoice cart session profile report ledger payment shipment token webhook "
    "account quota coupon receipt channel snapshot catalog bucket tenant"
)
_QUALIFIERS = _words(
    "cached remote primary replica pending stale partial batched nightly external internal archived"
)
_SERVICES = ("api", "worker", "billing", "ingest", "gateway", "notifier", "search", "auth")
_ERR_WORDS = ("failed", "rejected", "aborted", "timed out", "refused", "crashed")
_EXCEPTIONS = (
    "ValueError",
    "KeyError",
    "RuntimeError",
    "TimeoutError",
    "ConnectionError",
    "PermissionError",
)
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _templates(n: int, rng: random.Random) -> list[str]:
    """n distinct message templates; `%s` slots are filled with values watcher masks."""
    seen: set[str] = set()
    out: list[str] = []
    # few constant words shared between shapes, so most templates stay apart in the miner too
    shapes = (
        "{v} {q} {n} {n2} id=%s in %sms",
        "{v} {n} on {q} {n2} shard %s ref=%s",
        "{q} {n2} could not {v} {n} after %s attempts (%s)",
        "{q} {n} {v} depth %s {n2} lag %sms",
        "{v} {n} {n2} {q} batch of %s items code %s",
    )
    while len(out) < n:
        shape = shapes[len(out) % len(shapes)]
        text = shape.format(
            v=rng.choice(_VERBS),
            n=rng.choice(_NOUNS),
            n2=rng.choice(_NOUNS),
            q=rng.choice(_QUALIFIERS),
        )
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


@dataclass
class Counts:
    """Cumulative totals of what a generator produced."""

    lines: int = 0
    records: int = 0
    errors: int = 0


@dataclass
class Generator:
    """Deterministic (per seed) record generator; `chunk()` renders whole records to text."""

    seed: int = 1
    error_rate: float = 0.05
    trace_rate: float = 0.10
    templates: int = 1000
    unique: bool = False
    unique_words: int = 5
    tag: str = "gen"
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._templates = _templates(self.templates, random.Random(1000 + self.templates))

    def chunk(self, min_lines: int, now: float | None = None) -> str:
        """Whole records totalling at least min_lines lines, newline-terminated."""
        stamp = _iso(time.time() if now is None else now)
        parts: list[str] = []
        target = self.counts.lines + min_lines
        while self.counts.lines < target:
            parts.extend(self._record(stamp))
        parts.append("")
        return "\n".join(parts)

    def _record(self, stamp: str) -> list[str]:
        rng = self.rng
        c = self.counts
        c.records += 1
        seq = c.records
        svc = _SERVICES[seq % len(_SERVICES)]
        if rng.random() >= self.error_rate:
            lines = [f"{stamp} INFO [{svc}] {self._message()} seq={seq} src={self.tag}"]
        else:
            c.errors += 1
            lines = self._error(stamp, svc, seq)
        c.lines += len(lines)
        return lines

    def _message(self) -> str:
        rng = self.rng
        template = self._templates[rng.randrange(len(self._templates))]
        return template % (rng.randrange(1, 10**6), rng.randrange(1, 5000))

    def _error(self, stamp: str, svc: str, seq: int) -> list[str]:
        rng = self.rng
        if self.unique:
            # pronounceable letter-only words: no mask (numbers, hex, ids) can fold them
            words = " ".join(self._word() for _ in range(self.unique_words))
            message = f"{words} ref={rng.getrandbits(32):08x}"
        else:
            message = f"{self._message()} {rng.choice(_ERR_WORDS)}"
        head = f"{stamp} ERROR [{svc}] {message} seq={seq} src={self.tag}"
        if rng.random() >= self.trace_rate:
            return [head]
        k = rng.randrange(len(_EXCEPTIONS))
        return [
            head,
            "Traceback (most recent call last):",
            f'  File "/app/{svc}/handlers.py", line {40 + k}, in handle_{k}',
            f"    result = process_{k}(payload)",
            f'  File "/app/{svc}/logic.py", line {120 + k}, in process_{k}',
            "    raise error",
            f"{_EXCEPTIONS[k]}: {message}",
        ]

    def _word(self) -> str:
        rng = self.rng
        return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(4))


def _iso(t: float) -> str:
    ms = int(t * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def run(
    gen: Generator,
    out: IO[bytes],
    *,
    rate: float,
    duration: float | None,
    max_lines: int | None,
    progress: IO[str] | None = None,
) -> Counts:
    """Write records to `out` until the duration or line budget is spent; return the totals.

    Paced by `rate` lines/s (0 = as fast as possible) against the lines actually written, so a
    reader that blocks the pipe for a while gets a catch-up burst, as from a real producer.
    """
    started = time.time()
    t0 = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if duration is not None and now - t0 >= duration:
                break
            want = FAST_CHUNK if rate <= 0 else int(rate * (now - t0 + TICK)) - gen.counts.lines
            if max_lines is not None:
                want = min(want, max_lines - gen.counts.lines)
                if want <= 0:
                    break
            if want > 0:
                data = gen.chunk(want).encode()
                sent = time.time()  # before the write: a full pipe's wait is part of the latency
                out.write(data)
                out.flush()
                if progress is not None:
                    _progress(progress, gen.counts, sent)
            if rate > 0:
                delay = t0 + gen.counts.lines / rate - time.monotonic()
                time.sleep(min(max(delay, 0.0), TICK))
    except BrokenPipeError:  # the reader went away (daemon stopped): not an error for us
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), out.fileno())
    if progress is not None:
        elapsed = time.time() - started
        _progress(progress, gen.counts, time.time(), done=True, elapsed=elapsed)
    return gen.counts


def _progress(fh: IO[str], c: Counts, t: float, **extra: object) -> None:
    doc = {"t": t, "lines": c.lines, "records": c.records, "errors": c.errors, **extra}
    fh.write(json.dumps(doc) + "\n")
    fh.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=float, default=20_000, help="lines/s; 0 = as fast as possible")
    ap.add_argument("--duration", type=float, default=None, help="seconds to run")
    ap.add_argument("--lines", type=int, default=None, help="stop after about this many lines")
    ap.add_argument("-o", "--output", default="-", help="file to append to; - = stdout")
    ap.add_argument("--progress", default=None, help="append progress JSON lines here")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--error-rate", type=float, default=0.05)
    ap.add_argument("--trace-rate", type=float, default=0.10)
    ap.add_argument("--templates", type=int, default=1000)
    ap.add_argument("--unique", action="store_true", help="every error message unique")
    ap.add_argument("--unique-words", type=int, default=5, help="words per --unique message")
    ap.add_argument("--tag", default="gen", help="src= value put on every record")
    args = ap.parse_args(argv)
    if args.duration is None and args.lines is None:
        ap.error("give --duration and/or --lines")
    gen = Generator(
        seed=args.seed,
        error_rate=args.error_rate,
        trace_rate=args.trace_rate,
        templates=args.templates,
        unique=args.unique,
        unique_words=args.unique_words,
        tag=args.tag,
    )
    progress = open(args.progress, "a", encoding="utf-8") if args.progress else None  # noqa: SIM115
    try:
        if args.output == "-":
            counts = run(
                gen,
                sys.stdout.buffer,
                rate=args.rate,
                duration=args.duration,
                max_lines=args.lines,
                progress=progress,
            )
        else:
            with open(args.output, "ab") as out:
                counts = run(
                    gen,
                    out,
                    rate=args.rate,
                    duration=args.duration,
                    max_lines=args.lines,
                    progress=progress,
                )
    finally:
        if progress is not None:
            progress.close()
    print(
        f"loadgen: {counts.lines} lines, {counts.records} records, {counts.errors} errors",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
