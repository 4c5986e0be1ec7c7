"""Throughput of parse + multi-line assembly: Assembler.feed_batch over batches of RawLines.

    .venv/bin/python bench/parse_throughput.py                 # 1M lines, batches of 1,000
    .venv/bin/python bench/parse_throughput.py --lines 200000 --profile

Lines are generated (seeded) before timing: JSON (structlog, pino), logfmt and plain (Python
logging, log4j, nginx) across several streams, ~5 % errors of which about a third carry a
multi-line Python, Java, Node, Go or Ruby trace. Only feed_batch/flush are timed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import random
import resource
import time

from watcher.model import RawLine
from watcher.parse.multiline import Assembler

PATHS = ("/v1/items", "/v1/users/{id}", "/health", "/v1/orders/{id}/pay", "/v1/search")
WORDS = ("cache", "db", "queue", "payment", "user", "session", "upstream", "worker", "token")


def _iso(rng: random.Random, base: float) -> str:
    t = base + rng.random() * 86400
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{rng.randrange(10**6):06d}Z"


def _structlog(rng: random.Random, ts: str, level: str, msg: str) -> str:
    record = {"event": msg, "level": level, "timestamp": ts, "logger": "app.api"}
    record["path"] = rng.choice(PATHS).replace("{id}", str(rng.randrange(10**6)))
    record["status"] = 500 if level == "error" else 200
    record["duration_ms"] = round(rng.random() * 300, 2)
    return json.dumps(record)


def _pino(rng: random.Random, ts_ms: int, level: str, msg: str) -> str:
    number = {"info": 30, "warning": 40, "error": 50, "debug": 20}[level]
    record = {"level": number, "time": ts_ms, "pid": 7, "hostname": "web-1", "msg": msg}
    record["reqId"] = f"req-{rng.randrange(16**8):08x}"
    return json.dumps(record)


def _logfmt(rng: random.Random, ts: str, level: str, msg: str) -> str:
    return (
        f'ts={ts} level={level} caller=server.go:{rng.randrange(400)} msg="{msg}" '
        f"user_id={rng.randrange(10**5)} latency={rng.random():.3f}s"
    )


def _plain(rng: random.Random, ts: str, level: str, msg: str) -> str:
    stamp = ts[:10] + " " + ts[11:19] + "," + ts[20:23]
    layout = rng.randrange(3)
    if layout == 0:
        return (
            f"{stamp} {level.upper():5} [main] com.acme.{rng.choice(WORDS).title()}Service - {msg}"
        )
    if layout == 1:
        return f"{level.upper()}:app.{rng.choice(WORDS)}:{msg}"
    return f"[{stamp}] {level.upper()} {msg}"


def _message(rng: random.Random, level: str) -> str:
    word = rng.choice(WORDS)
    if level == "error":
        status = rng.choice((500, 502, 503))
        return f"{word} request failed after {rng.randrange(1, 5)} retries: status {status}"
    return f"{word} handled {rng.randrange(1000)} items in {rng.randrange(1, 900)}ms"


def _python_trace(rng: random.Random) -> list[str]:
    lines = ["Traceback (most recent call last):"]
    for depth in range(rng.randrange(3, 9)):
        lines += [f'  File "/app/svc/mod{depth}.py", line {rng.randrange(1, 500)}, in fn{depth}']
        lines += [f"    result = call{depth}(arg)"]
    lines.append(f"ValueError: invalid literal for int() with base 10: '{rng.randrange(999)}'")
    if rng.random() < 0.3:
        lines += ["", "During handling of the above exception, another exception occurred:", ""]
        lines += ["Traceback (most recent call last):", '  File "/app/svc/api.py", line 9, in h']
        lines += ["    raise RuntimeError('wrapped')", "RuntimeError: wrapped"]
    return lines


def _java_trace(rng: random.Random) -> list[str]:
    lines = ["java.lang.IllegalStateException: pool exhausted"]
    lines += [
        f"\tat com.acme.svc.Layer{i}.call(Layer{i}.java:{rng.randrange(900)})" for i in range(8)
    ]
    lines += ["\tat java.base/java.lang.Thread.run(Thread.java:829)"]
    lines += [
        "Caused by: java.sql.SQLException: timeout",
        "\tat org.postgresql.Driver.x(Driver.java:1)",
    ]
    return [*lines, "\t... 9 more"]


def _node_trace(rng: random.Random) -> list[str]:
    lines = ["TypeError: Cannot read properties of undefined (reading 'id')"]
    lines += [
        f"    at handler{i} (/app/src/route{i}.js:{rng.randrange(300)}:{rng.randrange(40)})"
        for i in range(6)
    ]
    return [
        *lines,
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
    ]


def _go_trace(rng: random.Random) -> list[str]:
    lines = [
        "panic: runtime error: index out of range [5] with length 3",
        "",
        "goroutine 1 [running]:",
    ]
    for i in range(5):
        lines += [f"main.step{i}(0xc000{i:04x})", f"\t/app/step{i}.go:{rng.randrange(200)} +0x1d"]
    return [*lines, "exit status 2"]


def _ruby_trace(rng: random.Random) -> list[str]:
    lines = [f"app/models/order.rb:{rng.randrange(90)}:in 'charge': card declined (PaymentError)"]
    return lines + [f"\tfrom app/services/s{i}.rb:{rng.randrange(90)}:in 'run'" for i in range(5)]


TRACES = (_python_trace, _java_trace, _node_trace, _go_trace, _ruby_trace)
FORMATS = (_structlog, _structlog, _pino, _logfmt, _plain, _plain)


def generate(count: int, seed: int, streams: int) -> list[list[str]]:
    """`streams` lists of lines, `count` lines in all."""
    rng = random.Random(seed)
    base = 1_714_521_600.0
    out: list[list[str]] = [[] for _ in range(streams)]
    total = 0
    while total < count:
        lines = out[rng.randrange(streams)]
        roll = rng.random()
        level = "error" if roll < 0.05 else "warning" if roll < 0.08 else "info"
        ts = _iso(rng, base)
        fmt = rng.choice(FORMATS)
        if fmt is _pino:
            lines.append(_pino(rng, int(base * 1000) + rng.randrange(86_400_000), level, "m"))
        else:
            lines.append(fmt(rng, ts, level, _message(rng, level)))
        total += 1
        if level == "error" and rng.random() < 0.35 and fmt is _plain:
            trace = rng.choice(TRACES)(rng)
            lines.extend(trace)
            total += len(trace)
    return out


def batches(per_stream: list[list[str]], size: int, seed: int) -> list[list[RawLine]]:
    """Interleave the streams in chunks, then cut into batches of `size` RawLines."""
    rng = random.Random(seed)
    positions = [0] * len(per_stream)
    flat: list[RawLine] = []
    live = [i for i, lines in enumerate(per_stream) if lines]
    while live:
        index = rng.choice(live)
        lines, start = per_stream[index], positions[index]
        chunk = lines[start : start + rng.randrange(1, 60)]
        stream = f"pod-{index}"
        for offset, text in enumerate(chunk, start + 1):
            flat.append(RawLine(text, "bench", stream, offset, offset))
        positions[index] = start + len(chunk)
        if positions[index] >= len(lines):
            live.remove(index)
    return [flat[i : i + size] for i in range(0, len(flat), size)]


def run(work: list[list[RawLine]], errors_only: bool = False) -> tuple[float, int, int]:
    assembler = Assembler(errors_only=errors_only)
    events = errors = 0
    started = time.perf_counter()
    for batch in work:
        for event in assembler.feed_batch(batch):
            events += 1
            errors += event.is_error
    for event in assembler.flush(force=True):
        events += 1
        errors += event.is_error
    events += assembler.take_skipped()  # errors_only: records counted but never built
    return time.perf_counter() - started, events, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="print the top cProfile entries")
    parser.add_argument(
        "--errors-only",
        action="store_true",
        help="as the pipeline runs it: only records that may be errors are parsed",
    )
    args = parser.parse_args()

    work = batches(generate(args.lines, args.seed, args.streams), args.batch, args.seed)
    lines = sum(len(batch) for batch in work)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gc.collect()
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, work, args.errors_only)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
        return
    elapsed, events, errors = run(work, args.errors_only)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"lines        {lines:>12,}")
    print(f"events       {events:>12,}  ({errors:,} errors)")
    print(f"elapsed      {elapsed:>12.3f} s")
    print(f"throughput   {lines / elapsed:>12,.0f} lines/s")
    print(
        f"peak RSS     {rss_after / 1024:>12,.1f} MiB  (input alone: {rss_before / 1024:,.1f} MiB)"
    )


if __name__ == "__main__":
    main()
