"""No secret at rest or in transit: the corpus of real-shaped secrets through every sink.

Each line of tests/data/secrets_corpus.txt (99 secrets of 54 kinds) is logged as an error by an
application that a real `watcher run` follows; then the API (patterns, pattern details, recent
errors, dashboard), the webhook posts, the daemon's own log, the state DB file (and its WAL),
and `watcher replay --emit events` over the same file are searched for every raw secret.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import sys
from pathlib import Path

import aiohttp

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers import clean_env, free_port
from tests.test_redact import SECRETS
from watcher.fix.redact import Redactor
from watcher.model import ErrorGroup, Sample
from watcher.store import Store

TOKEN = "t0k3n-for-the-sinks-test-4f9c2a"


def leaks(text: str) -> list[str]:
    """The corpus secrets that appear in `text`."""
    return [value for _, value, _ in SECRETS if value in text]


def _group(i: int, text: str) -> ErrorGroup:
    return ErrorGroup(
        id=f"g{i:03d}", kind="template", template=text, category="internal_error",
        severity="high", fixable=False, suggested_fix="", count=1, first_seen=1.0, last_seen=1.0,
        samples=[Sample(1.0, "app", text, i)],
    )


def test_state_db_is_private_and_holds_no_secret(tmp_path: Path) -> None:
    """Templates and samples are redacted before they are stored, and the state DB, its WAL
    and its shared-memory file are created readable by their owner only (0600)."""
    db = tmp_path / "state.db"
    store = Store(db, redact=Redactor().redact)
    try:
        groups = [_group(i, text) for i, (_, _, text) in enumerate(SECRETS)]
        store.commit(groups, {g.id: g.samples for g in groups})
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("state.db*")}
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
        stored = store.get_group("g000")
    finally:
        store.close()
    assert set(modes) >= {"state.db", "state.db-wal", "state.db-shm"}
    assert set(modes.values()) == {0o600}, modes
    assert not leaks(raw.decode("utf-8", "replace"))
    assert stored is not None and "<secret:" in stored.samples[0].text


def test_an_existing_readable_state_db_is_made_private(tmp_path: Path) -> None:
    """A state DB left 0644 by an older watcher is tightened to 0600 when opened."""
    db = tmp_path / "state.db"
    sqlite3.connect(db).close()
    os.chmod(db, 0o644)
    Store(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


async def _get(session: aiohttp.ClientSession, port: int, path: str) -> str:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as r:
        assert r.status == 200, (path, r.status)
        return await r.text()


async def _api_texts(port: int) -> list[str]:
    """Every API answer that carries log text: patterns, each pattern, recent, dashboard."""
    async with aiohttp.ClientSession() as s:
        patterns = await _get(s, port, "/error-monitor/errors/patterns?limit=1000")
        ids = [p["id"] for p in __import__("json").loads(patterns)["patterns"]]
        texts = [patterns]
        for gid in ids:
            texts.append(await _get(s, port, f"/error-monitor/errors/patterns/{gid}"))
        texts.append(await _get(s, port, "/error-monitor/errors/recent?hours=1&limit=1000"))
        texts.append(await _get(s, port, "/error-monitor/dashboard"))
    return texts


async def test_no_corpus_secret_reaches_any_sink(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """99 secrets of 54 kinds logged as errors: none of them in the API, the webhook posts,
    the daemon's log, the state DB or `watcher replay --emit events`."""
    log = tmp_path / "app.log"
    log.write_text("".join(f"ERROR {text}\n" for _, _, text in SECRETS))
    port = free_port()
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate_path = "{tmp_path / "state.db"}"\ninterval = 1\npersist_interval = 0.3\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n[grouping]\nalert_count = 1\n'
        f'[alerts]\nwebhooks = ["{webhook_receiver.url()}"]\nmin_severity = "info"\n'
        'batch_window = "0.2s"\n'
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{log}"\nread_from = "beginning"\n'
        "poll_interval = 0.05\n"
    )
    err = tmp_path / "daemon.log"
    env = {**clean_env(), "WATCHER_API_TOKEN": TOKEN}
    with err.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "watcher", "run", "-c", str(cfg), "--log-level", "debug",
            stdout=asyncio.subprocess.DEVNULL, stderr=out, env=env,
        )
    try:
        await webhook_receiver.wait_for(1, timeout=30)
        await _wait_stored(tmp_path / "state.db", len(SECRETS))
        api = await _api_texts(port)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    replay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher", "replay", str(log), "--emit", "events",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env(),
    )
    events, replay_err = await replay.communicate()
    sinks = {
        "api": "\n".join(api),
        "webhooks": "\n".join(r.body.decode("utf-8", "replace") for r in webhook_receiver.requests),
        "daemon log": err.read_text(errors="replace"),
        "state db": b"".join(p.read_bytes() for p in tmp_path.glob("state.db*")).decode(
            "utf-8", "replace"
        ),
        "emit events": events.decode(),
        "replay log": replay_err.decode(),
    }
    assert events.count(b"\n") >= len(SECRETS)  # every line is an error event
    assert {name: leaks(text) for name, text in sinks.items()} == {name: [] for name in sinks}


async def _wait_stored(db: Path, count: int) -> None:
    """Until the daemon committed groups covering `count` events."""
    for _ in range(300):
        if db.exists():
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                total = con.execute("SELECT COALESCE(SUM(count), 0) FROM groups").fetchone()[0]
            except sqlite3.OperationalError:
                total = 0
            finally:
                con.close()
            if total >= count:
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the daemon did not store every event")
