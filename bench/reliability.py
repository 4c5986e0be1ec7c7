#!/usr/bin/env python3
"""Reliability suite, Load section: does watcher keep up, lose nothing and stay bounded?

Scenarios (each prints one or more rows of the final table):

  sustained    the real `watcher run` (a subprocess, HTTP on a free loopback port) with a `file`
               source that bench/loadgen.py appends to and a `command` source running loadgen to
               stdout, both at --rate lines/s (default 20k each) for --duration seconds (30; --long
               300). Lines counted = watcher_lines_total{source} scraped from /metrics once the
               writers stopped and the counts stopped moving; lost = written - counted. Latency
               line -> metric from /metrics polled every 50 ms (see bench/README-reliability.md).
               RSS of the daemon sampled every second: flat when end <= 1.2 x the value at 20 %.
  burst        1M lines written first, then `watcher replay` as fast as it goes: lines/s (wall and
               per CPU second), peak RSS. Back-pressure: four file sources of error-heavy input
               (fast producers, a slow consumer) replayed with [watcher] queue_size 4, 64 and
               1024 at two input sizes: peak RSS must not grow with the input while the queue
               bounds what is buffered.
  cardinality  N unique error messages (default 200k, --long 1M) through `watcher run` with a
               state DB: peak RSS under 300 MB with the default max_groups, groups evicted LRU to
               the store (rows of the SQLite `groups` table, watcher_groups_evicted_total), and the
               label sets of every /metrics family the same at 1 % of the input and at the end.
               --long adds a run of 200k ~600-byte unique lines (--wide-cardinality N).

    .venv/bin/python bench/reliability.py                 # quick (~3 min on 2 cores)
    .venv/bin/python bench/reliability.py --long          # 5-minute soak, 1M cardinality
    .venv/bin/python bench/reliability.py --smoke --json out.json   # tiny, < 15 s (the test)
    .venv/bin/python bench/reliability.py --only sustained --rate 5000 --duration 10
    .venv/bin/python bench/reliability.py --faults        # issue 13: rotation, descriptors, state

Exit code 0 when every verdict is PASS (or INFO), 1 otherwise.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from watcher.sources.lines import MAX_BATCH  # lines per batch at most: the queue's unit

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "loadgen.py"
RSS_CAP_MB = 300.0  # the cardinality promise: memory stays under this with default max_groups
FLAT_RATIO = 1.2  # RSS is flat when the end is at most this times the value at 20 % of the run
# The miner's bounded caches take ~25 s of this load to fill (then cycle): a shorter run measures
# that warm-up, not a leak, so its RSS figure is printed but only a run this long is judged on it.
FLAT_MIN_DURATION = 120.0
POLL = 0.05  # seconds between /metrics scrapes while measuring latency
PEAK_EVERY = 0.1  # seconds between reads of a child's peak RSS
PRODUCERS = 4  # file sources racing one pipeline in the back-pressure check
WIDE_WORDS = 60  # words per message of the long-line cardinality run (~600-byte lines)
# Families labelled by classification only (9 categories x 5 severities): which of those label
# sets appear depends on what the messages say, but never exceeds this.
CLASS_BOUNDED = {"watcher_errors": 45, "watcher_errors_created": 45}


@dataclass
class Sizes:
    """How big each scenario is; --smoke and --long pick other presets."""

    rate: float = 20_000
    duration: float = 30
    burst_lines: int = 1_000_000
    pressure_lines: tuple[int, int] = (200_000, 800_000)
    queue_sizes: tuple[int, ...] = (4, 64, 1024)
    cardinality: int = 200_000
    multiline_timeout: float | None = None  # None: watcher's default (2 s)
    max_groups: int | None = None  # cardinality; None: watcher's default (10,000)
    unique_words: int = 5  # cardinality: words per unique message (5: ~110-byte lines)
    wide_cardinality: int = 0  # a second cardinality run with ~600-byte lines (0: none)


QUICK = Sizes()
LONG = Sizes(
    duration=300,
    pressure_lines=(200_000, 2_000_000),
    cardinality=1_000_000,
    wide_cardinality=200_000,
)
SMOKE = Sizes(
    rate=2_000,
    duration=2,
    burst_lines=20_000,
    pressure_lines=(5_000, 20_000),
    queue_sizes=(4, 64),
    cardinality=5_000,
    multiline_timeout=0.3,
    max_groups=1_000,
)


@dataclass
class Row:
    """One line of the final table (and of the JSON dump, with `details`)."""

    scenario: str
    lines_in: int
    counted: int
    duplicates: int
    lost: int
    peak_rss_mb: float
    extra: str
    verdict: str
    details: dict[str, Any] = field(default_factory=dict)


# -- processes and measurements -----------------------------------------------------------------


_CHILDREN: list[subprocess.Popen[bytes]] = []


def spawn(argv: list[str], cwd: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child in `cwd` (so `-m watcher` imports PYTHONPATH's copy, not the caller's
    working directory); remembered so an interrupted run still stops it."""
    proc = subprocess.Popen(argv, cwd=cwd, **kwargs)
    _CHILDREN.append(proc)
    return proc


