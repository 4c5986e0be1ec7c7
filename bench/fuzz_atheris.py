"""Coverage-guided fuzzing (atheris / libFuzzer) of split -> parse -> assemble -> classify -> group.

    .venv/bin/pip install atheris                       # not a test dependency
    .venv/bin/python bench/fuzz_atheris.py --seconds 60  # prints iterations and findings

Each input is a byte stream: split into capped lines as a file source does, fed through the
synchronous Pipeline (two user rules, 8 live groups so eviction runs too) and force-flushed. A
finding is an exception that escapes (with its input saved under --out), an input whose lines
are not all counted, or an input slower than --slow seconds (a ReDoS candidate). The run stops
itself after --seconds and prints a summary; it does not stop at the first finding.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import traceback
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["watcher"]):
    from watcher.classify import Rule, compile_rule
    from watcher.group.table import GroupTable
    from watcher.pipeline import Pipeline
    from watcher.sources.lines import LineSplitter, raw_lines

MAX_LINE_BYTES = 64 * 1024
RULES = (
    Rule(match=compile_rule(r"(?i)stripe|(a+)+$"), category="external_service_error"),
    Rule(match=compile_rule(r"healthcheck"), ignore=True),
)
SEEDS = (
    b"2024-01-01 12:00:00,123 ERROR [main] c.f.Bar - failed\n",
    b'Traceback (most recent call last):\n  File "/app/a.py", line 3, in f\nValueError: bad\n',
    b"java.lang.IllegalStateException: x\n\tat com.a.B.c(B.java:1)\nCaused by: y\n",
    b'{"level":"error","msg":"boom","err":{"stack":"Error: e\\n    at f (/a.js:1:1)"}}\n',
    b'level=error msg="db down" host=10.0.0.1\npanic: boom\ngoroutine 1 [running]:\n',
)


class Run:
    """Counters and findings of one fuzzing run."""

    def __init__(self, seconds: float, slow: float, out: Path) -> None:
        self.deadline = time.monotonic() + seconds
        self.started = time.monotonic()
        self.slow, self.out = slow, out
        self.iterations = 0
        self.lines = 0
        self.crashes: dict[str, int] = {}
        self.slowest = (0.0, b"")
        self.miscounts = 0

    def one(self, data: bytes) -> None:
        """Fuzz target: one input through the pipeline; findings are recorded, not raised."""
        self.iterations += 1
        start = time.process_time()
        try:
            self._check(data)
        except Exception as exc:  # a finding: keep fuzzing, remember where it came from
            self._crash(exc, data)
        took = time.process_time() - start
        if took > self.slowest[0]:
            self.slowest = (took, data)
        if time.monotonic() >= self.deadline:
            self.report()
            sys.stdout.flush()
            os._exit(0)  # libFuzzer has no clean stop: leave once the budget is spent

    def _check(self, data: bytes) -> None:
        splitter = LineSplitter(MAX_LINE_BYTES)
        splitter.feed(data)
        lines = raw_lines(splitter.take(1 << 30), "fuzz", "s", 1, lambda end, _n: end)
        lines += raw_lines(splitter.flush(), "fuzz", "s", len(lines) + 1, lambda end, _n: end)
        pipeline = Pipeline(GroupTable(max_groups=8), rules=RULES)
        for i in range(0, len(lines), 16):
            pipeline.feed(lines[i : i + 16])
        pipeline.flush(force=True)
        self.lines += len(lines)
        expected = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        if pipeline.stats.lines != expected or len(lines) != expected:
            self.miscounts += 1
            self._save("miscount", data)

    def _crash(self, exc: Exception, data: bytes) -> None:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        key = f"{type(exc).__name__} at {where.filename}:{where.lineno}"
        if key not in self.crashes:
            self._save("crash", data)
            print(f"FINDING: {key}: {exc!r}"[:300], file=sys.stderr)
        self.crashes[key] = self.crashes.get(key, 0) + 1

    def _save(self, kind: str, data: bytes) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        name = f"{kind}-{hashlib.sha1(data).hexdigest()[:12]}"
        (self.out / name).write_bytes(data)

    def report(self) -> None:
        """The summary: iterations, lines, findings."""
        elapsed = time.monotonic() - self.started
        took, data = self.slowest
        if took > self.slow:
            self._save("slow", data)
        print("\n## atheris: split -> parse -> assemble -> classify -> group\n")
        print("| figure | value |\n|---|---|")
        print(f"| wall time | {elapsed:.0f} s |")
        print(f"| iterations | {self.iterations:,} ({self.iterations / elapsed:,.0f}/s) |")
        print(f"| lines fed | {self.lines:,} |")
        print(f"| exceptions escaping (distinct) | {len(self.crashes)} |")
        print(f"| inputs with lines not counted | {self.miscounts} |")
        print(f"| slowest input | {took * 1e3:.1f} ms CPU for {len(data):,} bytes |")
        for key, count in self.crashes.items():
            print(f"| finding | {key} (x{count}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--slow", type=float, default=1.0, help="CPU seconds that make a finding")
    parser.add_argument("--max-len", type=int, default=1 << 16, help="largest input in bytes")
    parser.add_argument("--out", type=Path, default=Path("/tmp/watcher-atheris"))
    args, rest = parser.parse_known_args()
    corpus = args.out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(SEEDS):
        (corpus / f"seed-{i}").write_bytes(seed)
    run = Run(args.seconds, args.slow, args.out)
    argv = [sys.argv[0], f"-max_len={args.max_len}", "-rss_limit_mb=4096", *rest, str(corpus)]
    atheris.Setup(argv, run.one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
