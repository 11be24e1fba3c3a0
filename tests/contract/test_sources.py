"""Every Source passes detector.testing.conformance.check_source against its real backend.

Kafka against the Tansu broker, sqs-s3 against moto's server, files on a temporary
directory, and LookupEvents (which moto does not serve) through botocore's Stubber in
front of a real boto3 CloudTrail client, answering each call from the published events
that fall in its StartTime..EndTime window.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped, unused-ignore]

from detector.adapters import load_adapters
from detector.sources.base import SOURCES
from detector.sources.lookup import LookupSource
from detector.testing.conformance import SourceUnderTest, check_source
from tests.kafka.broker import FAST_GROUP_CONFIG, TansuBroker, produce
from tests.moto_aws import REGION, Aws

pytestmark = pytest.mark.integration
load_adapters()


@pytest.mark.parametrize("batch_records", [5000, 2], ids=["one-batch", "several-batches"])
async def test_files(tmp_path: Path, batch_records: int) -> None:
    """With `batch_records: 2` each published file of three records is two batches."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    written: list[Path] = []

    async def publish(records: Sequence[Mapping[str, Any]]) -> None:
        path = inbox / f"part-{len(written):03d}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        # Older files are read first; make the order explicit rather than trust the clock.
        os.utime(path, ns=(1_000_000_000 * (len(written) + 1),) * 2)
        written.append(path)

    settings = {
        "path": str(inbox),
        "poll_interval_seconds": 0.05,
        "settle_seconds": 0,
        "batch_records": batch_records,
    }
    await check_source(
        SourceUnderTest(make=lambda: SOURCES.get("files")("inbox", settings), publish=publish)
    )


async def test_sqs_s3(aws: Aws) -> None:
    queue = aws.queue(f"trail-{uuid.uuid4().hex[:8]}")

    async def publish(records: Sequence[Mapping[str, Any]]) -> None:
        for record in records:
            envelope = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "AWS API Call via CloudTrail",
                "source": "aws.s3",
                "account": "111122223333",
                "time": record["eventTime"],
                "region": REGION,
                "resources": [],
                "detail": record,
            }
            aws.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(envelope))

    settings = {
        "queue_url": queue,
        "region": REGION,
        "endpoint_url": aws.endpoint,
        "wait_time_seconds": 1,
        # A message handed out and never settled comes back when this lapses.
        "visibility_timeout": 2,
    }
    await check_source(
        SourceUnderTest(make=lambda: SOURCES.get("sqs-s3")("trail", settings), publish=publish)
    )


async def test_kafka(kafka_broker: TansuBroker, topic_name: str) -> None:
    kafka_broker.create_topic(topic_name, partitions=2)

    async def publish(records: Sequence[Mapping[str, Any]]) -> None:
        produce(kafka_broker.bootstrap, topic_name, [orjson.dumps(r) for r in records])

    settings = {
        "bootstrap_servers": kafka_broker.bootstrap,
        "topics": [topic_name],
        "group_id": f"conformance-{uuid.uuid4().hex[:8]}",
        "poll_timeout_ms": 100,
        **FAST_GROUP_CONFIG,
    }
    await check_source(
        SourceUnderTest(
            make=lambda: SOURCES.get("kafka")("trail", settings), publish=publish, timeout=60
        )
    )


class StubbedCloudTrail:
    """A real boto3 CloudTrail client behind botocore's Stubber, answering from `events`.

    Each call is answered with the events whose time falls in its window, newest first, in
    the shape LookupEvents returns; the Stubber checks the request against the API model.
    """

    def __init__(self, events: list[Mapping[str, Any]]) -> None:
        self.events = events
        self.client = boto3.client(
            "cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def lookup_events(self, **params: Any) -> Any:
        start, end = params["StartTime"], params["EndTime"]
        inside = [e for e in self.events if start <= _time(e) <= end]
        inside.sort(key=_time, reverse=True)
        response = {
            "Events": [
                {
                    "EventId": e["eventID"],
                    "EventName": e["eventName"],
                    "EventTime": _time(e),
                    "EventSource": e["eventSource"],
                    "CloudTrailEvent": json.dumps(e),
                }
                for e in inside
            ]
        }
        self.stubber.add_response("lookup_events", response, params)
        return self.client.lookup_events(**params)


def _time(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))


async def test_lookup() -> None:
    events: list[Mapping[str, Any]] = []

    async def publish(records: Sequence[Mapping[str, Any]]) -> None:
        events.extend(records)

    settings = {
        "regions": [REGION],
        "poll_interval_seconds": 0.05,
        "overlap_seconds": 0,
        "lookback_seconds": 7 * 24 * 3600,
    }

    def make() -> LookupSource:
        return LookupSource(
            "trail",
            settings,
            client_factory=lambda region: StubbedCloudTrail(events),
            now=lambda: datetime(2025, 12, 9, tzinfo=UTC),
        )

    await check_source(
        SourceUnderTest(make=make, publish=publish, rereads_acked_after_restart=True)
    )
