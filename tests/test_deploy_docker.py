"""deploy/docker: the Dockerfile lints, compose.yaml is valid Compose, the entrypoint works.

No Docker engine runs here, so nothing is built or started: hadolint lints the Dockerfile,
a checklist reads its instructions, the vendored Compose JSON schema validates compose.yaml,
and the entrypoint script runs outside a container against a fake and a real `watcher`.

tests/data/compose-spec.json is compose-spec/compose-spec's schema/compose-spec.json
(commit 00655e2222608fa6eaecdf12ac5195889ca2244a), Apache License 2.0, unchanged but for a
"$comment" naming that source.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from watcher.config import load_config, parse_duration

from .helpers import clean_env, free_port, need, wait_for

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "deploy" / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
VENV_BIN = Path(sys.executable).parent


# --- the Dockerfile ----------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        joined.append(current.strip())
        current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined]


def stages() -> list[list[tuple[str, str]]]:
    """The build stages, each its instructions from its FROM on (global ARGs dropped)."""
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def image_env() -> dict[str, str]:
    """The final image's ENV, as a container sees it (PATH without its $PATH expansion)."""
    env: dict[str, str] = {}
    for name, args in stages()[-1]:
        if name == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(args))
    return env


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not exec form: {args}"
    return value


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    """hadolint (with ShellCheck on every RUN) finds nothing, not even style notes."""
    hadolint = need("hadolint")
    done = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(DOCKER / "Dockerfile")],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no stray .hadolint.yaml loosens the rules
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_is_multi_stage_on_a_slim_python_base() -> None:
    """Build, Railway CLI and runtime stages; the runtime is the slim image of our Python."""
    froms = [args for stage in stages() for name, args in stage if name == "FROM"]
    assert len(froms) == 3
    assert froms[0].endswith(" AS build") and froms[1].endswith(" AS railway")
    assert froms[-1] == "python:${PYTHON_VERSION}-slim-bookworm"
    default = next(a for n, a in instructions() if n == "ARG" and a.startswith("PYTHON_VERSION="))
    requires = re.search(r'requires-python = ">=([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert requires and default == f"PYTHON_VERSION={requires.group(1)}"
    runtime = stages()[-1]
    copies = [args for name, args in runtime if name == "COPY"]
    assert "--from=build /opt/watcher /opt/watcher" in copies
    assert image_env()["PATH"].startswith("/opt/watcher/bin:")


def test_runtime_runs_as_a_non_root_user_with_git_and_tini() -> None:
    """USER is a fixed non-zero uid:gid; git and tini are installed; tini is PID 1."""
    runtime = stages()[-1]
    user = [args for name, args in runtime if name == "USER"]
    assert user == ["10001:10001"]
    installs = " ".join(args for name, args in runtime if name == "RUN")
    assert re.search(r"apt-get install .*\bgit\b", installs)
    assert re.search(r"apt-get install .*\btini\b", installs)
    assert "useradd --system --uid 10001" in installs
    entry = exec_form(next(args for name, args in runtime if name == "ENTRYPOINT"))
    assert entry == ["tini", "--", "docker-entrypoint.sh"]
    assert exec_form(next(args for name, args in runtime if name == "CMD")) == ["run"]


def test_railway_cli_comes_from_npm_behind_a_build_arg() -> None:
    """The Railway CLI is `npm install`ed at a pinned version unless INSTALL_RAILWAY_CLI=false."""
    railway = stages()[1]
    args = dict(a.split("=", 1) for n, a in railway if n == "ARG")
    assert args["INSTALL_RAILWAY_CLI"] == "true"
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["RAILWAY_CLI_VERSION"])
    run = next(a for n, a in railway if n == "RUN")
    assert '"$INSTALL_RAILWAY_CLI" = "true"' in run
    assert '"@railway/cli@${RAILWAY_CLI_VERSION}"' in run
    assert "--from=railway /out/ /usr/local/bin/" in [a for n, a in stages()[-1] if n == "COPY"]


def test_healthcheck_volume_and_port_match_the_daemon() -> None:
    """HEALTHCHECK asks /health/live; state lives in the volume; the port is the one served."""
    runtime = stages()[-1]
    health = next(args for name, args in runtime if name == "HEALTHCHECK")
    assert health.endswith('CMD ["docker-entrypoint.sh", "healthcheck"]')
    assert "/health/live" in ENTRYPOINT.read_text()
    env = image_env()
    volumes = [exec_form(args) for name, args in runtime if name == "VOLUME"]
    assert volumes == [["/var/lib/watcher"]]
    assert os.path.dirname(env["WATCHER_STATE_PATH"]) == "/var/lib/watcher"
    assert [args for name, args in runtime if name == "EXPOSE"] == [env["WATCHER_HTTP_LISTEN"][-4:]]
    assert env["WATCHER_HTTP_LISTEN"] == "0.0.0.0:9464"


