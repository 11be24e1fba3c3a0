"""`trailguard run` and `trailguard route` against a real Kafka-protocol broker (Tansu).

Every test compares with `trailguard replay` over the same records: the service must emit
exactly the findings, alerts and responses replay emits, whatever happens to the process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

from detector.sinks.jsonl import record_key
from tests.kafka.broker import FAST_GROUP_CONFIG, TansuBroker, free_port, produce, read_all
from tests.scenario import DEMO, as_jsonl, canonical, read_output, scenario

pytestmark = pytest.mark.integration
WAIT_SECONDS = 120.0
PARTITIONS = 4
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


def _replay(records: list[dict[str, Any]], tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / f"replay-{uuid.uuid4().hex[:8]}.jsonl"
    path.write_bytes(as_jsonl(records))
    command = [sys.executable, "-m", "detector", "replay", "--format", "jsonl"]
    command += ["--scopes", str(DEMO / "scopes.yaml"), str(path)]
    done = subprocess.run(command, capture_output=True, check=True)
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def _account(record: dict[str, Any]) -> bytes:
    # Raw topics keep each account's records in order, as CloudTrail organisation trails do.
    identity = record.get("userIdentity") or {}
    return str(identity.get("accountId") or record.get("recipientAccountId")).encode()


def _produce(broker: TansuBroker, topic: str, records: list[dict[str, Any]]) -> None:
    produce(
        broker.bootstrap,
        topic,
        [orjson.dumps(r) for r in records],
        key_fn=lambda value: _account(orjson.loads(value)),
    )


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return scenario()


@pytest.fixture(scope="module")
def expected(records: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Any:
    found = _replay(records, tmp_path_factory.mktemp("replay"))
    assert any(r["type"] == "response" for r in found)
    return found


class Instance:
    """One `trailguard run` (or `route`) process with its own config, output and port."""

    def __init__(self, folder: Path, name: str, config: str, command: str = "run") -> None:
        self.folder = folder
        self.name = name
        self.port = free_port()
        self.out = folder / f"{name}.jsonl"
        self.log = folder / f"{name}.log"
        self.config = folder / f"{name}.yaml"
        self.config.write_text(
            config.format(out=self.out, port=self.port, name=name, folder=folder)
        )
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "detector", self.command, "--config", str(self.config)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=self.log.open("ab")
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=WAIT_SECONDS)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=WAIT_SECONDS)

    def metric(self, name: str) -> float:
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read()
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else ""


def _config(
    broker: TansuBroker,
    topic: str,
    group: str,
    *,
    shard_by: str,
    state: str,
    flush_seconds: int = 1,
    max_poll_records: int = 2000,
) -> str:
    fast = "\n".join(f"    {k}: {v}" for k, v in FAST_GROUP_CONFIG.items())
    return f"""
scopes: {DEMO / "scopes.yaml"}
sources:
  - type: kafka
    name: trail
    bootstrap_servers: ["{broker.bootstrap}"]
    topics: ["{topic}"]
    group_id: {group}
    shard_by: {shard_by}
    max_poll_records: {max_poll_records}
{fast}
sinks:
  - type: jsonl
    path: "{{out}}"
state:
{state}
  flush_interval_seconds: {flush_seconds}
service:
  instance: "{{name}}"
http:
  port: {{port}}
log:
  format: json
