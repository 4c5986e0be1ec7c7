"""A fleet of `watcher run` processes on one PostgreSQL (issue 16): how it scales, what the
store costs, and how long a line takes to become visible to the fleet.

    .venv/bin/python bench/fleet.py [--instances 1 2 4] [--seconds 10] [--persist-interval 5]

It starts a throwaway PostgreSQL cluster of its own (initdb in a temp dir, as tests/postgres.py
does), then for each fleet size N, twice on a fresh database with N watchers, each with its own
file source `load` and a file source `probe`:

1. Full speed: `load` pre-filled with more error lines (20 statements) than a watcher reads in
   the run. After a warm-up, over `--seconds`:
   - lines/s: the `load` lines every watcher read (its /metrics), summed; scaling against N = 1;
   - PostgreSQL transactions/s and rows written per 1,000 lines (pg_stat_database:
     xact_commit, which also counts autovacuum's and every autocommit read, and
     tup_inserted + tup_updated + tup_deleted of the database), and the rows by table;
   - CPU-seconds per 1,000 lines: the watchers' and the server's (/proc), since the machine is
     shared and wall-clock rates drift with the load of others.
2. Latency: `load` written at `--paced` lines/s per watcher (below saturation: at full speed a
   new line waits behind the bounded queue, whatever the store does) and one timestamped line
   appended to `probe` every 50 ms: from a probe line's timestamp to the first poll (every
   10 ms) at which its group's stored last_seen reaches it, i.e. committed to PostgreSQL where
   every watcher's API reads it (the persist interval bounds it from below), p50 and p99.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import psycopg  # noqa: E402

from tests.postgres import running_cluster  # noqa: E402

STATEMENTS = 20
TICKS = os.sysconf("SC_CLK_TCK")


def load_lines(n: int, seed: int) -> str:
    """`n` error lines of STATEMENTS statements in turn (each statement its own group)."""
    return "".join(
        f"ERROR fleet {'step ' * (1 + i % STATEMENTS)}failed id={seed + i:08d}\n" for i in range(n)
    )


def probe_line(instance: int) -> str:
    """A probe line timestamped now; each instance's probes are a group of their own."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
    return f"{now.replace('+00:00', 'Z')} ERROR probe {'hop ' * (instance + 1)}reached\n"


@dataclass
class Watcher:
    """One `watcher run` process with its files and HTTP port."""

    home: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def metric(self, name: str, source: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            body = r.read().decode()
        found = re.search(rf'^{name}\{{source="{source}"\}} (\S+)$', body, re.M)
        return float(found.group(1)) if found else 0.0

    def cpu(self) -> float:
        assert self.proc is not None
        return _cpu(self.proc.pid)


def _cpu(pid: int, children: bool = False) -> float:
    """CPU-seconds of a process (utime + stime; with `children`, those it reaped too)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


def server_cpu(data: Path) -> float:
    """CPU-seconds of the PostgreSQL server: the postmaster, every process it runs and every
    one it reaped."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    total = _cpu(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == postmaster:
                total += _cpu(int(entry.name))
    return total


def pg_counters(url: str) -> tuple[int, int]:
    """(commits, rows written) of the database so far."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted"
            " FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def table_rows(url: str) -> dict[str, int]:
    """Rows written so far per table (inserted + updated + deleted)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
        ).fetchall()
    return {str(name): int(n) for name, n in rows}


