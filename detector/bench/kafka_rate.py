"""`trailguard bench kafka`: the service against kafka-python consuming the same topic.

One run: produce N events to a fresh topic, read them back with a bare kafka-python consumer
built from the same source settings the service's Kafka source uses (its group, offsets and
poll size), then run `trailguard run` over the same topic (JSONL file sink, SQLite state)
and compare. Replay over the same events is printed too, so the service's own cost (sources,
sinks, state, commits) shows apart from the pipeline's.

Counts come from the messages read and the service's own event counter, never from the
broker's high watermarks: Tansu's undercount (see `tansu`). Both rates run from the moment
the consumer group assigned the partitions to the last message read or event counted, so
start-up and the group join are left out and the first fetch is in.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from kafka import ConsumerRebalanceListener, KafkaConsumer

from detector.bench.replay_rate import replay_in_child
from detector.bench.service import (
    BenchError,
    KafkaInput,
    ServiceProcess,
    demo_scopes,
    sqlite_state,
    stop_all,
    wait_for_count,
)
from detector.bench.tansu import TansuBroker, create_topic, produce
from detector.bench.workloads import WORKLOADS, read_lines, write_events
from detector.sources.kafka import KafkaSettings

WAIT_SECONDS: Final = 600.0


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """The given broker, or a Tansu broker started for the run and stopped after it."""
    if bootstrap is not None:
        yield bootstrap
        return
    with TansuBroker() as started:
        yield started.bootstrap


def new_topic(bootstrap: str, stem: str, partitions: int) -> str:
    name = f"trailguard-bench-{stem}-{uuid.uuid4().hex[:10]}"
    create_topic(bootstrap, name, partitions)
    return name


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    """Notes when the group first gave the reader partitions."""

    def __init__(self) -> None:
        self.at: float | None = None

    def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned and self.at is None:
            self.at = time.time()


def consume_only(kafka: KafkaInput, expected: int, *, timeout: float = WAIT_SECONDS) -> float:
    """Events per second a bare consumer reads, from its partition assignment to the
    `expected`th message (the service is timed the same way, see `service.Progress`).

    The client is built as the Kafka source builds its own, from the same settings parsed
    the same way; it only counts what it reads (no decoding, no commits).
    """
    raw = {k: v for k, v in kafka.source().items() if k not in ("type", "name")}
    settings = KafkaSettings.parse("trail", raw)
    consumer = KafkaConsumer(
        bootstrap_servers=list(settings.bootstrap_servers),
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset=settings.auto_offset_reset,
        max_poll_records=settings.max_poll_records,
        **dict(settings.extra),
    )
    assigned = _Assigned()
    try:
        consumer.subscribe(list(settings.topics), listener=assigned)
        deadline = time.monotonic() + timeout
        count = 0
        while count < expected:
            if time.monotonic() > deadline:
                raise BenchError(f"read {count} of {expected} messages in {timeout:.0f} s")
            polled = consumer.poll(
                timeout_ms=settings.poll_timeout_ms, max_records=settings.max_poll_records
            )
            count += sum(len(batch) for batch in polled.values())
        finished = time.time()
    finally:
        consumer.close(autocommit=False)
    if assigned.at is None:
        raise BenchError("the consume-only reader read without being assigned partitions")
    elapsed = finished - assigned.at
    return count / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Round:
    consume: float
    service: float

    @property
    def ratio(self) -> float:
        return self.service / self.consume if self.consume else 0.0


def run(
    out: IO[str],
    *,
    events: int,
    bootstrap: str | None = None,
    partitions: int = 1,
    workload: str = "mixed",
    repeat: int = 1,
) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="trailguard-bench-kafka-") as temporary,
        broker(bootstrap) as servers,
    ):
        folder = Path(temporary)
        path = folder / "events.jsonl"
        count, size, sessions = write_events(path, WORKLOADS[workload](events))
        topic = new_topic(servers, "kafka", partitions)
        produce(servers, topic, read_lines(path))
        out.write(
            f"topic {topic}: {count} events ({workload}, {sessions} sessions, "
            f"{size / 2**20:.1f} MiB) in {partitions} partition(s)\n"
        )
        out.write(f"{'round':>5} {'consume ev/s':>13} {'run ev/s':>10} {'run/consume':>12}\n")
        rounds: list[Round] = []
        for number in range(1, repeat + 1):
            base = KafkaInput(bootstrap=servers, topic=topic, group_id=f"{topic}-{number}")
            consumed = consume_only(
                KafkaInput(bootstrap=servers, topic=topic, group_id=f"{base.group_id}-consume"),
                count,
            )
            served = service_rate(folder, f"run-{number}", base, count)
            rounds.append(Round(consumed, served))
            out.write(
                f"{number:>5} {consumed:>13,.0f} {served:>10,.0f} {rounds[-1].ratio:>12.3f}\n"
            )
            out.flush()
        seconds, _ = replay_in_child(path, demo_scopes())
        replayed = count / seconds
        consume = statistics.median(r.consume for r in rounds)
        service = statistics.median(r.service for r in rounds)
        ratio = statistics.median(r.ratio for r in rounds)
        out.write(
            f"median of {len(rounds)}: consume-only {consume:,.0f} ev/s, trailguard run "
            f"{service:,.0f} ev/s, run/consume {ratio:.3f}\n"
            f"trailguard replay on the same events: {replayed:,.0f} ev/s (start-up included), "
            f"run/replay {service / replayed:.3f}\n"
        )


def service_rate(folder: Path, name: str, kafka: KafkaInput, expected: int) -> float:
    """Events per second `trailguard run` puts through, from its partition assignment to
    its last event."""
    service = ServiceProcess(folder, name, kafka, state=sqlite_state(folder / f"{name}.db"))
    service.start()
    try:
        progress = wait_for_count([service], expected, timeout=WAIT_SECONDS)
    finally:
        stop_all([service])
    return progress.rate
