"""Reliability suite, Faults section (issue 13): restarts and rotations, descriptors, state.

Each scenario drives the real `watcher run` (the copy PYTHONPATH selects: run this script with
PYTHONPATH pointing at an older checkout to measure "before") and prints one row per case:

  rotation     plain path renamed while stopped; a glob (app.log*) restarted after a rename;
               a glob SIGKILLed 5 times under load with renames in between; a file created
               while stopped (read_from = "end"); copytruncate under write load (lost lines
               and how many watcher counted in watcher_lines_lost_total)
  descriptors  1,100 files under a 1,024-descriptor limit (files read, probes, log bytes);
               1,000 idle files (CPU of the daemon while nothing is written); 1,020 idle
               connections under the same limit (probes answered, log bytes)
  state        two daemons on one state file (lines counted twice)

Lines are "ERROR bench <statement> seq=N"; counts come from the state file's groups (what
survives restarts), so "dups" is stored minus written and "lost" written minus stored.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

# bench/ is sys.path[0] when reliability.py runs as a script
from reliability import (
    Row,
    RssSampler,
    Sizes,
    free_port,
    http_get,
    spawn,
    stop_children,
    toml_str,
    watcher_argv,
    write_lines,
)

STATEMENTS = ("payment declined", "cache stampede detected while rebuilding key")


def line(seq: int, statement: str = STATEMENTS[0]) -> str:
    return f"ERROR bench {statement} seq={seq:07d}\n"


def append(path: Path, first: int, count: int) -> int:
    with path.open("a") as fh:
        fh.write("".join(line(s) for s in range(first, first + count)))
    return first + count


def stored(db: Path) -> int:
    """SUM(count) of the state file's groups (0 before the first commit)."""
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT COALESCE(SUM(count), 0) FROM groups").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


class Run:
    """One `watcher run` on a config in `tmp` (HTTP on a free port), restartable."""

    def __init__(self, tmp: Path, sources: str, *, nofile: int | None = None) -> None:
        self.tmp, self.port, self.nofile = tmp, free_port(), nofile
        self.db = tmp / "state.db"
        self.cfg = tmp / "watcher.toml"
        self.cfg.write_text(
            f"[watcher]\nstate_path = {toml_str(self.db)}\ninterval = 1\npersist_interval = 0.5\n"
            f'[http]\nlisten = "127.0.0.1:{self.port}"\n[parse]\nmultiline_timeout = 0.2\n'
            f"{sources}"
        )
        self.log = tmp / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> None:
        limit = self.nofile

        def preexec() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        with self.log.open("ab") as err:
            self.proc = spawn(
                [*watcher_argv(), "run", "-c", str(self.cfg)],
                self.tmp,
                stdout=subprocess.DEVNULL,
                stderr=err,
                preexec_fn=preexec,
            )
        deadline = time.monotonic() + 30
        while wait and probe(self.port) != 200 and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(60)

    def settle(self, want: int, timeout: float = 30.0) -> int:
        """Wait until the stored count reaches `want` or stops moving; the stored count."""
        deadline, last, still = time.monotonic() + timeout, -1, 0
        while time.monotonic() < deadline:
            now = stored(self.db)
            if now >= want:
                time.sleep(1.0)  # duplicates would land right behind
                return stored(self.db)
            still = still + 1 if now == last else 0
            if still > 20:
                break
            last = now
            time.sleep(0.25)
        return stored(self.db)


def probe(port: int, timeout: float = 2.0) -> int:
    return http_get(port, "/health/live", timeout)[0]


def file_source(
    path: Path | str, read_from: str = "beginning", extra: str = "", poll: float | None = 0.1
) -> str:
    """A file source on `path` (poll None: the default poll_interval)."""
    interval = "" if poll is None else f"poll_interval = {poll}\n"
    return (
        f'[[sources]]\ntype = "file"\nname = "app"\npath = {toml_str(path)}\n'
        f'read_from = "{read_from}"\n{interval}{extra}'
    )


def row(name: str, written: int, got: int, extra: str = "", rss: float = 0.0) -> Row:
    dups, lost = max(0, got - written), max(0, written - got)
    verdict = "PASS" if dups == 0 and lost == 0 else "FAIL"
    return Row(name, written, got, dups, lost, rss, extra, verdict)


# --- rotation -------------------------------------------------------------------------------


def rotation(sizes: Sizes, tmp: Path) -> list[Row]:
    """The restart and rotation cases of issue 13 section 2."""
    cases: list[Callable[[Path], Row]] = [
        _renamed_while_stopped,
        _glob_restart_after_rename,
        _glob_sigkills_with_renames,
        _created_while_stopped,
        _copytruncate_under_load,
    ]
    rows = []
    for case in cases:
        work = tmp / case.__name__.strip("_")
        work.mkdir()
        rows.append(case(work))
    return rows


