"""One way to validate settings: parse_section over an adapter's frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

from detector.config import (
    AT_LEAST_ONE,
    DISTINCT,
    POSITIVE,
    URL,
    Check,
    load_settings,
    parse_section,
)
from detector.errors import ConfigError
from detector.run import build_sinks, build_sources


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    url: Annotated[str, URL]
    brokers: Annotated[tuple[str, ...], DISTINCT] = ("a",)
    mode: Literal["fast", "safe"] = "safe"
    retries: Annotated[int, AT_LEAST_ONE] = 3
    batch: Annotated[int, Check(low=1, high=10)] = 5
    interval: Annotated[float, POSITIVE] = 1.5
    label: str | None = None


def parse(data: dict[str, Any]) -> Example:
    return parse_section(Example, data, source="t.yaml", key="sinks[2]")


def test_defaults_and_null_as_not_given() -> None:
    parsed = parse({"url": "https://x", "retries": None, "interval": 2})
    assert parsed == Example(url="https://x", interval=2.0)
    assert isinstance(parsed.interval, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "t.yaml: 'sinks[2].url' is required"),
        ({"url": "ftp://x"}, "'sinks[2].url' must be an http(s) URL, got 'ftp://x'"),
        ({"url": ""}, "'sinks[2].url' must be a non-empty string, got ''"),
        ({"url": "https://x", "mode": "quick"}, "'sinks[2].mode' must be one of 'fast', 'safe'"),
        ({"url": "https://x", "retries": 0}, "'sinks[2].retries' must be an integer of at least 1"),
        ({"url": "https://x", "retries": True}, "'sinks[2].retries' must be an integer"),
        ({"url": "https://x", "batch": 11}, "'sinks[2].batch' must be an integer from 1 to 10"),
        ({"url": "https://x", "interval": 0}, "'sinks[2].interval' must be a number above 0"),
        ({"url": "https://x", "brokers": []}, "'sinks[2].brokers' must be a non-empty list"),
        ({"url": "https://x", "brokers": "a,b"}, "'sinks[2].brokers' must be a list"),
        ({"url": "https://x", "brokers": ["a", " "]}, "'sinks[2].brokers[1]' must be a non-empty"),
        ({"url": "https://x", "brokers": ["a", "a"]}, "'sinks[2].brokers' lists 'a' twice"),
        ({"url": "https://x", "retry": 1}, "unknown key 'sinks[2].retry' (did you mean"),
    ],
)
def test_errors_name_the_key_as_the_user_writes_it(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(data)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ("{type: kafka, bootstrap_servers: [b], topics: [t], group_id: g, max_poll_records: 0}",
         "sources[1].max_poll_records"),
        ("{type: sqs-s3, queue_url: 'https://sqs.x/q', wait_time_seconds: 30}",
         "sources[1].wait_time_seconds"),
        ("{type: lookup, regions: [us-east-1], overlap_seconds: -5}", "sources[1].overlap_seconds"),
        ("{type: files, path: '.', settle_seconds: later}", "sources[1].settle_seconds"),
    ],
)  # fmt: skip
def test_every_source_names_its_position_in_the_file(tmp_path: Path, entry: str, key: str) -> None:
    (tmp_path / "in").mkdir()
    path = tmp_path / "trailguard.yaml"
    path.write_text(
        f"sources:\n  - {{type: files, name: first, path: '{tmp_path / 'in'}'}}\n  - {entry}\n"
    )
    with pytest.raises(ConfigError) as caught:
        build_sources(load_settings(path, {}))
    assert str(caught.value).startswith(f"{path}: '{key}' must be ")


def test_sinks_name_their_position_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "trailguard.yaml"
    path.write_text("sinks:\n  - {type: jsonl}\n  - {type: jsonl, remember: -1}\n")
    with pytest.raises(ConfigError) as caught:
        build_sinks(load_settings(path, {}))
    assert str(caught.value).startswith(f"{path}: 'sinks[1].remember' must be an integer")
