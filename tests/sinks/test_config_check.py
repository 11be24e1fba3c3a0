"""`trailguard config check` validates the paging sinks' settings, naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """
http: {public_url: "https://trailguard.example.com"}
sinks:
  - {type: jsonl, path: "-"}
  - {type: alertmanager, url: "http://alertmanager:9093", headers: {Authorization: "Bearer x"}}
  - {type: pagerduty, routing_key: abc, min_severity: critical}
  - {type: slack, webhook_url: "https://hooks.slack.com/services/T/B/x", min_severity: high}
  - {type: webhook, name: soar, url: "https://soar.example.com/in", secret: s}
"""


def _check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "trailguard.yaml"
    path.write_text(text)
    command = [sys.executable, "-m", "detector", "config", "check", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_every_sink_type_together_is_valid(tmp_path: Path) -> None:
    done = _check(tmp_path, GOOD)
    assert done.returncode == 0, done.stderr
    assert "sinks: jsonl, alertmanager, pagerduty, slack, soar" in done.stdout


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ("{type: alertmanager}", "sinks[1].url"),
        ("{type: alertmanager, url: 'am:9093'}", "'sinks[1].url' must be an http(s) URL"),
        ("{type: pagerduty, routing_key: k, max_attempts: -1}", "'sinks[1].max_attempts'"),
        ("{type: slack}", "'sinks[1].webhook_url' or 'sinks[1].webhook_url_file'"),
        ("{type: webhook, url: 'http://x/in', secret: s, sekret: t}", "'sinks[1].sekret'"),
    ],
)
def test_a_bad_sink_setting_names_its_key(tmp_path: Path, sink: str, message: str) -> None:
    done = _check(tmp_path, f"sinks:\n  - {{type: jsonl}}\n  - {sink}\n")
    assert done.returncode == 2
    assert message in done.stderr
