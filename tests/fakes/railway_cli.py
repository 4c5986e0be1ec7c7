"""A fake `railway` CLI: the parts of `railway logs` the railway source relies on.

Run through the shim that tests/fakes/railway.py writes (it sets RAILWAY_FAKE_DIR). Like the
real CLI (railwayapp/cli src/commands/logs.rs, src/controllers/deployment.rs):

- `logs --json` prints one JSON object per log, `{"message", "timestamp", <attributes>}`, the
  attributes flattened and in arbitrary key order (shuffled on every run);
- it streams only when stdout is a terminal (`os.isatty(1)`) and none of --lines/--since/
  --until is given: it replays the last 500 lines, then follows; into a pipe (or with those
  flags) it prints the last N (--lines, default 500) and exits;
- a stream ends (exit 0) when "the server closes it" (control knob `close` changes) or when the
  followed deployment is replaced (knob `deployment` changes and none was pinned);
- auth failures print the CLI's messages on stderr and exit 1; bad arguments exit 2.

State, all in RAILWAY_FAKE_DIR: backlog.jsonl (one record per log: {"d": deployment,
"k": "deploy"|"build", "e": entry} or {"d", "k", "raw": hex bytes printed as they are}),
control.json (knobs, see tests/fakes/railway.py), invocations.jsonl (one record per run).
Standalone on purpose: no watcher imports, so it starts fast and tests nothing by accident.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

VERSION = "railway 4.11.0"
REPLAY = 500  # what the server replays on subscribe, and the fetch default
POLL = 0.02
MESSAGES = {
    "unauthorized": "Unauthorized. Please login with `railway login`",
    "invalid_token": (
        "Invalid RAILWAY_TOKEN. Please check that it is valid and has access to the resource "
        "you're trying to use."
    ),
    "not_signed_in": "Not signed in.",
}
TRANSIENT = (
    "Failed to fetch: error sending request for url (https://backboard.railway.com/graphql/v2)"
)
_RELATIVE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def main(argv: list[str]) -> int:
    state = Path(os.environ["RAILWAY_FAKE_DIR"])
    control = read_control(state)
    record_invocation(state, argv, control)
    if argv in (["--version"], ["-V"]):
        print(VERSION)
        return 0
    if argv == ["whoami"]:  # what `check-config --probe` asks: logged in, and as whom
        failure = auth_refusal(control)
        if failure is not None:
            print(failure, file=sys.stderr)
            return 1
        print("Logged in as Fake User (fake@example.com) 👋")
        return 0
    if not argv or argv[0] != "logs":
        print(f"error: unrecognized subcommand '{argv[0] if argv else ''}'", file=sys.stderr)
        return 2
    args = parser().parse_args(argv[1:])  # exits 2 with a usage message, like clap
    failure = refuse(state, control, args)
    if failure is not None:
        print(failure, file=sys.stderr)
        return 1
    if control.get("stderr"):  # a diagnostic that does not stop the command
        print(control["stderr"], file=sys.stderr, flush=True)
    if control.get("hang"):
        while True:  # a CLI stuck on a dead connection: says nothing, never exits
            time.sleep(0.05)
    return logs(state, control, args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="railway logs")
    p.add_argument("-s", "--service")
    p.add_argument("-e", "--environment")
    p.add_argument("-p", "--project")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("-d", "--deployment", action="store_true")
    kind.add_argument("-b", "--build", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("-n", "--lines", "--tail", type=int)
    p.add_argument("-f", "--filter")
    p.add_argument("-S", "--since")
    p.add_argument("-U", "--until")
    p.add_argument("--latest", action="store_true")
    p.add_argument("deployment_id", nargs="?")
    return p


def auth_refusal(control: dict[str, Any]) -> str | None:
    """The CLI's message when it is not logged in (or its token is refused), else None."""
    auth = control.get("auth", "ok")
    if auth != "ok":
        return MESSAGES[auth]
    wanted = control.get("require_token")
    if wanted is not None and os.environ.get("RAILWAY_TOKEN") != wanted:
        return (
            "Unauthorized. Please check that your RAILWAY_TOKEN is valid and has access to the "
            "resource you're trying to use."
        )
    return None


def refuse(state: Path, control: dict[str, Any], args: argparse.Namespace) -> str | None:
    """The error the CLI would print instead of logs, if any."""
    failure = auth_refusal(control)
    if failure is not None:
        return failure
    if control.get("fail_next", 0) > 0:
        write_control(state, {**control, "fail_next": control["fail_next"] - 1})
        return TRANSIENT
    services = control.get("services")
    if services is not None and args.service is not None and args.service not in services:
        return f'Service "{args.service}" not found.'
    return None


