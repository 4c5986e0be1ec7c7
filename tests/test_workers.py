"""`[watcher] workers`: file sources read in worker processes give the groups one process gives,
one statement read by two workers is one group, and a worker killed mid-stream is restarted
without a line counted twice or an error event lost."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path
from typing import Any

import pytest

from watcher.config import ConfigError, load_config
from watcher.metrics import Metrics
from watcher.model import Frame, LogEvent
from watcher.scan import scan
from watcher.sources.file import FileSourceConfig
from watcher.store import open_store
from watcher.wiring import build_engine, build_pipeline
from watcher.workers import worker_count
from watcher.workers.wire import pack_event, unpack_event

TRACE = (
    "{ts} ERROR payment failed\n"
    "Traceback (most recent call last):\n"
    '  File "/app/billing/charge.py", line {n}, in charge\n'
    "    client.post(url)\n"
    '  File "/app/billing/client.py", line 88, in post\n'
    "    raise TimeoutError(url)\n"
    "TimeoutError: https://pay.example/{n}\n"
)


def _log(path: Path, seed: int, lines: int, *, traces: bool = True) -> int:
    """A mixed log: info lines, one-line errors of a few statements, Python traces; returns
    how many error events it holds."""
    rng = random.Random(seed)
    errors = 0
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            ts = f"2026-11-21T10:{i // 60 % 60:02d}:{i % 60:02d}.{seed}Z"
            roll = rng.random()
            if roll < 0.05 and traces:
                fh.write(TRACE.format(ts=ts, n=rng.randint(1, 999)))
                errors += 1
            elif roll < 0.2:
                user, ms = rng.randint(1, 10**6), rng.randint(1, 5000)
                kind = rng.choice(["db timeout after", "cache miss storm for", "queue stalled at"])
                fh.write(f"{ts} ERROR {kind} {ms} ms user={user}\n")
                errors += 1
            else:
                fh.write(f"{ts} INFO request served in {rng.randint(1, 90)} ms\n")
    return errors


def _config(tmp_path: Path, workers: Any, queue_size: int = 64, *, quick: bool = False) -> Any:
    """`quick`: a followed file's last line waits 0.2 s for continuation lines, not 2 s (one-
    line events only: under load a trace's next lines can come later than that)."""
    path = tmp_path / f"w{workers}.toml"
    value = f'"{workers}"' if isinstance(workers, str) else workers
    text = f"[watcher]\nworkers = {value}\nqueue_size = {queue_size}\n"
    path.write_text(text + ("[parse]\nmultiline_timeout = 0.2\n" if quick else ""))
    return load_config(path)


def _file(path: Path, name: str | None = None) -> FileSourceConfig:
    return FileSourceConfig(
        type="file", name=name or path.name, path=str(path), read_from="beginning"
    )


def _groups(result: Any) -> dict[str, tuple[Any, ...]]:
    return {
        g.id: (g.template, g.count, g.first_seen, g.last_seen, dict(g.sources), g.category)
        for g in result.groups
    }


def _counts(result: Any) -> dict[str, tuple[int, dict[str, int]]]:
    return {g.id: (g.count, dict(g.sources)) for g in result.groups}


def _stats(result: Any) -> tuple[int, ...]:
    s = result.stats
    return (s.lines, s.events, s.error_events, s.ignored_events, s.parse_fallbacks)


def _two_files(tmp_path: Path, lines: int) -> tuple[Any, int]:
    """A replay engine with workers = 2 over two file sources of `lines` mixed lines each, and
    how many error events they hold."""
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    errors = _log(a, 1, lines) + _log(b, 2, lines)
    metrics = Metrics()
    config = _config(tmp_path, 2)
    pipeline = build_pipeline(config, metrics)
    engine = build_engine(
        config, pipeline, [_file(a), _file(b)], metrics=metrics, store=None, follow=False
    )
    return engine, errors