def config(home: Path, url: str, name: str, port: int, persist: float) -> Path:
    cfg = home / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate = "{url}"\ninstance = "{name}"\npersist_interval = {persist}\n'
        f'log_level = "warning"\n[http]\nlisten = "127.0.0.1:{port}"\n'
        f'[[sources]]\ntype = "file"\nname = "load"\npath = "{home / "load.log"}"\n'
        'read_from = "beginning"\n'
        f'[[sources]]\ntype = "file"\nname = "probe"\npath = "{home / "probe.log"}"\n'
        'read_from = "beginning"\npoll_interval = 0.05\n'
    )
    return cfg


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Probes:
    """Appends a probe line per instance every 50 ms and times when PostgreSQL shows it."""

    url: str
    watchers: list[Watcher]
    latencies: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        sent: list[list[float]] = [[] for _ in self.watchers]
        with psycopg.connect(self.url, autocommit=True) as conn:
            next_probe = time.time()
            while not self.stop.is_set():
                now = time.time()
                if now >= next_probe:
                    for i, w in enumerate(self.watchers):
                        line = probe_line(i)
                        sent[i].append(_parse_ts(line))
                        with (w.home / "probe.log").open("a") as fh:
                            fh.write(line)
                    next_probe = now + 0.05
                self._poll(conn, sent)
                time.sleep(0.01)

    def _poll(self, conn: psycopg.Connection, sent: list[list[float]]) -> None:
        rows = conn.execute(
            "SELECT template, last_seen FROM groups WHERE template LIKE 'probe%%'"
        ).fetchall()
        now = time.time()
        for template, last_seen in rows:
            i = template.count("hop") - 1
            if not 0 <= i < len(sent):
                continue
            while sent[i] and sent[i][0] <= last_seen + 1e-6:
                self.latencies.append(now - sent[i].pop(0))


def _parse_ts(line: str) -> float:
    stamp = line.split(" ", 1)[0].replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(stamp).timestamp()


def start_fleet(url: str, n: int, args: argparse.Namespace, load_lines_each: int) -> list[Watcher]:
    """N watchers on `url`, each `load` file pre-filled with `load_lines_each` lines."""
    root = Path(tempfile.mkdtemp(prefix=f"watcher-fleet-{n}-"))
    watchers = []
    for i in range(n):
        home = root / f"w{i}"
        home.mkdir()
        (home / "load.log").write_text(load_lines(load_lines_each, i * 10**7))
        (home / "probe.log").write_text("")
        w = Watcher(home, free_port())
        cfg = config(home, url, f"w{i}", w.port, args.persist_interval)
        with (home / "daemon.log").open("ab") as err:
            w.proc = subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "-c", str(cfg)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        watchers.append(w)
    return watchers


def stop_fleet(watchers: list[Watcher]) -> None:
    for w in watchers:
        if w.proc is not None:
            w.proc.send_signal(signal.SIGTERM)
    for w in watchers:
        if w.proc is not None:
            w.proc.wait(60)


