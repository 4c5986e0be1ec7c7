"""deploy/docker/compose.ha.yaml and deploy/kubernetes/: a fleet of watchers on one PostgreSQL.

Nothing is started (no Docker engine or cluster here). The Compose file validates against the
vendored Compose schema, the Kubernetes manifests against the Kubernetes API's own JSON schemas
(kubernetes-validate, strict: a misspelt field fails); then what a schema cannot see: the probes
name routes the app serves on the port the config listens on, every WATCHER_* variable is a
key the config reads, the password comes from the variable `state_password_env` names, and the
config each mounts passes `watcher check-config`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from watcher.cli import main
from watcher.config import Config, load_config, parse_duration, unknown_env_vars
from watcher.http.app import AppState, make_app
from watcher.http.view import InMemoryView
from watcher.metrics import Metrics

from .test_deploy_docker import SCHEMA, image_env

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "deploy" / "docker"
KUBE = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30"  # the oldest Kubernetes release still in general support this year


def routes() -> set[str]:
    """Every GET path the daemon's app serves (with a view, as `watcher run` has)."""
    app = make_app(AppState(Metrics()), view=InMemoryView())
    return {r.resource.canonical for r in app.router.routes() if r.method == "GET"}  # type: ignore[union-attr]


def check_config(path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Config:
    """`watcher check-config path` with exactly `env` for WATCHER_*: exit 0, and the config."""
    for name in [n for n in os.environ if n.startswith(("WATCHER_", "LOG_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config", str(path)]) == 0
    return load_config(str(path))


# --- compose.ha.yaml ---------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.ha.yaml").read_text())


def watchers() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if n.startswith("watcher")}


def test_compose_ha_matches_the_compose_spec_schema() -> None:
    """compose.ha.yaml (anchors and merge keys resolved) validates against the Compose schema."""
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(compose()), key=lambda e: e.json_path)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_compose_ha_runs_three_named_watchers_each_on_its_own_replica_logs() -> None:
    """Three watchers, each with its own instance name, its own app replica's log volume
    (read only), the HA config where the image looks for it and its own host port."""
    found = watchers()
    assert len(found) == 3
    names = [s["environment"]["WATCHER_INSTANCE"] for s in found.values()]
    assert sorted(names) == sorted(found)  # named after the service: unique, stable
    logs = []
    for name, service in found.items():
        volumes = service["volumes"]
        assert "./watcher.ha.toml:/etc/watcher/watcher.toml:ro" in volumes
        (log,) = [v for v in volumes if v.endswith(":/var/log/app:ro")]
        app = compose()["services"]["app-" + name.rsplit("-", 1)[1]]
        assert log.replace(":ro", "") in app["volumes"], f"{name} reads another replica's logs"
        logs.append(log)
    assert len(set(logs)) == 3
    ports = [p.split(":")[1] for s in found.values() for p in s["ports"]]
    assert len(set(ports)) == 3


