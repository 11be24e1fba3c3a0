"""The SQS/S3 source against moto in server mode: S3 and SQS reached over HTTP.

CloudTrail log files hold real records (the OTRF proxy-exfiltration capture) and the bucket
notifies the queue through moto, so message bodies, URL-encoded keys and SNS envelopes are
the ones the emulator produces, not hand-written copies.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import orjson
import pytest
from moto.sqs.models import SQSBackend

from detector.errors import ConfigError, DetectorError, ParseError, TransientError
from detector.records import BadInput, Record
from detector.sources.base import SOURCES, Batch
from detector.sources.sqs_s3 import SqsS3Settings, SqsS3Source
from tests.conftest import CLOUDTRAIL, read_jsonl
from tests.moto_aws import REGION, Aws

ACCOUNT = "123456789123"  # the account in the captured records
EVENTS = list(read_jsonl(CLOUDTRAIL / "otrf_ec2_proxy_s3_exfiltration" / "events.jsonl"))
# Guards against a hang; nothing is asserted about how long anything takes.
PATIENCE = 30.0

integration = pytest.mark.integration


def log_key(index: int, prefix: str = "") -> str:
    return (
        f"{prefix}AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2025/12/08/"
        f"{ACCOUNT}_CloudTrail_{REGION}_20251208T{index:02d}05Z_Qx{index:014d}.json.gz"
    )


def log_file(records: list[dict[str, Any]]) -> bytes:
    return gzip.compress(orjson.dumps({"Records": records}))


def chunks(records: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def event_ids(batches: list[Batch]) -> Counter[str]:
    return Counter(
        item.value["eventID"]
        for batch in batches
        for item in batch.items
        if isinstance(item, Record)
    )


def eventbridge(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6f1b2a3c-0000-4000-8000-000000000001",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + record["eventSource"].split(".")[0],
        "account": ACCOUNT,
        "time": record["eventTime"],
        "region": REGION,
        "resources": [],
        "detail": record,
    }


@pytest.fixture
def visibility_changes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(queue name, seconds) of every visibility change the emulator is asked for."""
    calls: list[tuple[str, int]] = []
    original = SQSBackend.change_message_visibility

    def spy(
        self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        calls.append((queue_name, int(visibility_timeout)))
        original(self, queue_name, receipt_handle, visibility_timeout)

    monkeypatch.setattr(SQSBackend, "change_message_visibility", spy)
    return calls


# --- the source --------------------------------------------------------------------------


def make_source(aws: Aws, queue_url: str, **settings: Any) -> SqsS3Source:
    options = {
        "queue_url": queue_url,
        "region": REGION,
        "endpoint_url": aws.endpoint,
        "wait_time_seconds": 1,
        **settings,
    }
    source = SOURCES.get("sqs-s3")("trail", options)
    assert isinstance(source, SqsS3Source)
    return source


@dataclass
class Consumer:
    """Reads batches in the background, acking them (or not), like the runtime would."""

    source: SqsS3Source
    ack: bool = True
    batches: list[Batch] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Consumer:
        await self.source.start()
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.source.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, PATIENCE)

    async def _run(self) -> None:
        async for batch in self.source.batches():
            self.batches.append(batch)
            if self.ack:
                await batch.ack()

    async def until(self, condition: Callable[[], bool]) -> None:
        async def poll() -> None:
            while not condition():
                assert self.task is not None
                if self.task.done():
                    self.task.result()  # surface a crash of the source
                    raise AssertionError("the source ended early")
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), PATIENCE)

    def records(self) -> int:
        return sum(1 for b in self.batches for item in b.items if isinstance(item, Record))


@pytest.fixture
async def reader() -> AsyncIterator[Callable[[SqsS3Source], AsyncIterator[Batch]]]:
    """Hands out batches() iterators and closes them afterwards."""
    opened: list[tuple[SqsS3Source, Any]] = []

    def open_(source: SqsS3Source) -> AsyncIterator[Batch]:
        iterator = source.batches()
        opened.append((source, iterator))
        return iterator

    yield open_
    for source, iterator in opened:
        await iterator.aclose()
        await source.stop()


