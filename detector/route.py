"""`trailguard route`: raw CloudTrail topics → one topic keyed by credential chain.

This is Kafka Streams' repartition step done with a plain consumer group and producer: every
record is republished with its routing key (`detector.core.routing`), so each partition of
the keyed topic holds whole sessions and the `trailguard run` instances reading it with
`shard_by: partition` each own the sessions of their partitions. Kafka assigns partitions
and moves them when instances come and go; nothing here coordinates instances.

Order per poll: publish, wait for the broker to acknowledge (producer flush), save the
routing table, then commit the consumed offsets. A crash republishes at most one poll, and
the run instances drop the repeats by eventID.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition

from detector import dead_letter
from detector.config import NON_EMPTY, parse_section
from detector.core.routing import RoutingTable
from detector.errors import ConfigError
from detector.records import BadInput, Rejection, parse_items
from detector.sources.files import decode_records
from detector.sources.kafka import PRODUCER_PASSTHROUGH, KafkaSettings
from detector.state.store import StateStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteSettings:
    consumer: KafkaSettings
    keyed_topic: str
    dead_letter_topic: str | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], *, source: str = "<settings>") -> RouteSettings:
        """The `route` section: a Kafka consumer's settings plus the topics it writes."""
        own = {k: v for k, v in raw.items() if k in _TOPICS}
        rest = {k: v for k, v in raw.items() if k not in _TOPICS}
        consumer = KafkaSettings.parse("route", rest, where="route", source=source)
        topics = parse_section(_RouteTopics, own, source=source, key="route")
        if topics.keyed_topic in consumer.topics:
            raise ConfigError(
                f"{source}: 'route.keyed_topic' must differ from the raw topics it reads"
            )
        return cls(
            consumer=consumer,
            keyed_topic=topics.keyed_topic,
            dead_letter_topic=topics.dead_letter_topic,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class _RouteTopics:
    # The topic `trailguard run` reads.
    keyed_topic: Annotated[str, NON_EMPTY]
    dead_letter_topic: Annotated[str, NON_EMPTY] | None = None


_TOPICS = frozenset({"keyed_topic", "dead_letter_topic"})


@dataclass(slots=True)
class RouteStats:
    consumed: int = 0
    routed: int = 0
    rejected: int = 0
    commits: int = 0


class Router:
    def __init__(self, settings: RouteSettings, store: StateStore) -> None:
        self.settings = settings
        self.store = store
        self.table = RoutingTable()
        self.stats = RouteStats()
        self._checkpoint = f"route:{settings.consumer.group_id}"
        saved = store.checkpoint(self._checkpoint)
        if saved:
            self.table.restore(orjson.loads(saved))

    def run(self, stop: threading.Event) -> RouteStats:
        s = self.settings.consumer
        extra = dict(s.extra or {})
        consumer = KafkaConsumer(
            bootstrap_servers=list(s.bootstrap_servers),
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset=s.auto_offset_reset,
            max_poll_records=s.max_poll_records,
            **extra,
        )
        producer_extra = {k: v for k, v in extra.items() if k in PRODUCER_PASSTHROUGH}
        producer = KafkaProducer(
            bootstrap_servers=list(s.bootstrap_servers),
            acks="all",
            linger_ms=20,
            batch_size=1024 * 1024,
            **producer_extra,
        )
        consumer.subscribe(list(s.topics))
        try:
            while not stop.is_set():
                polled = consumer.poll(timeout_ms=s.poll_timeout_ms, max_records=s.max_poll_records)
                if polled:
                    self._route(consumer, producer, polled)
        finally:
            producer.close()
            consumer.close(autocommit=False)
        return self.stats

    def _route(self, consumer: KafkaConsumer, producer: KafkaProducer, polled: Any) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, messages in polled.items():
            for message in messages:
                self.stats.consumed += 1
                origin = f"{tp.topic}/{tp.partition}@{message.offset}"
                items = (
                    decode_records(origin, message.value)
                    if message.value is not None
                    else iter([BadInput(origin, "empty message (tombstone)", None)])
                )
                reject = functools.partial(self._reject, producer)
                for item, event in parse_items(items, reject):
                    key = self.table.route(event)
                    producer.send(
                        self.settings.keyed_topic,
                        key=key.encode(),
                        value=orjson.dumps(item.value),
                    )
                    self.stats.routed += 1
            offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "", -1)
        producer.flush()
        self.store.save_checkpoint(self._checkpoint, orjson.dumps(self.table.snapshot()).decode())
        consumer.commit(offsets)
        self.stats.commits += 1

    def _reject(self, producer: KafkaProducer, rejection: Rejection) -> None:
        origin, reason, raw = rejection.origin, rejection.reason, rejection.raw
        self.stats.rejected += 1
        logger.warning("rejected record", extra={"origin": origin, "reason": reason})
        if self.settings.dead_letter_topic is not None:
            value = dead_letter.encode(origin=origin, error=reason, raw=raw).rstrip(b"\n")
            producer.send(self.settings.dead_letter_topic, value=value)
