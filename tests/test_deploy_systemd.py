"""deploy/systemd: the units pass `systemd-analyze verify` and agree with the daemon they run."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import clean_env
from watcher.cli import build_parser
from watcher.config import load_config, parse_duration

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "deploy" / "systemd"
UNITS = ("watcher.service", "watcher-scan.service", "watcher-scan.timer")
INSTALLED_BINARY = "/opt/watcher/bin/watcher"  # where the README's install steps put it
# what %E and %S stand for in system units
SPECIFIERS = {"%E": "/etc", "%S": "/var/lib"}
HARDENING = (
    "NoNewPrivileges",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectControlGroups",
    "RestrictNamespaces",
    "RestrictSUIDSGID",
    "LockPersonality",
    "CapabilityBoundingSet",
    "SystemCallArchitectures",
)


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed; test.sh installs it")
        pytest.skip(f"{binary} not installed (./test.sh installs it)")
    return path


def directives(unit: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit file, in order; keys may repeat (Environment=, filters)."""
    found: dict[str, list[str]] = {}
    for line in (SYSTEMD / unit).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key, []).append(value)
    return found


def one(unit: str, key: str) -> str:
    values = directives(unit)[key]
    assert len(values) == 1, f"{unit}: {key} set {len(values)} times"
    return values[0]


def expand(value: str) -> str:
    for spec, path in SPECIFIERS.items():
        value = value.replace(spec, path)
    return value


def installed_copies(tmp_path: Path) -> list[Path]:
    """The units as installed, with ExecStart pointing at this venv's real `watcher`.

    verify checks that every Exec*= binary exists and is executable.
    """
    binary = str(Path(sys.executable).with_name("watcher"))
    assert os.access(binary, os.X_OK), binary
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit
        copy.write_text((SYSTEMD / unit).read_text().replace(INSTALLED_BINARY, binary))
        copies.append(copy)
    return copies


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the service, the scan service and the timer, silently."""
    analyze = need("systemd-analyze")
    copies = installed_copies(tmp_path)
    done = subprocess.run(
        [analyze, "verify", *map(str, copies)], capture_output=True, text=True, timeout=60
    )
    # an unknown or misplaced key is only a warning (exit 0): any output is a failure here
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize("unit", ["watcher.service", "watcher-scan.service"])
def test_units_hardening_rates_ok(tmp_path: Path, unit: str) -> None:
    """`systemd-analyze security --offline` rates the sandbox 2.0 or better ("OK")."""
    analyze = need("systemd-analyze")
    copy = dict(zip(UNITS, installed_copies(tmp_path), strict=True))[unit]
    done = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=20", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-400:]


def test_service_is_a_notify_service_with_watchdog_and_restart() -> None:
    """Type=notify with a watchdog, restarts on failure, but not on a config error (exit 2)."""
    assert one("watcher.service", "Type") == "notify"
    assert one("watcher.service", "NotifyAccess") == "main"
    assert parse_duration(one("watcher.service", "WatchdogSec")) >= 10
    assert one("watcher.service", "Restart") == "on-failure"
    assert one("watcher.service", "RestartPreventExitStatus") == "2"
    assert one("watcher.service", "ExecReload") == "/bin/kill -HUP $MAINPID"


def test_service_has_room_for_many_files_and_connections() -> None:
    """LimitNOFILE leaves room for max_open_files files and max_connections connections (the
    default soft limit of 1,024 starved the daemon of descriptors)."""
    assert int(one("watcher.service", "LimitNOFILE")) >= 65536


def test_stop_timeout_covers_the_daemons_drain() -> None:
    """TimeoutStopSec outlasts the engine's drain plus the alert drain, so SIGKILL never cuts it."""
    defaults = load_config(None)
    drain = float(defaults.watcher.shutdown_timeout) + float(defaults.alerts.drain_timeout)
    assert parse_duration(one("watcher.service", "TimeoutStopSec")) > drain
    assert one("watcher.service", "KillMode") == "mixed"


