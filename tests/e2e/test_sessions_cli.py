"""`trailguard sessions`: from replay's inputs and from the service's state store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from detector.config import load_settings
from detector.core.parse import parse_record
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline

DEMO = Path(__file__).resolve().parents[2] / "detector" / "data" / "demo"
EVENTS = DEMO / "incident.jsonl"
SCOPES = DEMO / "scopes.yaml"


def _trailguard(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _records(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def _demo_events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EVENTS.read_text().splitlines()]


def _agent(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The incident's Kiro session: the one on Alice's own credentials."""
    (agent,) = [
        r
        for r in records
        if r["type"] == "session" and r["agent"] == "kiro" and r["credentials"] == "inherited"
    ]
    return agent


def test_the_delegated_kiro_session_is_listed_as_delegated_by_its_person() -> None:
    done = _trailguard("sessions", "--scopes", str(SCOPES), str(EVENTS))
    records = _records(done.stdout)
    (delegated,) = [r for r in records if r["agent"] == "kiro" and r["credentials"] == "delegated"]
    assert delegated["person"] == "dana@example.com"
    assert delegated["scope"] == "ce-4833-alerts"
    assert delegated["worst_severity"] in (None, "low")


def test_lists_every_session_of_the_inputs_with_its_counts() -> None:
    done = _trailguard("sessions", "--scopes", str(SCOPES), str(EVENTS))
    assert done.returncode == 0, done.stderr
    records = _records(done.stdout)
    assert all(r["type"] == "session" for r in records)
    events = _demo_events()
    unique = {e["eventID"] for e in events}
    assert sum(r["events"] for r in records) == len(unique)
    agent = _agent(records)
    assert agent["kind"] == "agent"
    assert agent["person"] == "alice@example.com"
    assert agent["credentials"] == "inherited"
    assert agent["scope"] == "ce-4821-fix"
    assert agent["worst_severity"] == "critical"
    assert agent["findings"] >= 2
    alice_key = {
        e["eventID"]
        for e in events
        if e["userIdentity"].get("arn", "").endswith("alice@example.com")
    }
    assert agent["events"] <= len(alice_key)
    times = sorted(e["eventTime"] for e in events if e["eventID"] in alice_key)
    assert agent["first_seen"] >= times[0] and agent["last_seen"] <= times[-1]
    # A bystander without findings is listed too.
    assert any(r["findings"] == 0 and r["worst_severity"] is None for r in records)


def test_one_sessions_timeline_holds_its_events_with_their_findings() -> None:
    listed = _records(_trailguard("sessions", "--scopes", str(SCOPES), str(EVENTS)).stdout)
    agent = _agent(listed)
    done = _trailguard(
        "sessions", "--scopes", str(SCOPES), "--session", agent["session_id"], str(EVENTS)
    )
    assert done.returncode == 0, done.stderr
    records = _records(done.stdout)
    assert records[0] == agent
    timeline = records[1:]
    assert len(timeline) == agent["events"]
    assert all(r["type"] == "event" and r["session_id"] == agent["session_id"] for r in timeline)
    assert [r["event_time"] for r in timeline] == sorted(r["event_time"] for r in timeline)
    assert sum(len(r["findings"]) for r in timeline) == agent["findings"]
    delete = next(r for r in timeline if r["action"].endswith(" DeleteStack"))
    assert {f["severity"] for f in delete["findings"]} >= {"critical"}


def test_an_unknown_session_is_a_usage_error() -> None:
    done = _trailguard("sessions", "--session", "ses-nope", str(EVENTS))
    assert done.returncode == 2
    assert "no session 'ses-nope'" in done.stderr


def test_the_table_is_asked_for_with_format() -> None:
    done = _trailguard("sessions", "--format", "table", "--scopes", str(SCOPES), str(EVENTS))
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split()[:3] == ["session", "kind", "agent"]
    assert any("kiro" in row and "inherited" in row and "ce-4821-fix" in row for row in rows)


def test_lists_the_sessions_of_the_state_store(tmp_path: Path) -> None:
    config = tmp_path / "trailguard.yaml"
    config.write_text(f"scopes: {SCOPES}\nstate: {{path: {tmp_path / 'state.db'}}}\n")
    settings = load_settings(config, {})
    pipeline = build_pipeline(settings, scopes_path=SCOPES)
    for line in EVENTS.read_bytes().splitlines():
        pipeline.process(parse_record(orjson.loads(line)))
    store = SqliteStateStore(str(tmp_path / "state.db"))
    epoch = store.claim("default", "test")
    store.save("default", pipeline.snapshot(), epoch=epoch)
    store.claim("empty-shard", "test")  # claimed, never saved: nothing to list
    store.close()

    done = _trailguard("sessions", "--config", str(config))
    assert done.returncode == 0, done.stderr
    records = _records(done.stdout)
    assert len(records) == len(pipeline.tracker)
    agent = _agent(records)
    assert agent["scope"] == "ce-4821-fix"
    assert agent["credentials"] == "inherited"
    assert agent["worst_severity"] == "critical"
    # What the snapshots do not keep is said to be unknown, not zero.
    assert agent["events"] is None and agent["findings"] is None and agent["first_seen"] is None
    assert agent["last_seen"] is not None


def test_sessions_needs_inputs_or_a_config() -> None:
    done = _trailguard("sessions")
    assert done.returncode == 2
    assert "--config" in done.stderr
