"""What `watcher check-config --probe` asks of each source kind: can it read anything at all?

Each source config's `probe()` calls one function here, so the checks of every kind sit side by
side and a new kind adds its own. A probe never raises: every problem is a failed `Check` with
the reason a user can act on. Blocking clients (boto3, subprocess) run in a thread.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

from watcher.sources.base import Check

if TYPE_CHECKING:
    from watcher.sources.cloudwatch_config import CloudWatchSourceConfig
    from watcher.sources.command import CommandSourceConfig
    from watcher.sources.file import FileSourceConfig
    from watcher.sources.journald import JournaldSourceConfig
    from watcher.sources.kubernetes.config import KubernetesSourceConfig
    from watcher.sources.loki import LokiSourceConfig
    from watcher.sources.railway import RailwaySourceConfig

TIMEOUT = 10.0  # seconds per network check
NS = 1_000_000_000


def program(name: str, argv0: str) -> Check:
    """The program a source runs: on PATH (or an executable path)."""
    found = shutil.which(argv0)
    if found is None:
        return Check(name, False, f"{argv0!r} not found on PATH (or not executable)")
    return Check(name, True, found)


async def file_source(cfg: FileSourceConfig) -> list[Check]:
    """The files the path or glob matches now, and whether each can be opened."""
    name = f"source {cfg.name}: files"
    paths = await asyncio.to_thread(_matching, cfg)
    if not paths:
        return [Check(name, False, f"no file matches path {cfg.path!r}")]
    unreadable = [p for p in paths if not os.access(p, os.R_OK)]
    if unreadable:
        return [Check(name, False, f"cannot read {len(unreadable)}: {', '.join(unreadable[:3])}")]
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return [Check(name, True, f"{len(paths)} file{'s' if len(paths) > 1 else ''}: {shown}")]


def _matching(cfg: FileSourceConfig) -> list[str]:
    import fnmatch

    paths = sorted(glob.glob(cfg.path)) if any(c in cfg.path for c in "*?[") else [cfg.path]
    kept = [p for p in paths if os.path.isfile(p)]
    return [
        p
        for p in kept
        if not any(fnmatch.fnmatch(p, x) or fnmatch.fnmatch(os.path.basename(p), x)
                   for x in cfg.exclude)
    ]  # fmt: skip


async def command_source(cfg: CommandSourceConfig) -> list[Check]:
    """The command's program can be found (its output is not sampled: it may never end)."""
    return [program(f"source {cfg.name}: program", cfg.argv[0])]


async def railway_source(cfg: RailwaySourceConfig) -> list[Check]:
    """The Railway CLI is there and logged in (`railway whoami`)."""
    found = program(f"source {cfg.name}: railway CLI", cfg.binary)
    if not found.ok:
        return [found]
    name = f"source {cfg.name}: railway login"
    try:
        code, out, err = await _run(cfg.binary, "whoami")
    except (OSError, TimeoutError) as exc:
        return [found, Check(name, False, f"`railway whoami` did not answer: {exc}")]
    said = (out or err).decode(errors="replace").strip().splitlines()
    first = said[0] if said else f"exit {code}"
    return [found, Check(name, code == 0, first)]


async def _run(*argv: str) -> tuple[int | None, bytes, bytes]:
    """(exit code, stdout, stderr) of a short command; OSError or TimeoutError when it cannot
    be run or does not finish within TIMEOUT."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out, err


async def loki_source(cfg: LokiSourceConfig) -> list[Check]:
    """Loki answers /ready, and accepts the source's query (one entry of the last minute)."""
    import aiohttp

    from watcher.sources.loki_api import (
        LokiClient,
        LokiError,
        auth_headers,
        read_secret,
        ssl_option,
    )
    from watcher.sources.loki_logql import effective_query

    base = cfg.url.rstrip("/")
    try:
        headers = auth_headers(
            tenant=cfg.tenant,
            username=cfg.username,
            password=read_secret(cfg.password_env, "password_env"),
            token=read_secret(cfg.token_env, "token_env"),
        )
    except Exception as exc:  # a missing secret variable
        return [Check(f"source {cfg.name}: credentials", False, str(exc))]
    ssl = ssl_option(cfg.tls_verify, cfg.ca_file)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        ready = await _loki_ready(session, base, headers, ssl, f"source {cfg.name}: loki ready")
        if not ready.ok:
            return [ready]
        client = LokiClient(session, base, headers, timeout=TIMEOUT, ssl=ssl)
        query = effective_query(cfg.query, cfg.error_filter)
        now = time.time_ns()
        name = f"source {cfg.name}: query"
        try:
            found = await client.query_range(query, now - 60 * NS, now, 1)
        except LokiError as exc:
            return [ready, Check(name, False, str(exc))]
    return [ready, Check(name, True, f"valid ({len(found)} entry in the last minute)")]


