"""`watcher run`: the long-running daemon — signals, sd_notify, HTTP, periodic summaries.

Lifecycle in one place: SIGTERM/SIGINT set the shutdown event (a second one forces exit),
SIGHUP reloads the classification rules; shutdown order is stop sources -> drain the queue
within the timeout -> flush state -> close HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import importlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from watcher import reclassify
from watcher.announce import Announcer
from watcher.config import Config, ConfigError, load_config
from watcher.daemon_view import DaemonView
from watcher.engine import Engine
from watcher.fdlimit import raise_fd_limit
from watcher.fleet import Fleet, InstanceTaken
from watcher.fleet.board import FleetCollector
from watcher.fleet.leader import NOT_LEADER, Leader, holder_id
from watcher.fleet.roles import deliver_alerts, lead_fixes
from watcher.http.app import AppState, bound_port, make_app, start
from watcher.http.links import linker
from watcher.http.security import SecurityConfig, allowed_hosts
from watcher.logs import configure as configure_logs
from watcher.logs import loop_exception_handler
from watcher.metrics import Metrics
from watcher.sources.intake import Intake
from watcher.store import MEMORY, StateStore, open_configured
from watcher.store.lock import StateLock, StateLocked
from watcher.wiring import build_engine, build_pipeline, build_redactor, rules_from, seconds

RATES_SAVED = 5.0  # seconds between saves of the API's error rate history (when it changed)
# config sections a SIGHUP applies to the running daemon; any other change needs a restart
RELOADABLE = ("classify", "redact", "sources")

log = structlog.get_logger("watcher.daemon")


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when systemd wants none.

    The sd_watchdog_enabled(3) rules: WATCHDOG_USEC must be a positive integer, and a
    WATCHDOG_PID other than ours means the variables were inherited, not meant for us.
    """
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
        pid = int(env.get("WATCHDOG_PID") or os.getpid())
    except ValueError:
        return None
    if usec <= 0 or pid != os.getpid():
        return None
    return usec / 2_000_000


async def watchdog(interval: float | None) -> None:
    """Ping systemd's watchdog from the event loop: a loop that hangs stops the pings."""
    if interval is None:
        return
    while True:
        sd_notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def ingest_paths(config: Config) -> frozenset[str]:
    """The HTTP paths push sources (OTLP) serve; routed at start (a new path needs a restart)."""
    return frozenset(str(s.path) for s in config.sources if s.type == "otlp")


