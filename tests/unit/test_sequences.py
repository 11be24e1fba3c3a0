"""The four suspicious-sequence patterns, each with the calls that must not make one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from detector.core.events import CloudTrailEvent
from detector.core.policy import SeverityPolicy
from detector.core.sequences import PATTERNS
from detector.core.taxonomy import Severity
from tests.unit.sequence_events import (
    AGENT,
    HUMAN,
    NEW_KEY,
    agent_creates_key,
    at,
    call,
    pipeline,
    role_session,
    run,
    sequences,
    stack,
    steps,
    user,
)

# --- delete then recreate ----------------------------------------------------------------------


def test_an_agent_deleting_and_recreating_a_stack_is_critical(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    delete = call("d1", "cloudformation:DeleteStack", at(7, 15), identity=AGENT, params=stack())
    create = call("c1", "cloudformation:CreateStack", at(10, 30), identity=AGENT, params=stack())
    assert run(p, delete) == []
    result = p.process(create)
    [found] = sequences(result)
    assert found.severity is Severity.CRITICAL
    assert found.event_id == "c1" and found.session_kind.value == "agent"
    assert "delete then recreate" in found.reason and "3 min 15 s later" in found.reason
    assert steps(found) == [
        "sequence delete-recreate step 1/2: 2025-12-08T10:07:15Z cloudformation:DeleteStack"
        " on arn:aws:cloudformation:us-east-1:111122223333:stack/app-prod (event d1)",
        "sequence delete-recreate step 2/2: 2025-12-08T10:10:30Z cloudformation:CreateStack"
        " on arn:aws:cloudformation:us-east-1:111122223333:stack/app-prod (event c1)",
    ]
    assert "suspicious-sequence" in {a.kind for a in result.alerts}


def test_a_stack_recreated_with_its_generated_id_is_the_same_stack(tmp_path: Path) -> None:
    arn = "arn:aws:cloudformation:us-east-1:111122223333:stack/app-prod/1c2d3e4f-aaaa"
    found = run(
        pipeline(tmp_path),
        call("d1", "cloudformation:DeleteStack", at(1), identity=AGENT, params={"stackName": arn}),
        call(
            "c1",
            "cloudformation:CreateStack",
            at(2),
            identity=AGENT,
            params=stack(),
            response={"stackId": arn.replace("1c2d3e4f-aaaa", "99887766-bbbb")},
        ),
    )
    assert [f.event_id for f in found] == ["c1"]


def test_a_person_recreating_a_resource_is_recorded_but_pages_no_one(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    p.process(call("d1", "dynamodb:DeleteTable", at(1), params={"tableName": "cache"}))
    result = p.process(call("c1", "dynamodb:CreateTable", at(3), params={"tableName": "cache"}))
    [found] = sequences(result)
    assert found.severity is Severity.LOW and found.session_kind.value == "human"
    assert "suspicious-sequence" not in {a.kind for a in result.alerts}


def test_rebuilding_what_the_session_created_itself_is_not_a_sequence(tmp_path: Path) -> None:
    """Terraform's create, destroy, create of its own resources is ordinary IaC churn."""
    table = {"tableName": "scratch"}
    found = run(
        pipeline(tmp_path),
        call("c0", "dynamodb:CreateTable", at(1), identity=AGENT, params=table),
        call("d1", "dynamodb:DeleteTable", at(5), identity=AGENT, params=table),
        call("c1", "dynamodb:CreateTable", at(6), identity=AGENT, params=table),
    )
    assert found == []


def test_an_aws_services_own_calls_tell_no_story(tmp_path: Path) -> None:
    service = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    found = run(
        pipeline(tmp_path),
        call("d1", "dynamodb:DeleteTable", at(1), identity=service, params={"tableName": "t"}),
        call("c1", "dynamodb:CreateTable", at(2), identity=service, params={"tableName": "t"}),
    )
    assert found == []


def test_what_follows_a_delete_must_create_the_same_kind_of_thing(tmp_path: Path) -> None:
    role = {"roleName": "app-role", "policyName": "inline"}
    found = run(
        pipeline(tmp_path),
        call("d1", "iam:DeleteRolePolicy", at(1), identity=AGENT, params=role),
        call("c1", "iam:CreateRole", at(2), identity=AGENT, params={"roleName": "app-role"}),
        call("d2", "cloudformation:DeleteStack", at(3), identity=AGENT, params=stack("other")),
        call("u1", "cloudformation:UpdateStack", at(4), identity=AGENT, params=stack("other")),
        call("c2", "dynamodb:CreateTable", at(5), identity=AGENT, params={"tableName": "other"}),
    )
    assert found == []


