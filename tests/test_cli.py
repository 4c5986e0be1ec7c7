"""The command line, end to end in a subprocess: reports, events, exit codes, config errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .helpers import DATA, clean_env

MIXED = str(DATA / "mixed.log")


def watcher(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:

    full_env = clean_env()
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def test_replay_prints_report_with_groups() -> None:
    """`watcher replay FILE` prints the report: one row per group, and the accounting."""
    r = watcher("replay", MIXED, "--log-level", "warning")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Production Debug Report" in out
    assert "httpx.ReadTimeout" in out and "NullPointerException" in out
    assert "28" in out  # lines read, in the accounting


def test_replay_emit_events_spans() -> None:
    """--emit events gives one JSON object per error event with its line span and frame."""
    r = watcher("replay", MIXED, "--emit", "events")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(events) == 7
    spans = [(e["first_line"], e["last_line"]) for e in events]
    assert (4, 10) in spans and (14, 20) in spans and (24, 27) in spans
    py = next(e for e in events if e["first_line"] == 4)
    assert py["exception_type"] == "httpx.ReadTimeout"
    assert py["top_frame"] == {"file": "/app/src/payments.py", "line": 42, "function": "charge"}
    assert py["category"] == "timeout_error"
    second = next(e for e in events if e["first_line"] == 14)
    assert second["group"] == py["group"]
    logfmt = [e for e in events if e["category"] == "external_service_error"]
    assert len(logfmt) == 2 and logfmt[0]["group"] == logfmt[1]["group"]
    assert logfmt[0]["top_frame"] is None


def test_replay_stdin() -> None:
    """`-` replays standard input."""
    r = watcher("replay", "-", "--emit", "events", stdin=(DATA / "mixed.log").read_bytes())
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 7


def test_fail_on_exit_code() -> None:
    """--fail-on exits 1 when a group at or above the severity exists, 0 otherwise."""
    assert watcher("replay", MIXED, "--fail-on", "high").returncode == 1
    assert watcher("replay", str(DATA / "clean.log"), "--fail-on", "low").returncode == 0


def test_missing_file_is_exit_3() -> None:
    """A file that cannot be read is a source error: exit 3 with a message."""
    r = watcher("replay", "/nonexistent/x.log")
    assert r.returncode == 3 and "/nonexistent/x.log" in r.stderr


def test_bad_config_is_exit_2_naming_file_line_key(tmp_path: Path) -> None:
    """A bad key stops the command with exit 2 and one line naming file, line and key."""
    cfg = tmp_path / "w.toml"
    cfg.write_text('[watcher]\ninterval = 5\n\n[[sources]]\ntype = "file"\npaht = "/x"\n')
    r = watcher("scan", "-c", str(cfg))
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1
    assert "w.toml:6" in err[0] and "sources[0].paht" in err[0]


def test_check_config_prints_effective(tmp_path: Path) -> None:
    """check-config validates and prints the effective config with defaults filled in."""
    r = watcher("check-config")
    assert r.returncode == 0, r.stderr
    assert "[watcher]" in r.stdout and 'type = "stdin"' in r.stdout


def test_check_config_says_where_verify_code_would_run(tmp_path: Path) -> None:
    """With a verify_command, check-config names the sandbox it would run in (or that it
    would not run); a secret-looking verify_env name is a config error naming the key."""
    path = tmp_path / "w.toml"
    path.write_text('[autofix]\nverify_command = "pytest -q"\nsandbox = "off"\n')
    r = watcher("check-config", "-c", str(path))
    assert r.returncode == 0 and "# verify sandbox: off (sandbox off by configuration" in r.stderr
    path.write_text('[autofix]\nverify_command = "pytest -q"\nverify_env = ["GITHUB_TOKEN"]\n')
    r = watcher("check-config", "-c", str(path))
    assert r.returncode == 2 and "verify_env" in r.stderr and "GITHUB_TOKEN" in r.stderr


def test_templates_one_line_per_input() -> None:
    """`watcher templates` prints one id<TAB>template line per input line."""
    lines = b"user 1 logged in\nuser 22 logged in\n\nbad \xff byte\r here\n"
    r = subprocess.run(
        [sys.executable, "-m", "watcher", "templates"], input=lines, capture_output=True, timeout=30
    )
    assert r.returncode == 0
    out = r.stdout.split(b"\n")[:-1]
    assert len(out) == 4
    assert out[0].split(b"\t")[0] == out[1].split(b"\t")[0]


def test_version_and_help() -> None:
    """version prints the version; --help of each command lists its options."""
    assert watcher("version").stdout.startswith("watcher ")
    for cmd, flag in [
        ("run", "--service"),
        ("scan", "--since"),
        ("replay", "--emit"),
        ("scan", "--auto-fix"),
        ("run", "--interval"),
    ]:
        assert flag in watcher(cmd, "--help").stdout


def test_scan_window_of_file_source(tmp_path: Path) -> None:
    """scan reads a file source from the beginning and keeps only events in --since."""
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{MIXED}"\n[http]\nenabled = false\n'
    )
    r = watcher("scan", "-c", str(cfg), "--since", "1h")
    assert r.returncode == 0, r.stderr
    # the sample's events are from 2026-11-21, older than an hour: only the Java trace, which
    # has no timestamp, is kept (DESIGN: an event with no timestamp is kept)
    assert "java.lang.NullPointerException" in r.stdout
    assert "httpx.ReadTimeout" not in r.stdout
    assert "| Out-of-window events | 6 |" in r.stdout


def test_own_logs_never_print_a_secret(tmp_path: Path) -> None:
    """A secret in a command source's failure output is redacted in watcher's own logs."""
    secret = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        "[[sources]]\ntype = \"command\"\nname = \"cmd\"\n"
        f"argv = [\"sh\", \"-c\", \"echo token={secret} >&2; exit 3\"]\nmerge_stderr = false\n"
        "[http]\nenabled = false\n"
    )
    r = watcher("scan", "-c", str(cfg), "--log-level", "debug")
    assert "command exited" in r.stderr and "<secret:github-pat:" in r.stderr
    assert secret not in r.stderr and secret not in r.stdout