def _renamed_while_stopped(tmp: Path) -> Row:
    log = tmp / "app.log"
    log.write_text("")
    run = Run(tmp, file_source(log))
    run.start()
    n = append(log, 0, 1000)
    run.settle(n)
    run.stop()
    n = append(log, n, 200)  # the unread tail
    os.rename(log, tmp / "app.log.1")
    n = append(log, n, 100)
    run.start()
    got = run.settle(n)
    run.stop()
    return row("plain path, renamed while stopped", n, got, "200-line tail written while down")


def _glob_restart_after_rename(tmp: Path) -> Row:
    log = tmp / "app.log"
    log.write_text("")
    run = Run(tmp, file_source(f"{tmp}/app.log*"))
    run.start()
    n = append(log, 0, 2000)
    run.settle(n)
    run.stop()
    os.rename(log, tmp / "app.log.1")
    log.write_text("")
    run.start()
    got = run.settle(n + 1, timeout=8)  # nothing new: wait for duplicates, if any
    run.stop()
    return row("glob app.log*, clean restart after a rename", n, got)


def _glob_sigkills_with_renames(tmp: Path) -> Row:
    log = tmp / "app.log"
    log.write_text("")
    run = Run(tmp, file_source(f"{tmp}/app.log*"))
    run.start()
    n, stop = 0, threading.Event()
    lock = threading.Lock()

    def writer() -> None:
        nonlocal n
        while not stop.is_set():
            with lock:
                n = append(log, n, 50)
            time.sleep(0.05)  # ~1,000 lines/s

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    for _ in range(5):
        time.sleep(1.5)
        run.stop(signal.SIGKILL)
        with lock:  # logrotate's rename rotation while the daemon is down
            for k in range(3, 0, -1):
                src = tmp / (f"app.log.{k - 1}" if k > 1 else "app.log")
                if src.exists():
                    os.rename(src, tmp / f"app.log.{k}")
            log.write_text("")
        run.start()
    stop.set()
    thread.join()
    got = run.settle(n)
    run.stop()
    return row("glob app.log*, SIGKILL x5 with renames under load", n, got, "~1,000 lines/s")


def _created_while_stopped(tmp: Path) -> Row:
    run = Run(tmp, file_source(f"{tmp}/*.log", read_from="end"))
    (tmp / "old.log").write_text(line(0) * 10)
    run.start()
    time.sleep(2)  # positioned at the end of old.log
    run.stop()
    append(tmp / "new.log", 0, 500)
    run.start()
    got = run.settle(500, timeout=10)
    run.stop()
    return row('file created while stopped, read_from = "end"', 500, got)


def _copytruncate_under_load(tmp: Path) -> Row:
    log = tmp / "app.log"
    log.write_text("")
    run = Run(tmp, file_source(log))
    run.start()
    n, stop = 0, threading.Event()

    def writer() -> None:
        nonlocal n
        fh = log.open("a")
        while not stop.is_set():
            fh.write("".join(line(s) for s in range(n, n + 20)))
            fh.flush()
            n += 20
            time.sleep(0.002)  # ~5,000 lines/s, never pausing for the rotation
        fh.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    for k in range(5):
        time.sleep(1.0)
        shutil.copyfile(log, tmp / f"app.log.{k + 1}")  # logrotate's copytruncate
        with log.open("r+") as fh:
            fh.truncate(0)
    time.sleep(1.0)
    stop.set()
    thread.join()
    got = run.settle(n, timeout=15)
    counted = _metric(run.port, "watcher_lines_lost_total")
    run.stop()
    r = row(
        "copytruncate x5 under write load (~5k lines/s)", n, got, f"counted lost: {counted:.0f}"
    )
    r.verdict = "INFO"  # lines written between copy and truncate are in neither file
    return r


def _metric(port: int, name: str) -> float:
    status, body = http_get(port, "/metrics")
    if status != 200:
        return -1.0
    lines = body.splitlines()
    return sum(float(x.rsplit(" ", 1)[1]) for x in lines if x.startswith((name + "{", name + " ")))


# --- descriptors ----------------------------------------------------------------------------


def descriptors(sizes: Sizes, tmp: Path) -> list[Row]:
    """File descriptor exhaustion: many files, idle files, idle connections."""
    return [_many_files(tmp / "many"), _idle_files(tmp / "idle"), _idle_connections(tmp / "conn")]


def _probes(port: int, count: int = 10) -> int:
    ok = 0
    for _ in range(count):
        ok += probe(port) == 200
        time.sleep(0.1)
    return ok


def _files(tmp: Path, count: int, lines: int) -> Path:
    """`count` log files of `lines` lines each (numbered across files) under tmp/logs."""
    logs = tmp / "logs"
    logs.mkdir(parents=True)
    for i in range(count):
        text = "".join(line(lines * i + k) for k in range(lines))
        (logs / f"f{i:04d}.log").write_text(text)
    return logs


def _many_files(tmp: Path) -> Row:
    logs = _files(tmp, 1100, 2)
    run = Run(tmp, file_source(f"{logs}/*.log"), nofile=1024)
    run.start(wait=False)
    time.sleep(20)
    probes = _probes(run.port)
    got = stored(run.db)
    size = run.log.stat().st_size
    run.stop(signal.SIGKILL)
    unread = 1100 - got // 2
    r = row(
        "1,100 files at a 1,024-fd limit (20 s)",
        2200,
        got,
        f"files unread {unread}; probes {probes}/10; log {size / 1e6:.1f} MB",
    )
    r.verdict = "PASS" if unread == 0 and probes == 10 else "FAIL"
    return r