async def next_batch(iterator: AsyncIterator[Batch]) -> Batch:
    return await asyncio.wait_for(anext(iterator), PATIENCE)


# --- delivery ----------------------------------------------------------------------------


@integration
async def test_s3_notifications_yield_every_record_once(aws: Aws) -> None:
    queue = aws.queue("trail")
    aws.bucket_notifying("trail-logs", queue)  # S3 sends an s3:TestEvent here
    files = chunks(EVENTS, 30)
    for index, records in enumerate(files):
        # One file under a prefix with a space: S3 sends the key as "trail+logs/...".
        prefix = "trail logs/" if index == 0 else ""
        aws.s3.put_object(Bucket="trail-logs", Key=log_key(index, prefix), Body=log_file(records))
    source = make_source(aws, queue)
    assert not source.ready

    async with Consumer(source) as consumer:
        await consumer.until(lambda: len(consumer.batches) == len(files))
        assert source.ready
        await consumer.until(lambda: aws.counts(queue) == (0, 0))

    assert event_ids(consumer.batches) == Counter(e["eventID"] for e in EVENTS)
    assert consumer.records() == len(EVENTS) == 103
    first = consumer.batches[0].items[0]
    assert first.origin.startswith("s3://trail-logs/") and ":Records[" in first.origin
    assert any(i.origin.startswith("s3://trail-logs/trail logs/AWSLogs/") for i in
               (b.items[0] for b in consumer.batches))  # fmt: skip
    assert source.skipped_test_events == 1
    assert source.received_messages == len(files) + 1
    assert source.deleted_messages == len(files) + 1
    assert source.dead_lettered_messages == 0


@integration
async def test_sns_wrapped_notifications_yield_every_record_once(aws: Aws) -> None:
    queue = aws.queue("trail")
    topic = aws.sns.create_topic(Name="trail-logs")["TopicArn"]
    aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=aws.queue_arn(queue))
    aws.s3.create_bucket(Bucket="trail-logs")
    aws.s3.put_bucket_notification_configuration(
        Bucket="trail-logs",
        NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    files = chunks(EVENTS, 40)
    for index, records in enumerate(files):
        aws.s3.put_object(Bucket="trail-logs", Key=log_key(index), Body=log_file(records))
    # The bodies really are SNS envelopes around the S3 event.
    peek = aws.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=0)
    assert json.loads(peek["Messages"][0]["Body"])["Type"] == "Notification"

    source = make_source(aws, queue)
    async with Consumer(source) as consumer:
        await consumer.until(lambda: len(consumer.batches) == len(files))
        await consumer.until(lambda: aws.counts(queue) == (0, 0))

    assert event_ids(consumer.batches) == Counter(e["eventID"] for e in EVENTS)
    assert source.skipped_test_events == 1


@integration
async def test_eventbridge_events_yield_their_record(aws: Aws) -> None:
    queue = aws.queue("trail")
    direct = aws.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(eventbridge(EVENTS[0])))
    topic = aws.sns.create_topic(Name="cloudtrail-events")["TopicArn"]
    aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=aws.queue_arn(queue))
    aws.sns.publish(TopicArn=topic, Message=json.dumps(eventbridge(EVENTS[1])))

    source = make_source(aws, queue)
    async with Consumer(source) as consumer:
        await consumer.until(lambda: len(consumer.batches) == 2)
        await consumer.until(lambda: aws.counts(queue) == (0, 0))

    assert event_ids(consumer.batches) == Counter([EVENTS[0]["eventID"], EVENTS[1]["eventID"]])
    assert all(len(b.items) == 1 for b in consumer.batches)
    origins = {b.items[0].origin for b in consumer.batches}
    assert f"sqs:{direct['MessageId']}:detail" in origins
    assert source.deleted_messages == 2


