"""`watcher check-config --probe`: connect to everything the config names, one line per check.

Sources probe themselves (`probe()` on their config class, see `sources/probes.py`), so a new
source kind brings its own checks; a kind without one is listed as not probed. With auto-fix
on, the model API and GitHub are checked too. Like `vector validate`: every check runs, each
says what it found, and the exit code says whether any failed.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from watcher.config import Config
from watcher.sources.base import Check

TIMEOUT = 10.0
ANTHROPIC_VERSION = "2023-06-01"


async def probe_all(config: Config) -> list[Check]:
    """Every check, sources first, in config order (run concurrently)."""
    jobs = [_source(cfg) for cfg in config.sources]
    if any(cfg.type == "otlp" for cfg in config.sources):
        jobs.append(_receiver(config))
    jobs += [_destination(d) for d in config.alerts.destinations]
    if config.autofix.enabled:
        jobs += [_model(config), _github(config)]
    results = await asyncio.gather(*jobs)
    return [check for checks in results for check in checks]


def render(check: Check) -> str:
    """`ok    name: detail` — the tag first, so a failed line stands out."""
    tag = "skip" if check.ok is None else "ok" if check.ok else "FAIL"
    return f"{tag:<5} {check.name}: {check.detail}"


async def _source(cfg: Any) -> list[Check]:
    probe = getattr(cfg, "probe", None)
    if probe is None:
        return [Check(f"source {cfg.name}", None, f"type {cfg.type} has no probe")]
    try:
        return list(await probe())
    except Exception as exc:  # a probe must never hide the other checks
        return [Check(f"source {cfg.name}", False, f"probe failed: {exc}")]


async def _receiver(config: Config) -> list[Check]:
    """Exporters can reach an otlp source: the HTTP server runs and has its API token (every
    export is refused with 403 without one)."""
    name = "[http] otlp receiver"
    http = config.http
    if not http.enabled:
        return [Check(name, False, "[http] enabled = false: nothing listens for OTLP exports")]
    if not os.environ.get(http.token_env):
        return [Check(name, False, f"{http.token_env} is not set: every export is refused")]
    return [Check(name, True, f"listening on {http.listen}, exports need ${http.token_env}")]


async def _destination(dest: Any) -> list[Check]:
    """What an alert destination can be asked without alerting anyone."""
    name = f"alerts {dest.name or dest.type}"
    if dest.type == "alertmanager":
        base = dest.url.rstrip("/").removesuffix("/api/v2/alerts")
        token = os.environ.get(dest.token_env, "") if dest.token_env else ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, body = await _get(f"{base}/-/ready", headers)
        if status == 200:
            return [Check(name, True, f"{base} ready")]
        return [Check(name, False, body if status is None else f"{base}/-/ready: HTTP {status}")]
    if dest.type == "pagerduty":
        if not os.environ.get(dest.routing_key_env):
            return [Check(name, False, f"{dest.routing_key_env} is not set")]
        return [Check(name, None, "routing key set; not sent (a test event would page)")]
    return [Check(name, None, "not sent: a test message would reach people")]


async def _model(config: Config) -> list[Check]:
    """The Anthropic API takes the key and knows the model (GET /v1/models/{model})."""
    af = config.autofix
    name = "autofix: model API"
    if af.provider != "anthropic":
        return [Check(name, None, f"provider {af.provider}: credentials come from its SDK")]
    key = os.environ.get("ANTHROPIC_API_KEY", "")
    if not key:
        return [Check(name, False, "ANTHROPIC_API_KEY is not set")]
    base = af.base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
    headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    status, body = await _get(f"{base.rstrip('/')}/v1/models/{af.model}", headers)
    if status == 200:
        return [Check(name, True, f"key accepted, model {af.model} available")]
    if status in (401, 403):
        return [Check(name, False, f"key refused (HTTP {status})")]
    if status == 404:
        return [Check(name, False, f"model {af.model!r} not found")]
    return [Check(name, False, body if status is None else f"HTTP {status}: {body}")]


async def _github(config: Config) -> list[Check]:
    """The token can see the repository and push to it (GET /repos/{owner}/{name})."""
    af = config.autofix
    name = "autofix: github"
    if af.dry_run:
        return [Check(name, None, "dry_run: no pull request is opened")]
    if not af.github_repo:
        return [Check(name, False, "[autofix] github_repo is not set")]
    token = os.environ.get(af.token_env, "")
    if not token:
        return [Check(name, False, f"{af.token_env} is not set")]
    # "token …": the scheme PyGithub sends (and GitHub Enterprise has taken the longest)
    headers = {"Authorization": f"token {token}", "Accept": "application/vnd.github+json"}
    status, body = await _get(f"{af.github_api_url.rstrip('/')}/repos/{af.github_repo}", headers)
    if status != 200:
        why = {401: f"{af.token_env} refused", 404: "not found, or not visible to the token"}
        detail = body if status is None else f"{af.github_repo}: HTTP {status}"
        return [Check(name, False, f"{detail} ({why[status]})" if status in why else detail)]
    import json

    push = (json.loads(body).get("permissions") or {}).get("push")
    if push is False:
        return [Check(name, False, f"the token cannot push to {af.github_repo}")]
    return [Check(name, True, f"{af.github_repo} reachable with {af.token_env}")]


async def _get(url: str, headers: dict[str, str]) -> tuple[int | None, str]:
    """(status, body) of a GET, or (None, the reason it failed)."""
    import aiohttp

    try:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as s, s.get(url, headers=headers) as r:
            return r.status, (await r.text(errors="replace"))[:2000]
    except (aiohttp.ClientError, TimeoutError) as exc:
        return None, f"cannot reach {url.split('/v1/')[0].split('/repos/')[0]}: {exc}"
