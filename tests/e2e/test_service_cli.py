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
        (
            "sources: [{type: kafka, topics: [t], group_id: g}]",
            "'sources[0].bootstrap_servers' is required",
        ),
        (
            "sources: [{type: kafka, bootstrap_servers: [b], topics: [t], group_id: g, "
            "shard_by: topic}]",
            "'sources[0].shard_by' must be one of 'none', 'partition', got 'topic'",
        ),
        ("sources: [{type: lookup, regions: [a, a]}]", "'sources[0].regions' lists 'a' twice"),
        (
            "sources: [{type: sqs-s3, queue_url: 'https://sqs.x/q', max_messages: 11}]",
            "'sources[0].max_messages' must be an integer from 1 to 10, got 11",
        ),
        (
            "sources: [{type: files, path: /tmp, poll_interval_seconds: 0}]",
            "'sources[0].poll_interval_seconds' must be a number above 0, got 0",
        ),
        ("sources: [{type: carrier-pigeon}]", "sources[0].type"),
        ("state: {store: redis}", "'state.store' must be one of 'postgres', 'sqlite', got 'redis'"),
        ("state: {store: postgres}", "'state.dsn' is required"),
        ("state: {store: postgres, dsn: host}", "'state.dsn': not a valid PostgreSQL connection"),
        ("sinks: [{type: jsonl, path: ''}]", "'sinks[0].path' must be a non-empty string"),
        ("sinks: [{type: jsonl, colour: red}]", "unknown key 'sinks[0].colour'"),
        ("route: {bootstrap_servers: [b], topics: [t], group_id: g}", "'route.keyed_topic'"),
        ("stat: {store: sqlite}", "unknown key 'stat' (did you mean 'state'?)"),
        ("log: {format: xml}", "'log.format' must be one of 'json', 'text', got 'xml'"),
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