@integration
async def test_a_message_is_deleted_only_when_its_batch_is_acked(
    aws: Aws, reader: Callable[[SqsS3Source], AsyncIterator[Batch]]
) -> None:
    queue = aws.queue("trail")
    aws.bucket_notifying("trail-logs", queue)
    aws.s3.put_object(Bucket="trail-logs", Key=log_key(1), Body=log_file(EVENTS[:10]))
    source = make_source(aws, queue, visibility_timeout=2)
    await source.start()
    batches = reader(source)

    unacked = await next_batch(batches)
    assert event_ids([unacked]) == Counter(e["eventID"] for e in EVENTS[:10])
    assert aws.counts(queue) == (0, 1)  # in flight, not gone
    await asyncio.sleep(2.5)  # let the visibility timeout lapse
    assert aws.counts(queue) == (1, 0)  # back on the queue: nothing was lost

    again = await next_batch(batches)
    assert event_ids([again]) == event_ids([unacked])
    await again.ack()
    assert aws.counts(queue) == (0, 0)
    assert source.deleted_messages == 2  # the log file's message and the s3:TestEvent


@integration
async def test_stop_gives_back_received_messages_and_ends_batches(
    aws: Aws, reader: Callable[[SqsS3Source], AsyncIterator[Batch]]
) -> None:
    queue = aws.queue("trail")
    for event in EVENTS[:3]:
        aws.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(eventbridge(event)))
    source = make_source(aws, queue, visibility_timeout=300)
    await source.start()
    batches = reader(source)

    first = await next_batch(batches)
    await source.stop()
    with pytest.raises(StopAsyncIteration):
        await next_batch(batches)
    # The two messages received with the first one are visible at once, not in 300 s.
    assert source.released_messages == 2
    assert aws.counts(queue) == (2, 1)
    await first.ack()  # a batch handed out before stop can still be settled
    assert aws.counts(queue) == (2, 0)


@integration
async def test_wait_closed_closes_with_batches_unsettled_and_nothing_is_lost(
    aws: Aws, reader: Callable[[SqsS3Source], AsyncIterator[Batch]]
) -> None:
    queue = aws.queue("trail")
    aws.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(eventbridge(EVENTS[0])))
    source = make_source(aws, queue)
    await source.start()
    batches = reader(source)

    batch = await next_batch(batches)
    await source.stop()
    with pytest.raises(StopAsyncIteration):
        await next_batch(batches)
    assert source.ready  # still open: the batch in hand can be acked
    await source.wait_closed()
    assert not source.ready
    with pytest.raises(TransientError):
        await batch.ack()
    assert aws.counts(queue) == (0, 1)  # not deleted: it returns after its timeout


# --- poison, failures and skips ----------------------------------------------------------


