"""The pipeline end to end over parsed events: attribution, scopes, findings and decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.config import Settings
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline, StepResult
from detector.sinks.jsonl import step_records
from detector.wiring import build_pipeline
from tests.conftest import make_event, read_jsonl

DEMO = Path(__file__).resolve().parents[2] / "detector" / "data" / "demo"
SCOPES = """
scopes:
  - name: docs-refresh
    match: {source_identity: "agent-claude-*"}
    allow:
      actions: ["s3:GetObject", "s3:PutObject", "s3:ListBucket"]
      resources: ["arn:aws:s3:::docs-site*"]
    on_violation: revoke
"""
AGENT_ROLE = {
    "type": "AssumedRole",
    "principalId": "AROAEXAMPLEAGENT0001:claude-task-17",
    "arn": "arn:aws:sts::111122223333:assumed-role/AgentRole/claude-task-17",
    "accountId": "111122223333",
    "accessKeyId": "ASIAEXAMPLEAGENT0001",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAEXAMPLEAGENT0001",
            "arn": "arn:aws:iam::111122223333:role/AgentRole",
            "accountId": "111122223333",
            "userName": "AgentRole",
        },
        "attributes": {"creationDate": "2025-12-08T09:00:00Z", "mfaAuthenticated": "false"},
        "sourceIdentity": "agent-claude-7f3e",
    },
}


def _pipeline(tmp_path: Path, scopes: str = SCOPES, **settings: Any) -> Pipeline:
    path = tmp_path / "scopes.yaml"
    path.write_text(scopes)
    return build_pipeline(Settings(**settings), scopes_path=path)


def _agent_event(event_id: str, name: str, source: str = "s3.amazonaws.com", **extra: Any) -> Any:
    return parse_record(
        make_event(
            eventID=event_id,
            eventSource=source,
            eventName=name,
            userIdentity=AGENT_ROLE,
            readOnly=False,
            **extra,
        )
    )


def test_in_scope_call_raises_nothing(tmp_path: Path) -> None:
    result = _pipeline(tmp_path).process(
        _agent_event("e1", "PutObject", requestParameters={"bucketName": "docs-site", "key": "a"})
    )
    assert result.session is not None and result.session.kind.value == "agent"
    assert result.findings == () and result.alerts == () and result.responses == ()


def test_out_of_scope_resource_is_flagged_with_the_scope(tmp_path: Path) -> None:
    result = _pipeline(tmp_path).process(
        _agent_event("e1", "PutObject", requestParameters={"bucketName": "billing", "key": "a"})
    )
    kinds = {f.kind: f for f in result.findings}
    assert "out-of-scope-resource" in kinds
    assert kinds["out-of-scope-resource"].scope == "docs-refresh"
    assert "arn:aws:s3:::billing/a" in kinds["out-of-scope-resource"].resources


def test_destructive_call_revokes_once_per_session(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    first = pipeline.process(
        _agent_event("e1", "DeleteBucket", requestParameters={"bucketName": "docs-site"})
    )
    second = pipeline.process(
        _agent_event("e2", "DeleteBucket", requestParameters={"bucketName": "docs-site-old"})
    )
    assert [r.event_id for r in first.responses] == ["e1"]
    assert first.responses[0].dry_run is True
    assert second.responses == ()
    assert {f.kind for f in second.findings} >= {"out-of-scope-action", "destructive-action"}
    # The alert for the kind was opened by the first event; the second does not re-open it.
    assert {a.kind for a in second.alerts}.isdisjoint({a.kind for a in first.alerts})


def test_enabled_responses_are_not_dry_run(tmp_path: Path) -> None:
    from detector.config import ResponseSettings

    pipeline = _pipeline(tmp_path, responses=ResponseSettings(enabled=True))
    result = pipeline.process(
        _agent_event("e1", "DeleteBucket", requestParameters={"bucketName": "docs-site"})
    )
    assert [r.dry_run for r in result.responses] == [False]


def test_duplicate_event_id_is_judged_once(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    event = _agent_event("e1", "DeleteBucket", requestParameters={"bucketName": "docs-site"})
    assert pipeline.process(event).findings
    again = pipeline.process(event)
    assert again.duplicate and again.findings == () and again.alerts == ()


def test_unscoped_agent_is_flagged(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, scopes="scopes: []")
    ua = "aws-cli/2.35.24 ua/2.1 os/linux lang/python#3.13 m/AP,E"
    result = pipeline.process(
        parse_record(make_event(eventID="x", eventName="DeleteBucket", userAgent=ua))
    )
    kinds = {f.kind for f in result.findings}
    assert "unscoped-agent" in kinds
    assert result.session is not None and result.session.agent == "codex"
    # An IAM user's keys are a person's credentials.
    assert "agent-on-human-credentials" in kinds


def test_denied_burst_in_event_time(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, scopes="scopes: []")
    kinds = []
    for second in range(5):
        record = make_event(
            eventID=f"d{second}",
            eventTime=f"2025-12-08T10:00:0{second}Z",
            eventName="ListBuckets",
            errorCode="AccessDenied",
        )
        kinds.append([f.kind for f in pipeline.process(parse_record(record)).findings])
    assert kinds[:4] == [[], [], [], []]
    assert kinds[4] == ["access-denied-burst"]


def _run(pipeline: Pipeline, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for record in records:
        result: StepResult = pipeline.process(parse_record(record))
        out.extend(step_records(result))
    return out


@pytest.mark.parametrize("cut", [5, 17, 26, 33])
def test_snapshot_restore_resumes_without_re_alerting(cut: int) -> None:
    """A restart mid-stream, with state through JSON, gives exactly the uninterrupted output."""
    records = list(read_jsonl(DEMO / "incident.jsonl"))
    whole = _run(build_pipeline(Settings(), scopes_path=DEMO / "scopes.yaml"), records)

    before = build_pipeline(Settings(), scopes_path=DEMO / "scopes.yaml")
    first = _run(before, records[:cut])
    state = orjson.loads(orjson.dumps(before.snapshot()))
    after = build_pipeline(Settings(), scopes_path=DEMO / "scopes.yaml")
    after.restore(state)
    # Redelivery of the last few records, as at-least-once sources do, changes nothing.
    second = _run(after, records[max(0, cut - 3) :])
    assert first + second == whole


def test_evicted_sessions_take_their_state_with_them(tmp_path: Path) -> None:
    """Per-session alerts, bindings and bursts are dropped with the session: bounded memory."""
    from detector.config import StateSettings

    pipeline = _pipeline(tmp_path, scopes="scopes: []", state=StateSettings(max_sessions=3))
    for index in range(10):
        identity = {
            "type": "IAMUser",
            "principalId": f"AIDAEXAMPLE{index:09d}",
            "arn": f"arn:aws:iam::111122223333:user/u{index}",
            "accountId": "111122223333",
            "accessKeyId": f"AKIAEXAMPLE{index:09d}",
            "userName": f"u{index}",
        }
        record = make_event(
            eventID=f"e{index}",
            eventSource="cloudtrail.amazonaws.com",
            eventName="StopLogging",
            userIdentity=identity,
            errorCode="AccessDenied",
        )
        pipeline.process(parse_record(record))
    snapshot = pipeline.snapshot()
    assert len(pipeline.tracker) == 3
    assert 1 <= len(snapshot["decisions"]["alerts"]) <= 3
    assert 1 <= len(snapshot["bursts"]["times"]) <= 3