async def _loki_ready(
    session: Any, base: str, headers: dict[str, str], ssl: Any, name: str
) -> Check:
    import aiohttp

    try:
        async with session.get(base + "/ready", headers=headers, ssl=ssl) as resp:
            body = (await resp.text(errors="replace")).strip()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Check(name, False, f"cannot reach {base}: {exc or type(exc).__name__}")
    if resp.status != 200:
        return Check(name, False, f"HTTP {resp.status} on {base}/ready: {body[:120]}")
    return Check(name, True, f"{base} says {body[:40] or 'ready'}")


async def cloudwatch_source(cfg: CloudWatchSourceConfig) -> list[Check]:
    """Credentials and region resolve, and every log group exists and can be read."""
    return await asyncio.to_thread(_cloudwatch, cfg)


def _cloudwatch(cfg: CloudWatchSourceConfig) -> list[Check]:
    from watcher.sources.cloudwatch_aws import (
        check_group,
        describe,
        make_client,
        resolve_prefix,
    )

    head = f"source {cfg.name}"
    try:
        client, region = make_client(
            region=cfg.region, profile=cfg.profile, endpoint_url=cfg.endpoint_url
        )
    except Exception as exc:
        return [Check(f"{head}: aws client", False, describe(exc))]
    checks = []
    groups = list(cfg.log_groups)
    if cfg.log_group_prefix:
        try:
            groups = sorted(resolve_prefix(client, cfg.log_group_prefix))
        except Exception as exc:
            return [Check(f"{head}: log groups", False, describe(exc))]
        if not groups:
            detail = f"no log group starts with {cfg.log_group_prefix!r} in {region}"
            return [Check(f"{head}: log groups", False, detail)]
    for group in groups:
        try:
            check_group(client, group, region)
        except Exception as exc:
            checks.append(Check(f"{head}: {group}", False, describe(exc)))
        else:
            checks.append(Check(f"{head}: {group}", True, f"readable in {region}"))
    return checks


async def journald_source(cfg: JournaldSourceConfig) -> list[Check]:
    """journalctl is there and can read the journal with the source's filters: its last entry
    (a user outside the systemd-journal group gets an error, or nothing, not the system's)."""
    found = program(f"source {cfg.name}: journalctl", cfg.binary)
    if not found.ok:
        return [found]
    name = f"source {cfg.name}: journal"
    try:
        code, out, err = await _run(*cfg.base_argv(), "--lines=1", "--no-tail")
    except (OSError, TimeoutError) as exc:
        return [found, Check(name, False, f"journalctl did not answer: {exc}")]
    said = err.decode(errors="replace").strip().splitlines()
    if code != 0:
        return [found, Check(name, False, said[0] if said else f"exit {code}")]
    if not out.strip():
        # readable but empty: right for a quiet unit, wrong for a typo in the unit's name
        return [found, Check(name, True, "readable, no entry matches the filters yet")]
    return [found, Check(name, True, f"readable, last entry {_journal_time(out)}")]


def _journal_time(out: bytes) -> str:
    import json

    try:
        micros = int(json.loads(out.splitlines()[-1])["__REALTIME_TIMESTAMP"])
    except (ValueError, KeyError, IndexError, TypeError):
        return "read"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(micros / 1e6))


async def kubernetes_source(cfg: KubernetesSourceConfig) -> list[Check]:
    """The credentials load, and the API lets them list the selected pods (RBAC named when not)."""
    from kubernetes_asyncio import client as kclient
    from kubernetes_asyncio.client.exceptions import ApiException

    from watcher.sources.kubernetes.source import api_client, json_body

    auth = f"source {cfg.name}: credentials"
    try:
        api = await api_client(cfg)
    except Exception as exc:  # no kubeconfig, no service account, a bad context
        return [Check(auth, False, f"{type(exc).__name__}: {exc}")]
    name = f"source {cfg.name}: pods"
    where = f"namespace {cfg.namespace!r}" if cfg.namespace else "every namespace"
    try:
        core = kclient.CoreV1Api(api)
        # the raw answer, as the source reads it: the generated models refuse pods whose spec
        # lacks fields they insist on
        ask = {"label_selector": cfg.label_selector, "limit": 1, "_request_timeout": TIMEOUT,
               "_preload_content": False}  # fmt: skip
        if cfg.namespace:
            response = await core.list_namespaced_pod(cfg.namespace, **ask)
        else:
            response = await core.list_pod_for_all_namespaces(**ask)
        pods = (await json_body(response)).get("items") or []
    except ApiException as exc:
        if exc.status in (401, 403):
            why = (f"HTTP {exc.status}: the credentials may not list pods in {where} (the role "
                   "needs get/list/watch on pods and get on pods/log)")  # fmt: skip
            return [Check(auth, True, "loaded"), Check(name, False, why)]
        return [Check(auth, True, "loaded"), Check(name, False, f"HTTP {exc.status}: {exc.reason}")]
    except Exception as exc:  # the API server cannot be reached
        return [Check(auth, True, "loaded"), Check(name, False, f"{type(exc).__name__}: {exc}")]
    finally:
        await api.close()
    selector = f" with {cfg.label_selector!r}" if cfg.label_selector else ""
    found = "pods match" if pods else "no pod matches yet"
    listed = Check(name, True, f"listable in {where}{selector}; {found}")
    return [Check(auth, True, "loaded"), listed]