@integration
async def test_unreadable_objects_end_in_the_dead_letter_queue_with_the_error(aws: Aws) -> None:
    queue = aws.queue("trail")
    dlq = aws.queue("trail-dlq")
    aws.bucket_notifying("trail-logs", queue)
    aws.s3.put_object(
        Bucket="trail-logs", Key=log_key(1), Body=b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4
    )
    aws.s3.put_object(Bucket="trail-logs", Key=log_key(2), Body=b'{"Records": [{"eventID": ')
    aws.s3.put_object(Bucket="trail-logs", Key=log_key(3), Body=log_file(EVENTS[:5]))
    source = make_source(aws, queue, dead_letter_queue_url=dlq)

    async with Consumer(source) as consumer:
        await consumer.until(lambda: source.dead_lettered_messages == 2)
        await consumer.until(lambda: aws.counts(queue) == (0, 0))

    assert event_ids(consumer.batches) == Counter(e["eventID"] for e in EVENTS[:5])
    dead = aws.take_all(dlq)
    errors = {}
    for message in dead:
        key = unquote_plus(json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"])
        attributes = message["MessageAttributes"]
        errors[key] = attributes["TrailGuard.Error"]["StringValue"]
        assert attributes["TrailGuard.MessageId"]["StringValue"]
    assert set(errors) == {log_key(1), log_key(2)}
    assert "gzip" in errors[log_key(1)]
    assert "invalid JSON" in errors[log_key(2)]


@integration
@pytest.mark.parametrize(
    "error", [TransientError("sink unreachable"), DetectorError("sink refused the token")]
)
async def test_a_nacked_batch_comes_back_at_once_until_the_receive_count_is_spent(
    aws: Aws,
    reader: Callable[[SqsS3Source], AsyncIterator[Batch]],
    visibility_changes: list[tuple[str, int]],
    error: DetectorError,
) -> None:
    queue = aws.queue("trail")
    dlq = aws.queue("trail-dlq")
    body = json.dumps(eventbridge(EVENTS[0]))
    aws.sqs.send_message(QueueUrl=queue, MessageBody=body)
    source = make_source(
        aws, queue, visibility_timeout=300, max_receive_count=1, dead_letter_queue_url=dlq
    )
    await source.start()
    batches = reader(source)

    first = await next_batch(batches)
    # A failed sink says nothing about the message: it is not dead-lettered, it comes back.
    await first.nack(error)
    assert ("trail", 0) in visibility_changes
    assert aws.counts(queue) == (1, 0)
    assert source.requeued_messages == 1

    second = await next_batch(batches)  # received a second time: above max_receive_count
    assert event_ids([second]) == event_ids([first])
    await second.nack(error)
    assert aws.counts(queue) == (0, 0)
    [dead] = aws.take_all(dlq)
    assert dead["Body"] == body  # unchanged, so it can be redriven
    assert dead["MessageAttributes"]["TrailGuard.ReceiveCount"]["StringValue"] == "2"
    assert str(error) in dead["MessageAttributes"]["TrailGuard.Error"]["StringValue"]
    assert source.dead_lettered_messages == 1


@integration
async def test_a_worn_out_message_without_dead_letter_queue_is_left_for_the_redrive_policy(
    aws: Aws, reader: Callable[[SqsS3Source], AsyncIterator[Batch]]
) -> None:
    queue = aws.queue("trail")
    aws.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(eventbridge(EVENTS[0])))
    source = make_source(aws, queue, max_receive_count=1, visibility_timeout=300)
    await source.start()
    batches = reader(source)

    await (await next_batch(batches)).nack(ParseError("broken"))
    await (await next_batch(batches)).nack(ParseError("broken"))
    assert aws.counts(queue) == (0, 1)  # left in flight for the queue's own redrive
    assert source.deleted_messages == source.dead_lettered_messages == 0


@integration
async def test_digests_and_other_objects_are_skipped_counted_and_deleted(aws: Aws) -> None:
    queue = aws.queue("trail")
    aws.bucket_notifying("trail-logs", queue)
    digest_key = (
        f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/2025/12/08/"
        f"{ACCOUNT}_CloudTrail-Digest_{REGION}_trail_{REGION}_20251208T010000Z.json.gz"
    )
    digest = {"awsAccountId": ACCOUNT, "logFiles": [], "digestSignatureAlgorithm": "SHA256"}
    aws.s3.put_object(Bucket="trail-logs", Key=digest_key, Body=gzip.compress(orjson.dumps(digest)))
    aws.s3.put_object(Bucket="trail-logs", Key="reports/cost.csv", Body=b"service,cost\nec2,3\n")
    aws.s3.put_object(Bucket="trail-logs", Key="reports/empty.json", Body=b"")
    # Outside the CloudTrail layout but a CloudTrail log all the same: read, not skipped.
    aws.s3.put_object(Bucket="trail-logs", Key="exports/copy.json.gz", Body=log_file(EVENTS[:7]))
    aws.s3.put_object(Bucket="trail-logs", Key=log_key(1), Body=log_file(EVENTS[7:9]))
    source = make_source(aws, queue)

    async with Consumer(source) as consumer:
        await consumer.until(lambda: len(consumer.batches) == 2)
        await consumer.until(lambda: aws.counts(queue) == (0, 0))

    assert event_ids(consumer.batches) == Counter(e["eventID"] for e in EVENTS[:9])
    assert source.skipped_digests == 1
    assert source.skipped_objects == 2
    assert source.skipped_test_events == 1
    assert source.received_messages == source.deleted_messages == 6


@integration
async def test_s3_test_event_is_skipped_and_deleted(aws: Aws) -> None:
    queue = aws.queue("trail")
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "trail-logs"}
    aws.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(test_event))
    source = make_source(aws, queue)

    async with Consumer(source) as consumer:
        await consumer.until(lambda: source.skipped_test_events == 1)
        await consumer.until(lambda: aws.counts(queue) == (0, 0))

    assert consumer.batches == []
    assert source.deleted_messages == 1


