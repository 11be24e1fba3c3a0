"""Scope binding, evaluation and explanation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest

from detector.core.scope import (
    GLOBAL_SERVICES,
    VIOLATION_KINDS,
    GlobSet,
    Scope,
    ScopeSet,
    ScopeVerdict,
    Violation,
    parse_scopes,
)
from detector.core.session_view import SessionView
from detector.core.taxonomy import SessionKind

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "123456789012"


def session(**fields: Any) -> SessionView:
    tags = fields.pop("tags", {})
    return SessionView(
        session_id="s-1", kind=SessionKind.AGENT, tags=MappingProxyType(tags), **fields
    )


def scope(
    *,
    match: dict[str, Any] | None = None,
    allow: dict[str, Any] | None = None,
    deny: dict[str, Any] | None = None,
    **extra: Any,
) -> Scope:
    raw: dict[str, Any] = {
        "name": extra.pop("name", "ce-4821-fix"),
        "match": match or {"source_identity": "agent-kiro-*"},
        "allow": allow or {"actions": ["*"]},
        **extra,
    }
    if deny is not None:
        raw["deny"] = deny
    return parse_scopes({"scopes": [raw]}, source="scopes.yaml").scopes[0]


def check(
    target: Scope,
    actions: Sequence[str] = ("ce:GetCostForecast",),
    resources: Sequence[str] = (),
    region: str = "us-east-1",
    account: str | None = ACCOUNT,
    at: datetime = AT,
) -> ScopeVerdict:
    return target.evaluate(
        actions=actions, resources=resources, region=region, account=account, at=at
    )


def kinds(verdict: ScopeVerdict) -> list[str]:
    return [v.kind for v in verdict.violations]


# -- binding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "pattern", "attribute", "hit", "miss"),
    [
        ("source_identity", "agent-kiro-*", "source_identity", "agent-kiro-42", "dev-kiro-42"),
        ("role_arn", "arn:aws:iam::*:role/agent-*", "role_arn",
         "arn:aws:iam::123456789012:role/agent-ci", "arn:aws:iam::123456789012:role/admin"),
        ("session_name", "task-48??", "session_name", "task-4821", "task-482"),
        ("principal_arn", "arn:aws:sts::*:assumed-role/agent/*", "principal_arn",
         "arn:aws:sts::123456789012:assumed-role/agent/t1",
         "arn:aws:sts::123456789012:assumed-role/human/t1"),
        ("agent", "kiro", "agent", "kiro", "claude-code"),
        ("account", "1234567890??", "account_id", "123456789012", "999999999999"),
    ],
)  # fmt: skip
def test_binds_by_each_match_field(
    field: str, pattern: str, attribute: str, hit: str, miss: str
) -> None:
    target = scope(match={field: pattern})
    assert target.matches(session(**{attribute: hit}))
    assert not target.matches(session(**{attribute: miss}))
    # A session that lacks the field never matches, even a bare "*".
    assert not scope(match={field: "*"}).matches(session())


def test_match_globs_are_case_sensitive_except_agent() -> None:
    assert not scope(match={"session_name": "Task-*"}).matches(session(session_name="task-1"))
    assert scope(match={"agent": "Claude-*"}).matches(session(agent="claude-code"))


def test_every_match_field_must_match() -> None:
    target = scope(match={"source_identity": "agent-*", "account": ACCOUNT, "agent": "kiro"})
    assert target.matches(session(source_identity="agent-1", account_id=ACCOUNT, agent="kiro"))
    assert not target.matches(session(source_identity="agent-1", account_id=ACCOUNT, agent="q"))
    assert not target.matches(session(source_identity="agent-1", agent="kiro"))


def test_tags_must_be_present_and_match() -> None:
    target = scope(match={"tags": {"task": "CE-48*", "team": "finops"}})
    assert target.matches(session(tags={"task": "CE-4821", "team": "finops", "x": "y"}))
    assert not target.matches(session(tags={"task": "ce-4821", "team": "finops"}))
    assert not target.matches(session(tags={"task": "CE-4821"}))
    assert not target.matches(session())


def test_bind_returns_first_match_in_file_order() -> None:
    scopes = parse_scopes(
        {
            "scopes": [
                {
                    "name": "narrow",
                    "match": {"session_name": "task-1"},
                    "allow": {"actions": ["*"]},
                },
                {"name": "broad", "match": {"agent": "kiro"}, "allow": {"actions": ["*"]}},
                {"name": "also", "match": {"agent": "*"}, "allow": {"actions": ["*"]}},
            ]
        },
        source="scopes.yaml",
    )
    assert len(scopes) == 3
    assert [s.name for s in scopes.scopes] == ["narrow", "broad", "also"]
    first = scopes.bind(session(agent="kiro", session_name="task-1"))
    assert first is not None and first.name == "narrow"
    second = scopes.bind(session(agent="kiro", session_name="task-2"))
    assert second is not None and second.name == "broad"
    third = scopes.bind(session(agent="q"))
    assert third is not None and third.name == "also"
    assert scopes.bind(session(source_identity="x")) is None
    assert scopes.get("broad") is second


def test_empty_scope_set_binds_nothing() -> None:
    empty = parse_scopes({"scopes": []}, source="scopes.yaml")
    assert len(empty) == 0
    assert empty.bind(session(agent="kiro")) is None
    assert len(ScopeSet()) == 0


def test_explain_match_names_each_field() -> None:
    lines = scope(match={"agent": "kiro", "tags": {"task": "x"}}).explain_match(session(agent="q"))
    assert lines == [
        "match.agent kiro: 'q' does not match",
        "match.tags.task x: session has no value; no match",
    ]


# -- actions -------------------------------------------------------------------------------


def test_allowed_actions_pass_and_others_violate() -> None:
    target = scope(allow={"actions": ["ce:Get*", "lambda:UpdateFunctionCode"]})
    assert check(target, ["ce:GetCostForecast"]).in_scope
    assert check(target, ["lambda:UpdateFunctionCode"]).in_scope
    verdict = check(target, ["cloudformation:DeleteStack"])
    assert not verdict.in_scope
    assert verdict.scope == "ce-4821-fix"
    assert verdict.violations == (
        Violation(
            kind="out-of-scope-action",
            reason="cloudformation:DeleteStack is not among the actions scope ce-4821-fix "
            "allows (ce:Get*, lambda:UpdateFunctionCode)",
            subject="cloudformation:DeleteStack",
        ),
    )


def test_action_globs_are_case_insensitive() -> None:
    target = scope(allow={"actions": ["CE:get*"]}, deny={"actions": ["s3:deleteobject"]})
    assert check(target, ["ce:GetCostForecast"]).in_scope
    assert kinds(check(target, ["S3:DeleteObject"])) == ["out-of-scope-action"]


def test_glob_question_mark_is_one_character() -> None:
    target = scope(allow={"actions": ["ec2:Describe?pc"]})
    assert check(target, ["ec2:DescribeVpc"]).in_scope
    assert not check(target, ["ec2:DescribeVpcs"]).in_scope


def test_star_alone_allows_everything_and_star_service_matches_any_service() -> None:
    everything = scope(allow={"actions": ["*"]})
    assert check(everything, ["iam:CreateUser", "s3:PutObject"]).in_scope
    describes = scope(allow={"actions": ["*:Describe*"]})
    assert check(describes, ["ec2:DescribeInstances", "rds:DescribeDBInstances"]).in_scope
    assert not check(describes, ["ec2:RunInstances"]).in_scope


def test_deny_wins_over_allow() -> None:
    target = scope(allow={"actions": ["*"]}, deny={"actions": ["*:Delete*"]})
    verdict = check(target, ["cloudformation:DeleteStack"])
    assert verdict.violations[0].reason == (
        "cloudformation:DeleteStack is denied by scope ce-4821-fix (deny *:Delete*)"
    )
    assert check(target, ["cloudformation:CreateStack"]).in_scope


def test_every_action_of_an_event_is_checked() -> None:
    target = scope(allow={"actions": ["s3:GetObject"]})
    verdict = check(target, ["s3:GetObject", "s3:PutObject"])
    assert [v.subject for v in verdict.violations] == ["s3:PutObject"]
    both = check(scope(allow={"actions": ["ce:*"]}), ["s3:GetObject", "s3:PutObject"])
    assert [v.subject for v in both.violations] == ["s3:GetObject", "s3:PutObject"]
    denied = check(
        scope(allow={"actions": ["s3:*"]}, deny={"actions": ["s3:Put*"]}),
        ["s3:GetObject", "s3:PutObject"],
    )
    assert [v.subject for v in denied.violations] == ["s3:PutObject"]


def test_event_without_actions_cannot_violate_the_action_check() -> None:
    target = scope(allow={"actions": ["ce:Get*"]}, deny={"actions": ["*"]})
    assert check(target, []).in_scope


def test_long_allow_lists_are_shortened_in_reasons() -> None:
    actions = [f"ce:Get{i}" for i in range(9)]
    verdict = check(scope(allow={"actions": actions}), ["s3:GetObject"])
    assert verdict.violations[0].reason.endswith("ce:Get4, ce:Get5, +3 more)")


# -- resources -----------------------------------------------------------------------------

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:ce-forecast"
OTHER = "arn:aws:lambda:us-east-1:123456789012:function:billing"


def test_every_resource_must_match_an_allow_glob() -> None:
    target = scope(allow={"actions": ["*"], "resources": ["arn:aws:lambda:*:*:function:ce-*"]})
    assert check(target, resources=[LAMBDA]).in_scope
    verdict = check(target, resources=[LAMBDA, OTHER])
    assert kinds(verdict) == ["out-of-scope-resource"]
    assert verdict.violations[0].subject == OTHER
    assert "arn:aws:lambda:*:*:function:ce-*" in verdict.violations[0].reason


def test_event_without_resources_is_not_a_resource_violation() -> None:
    target = scope(allow={"actions": ["*"], "resources": ["arn:aws:s3:::bucket/*"]})
    assert check(target, resources=[]).in_scope


def test_resource_globs_are_case_sensitive() -> None:
    target = scope(allow={"actions": ["*"], "resources": ["arn:aws:lambda:*:*:function:CE-*"]})
    assert not check(target, resources=[LAMBDA]).in_scope


def test_any_denied_resource_is_a_violation_even_without_allow_resources() -> None:
    target = scope(deny={"resources": ["arn:aws:s3:::prod-*"]})
    verdict = check(target, resources=["arn:aws:s3:::dev-logs", "arn:aws:s3:::prod-db/dump"])
    assert kinds(verdict) == ["out-of-scope-resource"]
    assert verdict.violations[0].reason == (
        "arn:aws:s3:::prod-db/dump is denied by scope ce-4821-fix (deny arn:aws:s3:::prod-*)"
    )


# -- regions, accounts, expiry -------------------------------------------------------------


def test_region_must_match_allow_regions() -> None:
    target = scope(allow={"actions": ["*"], "regions": ["us-east-1", "eu-*"]})
    assert check(target, ["lambda:GetFunction"], region="eu-west-1").in_scope
    verdict = check(target, ["lambda:GetFunction"], region="ap-south-1")
    assert kinds(verdict) == ["out-of-scope-region"]
    assert verdict.violations[0].subject == "ap-south-1"
    assert "us-east-1, eu-*" in verdict.violations[0].reason


def test_global_services_are_exempt_from_the_region_check() -> None:
    target = scope(allow={"actions": ["*"], "regions": ["eu-west-1"]})
    assert check(target, ["iam:GetRole"], region="us-east-1").in_scope
    assert check(target, ["IAM:GetRole", "sts:GetCallerIdentity"], region="us-east-1").in_scope
    # One regional service among the actions brings the check back.
    assert not check(target, ["iam:PassRole", "lambda:CreateFunction"]).in_scope
    # With no action the service is unknown, so the region is still checked.
    assert not check(target, [], region="us-east-1").in_scope
    assert {"iam", "sts", "organizations", "cloudfront", "route53", "ce"} <= GLOBAL_SERVICES
    assert "wafv2" not in GLOBAL_SERVICES


def test_missing_region_is_not_checked() -> None:
    assert check(scope(allow={"actions": ["*"], "regions": ["eu-west-1"]}), region="").in_scope


def test_account_must_match_allow_accounts() -> None:
    target = scope(allow={"actions": ["*"], "accounts": ["1234567890*"]})
    assert check(target, account="123456789012").in_scope
    verdict = check(target, account="999999999999")
    assert kinds(verdict) == ["out-of-scope-account"]
    assert verdict.violations[0].subject == "999999999999"
    assert check(target, account=None).in_scope


def test_expiry_is_checked_against_the_event_time() -> None:
    target = scope(expires="2026-12-01T00:00:00Z")
    assert check(target, at=datetime(2026, 11, 30, 23, 59, tzinfo=UTC)).in_scope
    assert check(target, at=datetime(2026, 12, 1, tzinfo=UTC)).in_scope
    verdict = check(target, at=datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC))
    assert verdict.violations == (
        Violation(
            kind="scope-expired",
            reason="scope ce-4821-fix expired at 2026-12-01T00:00:00Z "
            "(event at 2026-12-01T00:00:01Z)",
            subject="2026-12-01T00:00:00Z",
        ),
    )
    # A naive event time is taken as UTC.
    assert not check(target, at=datetime(2026, 12, 2)).in_scope


def test_violations_come_in_kind_order() -> None:
    target = scope(
        allow={
            "actions": ["ce:*"],
            "resources": ["arn:aws:ce:*"],
            "regions": ["us-east-1"],
            "accounts": [ACCOUNT],
        },
        expires="2026-01-01T00:00:00Z",
        on_violation="revoke",
    )
    verdict = check(
        target,
        ["lambda:DeleteFunction"],
        resources=[OTHER],
        region="eu-west-1",
        account="999999999999",
    )
    assert kinds(verdict) == list(VIOLATION_KINDS)
    assert verdict.on_violation == "revoke"


# -- explanation ---------------------------------------------------------------------------


def test_explain_names_the_glob_that_decided_each_check() -> None:
    target = scope(
        allow={
            "actions": ["ce:Get*", "*"],
            "resources": ["arn:aws:lambda:*:*:function:ce-*"],
            "regions": ["us-*"],
        },
        deny={"actions": ["*:Delete*"]},
        expires="2026-12-01T00:00:00Z",
    )
    lines = target.explain(
        actions=["ce:GetCostForecast", "lambda:DeleteFunction"],
        resources=[LAMBDA, OTHER],
        region="us-east-1",
        account=ACCOUNT,
        at=AT,
    )
    assert lines == [
        "scope ce-4821-fix (scopes.yaml)",
        "action ce:GetCostForecast: allowed by ce:Get*",
        "action lambda:DeleteFunction: denied by deny *:Delete*; allow * also matches, deny wins",
        f"resource {LAMBDA}: allowed by arn:aws:lambda:*:*:function:ce-*",
        f"resource {OTHER}: matches no allow glob (arn:aws:lambda:*:*:function:ce-*)",
        "region us-east-1: allowed by us-*",
        f"account {ACCOUNT}: allowed (the scope sets no restriction)",
        "expires 2026-12-01T00:00:00Z: not yet (event at 2026-06-01T12:00:00Z)",
        "verdict: out of scope: out-of-scope-action, out-of-scope-resource",
    ]


def test_explain_says_why_checks_were_skipped() -> None:
    target = scope(allow={"actions": ["*"], "regions": ["eu-west-1"]})
    lines = target.explain(actions=[], resources=[], region="", account=None, at=AT)
    assert "actions: none (the event maps to no IAM action); not checked" in lines
    assert "resources: none on this event; not checked" in lines
    assert "region: not recorded; not checked" in lines
    assert "account: unknown; not checked" in lines
    assert "expires: never" in lines
    assert lines[-1] == "verdict: in scope"
    exempt = target.explain(
        actions=["iam:GetRole"], resources=[], region="us-east-1", account=None, at=AT
    )
    assert "region us-east-1: exempt (global services only: iam)" in exempt


# -- compiled globs ------------------------------------------------------------------------


def test_globset_reports_first_matching_pattern_in_order() -> None:
    globs = GlobSet.compile(["s3:Get*", "s3:*", "*"], ignore_case=True)
    assert globs.first("S3:GETOBJECT") == "s3:Get*"
    assert globs.first("s3:PutObject") == "s3:*"
    assert globs.first("ec2:RunInstances") == "*"
    assert GlobSet.compile([]).first("anything") is None


def test_glob_metacharacters_are_literal() -> None:
    globs = GlobSet.compile(["arn:aws:s3:::a.b+(c)/*"])
    assert globs.first("arn:aws:s3:::a.b+(c)/key") is not None
    assert globs.first("arn:aws:s3:::axb+(c)/key") is None


def test_scopes_are_hashable_so_callers_can_cache_bindings() -> None:
    target = scope()
    assert {target: 1}[target] == 1


def test_a_remembered_verdict_still_checks_the_expiry_of_each_event() -> None:
    target = scope(expires="2026-12-01T00:00:00Z", allow={"actions": ["ce:*"]})
    late = datetime(2026, 12, 2, tzinfo=UTC)
    assert kinds(check(target)) == []
    assert kinds(check(target, at=late)) == ["scope-expired"]
    assert kinds(check(target)) == []  # the same call again, before the expiry
    assert kinds(check(target, ("s3:DeleteBucket",), at=late)) == [
        "out-of-scope-action",
        "scope-expired",
    ]


def test_the_memo_of_verdicts_is_bounded_and_gives_the_same_verdicts_after_it_starts_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import detector.core.scope as scope_module

    monkeypatch.setattr(scope_module, "MEMO_VERDICTS", 4)
    target = scope(allow={"actions": ["ce:*"], "resources": ["arn:aws:s3:::keep-*"]})
    arns = [f"arn:aws:s3:::{name}-{i}" for i in range(6) for name in ("keep", "drop")]
    first = [check(target, resources=(arn,)) for arn in arns]
    again = [check(target, resources=(arn,)) for arn in arns]
    assert first == again
    assert [kinds(v) for v in first[:2]] == [[], ["out-of-scope-resource"]]
    assert len(target._verdicts) <= 4