def stop_children() -> None:
    """Kill whatever children are still running (an interrupted or failed scenario)."""
    for proc in _CHILDREN:
        if proc.returncode is None and proc.poll() is None:
            proc.kill()
            proc.wait()
    _CHILDREN.clear()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def watcher_argv() -> list[str]:
    # the interpreter running this script: its venv, and PYTHONPATH overlays, apply to watcher too
    return [sys.executable, "-m", "watcher"]


def vm_status_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of the process in MB, or None once it is gone.

    VmHWM is the peak RSS of the process's current image. The kernel's ru_maxrss is not used:
    across fork + exec it keeps the RSS the child had before exec, i.e. the parent's (this
    script's), which would be reported as watcher's peak.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            fields = dict(line.split(":", 1) for line in fh if line.startswith(("VmRSS", "VmHWM")))
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


class RssSampler:
    """Samples a process's RSS in a thread: a series every `interval` s and the running peak.

    The peak (VmHWM) is read every PEAK_EVERY seconds so that little happens unseen before exit.
    """

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        self.series: list[tuple[float, float]] = []  # (seconds since start, VmRSS MB)
        self.hwm = 0.0
        self._stop = threading.Event()
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = 0.0
        while not self._stop.is_set():
            got = vm_status_mb(self.pid)
            if got is None:
                return
            rss, hwm = got
            self.hwm = max(self.hwm, hwm, rss)
            now = time.monotonic() - self.t0
            if now >= next_at:
                self.series.append((now, rss))
                next_at = now + self.interval
            self._stop.wait(PEAK_EVERY)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self) -> float:
        return max(self.hwm, max((mb for _, mb in self.series), default=0.0))

    def at(self, since: float) -> float:
        """The first sample taken at or after `since` seconds (the last one if none is)."""
        for t, mb in self.series:
            if t >= since:
                return mb
        return self.series[-1][1] if self.series else 0.0


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, float]:
    """Reap `proc`: (exit code, CPU seconds user+system)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse_metrics(text: str) -> tuple[Samples, dict[str, int]]:
    """Sample values by name and label set, and the number of label sets per metric family."""
    samples: Samples = {}
    label_sets: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        sets = set()
        for s in family.samples:
            key = tuple(sorted(s.labels.items()))
            samples.setdefault(s.name, {})[key] = s.value
            sets.add((s.name, key))
        label_sets[family.name] = len(sets)
    return samples, label_sets


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over the label sets that contain `labels`."""
    want = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if want <= set(k))


def scrape(port: int) -> tuple[Samples, dict[str, int]] | None:
    status, text = http_get(port, "/metrics")
    return parse_metrics(text) if status == 200 else None


def toml_str(s: str | Path) -> str:
    return json.dumps(str(s))  # a JSON string is a valid TOML basic string


def loadgen_argv(*args: object) -> list[str]:
    return [sys.executable, str(LOADGEN), *(str(a) for a in args)]


