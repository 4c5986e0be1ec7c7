"""A worker process: reads the sources its parent gives it and ships what they mean.

It runs the sources (read, parse, multi-line assembly, classification, masking of messages it
has not sent before) on its own event loop and sends the parent one `Shipment` per batch. The
group table is the parent's: nothing here decides a group.

Commands from the parent (tuples over the pipe): ("start", key, source config, checkpoint,
lines to skip), ("stop", key), ("config", config), ("quit",); a key names one reading of a
source (a source changed by a reload is read anew under its name). Messages to it: Shipment,
("done", key, error or None) once a source ended and its last records were shipped,
("health", worker, rss, peak rss, {source: SourceStatus}) every HEALTH_EVERY seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import resource
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import structlog

from watcher.config import Config
from watcher.gctune import tune as tune_gc
from watcher.group.table import has_app_frame, library_message
from watcher.group.template import TemplateMiner, cluster_id
from watcher.metrics import Metrics
from watcher.model import LogEvent, RawLine
from watcher.pipeline import Keyed, Pipeline
from watcher.sources.base import SourceContext, SourceStatus
from watcher.workers.wire import STAT_FIELDS, Shipment, pack_class, pack_event

FLUSH_EVERY = 0.5  # an idle worker closes multi-line records whose stream went quiet
HEALTH_EVERY = 1.0
SENT_LIMIT = 20_000  # messages whose tokens were shipped, remembered (then forgotten wholesale)
# Batches a file source reads per thread hop in a worker (8 in one process). Each batch read
# ahead holds ~0.6 KB a line (text, RawLine, cursor): 8 x 2,000 lines were ~10 MB of every
# worker's peak RSS (issue 15's budget is all processes together). The 8 spare the GIL hand-offs
# between the reader thread and a busy event loop; a worker's loop waits for its one hop at a
# time, so fewer batches a hop cost it no measurable time.
BATCHES_PER_HOP = 2
# source metrics a worker's sources move, mirrored into the parent's registry
COUNTERS = ("duplicate_lines", "truncated_lines", "lines_lost", "source_reconnects")
GAUGES = ("source_up", "source_lag")


@dataclass(frozen=True)
class Setup:
    """What a worker needs to know, fixed for its life."""

    index: int
    config: Config
    follow: bool
    period: tuple[float | None, float | None]
    ship_ignored: bool  # the parent prints every error event (`--emit events`)


class Front(Pipeline):
    """The worker's pipeline: everything up to the group table, whose work it collects."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.out: list[Any] = []
        self.masked: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self._sent: dict[str, None] = {}
        self.ship_ignored = False  # the parent prints every error event, ignored ones too

    def _error(self, event: LogEvent, keyed: Keyed) -> None:
        cls = self.judge(event)
        if cls is None:
            return None
        if cls.ignored and not self.ship_ignored:
            return None
        self.out.append((pack_event(event), pack_class(cls)))
        if cls.ignored:  # shipped only for the parent to print (`--emit events`): not grouped
            return None
        if not (event.frames and has_app_frame(event)):  # the table mines its message
            message = library_message(event) if event.exception_type else event.message
            if message not in self._sent:
                if len(self._sent) >= SENT_LIMIT:
                    self._sent.clear()
                self._sent[message] = None
                # masking is most of the cost of a message never seen: done here, on this core,
                # and the id of a cluster it may start
                masked = self.masked[message] = TemplateMiner.joined_of(message)
                self.ids[masked] = cluster_id(masked)
        return None


