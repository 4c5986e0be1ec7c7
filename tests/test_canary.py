"""Canary crash test: `watcher run` SIGKILLed at random points while sequence-numbered lines keep
coming, restarted each time, then stopped with SIGTERM; the stored counts are then audited.

As Loki's canary and Vector's soak harness do, the writer numbers every line (`seq=000123`) and
spreads them over a few statements (one group each), so the audit compares, per group, the
stored count with the lines written of that statement:

- file (inode + offset cursors, at least once): every line is counted at least once, and the
  duplicates are within the documented bound. The bound is 0: the counts of a persist and the
  cursors that cover them commit in ONE SQLite transaction, so a kill loses both together and the
  restart re-reads exactly the lines whose counts were lost. (Without that transaction the bound
  would be the lines read between the last commit and the kill: persist_interval x rate.)
- Loki (ts + line identity) and CloudWatch (eventId): exactly once, the count a clean run gives.

Kills are seeded (reproducible) and land anywhere: before the first read, between persists,
during one. The daemons persist every PERSIST seconds instead of 5 so that several commits fall
between kills; everything else is the real `watcher run` (see LAUNCH).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3

from tests.fakes.loki import FakeLoki, serve_in_thread
from tests.fakes.moto import REGION, moto_endpoint  # noqa: F401 (the fixture)
from tests.helpers import clean_env, read_rows, wait_for

SEED = int(os.environ.get("CANARY_SEED", "20261122"))  # set it to explore other kill points
PERSIST = 0.5
RATE = 200  # lines per second per source
# `watcher run` with one knob changed: the persist interval, which the config does not expose.
LAUNCH = (
    "import functools, sys, watcher.engine, watcher.wiring\n"
    "watcher.wiring.EngineOptions = functools.partial(\n"
    "    watcher.engine.EngineOptions, persist_interval=float(sys.argv[1]))\n"
    "from watcher.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)
# Different word counts: the template miner never takes two of them for one statement.
STATEMENTS = (
    "payment declined",
    "database connection refused by shard",
    "upstream cache stampede detected while rebuilding key",
)


Key = tuple[str, str]  # (source, statement)


def line(seq: int) -> tuple[str, str]:
    """(statement, text) of the seq-th canary line."""
    statement = STATEMENTS[seq % len(STATEMENTS)]
    return statement, f"ERROR canary {statement} seq={seq:06d}"


class Feeder:
    """Writes canary lines for each source (by its name) from a thread, RATE per second each."""

    def __init__(self, sinks: dict[str, Callable[[list[str]], None]]) -> None:
        self.sinks = sinks
        self.written: Counter[Key] = Counter()
        self.seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="canary-feeder", daemon=True)

    def _run(self) -> None:
        step = 0.05
        while not self._stop.wait(step):
            self.feed(int(RATE * step))

    def feed(self, count: int) -> None:
        """Write the next `count` lines to every sink."""
        for source, sink in self.sinks.items():
            texts = []
            for seq in range(self.seq, self.seq + count):
                statement, text = line(seq)
                texts.append(text)
                self.written[source, statement] += 1
            sink(texts)
        self.seq += count

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def counted(db: Path) -> Counter[Key]:
    """Stored count per (source, canary statement) (empty before the first commit).

    A group's `sources` column splits its count by source, so sources may share groups.
    """
    out: Counter[Key] = Counter()
    for template, sources in read_rows(db, "SELECT template, sources FROM groups"):
        statement = template.split("canary ", 1)[-1].split(" seq=")[0]  # the level is not in it
        for source, count in json.loads(sources).items():
            out[source, statement] += count
    return out


class Crasher:
    """Runs `watcher run` and SIGKILLs it at seeded random points, restarting it each time."""

    def __init__(self, cfg: Path, db: Path, log: Path, rng: random.Random) -> None:
        self.cfg = cfg
        self.db = db
        self.log = log
        self.rng = rng
        self.env = clean_env()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.kills: list[str] = []  # where each kill landed, for the failure message

    def start(self) -> None:
        with self.log.open("ab") as out:  # a file: a full pipe would stall the daemon
            argv = [sys.executable, "-c", LAUNCH, str(PERSIST), "run", "-c", str(self.cfg)]
            self.started = time.time()
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=out, env=self.env)

    def crash_loop(self) -> None:
        """3 to 5 times: SIGKILL the daemon at a random point, start a new one.

        The first kill, and most others, land a random 0-2 persist intervals after the daemon
        committed for the first time (so before, during or after its next commit); the rest
        land while it is still starting (a restart storm).
        """
        for n in range(self.rng.randint(3, 5)):
            if n and self.rng.random() < 0.25:
                delay = self.rng.uniform(0.05, 0.5)
                time.sleep(delay)
                self.kills.append(f"{delay:.2f}s after start")
            else:
                wait_for(lambda: self.committed() > self.started, timeout=15)
                delay = self.rng.uniform(0, 2 * PERSIST)
                time.sleep(delay)
                self.kills.append(f"{delay:.2f}s after a commit")
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.start()

    def committed(self) -> float:
        """When the newest checkpoint was written (0 before any)."""
        if not self.db.exists():
            return 0.0
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return float(
                con.execute("SELECT COALESCE(MAX(updated), 0) FROM checkpoints").fetchone()[0]
            )
        except sqlite3.OperationalError:
            return 0.0
        finally:
            con.close()

    def stop(self) -> int:
        """SIGTERM: the clean shutdown; its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    @contextlib.contextmanager
    def running(self) -> Iterator[Crasher]:
        self.start()
        try:
            yield self
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)


