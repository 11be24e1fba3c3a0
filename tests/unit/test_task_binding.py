"""Events signed with a registered task's credentials are bound to its scope by the registry."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from detector.config import Settings
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline
from detector.core.task_index import TaskBinding, TaskIndex
from detector.wiring import build_pipeline
from tests.conftest import make_event

SCOPES = """
scopes:
  - name: ce-4821-fix
    match: {role_arn: "arn:aws:iam::*:role/never-this-role"}
    allow:
      actions: ["s3:GetObject", "s3:ListBucket"]
"""
TASK_ID = "0a1b2c3d4e5f"
IDENTITY = {
    "type": "AssumedRole",
    "principalId": f"AROAEXAMPLEAGENTROLE:agent-kiro-{TASK_ID}",
    "arn": f"arn:aws:sts::111122223333:assumed-role/agent-ce/agent-kiro-{TASK_ID}",
    "accountId": "111122223333",
    "accessKeyId": "ASIATASKKEY000000001",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAEXAMPLEAGENTROLE",
            "arn": "arn:aws:iam::111122223333:role/agent-ce",
            "accountId": "111122223333",
            "userName": "agent-ce",
        },
        "attributes": {"creationDate": "2026-12-01T10:00:00Z", "mfaAuthenticated": "false"},
        "sourceIdentity": f"agent-kiro-{TASK_ID}",
    },
}
TASK = TaskBinding(
    task_id=TASK_ID,
    agent="kiro",
    scope="ce-4821-fix",
    source_identity=f"agent-kiro-{TASK_ID}",
    ends_at=datetime(2026, 12, 1, 11, 0, tzinfo=UTC),
    owner="alice@example.com",
    access_key_id="ASIATASKKEY000000001",
    principal_id=f"AROAEXAMPLEAGENTROLE:agent-kiro-{TASK_ID}",
)


def _pipeline(tmp_path: Path, tasks: TaskIndex) -> Pipeline:
    path = tmp_path / "scopes.yaml"
    path.write_text(SCOPES)
    pipeline = build_pipeline(Settings(), scopes_path=path)
    pipeline.set_tasks(tasks)
    return pipeline


def _event(event_id: str, name: str, at: str = "2026-12-01T10:05:00Z", **identity: Any) -> Any:
    return parse_record(
        make_event(
            eventID=event_id,
            eventTime=at,
            eventSource="s3.amazonaws.com",
            eventName=name,
            userIdentity={**IDENTITY, **identity},
            requestParameters={"bucketName": "ce-logs"},
            readOnly=name.startswith(("Get", "List")),
        )
    )


def test_the_registry_binds_the_task_scope_authoritatively(tmp_path: Path) -> None:
    result = _pipeline(tmp_path, TaskIndex.of([TASK])).process(_event("e1", "GetObject"))
    session = result.session
    assert session is not None
    assert (session.kind.value, session.agent, session.agent_confidence) == (
        "agent",
        "kiro",
        "registry",
    )
    assert session.human == "alice@example.com"
    assert not session.on_human_credentials
    assert session.evidence[0] == (
        f"attribution: registry: task {TASK_ID} (access key ASIATASKKEY000000001)"
    )
    assert result.findings == ()


def test_an_out_of_scope_call_is_judged_against_the_task_scope(tmp_path: Path) -> None:
    result = _pipeline(tmp_path, TaskIndex.of([TASK])).process(_event("e1", "DeleteBucket"))
    [finding] = [f for f in result.findings if f.kind == "out-of-scope-action"]
    assert finding.scope == "ce-4821-fix"
    assert any(e.startswith("attribution: registry") for e in finding.evidence)


def test_without_the_registry_the_scope_does_not_bind(tmp_path: Path) -> None:
    result = _pipeline(tmp_path, TaskIndex()).process(_event("e1", "DeleteBucket"))
    assert all(f.scope is None for f in result.findings)
    assert result.session is not None and result.session.agent_confidence != "registry"


def test_use_after_task_end_is_scope_expired(tmp_path: Path) -> None:
    ended = replace(TASK, ends_at=datetime(2026, 12, 1, 10, 10, tzinfo=UTC), ended=True)
    pipeline = _pipeline(tmp_path, TaskIndex.of([TASK]))
    assert pipeline.process(_event("e1", "GetObject")).findings == ()
    # The service re-reads the registry after `task end`; the next use is flagged.
    pipeline.set_tasks(TaskIndex.of([ended]))
    result = pipeline.process(_event("e2", "GetObject", at="2026-12-01T10:20:00Z"))
    [finding] = [f for f in result.findings if f.kind == "scope-expired"]
    assert f"task {TASK_ID} (scope ce-4821-fix) ended at 2026-12-01T10:10:00Z" in finding.reason


def test_use_after_expiry_is_scope_expired(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, TaskIndex.of([TASK]))
    late = (TASK.ends_at + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    result = pipeline.process(_event("e1", "GetObject", at=late))
    [finding] = [f for f in result.findings if f.kind == "scope-expired"]
    assert "expired at 2026-12-01T11:00:00Z" in finding.reason


def test_a_role_chained_from_the_task_binds_by_source_identity(tmp_path: Path) -> None:
    chained = {
        "principalId": "AROAOTHERROLE0000000:chained",
        "arn": "arn:aws:sts::111122223333:assumed-role/other/chained",
        "accessKeyId": "ASIACHAINED000000001",
    }
    result = _pipeline(tmp_path, TaskIndex.of([TASK])).process(_event("e1", "GetObject", **chained))
    assert result.session is not None and result.session.agent_confidence == "registry"
    assert f"task {TASK_ID} (source identity agent-kiro-{TASK_ID})" in result.session.evidence[0]
