"""The asyncio edge of the pipeline: sources -> bounded queue -> Pipeline -> store.

One Engine serves `run` (follow: sources resume from checkpoints, cursors are committed after the
groups they produced are stored) and `scan`/`replay` (bounded: sources read a window and stop,
checkpoints are neither read nor moved).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from watcher.fleet.shared_sources import Epoched, lease_name, uncount
from watcher.group.table import FINGERPRINT_VERSION, Unrecalled
from watcher.logs import Throttled
from watcher.metrics import Metrics
from watcher.model import GroupUpdate, Stats
from watcher.pipeline import Keyed, Pipeline
from watcher.sources.base import Source, SourceConfig, SourceContext, SourceStatus
from watcher.store import LeaseLost, StateStore
from watcher.store.known import KnownIds
from watcher.workers.wire import Shipment

MINER_STATE_KEY = "template_miner"
FLUSH_EVERY = 0.5  # seconds between assembler timeout checks when the queue is idle
EVICTED_FLUSH = 2000  # evicted groups held for the next commit before one is forced
# What a failing disk or file raises from a commit: the engine runs on, degraded, and retries.


@dataclass
class EngineOptions:
    """How the engine runs: follow or bounded, and how often it persists."""

    follow: bool = True
    period: tuple[float | None, float | None] = (None, None)
    queue_size: int = 64
    persist_interval: float = 5.0
    # while the store fails, at most this many groups' unsaved states are held (memory cap)
    max_unsaved_groups: int = 50_000
    shutdown_timeout: float = 10.0
    max_line_bytes: int = 64 * 1024
    progress: Callable[[Stats, int], None] | None = None
    intake: Any = None  # push sources' HTTP routes (watcher.sources.intake.Intake), daemon only
    # `shared = true` sources on a shared store: read under a source lease (watcher/fleet/)
    shared: Any = None
    # [watcher] workers > 1: a WorkerPool (watcher/workers/) reads the sources it takes
    workers: Any = None


@dataclass
class SourceState:
    """What the engine knows of one running source."""

    name: str
    failed: BaseException | None = None
    batches: int = 0
    done: bool = False
    status: SourceStatus = field(default_factory=SourceStatus)  # the source's own report


_DONE = object()
_BLIND = object()  # a group the store could not be read for (see _recall_many)


@dataclass
class _Unwritten:
    """Everything one commit must carry: held over whole when the commit fails."""

    samples_cap: int
    groups: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[Any]] = field(default_factory=dict)
    cursors: dict[str, dict[str, Any]] = field(default_factory=dict)
    miner: bool = False
    fingerprints: list[tuple[str, str, int]] = field(default_factory=list)
    activity: list[Any] = field(default_factory=list)

    def add(self, groups: list[Any], samples: dict[str, list[Any]]) -> None:
        """Newer group states replace older ones (often the same object); samples append."""
        for group in groups:
            self.groups[group.id] = group
        cap, held = self.samples_cap, self.samples
        for gid, items in samples.items():
            # the store keeps only the newest samples_cap per group: hold no more than that
            before = held.get(gid)
            merged = list(items) if before is None else before + list(items)
            held[gid] = (merged if len(merged) <= cap else merged[-cap:]) if cap else []

    def spill(self, cap: int) -> int:
        """Drop the oldest group states beyond `cap`, and the oldest new-fingerprint rows and
        activity entries beyond `cap` each; how many in all. A dropped group still in memory
        is written again when it next changes; one evicted meanwhile keeps the count of its
        last successful write. A dropped fingerprint row only loses the record of when it
        was first seen (a group's id is its first fingerprint); a dropped activity entry is a
        lifecycle change missing from the activity list (the group's state is still written)."""
        excess = len(self.groups) - cap
        for group_id in list(itertools.islice(self.groups, max(0, excess))):
            del self.groups[group_id]
            self.samples.pop(group_id, None)
        extra = max(0, len(self.fingerprints) - cap) + max(0, len(self.activity) - cap)
        self.fingerprints = self.fingerprints[-cap:]
        self.activity = self.activity[-cap:]
        return max(0, excess) + extra

    def add_cursors(self, cursors: dict[str, dict[str, Any]]) -> None:
        """Later cursors of a stream win: a commit only needs the furthest safe one."""
        for source, streams in cursors.items():
            self.cursors.setdefault(source, {}).update(streams)


@dataclass
class Engine:
    """Owns the source tasks, the queue and the persistence loop for one pipeline."""

    pipeline: Pipeline
    source_configs: Sequence[SourceConfig]
    store: StateStore | None = None
    metrics: Metrics = field(default_factory=Metrics)
    options: EngineOptions = field(default_factory=EngineOptions)
    on_updates: Callable[[list[GroupUpdate]], None] | None = None
    log: Any = field(default_factory=lambda: structlog.get_logger("watcher.engine"))
    sources: dict[str, SourceState] = field(default_factory=dict)
    ready: bool = False
    store_error: str | None = None  # set while commits fail (disk full, read-only): degraded
    _last_persist: float = 0.0
    _last_maintain: float = 0.0
    _spilled: bool = False  # a held group state was ever dropped (see clean_evicted)
    _evictions_counted: int = 0  # the table's evictions already in watcher_groups_evicted
    _persists: int = 0
    _evicted: dict[str, tuple[Any, list[Any]]] = field(default_factory=dict)
    _unwritten: _Unwritten | None = None
    # ids the store may hold: a new group not among them needs no store read (see recall)
    _stored: KnownIds = field(default_factory=KnownIds)
    # groups started afresh because the store could not be read: written as added counts
    _blind: set[str] = field(default_factory=set)
    # what the store answered for the batch being counted (None: not stored), see _apply
    _recalled: dict[str, Any] = field(default_factory=dict)
    _producers: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = field(default_factory=dict)
    _say: Any = field(default=None, init=False)  # throttled log lines (see __post_init__)
    # positions sources asked to store that no line carries (see SourceContext.note)
    _notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _queue: Any = None

    def __post_init__(self) -> None:
        self._say = Throttled(self.log, 60.0)
        for cfg in self.source_configs:  # at 0 from the start: before /metrics is first served
            self.metrics.add_source(cfg.name)

    async def run(self, shutdown: asyncio.Event) -> Stats:
        """Run until the sources end (bounded) or `shutdown` is set (follow); return the stats."""
        stats = self.pipeline.stats
        stats.started = time.time()
        await self._restore()
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.options.queue_size)
        self._queue = queue
        workers = self.options.workers
        if workers is not None:
            workers.on_note = self._note
            await workers.start(queue)
        stop_sources = asyncio.Event()
        for cfg in self.source_configs:
            self._add(cfg)
        closer = asyncio.create_task(self._close_when_done(queue, stop_sources), name="closer")
        consumer = asyncio.create_task(self._consume(queue), name="pipeline")
        self.ready = True
        try:
            await self._wait(shutdown, consumer)
        finally:
            self.ready = False
            stop_sources.set()
            for _, stop in self._producers.values():
                stop.set()
            await self._stop([task for task, _ in self._producers.values()], consumer, closer)
            if workers is not None:
                await workers.close()
            await self._finish()
            await self._persist(final=True)
            if self.options.shared is not None:  # after the final commit: hand over at once
                await self.options.shared.release_all()
        stats.finished = time.time()
        return stats

    def _add(self, cfg: SourceConfig) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(self._produce(cfg, self._queue, stop), name=f"source:{cfg.name}")
        self._producers[cfg.name] = (task, stop)

    async def _remove(self, name: str, producer: tuple[asyncio.Task[None], asyncio.Event]) -> None:
        task, stop = producer
        stop.set()
        _, pending = await asyncio.wait({task}, timeout=self.options.shutdown_timeout / 2)
        for late in pending:
            late.cancel()
        if name not in self._producers:  # not a changed source that restarted under its name
            self.sources.pop(name, None)
            self.metrics.source_up.labels(name).set(0)

    async def reconfigure(self, configs: Sequence[SourceConfig]) -> tuple[list[str], list[str]]:
        """Follow a new source list (SIGHUP): stop removed or changed sources, start new or
        changed ones; groups, windows and the other sources are untouched. (added, removed)."""
        if self._queue is None:
            raise RuntimeError("the engine is not running")
        old = {c.name: c for c in self.source_configs}
        new = {c.name: c for c in configs}
        removed = [n for n, c in old.items() if new.get(n) != c]
        added = [n for n, c in new.items() if old.get(n) != c]
        stopping = [(n, self._producers.pop(n)) for n in removed if n in self._producers]
        for name in added:  # started first: the closer must never see an empty source set
            self._add(new[name])
        for name, producer in stopping:
            await self._remove(name, producer)
        self.source_configs = list(configs)
        return added, removed

    async def _wait(self, shutdown: asyncio.Event, consumer: asyncio.Task[None]) -> None:
        stopper = asyncio.create_task(shutdown.wait())
        try:
            await asyncio.wait({stopper, consumer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if consumer.done() and consumer.exception() is not None:
            raise consumer.exception()  # type: ignore[misc]

    async def _stop(
        self,
        producers: list[asyncio.Task[None]],
        consumer: asyncio.Task[None],
        closer: asyncio.Task[None],
    ) -> None:
        """Stop sources, then let the consumer drain what they queued, within the timeout."""
        half = self.options.shutdown_timeout / 2
        if producers:
            _, pending = await asyncio.wait(producers, timeout=half)
            for task in pending:
                task.cancel()
        await asyncio.wait({closer, consumer}, return_when=asyncio.FIRST_COMPLETED)
        if not closer.done():
            # the consumer died (a pipeline error): nobody will take _DONE off a full queue, and
            # waiting for it would hang the process instead of letting it exit with the error
            closer.cancel()
            await asyncio.wait({closer})
        try:
            await asyncio.wait_for(asyncio.shield(consumer), timeout=half)
        except TimeoutError:
            self.log.warning("Queue not drained before the shutdown timeout.")
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer

    async def _close_when_done(self, queue: Any, stop: asyncio.Event) -> None:
        while True:  # sources added by reconfigure() while waiting are waited for too
            tasks = [task for task, _ in self._producers.values()]
            await asyncio.gather(*tasks, return_exceptions=True)
            if all(task.done() for task, _ in self._producers.values()):
                break
        if self.options.follow and any(s.failed for s in self.sources.values()):
            # a daemon whose sources failed stays up, not ready, until it is told to stop:
            # exiting would make a supervisor restart it into the same failure, in a loop
            await stop.wait()
        await queue.put(_DONE)

    async def _checkpoint(self, cfg: SourceConfig, *, shared: bool) -> dict[str, Any]:
        if not (self.options.follow and self.store is not None):
            return {}
        # a worker thread: the store may be a server across the network; a shared source's
        # checkpoint is the fleet's, kept under its lease's name
        key = lease_name(cfg.name) if shared else cfg.name
        return await asyncio.to_thread(self.store.get_checkpoint, key, fleet=shared)

    async def _build(
        self, cfg: SourceConfig, stop: asyncio.Event, status: SourceStatus, *, shared: bool
    ) -> Source:
        checkpoint = await self._checkpoint(cfg, shared=shared)
        ctx = SourceContext(
            shutdown=stop,
            checkpoint=checkpoint,
            metrics=self.metrics,
            log=self.log.bind(source=cfg.name),
            max_line_bytes=self.options.max_line_bytes,
            intake=self.options.intake,
            status=status,
        )
        if self.options.follow and self.store is not None and not shared:
            ctx.note = functools.partial(self._note, cfg.name)
        return cfg.build(ctx)

    def _note(self, source: str, positions: dict[str, Any]) -> None:
        """A source's positions that no line carries: stored with the next commit, which is
        brought forward (a restart before it would apply the source's first-start rules)."""
        self._notes.setdefault(source, {}).update(positions)
        self._last_persist = 0.0

    async def _produce(self, cfg: SourceConfig, queue: Any, stop: asyncio.Event) -> None:
        state = self.sources[cfg.name] = SourceState(cfg.name)
        self.metrics.add_source(cfg.name)  # a source added by a reload
        shared = self.options.shared
        try:
            if shared is not None and self.options.follow and shared.covers(cfg):
                await shared.hold(cfg.name, stop, functools.partial(self._read, cfg, queue, state))
            else:
                await self._read(cfg, queue, state, stop)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state.failed = exc
            self.metrics.source_up.labels(cfg.name).set(0)
            self.log.error("Source failed.", source=cfg.name, error=str(exc))
        finally:
            state.done = True

    async def _read(
        self,
        cfg: SourceConfig,
        queue: Any,
        state: SourceState,
        stop: asyncio.Event,
        epoch: int | None = None,
    ) -> None:
        """Read one source into the queue until `stop`; a shared source's batches carry the
        epoch of the lease they were read under."""
        workers = self.options.workers
        if epoch is None and workers is not None and workers.takes(cfg):
            checkpoint = await self._checkpoint(cfg, shared=False)
            await workers.read(cfg, checkpoint, state, stop)
            return
        source = await self._build(cfg, stop, state.status, shared=epoch is not None)
        batches = source.lines() if self.options.follow else source.window(*self.options.period)
        async for batch in batches:
            if batch:
                await queue.put(batch if epoch is None else Epoched(batch, epoch))
                state.batches += 1
            if stop.is_set():
                break

    async def _consume(self, queue: Any) -> None:
        pipeline = self.pipeline
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=FLUSH_EVERY)
            except TimeoutError:
                self._settle_shared()
                self._emit(await self._apply(pipeline.take_flushed()))
                await self._maybe_persist()
                continue
            if item is _DONE:
                return
            if type(item) is Shipment:  # a worker process's batch
                self._emit(await self._apply(self.options.workers.apply(pipeline, item)))
                self._report_progress()
                await self._maybe_persist()
                continue
            if not self._admit(item):
                continue
            started = time.perf_counter()
            self._emit(await self._apply(pipeline.take(item)))
            self.metrics.batch_latency.observe(time.perf_counter() - started)
            self._report_progress()
            await self._maybe_persist()

    def _emit(self, updates: list[GroupUpdate]) -> None:
        table = self.pipeline.table
        self.metrics.active_groups.set(len(table))
        if table.evicted != self._evictions_counted:
            # once per batch: a counter's inc takes a lock, ~4 % of a flood's replay per eviction
            self.metrics.groups_evicted.inc(table.evicted - self._evictions_counted)
            self._evictions_counted = table.evicted
        if updates and self.options.shared is not None:
            self.options.shared.observe(updates)
        if updates and self.on_updates is not None:
            self.on_updates(updates)

    def _report_progress(self) -> None:
        if self.options.progress is not None:
            self.options.progress(self.pipeline.stats, len(self.pipeline.table))

    async def _finish(self) -> None:
        self._emit(await self._apply(self.pipeline.take_flushed(force=True)))
        self._report_progress()

    async def _apply(self, keyed: Keyed) -> list[GroupUpdate]:
        """Count a batch's keyed events. The groups they need from the store are read first,
        all in one call in a worker thread: a store read on the event loop (a network round
        trip per returning pattern on PostgreSQL) would stall every source, the HTTP API and
        the health checks. A group not foreseen (an alias made within the batch) is read the
        same way when the table asks for it, and counting goes on from that event."""
        table = self.pipeline.table
        if self.store is None:  # nothing to read: recall answers from memory (replay, scan)
            return self.pipeline.apply(keyed)
        try:
            wanted = table.unknown(keyed.pending()) if table.recall is not None else set()
            while True:
                try:
                    await self._recall_many(wanted)
                except asyncio.CancelledError:
                    # stopped mid-read (the shutdown timeout): its lines' cursors are already
                    # taken, so the batch is counted now, its unread groups afresh (blind)
                    self._blind_all(wanted)
                    self._apply_blind(keyed)
                    raise
                try:
                    return self.pipeline.apply(keyed)
                except Unrecalled as miss:
                    wanted = {miss.group_id} | table.unknown(keyed.pending())
        finally:
            self._recalled.clear()

    def _apply_blind(self, keyed: Keyed) -> None:
        """Count the rest of a batch without reading the store: unread groups start afresh."""
        while True:
            try:
                self.pipeline.apply(keyed)
                return
            except Unrecalled as miss:
                self._blind_all([miss.group_id])

    def _unread(self, group_id: str) -> bool:
        """Whether recall would need the store to answer for this group (see recall)."""
        if self.store is None or group_id in self._recalled or group_id in self._evicted:
            return False
        if self._unwritten is not None and group_id in self._unwritten.groups:
            return False
        return self.store.shared or group_id in self._stored

    async def _recall_many(self, wanted: set[str]) -> None:
        """Read the groups recall will be asked for, in one store call in a worker thread."""
        ids = [group_id for group_id in wanted if self._unread(group_id)]
        if not ids:
            return
        assert self.store is not None  # _unread is False without a store
        if self.store.shared and self.store_error is not None:
            # the server is away (commits fail): a read would wait out its timeout while the
            # batch waits; the groups start afresh and add their counts once the store is back
            self._blind_all(ids)
            return
        try:
            found = await asyncio.to_thread(self.store.get_groups, ids)
        except self.store.errors as exc:
            # a store that cannot be read (a server away): the groups start afresh in memory
            # rather than stop the pipeline; the read failure is counted and said once
            self.metrics.state_errors.labels("read").inc()
            self._say("warning", "State store unreadable; returning patterns start afresh.",
                      key="recall", error=str(exc), groups=len(ids))  # fmt: skip
            self._blind_all(ids)
            return
        for group_id in ids:
            self._recalled[group_id] = found.get(group_id)

    def _blind_all(self, ids: Iterable[str]) -> None:
        for group_id in ids:
            if self._unread(group_id):
                self._recalled[group_id] = _BLIND

    async def _maybe_persist(self) -> None:
        due = time.monotonic() - self._last_persist >= self.options.persist_interval
        # a failing store is retried on the clock only, not after every batch
        crowded = len(self._evicted) >= EVICTED_FLUSH and self.store_error is None
        if due or crowded:
            await self._persist()

    async def _persist(self, *, final: bool = False) -> None:
        """Store dirty groups, then the cursors they cover (at-least-once), in a worker thread.

        A failed commit (disk full, read-only or failing file) loses nothing and stops nothing:
        its groups, samples and cursors are held and merged into the next attempt, which then
        writes them together, so counts and cursors still commit as one.
        """
        self._last_persist = time.monotonic()
        self._maintain(final)
        if self.store is None:
            self.pipeline.table.take_records()  # nowhere to keep them: do not let them pile up
            return
        pending = self._collect()
        self._persists += 1
        miner = None
        if final or pending.miner or self._persists % 12 == 0:
            miner = self.pipeline.table.miner.snapshot()
        groups = list(pending.groups.values())
        for group in groups:  # before the write: a "maybe" for a failed one costs one read
            self._stored.add(group.id)
        blind = {group.id for group in groups if group.id in self._blind}
        try:
            await self._commit(groups, pending, miner, blind)
        except (*self.store.errors, OSError) as exc:
            pending.miner = miner is not None
            self._spill(pending)
            self._unwritten = pending
            self.metrics.state_unsaved.set(len(pending.groups))
            self._write_failed(exc, final=final)
            return
        self.metrics.state_unsaved.set(0)
        self._write_recovered(len(groups))
        self._reread(blind)

    def _maintain(self, final: bool) -> None:
        """Consolidate the miner's clusters on the clock (persist_interval), not at every
        commit: a flood of new groups forces a commit every EVICTED_FLUSH evictions, and a pass
        over the 10,000 live clusters at each was ~8 % of the daemon's CPU."""
        now = time.monotonic()
        if final or now - self._last_maintain >= self.options.persist_interval:
            self._last_maintain = now
            self.pipeline.table.maintain()

    def _reread(self, blind: set[str]) -> None:
        """Groups started afresh while the store was unreadable have added their counts to
        it: out of memory with them, so the next event recalls the stored pattern whole (its
        lifecycle state, tags, status) instead of overwriting it with the fresh copy."""
        for group_id in blind:
            self._blind.discard(group_id)
            self.pipeline.table.release(group_id)

    async def _commit(
        self, groups: list[Any], pending: _Unwritten, miner: Any, blind: set[str]
    ) -> None:
        """One commit; shared sources' counts and cursors go only under their lease's epoch: a
        commit refused on a lost lease is made again without what that source counted."""
        shared = self.options.shared
        while True:
            fences = shared.fences(pending.cursors) if shared is not None else {}
            try:
                await asyncio.to_thread(_write, self.store, groups, pending, miner, fences, blind)
            except LeaseLost:
                assert shared is not None  # only a fenced commit is refused on a lease
                shared.lost(await shared.refused(fences))
                self._settle_shared(pending)
                continue
            if shared is not None:
                shared.committed()
            return

    def _admit(self, batch: list[Any]) -> bool:
        """Whether to count a batch (not one of a shared source's tenure that ended)."""
        shared = self.options.shared
        if shared is None:
            return True
        self._settle_shared()
        return bool(shared.admit(batch))

    def _settle_shared(self, pending: _Unwritten | None = None) -> None:
        """Take back what shared sources whose lease was lost counted since the last commit,
        with their open records and uncommitted cursors: their next holder reads them again."""
        shared = self.options.shared
        if shared is None:
            return
        for source, counted in shared.take_revoked().items():
            for group_id, events in counted.items():
                group = self.pipeline.table.find(group_id) or self.held(group_id)
                if group is None and pending is not None:
                    group = pending.groups.get(group_id)
                if group is not None:
                    uncount(group, source, events)
            self.pipeline.forget(source)
            self._notes.pop(source, None)
            for held in (pending, self._unwritten):
                if held is not None:
                    held.cursors.pop(source, None)

    def _collect(self) -> _Unwritten:
        """What the next commit carries: any held-over failed commit, then what is new."""
        self._settle_shared()
        pending = self._unwritten or _Unwritten(self.pipeline.table.samples_per_group)
        self._unwritten = None
        table = self.pipeline.table
        pending.add(*table.take_dirty())
        fingerprints, activity = table.take_records()
        pending.fingerprints.extend(fingerprints)
        pending.activity.extend(activity)
        for group, held in self._evicted.values():
            pending.add([group], {group.id: held} if held else {})
        self._evicted = {}
        if self.options.follow:
            # notes first: a line's cursor read after a note is further on and must win
            pending.add_cursors(self._notes)
            self._notes = {}
            pending.add_cursors(self.pipeline.take_cursors())
        return pending

    def _spill(self, pending: _Unwritten) -> None:
        """Past max_unsaved_groups held states, drop the oldest (counted): a store that fails
        for long must not take the daemon's memory with it (373 MB and climbing with 200k
        unique errors)."""
        dropped = pending.spill(self.options.max_unsaved_groups)
        if dropped:
            self._spilled = True
            self.metrics.state_unsaved_dropped.inc(dropped)
            self._say(
                "error",
                "State store still failing: unsaved group states dropped to bound memory.",
                key="spill",
                dropped=dropped,
                held=len(pending.groups),
            )

    def _write_failed(self, exc: BaseException, *, final: bool) -> None:
        errors = self.store.errors if self.store is not None else ()
        if not isinstance(exc, errors):  # the store counts its own backend's errors
            self.metrics.state_errors.labels("write").inc()
        held = len(self._unwritten.groups) if self._unwritten else 0
        path = getattr(self.store, "path", None)
        if final:
            self.log.error(
                "State not saved at shutdown; the next start resumes from the last saved "
                "checkpoints and reads the rest again.",
                error=str(exc),
                path=path,
                groups_held=held,
            )
        elif self.store_error is None:
            self.log.error(
                "State store write failed; counting goes on in memory and the write is "
                "retried at every persist.",
                error=str(exc),
                path=path,
                groups_held=held,
            )
        else:
            self.log.debug("State store write failed again.", error=str(exc), groups_held=held)
        self.store_error = str(exc)

    def _write_recovered(self, groups: int) -> None:
        if self.store_error is not None:
            self.log.info("State store writable again; held state written.", groups=groups)
        self.store_error = None

    async def _restore(self) -> None:
        if self.store is None:
            return
        store = self.store
        table = self.pipeline.table
        state = await asyncio.to_thread(store.get_state, MINER_STATE_KEY)
        if state:
            try:
                table.miner.restore(state)
            except (ValueError, KeyError, TypeError) as exc:
                self.metrics.state_errors.labels("miner_state").inc()
                self.log.warning("Template state unreadable; starting fresh.", error=str(exc))
        groups = await asyncio.to_thread(
            store.list_groups, limit=table.max_groups, order="last_seen"
        )
        table.load(groups)
        owned = await asyncio.to_thread(store.fingerprints)
        table.aliases.update({fp: gid for fp, gid, _ in owned})
        table.legacy.update(await asyncio.to_thread(store.legacy_fingerprints, FINGERPRINT_VERSION))
        if not store.shared:  # a shared store gains ids from other watchers: no filter then
            await asyncio.to_thread(store.each_group_id, self._stored.add)

    def evicted(self, group: Any, samples: list[Any]) -> None:
        """on_evict hook: keep the group until the next commit, which writes it with the cursors.

        Writing it at once would put counts in the store whose cursors are not yet committed;
        a crash in between would count those events twice after the restart.
        """
        if self.store is None:
            return
        held = self._evicted.get(group.id)
        self._evicted[group.id] = (group, (held[1] if held else []) + list(samples))

    def clean_evicted(self, group: Any) -> bool:
        """on_evict_clean hook: a group evicted unchanged since its state was committed needs
        no second write, while commits succeed. A failing store holds states that may not have
        landed, and one that once dropped held states (spill) may have lost one such group's:
        then it is held and written as any evicted group."""
        return (
            self.store is not None
            and self.store_error is None
            and self._unwritten is None
            and not self._spilled
        )

    def persist_soon(self) -> None:
        """Commit at the next chance (a lifecycle change made by hand must not wait)."""
        self._last_persist = 0.0

    def held(self, group_id: str) -> Any:
        """A group evicted or held by a failed commit, not yet stored (without taking it)."""
        held = self._evicted.get(group_id)
        if held is not None:
            return held[0]
        if self._unwritten is not None:
            return self._unwritten.groups.get(group_id)
        return None

    def forget(self, group_id: str) -> None:
        """Drop what is held for a group merged away (it must not be written back)."""
        self._evicted.pop(group_id, None)
        if self._unwritten is not None:
            self._unwritten.groups.pop(group_id, None)
            self._unwritten.samples.pop(group_id, None)

    def recall(self, group_id: str) -> Any:
        """recall hook: a group evicted but not yet committed comes back from memory, a stored
        one from what `_apply` read for the batch; Unrecalled when it was not read."""
        held = self._evicted.pop(group_id, None)
        if held is not None:
            return held[0]
        if self._unwritten is not None and group_id in self._unwritten.groups:
            # newer than the store's copy, which a failed commit did not update
            return self._unwritten.groups[group_id]
        if self.store is None:
            return None
        if not self.store.shared and group_id not in self._stored:
            return None  # never written by this watcher nor found at start: not in the store
        if group_id not in self._recalled:
            raise Unrecalled(group_id)  # never read on the event loop: _apply reads it
        group = self._recalled[group_id]
        if group is _BLIND:
            self._blind.add(group_id)
            return None
        if group is not None:
            del self._recalled[group_id]  # one copy only: it is live (or held) from now on
        return group


def _write(
    store: StateStore,
    groups: list[Any],
    pending: _Unwritten,
    miner: Any,
    fences: dict[str, Any],
    blind: set[str],
) -> None:
    state = {MINER_STATE_KEY: miner} if miner is not None else None
    store.commit(
        groups,
        pending.samples,
        pending.cursors,
        state,
        fingerprints=pending.fingerprints,
        activity=pending.activity,
        fences=fences,
        blind=blind,
    )
