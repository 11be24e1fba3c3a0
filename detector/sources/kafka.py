"""Kafka source: a kafka-python consumer group over topics of CloudTrail records.

Message values may be single records, S3-style `{"Records": [...]}` batches or EventBridge
envelopes. The consumer lives on its own thread because kafka-python's consumer is not
thread-safe: only that thread polls, commits and closes it. The asyncio side receives one
Batch per partition per poll through a bounded queue (backpressure: the thread waits when
the service is behind).

At-least-once: `ack` only records the batch's next offset; the consumer thread commits it
before its next poll. The service acknowledges a batch after its results were handed to the
sinks and the state was saved, so a committed offset never runs ahead of saved state.

`nack` rewinds: the consumer thread seeks the partition back to the failed batch's first
offset before its next poll, so the batch is read again. Batches of that partition handed
out before the seek, from the failed offset on, are read again too; acking them does not
move the committed offset past the failed batch.

Rebalances: when partitions are revoked, the thread asks the service to flush, waits until
every batch it delivered from those partitions has been acknowledged, commits, and tells the
service to forget those shards. A shard is claimed (and its state restored, fencing off the
previous owner) when its first batch arrives at the new owner.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError

from detector.config import AT_LEAST_ONE, DISTINCT, NON_EMPTY, Where, parse_adapter
from detector.records import BadInput, EncodedMessages
from detector.sources.base import DEFAULT_SHARD, SOURCES, Batch, ShardHooks, SourceBase
from detector.sources.files import decode_records

logger = logging.getLogger(__name__)

# Security and client settings passed to KafkaConsumer unchanged.
PASSTHROUGH = frozenset(
    {
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "sasl_kerberos_service_name",
        "sasl_oauth_token_provider",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_password",
        "ssl_check_hostname",
        "ssl_crlfile",
        "client_id",
        "session_timeout_ms",
        "heartbeat_interval_ms",
        "max_poll_interval_ms",
        "request_timeout_ms",
        "fetch_max_bytes",
        "max_partition_fetch_bytes",
    }
)
# Settings only a consumer understands; the rest of PASSTHROUGH also configures producers.
CONSUMER_ONLY = frozenset(
    {
        "session_timeout_ms",
        "heartbeat_interval_ms",
        "max_poll_interval_ms",
        "fetch_max_bytes",
        "max_partition_fetch_bytes",
    }
)
PRODUCER_PASSTHROUGH = PASSTHROUGH - CONSUMER_ONLY
# How long a rebalance waits for the service to acknowledge what it was handed.
REVOKE_WAIT_SECONDS = 120.0


def shard_name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSettings:
    bootstrap_servers: Annotated[tuple[str, ...], NON_EMPTY]
    topics: Annotated[tuple[str, ...], DISTINCT]
    group_id: Annotated[str, NON_EMPTY]
    # "partition": each partition is its own state shard (the keyed topic of `trailguard
    # route`, so instances can share the work); "none": one shard for everything (raw
    # topics read by a single instance).
    shard_by: Literal["none", "partition"] = "none"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_poll_records: Annotated[int, AT_LEAST_ONE] = 2000
    poll_timeout_ms: Annotated[int, AT_LEAST_ONE] = 500
    queue_batches: Annotated[int, AT_LEAST_ONE] = 8
    # Security and client settings, passed to the client unchanged (PASSTHROUGH).
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    sasl_kerberos_service_name: str | None = None
    sasl_oauth_token_provider: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = None
    ssl_check_hostname: bool | None = None
    ssl_crlfile: str | None = None
    client_id: str | None = None
    session_timeout_ms: Annotated[int, AT_LEAST_ONE] | None = None
    heartbeat_interval_ms: Annotated[int, AT_LEAST_ONE] | None = None
    max_poll_interval_ms: Annotated[int, AT_LEAST_ONE] | None = None
    request_timeout_ms: Annotated[int, AT_LEAST_ONE] | None = None
    fetch_max_bytes: Annotated[int, AT_LEAST_ONE] | None = None
    max_partition_fetch_bytes: Annotated[int, AT_LEAST_ONE] | None = None

    @property
    def extra(self) -> Mapping[str, Any]:
        """The passthrough settings that were given, as client keyword arguments."""
        given = {key: getattr(self, key) for key in sorted(PASSTHROUGH)}
        return {key: value for key, value in given.items() if value is not None}

    @classmethod
    def parse(
        cls, name: str, raw: Mapping[str, Any], *, where: str = "", source: str = "<settings>"
    ) -> KafkaSettings:
        """Validate a Kafka section (a source's, or the route's); errors name `where.key`.

        `bootstrap_servers` may be one "host:port,host:port" string, as Kafka tools write it.
        """
        servers = raw.get("bootstrap_servers") if isinstance(raw, Mapping) else None
        if isinstance(servers, str):
            split = [part.strip() for part in servers.split(",")]
            raw = {**raw, "bootstrap_servers": [part for part in split if part]}
        return parse_adapter(cls, name, raw, Where(source, where or f"sources.{name}"), section="")


_END = object()


class KafkaSource(SourceBase):
    def __init__(
        self, name: str, settings: Mapping[str, Any], *, where: Where | None = None
    ) -> None:
        self.name = name
        where = where or Where(key=f"sources.{name}")
        self.settings = KafkaSettings.parse(name, settings, where=where.key, source=where.source)
        self._hooks: ShardHooks | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Condition()
        self._outstanding: dict[TopicPartition, int] = defaultdict(int)
        self._to_commit: dict[TopicPartition, int] = {}
        # Rewinds asked for by nack: where to seek, and from which offset on a batch handed
        # out before the seek (an older generation) no longer counts when it is acked.
        self._seek_to: dict[TopicPartition, int] = {}
        self._rewound_from: dict[TopicPartition, int] = {}
        self._generation: dict[TopicPartition, int] = defaultdict(int)
        self._final = threading.Event()  # set by wait_closed: nothing more will be settled
        self._ready = False
        self.error: BaseException | None = None
        # Counted on the consumer thread, read by the metrics at scrape time.
        self.messages = 0
        self.commits = 0
        self.rebalances = 0
        self.seeks = 0
        self._lag: dict[str, int] = {}

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def lag(self) -> Mapping[str, int]:
        return dict(self._lag)  # a copy: the consumer thread updates it

    def counters(self) -> Mapping[str, int]:
        return {
            "messages": self.messages,
            "commits": self.commits,
            "rebalances": self.rebalances,
            "seeks": self.seeks,
        }

    def attach_shards(self, hooks: ShardHooks) -> None:
        self._hooks = hooks

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(maxsize=self.settings.queue_batches)
        self._thread = threading.Thread(target=self._run, name=f"kafka-{self.name}", daemon=True)
        self._thread.start()

    async def batches(self) -> AsyncIterator[Batch]:
        assert self._queue is not None, "start() first"
        while True:
            item = await self._queue.get()
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item

    async def stop(self) -> None:
        self._stopping.set()

    async def wait_closed(self) -> None:
        """After the final flush: the thread commits what was acknowledged and closes.

        Batches still unsettled then will never be: their offsets stay uncommitted and the
        next owner of the partition reads them again.
        """
        with self._lock:
            self._final.set()
            self._lock.notify_all()
        await asyncio.to_thread(self._closed.wait)

    # --- consumer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        consumer = None
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=list(self.settings.bootstrap_servers),
                group_id=self.settings.group_id,
                enable_auto_commit=False,
                auto_offset_reset=self.settings.auto_offset_reset,
                max_poll_records=self.settings.max_poll_records,
                **dict(self.settings.extra or {}),
            )
            consumer.subscribe(list(self.settings.topics), listener=_Listener(self, consumer))
            while not self._stopping.is_set():
                self._commit(consumer)
                generations = self._rewind(consumer)
                polled = consumer.poll(
                    timeout_ms=self.settings.poll_timeout_ms,
                    max_records=self.settings.max_poll_records,
                )
                self._ready = True
                for tp, messages in polled.items():
                    if messages:
                        self._deliver(self._batch(tp, messages, generations[tp]))
                self._update_lag(consumer)
            self._put(_END)
            # Wait for the service's final flush to acknowledge what it was handed.
            self._wait_acked(set(self._outstanding), timeout=REVOKE_WAIT_SECONDS)
            self._commit(consumer)
        except (KafkaError, OSError) as exc:
            logger.exception("kafka source %s failed", self.name)
            self.error = exc
            self._put(_END)
        finally:
            if consumer is not None:
                consumer.close(autocommit=False)
            self._closed.set()

    def _rewind(self, consumer: KafkaConsumer) -> dict[TopicPartition, int]:
        """Seek back the partitions a nack asked for; the generations the next poll carries.

        The generations are read before polling: a nack that arrives while the poll runs
        marks what that poll returns as superseded.
        """
        with self._lock:
            seeks, self._seek_to = self._seek_to, {}
            generations = defaultdict(int, self._generation)
        assigned = consumer.assignment()
        for tp, offset in seeks.items():
            if tp in assigned:
                consumer.seek(tp, offset)
                self.seeks += 1
                logger.info("rewound %s:%d to offset %d", tp.topic, tp.partition, offset)
        return generations

    def _batch(self, tp: TopicPartition, messages: Sequence[Any], generation: int = 0) -> Batch:
        # Decoded when the pipeline parses them, not on this thread: see EncodedMessages.
        items = EncodedMessages(decode_records)
        for message in messages:
            origin = f"{tp.topic}/{tp.partition}@{message.offset}"
            if message.value is None:
                items.reject(BadInput(origin, "empty message (tombstone)", None))
                continue
            items.append(origin, message.value)
        self.messages += len(messages)
        first_offset = messages[0].offset
        next_offset = messages[-1].offset + 1
        shard = (
            shard_name(tp.topic, tp.partition)
            if self.settings.shard_by == "partition"
            else DEFAULT_SHARD
        )

        def superseded() -> bool:
            """Handed out before a rewind to an offset at or below this batch's first."""
            return generation < self._generation[tp] and first_offset >= self._rewound_from.get(
                tp, first_offset + 1
            )

        async def ack() -> None:
            with self._lock:
                if not superseded():
                    self._to_commit[tp] = max(self._to_commit.get(tp, 0), next_offset)
                self._outstanding[tp] -= 1
                self._lock.notify_all()

        async def nack(exc: BaseException) -> None:
            logger.warning("batch from %s failed, reading it again: %s", origin, exc)
            with self._lock:
                if not superseded():
                    self._seek_to[tp] = min(self._seek_to.get(tp, first_offset), first_offset)
                    # The lowest rewind so far: erring low re-reads a batch, erring high
                    # would commit past one that failed.
                    self._rewound_from[tp] = min(
                        self._rewound_from.get(tp, first_offset), first_offset
                    )
                    self._generation[tp] += 1
                self._outstanding[tp] -= 1
                self._lock.notify_all()

        with self._lock:
            self._outstanding[tp] += 1
        return Batch(source=self.name, shard=shard, items=items, ack=ack, nack=nack)

    def _deliver(self, batch: Batch) -> None:
        # Not taken once the service stopped reading: its offsets stay uncommitted, so the
        # partition's next owner reads it again.
        self._put(batch)

    def _put(self, item: Any) -> bool:
        """Queue `item` for the service; False when the service stopped reading (wait_closed)."""
        assert self._loop is not None and self._queue is not None
        future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        while True:
            try:
                future.result(timeout=1.0)
            except TimeoutError:
                if self._final.is_set() or self._loop.is_closed():
                    future.cancel()
                    return False
                continue  # the service is behind: wait, which is the backpressure
            return True

    def _commit(self, consumer: KafkaConsumer) -> None:
        """Commit what the service acknowledged; on the consumer thread, never the network's."""
        offsets = self._take_offsets(None)
        if offsets:
            consumer.commit(offsets)
            self.commits += 1

    def _wait_acked(self, partitions: set[TopicPartition], *, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(
                lambda: (
                    self._final.is_set()
                    or all(self._outstanding.get(tp, 0) <= 0 for tp in partitions)
                ),
                timeout=timeout,
            )

    def _update_lag(self, consumer: KafkaConsumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = consumer.position(tp) if highwater is not None else None
            if highwater is not None and position is not None:
                self._lag[shard_name(tp.topic, tp.partition)] = max(0, highwater - position)

    async def _revoked(self, consumer: KafkaConsumer, partitions: set[TopicPartition]) -> None:
        """Runs on kafka-python's network thread during a rebalance: settle, commit, let go.

        Nothing here may block that thread (it also sends the heartbeats), so waiting is done
        with the client's own awaitable sleep and the commit with its awaitable variant.
        """
        self.rebalances += 1
        if not partitions:
            return
        # kafka-python 3 runs rebalance listeners on its network thread and offers no public
        # awaitable sleep or commit there; these two internals are what its own auto-commit
        # uses. The dependency is pinned below 4 for that reason.
        net = consumer._net
        loop = self._loop
        if self._hooks is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._hooks.request_flush)
        deadline = time.monotonic() + REVOKE_WAIT_SECONDS
        while not self._all_acked(partitions):
            if time.monotonic() > deadline:
                logger.warning("rebalance: batches of %s not acknowledged in time", partitions)
                break
            await net.sleep(0.02)
        offsets = self._take_offsets(partitions)
        if offsets:
            coordinator = consumer._coordinator
            await coordinator._commit_offsets_sync_async(offsets)
            self.commits += 1
        for tp in partitions:
            self._lag.pop(shard_name(tp.topic, tp.partition), None)
        if (
            self._hooks is not None
            and loop is not None
            and not loop.is_closed()
            and self.settings.shard_by != "none"
        ):
            shards = [shard_name(tp.topic, tp.partition) for tp in partitions]
            future = asyncio.run_coroutine_threadsafe(self._hooks.forget(shards), loop)
            while not future.done() and time.monotonic() < deadline:
                await net.sleep(0.02)

    def _all_acked(self, partitions: set[TopicPartition]) -> bool:
        """Every batch of `partitions` settled, or none ever will be (after wait_closed)."""
        with self._lock:
            return self._final.is_set() or all(
                self._outstanding.get(tp, 0) <= 0 for tp in partitions
            )

    def _take_offsets(
        self, partitions: set[TopicPartition] | None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        with self._lock:
            offsets = {
                tp: OffsetAndMetadata(offset, "", -1)
                for tp, offset in self._to_commit.items()
                if partitions is None or tp in partitions
            }
            for tp in offsets:
                del self._to_commit[tp]
        return offsets


class _Listener(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource, consumer: KafkaConsumer) -> None:
        self._source = source
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._source._revoked(self._consumer, set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        names = sorted(shard_name(tp.topic, tp.partition) for tp in assigned)
        logger.info("partitions assigned: %s", names)


SOURCES.register("kafka", KafkaSource)