"""


def _sqlite(folder: Path) -> str:
    return f"  store: sqlite\n  path: {folder / 'state.db'}"


def _wait(predicate: Any, instances: list[Instance], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        for instance in instances:
            assert instance.alive(), f"{instance.name} exited early:\n{instance.tail()}"
        time.sleep(0.2)
    logs = "\n".join(f"--- {i.name}\n{i.tail()}" for i in instances)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def _committed(broker: TansuBroker, topic: str, group: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in range(PARTITIONS)}
    finally:
        consumer.close()


def test_run_emits_what_replay_emits_and_commits(
    kafka_broker: TansuBroker, topic_name: str, tmp_path: Path, records: Any, expected: Any
) -> None:
    kafka_broker.create_topic(topic_name, PARTITIONS)
    _produce(kafka_broker, topic_name, records)
    group = f"{topic_name}-run"
    config = _config(kafka_broker, topic_name, group, shard_by="none", state=_sqlite(tmp_path))
    instance = Instance(tmp_path, "solo", config)
    instance.start()
    try:
        _wait(lambda: len(read_output(instance.out)) >= len(expected), [instance], "all records")
        time.sleep(2.0)  # let anything extra arrive before comparing
    finally:
        assert instance.stop() == 0, instance.tail()
    assert canonical(read_output(instance.out)) == canonical(expected)
    per_partition = Counter(m.partition for m in read_all(kafka_broker.bootstrap, topic_name))
    assert _committed(kafka_broker, topic_name, group) == {
        p: per_partition.get(p, 0) for p in range(PARTITIONS)
    }


def test_sigkill_mid_stream_loses_nothing_and_alerts_once(
    kafka_broker: TansuBroker, topic_name: str, tmp_path: Path, records: Any, expected: Any
) -> None:
    kafka_broker.create_topic(topic_name, PARTITIONS)
    half = len(records) // 2
    _produce(kafka_broker, topic_name, records[:half])
    group = f"{topic_name}-run"
    # Small batches flushed one by one, so the kill lands between commits.
    config = _config(
        kafka_broker,
        topic_name,
        group,
        shard_by="none",
        state=_sqlite(tmp_path),
        flush_seconds=0,
        max_poll_records=200,
    )
    first = Instance(tmp_path, "first", config)
    first.start()
    _wait(
        lambda: sum(_committed(kafka_broker, topic_name, group).values()) > 0,
        [first],
        "a first commit",
    )
    first.kill()
    written_before = len(read_output(first.out))
    _produce(kafka_broker, topic_name, records[half:])

    # The restarted instance writes to the same file, as a restarted pod would.
    second = Instance(tmp_path, "first", config)
    second.start()
    try:
        _wait(lambda: len(read_output(second.out)) >= len(expected), [second], "all records")
        time.sleep(2.0)
        processed = second.metric("trailguard_events_total")
    finally:
        assert second.stop() == 0, second.tail()
    got = read_output(second.out)
    duplicates = [k for k, n in Counter(record_key(r) for r in got).items() if n > 1]
    assert duplicates == []
    assert canonical(got) == canonical(expected)
    assert written_before < len(expected)
    # It resumed from committed offsets and restored state, rather than starting over.
    assert processed < len(records)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"trailguard_test_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(PG_DSN, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_two_instances_share_partitions_and_hand_over_state(
    kafka_broker: TansuBroker,
    topic_name: str,
    tmp_path: Path,
    records: Any,
    expected: Any,
    pg_schema: str,
) -> None:
    raw, keyed = f"{topic_name}-raw", f"{topic_name}-keyed"
    kafka_broker.create_topic(raw, PARTITIONS)
    kafka_broker.create_topic(keyed, PARTITIONS)
    half = len(records) // 2
    _produce(kafka_broker, raw, records[:half])
    expected_half = _replay(records[:half], tmp_path)

    fast = "\n".join(f"  {k}: {v}" for k, v in FAST_GROUP_CONFIG.items())
    router = Instance(
        tmp_path,
        "router",
        f"""
route:
  bootstrap_servers: ["{kafka_broker.bootstrap}"]
  topics: ["{raw}"]
  group_id: {topic_name}-router
  keyed_topic: {keyed}
{fast}
state:
  store: sqlite
  path: {tmp_path / "router.db"}
log:
  format: json
""",
        command="route",
    )
    postgres = f'  store: postgres\n  dsn: "{PG_DSN}"\n  schema: {pg_schema}'
    config = _config(kafka_broker, keyed, f"{topic_name}-run", shard_by="partition", state=postgres)
    a, b = Instance(tmp_path, "a", config), Instance(tmp_path, "b", config)
    for instance in (router, a, b):
        instance.start()
    try:

        def union() -> list[dict[str, Any]]:
            return read_output(a.out) + read_output(b.out)

        _wait(lambda: len(union()) >= len(expected_half), [router, a, b], "the first half")
        # Both instances own partitions and did work.
        assert a.metric("trailguard_events_total") > 0, a.tail()
        assert b.metric("trailguard_events_total") > 0, b.tail()
        assert a.stop() == 0, a.tail()
        _produce(kafka_broker, raw, records[half:])
        _wait(lambda: len(union()) >= len(expected), [router, b], "all records")
        time.sleep(2.0)
        got = union()
    finally:
        for instance in (b, router, a):
            if instance.process is not None:
                instance.stop()
    duplicates = [k for k, n in Counter(record_key(r) for r in got).items() if n > 1]
    assert duplicates == []
    assert canonical(got) == canonical(expected)
