"""`watcher groups list|show|resolve|ignore|reopen|merge|split`: patterns by hand.

Reads (list, show) open the state file directly: SQLite's WAL lets them read beside a running
daemon (what they show is as of the daemon's last commit, at most `persist_interval` old).

Changes must not race the daemon, which holds the live groups in memory and would write its
own copy back. So: when no daemon holds the state file, the change is made in the file, under
the same lock a daemon takes (none can start half-way); when one does, the change goes through
its HTTP API (`[http] listen`, bearer token from `[http] token_env`), which applies it to the
live group and commits it. No API reachable while a daemon runs is an error that says why.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2
STATES = ("open", "resolved", "ignored", "regressed")


class GroupsError(Exception):
    """A groups command that cannot be done; the message says why (exit 2)."""


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The `groups` subcommand and its actions."""
    groups = sub.add_parser(
        "groups",
        parents=[common],
        help="list, show, resolve, ignore, merge or split patterns",
        description="Patterns in the state file, and their life. Changes go through a running "
        "daemon's API when one holds the state file, else into the file directly.",
    )
    acts = groups.add_subparsers(dest="action", metavar="ACTION", required=True)
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--state",
        metavar="PATH|URL",
        help="state file or URL (default: [watcher] state or state_path)",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[common, state])
    listing = acts.add_parser("list", parents=[common], help="patterns, most frequent first")
    listing.add_argument(
        "--only", metavar="STATE", choices=STATES, help="only patterns in this state"
    )
    listing.add_argument("--category", metavar="NAME")
    listing.add_argument("--severity", metavar="MIN", help="at least this severity")
    listing.add_argument("--search", metavar="TEXT", help="text in the template, id or source")
    listing.add_argument("--limit", type=int, default=50, metavar="N")
    listing.add_argument("--json", action="store_true", help="JSON lines, one pattern each")
    show = acts.add_parser("show", parents=[common], help="a pattern, fingerprints, activity")
    show.add_argument("group_id", metavar="ID")
    show.add_argument("--json", action="store_true")
    for action, text in (
        ("resolve", "resolve: a later event regresses it"),
        ("ignore", "ignore: forever, for N more events, or until a time"),
        ("reopen", "open a resolved or ignored pattern again"),
        ("merge", "fold other patterns (and their fingerprints) into this one"),
        ("split", "split a fingerprint off this pattern"),
    ):
        p = acts.add_parser(action, parents=[common], help=text)
        p.add_argument("group_id", metavar="ID")
        p.add_argument("--actor", metavar="NAME", help="who (default: your user name)")
        if action == "ignore":
            p.add_argument("--count", type=int, metavar="N", help="until N more events")
            p.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 2h, 30m")
            # dest: the CLI checks any `until` attribute as scan's --until duration
            p.add_argument(
                "--until", dest="until_time", metavar="TIME", help="ISO 8601: 2026-01-31T09:00Z"
            )
        if action == "merge":
            p.add_argument("others", nargs="+", metavar="OTHER_ID")
        if action == "split":
            p.add_argument("fingerprint", metavar="FINGERPRINT")


def run(config: Any, args: argparse.Namespace) -> int:
    """Run one `groups` action; the exit code."""
    try:
        if args.action == "list":
            return _list(config, args)
        if args.action == "show":
            return _show(config, args)
        return _change(config, args)
    except GroupsError as exc:
        print(f"watcher: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _store(config: Any) -> Any:
    from watcher.store import open_configured

    path = config.watcher.state_path
    if not config.watcher.shared and not os.path.isfile(path):
        raise GroupsError(f"no state DB at {path}: nothing has been recorded there yet")
    return open_configured(config, samples_per_group=config.grouping.samples_per_group)


# --- reads ---------------------------------------------------------------------------------------


def _list(config: Any, args: argparse.Namespace) -> int:
    store = _store(config)
    try:
        groups = store.list_groups(
            state=args.only,
            category=args.category,
            min_severity=args.severity,
            limit=max(1, args.limit) if not args.search else 100_000,
        )
    except ValueError as exc:
        raise GroupsError(str(exc)) from None
    finally:
        store.close()
    if args.search:
        needle = args.search.lower()
        groups = [g for g in groups if needle in _haystack(g)][: max(1, args.limit)]
    if args.json:
        for group in groups:
            print(json.dumps(_group_json(group), ensure_ascii=False))
        return EXIT_OK
    print(f"{'ID':<14} {'STATE':<9} {'SEVERITY':<8} {'CATEGORY':<22} {'COUNT':>7}  TEMPLATE")
    for g in groups:
        print(f"{g.id:<14} {g.state:<9} {g.severity:<8} {g.category:<22} {g.count:>7}  "
              f"{g.template[:70]}")  # fmt: skip
    return EXIT_OK


def _haystack(group: Any) -> str:
    return " ".join([group.id, group.template, *group.sources]).lower()


def _group_json(group: Any) -> dict[str, Any]:
    keys = ("id", "state", "severity", "category", "fixable", "count", "template", "status")
    out = {key: getattr(group, key) for key in keys}
    out.update(first_seen=_iso(group.first_seen), last_seen=_iso(group.last_seen))
    out.update(sources=group.sources, tags=group.tags)
    return out


def _show(config: Any, args: argparse.Namespace) -> int:
    store = _store(config)
    try:
        group = store.get_group(args.group_id)
        if group is None:
            raise GroupsError(f"no pattern {args.group_id!r} in {config.watcher.target.shown}")
        fingerprints = store.fingerprints(group.id)
        activity = store.list_activity(group_id=group.id, limit=50)
    finally:
        store.close()
    if args.json:
        out = _group_json(group)
        out["fingerprints"] = [{"fingerprint": f, "version": v} for f, _, v in fingerprints]
        out["activity"] = [_activity_json(a) for a in activity]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"{group.id}  {group.state}  {group.severity} {group.category}  count {group.count}")
    print(f"  {group.template}")
    print(f"  seen {_iso(group.first_seen)} .. {_iso(group.last_seen)}  sources {group.sources}")
    if group.top_frame is not None:
        print(f"  at {group.top_frame.file}:{group.top_frame.line} in {group.top_frame.function}")
    for name, values in group.tags.items():
        print(f"  {name}: {values}")
    print("  fingerprints: " + ", ".join(f"{f} (v{v})" for f, _, v in fingerprints))
    for entry in activity:
        print(f"  {_iso(entry.at)}  {entry.action:<12} by {entry.actor}  "
              f"{entry.old_state} -> {entry.new_state}  {json.dumps(entry.detail)}")  # fmt: skip
    return EXIT_OK


