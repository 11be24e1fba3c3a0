"""revoke-session against IAM in moto: the written policy, evaluated, hits one session only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from detector.core import revocation_policy as rp
from detector.core.iam_eval import denies
from detector.responders.base import Outcome, ResponderError
from detector.responders.revoke_session import RevokeSessionResponder, RevokeSessionSettings
from tests.moto_aws import REGION
from tests.responders.conftest import ACCOUNT, T0, Iam, agent_response, set_auth

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def responder(endpoint: str, clock: Clock | None = None, **settings: Any) -> RevokeSessionResponder:
    options: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region": REGION,
        "allow_accounts": (ACCOUNT,),
        "allow_roles": ("*",),
    }
    options.update(settings)
    return RevokeSessionResponder(
        "revoke-session",
        RevokeSessionSettings(**options),
        clock=clock or Clock(T0 + timedelta(minutes=6)),
    )


async def test_the_policy_denies_the_agent_session_only(moto_iam: Iam) -> None:
    role = moto_iam.role("AgentRole")
    agent = moto_iam.session(role, "agent-6f1c", source_identity="agent-6f1c")
    second = moto_iam.session(role, "agent-9a41", source_identity="agent-9a41")
    person = moto_iam.session(role, "alice@example.com")
    revoker = responder(moto_iam.endpoint)
    await revoker.open()

    outcome = await revoker.respond(
        agent_response(role, "agent-6f1c", agent, source_identity="agent-6f1c")
    )

    assert outcome.outcome is Outcome.APPLIED
    written = moto_iam.policy("AgentRole", rp.POLICY_NAME)
    assert written == outcome.policy
    issued = rp.iso(T0)
    assert denies(
        written,
        {"aws:userid": agent, "aws:SourceIdentity": "agent-6f1c", "aws:TokenIssueTime": issued},
    )
    assert not denies(
        written,
        {"aws:userid": second, "aws:SourceIdentity": "agent-9a41", "aws:TokenIssueTime": issued},
    )
    assert not denies(written, {"aws:userid": person, "aws:TokenIssueTime": issued})
    assert agent.startswith(role["RoleId"] + ":")
    assert rp.policy_size(written) <= rp.ROLE_INLINE_BUDGET
    assert outcome.verified_at is not None and outcome.key is not None


async def test_an_agent_on_the_persons_own_session_name_spares_the_persons_other_sessions(
    moto_iam: Iam,
) -> None:
    role = moto_iam.role("AWSAdministratorAccessShared")
    user_id = moto_iam.session(role, "alice@example.com")
    agent_issued = T0
    revoker = responder(moto_iam.endpoint)
    await revoker.open()

    outcome = await revoker.respond(
        agent_response(
            role, "alice@example.com", user_id, issued_at=agent_issued, on_human_credentials=True
        )
    )

    assert outcome.outcome is Outcome.APPLIED
    written = moto_iam.policy(role["RoleName"], rp.POLICY_NAME)
    agents_credentials = {"aws:userid": user_id, "aws:TokenIssueTime": rp.iso(agent_issued)}
    persons_later_login = {
        "aws:userid": user_id,
        "aws:TokenIssueTime": rp.iso(agent_issued + timedelta(minutes=30)),
    }
    persons_earlier_login = {
        "aws:userid": user_id,
        "aws:TokenIssueTime": rp.iso(agent_issued - timedelta(hours=2)),
    }
    assert denies(written, agents_credentials)
    assert not denies(written, persons_later_login)
    assert not denies(written, persons_earlier_login)


async def test_replaying_the_same_response_changes_nothing(moto_iam: Iam) -> None:
    role = moto_iam.role("AgentRole")
    agent = moto_iam.session(role, "agent-6f1c")
    revoker = responder(moto_iam.endpoint)
    await revoker.open()
    response = agent_response(role, "agent-6f1c", agent)

    first = await revoker.respond(response)
    before = moto_iam.policy("AgentRole", rp.POLICY_NAME)
    again = await revoker.respond(response)

    assert first.outcome is Outcome.APPLIED
    assert again.outcome is Outcome.ALREADY_APPLIED
    assert moto_iam.policy("AgentRole", rp.POLICY_NAME) == before


async def test_other_inline_policies_are_kept_and_counted_against_the_budget(
    moto_iam: Iam,
) -> None:
    role = moto_iam.role("AgentRole")
    agent = moto_iam.session(role, "agent-6f1c")
    actions = [f"s3:Get{'x' * 40}{i}" for i in range(220)]
    statement = {"Sid": "Big", "Effect": "Allow", "Action": actions, "Resource": "*"}
    big = {"Version": "2012-10-17", "Statement": [statement]}
    moto_iam.iam.put_role_policy(
        RoleName="AgentRole", PolicyName="Existing", PolicyDocument=rp.json.dumps(big)
    )
    revoker = responder(moto_iam.endpoint)
    await revoker.open()

    with pytest.raises(ResponderError) as failed:
        await revoker.respond(agent_response(role, "agent-6f1c", agent))

    assert failed.value.retriable is False and failed.value.code == "PolicyBudgetFull"
    names = moto_iam.iam.list_role_policies(RoleName="AgentRole")["PolicyNames"]
    assert names == ["Existing"]


async def test_revocations_many_times_the_budget_stay_within_it_by_pruning(
    moto_iam: Iam,
) -> None:
    role = moto_iam.role("AgentRole")
    clock = Clock(T0)
    revoker = responder(moto_iam.endpoint, clock)
    await revoker.open()
    sizes: list[int] = []
    pruned = 0
    for n in range(150):
        issued = T0 + timedelta(minutes=4 * n)
        clock.now = issued + timedelta(minutes=5)
        name = f"agent-{n:04d}-6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
        user_id = f"{role['RoleId']}:{name}"
        response = agent_response(
            role, name, user_id, source_identity=name[:40], issued_at=issued, session_id=f"s{n}"
        )
        outcome = await revoker.respond(response)
        assert outcome.outcome is Outcome.APPLIED, outcome.reason
        pruned += outcome.pruned
        written = moto_iam.policy("AgentRole", rp.POLICY_NAME)
        sizes.append(rp.policy_size(written))
        assert denies(written, {"aws:userid": user_id, "aws:SourceIdentity": name[:40]})
    assert max(sizes) <= rp.ROLE_INLINE_BUDGET
    # Enough revocations that, unpruned, they would not fit twice over.
    assert (sizes[1] - sizes[0]) * len(sizes) > 2 * rp.ROLE_INLINE_BUDGET
    assert pruned > 90
    # The oldest sessions' entries are gone; the newest are all still there.
    final = rp.parse_document(moto_iam.policy("AgentRole", rp.POLICY_NAME))
    assert 0 < len(final.entries) < 60
    print(f"\n150 revocations: largest policy {max(sizes)} chars, {pruned} entries pruned")


async def test_moto_ignores_the_userid_condition_and_denies_every_session(moto_iam: Iam) -> None:
    """Why the tests evaluate the policy themselves: moto's IAM enforcement drops the
    `Condition` of a deny, so it refuses the session that was not revoked as well."""
    role = moto_iam.role("AgentRole")
    moto_iam.iam.put_role_policy(
        RoleName="AgentRole",
        PolicyName="AllowListRoles",
        PolicyDocument=rp.json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}]}
        ),
    )  # fmt: skip
    agent = moto_iam.sts.assume_role(RoleArn=role["Arn"], RoleSessionName="agent-6f1c")
    other = moto_iam.sts.assume_role(RoleArn=role["Arn"], RoleSessionName="agent-9a41")
    revoker = responder(moto_iam.endpoint)
    await revoker.open()
    agent_id = agent["AssumedRoleUser"]["AssumedRoleId"]
    other_id = other["AssumedRoleUser"]["AssumedRoleId"]
    response = agent_response(role, "agent-6f1c", agent_id)
    assert (await revoker.respond(response)).outcome is Outcome.APPLIED
    written = moto_iam.policy("AgentRole", rp.POLICY_NAME)
    assert denies(written, {"aws:userid": agent_id}, action="iam:ListRoles")
    assert not denies(written, {"aws:userid": other_id}, action="iam:ListRoles")

    set_auth(moto_iam.endpoint, 0)
    try:
        agent_denied = _denied(_client_for(moto_iam.endpoint, agent))
        other_denied = _denied(_client_for(moto_iam.endpoint, other))
    finally:
        set_auth(moto_iam.endpoint, float("inf"))
    assert agent_denied
    assert other_denied  # AWS would let this session through; moto does not


def _client_for(endpoint: str, assumed: dict[str, Any]) -> Any:
    creds = assumed["Credentials"]
    return boto3.client(
        "iam",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _denied(client: Any) -> bool:
    try:
        client.list_roles()
    except ClientError as exc:
        return bool(exc.response["Error"]["Code"] == "AccessDenied")
    return False


async def test_sessions_without_a_narrow_key_are_refused(moto_iam: Iam) -> None:
    role = moto_iam.role("AgentRole")
    user_id = moto_iam.session(role, "alice@example.com")
    revoker = responder(moto_iam.endpoint)
    await revoker.open()
    shared_no_time = agent_response(role, "alice@example.com", user_id, on_human_credentials=True)
    shared_no_time = rp_replace(shared_no_time, issued_at=None)
    long_term = rp_replace(
        shared_no_time,
        role_arn=None,
        principal=f"arn:aws:iam::{ACCOUNT}:user/dana",
        principal_type="IAMUser",
        access_key_id="AKIAEXAMPLEUSER00001",
    )
    outcomes = [await revoker.respond(r) for r in (shared_no_time, long_term)]

    assert [o.outcome for o in outcomes] == [Outcome.REFUSED] * 2
    assert "issue time is unknown" in outcomes[0].reason
    assert "disable-access-key" in outcomes[1].reason
    assert moto_iam.iam.list_role_policies(RoleName="AgentRole")["PolicyNames"] == []


def rp_replace(response: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(response, **changes)


async def test_an_identity_center_session_is_denied_through_its_permission_set(
    moto_iam: Iam,
) -> None:
    sso = boto3.client("sso-admin", region_name=REGION, endpoint_url=moto_iam.endpoint)
    instance = sso.list_instances()["Instances"][0]["InstanceArn"]
    permission_set = sso.create_permission_set(Name="AdministratorAccess", InstanceArn=instance)[
        "PermissionSet"
    ]["PermissionSetArn"]
    own = {"Sid": "Own", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
    sso.put_inline_policy_to_permission_set(
        InstanceArn=instance,
        PermissionSetArn=permission_set,
        InlinePolicy=rp.json.dumps({"Version": "2012-10-17", "Statement": [own]}),
    )
    role_name = "AWSReservedSSO_AdministratorAccess_5e2b7c1d9a0f4e38"
    role = {
        "RoleName": role_name,
        "Arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{role_name}",
    }
    user_id = "AROARBCDEFGHSSOADMIN1:alice@example.com"
    revoker = responder(moto_iam.endpoint)
    await revoker.open()
    response = agent_response(
        role, "alice@example.com", user_id, on_human_credentials=True, issued_at=T0
    )

    outcome = await revoker.respond(response)
    again = await revoker.respond(response)

    assert outcome.outcome is Outcome.APPLIED, outcome.reason
    assert again.outcome is Outcome.ALREADY_APPLIED
    assert outcome.extra["provisioning_status"]
    written = rp.json.loads(
        sso.get_inline_policy_for_permission_set(
            InstanceArn=instance, PermissionSetArn=permission_set
        )["InlinePolicy"]
    )
    assert own in written["Statement"]  # the permission set's own statement is kept
    agent = {"aws:userid": user_id, "aws:TokenIssueTime": rp.iso(T0)}
    alice_later = {"aws:userid": user_id, "aws:TokenIssueTime": rp.iso(T0 + timedelta(hours=1))}
    assert denies(written, agent)
    assert not denies(written, alice_later)


async def test_an_iam_users_session_is_denied_on_the_user_within_its_issue_time(
    moto_iam: Iam,
) -> None:
    user = moto_iam.iam.create_user(UserName="dana")["User"]
    revoker = responder(moto_iam.endpoint, allow_users=("*",))
    await revoker.open()
    response = rp_replace(
        agent_response({"RoleName": "-", "Arn": ""}, "-", None, issued_at=T0),
        role_arn=None,
        session_name=None,
        principal=user["Arn"],
        principal_type="IAMUser",
        principal_id=user["UserId"],
        access_key_id="ASIAEXAMPLEDANA00001",
    )

    outcome = await revoker.respond(response)

    assert outcome.outcome is Outcome.APPLIED, outcome.reason
    written = moto_iam.iam.get_user_policy(UserName="dana", PolicyName=rp.POLICY_NAME)[
        "PolicyDocument"
    ]
    assert rp.policy_size(written) <= rp.USER_INLINE_BUDGET
    session = {"aws:userid": user["UserId"], "aws:TokenIssueTime": rp.iso(T0)}
    later = {"aws:userid": user["UserId"], "aws:TokenIssueTime": rp.iso(T0 + timedelta(hours=1))}
    long_term_key = {"aws:userid": user["UserId"]}  # no TokenIssueTime in the context
    assert denies(written, session)
    assert not denies(written, later)
    assert not denies(written, long_term_key)