class Daemon:
    """Owns the engine, the HTTP server and the signal handlers of one `watcher run`."""

    def __init__(self, config: Config, *, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.shutdown = asyncio.Event()
        self.signals = 0
        self.store: StateStore | None = None
        self.engine: Engine | None = None
        self.leader: Leader | None = None
        self.http_port: int | None = None
        self.started = asyncio.Event()
        self.redactor = build_redactor(config)  # replaced by a reload: use it through these
        self.redact: Any = lambda text: self.redactor.redact(text)
        self.redact_obj: Any = lambda value: self.redactor.redact_obj(value)
        self.view: Any = None
        self.fixer: Any = None
        self.intake = Intake()  # push sources' routes on the HTTP server (OTLP)
        self._fix_tasks: set[asyncio.Task[Any]] = set()
        self.announcer = Announcer()  # NEW / ALERT / FIX / summary records in the daemon's log
        self.fleet: Fleet | None = None  # this instance's row and heartbeat; the fleet's rows
        self.exit_code = 0

    def _on_signal(self, signum: int) -> None:
        self.signals += 1
        if self.signals > 1:
            log.warning("Second signal: exiting now.", signal=signal.Signals(signum).name)
            os._exit(130)
        log.info("Shutting down.", signal=signal.Signals(signum).name)
        self.shutdown.set()

    def _on_reload(self) -> None:
        """SIGHUP: re-read the config file; apply its classification rules, its [redact]
        patterns and its sources (added, removed or changed ones restart; the groups and other
        sources are untouched). Other changed sections are named as needing a restart."""
        if self.engine is None or self.config.path is None:
            return
        try:
            fresh = load_config(self.config.path)
        except Exception as exc:
            log.error("Reload failed; keeping the running config.", error=str(exc))
            return
        self.engine.pipeline.rules = tuple(rules_from(fresh))
        if self.engine.options.workers is not None:  # they classify their sources' events
            self.engine.options.workers.reload(fresh)
        self._spawn(self._reclassify(), "reclassify")
        if fresh.redact != self.config.redact:
            self._reload_redaction(fresh)
        self._spawn(self._reload_sources(fresh), "reload")

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._fix_tasks.add(task)
        task.add_done_callback(self._fix_tasks.discard)

    async def _reclassify(self, *, at_start: bool = False) -> None:
        """Every live and stored pattern classified again with the current rules; each change
        recorded ("reclassified") and announced. At start only when the rules (or the watcher
        version) changed since the state file last saw them."""
        assert self.engine is not None and self.store is not None
        table, rules = self.engine.pipeline.table, self.engine.pipeline.rules
        try:
            changed = await asyncio.to_thread(reclassify.rules_changed, self.store, rules)
            if at_start and not changed:
                return
            live = [dataclasses.replace(g, samples=list(g.samples)) for g in table.snapshot()]
            verdicts = await asyncio.to_thread(reclassify.verdicts, live, rules)
            now, changed_live = time.time(), 0
            for verdict in verdicts:
                group = table.find(verdict.group_id)
                entry = reclassify.apply(group, verdict, now) if group is not None else None
                if group is not None and entry is not None:
                    table.rebase(group.id, group.severity)
                    table.record(group, entry)
                    changed_live += 1
            stored: list[Any] = []
            if self._leading():  # stored patterns are the fleet's: the leader re-classifies
                stored = await asyncio.to_thread(
                    reclassify.reclassify_stored, self.store, rules, now, [g.id for g in live]
                )
        except Exception as exc:  # a failing store must not take the reload down with it
            log.error("Re-classification failed.", error=repr(exc))
            return
        for group, entry in stored:
            table.life.notify(group, entry)
        self.engine.persist_soon()
        log.info("Patterns re-classified.", changed_live=changed_live, changed_stored=len(stored))

    def _reload_redaction(self, fresh: Config) -> None:
        """New [redact] patterns for everything that leaves the process: the API, alerts, the
        state file (through self.redact/redact_obj) and the daemon's own log."""
        from watcher.fix.redact import structlog_processor

        self.redactor = build_redactor(fresh)
        own = self.config.watcher
        configure_logs(own.log_level, own.log_format, redact=structlog_processor(self.redactor))

    async def _reload_sources(self, fresh: Config) -> None:
        assert self.engine is not None
        added, removed = await self.engine.reconfigure(list(fresh.sources))
        restart = restart_needed(self.config, fresh)
        self.config = replace(
            self.config, sources=fresh.sources, classify=fresh.classify, redact=fresh.redact
        )
        event = "Reloaded the config."
        if restart:
            event = "Reloaded the config; changed sections that need a restart were not applied."
        log.log(
            logging.WARNING if restart else logging.INFO,
            event,
            applied=list(RELOADABLE),
            rules=len(fresh.classify.rules),
            sources_added=added,
            sources_removed=removed,
            restart_needed=restart,
        )

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload)

    def _ready(self) -> tuple[bool, dict[str, Any]]:
        engine = self.engine
        if engine is None or not engine.ready:
            return False, {"reason": "starting"}
        failed = {n: str(s.failed) for n, s in engine.sources.items() if s.failed is not None}
        # A source that reads nothing for a reason only the user can fix (no file matches its
        # path, its program is not on PATH) is not ready: never healthy while blind.
        blind = {
            n: s.status.problem
            for n, s in engine.sources.items()
            if s.failed is None and s.status.problem is not None
        }
        detail: dict[str, Any] = {"failed": failed, "blind": blind}
        if failed or blind:
            problems = {**failed, **blind}.items()
            detail["reason"] = "; ".join(f"source {name}: {why}" for name, why in problems)
        # A failing store is reported, not judged: lines are still counted and /metrics flows,
        # and a restart (or being taken out of service) would not give the disk room back.
        detail["store"] = self._store_health()
        if self.leader is not None:  # reported, not judged: a follower is as ready as a leader
            detail["leader"] = self.leader.health()
        shared = engine.options.shared
        if shared is not None:  # which shared sources this watcher reads, which it stands by for
            detail["shared_sources"] = shared.status()
        workers = engine.options.workers
        if workers is not None:  # reported, not judged: a worker that died was started again
            detail["workers"] = workers.health()
        return not failed and not blind, detail

    def _store_health(self) -> dict[str, Any]:
        error = self.engine.store_error if self.engine is not None else None
        store = self.store
        health: dict[str, Any] = {"status": "ok"}
        if store is not None and store.damaged is not None:
            health = {"status": "damaged", "error": store.damaged}
        elif error is not None:
            health = {"status": "degraded", "error": error}
        elif store is not None and store.degraded is not None:
            health = {"status": "memory", "error": store.degraded}
        if store is not None and store.recovered is not None:
            health["recovered"] = {"reason": store.recovered, "salvaged": store.salvaged}
        return health

    async def _integrity_checks(self, interval: float) -> None:
        """Every `interval` seconds, PRAGMA quick_check on the state file (in a thread): damage
        while running (a bad disk, a file written by something else) is reported on health."""
        if interval <= 0 or self.store is None or self.store.path == MEMORY:
            return
        while True:
            await asyncio.sleep(interval)
            was = self.store.damaged
            try:
                problem = await asyncio.to_thread(self.store.check_integrity)
            except Exception as exc:  # a closed or locked store: try again next time
                log.debug("Integrity check not run.", error=str(exc))
                continue
            if problem is not None and was is None:
                log.error(
                    "State file damaged while running; a restart sets it aside and salvages "
                    "what it can.",
                    path=self.store.path,
                    error=problem,
                )

    async def run(self) -> int:
        """Run until a signal; return the exit code (0 on a clean shutdown, 2 when another
        daemon holds the state file)."""
        lock = StateLock(self.config.watcher.state_path)
        # a shared (PostgreSQL) state is meant for several watchers: no state file to lock
        if self.config.watcher.state_path != MEMORY and not self.config.watcher.shared:
            try:
                lock.acquire()
            except StateLocked as exc:
                log.error("Refusing to start: the state file is in use.", error=str(exc))
                return 2
            except OSError as exc:  # an unwritable directory: the store runs in memory
                log.warning("State file lock not taken.", path=lock.path, error=str(exc))
        try:
            return await self._run()
        finally:
            lock.release()

    async def _run(self) -> int:
        config = self.config
        before, now = raise_fd_limit()
        if now != before:
            log.debug("Raised the open file limit.", soft_before=before, soft=now)
        asyncio.get_running_loop().set_exception_handler(loop_exception_handler(log))
        self.store = await asyncio.to_thread(  # a server may take its time to answer
            open_configured,
            config,
            metrics=self.metrics,
            samples_per_group=config.grouping.samples_per_group,
            fallback_to_memory=True,  # an unwritable state path must not crash-loop the daemon
            redact=self.redact,
        )
        if not await self._join_fleet():
            return 2
        if config.autofix.enabled:  # heavy imports (the SDKs): off the loop, before leading
            await asyncio.to_thread(importlib.import_module, "watcher.fix.pipeline")
        self.leader = Leader(
            self.store,
            holder_id(config.watcher.instance or socket.gethostname()),
            ttl=config.watcher.lease_ttl,
            metrics=self.metrics,
        )
        await self.leader.step()  # the first watcher up leads at once (and re-classifies)
        pipeline = build_pipeline(config, self.metrics, clock=time.time)
        pipeline.table.clock = time.time  # live: an event without a timestamp happened now
        self.engine = build_engine(
            config,
            pipeline,
            list(config.sources),
            metrics=self.metrics,
            store=self.store,
            follow=True,
            intake=self.intake,
        )
        self.view = DaemonView(
            self.engine, self.store, self.metrics, interval=seconds(config.watcher.interval)
        )
        await self.view.restore()
        await self._reclassify(at_start=True)
        try:  # first: a port in use must stop the start before any task runs
            runner = await self._serve()
        except BaseException:
            await self.fleet.leave()  # type: ignore[union-attr]
            self.store.close()
            raise
        alerter = self._alerter()
        deliver_alerts(alerter, self.store, self.leader, self.redact)  # shared: the leader sends
        alerts_stop, leader_stop = asyncio.Event(), asyncio.Event()
        leading = asyncio.create_task(self.leader.run(leader_stop), name="leader")
        alerts = None
        hooks: list[Any] = [self.view.observe, self.announcer.observe]
        if alerter is not None:
            hooks.append(alerter.observe)
            self.engine.pipeline.table.life.subscribe(_lifecycle_alerts(alerter))
            alerts = asyncio.create_task(alerter.run(alerts_stop), name="alerts")
        self.engine.on_updates = _fan_out(hooks)
        fix_task = await self._start_autofix(alerter)
        self._install_signals()
        log.info(
            "Watching.",
            sources=[s.name for s in config.sources],
            listen=config.http.listen if config.http.enabled else None,
        )
        summary = asyncio.create_task(self._summaries(), name="summaries")
        rates_saver = asyncio.create_task(self._save_rates(), name="rates")
        checker = asyncio.create_task(
            self._integrity_checks(seconds(config.watcher.integrity_check_interval)),
            name="integrity",
        )
        beats = asyncio.create_task(self.fleet.run(self._displaced), name="heartbeat")  # type: ignore[union-attr]
        sd_notify("READY=1")
        pinger = asyncio.create_task(watchdog(watchdog_interval()), name="watchdog")
        self.started.set()
        try:
            await self.engine.run(self.shutdown)
        finally:
            pinger.cancel()  # a stopping daemon no longer vouches for its loop
            sd_notify("STOPPING=1")
            # after the engine: its final flush can still produce alert-worthy updates
            alerts_stop.set()
            if alerts is not None:
                await alerts
            for task in (summary, rates_saver, pinger, fix_task, checker, beats):
                if task is None:
                    continue
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.fixer is not None:
                await self.fixer.aclose()
            leader_stop.set()  # last of the leader's work done: hand the lease over now
            await leading
            with contextlib.suppress(Exception):  # the chart is a convenience; never block exit
                await self.view.save_rates()
            if runner is not None:
                await runner.cleanup()
            await self.fleet.leave()  # type: ignore[union-attr]
            self.store.close()
        log.info("Stopped.", **_counts(pipeline.stats))
        return self.exit_code

    async def _join_fleet(self) -> bool:
        """Claim this instance's name on the state; False (store closed) when a live watcher
        already runs under it: two would share, and corrupt, its checkpoints and counts."""
        assert self.store is not None
        own = self.config.watcher
        self.fleet = Fleet(self.store, name=own.instance, ttl=seconds(own.lease_ttl),
                           sources=self._source_names, leader=self._leader_now)  # fmt: skip
        FleetCollector.attach(self.metrics.registry, self.fleet)
        try:
            await self.fleet.join()
        except InstanceTaken as exc:
            log.error("Refusing to start: the instance name is taken.", error=str(exc))
        except self.store.errors as exc:
            log.error("Refusing to start: the state store cannot record this instance.",
                      error=str(exc).strip()[:300])  # fmt: skip
        else:
            return True
        self.store.close()
        return False

    def _leader_now(self) -> bool | None:
        """For the heartbeat: whether this instance leads (None before the lease was tried)."""
        return None if self.leader is None else self.leader.is_leader

    def _source_names(self) -> tuple[str, ...]:
        """This instance's own sources (a shared one shows as the lease of whoever reads it)."""
        return tuple(sorted(s.name for s in self.config.sources if not getattr(s, "shared", False)))

    def _displaced(self, holder: Any) -> None:
        """Another run took this instance's name over: stop (exit 2) instead of writing."""
        self.exit_code = 2
        self.shutdown.set()

    async def _serve(self) -> Any:
        """Bind [http] listen (None when disabled); a port in use is a configuration error."""
        http = self.config.http
        if not http.enabled:
            return None
        try:
            runner = await start(
                self._app(),
                http.listen,
                max_connections=http.max_connections,
                idle_timeout=http.idle_timeout,
            )
        except OSError as exc:
            raise ConfigError(listen_problem(http.listen, exc), key="[http] listen") from None
        self.http_port = bound_port(runner)
        return runner

    async def _start_autofix(self, alerter: Any) -> asyncio.Task[None] | None:
        """With [autofix] enabled: the periodic fix loop, and fixes on request from the API."""
        config = self.config
        if not config.autofix.enabled or self.store is None or self.engine is None:
            return None
        from watcher.fix.pipeline import FixPipeline

        # in a thread: it reads the last hour's fixes (a round trip on PostgreSQL) to seed the
        # budget, and the sources and the API are already running on this loop
        self.fixer = fixer = await asyncio.to_thread(
            FixPipeline.from_config, config, self.store, metrics=self.metrics
        )
        if self.leader is not None:  # shared: one leader fixes, its writes fenced
            lead_fixes(self.leader, fixer, self._spawn)
        fixer.on_merged = self.view.actions.fixes_merged
        fixer.on_fix = lambda group, fix: self._fixed(alerter, group, fix)
        self.view.fixer = self._fix_on_request
        table = self.engine.pipeline.table
        return asyncio.create_task(
            fixer.run_forever(
                table.snapshot,
                interval=seconds(config.watcher.interval),
                refresh_interval=900.0,
                leading=self._leading,
            ),
            name="autofix",
        )

    def _leading(self) -> bool:
        """Whether this watcher does the leader's work (always, on a state of its own)."""
        return self.leader is None or self.leader.is_leader

    def _fixed(self, alerter: Any, group: Any, fix: Any) -> None:
        self.announcer.fix(group, fix)
        if alerter is not None:
            _alert_pr(alerter, group, fix)

    async def _fix_on_request(self, group_id: str, create_pr: bool) -> Any:
        """The API's generate-for-error: refuse at once, else run in the background."""
        from watcher.model import Fix

        group = self.view.group(group_id)
        if group is None:
            raise KeyError(group_id)
        if not self._leading():
            assert self.leader is not None
            raise PermissionError(f"{NOT_LEADER} ({self.leader.current or 'none yet'})")
        reason = await self.fixer.refusal(group_id)
        if reason is not None:
            raise PermissionError(reason)
        fix_id = f"fix-{uuid.uuid4().hex[:12]}"
        task = asyncio.create_task(self.fixer.run_one(group, create_pr=create_pr, fix_id=fix_id))
        self._fix_tasks.add(task)
        task.add_done_callback(self._fix_tasks.discard)
        return Fix(fix_id, group_id, "pending", time.time())

    def _app(self) -> Any:
        """The HTTP app: health, metrics, the JSON API over the view, and the dashboard."""
        http = self.config.http
        token = os.environ.get(http.token_env, "").strip() or None
        security = SecurityConfig(
            token=token,
            protect_reads=http.protect_reads and token is not None,
            posts_per_minute=http.posts_per_minute,
            max_body_bytes=http.max_body_bytes,
            token_env=http.token_env,
            allowed_hosts=allowed_hosts(http.listen, http.allowed_hosts),
            ingest_paths=ingest_paths(self.config),
        )
        state = AppState(self.metrics, ready=self._ready)
        report = self.config.report
        return make_app(
            state,
            view=self.view,
            security=security,
            redact_obj=self.redact_obj,
            intake=self.intake,
            link=linker(report.repo_url, report.default_ref),
            fleet=self.fleet.snapshot if self.fleet is not None else None,
        )

    async def _save_rates(self) -> None:
        """The rate history to the store on a clock; the view's caches are read on demand
        (DaemonView.current), not here."""
        while True:
            try:
                await self.view.save_rates()
            except Exception as exc:  # a locked or failing store must not stop the daemon
                log.warning("Could not save the error rate history.", error=str(exc))
            await asyncio.sleep(RATES_SAVED)

    def _alerter(self) -> Any:
        """The alerter when `[alerts]` names destinations or webhooks (run mode only)."""
        cfg = self.config.alerts
        if not cfg.webhooks and not cfg.destinations:
            return None
        from watcher.alerts import Alerter, DestinationContext

        ctx = DestinationContext(public_url=self.config.http.public_url)
        destinations: list[Any] = list(cfg.webhooks)
        for destination in cfg.destinations:
            try:
                destinations.append(destination.build(ctx))
            except ValueError as exc:
                # e.g. the PagerDuty routing key's variable is unset: the other destinations
                # still alert, and the log says which one cannot
                log.error(
                    "Alert destination disabled.", destination=destination.name, error=str(exc)
                )
        return Alerter(
            destinations,
            min_severity=cfg.min_severity,
            cooldown=cfg.cooldown,
            batch_window=cfg.batch_window,
            max_queue=cfg.max_queue,
            max_retries=cfg.max_retries,
            drain_timeout=cfg.drain_timeout,
            resolve_after=cfg.resolve_after,
            rate_limit=cfg.rate_limit,
            rate_window=cfg.rate_window,
            public_url=self.config.http.public_url,
            redact=self.redact,
            metrics=self.metrics,
        )

    async def _summaries(self) -> None:
        """Every `interval`: the one-line summary with the busiest groups."""
        interval = seconds(self.config.watcher.interval)
        while True:
            await asyncio.sleep(interval)
            engine = self.engine
            if engine is not None:
                pipeline = engine.pipeline
                self.announcer.summary(pipeline.table.snapshot(), pipeline.stats)


