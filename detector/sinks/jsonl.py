"""The JSON Lines output contract: one finding, alert or response object per line."""

from __future__ import annotations

from typing import IO, Any

import orjson

from detector.core.pipeline import StepResult


def step_records(result: StepResult) -> list[dict[str, Any]]:
    """Records for one step in contract order: findings, then alerts, then responses."""
    records = [f.to_record() for f in result.findings]
    records.extend(a.to_record() for a in result.alerts)
    records.extend(r.to_record() for r in result.responses)
    return records


class JsonlWriter:
    """Writes contract records to a binary stream, one per line."""

    name = "jsonl"

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def write(self, result: StepResult) -> None:
        for record in step_records(result):
            self._stream.write(orjson.dumps(record) + b"\n")

    def flush(self) -> None:
        self._stream.flush()
