"""`watcher status` (alias `top`): a running daemon at a glance, from its HTTP API.

On a shared state, every watcher of the fleet (state, host, pid, heartbeat age, leader, what it
reads); with `[watcher] workers` > 1, each worker process (pid, alive, restarts, memory, its
sources); sources with lines/s (from two samples), lag, error events and state; the busiest
patterns with their 1 m / 5 m / 1 h counts. On a terminal the screen is redrawn in place every
interval, like `vector top`; `--once` prints one screen (after two samples, for the rates) and
exits, for scripts and tests. Reads only: GET /error-monitor/fleet, /error-monitor/sources,
/error-monitor/errors/patterns and /health/ready (the workers),
with the API token when one is set (needed when [http] protect_reads is on).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import IO, Any

PATTERNS_FETCHED = 200
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen


class StatusError(Exception):
    """The daemon could not be asked (not running, wrong address, token refused)."""


@dataclass
class Sample:
    """One look at the daemon."""

    at: float
    sources: list[dict[str, Any]]
    patterns: list[dict[str, Any]]
    fleet: dict[str, Any] | None = None  # GET /error-monitor/fleet (None: an older daemon)
    workers: list[dict[str, Any]] | None = None  # /health/ready's (None: one process)


class Client:
    """GETs against one daemon's API."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 5.0) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str, *, answers: tuple[int, ...] = ()) -> Any:
        """The JSON body of GET `path`; also of an error status listed in `answers` (a 503 from
        /health/ready still says what is wrong)."""
        request = urllib.request.Request(self.base + path)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code in answers:
                return json.loads(exc.read())
            raise StatusError(f"{self.base}{path}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StatusError(f"cannot reach the daemon at {self.base}: {reason}") from None

    def sample(self) -> Sample:
        sources = self.get("/error-monitor/sources")["sources"]
        patterns = self.get(f"/error-monitor/errors/patterns?limit={PATTERNS_FETCHED}")
        try:
            fleet = self.get("/error-monitor/fleet")
        except StatusError:  # a daemon from before the fleet view: show the rest
            fleet = None
        try:
            workers = self.get("/health/ready", answers=(503,)).get("workers")
        except (StatusError, ValueError):  # health hidden or not JSON: show the rest
            workers = None
        return Sample(time.monotonic(), sources, patterns["patterns"], fleet, workers)


def rates(before: Sample | None, now: Sample) -> dict[str, float | None]:
    """Lines per second per source between two samples (None without an earlier one)."""
    if before is None or now.at <= before.at:
        return {s["name"]: None for s in now.sources}
    old = {s["name"]: s.get("lines", 0) for s in before.sources}
    span = now.at - before.at
    return {
        s["name"]: max(0, s.get("lines", 0) - old.get(s["name"], 0)) / span for s in now.sources
    }


def render(now: Sample, per_second: dict[str, float | None], *, top: int = 10) -> str:
    """The screen: the fleet (on a shared state), a sources table, then the busiest patterns
    by their 5 m count."""
    lines = fleet_lines(now.fleet) + worker_lines(now.workers)
    lines += [f"{'SOURCE':<20} {'STATE':<9} {'LINES/S':>9} {'LINES':>11} {'ERRORS':>8} {'LAG':>8}"]
    for s in now.sources:
        rate = per_second.get(s["name"])
        lag = s.get("lag_seconds")
        state = "up" if s.get("up") else ("blind" if s.get("problem") else "down")
        if s.get("shared") == "standby" and not s.get("error"):  # another watcher reads it
            state = "standby"
        lines.append(
            f"{_cut(s['name'], 20):<20} {state:<9} {'-' if rate is None else f'{rate:,.1f}':>9} "
            f"{s.get('lines', 0):>11,} {s.get('error_events', 0):>8,} "
            f"{'-' if lag is None else f'{lag:.1f}s':>8}"
        )
        why = s.get("problem") or s.get("error")
        if why:
            lines.append(f"  ! {why}")
    busiest = sorted(now.patterns, key=_busy, reverse=True)[:top]
    head = f"{'1M':>5} {'5M':>5} {'1H':>6} {'TOTAL':>8}  {'SEVERITY':<8} {'CATEGORY':<22} PATTERN"
    lines += ["", head]
    for p in busiest:
        w = p.get("window_counts") or {}
        where = f"  at {p['file']}:{p['line']}" if p.get("file") else ""
        lines.append(
            f"{w.get('1m', 0):>5,} {w.get('5m', 0):>5,} {w.get('1h', 0):>6,} "
            f"{p.get('count', 0):>8,}  {p.get('severity', ''):<8} "
            f"{_cut(p.get('category', ''), 22):<22} "
            f"{_cut(p.get('message') or p.get('template') or '', 70)}{where}"
        )
    if not busiest:
        lines.append("  (no error patterns yet)")
    return "\n".join(lines) + "\n"


def fleet_lines(fleet: dict[str, Any] | None) -> list[str]:
    """Every watcher on a shared state, one line each (nothing for a watcher on its own)."""
    if not fleet or not fleet.get("shared"):
        return []
    lines = [
        f"{'INSTANCE':<20} {'STATE':<8} {'HOST':<24} {'PID':>7} {'SEEN':>6} {'LEADER':<6} SOURCES"
    ]
    for i in fleet.get("instances", []):
        leader = {True: "yes", False: "no"}.get(i.get("leader"), "-")
        reads = ", ".join([*i.get("sources", []), *(f"{x} (lease)" for x in i.get("leases", []))])
        lines.append(
            f"{_cut(i['name'], 20):<20} {i['state']:<8} {_cut(i.get('host', ''), 24):<24} "
            f"{i.get('pid', 0):>7} {i.get('last_seen_age_seconds', 0):>5.0f}s {leader:<6} "
            f"{_cut(reads or '-', 60)}"
        )
    return [*lines, ""]


def worker_lines(workers: list[dict[str, Any]] | None) -> list[str]:
    """Each worker process, one line each (nothing when the daemon reads in one process)."""
    if not workers:
        return []
    head = f"{'WORKER':<7} {'PID':>7} {'STATE':<6} {'RESTARTS':>8} {'RSS':>8} {'PEAK':>8} SOURCES"
    lines = [head]
    for w in workers:
        pid = w.get("pid")
        lines.append(
            f"{w.get('worker', 0):<7} {'-' if pid is None else pid:>7} "
            f"{'up' if w.get('alive') else 'down':<6} {w.get('restarts', 0):>8} "
            f"{_mib(w.get('rss_bytes')):>8} {_mib(w.get('peak_rss_bytes')):>8} "
            f"{_cut(', '.join(w.get('sources') or []) or '-', 60)}"
        )
    return [*lines, ""]


def _mib(n: int | None) -> str:
    return "-" if not n else f"{n / 2**20:.0f} MiB"


def _busy(pattern: dict[str, Any]) -> tuple[int, int, int]:
    w = pattern.get("window_counts") or {}
    return (w.get("5m", 0), w.get("1h", 0), pattern.get("count", 0))


def _cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def run(client: Client, out: IO[str], *, once: bool, interval: float, top: int) -> None:
    """Print screens until interrupted (or one, after two samples, with `once`)."""
    before = client.sample()
    time.sleep(min(interval, 1.0) if once else 0)
    live = not once and out.isatty()
    while True:
        now = client.sample()
        screen = render(now, rates(before, now), top=top)
        out.write((CLEAR if live else "") + screen)
        out.flush()
        if once:
            return
        before = now
        time.sleep(interval)


def main_status(listen: str, *, url: str | None, token: str | None, once: bool,
                interval: float, top: int) -> int:  # fmt: skip
    """The CLI entry: 0 after `--once` or Ctrl-C, 3 when the daemon cannot be asked."""
    base = url or f"http://{_dialable(listen)}"
    try:
        run(Client(base, token), sys.stdout, once=once, interval=interval, top=top)
    except StatusError as exc:
        print(f"watcher: status: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 0
    return 0


def _dialable(listen: str) -> str:
    """[http] listen as an address to connect to: a wildcard host becomes loopback."""
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"{host}:{port}"