def test_a_recreate_after_the_window_is_not_a_sequence(tmp_path: Path) -> None:
    found = run(
        pipeline(tmp_path),
        call("d1", "cloudformation:DeleteStack", at(0, hour=8), identity=AGENT, params=stack()),
        call("c1", "cloudformation:CreateStack", at(1, hour=9), identity=AGENT, params=stack()),
    )
    assert found == []


def test_a_recreate_inside_the_task_scope_is_what_the_task_allowed(tmp_path: Path) -> None:
    scopes = """
scopes:
  - name: rebuild
    match: {source_identity: "agent-claude-*"}
    allow:
      actions: ["cloudformation:*"]
"""
    found = run(
        pipeline(tmp_path, scopes),
        call("d1", "cloudformation:DeleteStack", at(1), identity=AGENT, params=stack()),
        call("c1", "cloudformation:CreateStack", at(2), identity=AGENT, params=stack()),
    )
    assert [f.severity for f in found] == [Severity.LOW]


# --- a privilege change, then its use ----------------------------------------------------------


def test_a_key_created_by_an_agent_and_then_used_is_flagged_on_the_key(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    created = agent_creates_key("k1", at(1))
    used = call("u1", "s3:ListBuckets", at(3), identity=user("backup", NEW_KEY))
    assert run(p, created) == []
    [found] = sequences(p.process(used))
    assert found.severity is Severity.HIGH  # the change was an agent's
    assert "iam:CreateAccessKey for access key AKIANEWKEY0000000001" in found.reason
    [grant, use] = steps(found)
    assert "iam:CreateAccessKey" in grant and "(event k1, session ses-" in grant
    assert use.endswith("s3:ListAllMyBuckets (event u1)")


def test_a_person_granting_a_colleague_admin_which_is_then_used(tmp_path: Path) -> None:
    ops = user("ops")
    found = run(
        pipeline(tmp_path),
        call(
            "g1",
            "iam:AttachUserPolicy",
            at(1),
            params={"userName": "ops", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        ),
        call("r1", "ec2:DescribeInstances", at(2), identity=ops),
        call("w1", "ec2:StopInstances", at(3), identity=ops, params={"instanceIds": ["i-1"]}),
    )
    assert [(f.event_id, f.severity) for f in found] == [("r1", Severity.MEDIUM)]


def test_a_policy_is_used_only_by_the_calls_it_allows(tmp_path: Path) -> None:
    document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*"}]}'
    ops = user("ops")
    found = run(
        pipeline(tmp_path),
        call(
            "g1",
            "iam:PutUserPolicy",
            at(1),
            params={"userName": "ops", "policyName": "read", "policyDocument": document},
        ),
        call("w1", "ec2:StopInstances", at(2), identity=ops, params={"instanceIds": ["i-1"]}),
        call("d1", "s3:GetObject", at(3), identity=ops, error="AccessDenied"),
        call("r1", "s3:GetObject", at(4), identity=ops, params={"bucketName": "b", "key": "k"}),
    )
    assert [f.event_id for f in found] == ["r1"]


def test_assuming_a_role_whose_trust_was_just_rewritten(tmp_path: Path) -> None:
    trust = '{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}'
    assume = {"roleArn": "arn:aws:iam::111122223333:role/deploy", "roleSessionName": "x"}
    found = run(
        pipeline(tmp_path),
        call(
            "t1",
            "iam:UpdateAssumeRolePolicy",
            at(1),
            identity=AGENT,
            params={"roleName": "deploy", "policyDocument": trust},
        ),
        call("a1", "sts:AssumeRole", at(2), identity=user("mallory"), params=assume),
    )
    assert [(f.event_id, f.severity) for f in found] == [("a1", Severity.HIGH)]


def test_a_person_granting_to_a_role_it_just_created_is_set_up(tmp_path: Path) -> None:
    """Terraform creates a role, attaches a policy and an instance uses it: not escalation.
    An agent doing the same is, so the allowance is for people and services only."""
    policy = "arn:aws:iam::aws:policy/AdministratorAccess"

    def story(identity: dict[str, Any]) -> list[str]:
        found = run(
            pipeline(tmp_path),
            call("c1", "iam:CreateRole", at(1), identity=identity, params={"roleName": "svc"}),
            call(
                "g1",
                "iam:AttachRolePolicy",
                at(1),
                identity=identity,
                params={"roleName": "svc", "policyArn": policy},
            ),
            call(
                "u1",
                "ec2:StopInstances",
                at(3),
                identity=role_session("svc", "i-0abc"),
                params={"instanceIds": ["i-1"]},
            ),
        )
        return [f.event_id for f in found]

    assert story(HUMAN) == []
    assert story(AGENT) == ["u1"]


def test_a_person_changing_a_managed_policy_is_not_taken_as_escalation(tmp_path: Path) -> None:
    found = run(
        pipeline(tmp_path),
        call(
            "g1",
            "iam:SetDefaultPolicyVersion",
            at(1),
            params={"policyArn": "arn:aws:iam::111122223333:policy/app", "versionId": "v3"},
        ),
        call("w1", "ec2:StopInstances", at(2), params={"instanceIds": ["i-1"]}),
    )
    assert found == []


# --- reconnaissance, then a write --------------------------------------------------------------

RECON = [
    "ec2:DescribeInstances", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups", "iam:ListRoles", "iam:ListUsers", "s3:ListBuckets",
    "lambda:ListFunctions20150331", "rds:DescribeDBInstances", "secretsmanager:ListSecrets",
]  # fmt: skip


def _recon(identity: dict[str, Any], start: int = 0) -> list[CloudTrailEvent]:
    return [
        call(f"r{i}", action, at(1, start + i * 3), identity=identity)
        for i, action in enumerate(RECON)
    ]


def test_an_agent_surveying_the_account_and_then_writing(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    assert run(p, *_recon(AGENT)) == []
    write = call("w1", "ec2:RebootInstances", at(3), identity=AGENT, params={"instanceIds": ["i"]})
    [found] = sequences(p.process(write))
    assert found.severity is Severity.HIGH
    assert "10 reconnaissance calls (10 distinct, 0 denied) within 27 s" in found.reason
    assert len(steps(found)) == 6  # five of the calls, then the write
    again = call("w2", "ec2:RebootInstances", at(4), identity=AGENT, params={"instanceIds": ["j"]})
    assert sequences(p.process(again)) == []  # one burst, one sequence


def test_a_survey_that_goes_on_between_writes_is_one_burst(tmp_path: Path) -> None:
    """Terraform reads and writes in turn for the whole apply: one sequence, not one a write."""
    p = pipeline(tmp_path)
    events = _recon(AGENT)
    for i in range(20):
        events.append(call(f"x{i}", RECON[i % 10], at(2, i * 2), identity=AGENT))
        events.append(call(f"w{i}", "sqs:SendMessage", at(2, i * 2 + 1), identity=AGENT))
    assert [f.event_id for f in run(p, *events)] == ["w0"]


def test_reconnaissance_then_a_destroy_by_an_agent_is_critical(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    run(p, *_recon(AGENT))
    delete = call("w1", "s3:DeleteBucket", at(2), identity=AGENT, params={"bucketName": "logs"})
    assert [f.severity for f in sequences(p.process(delete))] == [Severity.CRITICAL]


def test_a_person_surveying_then_writing_is_recorded_low(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    run(p, *_recon(HUMAN))
    write = call("w1", "ec2:RebootInstances", at(3), params={"instanceIds": ["i"]})
    assert [f.severity for f in sequences(p.process(write))] == [Severity.LOW]


def test_polling_one_action_is_not_reconnaissance(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    polls = [call(f"p{i}", "ec2:DescribeInstances", at(1, i), identity=AGENT) for i in range(30)]
    write = call("w1", "ec2:StartInstances", at(2), identity=AGENT, params={"instanceIds": ["i"]})
    assert run(p, *polls, write) == []


def test_reads_spread_wider_than_the_recon_window_are_not_a_burst(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    reads = [
        call(f"r{i}", action, at(i * 2), identity=AGENT) for i, action in enumerate(RECON)
    ]  # one every two minutes: never ten within five
    write = call("w1", "ec2:RebootInstances", at(25), identity=AGENT, params={"instanceIds": ["i"]})
    assert run(p, *reads, write) == []


def test_denied_calls_then_a_write(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    denied = [
        call(f"d{i}", "iam:ListUsers", at(1, i), identity=AGENT, error="AccessDenied")
        for i in range(5)
    ]
    write = call("w1", "s3:PutObject", at(2), identity=AGENT, params={"bucketName": "x"})
    [found] = run(p, *denied, write)
    assert "5 reconnaissance calls (1 distinct, 5 denied)" in found.reason


# --- logging off, then a write -----------------------------------------------------------------


def test_an_agent_stopping_the_trail_then_writing_is_critical(tmp_path: Path) -> None:
    found = run(
        pipeline(tmp_path),
        call("s1", "cloudtrail:StopLogging", at(1), identity=AGENT, params={"name": "org"}),
        call("w1", "s3:PutObject", at(2), identity=AGENT, params={"bucketName": "x", "key": "k"}),
        call("w2", "s3:PutObject", at(3), identity=AGENT, params={"bucketName": "x", "key": "l"}),
    )
    assert [(f.event_id, f.severity) for f in found] == [("w1", Severity.CRITICAL)]
    assert "turned logging or detection off (cloudtrail:StopLogging" in found[0].reason


def test_each_blinding_call_the_catalogue_knows_counts(tmp_path: Path) -> None:
    selectors = {
        "trailName": "org",
        "eventSelectors": [{"readWriteType": "ReadOnly", "includeManagementEvents": True}],
    }
    blinding: list[tuple[str, dict[str, Any]]] = [
        ("cloudtrail:DeleteTrail", {"name": "org"}),
        ("cloudtrail:PutEventSelectors", selectors),
        ("ec2:DeleteFlowLogs", {"flowLogIds": ["fl-1"]}),
        ("guardduty:DeleteDetector", {"detectorId": "d1"}),
        (
            "guardduty:UpdateDetector",
            {"detectorId": "d1", "findingPublishingFrequency": "SIX_HOURS"},
        ),
    ]
    for index, (action, params) in enumerate(blinding):
        person = user(f"u{index}")
        found = run(
            pipeline(tmp_path),
            call(f"b{index}", action, at(1), identity=person, params=params),
            call(f"w{index}", "sqs:DeleteQueue", at(2), identity=person),
        )
        assert [f.severity for f in found] == [Severity.MEDIUM], action


def test_turning_logging_on_or_tearing_down_ones_own_trail_is_not(tmp_path: Path) -> None:
    trail = {"name": "scratch"}
    found = run(
        pipeline(tmp_path),
        call("c1", "cloudtrail:CreateTrail", at(1), params=trail),
        call("s1", "cloudtrail:StartLogging", at(1, 5), params=trail),
        call("w1", "s3:PutObject", at(2), params={"bucketName": "x", "key": "k"}),
        call("c2", "ec2:CreateFlowLogs", at(3), params={"resourceIds": ["vpc-1"]}),
        call("s2", "cloudtrail:StopLogging", at(4), params=trail),
        call("d2", "ec2:DeleteFlowLogs", at(5), params={"flowLogIds": ["fl-1"]}),
        call("w2", "s3:PutObject", at(6), params={"bucketName": "x", "key": "l"}),
    )
    assert found == []


def test_a_refused_or_failed_write_does_not_follow_the_blinding(tmp_path: Path) -> None:
    found = run(
        pipeline(tmp_path),
        call("s1", "cloudtrail:StopLogging", at(1), params={"name": "org"}),
        call("w1", "s3:PutObject", at(2), params={"bucketName": "x"}, error="AccessDenied"),
        call("w2", "s3:PutObject", at(3), params={"bucketName": "x"}, error="NoSuchBucket"),
    )
    assert found == []


# --- severity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_pattern_has_a_severity_for_people_and_for_agents(pattern: str) -> None:
    policy = SeverityPolicy()
    person = policy.sequence(pattern, agent=False, in_scope=False, ends_in_destroy=True)
    agent = policy.sequence(pattern, agent=True, in_scope=False, ends_in_destroy=False)
    assert person < Severity.HIGH <= agent
    assert policy.sequence(pattern, agent=True, in_scope=False, ends_in_destroy=True) is (
        Severity.CRITICAL
    )
    assert policy.sequence(pattern, agent=True, in_scope=True, ends_in_destroy=True) is (
        policy.in_scope_risky
    )
