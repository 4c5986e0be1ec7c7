"""Three `watcher run` processes on one PostgreSQL database, with one leader among them: one
bug gets one pull request (the real CLI, real git, the Anthropic and GitHub fakes), and when the
leader is killed another takes over within the lease ttl, and no alert is sent twice (the
webhook receiver counts them).

Async tests: the fakes serve on the test's own event loop, so every wait here awaits."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import psycopg
import pytest

from tests.fakes.anthropic_api import API_KEY, AnthropicFake, tool_use
from tests.fakes.github_api import TOKEN, GitHubFake
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers import free_port
from tests.test_autofix_e2e import APP, FIX_INPUT, git, make_shop
from tests.watcher_proc import WatcherProcess, statement_line

NAMES = ("a", "b", "c")
TTL = 2.0
API_TOKEN = "fleet-test-token-0123456789"


async def until(cond: Callable[[], object], timeout: float = 30.0) -> None:
    """Await `cond()` being true, polling without blocking the loop the fakes serve on."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def fleet_config(home: Path, url: str, name: str, extra: str, port: int) -> Path:
    """Watcher `name` on the shared state with a 2 s leader lease, one file source "app",
    its HTTP API on `port` (mutations with the token in FLEET_API_TOKEN)."""
    cfg = home / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate = "{url}"\ninstance = "{name}"\ninterval = 1\n'
        f"persist_interval = 0.3\nlease_ttl = {TTL}\n"
        f'[http]\nlisten = "127.0.0.1:{port}"\ntoken_env = "FLEET_API_TOKEN"\n'
        "[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{home / "app.log"}"\n'
        f'read_from = "beginning"\npoll_interval = 0.05\n{extra}'
    )
    return cfg


class Fleet:
    """The three watchers, each in its own directory with its own log file."""

    def __init__(self, tmp: Path, url: str, extra: str, env: dict[str, str]) -> None:
        self.url, self.procs, self.homes, self.ports = url, {}, {}, {}
        for name in NAMES:
            home = self.homes[name] = tmp / name
            home.mkdir()
            (home / "app.log").write_text("")
            port = self.ports[name] = free_port()
            proc = WatcherProcess(fleet_config(home, url, name, extra, port), home / "daemon.log")
            proc.env.update(env, FLEET_API_TOKEN=API_TOKEN)
            self.procs[name] = proc

    async def start(self) -> None:
        """Start all three and wait until each watches."""
        for proc in self.procs.values():
            proc.start()
        for proc in self.procs.values():
            await until(lambda p=proc: b'"Watching."' in p.log.read_bytes()[p.log_at :])  # type: ignore[misc]

    def append(self, text: str, names: tuple[str, ...] = NAMES) -> None:
        """The same lines appended to each named watcher's file (a bug every replica hits)."""
        for name in names:
            with (self.homes[name] / "app.log").open("a") as fh:
                fh.write(text)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Rows from the shared database."""
        with psycopg.connect(self.url) as conn:
            return list(conn.execute(sql))

    def leader(self) -> tuple[str, int] | None:
        """(instance name, epoch) of the lease in force, or None."""
        rows = self.query(
            "SELECT holder, epoch FROM leases WHERE name = 'leader'"
            " AND expires_at > extract(epoch FROM clock_timestamp())"
        )
        return (str(rows[0][0]).split("#")[0], int(rows[0][1])) if rows else None  # type: ignore[call-overload]

    async def http(self, name: str, method: str, path: str) -> tuple[int, str]:
        """(status, body) of one request to watcher `name`'s HTTP server."""
        url = f"http://127.0.0.1:{self.ports[name]}{path}"
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, headers=headers) as response,
        ):
            return response.status, await response.text()

    def close(self) -> None:
        """Kill what still runs."""
        for proc in self.procs.values():
            proc.close()


@pytest.fixture
async def make_fleet(tmp_path: Path, pg_url: str) -> AsyncIterator[Callable[..., Fleet]]:
    """`make_fleet(extra_config, env)`: three watchers on this test's database, not started."""
    made: list[Fleet] = []

    def make(extra: str = "", env: dict[str, str] | None = None) -> Fleet:
        made.append(Fleet(tmp_path, pg_url, extra, env or {}))
        return made[-1]

    yield make
    for fleet in made:
        fleet.close()


def bug_lines() -> str:
    """The sample shop's ZeroDivisionError tracebacks (5 of them), and nothing else."""
    blocks, keep = [], False
    for line in (APP / "app.log").read_text().splitlines(keepends=True):
        if line[:4].isdigit():
            keep = "GET /cart failed" in line
        if keep:
            blocks.append(line)
    return "".join(blocks)


def fleet_extra(repo: Path, github: GitHubFake, hook: str, out: Path) -> str:
    """Auto-fix on (the shop, the GitHub fake) and a webhook for every alert, on every
    watcher alike (any of them may lead)."""
    return (
        '[[classify.rules]]\nmatch = "ZeroDivisionError"\non = ["exception"]\n'
        'category = "internal_error"\nfixable = true\n'
        f'[autofix]\nenabled = true\nrepo_path = "{repo}"\ngithub_repo = "acme/shop"\n'
        f'github_api_url = "{github.url}"\noutput_dir = "{out}"\nrepair_rounds = 0\n'
        f'[alerts]\nwebhooks = ["{hook}"]\nmin_severity = "low"\nbatch_window = 0.2\n'
    )


