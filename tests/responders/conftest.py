"""IAM in moto server mode, and responses shaped like the pipeline decides them."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from detector.core.findings import Response
from detector.state.sqlite import SqliteStateStore
from tests.moto_aws import REGION, Aws

ACCOUNT = "123456789012"  # moto's default account
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}
T0 = datetime(2026, 8, 24, 10, 0, 0, tzinfo=UTC)


@dataclass
class Iam:
    endpoint: str
    iam: Any
    sts: Any

    def role(self, name: str, *, path: str = "/") -> dict[str, Any]:
        role: dict[str, Any] = self.iam.create_role(
            RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(TRUST)
        )["Role"]
        return role

    def session(self, role: dict[str, Any], name: str, source_identity: str | None = None) -> str:
        """Assume the role; the session's principalId (its `aws:userid`)."""
        extra = {"SourceIdentity": source_identity} if source_identity else {}
        assumed = self.sts.assume_role(RoleArn=role["Arn"], RoleSessionName=name, **extra)
        user_id: str = assumed["AssumedRoleUser"]["AssumedRoleId"]
        return user_id

    def policy(self, role: str, name: str) -> dict[str, Any]:
        document: dict[str, Any] = self.iam.get_role_policy(RoleName=role, PolicyName=name)[
            "PolicyDocument"
        ]
        return document


@pytest.fixture
def moto_iam(aws: Aws) -> Iam:
    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=aws.endpoint)

    return Iam(aws.endpoint, client("iam"), client("sts"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def set_auth(endpoint: str, count: float) -> None:
    """moto checks signatures and IAM policies after `count` more requests (inf: never)."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=str(count).encode(),
        method="POST",
        # Not form-encoded, or the server reads the body as a form and finds no number.
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def agent_response(
    role: dict[str, Any],
    session_name: str,
    user_id: str | None,
    *,
    source_identity: str | None = None,
    issued_at: datetime = T0,
    on_human_credentials: bool = False,
    dry_run: bool = False,
    session_id: str = "ses-agent-1",
) -> Response:
    return Response(
        action="revoke-session",
        session_id=session_id,
        event_id="11111111-2222-3333-4444-555555555555",
        event_time=issued_at + timedelta(minutes=5),
        dry_run=dry_run,
        reason="critical destructive-action: cloudformation:DeleteStack",
        scope="ce-4821-fix",
        agent="kiro",
        principal=f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/{session_name}",
        role_arn=role["Arn"],
        session_name=session_name,
        source_identity=source_identity,
        access_key_id="ASIAEXAMPLEAGENT0001",
        issued_at=issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        on_human_credentials=on_human_credentials,
        human="alice",
        principal_id=user_id,
        account_id=ACCOUNT,
        principal_type="AssumedRole",
    )


def renamed(response: Response, **changes: Any) -> Response:
    return replace(response, **changes)
