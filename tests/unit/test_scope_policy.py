"""The scope → IAM policy generator, checked by evaluating its JSON against request contexts."""

from __future__ import annotations

from typing import Any

import pytest

from detector.catalog_loader import load_catalog
from detector.core.iam_eval import decide
from detector.core.scope import Scope, parse_scopes
from detector.core.scope_policy import (
    PolicyTooLarge,
    policy_text,
    session_policy,
    trust_policy,
)
from detector.tasks.policy import scope_session_policy

EU = {"aws:RequestedRegion": "eu-west-1", "aws:CurrentTime": "2026-12-01T10:00:00Z"}
US = {"aws:RequestedRegion": "us-east-1", "aws:CurrentTime": "2026-12-01T10:00:00Z"}
STACK = "arn:aws:cloudformation:eu-west-1:111122223333:stack/ce-4821-fix/abc"
OTHER_STACK = "arn:aws:cloudformation:eu-west-1:111122223333:stack/prod-api/abc"


def scope(allow: dict[str, Any], deny: dict[str, Any] | None = None, **extra: Any) -> Scope:
    raw: dict[str, Any] = {"name": "ce-4821-fix", "match": {"agent": "kiro"}, "allow": allow}
    if deny is not None:
        raw["deny"] = deny
    raw.update(extra)
    return parse_scopes({"scopes": [raw]}, source="scopes.yaml").scopes[0]


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog()


FIX = {
    "actions": ["cloudformation:*", "s3:GetObject", "s3:ListBucket", "iam:GetRole"],
    "regions": ["eu-west-1"],
    "resources": ["arn:aws:cloudformation:eu-west-1:*:stack/ce-4821*", "arn:aws:s3:::ce-*"],
}


def test_in_scope_call_is_allowed(catalog: Any) -> None:
    policy = scope_session_policy(scope(FIX), catalog)
    assert (
        decide(policy, action="cloudformation:UpdateStack", resource=STACK, context=EU) == "allow"
    )
    assert decide(policy, action="s3:GetObject", resource="arn:aws:s3:::ce-logs", context=EU) == (
        "allow"
    )


def test_out_of_scope_action_resource_and_region_are_denied(catalog: Any) -> None:
    policy = scope_session_policy(scope(FIX), catalog)
    assert decide(policy, action="ec2:RunInstances", resource="*", context=EU) == "implicit-deny"
    assert decide(
        policy, action="cloudformation:UpdateStack", resource=OTHER_STACK, context=EU
    ) == ("implicit-deny")
    assert decide(policy, action="cloudformation:UpdateStack", resource=STACK, context=US) == (
        "implicit-deny"
    )


def test_tier0_destroy_the_allow_glob_covers_is_denied_explicitly(catalog: Any) -> None:
    policy = scope_session_policy(scope(FIX), catalog)
    assert decide(policy, action="cloudformation:DeleteStack", resource=STACK, context=EU) == (
        "explicit-deny"
    )
    # DeleteChangeSet is a tier-2 delete the glob covers: the compression must not deny it.
    assert decide(policy, action="cloudformation:DeleteChangeSet", resource=STACK, context=EU) == (
        "allow"
    )


def test_tier0_action_the_scope_names_exactly_is_allowed(catalog: Any) -> None:
    allow = dict(FIX, actions=["cloudformation:*", "cloudformation:DeleteStack"])
    policy = scope_session_policy(scope(allow), catalog)
    assert decide(policy, action="cloudformation:DeleteStack", resource=STACK, context=EU) == (
        "allow"
    )
    assert decide(policy, action="cloudformation:DeleteStackSet", resource="*", context=EU) == (
        "explicit-deny"
    )


def test_scope_denies_become_explicit_denies(catalog: Any) -> None:
    target = scope(
        {"actions": ["s3:*"]},
        deny={"actions": ["s3:DeleteObject*"], "resources": ["arn:aws:s3:::prod-*"]},
    )
    policy = scope_session_policy(target, catalog)
    assert decide(policy, action="s3:PutObject", resource="arn:aws:s3:::ce-x/k", context=US) == (
        "allow"
    )
    assert decide(policy, action="s3:DeleteObjectVersion", resource="*", context=US) == (
        "explicit-deny"
    )
    assert decide(policy, action="s3:GetObject", resource="arn:aws:s3:::prod-db/k", context=US) == (
        "explicit-deny"
    )
    assert decide(policy, action="s3:DeleteBucket", resource="arn:aws:s3:::ce-x", context=US) == (
        "explicit-deny"
    )