def _wait_up(watchers: list[Watcher], source: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if all(w.metric("watcher_lines_total", source) > 0 for w in watchers):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the watchers did not start reading")


@dataclass
class Throughput:
    lines_per_s: float
    commits_per_s: float
    rows_per_1k: float
    watcher_cpu_per_1k: float
    server_cpu_per_1k: float
    tables_per_1k: dict[str, float]


def throughput(cluster: object, n: int, args: argparse.Namespace) -> Throughput:
    """Phase 1: every watcher reading its pre-filled file at full speed."""
    url = cluster.create()  # type: ignore[attr-defined]
    watchers = start_fleet(url, n, args, args.lines)
    try:
        _wait_up(watchers, "load")
        time.sleep(args.warmup)
        data = cluster.data  # type: ignore[attr-defined]
        lines0 = sum(w.metric("watcher_lines_total", "load") for w in watchers)
        commits0, rows0 = pg_counters(url)
        tables0 = table_rows(url)
        wcpu0, scpu0, t0 = sum(w.cpu() for w in watchers), server_cpu(data), time.monotonic()
        time.sleep(args.seconds)
        read = [w.metric("watcher_lines_total", "load") for w in watchers]
        wcpu1, scpu1, t1 = sum(w.cpu() for w in watchers), server_cpu(data), time.monotonic()
        time.sleep(1.0)  # the server publishes its statistics at most once a second
        commits1, rows1 = pg_counters(url)
        tables1 = table_rows(url)
    finally:
        stop_fleet(watchers)
    if any(n_read >= args.lines for n_read in read):
        print(f"  (N={n}: a watcher read its whole file: raise --lines)", file=sys.stderr)
    lines = sum(read) - lines0
    per_1k = 1000 / max(lines, 1)
    return Throughput(
        lines_per_s=lines / (t1 - t0),
        commits_per_s=(commits1 - commits0 - 1) / (t1 - t0),  # less pg_counters' own
        rows_per_1k=(rows1 - rows0) * per_1k,
        watcher_cpu_per_1k=(wcpu1 - wcpu0) * per_1k,
        server_cpu_per_1k=(scpu1 - scpu0) * per_1k,
        tables_per_1k={
            name: (n - tables0.get(name, 0)) * per_1k
            for name, n in sorted(tables1.items())
            if n > tables0.get(name, 0)
        },
    )


def latency(cluster: object, n: int, args: argparse.Namespace) -> list[float]:
    """Phase 2: `load` written at a steady pace, probes timed to the store; the latencies."""
    url = cluster.create()  # type: ignore[attr-defined]
    watchers = start_fleet(url, n, args, 0)
    stop = threading.Event()
    pacer = threading.Thread(target=_pace, args=(watchers, args.paced, stop), daemon=True)
    pacer.start()
    probes = Probes(url, watchers)
    try:
        _wait_up(watchers, "load")
        thread = threading.Thread(target=probes.run, daemon=True)
        thread.start()
        time.sleep(args.warmup)
        probes.latencies.clear()
        time.sleep(args.seconds)
        probes.stop.set()
        thread.join()
    finally:
        stop.set()
        pacer.join()
        stop_fleet(watchers)
    return sorted(probes.latencies)


def _pace(watchers: list[Watcher], rate: float, stop: threading.Event) -> None:
    """Append `rate` load lines per second to every watcher's file, in 20 ms slices."""
    written, started = 0, time.monotonic()
    while not stop.is_set():
        due = int((time.monotonic() - started) * rate)
        if due > written:
            for i, w in enumerate(watchers):
                with (w.home / "load.log").open("a") as fh:
                    fh.write(load_lines(due - written, i * 10**7 + written))
            written = due
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=None,
                        help="default: two persist intervals and a second (the server"
                        " publishes a backend's statistics when it commits)")  # fmt: skip
    parser.add_argument("--lines", type=int, default=600_000, help="load lines per watcher")
    parser.add_argument("--paced", type=float, default=500.0,
                        help="load lines/s per watcher while latency is measured")  # fmt: skip
    parser.add_argument("--persist-interval", type=float, default=5.0)
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = 2 * args.persist_interval + 1
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, "
          f"persist_interval: {args.persist_interval:g} s, window: {args.seconds:g} s, "
          f"latency at {args.paced:g} lines/s per watcher")  # fmt: skip
    head = ("N", "lines/s", "scale", "xact/s", "rows/1k lines", "watcher cpu-s/1k",
            "server cpu-s/1k", "latency p50 s", "p99 s", "probes")  # fmt: skip
    print(" | ".join(head))
    base = None
    tables = {}
    with running_cluster() as cluster:
        for n in args.instances:
            r = throughput(cluster, n, args)
            lat = latency(cluster, n, args)
            base = base or r.lines_per_s
            p50 = statistics.median(lat) if lat else float("nan")
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
            print(
                f"{n} | {r.lines_per_s:,.0f} | {r.lines_per_s / base:.2f}x | "
                f"{r.commits_per_s:.1f} | {r.rows_per_1k:.2f} | {r.watcher_cpu_per_1k:.3f} | "
                f"{r.server_cpu_per_1k:.4f} | {p50:.2f} | {p99:.2f} | {len(lat)}",
                flush=True,
            )
            tables[n] = r.tables_per_1k
    print("rows written per 1,000 lines, by table:")
    for n, per_table in tables.items():
        print(f"  N={n}: " + ", ".join(f"{t} {v:.2f}" for t, v in per_table.items()))


if __name__ == "__main__":
    main()
