"""The pure part of `scope suggest`: ARN generalisation, the proposal, and its YAML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.core.arn_patterns import generalise, split_arn, without_whitespace
from detector.core.scope import GlobSet
from detector.core.scope_schema import check_document
from detector.core.session_view import SessionView
from detector.core.suggest import Observation, ProposedScope, match_for, propose
from detector.core.suggest_yaml import render
from detector.core.taxonomy import SessionKind
from detector.scope_file import load_scopes, read_scope_document

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "123456789012"
EC2 = f"arn:aws:ec2:us-east-1:{ACCOUNT}:"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/"


def patterns(*arns: str) -> list[tuple[str, str]]:
    return [(p.pattern, p.rule) for p in generalise(arns)]


# --- splitting ARNs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "parts"),
    [
        (EC2 + "instance/i-0a1", (EC2, "instance/", "i-0a1")),
        (ROLE + "path/app", (f"arn:aws:iam::{ACCOUNT}:", "role/", "path/app")),
        (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn",
            (f"arn:aws:lambda:us-east-1:{ACCOUNT}:", "function:", "fn"),
        ),
        ("arn:aws:s3:::bucket", ("arn:aws:s3:::", "", "bucket")),
        ("arn:aws:s3:::bucket/key/x", ("arn:aws:s3:::", "bucket/", "key/x")),
        ("arn:aws:s3", None),
        ("not-an-arn:a:b:c:d:e", None),
        ("arn:aws:s3:::", None),
    ],
)
def test_split_arn(arn: str, parts: tuple[str, str, str] | None) -> None:
    assert split_arn(arn) == parts


# --- the generalisation rules: each firing, each quiet -----------------------------------------


def test_a_lone_resource_stays_exact() -> None:
    assert patterns(ROLE + "deployer") == [(ROLE + "deployer", "exact")]


def test_names_with_a_common_word_prefix_become_a_prefix_glob() -> None:
    found = patterns(ROLE + "stratus-red-team-a1", ROLE + "stratus-red-team-b2")
    assert found == [(ROLE + "stratus-red-team-*", "prefix")]


def test_the_prefix_is_cut_back_to_a_separator() -> None:
    # Common prefix "app-we" would also admit "app-west"; the glob ends at the last "-".
    assert patterns(ROLE + "app-web", ROLE + "app-worker") == [(ROLE + "app-*", "prefix")]


def test_a_name_that_is_the_whole_prefix_is_still_covered() -> None:
    found = patterns(ROLE + "app", ROLE + "app-worker")
    assert found == [(ROLE + "app*", "prefix")]
    assert generalise([ROLE + "app", ROLE + "app-worker"])[0].arns == (
        ROLE + "app",
        ROLE + "app-worker",
    )


def test_names_of_different_first_words_stay_exact() -> None:
    found = patterns(ROLE + "billing-reader", ROLE + "deployer")
    assert found == [(ROLE + "billing-reader", "exact"), (ROLE + "deployer", "exact")]


def test_generated_ids_widen_to_the_resource_type() -> None:
    assert patterns(EC2 + "instance/i-0a1", EC2 + "instance/i-0b2") == [
        (EC2 + "instance/*", "type"),
    ]


def test_a_type_wide_glob_replaces_the_other_patterns_of_its_type() -> None:
    found = patterns(EC2 + "instance/i-0a1", EC2 + "instance/i-0b2", EC2 + "instance/web-1")
    assert found == [(EC2 + "instance/*", "type")]


def test_ids_of_one_resource_type_do_not_widen_another_type() -> None:
    found = patterns(EC2 + "instance/i-0a1", EC2 + "instance/i-0b2", EC2 + "volume/vol-1")
    assert found == [(EC2 + "instance/*", "type"), (EC2 + "volume/vol-1", "exact")]


def test_typeless_names_without_a_prefix_stay_exact_rather_than_all_of_s3() -> None:
    found = patterns("arn:aws:s3:::ab", "arn:aws:s3:::ac")
    assert found == [("arn:aws:s3:::ab", "exact"), ("arn:aws:s3:::ac", "exact")]


def test_bucket_names_with_a_prefix_become_a_prefix_glob() -> None:
    found = patterns("arn:aws:s3:::logs-eu", "arn:aws:s3:::logs-us")
    assert found == [("arn:aws:s3:::logs-*", "prefix")]


def test_account_and_region_are_never_widened() -> None:
    found = patterns(
        f"arn:aws:iam::{ACCOUNT}:role/app-a",
        "arn:aws:iam::210987654321:role/app-b",
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs-a",
        f"arn:aws:sqs:eu-west-1:{ACCOUNT}:jobs-b",
    )
    assert [p for p, _ in found] == [
        f"arn:aws:iam::{ACCOUNT}:role/app-a",
        "arn:aws:iam::210987654321:role/app-b",
        f"arn:aws:sqs:eu-west-1:{ACCOUNT}:jobs-b",
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs-a",
    ]


def test_strings_that_are_not_arns_are_kept() -> None:
    assert patterns("arn:aws:weird") == [("arn:aws:weird", "exact")]


# --- the proposal -------------------------------------------------------------------------------


def seen(
    *actions: str,
    resources: tuple[str, ...] = (),
    region: str = "us-east-1",
    error: str | None = None,
    denied: bool = False,
    minute: int = 0,
) -> Observation:
    return Observation(
        actions=actions,
        resources=resources,
        region=region,
        account=ACCOUNT,
        at=AT + timedelta(minutes=minute),
        denied=denied,
        error_code=error,
    )


def proposal(*observations: Observation) -> ProposedScope:
    return propose(
        observations,
        name="deploy",
        description="from history",
        match=(("principal_arn", f"arn:aws:iam::{ACCOUNT}:user/ci"),),
    )


def test_actions_are_counted_and_failed_but_authorised_calls_are_allowed() -> None:
    found = proposal(
        seen("ec2:CreateVpc"),
        seen("ec2:CreateVpc", error="Client.VpcLimitExceeded"),
        seen("iam:GetRole", error="NoSuchEntity", minute=5),
    )
    assert [(a.action, a.calls, a.failed) for a in found.actions] == [
        ("ec2:CreateVpc", 2, 1),
        ("iam:GetRole", 1, 1),
    ]
    assert found.denied == ()
    assert (found.events, found.first_seen, found.last_seen) == (3, AT, AT + timedelta(minutes=5))


def test_refused_calls_are_listed_not_allowed() -> None:
    found = proposal(
        seen("s3:ListBucket"),
        seen("iam:CreateUser", error="AccessDenied", denied=True, resources=(ROLE + "x",)),
        seen("iam:CreateUser", error="AccessDenied", denied=True),
    )
    assert [a.action for a in found.actions] == ["s3:ListBucket"]
    assert [(d.action, d.calls, d.codes) for d in found.denied] == [
        ("iam:CreateUser", 2, ("AccessDenied",))
    ]
    # Nor do the resources of a refused call widen the scope.
    assert found.resources == ()


def test_an_action_both_refused_and_authorised_is_allowed_only() -> None:
    found = proposal(seen("s3:GetObject", denied=True, error="AccessDenied"), seen("s3:GetObject"))
    assert [a.action for a in found.actions] == ["s3:GetObject"]
    assert found.denied == ()


def test_regions_and_accounts_are_the_ones_seen() -> None:
    found = proposal(seen("sqs:SendMessage"), seen("sqs:SendMessage", region="eu-west-1"), seen())
    assert found.regions == (("eu-west-1", 1), ("us-east-1", 2))
    assert found.accounts == (ACCOUNT,)


def view(**fields: str) -> SessionView:
    return SessionView(
        session_id="s-1", kind=SessionKind.AGENT, tags=MappingProxyType({}), **fields
    )


def test_match_prefers_what_names_the_credentials() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/agent"
    assumed = f"arn:aws:sts::{ACCOUNT}:assumed-role/agent/run-7"
    assert match_for(view(source_identity="agent-kiro-1", role_arn=role)) == (
        ("source_identity", "agent-kiro-1"),
    )
    assert match_for(view(role_arn=role, principal_arn=assumed)) == (("role_arn", role),)
    assert match_for(view(principal_arn=f"arn:aws:iam::{ACCOUNT}:user/ci")) == (
        ("principal_arn", f"arn:aws:iam::{ACCOUNT}:user/ci"),
    )


# --- the YAML ----------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suggested.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_yaml_loads_validates_and_keeps_every_value(tmp_path: Path) -> None:
    found = proposal(
        seen("ec2:CreateVpc", resources=(EC2 + "vpc/vpc-1",)),
        seen("ec2:CreateVpc", resources=(EC2 + "vpc/vpc-2",), error="Client.VpcLimitExceeded"),
        seen("iam:CreateUser", error="AccessDenied", denied=True),
    )
    text = render(found, origin="session s-1")
    path = write(tmp_path, text)
    specs, errors = check_document(read_scope_document(path), source=str(path))
    assert errors == ()
    (spec,) = specs
    assert spec.name == "deploy"
    assert spec.match == (("principal_arn", f"arn:aws:iam::{ACCOUNT}:user/ci"),)
    assert spec.allow_actions == ("ec2:CreateVpc",)
    assert spec.allow_resources == (EC2 + "vpc/vpc-*",)
    assert spec.allow_regions == ("us-east-1",)
    assert spec.allow_accounts == (ACCOUNT,)
    assert '- "ec2:CreateVpc"  # seen 2 times, 1 failed but authorised' in text
    assert '#   - "iam:CreateUser"  # denied once (AccessDenied)' in text
    (scope,) = load_scopes(path).scopes
    refused = scope.evaluate(
        actions=("iam:CreateUser",), resources=(), region="us-east-1", account=ACCOUNT, at=AT
    )
    assert not refused.in_scope


def test_names_that_look_like_yaml_syntax_survive_the_round_trip(tmp_path: Path) -> None:
    odd = 'arn:aws:s3:::b/key:"x"#-not-a-comment-\u00e9-[1]'
    found = propose(
        [seen("s3:PutObject", resources=(odd,))],
        name='deploy: "prod" # v2',
        description="caf\u00e9 & co: {x}",
        match=(("source_identity", "agent-kiro-*"),),
    )
    path = write(tmp_path, render(found, origin="principal x"))
    (scope,) = load_scopes(path).scopes
    assert scope.name == 'deploy: "prod" # v2'
    assert scope.description == "caf\u00e9 & co: {x}"
    assert scope.allow_resources is not None
    assert scope.allow_resources.patterns == (odd,)


def test_whitespace_in_a_resource_becomes_a_one_character_glob(tmp_path: Path) -> None:
    spaced = "arn:aws:s3:::reports/q1 summary.csv"
    assert patterns(spaced) == [("arn:aws:s3:::reports/q1?summary.csv", "exact")]
    path = write(tmp_path, render(proposal(seen("s3:GetObject", resources=(spaced,))), origin="x"))
    (scope,) = load_scopes(path).scopes
    verdict = scope.evaluate(
        actions=("s3:GetObject",), resources=(spaced,), region="us-east-1", account=ACCOUNT, at=AT
    )
    assert verdict.in_scope


def test_a_resource_that_is_not_an_arn_is_noted_not_written(tmp_path: Path) -> None:
    text = render(proposal(seen("s3:GetObject", resources=("bucket-name",))), origin="x")
    assert '# not an ARN, so no pattern can allow it: "bucket-name"' in text
    (scope,) = load_scopes(write(tmp_path, text)).scopes
    assert scope.allow_resources is None


def test_with_no_authorised_call_the_scope_allows_nothing(tmp_path: Path) -> None:
    found = proposal(seen("iam:CreateUser", error="AccessDenied", denied=True))
    path = write(tmp_path, render(found, origin="session s-1"))
    (scope,) = load_scopes(path).scopes
    assert "regions" not in path.read_text()
    for action in ("iam:CreateUser", "s3:GetObject", "sts:GetCallerIdentity"):
        verdict = scope.evaluate(
            actions=(action,), resources=(), region="us-east-1", account=ACCOUNT, at=AT
        )
        assert not verdict.in_scope


# --- the property the rules must keep: every ARN seen is admitted ------------------------------

_NAME = st.text(alphabet="abc-_./:0 ", min_size=1, max_size=12)
_ARN = st.builds(
    lambda service, region, account, kind, name: (
        f"arn:aws:{service}:{region}:{account}:{kind}{name}"
    ),
    st.sampled_from(["s3", "iam", "ec2", "lambda"]),
    st.sampled_from(["", "us-east-1", "eu-west-1"]),
    st.sampled_from(["", ACCOUNT]),
    st.sampled_from(["", "role/", "function:", "instance/"]),
    _NAME,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ARN | st.text(max_size=8), min_size=1, max_size=12))
def test_every_resource_given_matches_the_pattern_that_stands_for_it(arns: list[str]) -> None:
    found = generalise(arns)
    for pattern in found:
        regex = GlobSet.compile([pattern.pattern])
        for arn in pattern.arns:
            assert regex.first(arn) == pattern.pattern
            # Partition, service, region and account are never widened.
            parts = split_arn(arn)
            if parts is not None:
                assert pattern.pattern.startswith(without_whitespace(parts[0]))
    covered = {arn for pattern in found for arn in pattern.arns}
    assert covered == set(arns)
    assert all(not any(c.isspace() for c in p.pattern) for p in found)