class Worker:
    """The worker's event loop: its sources, the front pipeline, the pipe to the parent."""

    def __init__(self, conn: Any, setup: Setup) -> None:
        from watcher.sources import file
        from watcher.wiring import build_pipeline  # the worker side only: it imports the engine

        file.BATCHES_PER_HOP = BATCHES_PER_HOP  # (this process is the worker's alone)
        self.conn = conn
        self.setup = setup
        self.metrics = Metrics(process=False)
        self.front: Front = build_pipeline(  # type: ignore[assignment]
            setup.config, self.metrics, period=setup.period, kind=Front
        )
        self.front.ship_ignored = setup.ship_ignored
        self.log = structlog.get_logger("watcher.worker").bind(worker=setup.index)
        self.tasks: dict[str, tuple[asyncio.Task[None], asyncio.Event, str]] = {}  # by key
        self.statuses: dict[str, SourceStatus] = {}
        self.notes: dict[str, dict[str, Any]] = {}
        self._shipped = {name: 0 for name in STAT_FIELDS}
        self._mirror: dict[tuple[str, tuple[str, ...]], float] = {}
        self._last_feed = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        reader = threading.Thread(target=self._recv, args=(loop, commands), daemon=True)
        reader.start()
        ticker = asyncio.create_task(self._tick())
        try:
            while True:
                command = await commands.get()
                if command[0] == "start":
                    self._start(*command[1:])
                elif command[0] == "config":
                    self._reload(command[1])
                elif command[0] == "stop" and command[1] in self.tasks:
                    self.tasks[command[1]][1].set()
                elif command[0] == "quit":
                    break
        finally:
            for _, stop, _ in self.tasks.values():
                stop.set()
            if self.tasks:
                await asyncio.wait([task for task, _, _ in self.tasks.values()])
            ticker.cancel()

    def _reload(self, config: Config) -> None:
        """SIGHUP in the parent: the new classification rules and log redaction, as there."""
        from watcher.wiring import rules_from

        self.setup = dataclasses.replace(self.setup, config=config)
        self.front.rules = tuple(rules_from(config))
        _configure_logs(config)

    def _recv(self, loop: asyncio.AbstractEventLoop, commands: asyncio.Queue[Any]) -> None:
        """A thread: commands are small and rare, and a blocking recv must not stop reading."""
        while True:
            try:
                command = self.conn.recv()
            except (EOFError, OSError):  # the parent is gone: stop
                command = ("quit",)
            loop.call_soon_threadsafe(commands.put_nowait, command)
            if command[0] == "quit":
                return

    def _start(self, key: str, cfg: Any, checkpoint: Any, skip: int) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(self._source(key, cfg, checkpoint, skip, stop))
        self.tasks[key] = (task, stop, cfg.name)

    async def _source(
        self, key: str, cfg: Any, checkpoint: Any, skip: int, stop: asyncio.Event
    ) -> None:
        error, name = None, cfg.name
        status = self.statuses[name] = SourceStatus()
        try:
            ctx = SourceContext(
                shutdown=stop,
                checkpoint=checkpoint,
                metrics=self.metrics,
                log=self.log.bind(source=name),
                max_line_bytes=self.setup.config.parse.max_line_bytes,
                status=status,
            )
            if self.setup.follow:
                ctx.note = lambda positions: self.notes.setdefault(name, {}).update(positions)
            source = cfg.build(ctx)
            batches = source.lines() if self.setup.follow else source.window(*self.setup.period)
            async for batch in batches:
                if skip:  # read again after a crash of this worker: already counted
                    batch, skip = batch[skip:], max(0, skip - len(batch))
                if batch:
                    self._feed(name, batch)
                if stop.is_set():
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        finally:
            self.tasks.pop(key, None)
        again = any(other == name for _, _, other in self.tasks.values())
        if not again:  # (a reading of the source under the same name goes on: keep its state)
            self.statuses.pop(name, None)
            self.front.flush(force=True, source=name)
        self._ship(name, mirror=True)
        if not again:
            self.front.forget(name)
        self._send(("done", key, error))

    def _feed(self, name: str, batch: list[RawLine]) -> None:
        self.front.feed(batch)
        self._last_feed = time.monotonic()
        self._ship(name)

    def _ship(self, source: str, *, mirror: bool = False) -> None:
        """Send what the front pipeline did since the last shipment (nothing when nothing)."""
        front = self.front
        stats = front.stats
        deltas = {}
        for name in STAT_FIELDS:
            value = getattr(stats, name)
            if value != self._shipped[name]:
                deltas[name] = value - self._shipped[name]
                self._shipped[name] = value
        shipment = Shipment(self.setup.index, source, stats=deltas)
        if deltas.get("lines"):
            shipment.lines[source] = deltas["lines"]
        if deltas.get("events"):
            shipment.events[source] = deltas["events"]
        if self.setup.follow:
            shipment.cursors = front.take_cursors()
            shipment.notes, self.notes = self.notes, {}
        shipment.errors, front.out = front.out, []
        shipment.masked, front.masked = front.masked, {}
        shipment.ids, front.ids = front.ids, {}
        if mirror:
            shipment.metrics = self._mirrored()
        if deltas or shipment.cursors or shipment.notes or shipment.metrics:
            self._send(shipment)  # blocks while the parent is behind: back-pressure

    def _send(self, message: Any) -> None:
        # a closed pipe is a parent gone (SIGKILL, OOM): _recv sees it too and stops this
        # worker; the last shipment has no one to go to, and a traceback would only be noise
        with contextlib.suppress(OSError):
            self.conn.send(message)

    def _mirrored(self) -> list[tuple[str, tuple[str, ...], float]]:
        """The source metrics that moved since the last call (counters as increments)."""
        out = []
        for attr in (*COUNTERS, *GAUGES):
            metric = getattr(self.metrics, attr)
            names = metric._labelnames
            for family in metric.collect():
                for sample in family.samples:
                    if sample.name.endswith("_created"):
                        continue
                    labels = tuple(sample.labels[n] for n in names)
                    key = (attr, labels)
                    last = self._mirror.get(key, 0.0)
                    if sample.value != last or key not in self._mirror:
                        self._mirror[key] = sample.value
                        delta = sample.value - last if attr in COUNTERS else sample.value
                        out.append((attr, labels, delta))
        return out

    async def _tick(self) -> None:
        """Idle flushes of quiet multi-line records, and the health report."""
        last_health = 0.0
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            now = time.monotonic()
            if now - self._last_feed >= FLUSH_EVERY:
                for name in list(self.front.assemblers):
                    self.front.flush(source=name)
                    self._ship(name)
            if now - last_health >= HEALTH_EVERY:
                last_health = now
                self._ship("", mirror=True)
                rss, peak = memory()
                self.conn.send(("health", self.setup.index, rss, peak, dict(self.statuses)))


