"""The service commands' start-up checks: configuration errors name the key and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _trailguard(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_config_check_accepts_the_deploy_example() -> None:
    done = _trailguard("config", "check", str(DEPLOY / "trailguard.yaml"))
    assert done.returncode == 0, done.stderr
    assert "sources: trail" in done.stdout
    assert "state: postgres" in done.stdout


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("sources: [{type: kafka, topics: [t], group_id: g}]", "sources.kafka.bootstrap_servers"),
        ("sources: [{type: carrier-pigeon}]", "sources[0].type"),
        ("state: {store: redis}", "state.store: unknown store 'redis'"),
        ("state: {store: postgres}", "state.dsn: required"),
        ("sinks: [{type: jsonl, path: ''}]", "sinks.jsonl.path"),
        ("stat: {store: sqlite}", "unknown key 'stat' (did you mean 'state'?)"),
    ],
)
def test_config_check_names_the_bad_key(tmp_path: Path, config: str, message: str) -> None:
    path = tmp_path / "trailguard.yaml"
    path.write_text(config + "\n")
    done = _trailguard("config", "check", str(path))
    assert done.returncode == 2
    assert message in done.stderr


def test_run_without_sources_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "trailguard.yaml"
    path.write_text(f"state: {{path: {tmp_path / 'state.db'}}}\n")
    done = _trailguard("run", "--config", str(path))
    assert done.returncode == 2
    assert "needs at least one" in done.stderr