@pytest.mark.parametrize("unit", ["watcher.service", "watcher-scan.service"])
def test_units_sandbox_yet_allow_network_and_programs(unit: str) -> None:
    """Hardened, with a dedicated user, but TCP/UDP, git/railway and the state dir still work."""
    d = directives(unit)
    for key in HARDENING:
        assert key in d, f"{unit}: {key} missing"
    assert one(unit, "DynamicUser") == "yes" and one(unit, "User") == "watcher"
    assert one(unit, "ProtectSystem") == "strict"
    assert one(unit, "StateDirectory") == "watcher"
    assert one(unit, "ConfigurationDirectory") == "watcher"
    assert one(unit, "EnvironmentFile") == "-%E/watcher/watcher.env"
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(one(unit, "RestrictAddressFamilies").split())
    assert d["SystemCallFilter"][0] == "@system-service"
    # these would break outbound connections, or a JIT run by a verify_command
    for key in ("IPAddressDeny", "PrivateNetwork", "MemoryDenyWriteExecute", "NoExecPaths"):
        assert key not in d, f"{unit}: {key} would stop what watcher runs"
    # git and the railway CLI need a writable $HOME; only the state directory is writable
    env = dict(e.split("=", 1) for e in d["Environment"])
    assert env["HOME"] == "%S/watcher"


@pytest.mark.parametrize("unit", ["watcher.service", "watcher-scan.service"])
def test_exec_start_is_a_valid_watcher_command_line(unit: str) -> None:
    """ExecStart runs the installed binary with arguments `watcher`'s own parser accepts."""
    argv = shlex.split(expand(one(unit, "ExecStart")))
    assert argv[0] == INSTALLED_BINARY
    args = build_parser().parse_args(argv[1:])
    if unit == "watcher-scan.service":
        assert (args.command, args.auto_fix, args.no_progress) == ("scan", True, True)
        assert args.state == "/var/lib/watcher/scan.db"
    else:
        assert args.command == "run"


def test_scan_window_matches_the_timer_period() -> None:
    """The timer fires hourly and the scan reads `--since 1h`: every hour is read once."""
    assert one("watcher-scan.timer", "OnCalendar") == "hourly"
    assert one("watcher-scan.timer", "Unit") == "watcher-scan.service"
    argv = shlex.split(one("watcher-scan.service", "ExecStart"))
    assert parse_duration(argv[argv.index("--since") + 1]) == 3600
    assert one("watcher-scan.service", "Type") == "oneshot"


