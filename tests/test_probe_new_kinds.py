"""`check-config --probe` for the journald, kubernetes and otlp sources and the Alertmanager and
PagerDuty destinations: each check talks to the real thing (a journal file, the fake Kubernetes
API through the real client, a real Alertmanager) and says what it found."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.kube_api import FakeKube, fake_kube  # noqa: F401  (the fixture)
from tests.helpers import free_port
from tests.sources.test_journald import REMOTE, Journal
from tests.sources.test_kubernetes import kubeconfig
from tests.test_alertmanager import alertmanager  # noqa: F401  (the fixture)
from watcher.config import load_config
from watcher.probe import probe_all, render


async def probe(cfg: Path, text: str) -> dict[str, str]:
    """check name -> its rendered line's tag and detail ("ok …", "FAIL …", "skip …")."""
    cfg.write_text(text)
    checks = await probe_all(load_config(cfg))
    return {c.name: render(c).split(None, 1)[0] + " " + c.detail for c in checks}


@pytest.mark.skipif(not REMOTE.exists(), reason="systemd-journal-remote is not installed")
async def test_journald_probe_reads_the_journal_or_names_why_not(tmp_path: Path) -> None:
    """A readable journal file: ok with its last entry's time; a journal file that is not
    there: FAIL with journalctl's own words."""
    journal = Journal(tmp_path / "system.journal")
    journal.add([b"worker started", b"worker stopped"])
    checks = await probe(
        tmp_path / "w.toml",
        f'[[sources]]\ntype = "journald"\nname = "j"\nfile = "{journal.path}"\n'
        f'[[sources]]\ntype = "journald"\nname = "gone"\nfile = "{tmp_path}/none.journal"\n',
    )
    assert checks["source j: journalctl"].startswith("ok /")
    assert checks["source j: journal"].startswith("ok readable, last entry 20")
    assert checks["source gone: journal"].startswith("FAIL")


async def test_kubernetes_probe_lists_the_selected_pods_or_names_the_rbac_problem(
    tmp_path: Path,
    fake_kube: tuple[FakeKube, str],  # noqa: F811
) -> None:
    """With the right token the selected pods are listable; with a token the API refuses, the
    check fails naming the pod permissions the role needs."""
    kube, url = fake_kube
    kube.add_pod("default", "web-1", {"app": "web"}, ["app"])
    good = kubeconfig(tmp_path, url)
    (tmp_path / "bad").mkdir()
    bad = kubeconfig(tmp_path / "bad", url, token="not-the-token")
    checks = await probe(
        tmp_path / "w.toml",
        f'[[sources]]\ntype = "kubernetes"\nname = "k"\nauth = "kubeconfig"\n'
        f'kubeconfig = "{good}"\nlabel_selector = "app=web"\n'
        f'[[sources]]\ntype = "kubernetes"\nname = "denied"\nauth = "kubeconfig"\n'
        f'kubeconfig = "{bad}"\n',
    )
    assert checks["source k: credentials"] == "ok loaded"
    assert (
        checks["source k: pods"] == "ok listable in namespace 'default' with 'app=web'; pods match"
    )
    assert checks["source denied: pods"].startswith("FAIL HTTP 401")
    assert "get/list/watch on pods" in checks["source denied: pods"]


async def test_otlp_probe_needs_the_http_server_and_its_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An otlp source is reachable only through [http] with the API token set: without the
    token every export would be refused, so the check fails naming the variable."""
    text = f'[http]\nlisten = "127.0.0.1:{free_port()}"\n[[sources]]\ntype = "otlp"\nname = "o"\n'
    monkeypatch.delenv("WATCHER_API_TOKEN", raising=False)
    checks = await probe(tmp_path / "w.toml", text)
    assert (
        checks["[http] otlp receiver"]
        == "FAIL WATCHER_API_TOKEN is not set: every export is refused"
    )
    monkeypatch.setenv("WATCHER_API_TOKEN", "t0ken-123")
    checks = await probe(tmp_path / "w.toml", text)
    assert checks["[http] otlp receiver"].startswith("ok listening on 127.0.0.1:")
    assert checks["source o"] == "skip receives at /v1/logs: nothing to connect to"


async def test_alert_destination_probes_ask_without_alerting(
    tmp_path: Path,
    alertmanager: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A running Alertmanager is ready; one that is not running fails; PagerDuty is checked
    for its routing key only (a test event would page someone)."""
    monkeypatch.delenv("PD_KEY", raising=False)
    checks = await probe(
        tmp_path / "w.toml",
        "[alerts]\n"
        f'[[alerts.destinations]]\ntype = "alertmanager"\nname = "am"\nurl = "{alertmanager}"\n'
        '[[alerts.destinations]]\ntype = "alertmanager"\nname = "down"\n'
        f'url = "http://127.0.0.1:{free_port()}"\n'
        '[[alerts.destinations]]\ntype = "pagerduty"\nname = "pd"\nrouting_key_env = "PD_KEY"\n',
    )
    assert checks["alerts am"] == f"ok {alertmanager} ready"
    assert checks["alerts down"].startswith("FAIL cannot reach http://127.0.0.1:")
    assert checks["alerts pd"] == "FAIL PD_KEY is not set"
    monkeypatch.setenv("PD_KEY", "R0UTINGKEY")
    checks = await probe(tmp_path / "w.toml", (tmp_path / "w.toml").read_text())
    assert checks["alerts pd"].startswith("skip routing key set")
