"""The JSON Lines output contract: one finding, alert or response object per line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any

import orjson

from detector.config import AT_LEAST_ONE, NON_EMPTY, Where, parse_adapter
from detector.core.learned import Drained
from detector.core.pipeline import StepResult
from detector.sinks import SINKS, SinkContext


def step_records(result: StepResult | Drained) -> list[dict[str, Any]]:
    """Records for one step, or for what a drain of the baselines' buffered work found, in
    contract order: findings, then alerts, then responses. Drained findings are about the
    events they name, so they are the same records as a step's."""
    records = [f.to_record() for f in result.findings]
    records.extend(a.to_record() for a in result.alerts)
    records.extend(r.to_record() for r in result.responses)
    return records


class JsonlWriter:
    """Writes contract records to a binary stream, one per line."""

    name = "jsonl"

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def write(self, result: StepResult | Drained) -> None:
        for record in step_records(result):
            self._stream.write(orjson.dumps(record) + b"\n")

    def flush(self) -> None:
        self._stream.flush()


def record_key(record: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes a contract record the same record when a batch is processed twice."""
    kind = record["type"]
    if kind == "finding":
        return (kind, record["event_id"], record["kind"])
    if kind == "alert":
        return (kind, record["dedup_key"], record["severity"])
    if kind == "response-outcome":
        keys = ("session_id", "action", "responder", "outcome", "dry_run")
        return (kind, *(str(record[k]) for k in keys))
    return (kind, record["session_id"], record["action"])


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonlSettings:
    # A file path, or "-" for stdout.
    path: Annotated[str, NON_EMPTY] = "-"
    # How many written records' keys are kept to drop repeats after a redelivery.
    remember: Annotated[int, AT_LEAST_ONE] = 1_000_000


class JsonlSink:
    """The service's JSONL output, to stdout or a file, idempotent across redelivery.

    Sources are at-least-once: after a crash the last unacknowledged batches come again and
    the restored state may be older than what was already written. The sink remembers the
    keys of what it wrote (and, for a file, reads them back from the file's tail at start),
    so a record already written is not written twice.
    """

    def __init__(
        self, name: str, settings: Mapping[str, Any], context: SinkContext | None = None
    ) -> None:
        where = Where(context.source, context.key) if context is not None else None
        own = parse_adapter(JsonlSettings, name, settings, where, section="sinks")
        path, remember = own.path, own.remember
        self.name = name
        self.path = None if path == "-" else Path(path)
        self._remember = remember
        self._keys: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._stream: IO[bytes] | None = None
        self.written = 0
        self.suppressed = 0

    async def open(self) -> None:
        if self.path is None:
            self._stream = sys.stdout.buffer
            return
        if self.path.exists():
            await asyncio.to_thread(_drop_partial_line, self.path)
            await asyncio.to_thread(self._load_keys, self.path)
        self._stream = self.path.open("ab")

    def _load_keys(self, path: Path) -> None:
        with path.open("rb") as handle:
            for line in handle:
                try:
                    self._remember_key(record_key(orjson.loads(line)))
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    # A line cut short by a crash: the record is written again in full.
                    continue

    def _remember_key(self, key: tuple[str, ...]) -> None:
        self._keys[key] = None
        if len(self._keys) > self._remember:
            self._keys.popitem(last=False)

    async def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        if self._stream is None:
            raise RuntimeError("sink is not open")
        chunks = []
        for record in records:
            key = record_key(record)
            if key in self._keys:
                self.suppressed += 1
                continue
            self._remember_key(key)
            chunks.append(orjson.dumps(record) + b"\n")
        if chunks:
            self._stream.write(b"".join(chunks))
            self.written += len(chunks)

    async def flush(self) -> None:
        if self._stream is not None:
            self._stream.flush()
            if self.path is not None:
                await asyncio.to_thread(os.fsync, self._stream.fileno())

    async def close(self) -> None:
        await self.flush()
        if self._stream is not None and self.path is not None:
            self._stream.close()
        self._stream = None


def _drop_partial_line(path: Path) -> None:
    """Cut a line left half-written by a crash, so the next record starts on its own line."""
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - 65536)
            handle.seek(start)
            chunk = handle.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline != -1:
                cut = start + newline + 1
                break
            end = start
        else:
            cut = 0
        if cut != size:
            handle.truncate(cut)


SINKS.register("jsonl", JsonlSink)
