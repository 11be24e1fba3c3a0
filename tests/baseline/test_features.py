"""Per-event features: values from real pipeline contexts, and their settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from detector.baseline.features import (
    FEATURES,
    FeatureConfig,
    FeatureExtractor,
    arn_resource_type,
    client,
    parse_feature_config,
)
from detector.errors import ConfigError
from tests.baseline.history import ACCOUNT, call, training_events

AT = datetime(2025, 3, 3, 23, 30, tzinfo=UTC)


def _values(record: dict[str, Any], config: FeatureConfig | None = None) -> dict[str, str]:
    [event] = training_events([record])
    extractor = FeatureExtractor(config or FeatureConfig())
    return dict(zip(FEATURES, extractor.values(event.ctx), strict=True))


def test_a_role_call_has_every_feature() -> None:
    values = _values(call("ci", "s", "s3:GetObject", AT, params={"bucketName": "b", "key": "k"}))
    assert values == {
        "action": "s3:getobject",
        "service": "s3",
        "resource_type": "s3:object",
        "region": "eu-west-1",
        "hour": "23",
        "network": "public",
        "error": "none",
        "client": "aws-cli",
    }


def test_the_hour_is_counted_in_the_accounts_time_zone_else_the_default() -> None:
    record = call("ci", "s", "sts:GetCallerIdentity", AT)
    zoned = parse_feature_config(
        {"time_zones": {ACCOUNT: "Asia/Tokyo"}, "default_time_zone": "America/New_York"},
        source="t",
        key="baseline",
    )
    assert _values(record, zoned)["hour"] == "08"  # 23:30 UTC is 08:30 in Tokyo
    other = parse_feature_config({"default_time_zone": "America/New_York"}, source="t", key="b")
    assert _values(record, other)["hour"] == "18"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("AWS Internal", "aws-internal"),
        ("cloudformation.amazonaws.com", "aws-internal"),
        ("10.1.2.3", "private"),
        ("192.0.2.44", "office"),
        ("2001:db8::5", "office"),
        ("203.0.113.10", "public"),
    ],
)
def test_source_networks(address: str, expected: str) -> None:
    config = parse_feature_config(
        {"networks": {"office": ["192.0.2.0/24", "2001:db8::/32"]}}, source="t", key="baseline"
    )
    record = call("ci", "s", "sts:GetCallerIdentity", AT, address=address)
    assert _values(record, config)["network"] == expected


def test_a_call_made_by_a_service_on_the_principals_behalf_is_aws_internal() -> None:
    record = call("ci", "s", "kms:Decrypt", AT)
    record["userIdentity"]["invokedBy"] = "secretsmanager.amazonaws.com"
    assert _values(record)["network"] == "aws-internal"


def test_errors_and_the_resource_type_from_the_catalogue_when_no_arn_is_known() -> None:
    values = _values(call("ci", "s", "ec2:RunInstances", AT, error="Client.UnauthorizedOperation"))
    assert values["error"] == "Client.UnauthorizedOperation"
    assert values["resource_type"] == "ec2:instance"  # the type its name names
    assert _values(call("ci", "s", "sts:GetCallerIdentity", AT))["resource_type"] == "none"


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:s3:::bucket", "s3:bucket"),
        ("arn:aws:s3:::bucket/a/b.txt", "s3:object"),
        ("arn:aws:iam::1:role/path/x", "iam:role"),
        ("arn:aws:lambda:eu-west-1:1:function:f", "lambda:function"),
        ("arn:aws:sqs:eu-west-1:1:queue-name", "sqs:resource"),
        ("not-an-arn", None),
    ],
)
def test_resource_types_from_arns_never_carry_names(arn: str, expected: str | None) -> None:
    assert arn_resource_type(arn) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"default_time_zone": "Mars/Olympus"}, "'baseline.default_time_zone': unknown time zone"),
        ({"time_zones": {"1234": "Europe/Pariss"}}, "'baseline.time_zones.1234': unknown"),
        ({"time_zones": ["UTC"]}, "'baseline.time_zones' must be a mapping"),
        ({"networks": {"vpn": ["10.0.0.0/33"]}}, "'baseline.networks.vpn[0]' is not a CIDR"),
        ({"networks": {"vpn": []}}, "'baseline.networks.vpn' must be a CIDR or a non-empty"),
        ({"default_time_zone": 5}, "'baseline.default_time_zone' must be an IANA time zone"),
    ],
)
def test_bad_settings_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="^cfg.yaml: " + message.replace("[", r"\[")):
        parse_feature_config(data, source="cfg.yaml", key="baseline")


def test_a_single_cidr_string_is_a_list_of_one() -> None:
    config = parse_feature_config({"networks": {"vpn": "10.8.0.0/16"}}, source="t", key="b")
    assert config.networks == {"vpn": ("10.8.0.0/16",)}
    assert parse_feature_config(config.to_dict(), source="t", key="b") == config


# Real user agents from the bundled captures (tests/data/cloudtrail), one per family.
TERRAFORM = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.1.2 (+https://www.terraform.io) terraform-provider-aws/"
    "3.76.1 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go/1.44.157 "
    "(go1.19.3; linux; amd64) HashiCorp-terraform-exec/0.17.3"
)
S3_CONSOLE = (
    "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488 Linux/5.10.184-153.731.amzn2int.x86_64"
    " OpenJDK_64-Bit_Server_VM/25.372-b08 java/1.8.0_372 vendor/Oracle_Corporation "
    "cfg/retry-mode/standard]"
)


@pytest.mark.parametrize(
    ("user_agent", "family"),
    [
        (TERRAFORM, "terraform"),
        # Stratus Red Team's warm-up runs Terraform with its own tag in the middle.
        (TERRAFORM.replace("HashiCorp-terraform-exec", "stratus-red-team_11a6ef34-e130-4579-"
                           "a1d3-79c915cee6ec HashiCorp-terraform-exec"), "terraform"),
        ("stratus-red-team_ea782787-a65d-4fc4-9fca-1c97869a9a25", "stratus-red-team"),
        ("[stratus-red-team_4990da05-9399-449e-b49f-82996a764ec9]", "stratus-red-team"),
        (S3_CONSOLE, "console"),
        ("RDS Console, aws-internal/3 aws-sdk-java/1.11.975 Linux/5.10.184-153.731.amzn2int"
         ".x86_64 OpenJDK_64-Bit_Server_VM/25.242-b08 java/1.8.0_242", "console"),
        ("console.ec2.amazonaws.com", "console"),
        ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:102.0) Gecko/20100101 Firefox/102.0",
         "console"),
        ("signin.amazonaws.com", "console"),
        ("AWS Internal", "aws-internal"),
        ("secretsmanager.amazonaws.com", "aws-internal"),
        ("[AWSCloudTrail, aws-internal/3 aws-sdk-java/1.12.433 Linux/5.4.247-169.350.amzn2int"
         ".x86_64 OpenJDK_64-Bit_Server_VM/25.362-b10 java/1.8.0_362]", "aws-internal"),
        ("[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59]", "aws-cli"),
        ("[Boto3/1.26.165 Python/3.10.6 Linux/5.19.0-46-generic Botocore/1.29.165]", "Boto3"),
        ("Boto3/1.26.165 Python/3.10.6 Linux/5.19.0-46-generic Botocore/1.29.165", "Boto3"),
        ("aws-sdk-go-v2/1.17.0 os/linux lang/go/1.18.10 md/GOOS/linux md/GOARCH/amd64 "
         "api/ec2/1.63.1", "aws-sdk-go"),
        ("aws-sdk-go-v2/1.32.3 os/linux lang/go#1.23.1 md/GOOS#linux md/GOARCH#amd64 "
         "exec-env/grimoire_095724e3-1fa0-4e3e-b68a-e8581d194380 api/sts#1.26.2", "aws-sdk-go"),
        ("aws-sdk-go/1.41.4 (go1.18.3; linux; amd64) amazon-ssm-agent/", "amazon-ssm-agent"),
    ],
)  # fmt: skip
def test_the_client_is_the_calling_tools_family(user_agent: str, family: str) -> None:
    assert client(user_agent) == family


def test_a_client_upgrade_or_a_new_run_makes_no_new_value() -> None:
    upgraded = TERRAFORM.replace("3.76.1", "4.67.0").replace("go1.19.3", "go1.19.8")
    assert client(upgraded) == client(TERRAFORM)
    runs = {client(f"stratus-red-team_{n:08x}-a65d-4fc4-9fca-1c97869a9a25") for n in range(50)}
    assert runs == {"stratus-red-team"}


@pytest.mark.parametrize(
    ("user_agent", "invoked_by", "family"),
    [
        # An unknown tool is its product name, without version or instance id.
        ("claude-code/1.0.3 (external, cli)", None, "claude-code"),
        ("MyTool_0123abcd-1111-2222-3333-444455556666 extra", None, "mytool"),
        ("deadbeefcafebabe1234", None, "other"),
        ("", None, "none"),
        ("", "cloudformation.amazonaws.com", "aws-internal"),
    ],
)
def test_unknown_and_missing_user_agents(
    user_agent: str, invoked_by: str | None, family: str
) -> None:
    assert client(user_agent, invoked_by) == family
