"""The `trailguard` command end to end, as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLOUDTRAIL, make_event

DEMO = Path(__file__).resolve().parents[2] / "detector" / "data" / "demo" / "incident.jsonl"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "detector", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def records(output: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def demo() -> list[dict[str, Any]]:
    result = run("demo", "--format", "jsonl")
    assert result.returncode == 0, result.stderr.decode()
    return records(result.stdout)


def _demo_events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEMO.read_text().splitlines()]


def test_demo_revokes_the_agent_on_its_first_destructive_call(demo: list[dict[str, Any]]) -> None:
    events = _demo_events()
    delete_stack = next(e for e in events if e["eventName"] == "DeleteStack")
    responses = [r for r in demo if r["type"] == "response"]
    assert len(responses) == 1
    (response,) = responses
    assert response["action"] == "revoke-session"
    assert response["event_id"] == delete_stack["eventID"]
    assert response["dry_run"] is True
    assert response["target"]["on_human_credentials"] is True
    assert response["target"]["human"] == "alice@example.com"
    assert response["target"]["access_key_id"] == delete_stack["userIdentity"]["accessKeyId"]
    # Nothing the agent did before DeleteStack was destructive or critical.
    first = [f for f in demo if f["type"] == "finding" and f["severity"] == "critical"]
    assert first[0]["event_id"] == delete_stack["eventID"]
    assert first[0]["kind"] in ("out-of-scope-action", "destructive-action")
    assert first[0]["agent"] == "kiro"
    assert first[0]["session_kind"] == "agent"
    assert first[0]["scope"] == "ce-4821-fix"
    assert first[0]["action"] == "cloudformation:DeleteStack"


def test_demo_flags_agent_on_human_credentials_at_its_first_call(
    demo: list[dict[str, Any]],
) -> None:
    kiro_first = next(e for e in _demo_events() if "m/AQ" in e.get("userAgent", ""))
    flagged = [
        f for f in demo if f["type"] == "finding" and f["kind"] == "agent-on-human-credentials"
    ]
    assert len(flagged) == 1
    assert flagged[0]["event_id"] == kiro_first["eventID"]
    assert flagged[0]["severity"] == "high"


def test_demo_in_scope_work_and_bystanders_page_no_one(demo: list[dict[str, Any]]) -> None:
    events = {e["eventID"]: e for e in _demo_events()}
    findings = [f for f in demo if f["type"] == "finding"]
    by_event: dict[str, list[dict[str, Any]]] = {}
    for finding in findings:
        by_event.setdefault(finding["event_id"], []).append(finding)
    update = next(e for e in events.values() if e["eventName"].startswith("UpdateFunctionCode"))
    assert all(
        f["kind"] == "agent-on-human-credentials" or f["severity"] in ("low", "info")
        for f in by_event.get(update["eventID"], [])
    )
    for event_id, found in by_event.items():
        event = events[event_id]
        principal = event["userIdentity"].get("arn", "")
        if (
            event.get("sessionCredentialFromConsole")
            or "AgentDocsRole" in principal
            or "ce-ingest-role" in principal
        ):
            assert found == [], f"{event['eventName']} by {principal} raised {found}"
    alerts = [a for a in demo if a["type"] == "alert"]
    assert {a["session_id"] for a in alerts} >= {
        f["session_id"]
        for f in findings
        if f["agent"] == "kiro" and f["credentials"] == "inherited"
    }
    assert len({a["dedup_key"] for a in alerts}) == len(
        {(a["session_id"], a["kind"]) for a in alerts}
    )


def test_demo_delegated_agent_session_stays_in_scope_and_pages_no_one(
    demo: list[dict[str, Any]],
) -> None:
    events = _demo_events()
    mint = next(
        e
        for e in events
        if e["eventName"] == "AssumeRole" and "dana@example.com" in e["userIdentity"]["arn"]
    )
    delegated_key = mint["responseElements"]["credentials"]["accessKeyId"]
    calls = [e for e in events if e["userIdentity"].get("accessKeyId") == delegated_key]
    assert calls and all("m/AQ" in e["userAgent"] for e in calls)
    ids = {e["eventID"] for e in calls}
    findings = [f for f in demo if f["type"] == "finding" and f["event_id"] in ids]
    # In-scope work: the code update is recorded (low) and nothing else is raised.
    assert [(f["kind"], f["severity"]) for f in findings] == [("persistence", "low")]
    (finding,) = findings
    assert finding["agent"] == "kiro"
    assert finding["scope"] == "ce-4833-alerts"
    assert finding["credentials"] == "delegated"
    assert finding["delegated_by"] == "dana@example.com"
    assert finding["human"] == "dana@example.com"
    assert "delegated by dana@example.com" in finding["reason"]
    session = finding["session_id"]
    assert not [
        r for r in demo if r["type"] in ("alert", "response") and r["session_id"] == session
    ]
    # The person's own AssumeRole is a read on her own credentials: nothing to say.
    assert not [f for f in demo if f["type"] == "finding" and f["event_id"] == mint["eventID"]]


def test_demo_duplicate_delivery_is_not_judged_twice(demo: list[dict[str, Any]]) -> None:
    delete_ids = [e["eventID"] for e in _demo_events() if e["eventName"] == "DeleteStack"]
    assert len(delete_ids) == 2 and delete_ids[0] == delete_ids[1]
    kinds = [f["kind"] for f in demo if f["type"] == "finding" and f["event_id"] == delete_ids[0]]
    assert len(kinds) == len(set(kinds))


def test_demo_table_says_what_would_be_revoked() -> None:
    result = run("demo", "--format", "table")
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    assert "Would revoke (dry run" in text
    assert "kiro" in text and "alice@example.com" in text
    assert "critical" in text
    assert "AgentKiroRole" in text
    delegated = next(line for line in text.splitlines() if "ce-4833-alerts" in line)
    assert "delegated by dana@example.com" in delegated and " delegated " in delegated
    assert "(worst low)" in delegated


def test_fail_on_sets_exit_code(tmp_path: Path) -> None:
    # Without scopes the agent is unscoped: its DeleteStack is still critical.
    assert run("replay", "--format", "jsonl", "--fail-on", "high", str(DEMO)).returncode == 3
    result = run(
        "replay",
        "--scopes",
        str(DEMO.parent / "scopes.yaml"),
        "--format",
        "jsonl",
        "--fail-on",
        "critical",
        str(DEMO),
    )
    assert result.returncode == 3
    benign = tmp_path / "benign.jsonl"
    benign.write_text(json.dumps(make_event()) + "\n")
    assert run("replay", "--fail-on", "low", str(benign)).returncode == 0


def test_bad_records_are_dead_lettered_and_the_rest_processed(tmp_path: Path) -> None:
    trail = tmp_path / "trail.jsonl"
    good = make_event(
        eventID="good-1",
        eventName="DeleteBucket",
        requestParameters={"bucketName": "b"},
        readOnly=False,
    )
    missing = make_event(eventID="bad-1")
    del missing["eventTime"]
    lines = [
        json.dumps(good),
        "{oops",
        json.dumps(missing),
        json.dumps(make_event(eventID="good-2")),
    ]
    trail.write_text("\n".join(lines) + "\n")
    dead = tmp_path / "dead.jsonl"
    result = run("replay", "--format", "jsonl", "--dead-letter", str(dead), str(trail))
    assert result.returncode == 0
    stderr = result.stderr.decode()
    assert f"{trail}:line 2" in stderr and "invalid JSON" in stderr
    assert f"{trail}:line 3" in stderr and "missing required field 'eventTime'" in stderr
    letters = records(dead.read_bytes())
    assert [d["origin"] for d in letters] == [f"{trail}:line 2", f"{trail}:line 3"]
    assert letters[0]["record"] == "{oops"
    assert letters[1]["record"]["eventID"] == "bad-1"
    findings = [r for r in records(result.stdout) if r["type"] == "finding"]
    assert [f["event_id"] for f in findings] == ["good-1"]
    assert findings[0]["kind"] == "destructive-action"


def test_stdin_and_every_dataset_replays_without_rejects() -> None:
    data = b"".join(
        (CLOUDTRAIL / name / "events.jsonl").read_bytes()
        for name in ("zmallen_stratus_2022", "otrf_ec2_proxy_s3_exfiltration")
    )
    result = run("replay", "--format", "jsonl", "-", stdin=data)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.decode().splitlines() == [
        "trailguard: INFO: Replayed 118 events from 1 input(s)"
        " (0 duplicates skipped, 0 records rejected)"
    ]
    kinds = {r["kind"] for r in records(result.stdout) if r["type"] == "finding"}
    assert "defense-evasion" in kinds


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("replay", str(tmp_path / "missing.jsonl")).returncode == 2
    bad_scopes = tmp_path / "scopes.yaml"
    bad_scopes.write_text("scopes: [{name: x}]\n")
    result = run("replay", "--scopes", str(bad_scopes), str(DEMO))
    assert result.returncode == 2
    assert str(bad_scopes) in result.stderr.decode()
