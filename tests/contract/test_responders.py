"""Every Responder passes detector.testing.conformance.check_responder against IAM in moto
server mode (one server for the module), the responses shaped as the pipeline decides them."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from detector.adapters import load_adapters
from detector.core.findings import Response
from detector.responders.access_key import DisableAccessKeyResponder, DisableAccessKeySettings
from detector.responders.base import RESPONDERS, Responder
from detector.responders.revoke_session import RevokeSessionResponder, RevokeSessionSettings
from detector.responders.role_sessions import (
    RevokeRoleSessionsResponder,
    RevokeRoleSessionsSettings,
)
from detector.state.sqlite import SqliteStateStore
from detector.testing.conformance import ResponderUnderTest, check_responder
from tests.moto_aws import REGION, Aws, aws, moto_endpoint
from tests.responders.conftest import ACCOUNT, TRUST, agent_response

__all__ = ["aws", "moto_endpoint"]
pytestmark = pytest.mark.integration
load_adapters()

OTHER_ACCOUNT = "999999999999"  # outside every responder's allow_accounts
COMMON: dict[str, Any] = {"region": REGION, "allow_accounts": (ACCOUNT,)}


def _iam(endpoint: str) -> Any:
    return boto3.client("iam", region_name=REGION, endpoint_url=endpoint)


def _role_response(endpoint: str, role_name: str) -> Response:
    iam = _iam(endpoint)
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    sts = boto3.client("sts", region_name=REGION, endpoint_url=endpoint)
    assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="agent-6f1c")
    user_id = assumed["AssumedRoleUser"]["AssumedRoleId"]
    # Issued now: the responders run on the wall clock, and a session whose credentials
    # have already expired needs no deny.
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return agent_response(
        role, "agent-6f1c", user_id, session_id=f"ses-{role_name}", issued_at=issued
    )


def _outside(response: Response) -> Response:
    def other(arn: str | None) -> str | None:
        return arn.replace(ACCOUNT, OTHER_ACCOUNT) if arn else arn

    return replace(
        response,
        account_id=OTHER_ACCOUNT,
        role_arn=other(response.role_arn),
        principal=other(response.principal),
        session_id=f"{response.session_id}-outside",
    )


Case = Callable[[str], tuple[Callable[[str], Responder], Response]]


def _revoke_session(endpoint: str) -> tuple[Callable[[str], Responder], Response]:
    def make(url: str) -> Responder:
        settings = RevokeSessionSettings(
            endpoint_url=url, allow_roles=("arn:aws:iam::*:role/AgentConf*",), **COMMON
        )
        return RevokeSessionResponder("revoke-session", settings)

    return make, _role_response(endpoint, "AgentConfSession")


def _revoke_role_sessions(endpoint: str) -> tuple[Callable[[str], Responder], Response]:
    def make(url: str) -> Responder:
        settings = RevokeRoleSessionsSettings(
            endpoint_url=url,
            roles=("arn:aws:iam::*:role/AgentConfRole*",),
            allow_roles=("arn:aws:iam::*:role/AgentConfRole*",),
            **COMMON,
        )
        return RevokeRoleSessionsResponder("revoke-role-sessions", settings)

    # It widens a revoke-session response to every older session of an agent-only role.
    return make, _role_response(endpoint, "AgentConfRole")


def _disable_access_key(endpoint: str) -> tuple[Callable[[str], Responder], Response]:
    iam = _iam(endpoint)
    iam.create_user(UserName="conf-dana")
    key = iam.create_access_key(UserName="conf-dana")["AccessKey"]["AccessKeyId"]

    def make(url: str) -> Responder:
        settings = DisableAccessKeySettings(
            endpoint_url=url, allow_users=("arn:aws:iam::*:user/conf-*",), **COMMON
        )
        return DisableAccessKeyResponder("disable-access-key", settings)

    response = replace(
        agent_response({"RoleName": "-", "Arn": ""}, "-", None, session_id="ses-conf-key"),
        action="disable-access-key",
        role_arn=None,
        session_name=None,
        principal=f"arn:aws:iam::{ACCOUNT}:user/conf-dana",
        principal_type="IAMUser",
        access_key_id=key,
    )
    return make, response


CASES: dict[str, Case] = {
    "revoke-session": _revoke_session,
    "revoke-role-sessions": _revoke_role_sessions,
    "disable-access-key": _disable_access_key,
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
def dead_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_every_registered_responder_has_a_conformance_case() -> None:
    uncovered = sorted(set(RESPONDERS) - set(CASES))
    assert not uncovered, f"responders without a conformance case: {uncovered}"
    assert not sorted(set(CASES) - set(RESPONDERS)), "cases for responders no longer registered"


@pytest.mark.parametrize("kind", sorted(RESPONDERS))
async def test_registered_responder(
    kind: str, aws: Aws, dead_endpoint: str, store: SqliteStateStore
) -> None:
    moto_endpoint = aws.endpoint
    if kind not in CASES:
        pytest.fail(f"responder {kind!r} has no conformance case in CASES")
    make, response = CASES[kind](moto_endpoint)
    assert (
        type(make(dead_endpoint)).required_permissions == RESPONDERS.get(kind).required_permissions
    )
    await check_responder(
        ResponderUnderTest(
            make=make,
            endpoint=moto_endpoint,
            dead_endpoint=dead_endpoint,
            response=response,
            outside=_outside(response),
            store=store,
        )
    )