def write_lines(path: Path, lines: int, *args: object) -> None:
    """Write (append) about `lines` lines of loadgen output as fast as possible."""
    cmd = loadgen_argv("--rate", 0, "--lines", lines, "-o", path, *args)
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)


def read_progress(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the daemon under test --------------------------------------------------------------------


class Daemon:
    """`watcher run` in a subprocess with a config in `tmp`; stderr kept in daemon.log."""

    def __init__(self, tmp: Path, sources: str, *, extra: str = "", sizes: Sizes) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.state = tmp / "state.db"
        parse = ""
        if sizes.multiline_timeout is not None:
            parse = f"[parse]\nmultiline_timeout = {sizes.multiline_timeout}\n"
        self.config = tmp / "watcher.toml"
        self.config.write_text(
            f"[watcher]\nstate_path = {toml_str(self.state)}\n{extra}"
            f'[http]\nlisten = "127.0.0.1:{self.port}"\n{parse}{sources}'
        )
        self.log = tmp / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.rss: RssSampler | None = None

    def start(self, rss_interval: float = 1.0) -> None:
        argv = [*watcher_argv(), "run", "-c", str(self.config), "--log-level", "warning"]
        with self.log.open("wb") as err:
            self.proc = spawn(argv, self.tmp, stdout=subprocess.DEVNULL, stderr=err)
        self.rss = RssSampler(self.proc.pid, rss_interval)
        deadline = time.monotonic() + 60
        while http_get(self.port, "/health/ready")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"watcher run did not become ready:\n{self.tail()}")
            time.sleep(0.1)

    def stop(self) -> tuple[int, float, float]:
        """SIGTERM, then reap: (exit code, peak RSS MB, CPU seconds)."""
        assert self.proc is not None and self.rss is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code, cpu = wait_exit(self.proc, timeout=60)
        self.rss.stop()
        return code, self.rss.peak(), cpu

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def settle(
    port: int,
    expected: dict[str, int],
    *,
    events: dict[str, int] | None = None,
    quiet_for: float = 5.0,
    timeout: float = 180.0,
) -> Samples | None:
    """Poll /metrics until every source counted what was written, or the counts stopped moving.

    `events`: also wait for these event counts (a trailing multi-line record is closed only by
    the assembler's timeout).
    """
    deadline = time.monotonic() + timeout
    last: tuple[float, ...] | None = None
    since = time.monotonic()
    samples = None
    want = [("watcher_lines_total", s, n) for s, n in expected.items()]
    want += [("watcher_events_total", s, n) for s, n in (events or {}).items()]
    while time.monotonic() < deadline:
        got = scrape(port)
        if got is None:
            return samples
        samples = got[0]
        counts = tuple(value(samples, name, source=s) for name, s, _ in want)
        if all(c >= n for c, (_, _, n) in zip(counts, want, strict=True)):
            return samples
        if counts != last:
            last, since = counts, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return samples
        time.sleep(0.2)
    return samples


# -- scenario 1: sustained ----------------------------------------------------------------------


class Poller:
    """Scrapes /metrics every POLL seconds in a thread; keeps (response time, counters) per poll."""

    def __init__(self, port: int, sources: list[str]) -> None:
        self.port = port
        self.sources = sources
        self.polls: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            got = scrape(self.port)
            done = time.time()
            if got is not None:
                s = got[0]
                row = {"groups": value(s, "watcher_active_groups")}
                for src in self.sources:
                    row[f"lines:{src}"] = value(s, "watcher_lines_total", source=src)
                    row[f"events:{src}"] = value(s, "watcher_events_total", source=src)
                self.polls.append((done, row))
            self._stop.wait(POLL)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, key: str, when: float) -> float:
        """The value of `key` in the first poll answered at or after `when` (epoch seconds)."""
        for t, row in self.polls:
            if t >= when:
                return row[key]
        return self.polls[-1][1][key] if self.polls else 0.0

    def latencies(self, key: str, progress: list[dict[str, Any]], field_: str) -> list[float]:
        """Per write: first poll whose counter reached the write's cumulative total, minus its time.

        Counters only grow and a source's lines are processed in order, so the first poll that
        shows `total` is the first moment the metric reflected the write's last line: an upper
        bound, at most one poll interval (+ the scrape) late.
        """
        times = [t for t, _ in self.polls]
        counts = [row[key] for _, row in self.polls]
        out = []
        for entry in progress:
            if entry.get("done"):
                continue
            i = bisect.bisect_left(counts, entry[field_])
            if i < len(counts):
                # a poll answered before the write cannot show it; skip ahead (clock granularity)
                j = bisect.bisect_left(times, entry["t"], lo=i)
                out.append(times[max(i, j)] - entry["t"] if max(i, j) < len(times) else None)
        return [x for x in out if x is not None]