def logs(state: Path, control: dict[str, Any], args: argparse.Namespace) -> int:
    deployment = args.deployment_id or control.get("deployment", "d1")
    kind = "build" if args.build else "deploy"
    fetch = args.lines is not None or args.since is not None or args.until is not None
    streaming = os.isatty(1) and not fetch
    records, offset = read_backlog(state, 0)
    chosen = [r for r in records if wanted(r, deployment, kind, args)]
    limit = REPLAY if streaming else (args.lines or REPLAY)
    out = Printer(control)
    try:
        out.emit(chosen[-limit:] if limit > 0 else [])
        if not streaming:
            return 0
        generation = control.get("close", 0)
        while True:
            time.sleep(POLL)
            control = read_control(state)
            if control.get("close", 0) != generation:
                return 0  # the server closed the stream
            if args.deployment_id is None and control.get("deployment", "d1") != deployment:
                return 0  # the followed deployment was replaced
            new, offset = read_backlog(state, offset)
            out.emit([r for r in new if wanted(r, deployment, kind, args)])
    except OSError:  # the reader went away (EPIPE, or EIO on a closed terminal)
        return 0


class Printer:
    """Writes records the way the CLI prints them (knobs: wrap, crlf)."""

    def __init__(self, control: dict[str, Any]) -> None:
        self.wrap = bool(control.get("wrap")) and os.isatty(1)
        self.end = b"\r\n" if control.get("crlf") else b"\n"
        self.rng = random.Random()

    def emit(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        chunks = [self.render(r) + self.end for r in records]
        sys.stdout.buffer.write(b"".join(chunks))
        sys.stdout.buffer.flush()

    def render(self, record: dict[str, Any]) -> bytes:
        if "raw" in record:
            return bytes.fromhex(record["raw"])
        items = list(record["e"].items())
        self.rng.shuffle(items)  # a HashMap: no key order to rely on
        data = json.dumps(dict(items), ensure_ascii=False).encode("utf-8", "surrogatepass")
        if self.wrap:  # a naive terminal program: break lines at the terminal's width
            width = os.get_terminal_size(1).columns or 80
            data = b"\n".join(data[i : i + width] for i in range(0, len(data), width))
        return data


def wanted(record: dict[str, Any], deployment: str, kind: str, args: argparse.Namespace) -> bool:
    if record.get("d", "d1") != deployment or record.get("k", "deploy") != kind:
        return False
    entry = record.get("e")
    if entry is None:
        return True  # raw output is not a log the server can filter
    ns = to_ns(entry.get("timestamp", ""))
    if args.since is not None and (ns is None or ns < when(args.since)):
        return False
    if args.until is not None and (ns is None or ns > when(args.until)):
        return False
    return args.filter is None or matches(entry, args.filter)


def matches(entry: dict[str, Any], query: str) -> bool:
    """A small part of Railway's query syntax: `@key:value` terms and bare words, all ANDed."""
    for term in query.split():
        if term.startswith("@") and ":" in term:
            key, _, value = term[1:].partition(":")
            if str(entry.get(key, "")).lower() != value.lower():
                return False
        elif term.lower() not in str(entry.get("message", "")).lower():
            return False
    return True


def when(text: str) -> int:
    """--since/--until: RFC3339 or relative (30s, 5m, 2h, 1d, 1w) -> ns."""
    relative = _RELATIVE.fullmatch(text)
    if relative:
        delta = timedelta(seconds=int(relative[1]) * _UNITS[relative[2]])
        return int((datetime.now(UTC) - delta).timestamp() * 1e9)
    ns = to_ns(text)
    if ns is None:
        print(f"error: invalid value '{text}' for '--since <TIME>'", file=sys.stderr)
        sys.exit(2)
    return ns


def to_ns(text: str) -> int | None:
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        return None
    zone = "+00:00" if match[3] == "Z" else match[3]
    seconds = int(datetime.fromisoformat(match[1] + zone).timestamp())
    return seconds * 1_000_000_000 + int((match[2] or "0")[:9].ljust(9, "0"))


def read_backlog(state: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete records from byte `offset` on, and the offset after the last one."""
    with (state / "backlog.jsonl").open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1
    records = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return records, offset + end


def read_control(state: Path) -> dict[str, Any]:
    try:
        return json.loads((state / "control.json").read_text())
    except (OSError, ValueError):
        return {}


def write_control(state: Path, control: dict[str, Any]) -> None:
    tmp = state / f"control.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(control))
    os.replace(tmp, state / "control.json")


def record_invocation(state: Path, argv: list[str], control: dict[str, Any]) -> None:
    cols = os.get_terminal_size(1).columns if os.isatty(1) else 0
    wanted_token = control.get("require_token")
    record = {
        "argv": argv,
        "tty": os.isatty(1),
        "stdin_tty": os.isatty(0),
        "cols": cols,
        "pid": os.getpid(),
        "token_ok": wanted_token is not None and os.environ.get("RAILWAY_TOKEN") == wanted_token,
        "env": {k: os.environ.get(k) for k in ("NO_COLOR", "RAILWAY_NO_AUTO_UPDATE")},
    }
    with (state / "invocations.jsonl").open("a") as fh:
        fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