def test_global_services_are_not_region_bound(catalog: Any) -> None:
    policy = scope_session_policy(scope(dict(FIX, resources=["*"])), catalog)
    assert decide(policy, action="iam:GetRole", context=US) == "allow"
    assert decide(policy, action="s3:GetObject", context=US) == "implicit-deny"


def test_expiry_is_a_time_condition(catalog: Any) -> None:
    policy = scope_session_policy(scope(FIX, expires="2026-12-01T12:00:00Z"), catalog)
    later = dict(EU, **{"aws:CurrentTime": "2026-12-01T12:30:00Z"})
    assert decide(policy, action="cloudformation:UpdateStack", resource=STACK, context=EU) == (
        "allow"
    )
    assert decide(policy, action="cloudformation:UpdateStack", resource=STACK, context=later) == (
        "implicit-deny"
    )


def test_allow_everything_still_denies_every_tier0_action_within_the_limit(catalog: Any) -> None:
    policy = scope_session_policy(scope({"actions": ["*"]}), catalog)
    assert len(policy_text(policy)) <= 2048
    for action in ("cloudtrail:StopLogging", "iam:AttachRolePolicy", "rds:DeleteDBCluster"):
        assert decide(policy, action=action, context=US) == "explicit-deny", action
    # Folded globs reach no lower-tier action of the service.
    assert decide(policy, action="iam:AttachRolePolicy", context=US) == "explicit-deny"
    assert decide(policy, action="iam:PutRolePermissionsBoundary", context=US) == "allow"
    assert decide(policy, action="ec2:DescribeInstances", context=US) == "allow"


def test_subsumed_globs_are_dropped(catalog: Any) -> None:
    policy = scope_session_policy(
        scope({"actions": ["s3:Get*", "s3:GetObject", "S3:GET*", "s3:*"], "regions": ["eu-*"]}),
        catalog,
    )
    assert policy["Statement"][0]["Action"] == "s3:*"


def test_too_large_says_how_to_split() -> None:
    many = [f"ec2:Describe{n}" for n in ("Instances", "Volumes", "Vpcs", "Subnets")] * 1
    target = scope(
        {"actions": many, "resources": [f"arn:aws:ec2:*:*:instance/i-{i:040d}" for i in range(60)]}
    )
    with pytest.raises(PolicyTooLarge, match=r"over AWS's 2048-character limit.*Split the scope"):
        session_policy(target, services=["ec2"], actions_of=lambda s: (), tier_of=lambda a: 3)


def test_generated_policy_uses_the_injected_catalogue() -> None:
    names = {"svc": ("Read", "Wipe", "WipeAll", "WipeOne")}
    tiers = {"svc:Wipe": 0, "svc:WipeAll": 0, "svc:WipeOne": 2}
    policy = session_policy(
        scope({"actions": ["svc:*"]}),
        services=["svc"],
        actions_of=lambda s: names.get(s, ()),
        tier_of=lambda a: tiers.get(a, 3),
    )
    # svc:Wipe* would also deny the tier-2 WipeOne, so both are listed one by one.
    assert policy["Statement"][-1]["Action"] == ["svc:Wipe", "svc:WipeAll"]
    assert decide(policy, action="svc:WipeOne") == "allow"


def test_trust_policy_requires_source_identity_and_session_name() -> None:
    policy = trust_policy(principal_arn="arn:aws:iam::111122223333:role/broker")
    statement = policy["Statement"][0]
    assert set(statement["Action"]) == {"sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"}
    ok = {"sts:SourceIdentity": "agent-kiro-t1", "sts:RoleSessionName": "agent-kiro-t1"}
    assert decide(policy, action="sts:AssumeRole", context=ok) == "allow"
    bad = dict(ok, **{"sts:SourceIdentity": "alice"})
    assert decide(policy, action="sts:AssumeRole", context=bad) == "implicit-deny"
    assert decide(policy, action="sts:AssumeRole", context={}) == "implicit-deny"


def test_decide_handles_not_action_and_not_resource() -> None:
    policy = {
        "Statement": [
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::ok*"},
        ]
    }
    assert decide(policy, action="iam:GetRole") == "implicit-deny"
    assert decide(policy, action="s3:GetObject", resource="arn:aws:s3:::ok/k") == "allow"
    assert decide(policy, action="s3:GetObject", resource="arn:aws:s3:::no/k") == "explicit-deny"