async def _until(cond: Any) -> None:
    """Wait for `cond()` (30 s at most: a loaded machine)."""
    for _ in range(600):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached")


def _kill_on_first(pool: Any, carrying: str, sig: int = signal.SIGKILL) -> list[int]:
    """Signal the worker that sent the first shipment carrying `carrying` (lines, cursors)
    as the parent takes it in: the worker is then mid-stream, with more batches on the way."""
    apply, killed = pool.apply, []

    def killing(pipe: Any, shipment: Any) -> Any:
        if not killed and getattr(shipment, carrying):
            pid = pool.workers[shipment.worker].process.pid
            os.kill(pid, sig)
            killed.append(pid)
        return apply(pipe, shipment)

    pool.apply = killing
    return killed


def test_workers_key_rejects_zero_and_words_naming_key_and_line(tmp_path: Path) -> None:
    for bad, shown in (("0", "0"), ('"x"', '"x"'), ("true", "true")):
        path = tmp_path / "bad.toml"
        path.write_text(f"[watcher]\nqueue_size = 8\nworkers = {bad}\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        message = str(info.value)
        assert f"{path}:3" in message and "watcher.workers" in message and shown in message


def test_workers_key_accepts_numbers_and_auto(tmp_path: Path) -> None:
    assert _config(tmp_path, 3).watcher.workers == 3
    auto = _config(tmp_path, "auto").watcher.workers
    assert worker_count(auto) == len(os.sched_getaffinity(0))
    assert load_config(None).watcher.workers == 1  # the default: one process, as before


def test_an_event_crosses_the_pipe_unchanged() -> None:
    event = LogEvent(
        "boom",
        "app",
        "s",
        "error",
        1.5,
        "lg",
        "json",
        {"host": "h1"},
        "boom\n  at x",
        "ValueError",
        "bad",
        [Frame("/app/a.py", 3, "f", True), Frame("lib.py", None, "g", False)],
        4,
        6,
        3,
        {"offset": 9},
        True,
    )
    assert unpack_event(pack_event(event)) == event


async def test_one_source_gives_identical_groups_in_a_worker(tmp_path: Path) -> None:
    """One source keeps its order: everything the report shows is the same, to the template."""
    log = tmp_path / "app.log"
    errors = _log(log, 1, 6000)
    one = await scan(_config(tmp_path, 1), [_file(log)])
    two = await scan(_config(tmp_path, 2), [_file(log)])
    assert one.stats.error_events == errors
    assert _groups(two) == _groups(one)
    assert _stats(two) == _stats(one)
    assert {g.id: [s.text for s in g.samples] for g in two.groups} == {
        g.id: [s.text for s in g.samples] for g in one.groups
    }


async def test_two_sources_in_two_workers_end_in_the_same_groups(tmp_path: Path) -> None:
    """Lines of one statement read by two workers end in one group, as in one process."""
    engine, errors = _two_files(tmp_path, 5000)
    pipeline, a, b = engine.pipeline, tmp_path / "a.log", tmp_path / "b.log"
    pool = engine.options.workers
    hosts: dict[str, set[int]] = {}
    apply = pool.apply

    def recording(pipe: Any, shipment: Any) -> Any:
        for source in shipment.lines:
            hosts.setdefault(source, set()).add(shipment.worker)
        return apply(pipe, shipment)

    pool.apply = recording
    stats = await engine.run(asyncio.Event())
    assert hosts["a.log"] != hosts["b.log"]  # read by two processes
    two = {g.id: (g.count, dict(g.sources)) for g in pipeline.table.snapshot()}

    one = await scan(_config(tmp_path, 1), [_file(a), _file(b)])
    assert stats.error_events == one.stats.error_events == errors
    assert two == _counts(one)
    shared = [g for g in pipeline.table.snapshot() if g.template.startswith("db timeout after")]
    assert len(shared) == 1 and set(shared[0].sources) == {"a.log", "b.log"}


async def test_a_worker_killed_mid_replay_is_restarted_and_counts_each_line_once(
    tmp_path: Path,
) -> None:
    """Replay: the restarted worker skips the lines the parent has; only a multi-line record
    being assembled at the kill may be lost (one per stream, as documented)."""
    log = tmp_path / "big.log"
    errors = _log(log, 3, 60000)
    lines = len(log.read_text().splitlines())
    metrics = Metrics()
    config = _config(tmp_path, 2, queue_size=2)
    pipeline = build_pipeline(config, metrics)
    engine = build_engine(config, pipeline, [_file(log)], metrics=metrics, store=None, follow=False)
    pool = engine.options.workers
    killed = _kill_on_first(pool, "lines")
    stats = await engine.run(asyncio.Event())
    assert killed and sum(w.restarts for w in pool.workers) == 1
    assert stats.lines == lines  # none read twice, none skipped
    counted = sum(g.count for g in pipeline.table.snapshot())
    assert counted == stats.error_events
    assert errors - 1 <= counted <= errors
    assert metrics.worker_restarts.labels("0")._value.get() == 1


async def test_a_worker_killed_while_following_resumes_from_its_cursors(tmp_path: Path) -> None:
    """`run`: the restarted worker resumes from the last safe cursors the parent received, so
    every error event is counted exactly once, and the pool's health shows the restart."""
    log = tmp_path / "app.log"
    # one-line events only: a followed trace whose next lines come later than
    # multiline_timeout (a loaded machine) is two events by design, in one process too
    errors = _log(log, 4, 40000, traces=False)
    metrics = Metrics()
    config = _config(tmp_path, 2, queue_size=2, quick=True)
    pipeline = build_pipeline(config, metrics)
    store = open_store(f"sqlite://{tmp_path}/state.db")
    engine = build_engine(config, pipeline, [_file(log)], metrics=metrics, store=store, follow=True)
    pool = engine.options.workers
    killed = _kill_on_first(pool, "cursors")
    shutdown = asyncio.Event()
    run = asyncio.create_task(engine.run(shutdown))
    try:
        for _ in range(1200):
            if pipeline.stats.error_events >= errors:
                break
            await asyncio.sleep(0.05)
        health = pool.health()
        await asyncio.sleep(0.3)  # nothing more arrives: no event counted twice
    finally:
        shutdown.set()
        await run
        store.close()
    assert killed
    assert sum(g.count for g in pipeline.table.snapshot()) == errors
    assert pipeline.stats.error_events == errors
    assert [w["restarts"] for w in health] == [1, 0]
    assert health[0]["alive"] and health[0]["pid"] != killed[0]
    assert health[0]["sources"] == ["app.log"]


async def test_daemon_with_workers_reads_in_a_worker_and_reports_it(tmp_path: Path) -> None:
    """`watcher run` with workers = 2: the file's errors reach /metrics, and readiness lists
    each worker with its process and memory (watcher_worker_rss_bytes too)."""
    import aiohttp

    from watcher.daemon import Daemon

    from .test_daemon import ERRORS, until, write_config

    log = tmp_path / "app.log"
    log.write_text(ERRORS)
    cfg = write_config(tmp_path, log, 'read_from = "beginning"\n')
    cfg.write_text(cfg.read_text().replace("[watcher]\n", "[watcher]\nworkers = 2\n", 1))
    daemon = Daemon(load_config(cfg))
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.started.wait(), 10)
    port = daemon.http_port

    async def ready() -> Any:
        url = f"http://127.0.0.1:{port}/health/ready"
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            body = await r.json()
        workers = body.get("workers") or []
        return body if any(w["rss_bytes"] for w in workers) else None

    def errors() -> float:
        return sum(
            s.value
            for m in daemon.metrics.registry.collect()
            if m.name == "watcher_errors"
            for s in m.samples
            if s.name == "watcher_errors_total"
        )

    async def counted() -> bool:
        return errors() >= 7

    try:
        await until(counted)
        body = await until(ready)
    finally:
        daemon.shutdown.set()
        assert await asyncio.wait_for(task, 15) == 0
    assert body["ready"] is True
    hosting = [w for w in body["workers"] if w["sources"]]
    assert [w["sources"] for w in hosting] == [["app"]]
    assert hosting[0]["alive"] and hosting[0]["pid"] != os.getpid()
    rss = daemon.metrics.registry.get_sample_value("watcher_worker_rss_bytes", {"worker": "0"})
    assert rss and rss > 0


