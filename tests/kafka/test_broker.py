"""The test broker behaves as Kafka clients expect: keyed records keep their order within a
partition, and a consumer group's committed offsets are where a later member resumes."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.kafka.broker import FAST_GROUP_CONFIG, TansuBroker, count_messages, produce, read_all

pytestmark = pytest.mark.integration

MESSAGES = 1000
PARTITIONS = 4
KEYS = 10
# Generous: with kafka-python's default session timeout a join alone takes ~23 s on Tansu.
GROUP_TIMEOUT_S = 120.0


def value(index: int) -> bytes:
    return f"{index:06d}".encode()


def key_of(value: bytes) -> bytes:
    return f"key-{int(value) % KEYS}".encode()


@pytest.fixture
def filled_topic(kafka_broker: TansuBroker, topic_name: str) -> str:
    kafka_broker.create_topic(topic_name, PARTITIONS)
    produce(kafka_broker.bootstrap, topic_name, [value(i) for i in range(MESSAGES)], key_of)
    return topic_name


def test_every_produced_message_is_counted(kafka_broker: TansuBroker, filled_topic: str) -> None:
    assert count_messages(kafka_broker.bootstrap, filled_topic) == MESSAGES


def test_each_key_stays_in_one_partition_in_produce_order(
    kafka_broker: TansuBroker, filled_topic: str
) -> None:
    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    # Records of one partition arrive in offset order, so each key's list is in stored order.
    by_partition: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for record in read_all(kafka_broker.bootstrap, filled_topic):
        assert record.key == key_of(record.value)
        partitions_of[record.key].add(record.partition)
        by_partition[record.partition].append((record.offset, record.value))

    assert all(len(partitions) == 1 for partitions in partitions_of.values()), partitions_of
    assert len(partitions_of) == KEYS
    # Ten keys over four partitions: more than one partition must be in use.
    assert len(by_partition) > 1

    for partition, records in by_partition.items():
        offsets = [offset for offset, _ in records]
        assert offsets == sorted(offsets), f"partition {partition} delivered out of offset order"
        per_key: dict[bytes, list[int]] = defaultdict(list)
        for _, val in records:
            per_key[key_of(val)].append(int(val))
        for key, indexes in per_key.items():
            assert indexes == sorted(indexes), f"{key!r} out of produce order in {partition}"
            assert len(indexes) == MESSAGES // KEYS


def join_and_drain(
    bootstrap: str, topic: str, group: str, idle_s: float = 2.0
) -> tuple[KafkaConsumer, float, list[tuple[int, int]]]:
    """Join ``group`` with one consumer, read until idle; return it, join time and records."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        **FAST_GROUP_CONFIG,
    )
    received: list[tuple[int, int]] = []
    started = time.monotonic()
    joined_s: float | None = None
    last_record = started
    # One loop for joining and reading: the poll that completes the join can already return
    # records, which a separate wait-for-assignment loop would drop.
    while joined_s is None or time.monotonic() - last_record < idle_s:
        if joined_s is None and time.monotonic() - started > GROUP_TIMEOUT_S:
            consumer.close(autocommit=False)
            raise AssertionError(f"no partitions assigned within {GROUP_TIMEOUT_S:.0f} s")
        batches = consumer.poll(timeout_ms=100)
        if joined_s is None and consumer.assignment():
            joined_s = time.monotonic() - started
            last_record = time.monotonic()
        for batch in batches.values():
            received.extend((record.partition, record.offset) for record in batch)
        if batches:
            last_record = time.monotonic()
    return consumer, joined_s, received


def test_group_member_resumes_from_committed_offsets(
    kafka_broker: TansuBroker, filled_topic: str
) -> None:
    group = f"{filled_topic}-group"

    first, joined_s, received = join_and_drain(kafka_broker.bootstrap, filled_topic, group)
    try:
        print(f"first consumer joined {group} in {joined_s:.1f} s")
        assert len(received) == MESSAGES
        assert len(set(received)) == MESSAGES
        assert len(first.assignment()) == PARTITIONS
        first.commit()
        # A partition that no key hashed to is committed at offset 0.
        next_offsets = {tp.partition: 0 for tp in first.assignment()}
        for partition, offset in received:
            next_offsets[partition] = max(next_offsets[partition], offset + 1)
        for tp in first.assignment():
            assert first.committed(tp) == next_offsets[tp.partition]
    finally:
        # Leaving the group lets the next member take every partition straight away.
        first.close(autocommit=False)

    second, joined_s, received = join_and_drain(kafka_broker.bootstrap, filled_topic, group)
    try:
        print(f"second consumer joined {group} in {joined_s:.1f} s")
        assert received == []
        assert {tp: second.position(tp) for tp in second.assignment()} == {
            TopicPartition(filled_topic, partition): offset
            for partition, offset in next_offsets.items()
        }
    finally:
        second.close(autocommit=False)