def test_unit_environment_configures_the_daemon(tmp_path: Path) -> None:
    """The Environment= lines name a real config file and override state_path as intended."""
    env_lines = directives("watcher.service")["Environment"]
    root = tmp_path / "root"
    unit_env = {}
    for line in env_lines:
        key, value = line.split("=", 1)
        unit_env[key] = str(root) + expand(value) if value.startswith("%") else value
    config = Path(unit_env["WATCHER_CONFIG"])
    config.parent.mkdir(parents=True)
    shutil.copy(ROOT / "config.example.toml", config)
    env = clean_env()
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "check-config"],
        env={**env, **unit_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f'state_path = "{root}/var/lib/watcher/state.db"' in done.stdout
    assert 'log_format = "json"' in done.stdout


def test_env_example_is_systemd_syntax_and_names_the_secrets() -> None:
    """watcher.env.example holds only comments and KEY=value lines, and names every secret."""
    text = (SYSTEMD / "watcher.env.example").read_text()
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", line), line
    defaults = load_config(None)
    for name in (defaults.http.token_env, defaults.autofix.token_env, "ANTHROPIC_API_KEY"):
        assert re.search(rf"^# {name}=", text, re.M), f"{name} not documented"
    assert re.search(r"^# RAILWAY_TOKEN=", text, re.M)


# --- the opt-in drop-in for the verify sandbox ----------------------------------------------

DROP_IN = SYSTEMD / "watcher-autofix-sandbox.conf"


def with_drop_in(tmp_path: Path) -> Path:
    """watcher.service installed with the drop-in where `systemctl edit` would put it."""
    service = dict(zip(UNITS, installed_copies(tmp_path), strict=True))["watcher.service"]
    conf = tmp_path / "watcher.service.d" / "autofix-sandbox.conf"
    conf.parent.mkdir()
    conf.write_text(DROP_IN.read_text())
    return service


def security(analyze: str, unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=30", str(unit)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_sandbox_drop_in_passes_verify_and_opens_only_the_sandboxs_namespaces(
    tmp_path: Path,
) -> None:
    """With deploy/systemd/watcher-autofix-sandbox.conf installed as a drop-in, `systemd-analyze
    verify` is silent, and `security` shows it loaded: user, pid, net and mnt namespaces and
    @mount allowed, uts/ipc/cgroup still refused, the rating still "OK". Without it, user
    namespaces are refused (so verify_command cannot be sandboxed under the unit)."""
    analyze = need("systemd-analyze")
    service = with_drop_in(tmp_path)
    done = subprocess.run([analyze, "verify", str(service)], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    report = security(analyze, service)
    assert report.returncode == 0, report.stdout[-400:]
    for kind in ("user", "pid", "net", "mnt"):
        assert re.search(rf"✗ RestrictNamespaces=~{kind}\b", report.stdout), kind
    for kind in ("uts", "ipc", "cgroup"):
        assert re.search(rf"✓ RestrictNamespaces=~{kind}\b", report.stdout), kind
    assert re.search(r"✗ SystemCallFilter=~@mount\b", report.stdout)
    assert re.search(r"✓ SystemCallFilter=~@module\b", report.stdout)
    (tmp_path / "watcher.service.d" / "autofix-sandbox.conf").unlink()
    plain = security(analyze, service).stdout
    assert re.search(r"✓ RestrictNamespaces=~user\b", plain)
    assert re.search(r"✓ SystemCallFilter=~@mount\b", plain)


def test_drop_in_allows_exactly_the_namespaces_the_sandbox_creates() -> None:
    """The drop-in's RestrictNamespaces= lists the namespaces watcher.fix.sandbox's unshare
    creates, no more (a new namespace in the sandbox fails here until the drop-in has it)."""
    from watcher.fix.sandbox import UNSHARE

    names = {"--user": "user", "--pid": "pid", "--net": "net", "--mount": "mnt"}
    wanted = {names[flag] for flag in UNSHARE if flag in names}
    allowed: set[str] = set()
    for line in DROP_IN.read_text().splitlines():
        if line.startswith("RestrictNamespaces="):
            allowed |= set(line.partition("=")[2].split())
    assert allowed == wanted == {"user", "pid", "net", "mnt"}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become an unprivileged uid")
def test_sandbox_setup_needs_no_capability_the_unit_removes(tmp_path: Path) -> None:
    """What the drop-in leaves alone is enough: as an unprivileged uid with an empty capability
    bounding set and no_new_privs (the unit's DynamicUser=, CapabilityBoundingSet=,
    NoNewPrivileges=), the sandbox's unshare + sandbox_init (bind mount, read-only remounts,
    rlimits, setpriv) still sets up and runs a command."""
    from watcher.fix import sandbox, sandbox_init

    if not sandbox.namespaces_available():
        pytest.skip("this kernel refuses user namespaces even to root")
    python = "/usr/bin/python3"  # the system's: a venv under /root is not reachable by 65534
    if not os.access(python, os.X_OK):
        pytest.skip("no system python3")
    box = Path(tempfile.mkdtemp(prefix="watcher-unit-"))  # reachable by uid 65534
    try:
        box.chmod(0o777)
        init = box / "sandbox_init.py"
        shutil.copy(sandbox_init.__file__, init)
        init.chmod(0o644)
        drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                "--bounding-set=-all", "--no-new-privs", "--"]  # fmt: skip
        argv = [*drop, *sandbox.UNSHARE, *sandbox.UNSHARE_TAIL, python, "-I", str(init),
                "--rw", str(box), "--", "sh", "-c", f"echo ok > {box}/out; id -u"]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-500:]
        assert (box / "out").read_text() == "ok\n" and done.stdout.strip() == "0"
    finally:
        shutil.rmtree(box, ignore_errors=True)
