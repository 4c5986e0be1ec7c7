"""deploy/grafana: the dashboard queries only metrics watcher exports, in valid PromQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from watcher.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "watcher.json"

# what each metric type adds to its family name in the exposition format
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}  # fmt: skip
# Grafana's variables, replaced by what they stand for when the query runs
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$job": ".*",
    "$instance": ".*",
}


def exported_names() -> set[str]:
    """Every sample name watcher's /metrics can carry, from the registry the daemon serves."""
    names = set()
    for family in Metrics().registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and other strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    found = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        word = match.group()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        found.add(word)
    return found


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def dashboard() -> dict:  # type: ignore[type-arg]
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:  # type: ignore[type-arg]
    found = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return found


def queries() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and template variables."""
    exprs = [t["expr"] for p in panels() for t in p.get("targets", [])]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
            assert inner, variable["definition"]
            exprs.append(inner.group(1))
    return exprs


def test_metric_names_reads_promql() -> None:
    """The name extractor skips functions, labels, keywords, strings and ranges."""
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{job=~"$job", x="b_total"}[5m])))'
        " / on (job) group_left b_total offset 5m or vector(0)"
    )
    assert metric_names(expr) == {"a_bucket", "b_total"}


def test_every_query_uses_only_exported_metrics() -> None:
    """Each panel and variable query names metrics watcher exports, no recording rules."""
    exported = exported_names()
    assert "watcher_errors_total" in exported
    assert "watcher_pipeline_latency_seconds_bucket" in exported
    for expr in queries():
        names = metric_names(expr)
        assert names, f"no metric in {expr}"
        assert names <= exported, f"{sorted(names - exported)} not exported: {expr}"


def test_every_exported_metric_has_a_panel() -> None:
    """The dashboard shows every metric family the daemon exports (add a panel with a new one)."""
    used = {name for expr in queries() for name in metric_names(expr)}
    for family in Metrics().registry.collect():
        variants = {family.name + s for s in SUFFIXES[family.type]}
        assert variants & used, f"{family.name} has no panel"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (Grafana variables substituted) as a recording rule's expr."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed; test.sh installs it")
        pytest.skip("promtool not installed (./test.sh installs it)")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}:check", "expr": substitute(expr)}
                    for i, expr in enumerate(queries())
                    if not expr.startswith("label_values")
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_panels_have_unique_ids_and_fit_the_grid() -> None:
    """Panel ids are unique; no panel leaves the 24-column grid or overlaps another."""
    all_panels = panels()
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], int] = {}
    for panel in all_panels:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]


def test_panels_query_the_chosen_prometheus() -> None:
    """Every query goes to the ${datasource} variable, so the dashboard imports anywhere."""
    board = dashboard()
    (source,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert (source["name"], source["query"]) == ("datasource", "prometheus")
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
    assert board["uid"] == "watcher-overview" and board["title"] == "watcher"


def test_provisioning_loads_the_dashboard_and_datasources() -> None:
    """The provider reads JSON files from a directory; datasources are Prometheus and Loki."""
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/watcher.yaml").read_text())
    (entry,) = provider["providers"]
    assert provider["apiVersion"] == 1 and entry["type"] == "file"
    assert entry["options"]["path"].startswith("/")
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/watcher.yaml").read_text())
    kinds = {s["type"]: s for s in sources["datasources"]}
    assert set(kinds) == {"prometheus", "loki"}
    assert kinds["prometheus"]["isDefault"] is True
