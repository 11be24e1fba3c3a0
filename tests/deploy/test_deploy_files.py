"""The files in deploy/ are what users copy: each must be valid for the tool that reads it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
import yaml

from detector.approvals.settings import api_settings, approval_settings
from detector.catalog_loader import load_catalog
from detector.config import load_settings
from detector.metrics import AlertSinkMetrics, Metrics
from detector.run import build_sinks, build_sources
from detector.scope_file import load_scopes

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "trailguard-rules.yaml"
DASHBOARD = DEPLOY / "grafana" / "trailguard-dashboard.json"
METRIC = re.compile(r"\btrailguard_[a-z_]+")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (make test installs the Debian package)")
    return found


def _families() -> set[str]:
    metrics = Metrics(sources=["trail"], sinks=["out"], runtime_collectors=False)
    AlertSinkMetrics(metrics.registry, sinks=["out"]).active("out", 0)
    metrics.set_consumer_lag("trail", "t:0", 1)
    metrics.count_sessions_with(lambda: {})
    names = {name for name, _, _ in metrics.samples()}
    for family in metrics.registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names | {re.sub(r"_(bucket|count|sum)$", "", n) for n in names}


def test_example_config_and_scopes_are_valid() -> None:
    settings = load_settings(DEPLOY / "trailguard.yaml", {})
    assert [s.name for s in build_sources(settings)] == ["trail"]
    assert [s.name for s in build_sinks(settings)] == ["jsonl"]
    assert settings.scopes is not None
    assert [s.name for s in load_scopes(settings.scopes).scopes] == ["ce-4821-fix"]
    assert approval_settings(settings).default_outcome == "deny"
    assert api_settings(settings).revokers == ()


def test_kubernetes_manifests_parse_and_embed_a_valid_config(tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "trailguard.yaml").read_text()))
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    (tmp_path / "trailguard.yaml").write_text(config_map["data"]["trailguard.yaml"])
    settings = load_settings(tmp_path / "trailguard.yaml", {"TRAILGUARD__STATE__DSN": "host=x"})
    assert settings.state.store == "postgres" and settings.state.dsn == "host=x"
    assert build_sources(settings)
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][0] in ("run", "route")


def test_iam_policy_names_only_real_actions() -> None:
    policy = orjson.loads((DEPLOY / "iam" / "trailguard-read.json").read_bytes())
    catalog = load_catalog()
    actions = [a for statement in policy["Statement"] for a in statement["Action"]]
    assert actions
    unknown = [a for a in actions if not catalog.entry(a).known]
    assert unknown == []
    # Reading CloudTrail needs no permission that changes access, logging or sharing.
    risky = {"permissions", "defense-evasion", "data-exposure"}
    assert [a for a in actions if catalog.entry(a).category.value in risky] == []


def test_prometheus_rules_pass_promtool_and_their_unit_tests() -> None:
    promtool = _promtool()
    subprocess.run([promtool, "check", "rules", str(RULES)], check=True, capture_output=True)
    subprocess.run(
        [promtool, "test", "rules", str(RULES.with_name("trailguard-rules.test.yaml"))],
        check=True,
        capture_output=True,
    )


def test_rules_and_dashboard_use_only_metrics_that_exist() -> None:
    families = _families()
    texts = [RULES.read_text(), DASHBOARD.read_text()]
    used = {name for text in texts for name in METRIC.findall(text)}
    assert used
    assert used - families == set()


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = _promtool()
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    # promtool parses PromQL in recording rules: one rule per dashboard query.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