async def test_reloaded_rules_reach_the_workers(tmp_path: Path) -> None:
    """SIGHUP's new classification rules classify the events a worker reads after it."""
    log = tmp_path / "app.log"
    line = "2026-11-21T10:00:00Z ERROR ledger drift of {} cents\n"
    log.write_text(line.format(1))
    metrics = Metrics()
    config = _config(tmp_path, 2, quick=True)
    pipeline = build_pipeline(config, metrics)
    engine = build_engine(config, pipeline, [_file(log)], metrics=metrics, store=None, follow=True)
    pool = engine.options.workers

    def counted(category: str) -> float:
        value = metrics.registry.get_sample_value(
            "watcher_errors_total", {"category": category, "severity": "high"}
        )
        return value or 0.0

    shutdown = asyncio.Event()
    run = asyncio.create_task(engine.run(shutdown))
    try:
        await _until(lambda: pipeline.stats.error_events == 1)
        ruled = tmp_path / "ruled.toml"
        ruled.write_text(
            config.path.read_text()
            + '[[classify.rules]]\nmatch = "ledger drift"\ncategory = "database_error"\n'
            + 'severity = "high"\n'
        )
        pool.reload(load_config(ruled))
        # the command and the file's next lines reach the worker by two paths: lines until one
        # is classified by the new rule (never, without the reload reaching the worker)
        for n in range(2, 40):
            with log.open("a") as fh:
                fh.write(line.format(n))
            await _until(lambda n=n: pipeline.stats.error_events == n)
            if counted("database_error"):
                break
    finally:
        shutdown.set()
        await run
    assert counted("database_error") >= 1


