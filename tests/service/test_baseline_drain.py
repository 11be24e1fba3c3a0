"""The service drains the baselines at the end of every batch, before the batch's sink write,
and a failed batch leaves no trace in their saved state either.

The real watched-directory source, SQLite store and JSONL sink; the baseline is the rule
baseline of tests/baselines.py (pure logic: which events it flags and learns from is fixed),
so what is checked here is the plumbing: order, rollback, the record contract.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from detector.config import Settings, StateSettings
from detector.core.learned import Drained
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline
from detector.metrics import Metrics
from detector.service import Service
from detector.sinks.jsonl import JsonlSink, record_key, step_records
from detector.sources.watch import WatchSource
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline
from tests.baselines import RuleBaseline
from tests.scenario import DEMO, incident, read_output, run_until_written
from tests.service.test_failed_batches import FailingSink, SinkDown, _inbox

SETTINGS = Settings(state=StateSettings(flush_interval_seconds=60))
WAIT_SECONDS = 30.0
# Flags the incident's destructive calls; every session's third event is "anomalous".
FLAGGED = frozenset({"cloudformation:DeleteStack", "s3:DeleteBucket"})
MILESTONE = 3


def _baselines(_: Any) -> list[RuleBaseline]:
    return [RuleBaseline(flag=FLAGGED, milestone=MILESTONE)]


def _pipeline() -> Pipeline:
    return build_pipeline(SETTINGS, scopes_path=DEMO / "scopes.yaml", baselines=_baselines)


def _rules(pipeline: Pipeline) -> RuleBaseline:
    (baseline,) = pipeline.baselines
    assert isinstance(baseline, RuleBaseline)
    return baseline


def _clean(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What one pipeline writes for the records as one batch, and its baseline's state."""
    pipeline = _pipeline()
    out: list[dict[str, Any]] = []
    for value in records:
        out.extend(step_records(pipeline.process(parse_record(value))))
    out.extend(step_records(pipeline.drain()))
    return out, pipeline.snapshot()["baselines"]["rules"]


def _service(tmp_path: Path, sink: JsonlSink, metrics: Metrics | None = None) -> Service:
    source = WatchSource(
        "inbox",
        {"path": str(tmp_path / "inbox"), "poll_interval_seconds": 0.05, "settle_seconds": 0},
    )
    return Service(
        SETTINGS,
        pipeline_factory=_pipeline,
        sources=[source],
        sinks=[sink],
        store=SqliteStateStore(tmp_path / "state.db"),
        owner="test",
        metrics=metrics,
    )


def test_the_drained_record_contract_is_the_steps() -> None:
    pipeline = _pipeline()
    for value in incident()[:6]:  # the sixth is the third of one session
        pipeline.process(parse_record(value))
    drained = pipeline.drain()
    assert [f.kind for f in drained.findings] == ["anomalous-session"]
    records = step_records(drained)
    assert [r["type"] for r in records] == ["finding"] + ["alert"] * len(drained.alerts)
    assert records[0] == drained.findings[0].to_record()
    assert step_records(Drained()) == []


async def test_drained_findings_go_out_with_their_batch(tmp_path: Path) -> None:
    records = incident()
    clean, state = _clean(records)
    assert any(r.get("kind") == "anomalous-session" for r in clean)
    _inbox(tmp_path)
    out = tmp_path / "out.jsonl"
    metrics = Metrics(sources=["inbox"], sinks=["out"], runtime_collectors=False)
    service = _service(tmp_path, JsonlSink("out", {"path": str(out)}), metrics)
    await run_until_written(service, out, len(clean))
    written = read_output(out)
    assert Counter(record_key(r) for r in written) == Counter(record_key(r) for r in clean)
    # Each batch's drained findings come before the next batch's first record.
    first_batch = {r["eventID"] for r in records[:20]}
    drained_first = [
        i
        for i, r in enumerate(written)
        if r["type"] == "finding"
        and r["kind"] == "anomalous-session"
        and r["event_id"] in first_batch
    ]
    second_start = min(
        i for i, r in enumerate(written) if r.get("event_id") not in first_batch | {None}
    )
    assert drained_first and max(drained_first) < second_start
    store = SqliteStateStore(tmp_path / "state.db")
    saved = store.load("default")
    store.close()
    assert saved is not None and saved["baselines"]["rules"] == state
    drains = [
        v
        for n, _, v in metrics.samples()
        if n == "trailguard_baseline_drain_duration_seconds_count"
    ]
    assert drains == [2.0]  # one per batch


async def test_a_failed_batch_leaves_no_trace_in_the_baseline_state(tmp_path: Path) -> None:
    records = incident()
    clean, state = _clean(records)
    _, after_first = _clean(records[:20])
    _inbox(tmp_path)
    out = tmp_path / "out.jsonl"
    failed = _service(tmp_path, FailingSink(out, fail_on=2, error=SinkDown("401")))
    with pytest.raises(SinkDown):
        await asyncio.wait_for(failed.run(asyncio.Event()), WAIT_SECONDS)
    store = SqliteStateStore(tmp_path / "state.db")
    saved = store.load("default")
    store.close()
    # Saved at the final flush: the first file's learning and counts, none of the second's.
    assert saved is not None and saved["baselines"]["rules"] == after_first
    assert after_first != state

    restarted = _service(tmp_path, JsonlSink("out", {"path": str(out)}))
    await run_until_written(restarted, out, len(clean))
    written = read_output(out)
    assert Counter(record_key(r) for r in written) == Counter(record_key(r) for r in clean)
    store = SqliteStateStore(tmp_path / "state.db")
    saved = store.load("default")
    store.close()
    assert saved is not None and saved["baselines"]["rules"] == state
