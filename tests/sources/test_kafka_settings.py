"""Kafka settings: the brokers as a list, or as the one comma-separated string Kafka tools use."""

from __future__ import annotations

import pytest

from detector.errors import ConfigError
from detector.sources.kafka import KafkaSettings


def _parse(servers: object) -> KafkaSettings:
    return KafkaSettings.parse(
        "trail", {"bootstrap_servers": servers, "topics": ["ct"], "group_id": "tg"}
    )


def test_brokers_as_a_list_or_a_comma_separated_string_are_the_same() -> None:
    listed = _parse(["b1:9092", "b2:9092"])
    joined = _parse("b1:9092, b2:9092")
    assert listed.bootstrap_servers == joined.bootstrap_servers == ("b1:9092", "b2:9092")


@pytest.mark.parametrize("servers", ["", " , ", []])
def test_no_broker_at_all_is_an_error_naming_the_key(servers: object) -> None:
    with pytest.raises(ConfigError, match=r"sources\.trail\.bootstrap_servers"):
        _parse(servers)