def _activity_json(entry: Any) -> dict[str, Any]:
    return {
        "action": entry.action,
        "actor": entry.actor,
        "at": _iso(entry.at),
        "old_state": entry.old_state,
        "new_state": entry.new_state,
        "detail": entry.detail,
    }


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z") if t else None


# --- changes -------------------------------------------------------------------------------------


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """The action's parameters, checked (durations and times turned into epoch seconds)."""
    from watcher.config import parse_duration

    if args.action == "merge":
        return {"others": list(args.others)}
    if args.action == "split":
        return {"fingerprint": args.fingerprint}
    if args.action != "ignore":
        return {}
    if args.count is not None and args.count < 1:
        raise GroupsError("--count must be at least 1")
    until = None
    if args.duration is not None:
        try:
            until = time.time() + parse_duration(args.duration)
        except ValueError as exc:
            raise GroupsError(f"--for: {exc}") from None
    if args.until_time is not None:
        until = _parse_time(args.until_time)
    return {"more": args.count, "until": until}


def _parse_time(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GroupsError(f"--until: {text!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise GroupsError(f"--until: {text!r} has no time zone (add Z or +00:00)")
    return parsed.timestamp()


def _change(config: Any, args: argparse.Namespace) -> int:
    from watcher.store.lock import StateLock, StateLocked

    actor = f"cli:{args.actor or _user()}"
    params = _params(args)
    if config.watcher.shared:  # every watcher reads the shared state: change it in place
        result = _in_file(config, args, actor, params)
        print(f"{result['id']}: {result['state']} ({args.action} by {actor})")
        return EXIT_OK
    lock = StateLock(config.watcher.state_path)
    try:
        lock.acquire()
    except StateLocked as exc:
        result = _through_api(config, args, actor, params, exc)
    else:
        try:
            result = _in_file(config, args, actor, params)
        finally:
            lock.release()
    print(f"{result['id']}: {result['state']} ({args.action} by {actor})")
    return EXIT_OK


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _in_file(config: Any, args: argparse.Namespace, actor: str, params: dict[str, Any]) -> Any:
    from watcher.group.lifecycle import LifecycleError
    from watcher.patterns import PatternActions

    store = _store(config)
    try:
        actions = PatternActions(store)
        group = asyncio.run(actions.apply(args.group_id, args.action, actor, **params))
    except KeyError as exc:
        raise GroupsError(f"no pattern {exc.args[0]!r} in {config.watcher.target.shown}") from None
    except LifecycleError as exc:
        raise GroupsError(str(exc)) from None
    finally:
        store.close()
    return {"id": group.id, "state": group.state}


def _through_api(
    config: Any, args: argparse.Namespace, actor: str, params: dict[str, Any], locked: Exception
) -> dict[str, Any]:
    """The change made by the running daemon, through its API."""
    http = config.http
    if not http.enabled:
        raise GroupsError(f"{locked}; its API is off ([http] enabled = false), so the change "
                          "cannot reach it: enable the API, or stop the daemon")  # fmt: skip
    token = os.environ.get(http.token_env, "").strip()
    if not token:
        raise GroupsError(f"a daemon holds the state file; set {http.token_env} to its API token "
                          "to change patterns through it")  # fmt: skip
    host, _, port = http.listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    query = _query(args.action, params, actor)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    path = f"/error-monitor/errors/patterns/{urllib.parse.quote(args.group_id)}/{args.action}"
    request = urllib.request.Request(
        f"http://{netloc}{path}?{urllib.parse.urlencode(query)}",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("detail")
        raise GroupsError(f"the daemon refused the change: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise GroupsError(f"a daemon holds the state file but its API at {netloc} "
                          f"is not reachable: {exc}") from None  # fmt: skip
    return body["pattern"]


def _query(action: str, params: dict[str, Any], actor: str) -> dict[str, str]:
    query = {"actor": actor}
    if action == "merge":
        query["ids"] = ",".join(params["others"])
    elif action == "split":
        query["fingerprint"] = params["fingerprint"]
    elif action == "ignore":
        if params.get("more") is not None:
            query["count"] = str(params["more"])
        if params.get("until") is not None:
            query["until_ts"] = f"{params['until']:.3f}"
    return query
