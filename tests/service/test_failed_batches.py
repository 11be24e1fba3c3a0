"""A batch that fails leaves no trace in saved state, is nacked, and is processed again.

The real watched-directory source, SQLite state store and JSONL sink; only the sink's
failure is staged, by a subclass that raises on one of its writes.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.config import Settings, StateSettings
from detector.core.parse import parse_record
from detector.dead_letter import DeadLetterFile
from detector.errors import DetectorError, TransientError
from detector.metrics import Metrics
from detector.records import Record
from detector.service import Service
from detector.sinks.jsonl import JsonlSink, record_key, step_records
from detector.sources.base import Batch, SourceBase
from detector.sources.files import InputFile, UnreadableFile, read_input
from detector.sources.watch import WatchSource
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline
from tests.scenario import DEMO, as_jsonl, incident, read_output, run_until_written, scenario

SETTINGS = Settings(state=StateSettings(flush_interval_seconds=60))
WAIT_SECONDS = 30.0


class SinkDown(DetectorError):
    """A sink error that retrying cannot fix (a rejected credential, say)."""


class FailingSink(JsonlSink):
    """Fails its `fail_on`-th write (1-based) with `error`, every time while `down`."""

    def __init__(self, path: Path, *, fail_on: int, error: Exception) -> None:
        super().__init__("out", {"path": str(path)})
        self.fail_on = fail_on
        self.error = error
        self.writes = 0
        self.failing = asyncio.Event()

    async def write(self, records: Any) -> None:
        self.writes += 1
        if self.writes >= self.fail_on:
            self.failing.set()
            raise self.error
        await super().write(records)


def _clean_output() -> list[dict[str, Any]]:
    pipeline = build_pipeline(SETTINGS, scopes_path=DEMO / "scopes.yaml")
    records: list[dict[str, Any]] = []
    for value in incident():
        records.extend(step_records(pipeline.process(parse_record(value))))
    return records


def _inbox(tmp_path: Path) -> Path:
    """The demo incident as two files, the first older, so they are read in that order."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    records = incident()
    for index, part in enumerate((records[:20], records[20:])):
        path = inbox / f"part-{index}.jsonl"
        path.write_bytes(as_jsonl(part))
        os.utime(path, ns=(1_000_000_000 * (index + 1),) * 2)
    return inbox


def _service(
    tmp_path: Path, sink: JsonlSink, metrics: Metrics | None = None, **settings: Any
) -> Service:
    source = WatchSource(
        "inbox",
        {
            "path": str(tmp_path / "inbox"),
            "poll_interval_seconds": 0.05,
            "settle_seconds": 0,
            **settings,
        },
    )
    return Service(
        SETTINGS,
        pipeline_factory=lambda: build_pipeline(SETTINGS, scopes_path=DEMO / "scopes.yaml"),
        sources=[source],
        sinks=[sink],
        store=SqliteStateStore(tmp_path / "state.db"),
        owner="test",
        metrics=metrics,
    )


def _batches(metrics: Metrics, outcome: str) -> float:
    for name, labels, value in metrics.samples():
        if name == "trailguard_batches_total" and labels == {
            "source": "inbox",
            "outcome": outcome,
        }:
            return value
    return 0.0


async def test_a_non_retriable_sink_failure_loses_nothing_after_a_restart(
    tmp_path: Path,
) -> None:
    clean = _clean_output()
    _inbox(tmp_path)
    out = tmp_path / "out.jsonl"
    metrics = Metrics(sources=["inbox"], sinks=["out"], runtime_collectors=False)
    failed = _service(tmp_path, FailingSink(out, fail_on=2, error=SinkDown("401")), metrics)
    with pytest.raises(SinkDown):
        await asyncio.wait_for(failed.run(asyncio.Event()), WAIT_SECONDS)
    first = read_output(out)
    assert 0 < len(first) < len(clean)

    restarted = _service(tmp_path, JsonlSink("out", {"path": str(out)}))
    await run_until_written(restarted, out, len(clean))
    written = read_output(out)
    assert Counter(record_key(r) for r in written) == Counter(record_key(r) for r in clean)
    # The first file succeeded and was saved at the final flush; the second was nacked.
    assert _batches(metrics, "acked") == 1
    assert _batches(metrics, "nacked") == 1


