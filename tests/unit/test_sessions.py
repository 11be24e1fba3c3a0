"""Session attribution on hand-built CloudTrail records."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from detector.core.agents import DEFAULT_MARKERS, AgentMarkerTable
from detector.core.events import CloudTrailEvent
from detector.core.parse import parse_record
from detector.core.sessions import SessionTracker
from detector.core.state_delta import encode_row
from detector.core.taxonomy import SessionKind
from detector.errors import StateError

ACCOUNT = "111122223333"
TABLE = AgentMarkerTable(DEFAULT_MARKERS)
CLI = (
    "aws-cli/2.35.24 ua/2.1 os/linux#6.8 md/arch#x86_64 lang/python#3.13.7 m/{flags} md/prompt#off"
)
PLAIN_CLI = CLI.format(flags="E,Z")
_ids = itertools.count()


def at(minute: int) -> str:
    return f"2026-03-02T10:{minute:02d}:00Z"


def record(identity: dict[str, Any], *, minute: int = 0, **fields: Any) -> CloudTrailEvent:
    data: dict[str, Any] = {
        "eventVersion": "1.11",
        "eventID": f"00000000-0000-0000-0000-{next(_ids):012d}",
        "eventTime": at(minute),
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": PLAIN_CLI,
        "recipientAccountId": ACCOUNT,
        "userIdentity": identity,
    }
    data.update(fields)
    return parse_record(data)


def iam_user(name: str, key: str = "AKIAEXAMPLEALICE0001") -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": f"AIDA{name.upper():0<16}",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "accountId": ACCOUNT,
        "accessKeyId": key,
        "userName": name,
    }


def role_session(
    role: str,
    session: str,
    key: str,
    *,
    created: str = at(0),
    path: str = "",
    source_identity: str | None = None,
    role_id: str = "AROAEXAMPLEROLE00001",
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "attributes": {"creationDate": created, "mfaAuthenticated": "false"},
        "sessionIssuer": {
            "type": "Role",
            "principalId": role_id,
            "arn": f"arn:aws:iam::{ACCOUNT}:role/{path}{role}",
            "accountId": ACCOUNT,
            "userName": role,
        },
    }
    if source_identity:
        context["sourceIdentity"] = source_identity
    return {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
        "accessKeyId": key,
        "sessionContext": context,
    }


def assume_role(
    caller: dict[str, Any],
    *,
    role: str,
    session: str,
    new_key: str,
    minute: int = 0,
    role_id: str = "AROAEXAMPLEROLE00001",
    source_identity: str | None = None,
    tags: dict[str, str] | None = None,
    transitive: list[str] | None = None,
    user_agent: str = PLAIN_CLI,
    error: str | None = None,
) -> CloudTrailEvent:
    request: dict[str, Any] = {
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
        "roleSessionName": session,
    }
    if tags:
        request["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    if transitive:
        request["transitiveTagKeys"] = transitive
    if source_identity:
        request["sourceIdentity"] = source_identity
    response: dict[str, Any] | None = {
        "credentials": {"accessKeyId": new_key, "expiration": "Mar 2, 2026, 11:00:00 AM"},
        "assumedRoleUser": {
            "assumedRoleId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        },
    }
    if source_identity and response is not None:
        response["sourceIdentity"] = source_identity
    fields: dict[str, Any] = {}
    if error:
        response = None
        fields["errorCode"] = error
    return record(
        caller,
        minute=minute,
        eventSource="sts.amazonaws.com",
        eventName="AssumeRole",
        userAgent=user_agent,
        requestParameters=request,
        responseElements=response,
        **fields,
    )


ALICE = iam_user("alice")
ALICE_ARN = ALICE["arn"]


def test_iam_user_session_key_and_id() -> None:
    tracker = SessionTracker(TABLE)
    first = tracker.observe(record(ALICE))
    again = tracker.observe(record(ALICE, minute=5, eventName="ListObjects"))
    other = tracker.observe(record(iam_user("alice", key="AKIAEXAMPLEALICE0002")))
    key = "\x1f".join((ACCOUNT, ALICE["principalId"], ALICE["accessKeyId"], ""))
    assert first.session_id == "ses-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    assert again is first  # nothing new: the same view object comes back
    assert other.session_id != first.session_id
    assert first.kind is SessionKind.HUMAN
    assert first.human == "alice"
    assert first.principal_arn == ALICE_ARN
    assert first.root_principal_arn == ALICE_ARN
    assert first.access_key_id == "AKIAEXAMPLEALICE0001"
    assert first.principal_type == "IAMUser"
    assert len(tracker) == 2


def test_session_ids_are_stable_across_trackers() -> None:
    event = record(role_session("deployer", "run-1", "ASIAEXAMPLEDEPLOY001"))
    assert SessionTracker(TABLE).observe(event).session_id == (
        SessionTracker(TABLE).observe(event).session_id
    )


def _chain(tracker: SessionTracker, *, parent_ua: str = PLAIN_CLI) -> tuple[str, str, str]:
    """alice -> role-a (source identity, tags) -> role-b; returns the three session ids."""
    user = tracker.observe(record(ALICE, userAgent=parent_ua))
    tracker.observe(
        assume_role(
            ALICE,
            role="role-a",
            session="alice-a",
            new_key="ASIAEXAMPLEROLEA0001",
            role_id="AROAEXAMPLEROLEA0001",
            source_identity="alice",
            tags={"Project": "atlas", "Team": "infra"},
            transitive=["Project"],
            minute=1,
            user_agent=parent_ua,
        )
    )
    first = role_session(
        "role-a",
        "alice-a",
        "ASIAEXAMPLEROLEA0001",
        created=at(1),
        role_id="AROAEXAMPLEROLEA0001",
        source_identity="alice",
    )
    hop_a = tracker.observe(record(first, minute=2))
    tracker.observe(
        assume_role(
            first,
            role="role-b",
            session="chained",
            new_key="ASIAEXAMPLEROLEB0001",
            role_id="AROAEXAMPLEROLEB0001",
            source_identity="alice",
            tags={"Stage": "dev"},
            minute=3,
        )
    )
    # The second hop's events carry no sourceIdentity here: it must come from the link.
    second = role_session(
        "role-b", "chained", "ASIAEXAMPLEROLEB0001", created=at(3), role_id="AROAEXAMPLEROLEB0001"
    )
    hop_b = tracker.observe(record(second, minute=4, eventName="DeleteBucket"))
    return user.session_id, hop_a.session_id, hop_b.session_id


def test_assume_role_chain_carries_source_identity_and_tags() -> None:
    tracker = SessionTracker(TABLE)
    user_id, a_id, b_id = _chain(tracker)
    hop_a, hop_b = tracker.get(a_id), tracker.get(b_id)
    assert hop_a is not None
    assert hop_b is not None
    for hop in (hop_a, hop_b):
        assert hop.kind is SessionKind.HUMAN
        assert hop.human == "alice"
        assert hop.root_principal_arn == ALICE_ARN
        assert hop.source_identity == "alice"
    assert hop_a.parent_session_id == user_id
    assert hop_b.parent_session_id == a_id
    assert dict(hop_a.tags) == {"Project": "atlas", "Team": "infra"}
    # Only the transitive tag travels to the next hop.
    assert dict(hop_b.tags) == {"Project": "atlas", "Stage": "dev"}
    assert hop_a.role_arn == f"arn:aws:iam::{ACCOUNT}:role/role-a"
    assert hop_b.session_name == "chained"
    assert f"credentials minted by AssumeRole in session {a_id}" in hop_b.evidence


def test_failed_assume_role_links_nothing() -> None:
    tracker = SessionTracker(TABLE)
    tracker.observe(
        assume_role(
            ALICE, role="r", session="s", new_key="ASIAEXAMPLEFAILED001", error="AccessDenied"
        )
    )
    child = tracker.observe(record(role_session("r", "s", "ASIAEXAMPLEFAILED001")))
    assert tracker.link("ASIAEXAMPLEFAILED001") is None
    assert child.parent_session_id is None
    assert child.kind is SessionKind.UNKNOWN


def test_child_seen_before_the_assume_role_is_bound_late() -> None:
    tracker = SessionTracker(TABLE)
    child = role_session("role-a", "alice-a", "ASIAEXAMPLELATE00001", created=at(1))
    early = tracker.observe(record(child, minute=2))
    assert early.kind is SessionKind.UNKNOWN
    assert early.root_principal_arn is None
    # The AssumeRole, signed by alice while an agent drove her CLI, arrives afterwards.
    tracker.observe(
        assume_role(
            ALICE,
            role="role-a",
            session="alice-a",
            new_key="ASIAEXAMPLELATE00001",
            minute=1,
            user_agent=CLI.format(flags="AN,E"),
        )
    )
    late = tracker.get(early.session_id)
    assert late is not None
    assert late.kind is SessionKind.AGENT
    assert late.agent == "claude-code"
    assert late.on_human_credentials
    assert late.human == "alice"
    assert late.root_principal_arn == ALICE_ARN
    # And its later events get the updated view.
    assert tracker.observe(record(child, minute=3)) is late


def test_parent_turning_agent_later_updates_its_children() -> None:
    tracker = SessionTracker(TABLE)
    _, a_id, b_id = _chain(tracker)
    assert tracker.get(b_id).kind is SessionKind.HUMAN  # type: ignore[union-attr]
    tracker.observe(record(ALICE, minute=9, userAgent=CLI.format(flags="AQ,E")))
    for session_id in (a_id, b_id):
        view = tracker.get(session_id)
        assert view is not None
        assert view.kind is SessionKind.AGENT
        assert view.agent == "kiro"
        assert view.on_human_credentials
        assert view.human == "alice"
        assert view.agent_confidence == "client-declared"


def test_agent_on_iam_user_keys() -> None:
    view = SessionTracker(TABLE).observe(record(ALICE, userAgent=CLI.format(flags="AN")))
    assert view.kind is SessionKind.AGENT
    assert view.on_human_credentials
    assert view.human == "alice"
    assert "user agent m/ flag AN (CLAUDECODE)" in view.evidence


SSO = role_session(
    "AWSReservedSSO_AdministratorAccess_0123456789abcdef",
    "alice@example.com",
    "ASIAEXAMPLESSO000001",
    path="aws-reserved/sso.amazonaws.com/eu-west-1/",
)


def test_sso_session_with_agent_marker_is_an_agent_on_human_credentials() -> None:
    tracker = SessionTracker(TABLE)
    before = tracker.observe(record(SSO))
    assert before.kind is SessionKind.HUMAN
    assert before.human == "alice@example.com"
    view = tracker.observe(record(SSO, minute=1, userAgent=CLI.format(flags="AQ,E,G,Z")))
    assert view.session_id == before.session_id
    assert view.kind is SessionKind.AGENT
    assert view.agent == "kiro"
    assert view.on_human_credentials
    assert view.human == "alice@example.com"
    assert view.evidence[0] == "user agent m/ flag AQ (KIRO_SESSION_ID)"
    # Sticky: a later plain CLI call does not undo it.
    assert tracker.observe(record(SSO, minute=2)).kind is SessionKind.AGENT


def test_managed_mcp_on_sso_credentials() -> None:
    identity = {**SSO, "invokedBy": "aws-mcp.amazonaws.com"}
    view = SessionTracker(TABLE).observe(
        record(identity, userAgent="AWS Internal", sourceIPAddress="aws-mcp.amazonaws.com")
    )
    assert view.kind is SessionKind.AGENT
    assert view.agent == "mcp:aws-mcp"
    assert view.agent_confidence == "aws-asserted"
    assert view.on_human_credentials


@pytest.mark.parametrize(
    "fields",
    [
        {"sessionCredentialFromConsole": "true", "userAgent": "AWS Internal"},
        {"userAgent": "signin.amazonaws.com"},
        {"userAgent": "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488 Linux/5.10]"},
    ],
)
def test_console_session_is_human(fields: dict[str, Any]) -> None:
    identity = role_session("Admin", "alice", "ASIAEXAMPLECONSOLE01")
    view = SessionTracker(TABLE).observe(record(identity, **fields))
    assert view.kind is SessionKind.HUMAN
    assert view.human == "alice"
    assert "console session" in view.evidence


def test_aws_login_credentials_make_an_agent_run_on_human_credentials() -> None:
    identity = role_session("Developer", "alice", "ASIAEXAMPLELOGIN001")
    tracker = SessionTracker(TABLE)
    view = tracker.observe(record(identity, userAgent=CLI.format(flags="AD,E")))
    assert view.kind is SessionKind.HUMAN
    view = tracker.observe(record(identity, minute=1, userAgent=CLI.format(flags="AD,AW")))
    assert view.kind is SessionKind.AGENT
    assert view.agent == "cursor"
    assert view.on_human_credentials
    assert view.human == "alice"


@pytest.mark.parametrize(
    ("identity", "fields"),
    [
        ({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, {}),
        (
            {"accountId": ACCOUNT, "invokedBy": "secretsmanager.amazonaws.com"},
            {"eventType": "AwsServiceEvent", "userAgent": "secretsmanager.amazonaws.com"},
        ),
        (
            {
                **role_session(
                    "AWSServiceRoleForRDS", "SLRManagement", "", path="aws-service-role/rds/"
                ),
                "invokedBy": "rds.amazonaws.com",
            },
            {"userAgent": "rds.amazonaws.com"},
        ),
        (role_session("web", "i-0dbc91f429e48eeed", "ASIAEXAMPLEINSTANCE1"), {}),
        (
            {
                **role_session("web", "i-0dbc91f429e48eeed", "ASIAEXAMPLEINSTANCE2"),
                "inScopeOf": {
                    "issuerType": "AWS::EC2::Instance",
                    "credentialsIssuedTo": f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0dbc91f4",
                },
            },
            {},
        ),
        (
            role_session("fn-role", "my-function", "ASIAEXAMPLELAMBDA01"),
            {"userAgent": "Boto3/1.34.0 md/Botocore#1.34.0 exec-env/AWS_Lambda_python3.12"},
        ),
    ],
)
def test_service_sessions(identity: dict[str, Any], fields: dict[str, Any]) -> None:
    view = SessionTracker(TABLE).observe(record(identity, **fields))
    assert view.kind is SessionKind.SERVICE
    assert view.human is None
    assert not view.on_human_credentials


def test_calls_made_on_a_callers_behalf_keep_the_callers_session() -> None:
    tracker = SessionTracker(TABLE)
    human = tracker.observe(record(ALICE, eventName="DeleteStack"))
    for service, agent_string in (
        ("cloudformation.amazonaws.com", "cloudformation.amazonaws.com"),
        ("AWS Internal", "AWS Internal"),
    ):
        view = tracker.observe(
            record(
                {**ALICE, "invokedBy": service},
                minute=1,
                userAgent=agent_string,
                sourceIPAddress=service,
            )
        )
        assert view.session_id == human.session_id
        assert view.kind is SessionKind.HUMAN
        assert f"calls made on its behalf by {service}" in view.evidence


def test_service_user_agent_does_not_reclassify_the_caller() -> None:
    tracker = SessionTracker(TABLE)
    identity = role_session("deployer", "run-7", "ASIAEXAMPLEDEPLOY007")
    assert tracker.observe(record(identity)).kind is SessionKind.UNKNOWN
    for user_agent in (
        "secretsmanager.amazonaws.com",
        "[S3Console/0.4, aws-internal/3]",
        "Boto3 exec-env/AWS_Lambda_python3.12",
    ):
        view = tracker.observe(
            record({**identity, "invokedBy": "lambda.amazonaws.com"}, userAgent=user_agent)
        )
        assert view.kind is SessionKind.UNKNOWN


def test_agent_session_stays_agent_through_service_calls() -> None:
    tracker = SessionTracker(TABLE)
    identity = role_session("deployer", "run-8", "ASIAEXAMPLEDEPLOY008")
    agent = tracker.observe(record(identity, userAgent=CLI.format(flags="AP")))
    view = tracker.observe(
        record(
            {**identity, "invokedBy": "cloudformation.amazonaws.com"},
            userAgent="cloudformation.amazonaws.com",
        )
    )
    assert view.session_id == agent.session_id
    assert view.kind is SessionKind.AGENT
    assert view.agent == "codex"
    assert not view.on_human_credentials


def test_agent_minted_credentials_belong_to_the_agent() -> None:
    tracker = SessionTracker(TABLE)
    identity = role_session("agent-runner", "task-42", "ASIAEXAMPLEAGENT0001")
    tracker.observe(record(identity, userAgent=CLI.format(flags="AV")))
    tracker.observe(
        assume_role(
            identity, role="deploy", session="task-42-deploy", new_key="ASIAEXAMPLEAGENT0002"
        )
    )
    child = tracker.observe(
        record(role_session("deploy", "task-42-deploy", "ASIAEXAMPLEAGENT0002"))
    )
    assert child.kind is SessionKind.AGENT
    assert child.agent == "copilot"
    assert not child.on_human_credentials
    assert any("inherited from session" in e for e in child.evidence)


def test_federation_token_of_an_iam_user() -> None:
    tracker = SessionTracker(TABLE)
    tracker.observe(
        record(
            ALICE,
            eventSource="sts.amazonaws.com",
            eventName="GetFederationToken",
            requestParameters={"name": "alice-fed"},
            responseElements={
                "credentials": {"accessKeyId": "ASIAEXAMPLEFEDERATE1"},
                "federatedUser": {
                    "federatedUserId": f"{ACCOUNT}:alice-fed",
                    "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/alice-fed",
                },
            },
        )
    )
    federated = {
        "type": "FederatedUser",
        "principalId": f"{ACCOUNT}:alice-fed",
        "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/alice-fed",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEFEDERATE1",
        "sessionContext": {
            "attributes": {"creationDate": at(0)},
            "sessionIssuer": {"type": "IAMUser", "arn": ALICE_ARN, "userName": "alice"},
        },
    }
    view = tracker.observe(record(federated, minute=1))
    assert view.kind is SessionKind.HUMAN
    assert view.human == "alice"
    assert view.root_principal_arn == ALICE_ARN
    assert view.session_name == "alice-fed"


def test_cross_account_copy_gives_way_to_the_callers_copy() -> None:
    tracker = SessionTracker(TABLE)
    role_account_copy = {
        "type": "AWSAccount",
        "principalId": "AIDAEXAMPLEALICE",
        "accountId": "444455556666",
    }
    tracker.observe(
        assume_role(role_account_copy, role="x-acct", session="s", new_key="ASIAEXAMPLEXACCT0001")
    )
    child = record(role_session("x-acct", "s", "ASIAEXAMPLEXACCT0001"), minute=1)
    assert tracker.observe(child).kind is SessionKind.UNKNOWN
    tracker.observe(assume_role(ALICE, role="x-acct", session="s", new_key="ASIAEXAMPLEXACCT0001"))
    view = tracker.observe(child)
    assert view.root_principal_arn == ALICE_ARN
    assert view.kind is SessionKind.HUMAN


def test_promote_is_sticky_and_keeps_known_names() -> None:
    tracker = SessionTracker(TABLE)
    identity = role_session("deployer", "run-9", "ASIAEXAMPLEDEPLOY009")
    plain = tracker.observe(record(identity))
    promoted = tracker.promote(plain.session_id, agent="task-bot", evidence="bound to scope s1")
    assert promoted.kind is SessionKind.AGENT
    assert promoted.agent == "task-bot"
    assert promoted.agent_confidence == "scope-binding"
    assert "bound to scope s1" in promoted.evidence
    assert tracker.observe(record(identity, minute=1)) is promoted
    # A marker seen later names the agent; promotion does not overwrite a known name.
    named = tracker.observe(record(identity, minute=2, userAgent=CLI.format(flags="AR")))
    assert named.agent == "opencode"
    assert tracker.promote(named.session_id, agent="other", evidence="again").agent == "opencode"
    with pytest.raises(KeyError):
        tracker.promote("ses-0000000000000000", agent=None, evidence="x")


def test_evict_idle_drops_sessions_and_links() -> None:
    tracker = SessionTracker(TABLE)
    _, a_id, b_id = _chain(tracker)
    late = tracker.observe(record(iam_user("bob", key="AKIAEXAMPLEBOB000001"), minute=30))
    assert tracker.evict_idle(datetime(2026, 3, 2, 10, 20, tzinfo=UTC)) == 3
    assert len(tracker) == 1
    assert tracker.get(a_id) is None
    assert tracker.get(b_id) is None
    assert tracker.get(late.session_id) is late
    assert tracker.link("ASIAEXAMPLEROLEA0001") is None


def test_max_sessions_drops_the_least_recently_seen() -> None:
    tracker = SessionTracker(TABLE, max_sessions=2)
    first = tracker.observe(record(iam_user("u1", key="AKIAEXAMPLEU1000001")))
    second = tracker.observe(record(iam_user("u2", key="AKIAEXAMPLEU2000001")))
    tracker.observe(record(iam_user("u1", key="AKIAEXAMPLEU1000001"), minute=1))
    third = tracker.observe(record(iam_user("u3", key="AKIAEXAMPLEU3000001"), minute=2))
    assert len(tracker) == 2
    assert tracker.get(second.session_id) is None
    assert tracker.get(first.session_id) is not None
    assert tracker.get(third.session_id) is third


def _views(tracker: SessionTracker, ids: list[str]) -> list[tuple[Any, dict[str, str]]]:
    views = [tracker.get(i) for i in ids]
    return [(v, dict(v.tags)) for v in views if v is not None]


def test_snapshot_restore_round_trip() -> None:
    tracker = SessionTracker(TABLE)
    user_id, a_id, b_id = _chain(tracker, parent_ua=CLI.format(flags="AQ"))
    sso = tracker.observe(record(SSO))
    tracker.promote(sso.session_id, agent="task-bot", evidence="bound to scope s1")
    ids = [user_id, a_id, b_id, sso.session_id]
    data = json.loads(json.dumps(tracker.snapshot()))
    restored = SessionTracker.restore(data, TABLE)
    assert len(restored) == len(tracker)
    assert _views(restored, ids) == _views(tracker, ids)
    assert restored.snapshot() == data
    # Links survive: a new hop minted from role-b after the restart still finds its root.
    hop_b = role_session(
        "role-b", "chained", "ASIAEXAMPLEROLEB0001", created=at(3), role_id="AROAEXAMPLEROLEB0001"
    )
    restored.observe(assume_role(hop_b, role="role-c", session="c", new_key="ASIAEXAMPLEROLEC0001"))
    hop_c = restored.observe(record(role_session("role-c", "c", "ASIAEXAMPLEROLEC0001")))
    assert hop_c.root_principal_arn == ALICE_ARN
    assert hop_c.agent == "kiro"


def test_an_agent_mark_stays_on_its_session_live_and_restored() -> None:
    # Sessions without marks share one empty set of them until their first mark arrives.
    tracker = SessionTracker(TABLE)
    first = tracker.observe(record(iam_user("u1", key="AKIAEXAMPLEU1000001")))
    kiro = tracker.observe(
        record(iam_user("u2", key="AKIAEXAMPLEU2000001"), userAgent=CLI.format(flags="AQ"))
    )
    bound = tracker.observe(record(iam_user("u3", key="AKIAEXAMPLEU3000001")))
    tracker.promote(bound.session_id, agent="task-bot", evidence="bound to scope s1")
    later = tracker.observe(record(iam_user("u4", key="AKIAEXAMPLEU4000001")))
    restored = SessionTracker.restore(json.loads(json.dumps(tracker.snapshot())), TABLE)
    for live in (tracker, restored):
        kinds = {
            name: view.kind if (view := live.get(session.session_id)) else None
            for name, session in {"u1": first, "u2": kiro, "u3": bound, "u4": later}.items()
        }
        assert kinds == {
            "u1": SessionKind.HUMAN,
            "u2": SessionKind.AGENT,
            "u3": SessionKind.AGENT,
            "u4": SessionKind.HUMAN,
        }
    fresh = restored.observe(record(iam_user("u5", key="AKIAEXAMPLEU5000001")))
    assert fresh.kind is SessionKind.HUMAN and fresh.agent is None


def test_a_session_row_is_the_record_as_it_was_when_taken() -> None:
    # The save encodes a cut's rows while later events change the records.
    tracker = SessionTracker(TABLE)
    tracker.track_changes()
    alice = tracker.observe(record(ALICE))
    tracker.observe(assume_role(ALICE, role="deploy", session="a", new_key="ASIAEXAMPLEKEY000008"))
    sessions, _ = tracker.changes()
    row = sessions[alice.session_id]
    assert row is not None
    before = orjson.dumps(tracker.snapshot()["sessions"][alice.session_id])
    tracker.observe(assume_role(ALICE, role="deploy", session="b", new_key="ASIAEXAMPLEKEY000009"))
    tracker.observe(record(ALICE, minute=5, userAgent=CLI.format(flags="AQ")))
    tracker.promote(alice.session_id, agent="task-bot", evidence="bound to scope s1")
    after = orjson.dumps(tracker.snapshot()["sessions"][alice.session_id])
    assert after != before
    assert encode_row(row) == before
    assert encode_row(tracker.changes()[0][alice.session_id]) == after


def test_restore_rejects_other_versions() -> None:
    with pytest.raises(StateError):
        SessionTracker.restore({"version": 99, "sessions": [], "links": []}, TABLE)
    with pytest.raises(StateError):
        SessionTracker.restore({"version": 1, "sessions": [{"key": []}], "links": []}, TABLE)


def _decoded(identity: dict[str, Any], **fields: Any) -> CloudTrailEvent:
    """An event as it arrives from a stream: decoded on its own, strings of its own."""
    raw = {"eventVersion": "1.11", "eventID": f"decoded-{next(_ids)}", "eventTime": at(0),
           "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
           "awsRegion": "us-east-1", "userAgent": PLAIN_CLI, "recipientAccountId": ACCOUNT,
           "userIdentity": identity, **fields}  # fmt: skip
    return parse_record(json.loads(json.dumps(raw)))


def test_sessions_of_one_role_hold_its_strings_once_and_keep_their_own_keys() -> None:
    tracker = SessionTracker(TABLE)
    first, second = (
        tracker.observe(_decoded(role_session("deploy", name, key)))
        for name, key in (("ci-1", "ASIAEXAMPLEKEY000001"), ("ci-2", "ASIAEXAMPLEKEY000002"))
    )
    assert first.session_id != second.session_id
    assert (first.access_key_id, second.access_key_id) == (
        "ASIAEXAMPLEKEY000001",
        "ASIAEXAMPLEKEY000002",
    )
    assert first.account_id == second.account_id == ACCOUNT
    assert first.account_id is second.account_id
    assert first.role_arn is second.role_arn
    assert first.principal_type is second.principal_type
    assert first.evidence == second.evidence and first.evidence is second.evidence
    # The index's keys too: each brought a copy of the account of its own.
    (first_key, second_key) = tracker._sessions
    assert first_key[0] is second_key[0] is first.account_id
    assert first_key[2] is first.access_key_id


def test_a_session_that_mints_credentials_gets_children_of_its_own() -> None:
    tracker = SessionTracker(TABLE)
    bob = iam_user("bob", key="AKIAEXAMPLEBOB000001")
    tracker.observe(record(bob))
    alice = tracker.observe(
        assume_role(ALICE, role="deploy", session="alice", new_key="ASIAEXAMPLEKEY000009")
    )
    sessions = tracker.snapshot()["sessions"]
    children = {sid: entry["children"] for sid, entry in sessions.items()}
    assert children[alice.session_id] == ["ASIAEXAMPLEKEY000009"]
    assert [sid for sid, kids in children.items() if kids] == [alice.session_id]
    restored = SessionTracker.restore(tracker.snapshot(), TABLE)
    assert restored.snapshot()["sessions"] == sessions