async def test_a_worker_ignores_the_sigterm_meant_for_its_parent(tmp_path: Path) -> None:
    """systemd signals the whole control group: a worker leaves the stopping to its parent
    (no restart, nothing read twice or lost)."""
    log = tmp_path / "big.log"
    errors = _log(log, 5, 30000)
    metrics = Metrics()
    config = _config(tmp_path, 2, queue_size=2)
    pipeline = build_pipeline(config, metrics)
    engine = build_engine(config, pipeline, [_file(log)], metrics=metrics, store=None, follow=False)
    pool = engine.options.workers
    killed = _kill_on_first(pool, "lines", signal.SIGTERM)
    stats = await engine.run(asyncio.Event())
    assert killed and sum(w.restarts for w in pool.workers) == 0
    assert stats.error_events == errors
    assert stats.lines == len(log.read_text().splitlines())


def test_replay_from_the_command_line_honours_workers(tmp_path: Path) -> None:
    """`watcher replay --emit events` with workers = 2 in its config prints what one process
    prints, event for event (one source: the same order)."""
    import subprocess
    import sys

    log = tmp_path / "a.log"
    errors = _log(log, 6, 3000)

    def events(workers: int) -> list[str]:
        config = _config(tmp_path, workers).path
        argv = [sys.executable, "-m", "watcher", "replay", "--config", str(config), str(log)]
        return subprocess.run(
            [*argv, "--no-progress", "--emit", "events"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()

    one = events(1)
    assert len(one) == errors
    assert events(2) == one


async def test_the_parent_does_not_mask_what_a_worker_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Masking, most of a new message's cost, runs in the workers: the parent's miner takes
    their tokens (the workers run their own, unpatched copy of the masker)."""
    from watcher.group.template import TemplateMiner

    masked: list[str] = []
    mask, joined = TemplateMiner.tokens_of, TemplateMiner.joined_of

    def counting(message: str) -> list[str]:
        masked.append(message)
        return mask(message)

    def counting_joined(message: str) -> str:
        masked.append(message)
        return joined(message)

    monkeypatch.setattr(TemplateMiner, "tokens_of", staticmethod(counting))
    monkeypatch.setattr(TemplateMiner, "joined_of", staticmethod(counting_joined))
    log = tmp_path / "a.log"
    _log(log, 8, 4000)
    one = await scan(_config(tmp_path, 1), [_file(log)])
    assert masked  # the counter sees the parent's masking
    masked.clear()
    two = await scan(_config(tmp_path, 2), [_file(log)])
    assert masked == []
    assert _groups(two) == _groups(one)


async def test_a_source_changed_by_a_reload_is_read_anew_in_a_worker(tmp_path: Path) -> None:
    """SIGHUP with a changed source of the same name: the old reading stops, the new one reads
    on (each reading has its own key in the worker, not the source's name)."""
    import dataclasses

    log = tmp_path / "app.log"
    line = "2026-11-21T10:00:00Z ERROR ledger drift of {} cents\n"
    log.write_text(line.format(1))
    metrics = Metrics()
    config = _config(tmp_path, 2, quick=True)
    pipeline = build_pipeline(config, metrics)
    first = _file(log, "app")
    store = open_store(f"sqlite://{tmp_path}/state.db")
    engine = build_engine(config, pipeline, [first], metrics=metrics, store=store, follow=True)
    engine.options.persist_interval = 0.1  # the new reading resumes from a recent checkpoint

    shutdown = asyncio.Event()
    run = asyncio.create_task(engine.run(shutdown))
    try:
        await _until(lambda: pipeline.stats.error_events == 1)
        changed = dataclasses.replace(first, poll_interval=0.05)
        await engine.reconfigure([changed])
        task, _ = engine._producers["app"]
        assert not task.done()
        seen = pipeline.stats.error_events
        with log.open("a") as fh:
            fh.write(line.format(2))
        await _until(lambda: pipeline.stats.error_events >= seen + 1)
        assert not task.done()
    finally:
        shutdown.set()
        await run
        store.close()


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    out: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
            out.update(int(c) for c in fh.read().split())
    return out


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="Linux /proc")
async def test_workers_are_the_only_processes_started(tmp_path: Path) -> None:
    """Memory (issue 15: all processes together within 300 MB under a flood): the workers are
    the parent's children, with no fork server (a third copy of every module a worker imports)
    nor resource tracker beside them; the worker's pipe is still its only tie to the parent."""
    engine, errors = _two_files(tmp_path, 3000)
    pool = engine.options.workers
    before = _children(os.getpid())
    seen: list[tuple[set[int], set[int]]] = []
    apply = pool.apply

    def recording(pipe: Any, shipment: Any) -> Any:
        if len(seen) < 1 and all(w.process is not None for w in pool.workers):
            workers = {w.process.pid for w in pool.workers}
            seen.append((_children(os.getpid()) - before, workers))
        return apply(pipe, shipment)

    pool.apply = recording
    stats = await engine.run(asyncio.Event())
    assert stats.error_events == errors
    started, workers = seen[0]
    assert len(workers) == 2
    assert started == workers


async def test_a_worker_reads_few_batches_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory: a worker's file source holds at most child.BATCHES_PER_HOP (2) batches read
    ahead, not the 8 of one process (~10 MB of every worker's peak RSS), and reads every line."""
    import multiprocessing

    from watcher.sources import file
    from watcher.sources.lines import MAX_BATCH
    from watcher.workers import child

    monkeypatch.setattr(file, "BATCHES_PER_HOP", file.BATCHES_PER_HOP)  # restored after
    hops: list[int] = []
    scan_batches = file.FileSource._scan_batches

    def recording(self: Any, f: Any, path: str) -> Any:
        batches = scan_batches(self, f, path)
        hops.append(sum(len(b) for b in batches))
        return batches

    monkeypatch.setattr(file.FileSource, "_scan_batches", recording)
    log = tmp_path / "app.log"
    log.write_text("".join(f"2026-12-07 12:00:00 INFO line {i}\n" for i in range(20 * MAX_BATCH)))
    ours, theirs = multiprocessing.Pipe()
    worker = child.Worker(theirs, child.Setup(0, _config(tmp_path, 2), False, (None, None), False))
    ours.send(("start", "app#1", _file(log), {}, 0))
    running = asyncio.create_task(worker.run())
    lines = 0
    while True:
        message = await asyncio.to_thread(ours.recv)
        if isinstance(message, tuple) and message[0] == "done":
            break
        lines += message.lines.get("app.log", 0) if not isinstance(message, tuple) else 0
    ours.send(("quit",))
    await running
    assert lines == 20 * MAX_BATCH
    assert max(hops) <= 2 * MAX_BATCH


async def test_the_parent_holds_at_most_two_shipments_of_a_worker(tmp_path: Path) -> None:
    """Memory: a flood ships ~2,000 events a batch; the parent takes at most IN_FLIGHT (2) of a
    worker's shipments off its pipe before counting them (the worker waits meanwhile)."""
    import threading

    log = tmp_path / "a.log"
    errors = _log(log, 4, 30000, traces=False)
    metrics = Metrics()
    config = _config(tmp_path, 2)
    pipeline = build_pipeline(config, metrics)
    engine = build_engine(config, pipeline, [_file(log)], metrics=metrics, store=None, follow=False)
    pool = engine.options.workers
    lock, held, most = threading.Lock(), [0], [0]
    received, apply, count = pool._received, pool.apply, engine._apply

    def taking(shipment: Any) -> None:
        with lock:
            held[0] += 1
            most[0] = max(most[0], held[0])
        received(shipment)

    def applying(pipe: Any, shipment: Any) -> Any:
        with lock:
            held[0] -= 1
        return apply(pipe, shipment)

    async def slow(keyed: Any) -> Any:
        await asyncio.sleep(0.1)  # a parent behind its worker (a store read): shipments wait
        return await count(keyed)

    pool._received, pool.apply, engine._apply = taking, applying, slow  # type: ignore[method-assign]
    stats = await engine.run(asyncio.Event())
    assert stats.error_events == errors
    assert most[0] == 2


def _gone(pid: int) -> bool:
    """The process has exited (a zombie counts as gone: nothing of it runs)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="Linux /proc")
async def test_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    """A worker runs in its own process group (Ctrl-C reaches the parent only), so nothing
    signals it when the daemon dies by SIGKILL or the OOM killer: it must stop by itself when
    its pipe to the parent closes, not read on as an orphan."""
    import subprocess
    import sys

    log = tmp_path / "app.log"
    log.write_text("2026-11-21T10:00:00Z ERROR ledger drift of 1 cents\n")
    config = tmp_path / "run.toml"
    config.write_text(
        f"[watcher]\nworkers = 2\nstate_path = {str(tmp_path / 'state.db')!r}\n"
        '[http]\nlisten = "127.0.0.1:0"\n'
        f'[[sources]]\ntype = "file"\nname = "app"\npath = {str(log)!r}\n'
        'read_from = "beginning"\n'
    )
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr:  # the workers write to the daemon's stderr
        daemon = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        await _until(lambda: len(_children(daemon.pid)) >= 1)  # the worker reading the file
        workers = _children(daemon.pid)
        await asyncio.sleep(1.0)  # it ships its first batch and goes on following
        daemon.kill()
        daemon.wait()
        await _until(lambda: all(_gone(pid) for pid in workers))
        # it stopped because its pipe closed, quietly: a last shipment has no one to go to
        assert "Traceback" not in errors.read_text(errors="replace")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
