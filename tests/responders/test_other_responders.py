"""disable-access-key and revoke-role-sessions against IAM in moto."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from detector.config import load_settings
from detector.core import revocation_policy as rp
from detector.core.iam_eval import denies
from detector.errors import ConfigError
from detector.responders.access_key import DisableAccessKeyResponder, DisableAccessKeySettings
from detector.responders.base import Outcome
from detector.responders.build import build_responders
from detector.responders.role_sessions import (
    POLICY_NAME,
    RevokeRoleSessionsResponder,
    RevokeRoleSessionsSettings,
)
from tests.moto_aws import REGION
from tests.responders.conftest import ACCOUNT, T0, Iam, agent_response

pytestmark = pytest.mark.integration
COMMON: dict[str, Any] = {"region": REGION, "allow_accounts": (ACCOUNT,)}


async def test_disable_access_key_deactivates_only_that_key(moto_iam: Iam) -> None:
    moto_iam.iam.create_user(UserName="dana")
    used = moto_iam.iam.create_access_key(UserName="dana")["AccessKey"]["AccessKeyId"]
    spare = moto_iam.iam.create_access_key(UserName="dana")["AccessKey"]["AccessKeyId"]
    settings = DisableAccessKeySettings(
        endpoint_url=moto_iam.endpoint, allow_users=("arn:aws:iam::*:user/*",), **COMMON
    )
    responder = DisableAccessKeyResponder("disable-access-key", settings)
    await responder.open()
    response = replace(
        agent_response({"RoleName": "-", "Arn": ""}, "-", None),
        action="disable-access-key",
        role_arn=None,
        session_name=None,
        principal=f"arn:aws:iam::{ACCOUNT}:user/dana",
        principal_type="IAMUser",
        access_key_id=used,
    )

    first = await responder.respond(response)
    again = await responder.respond(response)

    assert first.outcome is Outcome.APPLIED and again.outcome is Outcome.ALREADY_APPLIED
    keys = moto_iam.iam.list_access_keys(UserName="dana")["AccessKeyMetadata"]
    assert {k["AccessKeyId"]: k["Status"] for k in keys} == {used: "Inactive", spare: "Active"}
    assert responder.guardrails.refusal(response, own_identities=(), applied_last_hour=0) is None


async def test_revoke_role_sessions_denies_every_older_session_of_that_role(
    moto_iam: Iam,
) -> None:
    role = moto_iam.role("AgentOnlyRole")
    user_id = moto_iam.session(role, "agent-6f1c")
    settings = RevokeRoleSessionsSettings(
        endpoint_url=moto_iam.endpoint, roles=("arn:aws:iam::*:role/AgentOnly*",), **COMMON
    )
    clock_now = T0 + timedelta(minutes=6)
    responder = RevokeRoleSessionsResponder(
        "revoke-role-sessions", settings, clock=lambda: clock_now
    )
    await responder.open()
    response = agent_response(role, "agent-6f1c", user_id)
    other_role = replace(response, role_arn=f"arn:aws:iam::{ACCOUNT}:role/Shared")

    assert responder.accepts(response) and not responder.accepts(other_role)
    first = await responder.respond(response)
    again = await responder.respond(response)

    assert first.outcome is Outcome.APPLIED and again.outcome is Outcome.ALREADY_APPLIED
    written = moto_iam.policy("AgentOnlyRole", POLICY_NAME)
    assert denies(written, {"aws:userid": "AROAANY:someone", "aws:TokenIssueTime": rp.iso(T0)})
    later = rp.iso(clock_now + timedelta(seconds=1))
    assert not denies(written, {"aws:userid": "AROAANY:someone", "aws:TokenIssueTime": later})


def test_responders_are_built_from_the_config_and_revoke_role_sessions_needs_roles(
    tmp_path: Any,
) -> None:
    path = tmp_path / "trailguard.yaml"
    path.write_text(
        "responses:\n"
        "  enabled: true\n"
        "  responders:\n"
        "    - type: revoke-session\n"
        "      allow_accounts: ['111122223333']\n"
        "      allow_roles: ['arn:aws:iam::111122223333:role/Agent*']\n"
        "    - type: disable-access-key\n"
    )
    responders = build_responders(load_settings(path, {}))
    assert [r.name for r in responders] == ["revoke-session", "disable-access-key"]

    path.write_text("responses:\n  responders:\n    - type: revoke-role-sessions\n")
    with pytest.raises(ConfigError, match=r"responses.responders\[0\].roles: required"):
        build_responders(load_settings(path, {}))
    path.write_text("responses:\n  responders:\n    - type: revoke-session\n      regoin: x\n")
    with pytest.raises(ConfigError, match=r"responses.responders\[0\].regoin"):
        build_responders(load_settings(path, {}))
    path.write_text("responses:\n  responders:\n    - type: revoke-everything\n")
    with pytest.raises(ConfigError, match="unknown responder"):
        build_responders(load_settings(path, {}))
