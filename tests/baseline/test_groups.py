"""The group chain an event backs off through, and the names evidence uses for groups."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from detector.baseline.groups import group_chain, label, level
from detector.baseline.train import TrainingRecorder
from detector.config import Settings
from detector.core.parse import parse_record
from tests.baseline.history import ACCOUNT, call, training_events
from tests.unit.test_pipeline import SCOPES, _agent_event

AT = datetime(2025, 3, 3, 12, tzinfo=UTC)


def test_a_role_session_backs_off_to_its_role_then_its_account() -> None:
    [event] = training_events([call("ci-deployer", "run-1", "sts:GetCallerIdentity", AT)])
    chain = group_chain(event.ctx)
    assert chain[0] == f"session:{event.ctx.session.session_id}"
    assert chain[1:] == (
        f"role:arn:aws:iam::{ACCOUNT}:role/ci-deployer",
        f"account:{ACCOUNT}",
        "global",
    )


def test_an_iam_user_is_grouped_by_its_arn() -> None:
    record = call("x", "y", "s3:ListBuckets", AT)
    record["userIdentity"] = {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
        "accountId": ACCOUNT,
        "userName": "alice",
    }
    [event] = training_events([record])
    assert group_chain(event.ctx)[1:] == (
        f"user:arn:aws:iam::{ACCOUNT}:user/alice",
        f"account:{ACCOUNT}",
        "global",
    )


def test_an_agent_session_with_a_scope_has_its_kind_and_scope(tmp_path: Path) -> None:
    from detector.wiring import build_pipeline

    path = tmp_path / "scopes.yaml"
    path.write_text(SCOPES)
    pipeline = build_pipeline(Settings(), scopes_path=path)
    collected = TrainingRecorder()
    pipeline.baselines = (collected,)
    pipeline.process(
        _agent_event("e1", "PutObject", requestParameters={"bucketName": "docs-site", "key": "a"})
    )
    [event] = collected.events
    chain = group_chain(event.ctx)
    levels = [level(g) for g in chain]
    assert levels == ["session", "role", "agent", "scope", "account", "global"]
    assert chain[2] == f"agent:{event.ctx.session.agent}"
    assert chain[3] == "scope:docs-refresh"


def test_an_aws_service_without_a_principal_is_grouped_by_its_host() -> None:
    record = {
        "eventVersion": "1.08",
        "eventID": "svc-1",
        "eventTime": "2025-03-03T12:00:00Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "AWS Internal",
        "userAgent": "AWS Internal",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"},
    }
    [event] = training_events([parse_record(record) and record])
    assert "service:cloudtrail.amazonaws.com" in group_chain(event.ctx)


def test_labels_are_what_on_call_recognises() -> None:
    assert label(f"role:arn:aws:iam::{ACCOUNT}:role/path/ci-deployer") == "ci-deployer"
    assert label(f"user:arn:aws:iam::{ACCOUNT}:user/alice") == "alice"
    assert label(f"user:arn:aws:iam::{ACCOUNT}:root") == f"the root user of {ACCOUNT}"
    assert label("agent:claude-code") == "agent claude-code"
    assert label(f"account:{ACCOUNT}") == f"account {ACCOUNT}"
    assert label("global") == "all principals"