def listen_problem(listen: str, exc: OSError) -> str:
    """One line for a failed bind: the address, the port and what to do."""
    port = listen.rpartition(":")[2]
    if exc.errno == errno.EADDRINUSE:
        why = f"port {port} is already in use (another watcher, or another service)"
    elif exc.errno == errno.EACCES:
        why = f"port {port} needs privileges this process does not have"
    else:
        why = exc.strerror or str(exc)
    return f"cannot listen on {listen}: {why}; set another address here or with --listen"


def restart_needed(running: Config, fresh: Config) -> list[str]:
    """The config sections that changed in `fresh` but are only read at start."""
    names = [f.name for f in dataclasses.fields(Config) if f.name not in (*RELOADABLE, "path")]
    return [name for name in names if getattr(running, name) != getattr(fresh, name)]


def _lifecycle_alerts(alerter: Any) -> Callable[[Any, Any], None]:
    """A pattern's life as alert kinds: a regression alerts; a pattern resolved or ignored by
    hand ends its open alerts (PagerDuty resolves the incident, Alertmanager ends the alert)."""
    kinds = {"regressed": "regressed", "resolved": "resolved", "ignored": "resolved"}

    def on_change(group: Any, entry: Any) -> None:
        kind = kinds.get(entry.action)
        if kind is not None:
            alerter.notify_transition(group, kind)

    return on_change


def _alert_pr(alerter: Any, group: Any, fix: Any) -> None:
    if fix.status == "pr_open" and fix.details.get("pr_created"):
        alerter.pr_opened(group, fix.pr_url, fix.id)


def _fan_out(hooks: list[Any]) -> Any:
    def call(updates: list[Any]) -> None:
        for hook in hooks:
            hook(updates)

    return call


def _counts(stats: Any) -> dict[str, int]:
    return {"lines": stats.lines, "events": stats.events, "errors": stats.error_events}