def alerts_sent(receiver: WebhookReceiver) -> Counter[tuple[str, str]]:
    """(kind, the pattern's template) of every alert the webhook received, counted."""
    return Counter(
        (r.json["kind"], a["template"][:40]) for r in receiver.requests for a in r.json["alerts"]
    )


async def seen_from_followers(fleet: Fleet, leader: str) -> None:
    """Only the leader's /metrics says watcher_leader 1; a follower's health names the leader,
    and it refuses the API's fix request (403, naming the leader) rather than run a fix."""
    flags = {}
    for name in NAMES:
        status, body = await fleet.http(name, "GET", "/metrics")
        assert status == 200
        flags[name] = "watcher_leader 1.0" in body.splitlines()
    assert flags == {name: name == leader for name in NAMES}
    follower = next(name for name in NAMES if name != leader)
    status, body = await fleet.http(follower, "GET", "/health/ready")
    detail = json.loads(body)["leader"]
    assert detail["leader"] is False and detail["current"].startswith(f"{leader}#")
    [(group_id,)] = fleet.query("SELECT id FROM groups WHERE template LIKE 'ZeroDiv%%'")
    path = f"/error-monitor/fixes/generate-for-error?error_id={group_id}&create_pr=true"
    status, body = await fleet.http(follower, "POST", path)
    assert status == 403 and "not the leader" in body and f"{leader}#" in body, body


async def test_three_watchers_one_leader_one_pr_each_alert_once_and_failover(
    make_fleet: Callable[..., Fleet],
    anthropic_fake: AnthropicFake,
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    """Three watchers, auto-fix and alerts on, all read the same bug: the leader alone fixes
    (the model asked once, one branch, one PR, one fix recorded) and each alert goes out once
    (one "new", one "pr_opened", though three watchers decided the first); only the leader's
    /metrics says it leads and a follower refuses an API fix request. The leader is
    SIGKILLed: another leads at a new epoch within about the lease ttl, opens no second PR for
    the bug, alerts a new error the survivors see once, and sends nothing twice."""
    anthropic_fake.script(*(tool_use(FIX_INPUT) for _ in range(3)))
    github = GitHubFake("acme/shop").start()
    shop = make_shop(tmp_path)
    repo, remote = shop.repo, shop.remote
    env = {
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": os.environ["ANTHROPIC_BASE_URL"],
        "GITHUB_TOKEN": TOKEN,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    fleet = make_fleet(fleet_extra(repo, github, webhook_receiver.url(), tmp_path / "out"), env)
    try:
        await fleet.start()
        fleet.append(bug_lines())
        await until(lambda: fleet.query("SELECT 1 FROM fixes WHERE status = 'pr_open'"), 60)
        await until(lambda: fleet.query("SELECT sum(count) FROM groups") == [(15,)])
        await webhook_receiver.wait_for(2, timeout=30)  # "new", then "pr_opened"
        await asyncio.sleep(1.5)  # more fix rounds and alert polls on every watcher

        first = fleet.leader()
        assert first is not None
        await seen_from_followers(fleet, first[0])
        fleet.procs[first[0]].kill()
        killed_at = time.monotonic()
        await until(lambda: (now := fleet.leader()) is not None and now[0] != first[0], 10 * TTL)
        takeover = time.monotonic() - killed_at
        second = fleet.leader()
        assert second is not None and second[1] > first[1]
        survivors = tuple(n for n in NAMES if n != first[0])
        fleet.append("".join(statement_line(2, i) + "\n" for i in range(5)), survivors)
        await until(lambda: fleet.query("SELECT sum(count) FROM groups") == [(25,)])
        await webhook_receiver.wait_for(3, timeout=30)
        await asyncio.sleep(1.5)  # fix rounds of the new leader; any repeated alert
        for name in survivors:
            assert fleet.procs[name].stop() == 0, fleet.procs[name].tail()
    finally:
        github.stop()
    assert len(github.pulls) == 1, github.pulls
    assert len(anthropic_fake.messages) == 1
    branches = git("for-each-ref", "--format=%(refname:short)", "refs/heads/auto-fix", cwd=remote)
    assert len(branches.split()) == 1
    assert [r[0] for r in fleet.query("SELECT status FROM fixes")] == ["pr_open"]
    sent = alerts_sent(webhook_receiver)
    assert sorted(sent) == [
        ("new", "ZeroDivisionError: division by zero"),
        ("new", "mbt step step seq=<*>"),
        ("pr_opened", "ZeroDivisionError: division by zero"),
    ], sent
    assert set(sent.values()) == {1}, sent
    print(f"takeover after SIGKILL: {takeover:.2f} s (lease_ttl {TTL:g} s)")
