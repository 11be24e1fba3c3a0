"""A failed sink write on a Kafka batch: the offset is not committed past it, its state is
not saved, and the restarted service writes everything a clean run writes."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest

from detector.adapters import load_adapters
from detector.service import Service
from detector.sinks.jsonl import JsonlSink, record_key
from detector.sources.base import SOURCES
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline
from tests.kafka.broker import FAST_GROUP_CONFIG, TansuBroker, produce
from tests.scenario import DEMO, incident, read_output, run_until_written
from tests.service.test_failed_batches import (
    SETTINGS,
    FailingSink,
    SinkDown,
    _clean_output,
)

pytestmark = pytest.mark.integration
load_adapters()


def _service(tmp_path: Path, settings: dict[str, object], sink: JsonlSink) -> Service:
    return Service(
        SETTINGS,
        pipeline_factory=lambda: build_pipeline(SETTINGS, scopes_path=DEMO / "scopes.yaml"),
        sources=[SOURCES.get("kafka")("trail", settings)],
        sinks=[sink],
        store=SqliteStateStore(tmp_path / "state.db"),
        owner="test",
    )


async def test_a_failed_kafka_batch_is_read_again_after_a_restart(
    tmp_path: Path, kafka_broker: TansuBroker, topic_name: str
) -> None:
    kafka_broker.create_topic(topic_name, partitions=1)
    produce(kafka_broker.bootstrap, topic_name, [orjson.dumps(r) for r in incident()])
    settings: dict[str, object] = {
        "bootstrap_servers": kafka_broker.bootstrap,
        "topics": [topic_name],
        "group_id": f"failed-{uuid.uuid4().hex[:8]}",
        "max_poll_records": 20,  # the incident's 40 records in two batches
        "poll_timeout_ms": 100,
        **FAST_GROUP_CONFIG,
    }
    clean = _clean_output()
    out = tmp_path / "out.jsonl"
    failing = _service(tmp_path, settings, FailingSink(out, fail_on=2, error=SinkDown("401")))
    with pytest.raises(SinkDown):
        await asyncio.wait_for(failing.run(asyncio.Event()), 60)
    assert 0 < len(read_output(out)) < len(clean)

    restarted = _service(tmp_path, settings, JsonlSink("out", {"path": str(out)}))
    await run_until_written(restarted, out, len(clean))
    written = read_output(out)
    assert Counter(record_key(r) for r in written) == Counter(record_key(r) for r in clean)