async def test_sigterm_during_sink_retries_nacks_and_saves_nothing_of_the_batch(
    tmp_path: Path,
) -> None:
    clean = _clean_output()
    _inbox(tmp_path)
    out = tmp_path / "out.jsonl"
    sink = FailingSink(out, fail_on=2, error=TransientError("503 from the paging API"))
    metrics = Metrics(sources=["inbox"], sinks=["out"], runtime_collectors=False)
    service = _service(tmp_path, sink, metrics)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(sink.failing.wait(), WAIT_SECONDS)
    stop.set()  # what SIGTERM does
    # Stops retrying at once instead of waiting out the backoff, and exits cleanly.
    await asyncio.wait_for(task, 5)
    assert _batches(metrics, "nacked") == 1
    assert _batches(metrics, "acked") == 1

    restarted = _service(tmp_path, JsonlSink("out", {"path": str(out)}))
    await run_until_written(restarted, out, len(clean))
    written = read_output(out)
    assert Counter(record_key(r) for r in written) == Counter(record_key(r) for r in clean)


class SignallingSink(JsonlSink):
    """Sets `wrote` once it has taken `batches` writes."""

    def __init__(self, path: Path, *, batches: int) -> None:
        super().__init__("out", {"path": str(path)})
        self.batches = batches
        self.wrote = asyncio.Event()

    async def write(self, records: Any) -> None:
        await super().write(records)
        self.batches -= 1
        if self.batches <= 0:
            self.wrote.set()


class ScriptedSource(SourceBase):
    """Hands out prepared batches, then waits for stop; records how each was settled."""

    def __init__(self, batches: list[list[dict[str, Any]]]) -> None:
        self.name = "scripted"
        self._batches = batches
        self.settled: list[str] = []
        self._stop = asyncio.Event()

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._stop.set()

    async def batches(self) -> AsyncIterator[Batch]:
        for index, records in enumerate(self._batches):

            async def ack(index: int = index) -> None:
                self.settled.append(f"ack {index}")

            async def nack(exc: BaseException, index: int = index) -> None:
                self.settled.append(f"nack {index} {type(exc).__name__}")

            items = [Record(f"scripted:{index}:{i}", r) for i, r in enumerate(records)]
            yield Batch(source=self.name, items=list(items), ack=ack, nack=nack)
        await self._stop.wait()


