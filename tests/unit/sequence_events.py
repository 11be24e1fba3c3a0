"""CloudTrail events for the sequence tests: who calls what, when, through the real pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detector.config import Settings
from detector.core.events import CloudTrailEvent
from detector.core.findings import Finding
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline, StepResult
from detector.wiring import build_pipeline
from tests.conftest import make_event

ACCOUNT = "111122223333"
# A coding agent on its own role session, bound to a scope that allows docs uploads only.
AGENT = {
    "type": "AssumedRole",
    "principalId": "AROAEXAMPLEAGENT0001:claude-task-17",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AgentRole/claude-task-17",
    "accountId": ACCOUNT,
    "accessKeyId": "ASIAEXAMPLEAGENT0001",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAEXAMPLEAGENT0001",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/AgentRole",
            "accountId": ACCOUNT,
            "userName": "AgentRole",
        },
        "attributes": {"creationDate": "2025-12-08T09:00:00Z", "mfaAuthenticated": "false"},
        "sourceIdentity": "agent-claude-7f3e",
    },
}
SCOPES = """
scopes:
  - name: docs-refresh
    match: {source_identity: "agent-claude-*"}
    allow:
      actions: ["s3:GetObject", "s3:PutObject", "s3:ListBucket"]
      resources: ["arn:aws:s3:::docs-site*"]
    on_violation: revoke
"""


def user(name: str, key: str | None = None) -> dict[str, Any]:
    """An IAM user's own long-term key: a person (default dana, as make_event has it)."""
    return {
        "type": "IAMUser",
        "principalId": f"AIDA{name.upper():0<16}"[:20],
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "accountId": ACCOUNT,
        "accessKeyId": key or f"AKIA{name.upper():0<16}"[:20],
        "userName": name,
    }


def role_session(role: str, session: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROA{role.upper():0<16}"[:20] + f":{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
        "accessKeyId": f"ASIA{session.upper():0<16}"[:20],
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                "accountId": ACCOUNT,
                "userName": role,
            },
            "attributes": {"creationDate": "2025-12-08T09:00:00Z", "mfaAuthenticated": "false"},
        },
    }


HUMAN = user("dana")


def at(minute: int, second: int = 0, hour: int = 10) -> str:
    return f"2025-12-08T{hour:02d}:{minute:02d}:{second:02d}Z"


def call(
    event_id: str,
    action: str,
    when: str,
    *,
    identity: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    error: str | None = None,
) -> CloudTrailEvent:
    """One call of "service:EventName" by `identity` (dana by default) at `when`."""
    service, name = action.split(":", 1)
    return parse_record(
        make_event(
            eventID=event_id,
            eventSource=f"{service}.amazonaws.com",
            eventName=name,
            eventTime=when,
            userIdentity=identity or HUMAN,
            requestParameters=params,
            responseElements=response,
            errorCode=error,
            readOnly=None,
        )
    )


NEW_KEY = "AKIANEWKEY0000000001"


def agent_creates_key(event_id: str, when: str) -> CloudTrailEvent:
    """The agent creating access key NEW_KEY for the IAM user backup."""
    return call(
        event_id,
        "iam:CreateAccessKey",
        when,
        identity=AGENT,
        params={"userName": "backup"},
        response={"accessKey": {"accessKeyId": NEW_KEY, "userName": "backup"}},
    )


def pipeline(tmp_path: Path, scopes: str = SCOPES, **settings: Any) -> Pipeline:
    path = tmp_path / "scopes.yaml"
    path.write_text(scopes)
    return build_pipeline(Settings(**settings), scopes_path=path)


def sequences(result: StepResult) -> list[Finding]:
    return [f for f in result.findings if f.kind == "suspicious-sequence"]


def run(p: Pipeline, *events: CloudTrailEvent) -> list[Finding]:
    """The sequence findings of every event, in order."""
    return [f for event in events for f in sequences(p.process(event))]


def steps(finding: Finding) -> list[str]:
    return [e for e in finding.evidence if e.startswith("sequence ")]


def stack(name: str = "app-prod") -> dict[str, Any]:
    return {"stackName": name}
