"""Command line: run | scan | replay | fix | groups | status | templates | check-config | version.

Only this module maps exceptions to exit codes: 0 ran (whatever it found), 1 `--fail-on` matched,
2 usage or configuration error, 3 a source could not be read at all (any one: a partial report
must not pass for a complete one). `watcher fix` exits 1 when the fix failed, was rejected or
skipped for the budget or a fix already running (the reason on stderr, the JSON on stdout; 0
when the group already has its PR or fix), 2 when it cannot start for a configuration
reason (e.g. no GitHub token). 141 when stdout's reader went away (`| head -1`).
Imports are lazy so that `watcher templates` (used by benchmarks) starts in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from typing import Any

EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_SOURCE = 0, 1, 2, 3
FIX_FAILED = frozenset({"failed", "rejected", "skipped"})  # `watcher fix` exits 1 on these
EXIT_PIPE = 141  # stdout closed by its reader: what a shell shows for a SIGPIPE death
SEVERITY_CHOICES = ("info", "low", "medium", "high", "critical")

EPILOG = """exit codes: 0 ran (whatever it found), 1 --fail-on matched (fix: the fix failed),
2 usage/config error (a bad key, a port in use), 3 a source could not be read at all.
Environment: WATCHER_CONFIG, WATCHER_<SECTION>_<KEY>,
LOG_LEVEL, LOG_FORMAT (see config.example.toml); auto-fix: ANTHROPIC_API_KEY, GITHUB_TOKEN."""


def _common() -> argparse.ArgumentParser:
    """Options every subcommand takes (before or after the subcommand name)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML config file (default: $WATCHER_CONFIG, else built-in defaults)",
    )
    g.add_argument(
        "--log-level",
        metavar="LEVEL",
        default=argparse.SUPPRESS,
        choices=("trace", "debug", "info", "warning", "error"),
        help="own log level: trace|debug|info|warning|error (or $LOG_LEVEL)",
    )
    g.add_argument(
        "--log-format",
        metavar="FMT",
        default=argparse.SUPPRESS,
        choices=("auto", "json", "text"),
        help="own log format: text (one human line per record), json, or auto: text when "
        "stderr is a terminal, else json (default; or $LOG_FORMAT)",
    )
    return p


def _pipeline_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--service",
        metavar="NAME",
        default=None,
        help="watch this Railway service (adds a railway source; needs the railway source type)",
    )
    p.add_argument(
        "--auto-fix", action="store_true", help="enable the fix pipeline ([autofix] enabled = true)"
    )
    _dry_run_opt(p)
    p.add_argument(
        "--interval",
        metavar="SECONDS",
        type=float,
        default=None,
        help="polling interval and window evaluation, seconds (default from config: 60)",
    )
    _state_opt(p)


def _state_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state",
        metavar="PATH|URL",
        default=None,
        help="state file or URL (sqlite:///path, postgresql://user@host/db; default [watcher] "
        "state or state_path)",
    )


def _dry_run_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="fix pipeline: write <group>.patch and <group>.md to [autofix] output_dir; "
        "no push, no pull request ([autofix] dry_run = true)",
    )