# --- .dockerignore -----------------------------------------------------------------------------


def ignore_patterns() -> list[tuple[bool, re.Pattern[str], str]]:
    """(exclude?, regex, glob) per .dockerignore line: `*` keeps to a path segment, `**` not."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*", "\0").replace(r"\*", "[^/]*")
        regex = regex.replace("\0", ".*").replace(r"\?", "[^/]").replace(r"\[", "[")
        patterns.append((not negate, re.compile(regex.replace(r"\]", "]")), glob))
    return patterns


def in_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for exclude, pattern, _ in ignore_patterns():
        if any(pattern.fullmatch(c) for c in candidates):
            included = not exclude
    return included


@functools.cache
def context_files() -> list[str]:
    """The files `docker build` would send: the repository filtered by .dockerignore."""
    reincluded = [glob for exclude, _, glob in ignore_patterns() if not exclude]
    found = []
    for top, dirs, files in os.walk(ROOT):
        rel = os.path.relpath(top, ROOT)
        prefix = "" if rel == "." else rel + "/"
        # an excluded directory is skipped unless an exception pattern reaches inside it
        dirs[:] = [
            d
            for d in dirs
            if in_context(prefix + d) or any(g.startswith(prefix + d + "/") for g in reincluded)
        ]
        found.extend(prefix + f for f in files if in_context(prefix + f))
    return found


def test_dockerignore_sends_only_what_the_dockerfile_copies() -> None:
    """Every COPY source from the context is in it; .git, .venv, tests and state are not."""
    for stage in stages():
        for name, args in stage:
            if name == "COPY" and "--from=" not in args:
                sources = [a for a in args.split() if not a.startswith("--")][:-1]
                for source in sources:
                    assert (ROOT / source).exists(), source
                    assert in_context(source), f"{source} is excluded by .dockerignore"
    files = context_files()
    assert "watcher/cli.py" in files and "watcher/http/static/index.html" in files
    for path in files:
        assert path.startswith(("watcher/", "pyproject.toml", "README.md", "deploy/docker/"))
        assert "__pycache__" not in path and not path.endswith((".pyc", ".db"))
    for excluded in (".venv/bin/python", "tests/conftest.py", ".git/HEAD", "config.example.toml"):
        assert not in_context(excluded), excluded


def test_build_stage_files_are_enough_to_build_watcher(tmp_path: Path) -> None:
    """The context's files alone build watcher's sdist, with the dashboard's static files."""
    context = tmp_path / "context"
    for path in context_files():
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, context / path)
    out = tmp_path / "dist"
    out.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))",
            str(out),
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    name = done.stdout.strip().splitlines()[-1]
    with tarfile.open(out / name) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    assert {"README.md", "pyproject.toml", "watcher/http/static/index.html"} <= members