def run_canary(crasher: Crasher, feeder: Feeder, db: Path) -> Counter[str]:
    """Feed through the crash loop, let the last daemon catch up, stop it; the stored counts."""
    with crasher.running():
        with feeder:
            crasher.crash_loop()
            time.sleep(0.5)  # the last daemon runs a little under load too
        # at least once: the totals reach what was written; more would be duplicates
        wait_for(lambda: counted(db) >= feeder.written, timeout=20)
        assert crasher.stop() == 0, crasher.tail()
    return counted(db)


def test_file_source_survives_sigkills_at_least_once_without_duplicates(tmp_path: Path) -> None:
    """File source, 3-5 SIGKILLs under load: every line counted, duplicates within the bound
    (0: counts and cursors commit together, so a kill loses both and the restart re-reads
    exactly the lost lines)."""
    log = tmp_path / "app.log"
    log.write_text("")
    db = tmp_path / "state.db"
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{db}"\ninterval = 1\n[http]\nenabled = false\n'
        "[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{log}"\n'
        'read_from = "beginning"\npoll_interval = 0.05\n'
    )

    def append(texts: list[str]) -> None:
        with log.open("a") as fh:
            fh.write("".join(t + "\n" for t in texts))

    feeder = Feeder({"app": append})
    crasher = Crasher(cfg, db, tmp_path / "daemon.log", random.Random(SEED))
    got = run_canary(crasher, feeder, db)
    duplicates = {s: got[s] - n for s, n in feeder.written.items()}
    assert all(got[s] >= n for s, n in feeder.written.items()), (got, feeder.written)  # no loss
    assert duplicates == dict.fromkeys(feeder.written, 0), (duplicates, crasher.kills)
    assert len(crasher.kills) >= 3


def test_loki_and_cloudwatch_survive_sigkills_exactly_once(
    tmp_path: Path,
    moto_endpoint: str,  # noqa: F811
) -> None:
    """Loki and CloudWatch sources, 3-5 SIGKILLs under load: every group's count equals the
    lines written (a clean run's count): none lost, none twice."""
    logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name=REGION)
    group = f"/aws/lambda/canary-{uuid.uuid4().hex[:10]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="canary")
    db = tmp_path / "state.db"
    with serve_in_thread() as loki:
        cfg = tmp_path / "watcher.toml"
        cfg.write_text(
            f'[watcher]\nstate_path = "{db}"\ninterval = 1\n[http]\nenabled = false\n'
            "[parse]\nmultiline_timeout = 0.2\n"
            f'[[sources]]\ntype = "loki"\nname = "loki"\nurl = "{loki.url}"\n'
            "query = '{app=\"canary\"}'\nmax_backoff = 0.5\n"
            f'[[sources]]\ntype = "cloudwatch"\nname = "cw"\nlog_groups = ["{group}"]\n'
            f'region = "{REGION}"\nendpoint_url = "{moto_endpoint}"\n'
            'interval = "200ms"\nlatency = 0\nmax_backoff = 0.5\n'
        )
        feeder = Feeder({"loki": pusher(loki), "cw": putter(logs, group)})
        crasher = Crasher(cfg, db, tmp_path / "daemon.log", random.Random(SEED + 1))
        got = run_canary(crasher, feeder, db)
    assert got == feeder.written, (got - feeder.written, feeder.written - got, crasher.kills)
    assert len(crasher.kills) >= 3


def pusher(loki: FakeLoki) -> Callable[[list[str]], None]:
    """A sink that pushes each line to the fake Loki as its own entry."""

    def push(texts: list[str]) -> None:
        for text in texts:
            loki.push({"app": "canary"}, text)

    return push


def putter(logs: Any, group: str) -> Callable[[list[str]], None]:
    """A sink that writes the lines to CloudWatch as one PutLogEvents call."""

    def put(texts: list[str]) -> None:
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": text} for text in texts]
        logs.put_log_events(logGroupName=group, logStreamName="canary", logEvents=events)

    return put
