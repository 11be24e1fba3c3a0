"""`trailguard bench scale`: two `run` instances against one, over a keyed topic.

The events are produced to a topic of several partitions keyed as `trailguard route` keys
them (`RoutingTable`, in this process), so each partition holds whole credential chains.
`trailguard run` with `shard_by: partition` makes each partition a state shard: an instance
claims a shard (fencing off its previous owner) when the first batch of the partition
arrives, and the instances of one consumer group share the partitions as Kafka assigns them.
First one instance reads the whole topic in a consumer group of its own, then two instances
start together in another group over the same topic and a shared SQLite state file; the
ratio is the pair's combined rate over the single instance's.

Rates run from the first partition assignment to the last event counted (summed over the
pair). A rebalance
during the pair's run (when the second member joins after the first was assigned every
partition) is part of what is measured, and is printed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Final

import orjson
from kafka import KafkaProducer

from detector.bench.kafka_rate import WAIT_SECONDS, broker, new_topic
from detector.bench.service import (
    BenchError,
    KafkaInput,
    Progress,
    ServiceProcess,
    sqlite_state,
    stop_all,
    wait_for_count,
)
from detector.bench.workloads import mixed_events
from detector.core.parse import parse_record
from detector.core.routing import RoutingTable

REBALANCES: Final = "trailguard_source_operations_total"


def produce_keyed(bootstrap: str, topic: str, lines: Iterable[bytes]) -> tuple[int, float]:
    """Publish each record keyed by its credential chain's root, as the router would.

    Returns the count and the seconds spent doing the router's own work on them (decode,
    parse, route, re-encode), without the Kafka client's: what one router process costs
    per event before any I/O.
    """
    table = RoutingTable()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=10,
        batch_size=1024 * 1024,
        enable_idempotence=False,
    )
    routing = 0.0
    try:
        futures = []
        for line in lines:
            began = time.perf_counter()
            decoded = orjson.loads(line)
            key = table.route(parse_record(decoded)).encode()
            value = orjson.dumps(decoded)
            routing += time.perf_counter() - began
            futures.append(producer.send(topic, key=key, value=value))
        producer.flush()
        for future in futures:
            future.get(timeout=0)
    finally:
        producer.close()
    return len(futures), routing


def keyed(bootstrap: str, topic: str, group: str) -> KafkaInput:
    return KafkaInput(
        bootstrap=bootstrap, topic=topic, group_id=f"{topic}-{group}", shard_by="partition"
    )


def rebalances(service: ServiceProcess) -> int:
    samples = (service.samples() or {}).get(REBALANCES, [])
    return int(sum(value for labels, value in samples if labels.get("operation") == "rebalances"))


def measure(
    folder: Path, name: str, kafka: KafkaInput, instances: int, expected: int
) -> tuple[Progress, int]:
    """Start `instances` services in one group; their progress and the rebalances seen."""
    state = sqlite_state(folder / f"{name}.db")
    services = [
        ServiceProcess(folder, f"{name}-{number}", kafka, state=state)
        for number in range(1, instances + 1)
    ]
    for service in services:
        service.start()
    try:
        progress = wait_for_count(services, expected, timeout=WAIT_SECONDS)
        # Each member sees the join that gave it its partitions; more means a rebalance.
        moved = sum(rebalances(service) for service in services) - instances
    finally:
        stop_all(services)
    if sum(1 for count in progress.per_instance if count > 0) < instances:
        raise BenchError(f"{name}: not every instance was given partitions: {progress}")
    return progress, max(0, moved)


def run(out: IO[str], *, events: int, bootstrap: str | None = None, partitions: int = 4) -> None:
    if partitions < 2:
        raise BenchError("two instances share a topic only with 2 or more partitions")
    with (
        tempfile.TemporaryDirectory(prefix="trailguard-bench-scale-") as temporary,
        broker(bootstrap) as servers,
    ):
        folder = Path(temporary)
        topic = new_topic(servers, "keyed", partitions)
        count, routing = produce_keyed(servers, topic, mixed_events(events))
        out.write(
            f"keyed topic {topic}: {count} events (mixed) in {partitions} partitions\n"
            f"routing alone (decode, parse, key, encode; no Kafka I/O): "
            f"{count / routing if routing else float('nan'):,.0f} ev/s in one process\n"
        )
        one, _ = measure(folder, "one", keyed(servers, topic, "one"), 1, count)
        out.write(f"1 instance : {one.rate:>9,.0f} ev/s\n")
        out.flush()
        two, moved = measure(folder, "two", keyed(servers, topic, "two"), 2, count)
        shares = " + ".join(f"{share:,.0f}" for share in two.per_instance)
        out.write(
            f"2 instances: {two.rate:>9,.0f} ev/s (events per instance {shares}; "
            f"rebalances after the first join: {moved})\n"
            f"ratio 2/1: {two.rate / one.rate if one.rate else float('nan'):.2f}\n"
        )