def _report_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fail-on",
        metavar="SEVERITY",
        choices=SEVERITY_CHOICES,
        default=None,
        help="exit 1 when a group at or above this severity was found "
        "(info|low|medium|high|critical)",
    )
    p.add_argument(
        "--top",
        metavar="N",
        type=int,
        default=10,
        help="sections for the N top groups in the report (default 10)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=None,
        help="write the report/events here instead of stdout",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress line on a terminal")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render --help in the README)."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="watcher",
        description="Tail production logs, group the errors into patterns, export their rates, "
        "and propose fixes.",
        epilog=EPILOG,
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        parents=[common],
        epilog=EPILOG,
        help="the daemon: follow every source until SIGTERM/SIGINT",
        description="Follow every configured source (stdin when none), group "
        "errors, serve /metrics and health on [http] listen, and "
        "resume from stored checkpoints after a restart.",
    )
    _pipeline_opts(run)
    run.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default=None,
        help="HTTP listen address (default [http] listen, 127.0.0.1:9464)",
    )

    scan = sub.add_parser(
        "scan",
        parents=[common],
        epilog=EPILOG,
        help="read a bounded window of every source, print the report, exit",
        description="Read the last --since of every configured source once "
        "and print the Markdown Production Debug Report. File "
        "sources are read from their beginning and events are "
        "kept when their timestamp falls in the window (or has "
        "none). Checkpoints are neither read nor moved.",
    )
    _pipeline_opts(scan)
    scan.add_argument(
        "--since", metavar="DURATION", default="1h", help="how far back: 30m, 1h, 2d (default 1h)"
    )
    scan.add_argument(
        "--until",
        metavar="DURATION",
        default=None,
        help="end of the window, as a duration ago (default now)",
    )
    _report_opts(scan)

    replay = sub.add_parser(
        "replay",
        parents=[common],
        epilog=EPILOG,
        help="feed log files through the pipeline as if live; print report",
        description="Feed FILEs (or - for stdin) through the full pipeline "
        "and print the report, or with --emit events one JSON "
        "object per error event (first_line/last_line, group, "
        "category, severity, exception_type, top_frame, message).",
    )
    replay.add_argument("files", nargs="+", metavar="FILE", help="log files; - is stdin")
    replay.add_argument(
        "--emit",
        choices=("report", "events"),
        default="report",
        help="report (Markdown, default) or events (JSON lines)",
    )
    replay.add_argument(
        "--state",
        metavar="PATH",
        default=None,
        help="also store the groups in this SQLite file (default: in memory)",
    )
    _report_opts(replay)

    fix = sub.add_parser(
        "fix",
        parents=[common],
        epilog=EPILOG,
        help="analyse one stored group and propose its fix (PR, patch or dry run)",
        description="Load GROUP_ID from the state DB (written by `watcher run`, or by "
        "`watcher scan --state PATH`), have Claude analyse it against [autofix] repo_path, and "
        "take the fix as far as the confidence thresholds allow: root cause only, a patch in "
        "[autofix] output_dir, or a pull request. Prints the recorded fix as JSON. Runs even "
        "when [autofix] enabled is false; never opens a second PR for a group.",
    )
    fix.add_argument("group_id", metavar="GROUP_ID", help="the group id shown in the report")
    _state_opt(fix)
    _dry_run_opt(fix)
    pr = fix.add_mutually_exclusive_group()
    pr.add_argument(
        "--create-pr",
        dest="create_pr",
        action="store_true",
        default=True,
        help="open a pull request when confident enough (default)",
    )
    pr.add_argument(
        "--no-pr",
        dest="create_pr",
        action="store_false",
        help="write the patch and report section to [autofix] output_dir instead of a PR",
    )

    sub.add_parser(
        "templates",
        parents=[common],
        help="stdin lines -> '<group id>\\t<template>' per line (benchmarks)",
        description="Read one message per \\n-terminated stdin line (no multi-line "
        "assembly) and print, per line, its group id, a tab and the "
        "template.",
    )

    check = sub.add_parser(
        "check-config",
        parents=[common],
        help="validate a config file and print the effective config",
        description="Validate FILE (or --config / $WATCHER_CONFIG) and print "
        "the effective configuration, secrets masked. Exit 2 on "
        "the first error, naming the file, line and key.",
    )
    check.add_argument("file", nargs="?", default=None, metavar="FILE")
    check.add_argument(
        "--probe",
        action="store_true",
        help="also connect to each source (files matched, program on PATH, Loki ready and the "
        "query valid, CloudWatch groups readable, Railway CLI logged in) and, with auto-fix "
        "on, to the model API and GitHub; one line per check, exit 3 when any fails",
    )

    status = sub.add_parser(
        "status",
        aliases=["top"],
        parents=[common],
        help="a running daemon at a glance: sources (lines/s, lag, errors), top patterns",
        description="Ask a running daemon's HTTP API (at [http] listen, or --url) for its "
        "sources (state, lines/s, lines, error events, lag) and its busiest patterns (1 m / "
        "5 m / 1 h counts), redrawn in place every --interval on a terminal, like `vector top`. "
        "Sends the API token ([http] token_env) when set. Exit 3 when the daemon cannot be "
        "reached.",
    )
    status.add_argument("--url", default=None, help="the daemon's base URL ([http] listen)")
    status.add_argument("--once", action="store_true", help="print one screen and exit (scripts)")
    status.add_argument(
        "--interval", type=float, default=2.0, metavar="SECONDS", help="refresh every (default 2)"
    )
    status.add_argument("--top", type=int, default=10, metavar="N", help="patterns shown (10)")

    migrate = sub.add_parser(
        "migrate",
        parents=[common],
        help="apply pending state schema migrations (SQLite file or PostgreSQL) and exit",
        description="Open the state ([watcher] state, or --state PATH/URL), apply the schema "
        "migrations it has not had yet, and print its schema version. Every start migrates "
        "too; run this first to migrate a shared PostgreSQL database before a rollout.",
    )
    _state_opt(migrate)

    from watcher.cli_groups import add_parser as add_groups

    add_groups(sub, common)
    sub.add_parser("version", parents=[common], help="print the version")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    if args.command == "templates":
        from watcher.group.template import run_stream

        return run_stream(sys.stdin.buffer, sys.stdout.buffer)
    if args.command == "version":
        from watcher import __version__

        print(f"watcher {__version__}")
        return EXIT_OK
    from watcher.config import ConfigError
    from watcher.store import StoreError

    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"watcher: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:  # a server that cannot be reached, a schema newer than us
        print(f"watcher: state error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """stdout's reader left (`| head -1`): stop quietly, as Unix tools do, with the status a
    SIGPIPE death gives (128 + 13). Python would otherwise print a second traceback when it
    flushes stdout at exit, so stdout is pointed at /dev/null first."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check-config":
        return _check_config(args)
    if args.command in ("status", "top"):
        return _status(args)
    config = _load(args)
    if args.command == "groups":  # a short command: its own log lines only at warning and up
        from watcher.cli_groups import run as groups
        from watcher.logs import configure

        configure("warning", config.watcher.log_format)
        return groups(config, args)
    _configure_logs(config)
    _warn_unknown_env(config)
    from watcher.gctune import tune as tune_gc

    tune_gc()
    if args.command == "run":
        return _run(config)
    if args.command == "scan":
        return _scan(config, args)
    if args.command == "fix":
        return _fix(config, args)
    if args.command == "migrate":
        return _migrate(config)
    return _replay(config, args)


def _load(args: argparse.Namespace) -> Any:
    from watcher.config import ConfigError, load_config, parse_duration

    config = load_config(getattr(args, "config", None))
    commands = ("run", "scan", "fix", "groups", "migrate")
    state = getattr(args, "state", None) if args.command in commands else None
    if state is not None and "://" in state:  # --state URL: the same as [watcher] state
        config, state = config.with_overrides(state=state), None
    elif state is not None:  # --state PATH replaces a configured state URL too
        config = config.with_overrides(state="")
    config = config.with_overrides(
        log_level=getattr(args, "log_level", None),
        log_format=getattr(args, "log_format", None),
        interval=getattr(args, "interval", None),
        state_path=state,
        **{
            "http.listen": getattr(args, "listen", None),
            "autofix.enabled": True if getattr(args, "auto_fix", False) else None,
            "autofix.dry_run": True if getattr(args, "dry_run", False) else None,
        },
    )
    if getattr(args, "service", None):
        config = replace(config, sources=(_railway_source(args.service),))
    ago: dict[str, float] = {}
    for flag in ("since", "until"):
        value = getattr(args, flag, None)
        if value is not None:
            try:
                ago[flag] = parse_duration(value)
            except ValueError as exc:
                raise ConfigError(f"--{flag}: {exc}") from None
    if "until" in ago and ago["until"] >= ago.get("since", 0.0):
        raise ConfigError(
            f"--until {args.until} is not after --since {args.since}: both count back from "
            f"now, so --until must be the shorter duration (e.g. --since 2h --until 1h)"
        )
    return config


def _warn_unknown_env(config: Any) -> None:
    """Name the WATCHER_* variables no key reads (a typo is otherwise ignored silently)."""
    import difflib

    import structlog

    from watcher.config import known_env_vars, unknown_env_vars

    unknown = unknown_env_vars(config)
    if not unknown:
        return
    known = sorted(n for n in known_env_vars(config) if n.startswith("WATCHER_"))
    hints = {n: difflib.get_close_matches(n, known, 1) for n in unknown}
    structlog.get_logger("watcher.config").warning(
        "Unknown WATCHER_* environment variables ignored.",
        names=unknown,
        did_you_mean={n: h[0] for n, h in hints.items() if h},
    )


def _railway_source(service: str) -> Any:
    from watcher.config import ConfigError
    from watcher.sources import SOURCES, config_class

    if "railway" not in SOURCES:
        raise ConfigError(
            "--service: the railway source type is not available in this build "
            f"(known types: {', '.join(sorted(SOURCES))})"
        )
    return config_class("railway")(type="railway", name=service, service=service)


def _configure_logs(config: Any) -> None:
    from watcher.fix.redact import structlog_processor
    from watcher.logs import configure
    from watcher.wiring import build_redactor

    configure(
        config.watcher.log_level,
        config.watcher.log_format,
        redact=structlog_processor(build_redactor(config)),
    )


def _check_config(args: argparse.Namespace) -> int:
    from watcher.config import dump_effective, load_config

    path = args.file or getattr(args, "config", None)
    config = load_config(path)
    print(dump_effective(config), end="")
    where = config.path or "built-in defaults"
    if config.autofix.enabled or config.autofix.verify_command.strip():
        from watcher.fix.sandbox import explain

        for line in explain(config.autofix.sandbox, config.autofix.verify_command, os.environ):
            print(f"# {line}", file=sys.stderr)
    print(f"# ok: {where}", file=sys.stderr)
    return _probe(config) if args.probe else EXIT_OK


def _probe(config: Any) -> int:
    import asyncio

    from watcher.probe import probe_all, render
    from watcher.wiring import build_redactor

    redact = build_redactor(config).redact  # a probe's answer may quote a URL with a token
    checks = asyncio.run(probe_all(config))
    for check in checks:
        print(redact(render(check)), file=sys.stderr)
    failed = sum(1 for c in checks if c.ok is False)
    print(f"# probe: {len(checks) - failed} of {len(checks)} checks passed", file=sys.stderr)
    return EXIT_SOURCE if failed else EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from watcher.config import load_config
    from watcher.status import main_status

    http = load_config(getattr(args, "config", None)).http
    token = os.environ.get(http.token_env, "").strip() or None
    return main_status(http.listen, url=args.url, token=token, once=args.once,
                       interval=max(0.1, args.interval), top=args.top)  # fmt: skip


def _run(config: Any) -> int:
    import asyncio

    from watcher.daemon import Daemon

    return asyncio.run(Daemon(config).run())


def _period(args: argparse.Namespace) -> tuple[float, float]:
    from watcher.config import parse_duration

    now = time.time()
    end = now - parse_duration(args.until) if args.until else now
    return now - parse_duration(args.since), end


def _scan(config: Any, args: argparse.Namespace) -> int:
    start, end = _period(args)
    return _bounded(config, args, list(config.sources), (start, end), emit="report")


def _replay(config: Any, args: argparse.Namespace) -> int:
    from watcher.sources.file import FileSourceConfig
    from watcher.sources.stdin import StdinSourceConfig

    sources: list[Any] = []
    for path in args.files:
        if path == "-":
            sources.append(StdinSourceConfig(type="stdin", name="stdin"))
            continue
        if not os.path.isfile(path):
            print(f"watcher: cannot read {path}: no such file", file=sys.stderr)
            return EXIT_SOURCE
        name = _unique(os.path.basename(path) or path, {s.name for s in sources})
        sources.append(FileSourceConfig(type="file", name=name, path=path, read_from="beginning"))
    return _bounded(config, args, sources, (None, None), emit=args.emit)


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}#{n}"
    return candidate