def sustained(sizes: Sizes, tmp: Path) -> list[Row]:
    """File + command sources at `rate` lines/s each through `watcher run`."""
    log = tmp / "app.log"
    log.touch()
    p_file, p_cmd = tmp / "progress-file.jsonl", tmp / "progress-cmd.jsonl"
    cmd_args = f"--rate {sizes.rate} --duration {sizes.duration} --seed 2 --tag cmd".split()
    cmd_argv = loadgen_argv(*cmd_args, "--progress", p_cmd)
    sources = (
        f'[[sources]]\ntype = "file"\nname = "file"\npath = {toml_str(log)}\n'
        'read_from = "beginning"\n'
        f'[[sources]]\ntype = "command"\nname = "cmd"\nargv = {json.dumps(cmd_argv)}\n'
        "restart = false\nmerge_stderr = false\n"
    )
    daemon = Daemon(tmp, sources, sizes=sizes)
    daemon.start()
    t_start, wall_start = time.monotonic(), time.time()
    poller = Poller(daemon.port, ["file", "cmd"])
    file_args = f"--rate {sizes.rate} --duration {sizes.duration} --seed 1 --tag file".split()
    writer = spawn(
        loadgen_argv(*file_args, "-o", log, "--progress", p_file), tmp, stderr=subprocess.DEVNULL
    )
    writer.wait()
    _wait_done(p_cmd, timeout=sizes.duration + 30)
    t_written = time.monotonic()
    prog = {"file": read_progress(p_file), "cmd": read_progress(p_cmd)}
    totals = {src: _final(p) for src, p in prog.items()}
    final = (
        settle(
            daemon.port,
            {src: t["lines"] for src, t in totals.items()},
            events={src: t["records"] for src, t in totals.items()},
        )
        or {}
    )
    drain = time.monotonic() - t_written
    poller.stop()
    assert daemon.rss is not None
    rss_mid = daemon.rss.at(0.2 * (t_written - t_start) + (t_start - daemon.rss.t0))
    rss_end = daemon.rss.series[-1][1] if daemon.rss.series else 0.0
    # RSS follows the live groups until they reach max_groups: show both
    groups_mid = poller.at("groups", wall_start + 0.2 * (t_written - t_start))
    groups_end = poller.polls[-1][1]["groups"] if poller.polls else 0.0
    code, peak, cpu = daemon.stop()
    errors_counted = value(final, "watcher_errors_total")
    errors_written = sum(t["errors"] for t in totals.values())
    flat = rss_end <= FLAT_RATIO * rss_mid
    judged = sizes.duration >= FLAT_MIN_DURATION
    flat_word = "flat" if flat else "GROWING" if judged else "not flat (warm-up; judged by --long)"
    rows = []
    for src, total in totals.items():
        counted = int(value(final, "watcher_lines_total", source=src))
        events = int(value(final, "watcher_events_total", source=src))
        dups = int(value(final, "watcher_duplicate_lines_total", source=src))
        lat_l = poller.latencies(f"lines:{src}", prog[src], "lines")
        lat_e = poller.latencies(f"events:{src}", prog[src], "records")
        rate = total["lines"] / max(total.get("elapsed", sizes.duration), 1e-9)
        ok = (
            counted == total["lines"]
            and dups == 0
            and events == total["records"]
            and code == 0
            and (flat or not judged)
            and rate >= 0.95 * sizes.rate
        )
        rows.append(
            Row(
                scenario=f"sustained {src}",
                lines_in=total["lines"],
                counted=counted,
                duplicates=dups,
                lost=total["lines"] - counted,
                peak_rss_mb=round(peak, 1),
                extra=(
                    f"{rate / 1000:.1f}k l/s; line->metric p50/p99 "
                    f"{_ms(percentile(lat_l, 0.5))}/{_ms(percentile(lat_l, 0.99))} ms, "
                    f"event {_ms(percentile(lat_e, 0.5))}/{_ms(percentile(lat_e, 0.99))} ms; "
                    f"RSS {rss_mid:.0f}->{rss_end:.0f} MB {flat_word} "
                    f"(groups {groups_mid:,.0f}->{groups_end:,.0f})"
                ),
                verdict="PASS" if ok else "FAIL",
                details={
                    "rate_target": sizes.rate,
                    "rate_achieved": rate,
                    "duration": sizes.duration,
                    "records_written": total["records"],
                    "events_counted": events,
                    "errors_written_all_sources": errors_written,
                    "errors_counted_all_sources": errors_counted,
                    "latency_lines_s": _summary(lat_l),
                    "latency_events_s": _summary(lat_e),
                    "rss_at_20pct_mb": rss_mid,
                    "rss_end_mb": rss_end,
                    "active_groups_at_20pct": groups_mid,
                    "active_groups_end": groups_end,
                    "rss_start_mb": daemon.rss.series[0][1] if daemon.rss.series else None,
                    "rss_series_mb": _downsample(daemon.rss.series),
                    "drain_s": drain,
                    "daemon_cpu_s": cpu,
                    "daemon_exit": code,
                    "daemon_log_tail": daemon.tail() if code else "",
                    "polls": len(poller.polls),
                },
            )
        )
    return rows