def test_compose_ha_waits_for_a_healthy_postgres_and_checks_watcher_liveness() -> None:
    """PostgreSQL has a pg_isready healthcheck and every watcher waits for it to pass; each
    watcher's healthcheck is the image's (GET /health/live, a route the app serves), and its
    stop grace period is above the drain timeout."""
    doc = compose()
    assert doc["services"]["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    entrypoint = (DOCKER / "entrypoint.sh").read_text()
    assert "/health/live" in entrypoint and "/health/live" in routes()
    defaults = load_config(None, env={})
    drain = float(defaults.watcher.shutdown_timeout) + float(defaults.alerts.drain_timeout)
    for name, service in watchers().items():
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert service["healthcheck"]["test"] == ["CMD", "docker-entrypoint.sh", "healthcheck"]
        assert parse_duration(service["stop_grace_period"]) > drain


def test_compose_ha_password_is_required_from_the_environment_and_never_written() -> None:
    """The one password is `${WATCHER_DB_PASSWORD:?…}` (compose refuses to start without it)
    for PostgreSQL and for the variable the config's state_password_env names; the state URL
    carries none."""
    doc = compose()
    required = "${WATCHER_DB_PASSWORD:?"
    assert doc["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(required)
    config = load_config(str(DOCKER / "watcher.ha.toml"), env={})
    assert config.watcher.state.startswith("postgresql://watcher@postgres:5432/")
    for service in watchers().values():
        assert service["environment"][config.watcher.state_password_env].startswith(required)


def test_compose_ha_config_passes_check_config_with_each_watchers_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """watcher.ha.toml with each watcher's variables (the image's and the service's): `watcher
    check-config` passes, every WATCHER_* variable is a key it reads, and the instance name is
    the service's."""
    image = {k: v for k, v in image_env().items() if k.startswith(("WATCHER_", "LOG_"))}
    for name, service in watchers().items():
        env = {**image, **{k: "secret" if "PASSWORD" in k else v
                           for k, v in service["environment"].items()}}  # fmt: skip
        config = check_config(DOCKER / "watcher.ha.toml", env, monkeypatch)
        assert config.watcher.instance == name
        assert unknown_env_vars(config, env) == []


# --- deploy/kubernetes -------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    """The documents kustomization.yaml lists (each file may hold several)."""
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((KUBE / resource).read_text()) if d]
    return docs


def one(kind: str, docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    (found,) = [d for d in (docs or manifests()) if d["kind"] == kind]
    return found


def container() -> dict[str, Any]:
    (found,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return found


def test_kubernetes_manifests_validate_against_the_kubernetes_schemas() -> None:
    """Every manifest (and the example Secret) passes the Kubernetes API's JSON schema in
    strict mode; a misspelt field does not (so a pass means something)."""
    kv = pytest.importorskip("kubernetes_validate")
    secret = yaml.safe_load((KUBE / "secret.example.yaml").read_text())
    for doc in [*manifests(), secret]:
        kv.validate(doc, K8S_VERSION, strict=True)
    broken = manifests()
    deployment = one("Deployment", broken)
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProb"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, K8S_VERSION, strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_builds_the_fleet() -> None:
    """`kubectl kustomize deploy/kubernetes` builds (offline) into the namespace, labelled."""
    built = subprocess.run(["kubectl", "kustomize", str(KUBE)], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert built.returncode == 0, built.stderr
    docs = list(yaml.safe_load_all(built.stdout))
    assert {d["kind"] for d in docs} >= {"ConfigMap", "Deployment", "Service"}
    assert all(d["metadata"]["namespace"] == "watcher" for d in docs)


def test_kubernetes_probes_hit_the_apps_health_routes_on_the_port_it_listens_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Liveness and startup on /health/live, readiness on /health/ready (routes the app
    serves), on the named port whose number is the config's [http] listen port; the Service
    and the scrape annotation point at it too; resources are requested and limited."""
    spec = container()
    port = {p["name"]: p["containerPort"] for p in spec["ports"]}["http"]
    probes = {k: spec[k]["httpGet"] for k in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/health/live"
    assert probes["readinessProbe"]["path"] == "/health/ready"
    assert {p["path"] for p in probes.values()} <= routes()
    assert all(p["port"] == "http" for p in probes.values())
    config = mounted_config(monkeypatch)
    assert config.http.listen == f"0.0.0.0:{port}"
    (service_port,) = one("Service")["spec"]["ports"]
    assert service_port["targetPort"] == "http"
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] in routes()
    assert spec["resources"]["requests"] and spec["resources"]["limits"]["memory"]


def mounted_config(monkeypatch: pytest.MonkeyPatch, tmp: Path | None = None) -> Config:
    """The ConfigMap's watcher.toml, with the Deployment's variables, through check-config."""
    import tempfile

    folder = Path(tmp or tempfile.mkdtemp())
    path = folder / "watcher.toml"
    path.write_text(one("ConfigMap")["data"]["watcher.toml"])
    env = {e["name"]: e.get("value", "pod-or-secret-value") for e in container()["env"]}
    return check_config(path, env, monkeypatch)


def test_kubernetes_config_is_a_fleet_config_its_variables_feed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The mounted config passes check-config with the Deployment's variables, all of which it
    reads; it is mounted where WATCHER_CONFIG points; the instance is the pod name; the
    password comes from the Secret through the variable state_password_env names; with
    several replicas every source is shared (none is read, and counted, once per replica)."""
    config = mounted_config(monkeypatch, tmp_path)
    spec = container()
    env = {e["name"]: e for e in spec["env"]}
    assert unknown_env_vars(config, {n: "x" for n in env}) == []
    mount = {m["name"]: m["mountPath"] for m in spec["volumeMounts"]}["config"]
    assert env["WATCHER_CONFIG"]["value"] == f"{mount}/watcher.toml"
    assert env["WATCHER_INSTANCE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    password = env[config.watcher.state_password_env]["valueFrom"]["secretKeyRef"]
    secret = yaml.safe_load((KUBE / "secret.example.yaml").read_text())
    assert (
        password["name"] == secret["metadata"]["name"] and password["key"] in secret["stringData"]
    )
    assert config.watcher.shared  # a password in the URL would have failed check-config
    assert one("Deployment")["spec"]["replicas"] >= 2
    assert config.sources and all(getattr(s, "shared", False) for s in config.sources)
