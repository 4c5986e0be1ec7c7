"""`watcher check-config --probe`: each source kind connects to what it reads (the fakes stand
in for Loki, Railway, CloudWatch and GitHub), one line per check, exit 3 when one fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.fakes.anthropic_api import AnthropicFake
from tests.fakes.github_api import TOKEN, GitHubFake
from tests.fakes.loki import FakeLoki, fake_loki  # noqa: F401 (the fixture)
from tests.fakes.moto import REGION, moto_endpoint  # noqa: F401 (the fixture)
from tests.fakes.railway import FakeRailway, railway_fake  # noqa: F401 (the fixture)
from watcher.config import load_config
from watcher.probe import probe_all, render

from .helpers import DATA, clean_env


def checks_of(lines: list[str]) -> dict[str, str]:
    """name -> "ok|FAIL|skip detail", from rendered lines."""
    out = {}
    for line in lines:
        tag, rest = line.split(None, 1)
        name, _, detail = rest.partition(": ")
        # names hold one ": " themselves ("source app: files")
        more, _, detail = detail.partition(": ")
        out[f"{name}: {more}"] = f"{tag} {detail}"
    return out


async def test_every_source_kind_probes_what_it_reads(
    tmp_path: Path,
    fake_loki: FakeLoki,  # noqa: F811
    railway_fake: FakeRailway,  # noqa: F811
    github_fake: GitHubFake,
    moto_endpoint: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Files matched (or none), a program on PATH (or not), Loki ready and the query valid (or
    rejected), the Railway CLI logged in, CloudWatch groups readable (or missing), GitHub
    reachable with the token and the model key missing: each is one line saying so."""
    logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name=REGION)
    logs.create_log_group(logGroupName="/probe/app")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    loki = f"http://127.0.0.1:{fake_loki.port}"
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        f"""[[sources]]
type = "file"
name = "typo"
path = "{tmp_path}/nope/*.log"
[[sources]]
type = "file"
name = "good"
path = "{DATA}/*.log"
[[sources]]
type = "command"
name = "k8s"
argv = ["kubectl-not-installed", "logs", "-f"]
[[sources]]
type = "loki"
name = "loki"
url = "{loki}"
query = '{{app="api"}}'
[[sources]]
type = "loki"
name = "badquery"
url = "{loki}"
query = '{{app="api"}} |~ "("'
[[sources]]
type = "railway"
name = "rail"
service = "api"
[[sources]]
type = "cloudwatch"
name = "cw"
log_groups = ["/probe/app", "/probe/missing"]
endpoint_url = "{moto_endpoint}"
[autofix]
enabled = true
github_repo = "acme/app"
github_api_url = "{github_fake.url}"
"""
    )
    checks = checks_of([render(c) for c in await probe_all(load_config(cfg))])
    assert checks["source typo: files"].startswith("FAIL no file matches path")
    assert checks["source good: files"].startswith("ok 2 files")
    assert checks["source k8s: program"].startswith("FAIL 'kubectl-not-installed' not found")
    assert checks["source loki: loki ready"].startswith("ok")
    assert checks["source loki: query"].startswith("ok valid")
    assert checks["source badquery: query"].startswith("FAIL Loki rejected the query: HTTP 400")
    assert checks["source rail: railway CLI"].startswith("ok")
    assert checks["source rail: railway login"] == "ok Logged in as Fake User (fake@example.com) 👋"
    assert checks["source cw: /probe/app"].startswith("ok readable")
    assert "not found" in checks["source cw: /probe/missing"]
    assert checks["source cw: /probe/missing"].startswith("FAIL")
    assert checks["autofix: github"].startswith("ok")
    assert checks["autofix: model API"] == "FAIL ANTHROPIC_API_KEY is not set"


async def test_railway_not_logged_in_fails_its_probe(
    tmp_path: Path,
    railway_fake: FakeRailway,  # noqa: F811
) -> None:
    """A Railway CLI that is not logged in fails the login check with the CLI's own words."""
    railway_fake.set(auth="unauthorized")
    cfg = tmp_path / "w.toml"
    cfg.write_text('[[sources]]\ntype = "railway"\nname = "rail"\nservice = "api"\n')
    checks = checks_of([render(c) for c in await probe_all(load_config(cfg))])
    assert checks["source rail: railway login"].startswith("FAIL Unauthorized. Please login")


def test_cli_probe_prints_one_line_per_check_and_exits_3_on_a_failure(tmp_path: Path) -> None:
    """`check-config --probe` prints the effective config, then one line per check on stderr;
    exit 3 when any check failed, 0 when all passed."""
    cfg = tmp_path / "w.toml"
    good = f'[[sources]]\ntype = "file"\nname = "good"\npath = "{DATA}/mixed.log"\n'
    cfg.write_text(good + f'[[sources]]\ntype = "file"\nname = "typo"\npath = "{tmp_path}/x"\n')
    argv = [sys.executable, "-m", "watcher", "check-config", str(cfg), "--probe"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env())
    assert done.returncode == 3, done.stderr
    lines = [line for line in done.stderr.splitlines() if not line.startswith("#")]
    assert lines == [
        f"ok    source good: files: 1 file: {DATA}/mixed.log",
        f"FAIL  source typo: files: no file matches path '{tmp_path}/x'",
    ]
    cfg.write_text(good)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env())
    assert done.returncode == 0 and "# probe: 1 of 1 checks passed" in done.stderr


async def test_model_api_probe_checks_the_key_and_the_model(
    tmp_path: Path, anthropic_fake: AnthropicFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With auto-fix on, the model API check passes with the right key and a known model, and
    fails naming the cause for a refused key or an unknown model (a dry run skips GitHub)."""
    cfg = tmp_path / "w.toml"

    async def model_check(model: str) -> str:
        cfg.write_text(
            '[[sources]]\ntype = "stdin"\n'
            f'[autofix]\nenabled = true\ndry_run = true\nmodel = "{model}"\n'
        )
        lines = [render(c) for c in await probe_all(load_config(cfg))]
        assert lines[0] == "skip  source stdin: type stdin has no probe"
        checks = checks_of(lines[1:])
        assert checks["autofix: github"].startswith("skip dry_run")
        return checks["autofix: model API"]

    assert await model_check("claude-sonnet-5-5") == (
        "ok key accepted, model claude-sonnet-5-5 available"
    )
    assert await model_check("gpt-4") == "FAIL model 'gpt-4' not found"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong")
    assert await model_check("claude-sonnet-5-5") == "FAIL key refused (HTTP 401)"