def _idle_files(tmp: Path) -> Row:
    logs = _files(tmp, 1000, 1)
    run = Run(tmp, file_source(f"{logs}/*.log", poll=None))  # the defaults, as users run it
    run.start()
    run.settle(1000, timeout=30)
    assert run.proc is not None
    cpu = _cpu(run.proc.pid)
    time.sleep(20)
    share = (_cpu(run.proc.pid) - cpu) / 20
    run.stop()
    r = row(
        "1,000 idle files, default polling (20 s, nothing written)",
        1000,
        stored(run.db),
        f"CPU {share * 100:.1f} % of a core",
    )
    return r


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _idle_connections(tmp: Path) -> Row:
    tmp.mkdir()
    log = tmp / "app.log"
    log.write_text("")
    run = Run(tmp, file_source(log), nofile=1024)
    run.start()
    socks = []
    with contextlib.ExitStack() as stack:
        for _ in range(1020):
            try:
                s = socket.create_connection(("127.0.0.1", run.port), timeout=2)
            except OSError:
                break
            socks.append(stack.enter_context(s))
        time.sleep(2)
        probes = _probes(run.port)
        n = append(log, 0, 100)
        got = run.settle(n, timeout=15)
        size = run.log.stat().st_size
    run.stop(signal.SIGKILL)
    r = row(
        f"{len(socks):,} idle connections at a 1,024-fd limit",
        n,
        got,
        f"probes {probes}/10; log {size / 1e3:.0f} kB",
    )
    r.verdict = "PASS" if probes == 10 and got == n else "FAIL"
    return r


# --- state ----------------------------------------------------------------------------------


def state(sizes: Sizes, tmp: Path) -> list[Row]:
    """Two daemons started on one state file while 2,000 lines are written."""
    log = tmp / "app.log"
    log.write_text("")
    first = Run(tmp, file_source(log))
    second = Run(tmp, file_source(log))
    second.cfg, second.port = first.cfg, first.port  # the same config: the same state file
    first.start()
    second.start(wait=False)
    time.sleep(2)
    refused = second.proc is not None and second.proc.poll() == 2
    n = 0
    for _ in range(20):
        n = append(log, n, 100)
        time.sleep(0.05)
    got = first.settle(n, timeout=15)
    time.sleep(2)
    got = stored(first.db)
    for run in (first, second):
        with contextlib.suppress(Exception):
            if run.proc is not None and run.proc.poll() is None:
                run.stop()
    return [
        row(
            "two daemons on one state file",
            n,
            got,
            "second refused (exit 2)" if refused else "second ran",
        )
    ]


def failing_store(sizes: Sizes, tmp: Path) -> list[Row]:
    """`cardinality` unique error messages while every commit fails (the state file on a full
    4 MiB tmpfs): peak RSS, and the group states dropped by the spill cap. Needs root (mount)."""
    mnt = tmp / "statefs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)]).returncode:
        return [Row("failing store", 0, 0, 0, 0, 0.0, "tmpfs mount refused (not root)", "INFO")]
    try:
        return [_failing_store(sizes, tmp, mnt)]
    finally:
        stop_children()
        subprocess.run(["umount", "-l", str(mnt)])


def _failing_store(sizes: Sizes, tmp: Path, mnt: Path) -> Row:
    data = tmp / "unique.log"
    data.write_text("")
    run = Run(tmp, file_source(data))
    run.cfg.write_text(run.cfg.read_text().replace(toml_str(run.db), toml_str(mnt / "state.db")))
    run.start()
    with contextlib.suppress(OSError), (mnt / "filler").open("wb") as fh:
        while True:  # the disk is full from here on
            fh.write(b"\0" * 65536)
    assert run.proc is not None
    sampler = RssSampler(run.proc.pid, 0.5)
    n = sizes.cardinality
    write_lines(data, n, "--seed", 9, "--unique", "--unique-words", 5, "--error-rate", 1)
    written = sum(1 for _ in data.open())
    deadline = time.monotonic() + 600
    while _metric(run.port, "watcher_lines_total") < written and time.monotonic() < deadline:
        time.sleep(1)
    dropped = _metric(run.port, "watcher_state_unsaved_dropped_total")
    errors = _metric(run.port, "watcher_state_errors_total")
    run.stop(signal.SIGKILL)
    sampler.stop()
    return Row(
        f"{written:,} unique errors, every commit failing", written, written, 0, 0,
        sampler.peak(), f"state errors {errors:.0f}; group states dropped {dropped:,.0f}",
        "PASS" if sampler.peak() < 300 else "FAIL",
    )


SCENARIOS: dict[str, Callable[[Sizes, Path], list[Row]]] = {
    "rotation": rotation,
    "descriptors": descriptors,
    "state": state,
    "failing_store": failing_store,
}