def memory() -> tuple[int, int]:
    """This process's resident and peak resident memory in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rss = 0
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open("/proc/self/statm", encoding="ascii") as fh,
    ):
        rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return rss, peak


def _configure_logs(config: Config) -> None:
    """The parent's log level, format and redaction; to stderr, as the parent's."""
    from watcher.fix.redact import structlog_processor
    from watcher.logs import configure
    from watcher.wiring import build_redactor

    w = config.watcher
    configure(w.log_level, w.log_format, redact=structlog_processor(build_redactor(config)))


def serve(fd: int) -> None:
    """The worker process's entry point (launch.py): its Setup is the pipe's first message."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # (at once: see main)
    conn = Connection(fd)
    main(conn, conn.recv())


def main(conn: Any, setup: Setup) -> None:
    """The worker's life, once it has its pipe and Setup."""
    # SIGTERM from systemd (sent to the whole control group) and Ctrl-C (the whole process
    # group) are the parent's to act on: it stops its workers after their sources drained,
    # and a worker whose parent is gone stops when its pipe closes
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _configure_logs(setup.config)
    # a new interpreter (launch.py), so the CLI's GC settings are not inherited: without them
    # a worker ran a gen-0 collection every 700 allocations, several per event
    tune_gc()
    asyncio.run(Worker(conn, setup).run())