# --- compose.yaml ------------------------------------------------------------------------------


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def binds(service: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    """(source, target) of a service's bind mounts (sources starting with . or /)."""
    found = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            found.append((source, target))
    return found


def test_compose_file_matches_the_compose_spec_schema() -> None:
    """compose.yaml validates against the Compose Specification's JSON schema."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(compose()), key=lambda e: e.json_path
    )
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_compose_schema_rejects_a_broken_file() -> None:
    """The schema is strict enough to catch a misspelt key (so a pass means something)."""
    broken = compose()
    broken["services"]["watcher"]["volume"] = broken["services"]["watcher"].pop("volumes")
    assert not jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).is_valid(broken)


def test_compose_references_existing_files_and_declared_volumes() -> None:
    """Every bind-mounted file exists, the build points at the Dockerfile, volumes are declared."""
    doc = compose()
    for name, service in doc["services"].items():
        for source, _ in binds(service):
            assert (DOCKER / source).exists(), f"{name}: {source} does not exist"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in doc["volumes"], f"{name}: volume {source} not declared"
    build = doc["services"]["watcher"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    assert set(build["args"]) <= {a.split("=")[0] for n, a in instructions() if n == "ARG"}, (
        "a build arg the Dockerfile does not declare"
    )


def test_watcher_sidecar_shares_the_app_logs_and_keeps_state_in_the_volume() -> None:
    """The sidecar reads the app's log volume read-only, state in the image's volume, config
    where the entrypoint looks for it, and gets a stop grace period above the drain timeout."""
    doc = compose()
    app, watcher = doc["services"]["app"], doc["services"]["watcher"]
    app_logs = next(v for v in app["volumes"] if v.startswith("app-logs:"))
    assert f"{app_logs}:ro" in watcher["volumes"]
    assert "watcher-state:/var/lib/watcher" in watcher["volumes"]
    assert ("./watcher.toml", "/etc/watcher/watcher.toml") in binds(watcher)
    assert watcher["read_only"] is True and "/tmp" in watcher["tmpfs"]
    defaults = load_config(None)
    drain = float(defaults.watcher.shutdown_timeout) + float(defaults.alerts.drain_timeout)
    assert parse_duration(watcher["stop_grace_period"]) > drain
    config = load_config(str(DOCKER / "watcher.toml"), env={})
    (source,) = config.sources
    log_dir = app_logs.split(":")[1]
    assert os.path.dirname(source.path) == log_dir  # type: ignore[attr-defined]


def test_compose_loki_alternative_in_watcher_toml_is_valid() -> None:
    """Uncommenting the Loki source block of the example config gives a valid config."""
    text = (DOCKER / "watcher.toml").read_text()
    block = text[text.index("# [[sources]]") :]
    loki = "\n".join(line[2:] for line in block.splitlines() if line.startswith("# "))
    head = text[: text.index("[[sources]]")]
    config = load_config_text(head + loki)
    assert [s.type for s in config.sources] == ["loki"]  # type: ignore[attr-defined]
    assert config.sources[0].url == "http://loki:3100"  # type: ignore[attr-defined]


def load_config_text(text: str):  # type: ignore[no-untyped-def]
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as fh:
        fh.write(text)
    try:
        return load_config(fh.name, env={})
    finally:
        os.unlink(fh.name)


def test_prometheus_scrapes_the_sidecar_and_loads_the_rules(tmp_path: Path) -> None:
    """prometheus.yml passes `promtool check config`, scrapes watcher:9464, mounts the rules."""
    promtool = need("promtool")
    doc = compose()
    prom = doc["services"]["prometheus"]
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "watcher"  # WatcherDown selects up{job="watcher"}
    port = image_env()["WATCHER_HTTP_LISTEN"].rsplit(":", 1)[1]
    assert job["static_configs"][0]["targets"] == [f"watcher:{port}"]
    mounted = dict((t, s) for s, t in binds(prom))
    (rule_file,) = config["rule_files"]
    assert (DOCKER / mounted[rule_file]).resolve() == ROOT / "deploy/prometheus/watcher.rules.yml"
    # promtool resolves rule_files on this machine: point it at the repository's file
    local = tmp_path / "prometheus.yml"
    local.write_text(
        (DOCKER / "prometheus.yml").read_text().replace(rule_file, str(DOCKER / mounted[rule_file]))
    )
    done = subprocess.run(
        [promtool, "check", "config", str(local)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_mounts_match_the_provisioning() -> None:
    """Grafana gets the provisioning directory and the dashboard where the provider looks."""
    grafana = compose()["services"]["grafana"]
    mounted = {t: s for s, t in binds(grafana)}
    assert (DOCKER / mounted["/etc/grafana/provisioning"]).resolve() == (
        ROOT / "deploy/grafana/provisioning"
    )
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/watcher.yaml").read_text()
    )["providers"][0]
    target = provider["options"]["path"] + "/watcher.json"
    assert (DOCKER / mounted[target]).resolve() == ROOT / "deploy/grafana/watcher.json"
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == target
    sources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/watcher.yaml").read_text()
    )["datasources"]
    urls = {s["type"]: s["url"] for s in sources}
    assert urls == {"prometheus": "http://prometheus:9090", "loki": "http://loki:3100"}


def test_alloy_ships_the_files_watcher_reads_to_loki() -> None:
    """Alloy tails the same glob as watcher's file source and pushes to the loki service."""
    alloy = (DOCKER / "config.alloy").read_text()
    config = load_config(str(DOCKER / "watcher.toml"), env={})
    assert f'"__path__" = "{config.sources[0].path}"' in alloy  # type: ignore[attr-defined]
    loki_port = yaml.safe_load((DOCKER / "loki.yaml").read_text())["server"]["http_listen_port"]
    assert f'url = "http://loki:{loki_port}/loki/api/v1/push"' in alloy
    assert "--server.http.listen-addr=0.0.0.0:12345" in compose()["services"]["alloy"]["command"]


def test_example_app_logs_errors_watcher_groups(tmp_path: Path) -> None:
    """The example app's log has tracebacks watcher turns into several error categories."""
    log = tmp_path / "app.log"
    env = {**os.environ, "APP_LOG": str(log), "APP_INTERVAL": "0", "APP_LINES": "120"}
    env["APP_SEED"] = "3"
    subprocess.run(
        [sys.executable, str(DOCKER / "example-app" / "app.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=60,
    )
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "replay", str(log), "--emit", "events"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    events = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = {(e["category"], e["exception_type"]) for e in events}
    assert {("timeout_error", "TimeoutError"), ("cache_error", "ConnectionRefusedError")} <= kinds
    assert all(e["top_frame"]["file"].endswith("app.py") for e in events)


# --- the entrypoint, outside a container -------------------------------------------------------

FAKE_WATCHER = """#!{python}
import json, os, sys
config = os.environ.get("WATCHER_CONFIG")
print(json.dumps({{
    "argv": sys.argv[1:],
    "config": config,
    "config_text": open(config).read() if config and os.path.exists(config) else None,
    "inline": os.environ.get("WATCHER_CONFIG_TOML"),
}}))
"""


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """A PATH directory whose `watcher` reports its argv and config, and `python` its argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    watcher = bin_dir / "watcher"
    watcher.write_text(FAKE_WATCHER.format(python=sys.executable))
    python = bin_dir / "python"
    python.write_text(f"#!{sys.executable}\nimport sys; print(sys.argv[-1])\n")
    for script in (watcher, python):
        script.chmod(0o755)
    return bin_dir


def entrypoint(
    args: list[str], tmp_path: Path, bin_dir: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    base = clean_env()
    base.update(
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        TMPDIR=str(tmp_path),
        WATCHER_CONFIG_DIR=str(tmp_path / "etc"),
        WATCHER_STATE_PATH=str(tmp_path / "state" / "state.db"),
    )
    base.update(env)
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], env=base, capture_output=True, text=True, timeout=60
    )


def reported(done: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_entrypoint_passes_shellcheck() -> None:
    """ShellCheck, as POSIX sh (the image's dash), reports nothing down to style notes."""
    shellcheck = need("shellcheck")
    done = subprocess.run(
        [shellcheck, "--shell=sh", "--severity=style", "--norc", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout
    assert os.access(ENTRYPOINT, os.X_OK)


@pytest.mark.parametrize(
    ("args", "argv"),
    [
        ([], ["run"]),
        (["--log-level", "debug"], ["run", "--log-level", "debug"]),
        (
            ["scan", "--since", "1h", "--fail-on", "high"],
            ["scan", "--since", "1h", "--fail-on", "high"],
        ),
        (["check-config"], ["check-config"]),
    ],
)
def test_entrypoint_runs_watcher_commands(
    tmp_path: Path, fake_bin: Path, args: list[str], argv: list[str]
) -> None:
    """No arguments is `watcher run`; options alone go to `run`; subcommands pass through."""
    assert reported(entrypoint(args, tmp_path, fake_bin))["argv"] == argv


def test_entrypoint_executes_other_commands_as_is(tmp_path: Path, fake_bin: Path) -> None:
    """Anything that is not a watcher command runs unchanged (a shell for debugging)."""
    done = entrypoint(["sh", "-c", "echo $((6 * 7))"], tmp_path, fake_bin)
    assert (done.returncode, done.stdout) == (0, "42\n")


def test_entrypoint_finds_a_mounted_config(tmp_path: Path, fake_bin: Path) -> None:
    """A file at $WATCHER_CONFIG_DIR/watcher.toml (/etc/watcher in the image) is used."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "watcher.toml").write_text("[watcher]\ninterval = 5\n")
    out = reported(entrypoint([], tmp_path, fake_bin))
    assert out["config"] == str(tmp_path / "etc" / "watcher.toml")
    explicit = reported(entrypoint([], tmp_path, fake_bin, WATCHER_CONFIG="/elsewhere.toml"))
    assert explicit["config"] == "/elsewhere.toml"


def test_entrypoint_writes_an_inline_config_and_hides_it(tmp_path: Path, fake_bin: Path) -> None:
    """$WATCHER_CONFIG_TOML becomes a file watcher reads; the variable itself is not passed on."""
    toml = '[http]\nlisten = "0.0.0.0:9000"\n'
    out = reported(entrypoint(["run"], tmp_path, fake_bin, WATCHER_CONFIG_TOML=toml))
    assert out["config_text"] == toml
    assert out["config"].startswith(str(tmp_path)) and out["inline"] is None


def test_entrypoint_refuses_two_configs(tmp_path: Path, fake_bin: Path) -> None:
    """WATCHER_CONFIG and WATCHER_CONFIG_TOML together are a usage error (exit 2)."""
    done = entrypoint([], tmp_path, fake_bin, WATCHER_CONFIG="/x.toml", WATCHER_CONFIG_TOML="")
    assert done.returncode == 0  # an empty inline config is no config
    done = entrypoint([], tmp_path, fake_bin, WATCHER_CONFIG="/x.toml", WATCHER_CONFIG_TOML="a=1")
    assert done.returncode == 2 and "not both" in done.stderr


def test_entrypoint_explains_an_unwritable_state_directory(tmp_path: Path, fake_bin: Path) -> None:
    """`run` with a state directory it cannot create or write exits 2 naming it and the uid."""
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state" / "state.db"  # a directory under a regular file
    done = entrypoint([], tmp_path, fake_bin, WATCHER_STATE_PATH=str(state))
    assert done.returncode == 2
    assert f"state directory {state.parent} is not writable by uid {os.getuid()}" in done.stderr


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("0.0.0.0:9464", "http://127.0.0.1:9464/health/live"),
        ("127.0.0.1:9000", "http://127.0.0.1:9000/health/live"),
        ("[::]:9464", "http://[::1]:9464/health/live"),
        ("10.0.0.5:9464", "http://10.0.0.5:9464/health/live"),
    ],
)
def test_healthcheck_asks_the_address_watcher_listens_on(
    tmp_path: Path, fake_bin: Path, listen: str, url: str
) -> None:
    """The health URL follows WATCHER_HTTP_LISTEN; a wildcard address means loopback."""
    done = entrypoint(["healthcheck"], tmp_path, fake_bin, WATCHER_HTTP_LISTEN=listen)
    assert done.stdout.strip() == url  # the fake python prints the URL it was given


def test_image_environment_and_compose_config_pass_check_config(tmp_path: Path) -> None:
    """The image's ENV plus the compose example's watcher.toml make a valid effective config."""
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy(DOCKER / "watcher.toml", etc / "watcher.toml")
    env = {k: v for k, v in image_env().items() if k != "PATH"}
    done = entrypoint(["check-config"], tmp_path, VENV_BIN, **env, WATCHER_CONFIG_DIR=str(etc))
    assert done.returncode == 0, done.stderr
    assert 'state_path = "/var/lib/watcher/state.db"' in done.stdout
    assert 'listen = "0.0.0.0:9464"' in done.stdout
    assert 'path = "/var/log/app/*.log"' in done.stdout


def test_entrypoint_runs_the_real_daemon_healthy_and_drains_on_sigterm(tmp_path: Path) -> None:
    """Through the entrypoint the daemon answers the healthcheck, and SIGTERM ends it with 0."""
    port = free_port()
    log = tmp_path / "app.log"
    log.write_text("")
    toml = (DOCKER / "watcher.toml").read_text().replace("/var/log/app/*.log", str(log))
    env = {k: v for k, v in image_env().items() if k != "PATH"}
    env.update(
        WATCHER_CONFIG_TOML=toml,
        WATCHER_HTTP_LISTEN=f"127.0.0.1:{port}",
        WATCHER_STATE_PATH=str(tmp_path / "state" / "state.db"),
        WATCHER_CONFIG_DIR=str(tmp_path / "etc"),
        TMPDIR=str(tmp_path),
        PATH=f"{VENV_BIN}:{os.environ['PATH']}",
    )
    base = clean_env()
    daemon = subprocess.Popen(
        ["sh", str(ENTRYPOINT)],
        env={**base, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def healthcheck() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(ENTRYPOINT), "healthcheck"],
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=30,
        )

    try:
        wait_for(lambda: healthcheck().returncode == 0, timeout=30, step=0.2)
    finally:
        daemon.send_signal(signal.SIGTERM)  # exec'd: the shell's pid is watcher's now
        code = daemon.wait(30)
    assert code == 0
    assert (tmp_path / "state" / "state.db").exists()
    after = healthcheck()
    assert after.returncode == 1 and "unhealthy" in after.stderr
