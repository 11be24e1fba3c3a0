"""The dead-letter file: every rejected record, why, and where it came from, as JSON Lines."""

from __future__ import annotations

from typing import IO, Any

import orjson


class DeadLetterFile:
    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.count = 0

    def add(self, *, origin: str, error: str, raw: Any) -> None:
        self.count += 1
        record = {"origin": origin, "error": error, "record": raw}
        self._stream.write(orjson.dumps(record, default=repr) + b"\n")

    def flush(self) -> None:
        self._stream.flush()