async def test_a_fenced_shard_is_dropped_and_its_batches_nacked(tmp_path: Path) -> None:
    records = incident()
    source = ScriptedSource([records[:20], records[20:]])
    store = SqliteStateStore(tmp_path / "state.db")
    metrics = Metrics(sources=["scripted"], sinks=["out"], runtime_collectors=False)
    sink = SignallingSink(tmp_path / "out.jsonl", batches=2)
    service = Service(
        SETTINGS,
        pipeline_factory=lambda: build_pipeline(SETTINGS, scopes_path=DEMO / "scopes.yaml"),
        sources=[source],
        sinks=[sink],
        store=store,
        owner="old-owner",
        metrics=metrics,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(sink.wrote.wait(), WAIT_SECONDS)
    # Another instance takes the shard over before this one flushes.
    other = SqliteStateStore(tmp_path / "state.db")
    other.claim("default", "new-owner")
    stop.set()
    await asyncio.wait_for(task, WAIT_SECONDS)
    assert source.settled == ["nack 0 FencedError", "nack 1 FencedError"]
    assert service.pipelines() == []  # the in-memory pipeline is gone
    assert other.load("default") is None  # nothing of the old owner's was written
    assert _batches_of(metrics, "scripted", "acked") == 0
    assert _batches_of(metrics, "scripted", "nacked") == 2
    other.close()
    store.close()


def _batches_of(metrics: Metrics, source: str, outcome: str) -> float:
    for name, labels, value in metrics.samples():
        if name == "trailguard_batches_total" and labels == {"source": source, "outcome": outcome}:
            return value
    return 0.0


async def test_a_batch_counts_as_acked_only_once_it_is(tmp_path: Path) -> None:
    source = ScriptedSource([incident()])
    metrics = Metrics(sources=["scripted"], sinks=["out"], runtime_collectors=False)
    store = SqliteStateStore(tmp_path / "state.db")
    sink = SignallingSink(tmp_path / "out.jsonl", batches=1)
    service = Service(
        SETTINGS,
        pipeline_factory=lambda: build_pipeline(SETTINGS, scopes_path=DEMO / "scopes.yaml"),
        sources=[source],
        sinks=[sink],
        store=store,
        owner="test",
        metrics=metrics,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(sink.wrote.wait(), WAIT_SECONDS)
    # Processed and written, but the flush interval has not come: not acknowledged yet.
    assert source.settled == []
    assert _batches_of(metrics, "scripted", "acked") == 0
    stop.set()
    await asyncio.wait_for(task, WAIT_SECONDS)
    assert source.settled == ["ack 0"]
    assert _batches_of(metrics, "scripted", "acked") == 1
    store.close()


def _events_of(metrics: Metrics, source: str) -> float:
    for name, labels, value in metrics.samples():
        if name == "trailguard_events_total" and labels == {"source": source}:
            return value
    return 0.0


async def test_a_file_in_batches_resumes_after_the_batch_that_failed(tmp_path: Path) -> None:
    """One file of 44 records read 10 at a time; the third batch's write fails for good.

    The two batches before it were handed to the sink: they stay in the saved state (after
    the rollback re-applies them) and in the file's position, so the restart processes
    only what follows them, and the output is what a clean run makes, each record once.
    """
    clean = _clean_output()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "incident.jsonl"
    records = incident()
    path.write_bytes(as_jsonl(records))
    out = tmp_path / "out.jsonl"
    settings = {"batch_records": 10}
    metrics = Metrics(sources=["inbox"], sinks=["out"], runtime_collectors=False)
    sink = FailingSink(out, fail_on=3, error=SinkDown("401"))
    failed = _service(tmp_path, sink, metrics, **settings)
    with pytest.raises(SinkDown):
        await asyncio.wait_for(failed.run(asyncio.Event()), WAIT_SECONDS)
    assert _batches(metrics, "acked") == 2
    assert _batches(metrics, "nacked") == 1
    store = SqliteStateStore(tmp_path / "state.db")
    info = path.stat()
    checkpoint = orjson.loads(store.checkpoint("files:inbox") or "{}")
    assert checkpoint == {"incident.jsonl": [info.st_size, info.st_mtime_ns, 20]}
    store.close()

    again = Metrics(sources=["inbox"], sinks=["out"], runtime_collectors=False)
    restarted = _service(tmp_path, JsonlSink("out", {"path": str(out)}), again, **settings)
    await run_until_written(restarted, out, len(clean))
    written = read_output(out)
    assert Counter(record_key(r) for r in written) == Counter(record_key(r) for r in clean)
    assert _events_of(again, "inbox") == len(records) - 20


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    for sample, found, value in metrics.samples():
        if sample == name and found == {"source": "inbox", **labels}:
            return value
    return 0.0


async def test_a_gzip_cut_after_several_batches_is_reported_once_and_loses_no_record(
    tmp_path: Path,
) -> None:
    """The service's own dead letter and metrics for a file read 200 records at a time."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    whole = gzip.compress(as_jsonl(scenario(3000)))
    path = inbox / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    readable = list(read_input(InputFile(str(path), path, path.stat().st_size)))
    records = [item for item in readable if isinstance(item, Record)]
    assert len(records) > 1000 and isinstance(readable[-1], UnreadableFile)
    dead = io.BytesIO()
    metrics = Metrics(sources=["inbox"], sinks=["out"], runtime_collectors=False)
    sink = JsonlSink("out", {"path": str(tmp_path / "out.jsonl")})
    service = _service(tmp_path, sink, metrics, batch_records=200)
    service.dead_letter = DeadLetterFile(dead)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while _sample(metrics, "trailguard_parse_errors_total", reason="invalid-json") < 1:
        assert not task.done(), "the service ended early"
        assert asyncio.get_running_loop().time() < deadline, "the read error was not reported"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, WAIT_SECONDS)
    assert _sample(metrics, "trailguard_events_total") == len(records)
    assert _sample(metrics, "trailguard_parse_errors_total", reason="invalid-json") == 1
    assert _sample(metrics, "trailguard_dead_lettered_records_total") == 1
    [letter] = [orjson.loads(line) for line in dead.getvalue().splitlines()]
    assert letter["origin"] == str(path)
    assert str(letter["error"]).startswith("cannot read the file: truncated gzip")
    assert _batches(metrics, "acked") == -(-len(readable) // 200)
