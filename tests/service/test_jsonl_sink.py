"""The service's JSONL sink: idempotent across redelivery and restarts, and crash-tolerant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.errors import ConfigError
from detector.sinks.jsonl import JsonlSink

FINDING = {"type": "finding", "event_id": "e1", "kind": "destructive-action", "severity": "high"}
ALERT = {"type": "alert", "dedup_key": "trailguard/ses-1/destructive-action", "severity": "high"}
ESCALATED = {**ALERT, "severity": "critical"}
RESPONSE = {"type": "response", "session_id": "ses-1", "action": "revoke-session"}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def _sink(path: Path) -> JsonlSink:
    sink = JsonlSink("out", {"type": "jsonl", "path": str(path)})
    await sink.open()
    return sink


async def test_a_record_written_twice_is_written_once(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = await _sink(path)
    await sink.write([FINDING, ALERT, RESPONSE])
    await sink.write([FINDING, ALERT, ESCALATED, RESPONSE])
    await sink.close()
    assert _lines(path) == [FINDING, ALERT, RESPONSE, ESCALATED]
    assert sink.suppressed == 3


async def test_a_line_cut_by_a_crash_is_dropped_and_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(orjson.dumps(FINDING) + b"\n" + orjson.dumps(ALERT)[:20])
    sink = await _sink(path)
    await sink.write([FINDING, ALERT])
    await sink.close()
    assert _lines(path) == [FINDING, ALERT]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"type": "jsonl", "path": ""}, "'sinks.out.path' must be a non-empty string"),
        ({"type": "jsonl", "remember": 0}, "'sinks.out.remember' must be an integer of at least 1"),
        ({"type": "jsonl", "colour": "red"}, "unknown key 'sinks.out.colour'"),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        JsonlSink("out", settings)
