"""deploy/alertmanager/alertmanager.yml: valid for Alertmanager, and it pages per session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"


def test_amtool_accepts_the_configuration_or_it_parses() -> None:
    amtool = shutil.which("amtool")
    if amtool is not None:
        done = subprocess.run(
            [amtool, "check-config", str(DEPLOY)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(DEPLOY.read_text())
    assert {r["name"] for r in config["receivers"]} >= {"pagerduty"}


def test_critical_trailguard_alerts_go_to_pagerduty_grouped_by_session() -> None:
    config = yaml.safe_load(DEPLOY.read_text())
    [critical] = [r for r in config["route"]["routes"] if r["receiver"] == "pagerduty"]
    assert 'severity="critical"' in critical["matchers"]
    assert critical["group_by"] == ["session"]
    [pagerduty] = [r for r in config["receivers"] if r["name"] == "pagerduty"]
    assert pagerduty["pagerduty_configs"][0]["send_resolved"] is True


def test_amtool_routes_a_critical_session_alert_to_pagerduty() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed (make test installs prometheus-alertmanager)")
    labels = ["alertname=out-of-scope-action", "severity=critical", "session=ses-1"]
    done = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={DEPLOY}", *labels],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "pagerduty"
    lesser = ["alertname=persistence", "severity=high", "session=ses-1"]
    done = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={DEPLOY}", *lesser],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "trailguard-review"