def _wait_done(progress: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = read_progress(progress)
        if entries and entries[-1].get("done"):
            return
        time.sleep(0.2)


def _final(progress: list[dict[str, Any]]) -> dict[str, Any]:
    if not progress:
        return {"lines": 0, "records": 0, "errors": 0, "elapsed": 0.0}
    return progress[-1]


def _ms(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1000:.0f}"


def _summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p90": percentile(values, 0.9),
        "p99": percentile(values, 0.99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def _downsample(series: list[tuple[float, float]], n: int = 60) -> list[tuple[float, float]]:
    step = max(1, len(series) // n)
    return [(round(t, 1), round(mb, 1)) for t, mb in series[::step]]


# -- scenario 2: burst and back-pressure ------------------------------------------------------


ACCOUNTING = {
    "lines": "Lines read",
    "duplicates": "Duplicate lines",
    "events": "Events",
    "errors": "Error events",
}


def parse_accounting(report: str) -> dict[str, int]:
    """The counts of the report's Accounting table."""
    out = {}
    for key, label in ACCOUNTING.items():
        m = re.search(rf"^\| {re.escape(label)}[^|]*\| (\d+) \|$", report, re.M)
        if m:
            out[key] = int(m.group(1))
    return out


@dataclass
class Replay:
    """One `watcher replay` run, measured."""

    code: int
    wall: float
    cpu: float
    peak_mb: float
    counts: dict[str, int]
    log_tail: str


def replay(tmp: Path, *paths: Path, queue_size: int | None = None) -> Replay:
    """`watcher replay paths` (config with queue_size if given); wall, CPU, peak RSS, accounting."""
    files = [str(p) for p in paths]
    argv = [*watcher_argv(), "replay", *files, "--no-progress", "--log-level", "warning"]
    if queue_size is not None:
        cfg = tmp / f"replay-q{queue_size}.toml"
        cfg.write_text(f"[watcher]\nqueue_size = {queue_size}\n")
        argv += ["-c", str(cfg)]
    out, err = tmp / "replay.out", tmp / "replay.err"
    t0 = time.monotonic()
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = spawn(argv, tmp, stdout=fo, stderr=fe)
    rss = RssSampler(proc.pid)
    code, cpu = wait_exit(proc, timeout=1800)
    wall = time.monotonic() - t0
    rss.stop()
    peak = rss.peak()
    tail = "\n".join(err.read_text(errors="replace").splitlines()[-10:])
    return Replay(code, wall, cpu, peak, parse_accounting(out.read_text(errors="replace")), tail)


def burst(sizes: Sizes, tmp: Path) -> list[Row]:
    """1M lines replayed as fast as possible; then the back-pressure grid."""
    path = tmp / "burst.log"
    write_lines(path, sizes.burst_lines, "--seed", 3)
    written = _count_lines(path)
    r = replay(tmp, path)
    counted = r.counts.get("lines", 0)
    rows = [
        Row(
            scenario="burst replay",
            lines_in=written,
            counted=counted,
            duplicates=r.counts.get("duplicates", 0),
            lost=written - counted,
            peak_rss_mb=round(r.peak_mb, 1),
            extra=(
                f"{written / r.wall / 1000:.0f}k l/s wall, {written / max(r.cpu, 1e-9) / 1000:.0f}k"
                f" l/CPU-s ({r.wall:.1f} s, process start included)"
                if r.code == 0
                else f"watcher replay exited {r.code}: {r.log_tail.splitlines()[-1:]}"
            ),
            verdict="PASS" if r.code == 0 and counted == written else "FAIL",
            details={**asdict(r), "written": written},
        )
    ]
    return rows + back_pressure(sizes, tmp)


def back_pressure(sizes: Sizes, tmp: Path) -> list[Row]:
    """A slow consumer behind fast producers, at two input sizes x each queue size: peak RSS.

    One file source cannot outrun the pipeline: both run on one event loop, and the reader gets
    a turn only between two batches of the consumer. PRODUCERS file sources can: each puts a
    batch per turn, so the queue fills and its bound is what holds memory.
    """
    small, large = sizes.pressure_lines
    inputs: dict[int, tuple[list[Path], int]] = {}
    for n in (small, large):
        first = tmp / f"pressure-{n}-0.log"
        # half the records are errors, each with a traceback: the pipeline is the bottleneck.
        # Traces group by their frames (48 groups), so the pipeline's own state stops growing
        # early: any growth with the input size would be buffering.
        per_file = n // PRODUCERS
        write_lines(first, per_file, "--seed", 4, "--error-rate", 0.5, "--trace-rate", 1.0)
        paths = [first]
        for k in range(1, PRODUCERS):
            paths.append(tmp / f"pressure-{n}-{k}.log")
            shutil.copyfile(first, paths[-1])
        inputs[n] = (paths, PRODUCERS * _count_lines(first))
    rows = []
    for q in sizes.queue_sizes:
        runs = {n: replay(tmp, *paths, queue_size=q) for n, (paths, _) in inputs.items()}
        lines_in = sum(w for _, w in inputs.values())
        counted = sum(r.counts.get("lines", 0) for r in runs.values())
        a, b = runs[small], runs[large]
        growth = b.peak_mb / max(a.peak_mb, 1e-9)
        bounded = b.peak_mb <= 1.15 * a.peak_mb + 10
        capacity = q * MAX_BATCH
        if bounded:
            verdict = "PASS"
        elif capacity >= small:
            verdict = "INFO"  # the queue can hold the small input whole: growth is the bound
        else:
            verdict = "FAIL"
        ok_counts = all(r.code == 0 for r in runs.values()) and counted == lines_in
        rows.append(
            Row(
                scenario=f"back-pressure q={q}",
                lines_in=lines_in,
                counted=counted,
                duplicates=sum(r.counts.get("duplicates", 0) for r in runs.values()),
                lost=lines_in - counted,
                peak_rss_mb=round(max(a.peak_mb, b.peak_mb), 1),
                extra=(
                    f"{PRODUCERS} sources; peak RSS {small // 1000}k lines {a.peak_mb:.0f} MB -> "
                    f"{large // 1000}k lines {b.peak_mb:.0f} MB (x{growth:.2f}); queue holds "
                    f"<= {capacity:,} lines"
                ),
                verdict=verdict if ok_counts else "FAIL",
                details={
                    "queue_size": q,
                    "runs": {str(n): asdict(r) for n, r in runs.items()},
                    "lines_per_s": {
                        str(n): inputs[n][1] / r.wall for n, r in runs.items() if r.wall
                    },
                },
            )
        )
    return rows


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            count += chunk.count(b"\n")
    return count


# -- scenario 3: cardinality --------------------------------------------------------------------


def cardinality(sizes: Sizes, tmp: Path) -> list[Row]:
    """N unique error messages through `watcher run` with a state DB; --long adds long lines."""
    rows = []
    runs = [("cardinality", sizes.cardinality, sizes.unique_words)]
    if sizes.wide_cardinality:
        runs.append(("cardinality 600B lines", sizes.wide_cardinality, WIDE_WORDS))
    for k, (name, n, words) in enumerate(runs):
        sub = tmp / str(k)
        sub.mkdir()
        rows.append(_cardinality(sizes, sub, name, n, words))
    return rows


def _cardinality(sizes: Sizes, tmp: Path, name: str, n: int, words: int) -> Row:
    warm_n = max(100, n // 100)
    data = tmp / "unique.log"
    write_lines(
        data, n, "--seed", 5, "--unique", "--unique-words", words, "--error-rate", 1,
        "--trace-rate", 0,
    )  # fmt: skip
    written = _count_lines(data)
    log = tmp / "cardinality.log"
    log.touch()
    sources = (
        f'[[sources]]\ntype = "file"\nname = "file"\npath = {toml_str(log)}\n'
        'read_from = "beginning"\n'
    )
    grouping = f"[grouping]\nmax_groups = {sizes.max_groups}\n" if sizes.max_groups else ""
    daemon = Daemon(tmp, sources + grouping, sizes=sizes)
    daemon.start(rss_interval=0.5)
    t0 = time.monotonic()
    before = (scrape(daemon.port) or ({}, {}))[1]
    with data.open("rb") as src, log.open("ab") as dst:
        for i, line in enumerate(src):  # the first 1 %, then the label sets once it is counted
            dst.write(line)
            if i + 1 >= warm_n:
                break
        dst.flush()
        settle(daemon.port, {"file": warm_n}, timeout=60)
        early = (scrape(daemon.port) or ({}, {}))[1]
        shutil.copyfileobj(src, dst, 1 << 20)
    # every line is one event: wait for the last one too (the assembler closes it on a timeout)
    final = (
        settle(daemon.port, {"file": written}, events={"file": written}, quiet_for=10, timeout=1800)
        or {}
    )
    took = time.monotonic() - t0
    after = (scrape(daemon.port) or ({}, {}))[1]
    code, peak, cpu = daemon.stop()
    counted = int(value(final, "watcher_lines_total", source="file"))
    evicted = int(value(final, "watcher_groups_evicted_total"))
    active = int(value(final, "watcher_active_groups"))
    rows_in_store = _count_groups(daemon.state)
    grew = {
        k: (early.get(k), v)
        for k, v in after.items()
        if v != early.get(k) and v > CLASS_BOUNDED.get(k, 0)
    }
    ok = (
        counted == written
        and code == 0
        and peak < RSS_CAP_MB
        and not grew
        and evicted > 0
        and rows_in_store >= evicted  # every evicted group reached the store (ids may recur)
    )
    return Row(
        scenario=name,
        lines_in=written,
        counted=counted,
        duplicates=int(value(final, "watcher_duplicate_lines_total")),
        lost=written - counted,
        peak_rss_mb=round(peak, 1),
        extra=(
            f"{written / took / 1000:.1f}k l/s; {rows_in_store:,} groups stored, "
            f"{evicted:,} evicted, {active:,} live; label sets "
            f"{sum(early.values())}->{sum(after.values())}"
            + (" (GREW: " + ", ".join(grew) + ")" if grew else " (bounded)")
        ),
        verdict="PASS" if ok else "FAIL",
        details={
            "rss_cap_mb": RSS_CAP_MB,
            "label_sets_before": before,
            "label_sets_at_1pct": early,
            "label_sets_after": after,
            "grew": grew,
            "groups_in_store": rows_in_store,
            "groups_evicted_total": evicted,
            "active_groups": active,
            "events_counted": value(final, "watcher_events_total", source="file"),
            "errors_counted": value(final, "watcher_errors_total"),
            "seconds": took,
            "daemon_cpu_s": cpu,
            "daemon_exit": code,
            "rss_series_mb": _downsample(daemon.rss.series if daemon.rss else []),
            "daemon_log_tail": daemon.tail() if code else "",
        },
    )


def _count_groups(state: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT COUNT(*) FROM groups").fetchone()[0])
    except sqlite3.Error:
        return -1


# -- table and main ---------------------------------------------------------------------------


COLUMNS = ("scenario", "lines in", "counted", "dups", "lost", "peak RSS MB", "verdict", "figures")


def table(rows: list[Row]) -> str:
    cells = [
        (
            r.scenario,
            f"{r.lines_in:,}",
            f"{r.counted:,}",
            f"{r.duplicates:,}",
            f"{r.lost:,}",
            f"{r.peak_rss_mb:.0f}",
            r.verdict,
            r.extra,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [COLUMNS, *cells]) for i in range(len(COLUMNS) - 1)]

    def line(c: tuple[str, ...]) -> str:
        left = c[0].ljust(widths[0])
        mid = " ".join(x.rjust(w) for x, w in zip(c[1:-1], widths[1:], strict=True))
        return f"{left} {mid}  {c[-1]}"

    return "\n".join([line(COLUMNS), *(line(c) for c in cells)])


SCENARIOS = {"sustained": sustained, "burst": burst, "cardinality": cardinality}


@contextlib.contextmanager
def workdir(keep: str | None) -> Iterator[Path]:
    path = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="watcher-reliability-"))
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def _interrupted(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop children


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--long", action="store_true", help="5-minute soak, 1M cardinality")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes (the test suite's)")
    from reliability_faults import SCENARIOS as FAULTS  # bench/ is sys.path[0] here

    ap.add_argument(
        "--only", choices=sorted({*SCENARIOS, *FAULTS}), action="append", help="repeatable"
    )
    ap.add_argument(
        "--faults", action="store_true", help="the fault scenarios (reliability_faults.py)"
    )
    ap.add_argument("--rate", type=float, help="sustained: lines/s per source")
    ap.add_argument("--duration", type=float, help="sustained: seconds")
    ap.add_argument("--cardinality", type=int, help="unique error messages")
    ap.add_argument("--unique-words", type=int, help="cardinality: words per message (5)")
    ap.add_argument(
        "--wide-cardinality", type=int, help="also N unique ~600-byte lines (--long: 200k)"
    )
    ap.add_argument("--json", metavar="PATH", help="also write the rows (with details) here")
    ap.add_argument("--keep", metavar="DIR", help="work here and keep the files")
    args = ap.parse_args(argv)
    sizes = LONG if args.long else SMOKE if args.smoke else QUICK
    for key in ("rate", "duration", "cardinality", "unique_words", "wide_cardinality"):
        if getattr(args, key) is not None:
            setattr(sizes, key, getattr(args, key))
    rows: list[Row] = []
    signal.signal(signal.SIGTERM, _interrupted)
    everything = {**SCENARIOS, **FAULTS}
    for name in args.only or list(FAULTS if args.faults else SCENARIOS):
        with workdir(args.keep and os.path.join(args.keep, name)) as tmp:
            t0 = time.monotonic()
            print(f"# {name} ...", file=sys.stderr, flush=True)
            try:
                rows.extend(everything[name](sizes, tmp))
            except Exception as exc:  # one broken scenario still leaves a row and the others
                rows.append(Row(name, 0, 0, 0, 0, 0.0, f"error: {exc}"[:300], "FAIL"))
            finally:
                stop_children()
            print(f"# {name} took {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2, default=str))
    return 0 if all(r.verdict in ("PASS", "INFO") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
