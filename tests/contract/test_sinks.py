"""Every Sink passes detector.testing.conformance.check_sink against its real destination."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from detector.adapters import load_adapters
from detector.config import Settings
from detector.core.parse import parse_record
from detector.sinks import SINKS
from detector.sinks.jsonl import step_records
from detector.testing.conformance import SinkUnderTest, check_sink
from detector.wiring import build_pipeline
from tests.scenario import DEMO, incident, read_output

load_adapters()


def contract_records() -> list[dict[str, Any]]:
    """Findings, alerts and responses of the demo incident: every kind of record a sink gets."""
    pipeline = build_pipeline(Settings(), scopes_path=DEMO / "scopes.yaml")
    records: list[dict[str, Any]] = []
    for value in incident():
        records.extend(step_records(pipeline.process(parse_record(value))))
    assert {r["type"] for r in records} == {"finding", "alert", "response"}
    return records


async def test_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    async def written() -> Sequence[Mapping[str, Any]]:
        return read_output(out)

    await check_sink(
        SinkUnderTest(make=lambda: SINKS.get("jsonl")("out", {"path": str(out)}), written=written),
        contract_records(),
    )