def _bounded(
    config: Any,
    args: argparse.Namespace,
    sources: list[Any],
    period: tuple[float | None, float | None],
    *,
    emit: str,
) -> int:
    import asyncio

    from watcher.report import render_report
    from watcher.scan import event_printer, scan

    autofix = args.command == "scan" and config.autofix.enabled
    # auto-fix needs the state DB: it remembers fixes, so a second run opens no second PR
    state_path = getattr(args, "state", None) or (config.watcher.state_path if autofix else None)
    from watcher.wiring import build_redactor

    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    redact = build_redactor(config).redact  # reports and events quote log lines, secrets too
    try:
        on_event = event_printer(out, redact) if emit == "events" else None
        result = asyncio.run(
            scan(
                config,
                sources,
                period=period,
                on_event=on_event,
                state_path=state_path,
                progress=not args.no_progress,
                autofix=autofix,
            )
        )
        if emit == "report":
            report = render_report(
                result.groups,
                result.stats,
                period=period,
                sources=[s.name for s in sources],
                analyses=result.analyses,
                top=args.top,
            )
            out.write(redact(report))
    finally:
        if out is not sys.stdout:
            out.close()
    for fix in result.fixes:
        outcome = fix.pr_url or fix.error or ", ".join(fix.details.get("files", []))
        line = f"watcher: fix {fix.group_id}: {fix.status} {outcome}".rstrip()
        print(redact(line), file=sys.stderr)
    return _exit_code(result, args.fail_on)


