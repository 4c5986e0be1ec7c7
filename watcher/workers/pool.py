"""The parent's side of the worker processes: placing sources, taking their shipments in,
restarting a worker that died.

Each worker's pipe is read by a thread of its own, which hands shipments to the engine's bounded
queue and waits while it is full: a parent that falls behind slows the workers down (their send
blocks) instead of growing a backlog, and the event loop never blocks on a pipe.

A worker that dies is started again with the sources it hosted. Each resumes after what the
parent already has: in follow mode from the last safe cursors received (a checkpoint, as after a
restart of the daemon), in scan/replay mode after the number of lines received. A multi-line
record being assembled in the dead worker is read again in follow mode; in scan/replay mode its
lines are already counted as read and the record is lost (at most one per stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from watcher.config import Config
from watcher.metrics import Metrics
from watcher.pipeline import Keyed, Pipeline
from watcher.sources.base import SourceConfig
from watcher.workers import PORTABLE, wire
from watcher.workers.child import COUNTERS, Setup
from watcher.workers.launch import WorkerProcess
from watcher.workers.wire import Shipment, unpack_class, unpack_event

JOIN_TIMEOUT = 5.0
# shipments of one worker taken off its pipe but not yet counted: a flood of unique errors
# ships ~2,000 events a batch (~2-3 MB once unpickled), and a queue of 64 such batches held
# 100+ MB in the parent; 4 a worker still cost ~8 MB of the parent's peak RSS against 2 (one
# being counted, one ready), which keep the parent as busy
IN_FLIGHT = 2


class WorkerSourceError(Exception):
    """A source failed in a worker process: its message, as the source raised it."""


@dataclass
class _Hosted:
    """A source a worker reads, and how far the parent has its lines."""

    key: str  # this reading of the source (a changed source restarts under its name)
    cfg: SourceConfig
    checkpoint: dict[str, Any]
    state: Any  # the engine's SourceState
    done: asyncio.Future[str | None]
    worker: int
    lines: int = 0  # received: a restart in scan/replay mode skips them
    cursors: dict[str, Any] = field(default_factory=dict)  # received: a restart resumes there


@dataclass
class _Worker:
    """One worker process as the parent sees it."""

    index: int
    process: Any = None
    conn: Any = None
    restarts: int = 0
    rss: int = 0
    peak: int = 0
    exitcode: int | None = None
    in_flight: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(IN_FLIGHT)
    )


class WorkerPool:
    """N worker processes hosting the portable sources of one engine."""

    def __init__(
        self,
        count: int,
        config: Config,
        *,
        follow: bool,
        period: tuple[float | None, float | None] = (None, None),
        ship_ignored: bool = False,
        metrics: Metrics | None = None,
        log: Any = None,
    ) -> None:
        self.count = count
        self.config = config
        self.follow = follow
        self.period = period
        self.ship_ignored = ship_ignored
        self.metrics = metrics or Metrics()
        self.log = log or structlog.get_logger("watcher.workers")
        self.workers = [_Worker(i) for i in range(count)]
        self.hosted: dict[str, _Hosted] = {}  # by source name: the latest reading
        self._readings: dict[str, _Hosted] = {}  # by key: every reading not yet ended
        self._seq = itertools.count(1)
        self.on_note: Callable[[str, dict[str, Any]], None] | None = None
        self._premasked: dict[str, str] = {}
        self._ids: dict[str, str] = {}  # masked text -> cluster id, from the shipment's worker
        self._queue: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def takes(self, cfg: SourceConfig) -> bool:
        """Whether `cfg` is read by a worker (else by the parent, as with workers = 1)."""
        return cfg.type in PORTABLE

    def install(self, pipeline: Pipeline) -> None:
        """Let the parent's miner use the text a worker masked (the same function's output:
        grouping is unchanged; a message without it is masked here as before)."""
        miner = pipeline.table.miner
        mask, joined, made = type(miner).tokens_of, type(miner).joined_of, type(miner).id_of
        premasked, ids = self._premasked, self._ids

        def joined_of(message: str) -> str:
            masked = premasked.pop(message, None)
            return joined(message) if masked is None else masked

        def tokens_of(message: str) -> list[str]:
            masked = premasked.pop(message, None)
            return mask(message) if masked is None else masked.split()

        def id_of(template: str) -> str:
            cid = ids.pop(template, None)
            return made(template) if cid is None else cid

        with contextlib.suppress(AttributeError):  # a miner without the seams masks for itself
            miner.tokens_of = tokens_of  # type: ignore[method-assign]
            miner.joined_of = joined_of  # type: ignore[method-assign]
            miner.id_of = id_of  # type: ignore[method-assign]

    # -- the engine's side ------------------------------------------------------------------

    async def start(self, queue: Any) -> None:
        """Shipments go to `queue` (the engine's); workers start with their first source."""
        self._queue = queue
        self._loop = asyncio.get_running_loop()

    async def read(
        self,
        cfg: SourceConfig,
        checkpoint: dict[str, Any],
        state: Any,
        stop: asyncio.Event,
    ) -> None:
        """Have a worker read `cfg` until it ends or `stop` is set; raise what it failed with."""
        assert self._loop is not None, "start() first"
        worker = self._place()
        done: asyncio.Future[str | None] = self._loop.create_future()
        key = f"{cfg.name}#{next(self._seq)}"
        hosted = _Hosted(key, cfg, dict(checkpoint or {}), state, done, worker.index)
        self.hosted[cfg.name] = self._readings[key] = hosted
        if worker.process is None:
            self._spawn(worker)
        self._send(worker, ("start", key, cfg, hosted.checkpoint, 0))
        self.metrics.source_up.labels(cfg.name).set(1)
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({stopper, done}, return_when=asyncio.FIRST_COMPLETED)
            if not done.done():
                self._send(self.workers[hosted.worker], ("stop", key))
                await done
        finally:
            stopper.cancel()
            self._readings.pop(key, None)
            if self.hosted.get(cfg.name) is hosted:
                del self.hosted[cfg.name]
            if not done.done():  # cancelled (a shutdown timeout): the worker stops it too
                self._send(self.workers[hosted.worker], ("stop", key))
        error = done.result()
        if error is not None:
            raise WorkerSourceError(error)

    def apply(self, pipeline: Pipeline, shipment: Shipment) -> Keyed:
        """Take a shipment into the parent's pipeline: its counters and cursors at once, its
        error events keyed (the parent's miner learns them, in order) for the engine to count
        once it has read the groups they need from the store."""
        with contextlib.suppress(ValueError):  # (a worker restarted meanwhile has a new one)
            self.workers[shipment.worker].in_flight.release()
        stats = pipeline.stats
        for name, delta in shipment.stats.items():
            setattr(stats, name, getattr(stats, name) + delta)
        metrics = pipeline.metrics
        for source, n in shipment.lines.items():
            stats.lines_by_source[source] = stats.lines_by_source.get(source, 0) + n
            metrics.lines.labels(source).inc(n)
            hosted = self.hosted.get(source)
            if hosted is not None:
                hosted.state.batches += 1
        for source, n in shipment.events.items():
            metrics.events.labels(source).inc(n)
        for attr, labels, value in shipment.metrics:
            child = getattr(metrics, attr).labels(*labels)
            child.inc(value) if attr in COUNTERS else child.set(value)
        if self.on_note is not None:
            for source, positions in shipment.notes.items():
                self.on_note(source, positions)
        for source, cursors in shipment.cursors.items():
            pipeline.note_cursors(source, cursors)
        keyed = Keyed()
        if not shipment.errors:
            return keyed
        self._premasked.update(shipment.masked)
        self._ids.update(shipment.ids)
        append = keyed.items.append
        if type(pipeline).key is Pipeline.key:
            # Pipeline.key inlined (a call per event of a flood): the miner learns the message
            key, clock = pipeline.table.key, pipeline.clock
            classes = wire._CLASSES  # unpack_class's memo, looked up here first (a call less)
            for packed, packed_cls in shipment.errors:
                event = unpack_event(packed)
                cls = classes.get(packed_cls) or unpack_class(packed_cls)
                if cls.ignored:  # shipped for the on_event hook only (`--emit events`)
                    append((event, cls, None, None))
                else:
                    at = clock() if clock else None  # (before the key, as Pipeline.key)
                    append((event, cls, key(event), at))
        else:
            for packed, packed_cls in shipment.errors:
                event, cls = unpack_event(packed), unpack_class(packed_cls)
                if cls.ignored:
                    append((event, cls, None, None))
                else:
                    pipeline.key(event, cls, keyed)
        self._premasked.clear()  # those the miner found in its own cache
        self._ids.clear()  # (those of texts that made no new cluster)
        return keyed

    def reload(self, config: Config) -> None:
        """A reloaded config (SIGHUP): its classification rules and [redact] patterns reach
        every worker, and a worker started later starts with them."""
        self.config = config
        for worker in self.workers:
            if worker.process is not None:
                self._send(worker, ("config", config))

    def health(self) -> list[dict[str, Any]]:
        """Per worker: its process, memory, restarts and sources (for /ready and `status`)."""
        out = []
        for worker in self.workers:
            process = worker.process
            mine = sorted({h.cfg.name for h in self._readings.values() if h.worker == worker.index})
            out.append(
                {
                    "worker": worker.index,
                    "pid": process.pid if process is not None else None,
                    "alive": bool(process is not None and process.is_alive()),
                    "restarts": worker.restarts,
                    "rss_bytes": worker.rss,
                    "peak_rss_bytes": worker.peak,
                    "sources": mine,
                }
            )
        return out

    async def close(self) -> None:
        """Stop every worker (their sources have ended or been stopped by then)."""
        self._closing = True
        for worker in self.workers:
            if worker.process is not None:
                self._send(worker, ("quit",))
        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        for worker in self.workers:
            process = worker.process
            if process is None:
                continue
            process.join(JOIN_TIMEOUT)
            if process.is_alive():
                process.kill()
                process.join(JOIN_TIMEOUT)
            worker.conn.close()

    # -- processes ---------------------------------------------------------------------------

    def _place(self) -> _Worker:
        """The worker with the fewest sources (the lowest index on a tie)."""
        load = [0] * self.count
        for hosted in self._readings.values():
            load[hosted.worker] += 1
        return self.workers[min(range(self.count), key=lambda i: (load[i], i))]

    def _spawn(self, worker: _Worker) -> None:
        setup = Setup(worker.index, self.config, self.follow, self.period, self.ship_ignored)
        process = WorkerProcess(setup, f"watcher-worker-{worker.index}")  # (see launch.py)
        ours = process.conn
        worker.process, worker.conn = process, ours
        threading.Thread(
            target=self._pump, args=(worker, ours), name=f"worker-{worker.index}", daemon=True
        ).start()

    def _send(self, worker: _Worker, command: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError, ValueError):  # a dead worker: _died restarts it
            worker.conn.send(command)

    def _pump(self, worker: _Worker, conn: Any) -> None:
        """A thread per worker: its messages into the engine's queue, in order."""
        loop = self._loop
        assert loop is not None
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if isinstance(message, Shipment):
                while not worker.in_flight.acquire(timeout=1.0):
                    if self._closing or loop.is_closed():
                        return
                self._received(message)
                try:
                    future = asyncio.run_coroutine_threadsafe(self._queue.put(message), loop)
                except RuntimeError:  # the loop closed: nobody counts it any more
                    return
                while not self._wait(future):
                    if self._closing or loop.is_closed():
                        future.cancel()
                        return
            elif message[0] == "done":
                loop.call_soon_threadsafe(self._done, message[1], message[2])
            elif message[0] == "health":
                self._health(worker, *message[2:])
        with contextlib.suppress(RuntimeError):  # the loop closed: we were closing
            loop.call_soon_threadsafe(self._died, worker, conn)

    @staticmethod
    def _wait(future: Any) -> bool:
        try:
            future.result(timeout=1.0)
        except TimeoutError:
            return False
        except Exception:  # the loop is shutting down: the shipment is not needed any more
            return True
        return True

    def _received(self, shipment: Shipment) -> None:
        """What the parent has of each source: where a restarted worker resumes."""
        for source, n in shipment.lines.items():
            hosted = self.hosted.get(source)
            if hosted is not None:
                hosted.lines += n
        for source, cursors in shipment.cursors.items():
            hosted = self.hosted.get(source)
            if hosted is not None:
                hosted.cursors.update(cursors)

    def _health(self, worker: _Worker, rss: int, peak: int, statuses: dict[str, Any]) -> None:
        worker.rss, worker.peak = rss, peak
        label = str(worker.index)
        self.metrics.worker_rss.labels(label).set(rss)
        for name, status in statuses.items():
            hosted = self.hosted.get(name)
            if hosted is not None:
                hosted.state.status = status

    def _done(self, key: str, error: str | None) -> None:
        hosted = self._readings.get(key)
        if hosted is not None and not hosted.done.done():
            hosted.done.set_result(error)
            if self.hosted.get(hosted.cfg.name) is hosted:
                self.metrics.source_up.labels(hosted.cfg.name).set(0)

    def _died(self, worker: _Worker, conn: Any) -> None:
        """A worker's pipe closed: unless we are closing, it died; start it again with its
        sources, each resuming after what the parent already has."""
        if self._closing or conn is not worker.conn:
            return
        process = worker.process
        with contextlib.suppress(Exception):
            process.join(0.1)
        worker.exitcode = process.exitcode if process is not None else None
        worker.restarts += 1
        label = str(worker.index)
        self.metrics.worker_restarts.labels(label).inc()
        mine = [
            h for h in self._readings.values() if h.worker == worker.index and not h.done.done()
        ]
        self.log.error(
            "Worker process died; started again.",
            worker=worker.index,
            exitcode=worker.exitcode,
            sources=[h.cfg.name for h in mine],
        )
        conn.close()
        try:
            self._spawn(worker)
        except Exception as exc:  # (the fork server gone too): its sources fail, named
            self.log.error("Worker process could not be started again.", error=str(exc))
            for hosted in mine:
                self._done(hosted.key, f"worker {worker.index} died: {exc}")
            worker.process = None
            return
        for hosted in mine:
            if self.follow:
                checkpoint, skip = {**hosted.checkpoint, **hosted.cursors}, 0
            else:
                checkpoint, skip = hosted.checkpoint, hosted.lines
            self._send(worker, ("start", hosted.key, hosted.cfg, checkpoint, skip))
