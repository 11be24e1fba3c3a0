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