@integration
async def test_a_large_object_extends_its_message_visibility(
    aws: Aws, visibility_changes: list[tuple[str, int]]
) -> None:
    queue = aws.queue("trail")
    aws.bucket_notifying("trail-logs", queue)
    aws.s3.put_object(Bucket="trail-logs", Key=log_key(1), Body=log_file(EVENTS[:20]))
    source = make_source(aws, queue, visibility_timeout=120, extend_visibility_above_bytes=64)

    async with Consumer(source) as consumer:
        await consumer.until(lambda: len(consumer.batches) == 1)

    assert ("trail", 120) in visibility_changes
    assert source.visibility_extensions == 1
    assert consumer.records() == 20


@integration
async def test_a_small_object_does_not_extend_visibility(
    aws: Aws, visibility_changes: list[tuple[str, int]]
) -> None:
    queue = aws.queue("trail")
    aws.bucket_notifying("trail-logs", queue)
    aws.s3.put_object(Bucket="trail-logs", Key=log_key(1), Body=log_file(EVENTS[:2]))
    source = make_source(aws, queue)

    async with Consumer(source) as consumer:
        await consumer.until(lambda: len(consumer.batches) == 1)

    assert visibility_changes == []
    assert source.visibility_extensions == 0


@integration
async def test_a_body_that_is_not_json_is_handed_over_as_bad_input(aws: Aws) -> None:
    queue = aws.queue("trail")
    sent = aws.sqs.send_message(QueueUrl=queue, MessageBody="hello, not json")
    source = make_source(aws, queue)

    async with Consumer(source) as consumer:
        await consumer.until(lambda: len(consumer.batches) == 1)

    [item] = consumer.batches[0].items
    assert isinstance(item, BadInput)
    assert item.origin == f"sqs:{sent['MessageId']}"
    assert item.raw == "hello, not json"


@integration
async def test_a_queue_that_does_not_exist_is_a_config_error(aws: Aws) -> None:
    source = make_source(aws, f"{aws.endpoint}/123456789012/no-such-queue")
    with pytest.raises(ConfigError, match=r"sources\.trail\.queue_url"):
        await source.start()


# --- settings ------------------------------------------------------------------------------


def test_defaults_and_region_from_the_queue_url() -> None:
    settings = SqsS3Settings.from_mapping(
        "trail", {"queue_url": "https://sqs.eu-west-1.amazonaws.com/111122223333/trail"}
    )
    assert settings.region == "eu-west-1"
    assert settings.wait_time_seconds == 20
    assert settings.max_messages == 10
    assert settings.visibility_timeout == 300
    assert settings.extend_visibility_above_bytes == 16 * 1024 * 1024
    assert settings.max_receive_count == 5
    assert settings.dead_letter_queue_url is None


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({}, "queue_url"),
        ({"queue_url": 5}, "queue_url"),
        ({"queue_url": "sqs://nope"}, "queue_url"),
        ({"max_messages": 11}, "max_messages"),
        ({"max_messages": 0}, "max_messages"),
        ({"wait_time_seconds": 21}, "wait_time_seconds"),
        ({"visibility_timeout": True}, "visibility_timeout"),
        ({"max_receive_count": "5"}, "max_receive_count"),
        ({"extend_visibility_above_bytes": -1}, "extend_visibility_above_bytes"),
        ({"dead_letter_queue_url": ""}, "dead_letter_queue_url"),
        ({"max_mesages": 3}, "max_mesages"),
    ],
)
def test_invalid_settings_name_the_key(settings: dict[str, Any], key: str) -> None:
    full = {"queue_url": "https://sqs.us-east-1.amazonaws.com/1/q", **settings}
    if "queue_url" not in settings and key == "queue_url":
        del full["queue_url"]
    with pytest.raises(ConfigError, match=rf"sources\.trail\.{key}\b"):
        SOURCES.get("sqs-s3")("trail", full)