def _migrate(config: Any) -> int:
    """`watcher migrate`: open the state (which applies what is pending) and say its version."""
    from watcher.store import StoreError, open_configured

    where = config.watcher.target.shown
    try:
        with open_configured(config) as store:
            version = store.migrate()
    except (StoreError, OSError) as exc:
        print(f"watcher: state at {where}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"state at {where}: schema v{version}, up to date")
    return EXIT_OK


def _fix(config: Any, args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses
    import json

    from watcher.store import open_configured

    path = config.watcher.target.shown
    if not config.watcher.shared and not os.path.isfile(path):
        print(f"watcher: no state DB at {path}: run `watcher scan --state {path}` first",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    store = open_configured(config, samples_per_group=config.grouping.samples_per_group)
    try:
        group = store.get_group(args.group_id)
        if group is None:
            print(f"watcher: no group {args.group_id!r} in {path}", file=sys.stderr)
            return EXIT_USAGE
        fix = asyncio.run(_fix_one(config, store, group, args))
    finally:
        store.close()
    print(json.dumps(dataclasses.asdict(fix), indent=2, ensure_ascii=False))
    if fix.details.get("skip") == "config":  # no token / no github_repo: a configuration error
        print(f"watcher: config error: {fix.error}", file=sys.stderr)
        return EXIT_USAGE
    already = fix.details.get("skip") == "exists"  # an open PR or a fix: nothing went wrong
    if fix.status in FIX_FAILED and not already:  # a script must not read "no fix" as success
        print(f"watcher: fix {fix.group_id} {fix.status}: {fix.error or 'no reason given'}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FOUND
    return EXIT_OK


async def _fix_one(config: Any, store: Any, group: Any, args: argparse.Namespace) -> Any:
    from watcher.fix.pipeline import FixPipeline

    dry_run = True if args.dry_run else None
    async with FixPipeline.from_config(config, store) as fixer:
        return await fixer.run_one(group, create_pr=args.create_pr, dry_run=dry_run)


def _exit_code(result: Any, fail_on: str | None) -> int:
    from watcher.model import SEVERITY_RANK

    for name, error in result.failed_sources.items():
        print(f"watcher: source {name} failed: {error}", file=sys.stderr)
    if result.failed_sources:  # a partial report must not pass for a complete one
        return EXIT_SOURCE
    if fail_on is not None and result.worst_severity_rank() >= SEVERITY_RANK[fail_on]:
        return EXIT_FOUND
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
