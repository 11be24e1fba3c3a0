"""Smoke tests of the benchmarks that drive `trailguard run` over Kafka: each runs on a tiny
size against the session's Tansu broker (one also starts its own) and must print its
figures, well formed. The figures' values are never asserted."""

from __future__ import annotations

import re
import subprocess
import sys

import psycopg
import pytest

from detector.bench.latency import SCHEMA_STEM
from tests.kafka.broker import TansuBroker
from tests.state.conftest import PG_DSN

pytestmark = pytest.mark.integration
NUMBER = r"[\d,]+(?:\.\d+)?"


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", "bench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_bench_kafka_compares_run_with_consume_only_on_its_own_broker() -> None:
    done = _bench("kafka", "--events", "600", "--repeat", "2", "--partitions", "2")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^topic \S+: 600 events \(mixed, \d+ sessions", done.stdout, re.M)
    assert "in 2 partition(s)" in done.stdout
    rows = re.findall(rf"^\s+([12])\s+({NUMBER})\s+({NUMBER})\s+(\d\.\d{{3}})$", done.stdout, re.M)
    assert [number for number, *_ in rows] == ["1", "2"], done.stdout
    for _, consume, run, ratio in rows:
        assert _number(consume) > 0 and _number(run) > 0
        assert _number(ratio) == pytest.approx(_number(run) / _number(consume), abs=0.001)
    summary = re.search(
        rf"^median of 2: consume-only ({NUMBER}) ev/s, trailguard run ({NUMBER}) ev/s, "
        rf"run/consume (\d\.\d{{3}})\n"
        rf"trailguard replay on the same events: ({NUMBER}) ev/s .*run/replay (\d+\.\d{{3}})$",
        done.stdout,
        re.M,
    )
    assert summary is not None, done.stdout


def test_bench_kafka_without_a_reachable_broker_says_so() -> None:
    done = _bench("kafka", "--events", "10", "--bootstrap-servers", "127.0.0.1:9")
    assert done.returncode == 1
    assert "trailguard bench: could not measure: Kafka:" in done.stderr
    assert "127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr


def test_bench_latency_prints_quantiles_and_state_flushes_and_drops_its_schema(
    kafka_broker: TansuBroker,
) -> None:
    # PostgreSQL rather than the default SQLite: the run must also leave no schema behind.
    done = _bench(
        "latency", "--rate", "300", "--seconds", "2",
        "--bootstrap-servers", kafka_broker.bootstrap, "--postgres-dsn", PG_DSN,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    head = re.search(
        rf"^target 300 ev/s for 2 s: produced ({NUMBER}) ev/s, the service took ({NUMBER}) ev/s "
        r"\(kept up: (yes|no: batches queued behind it)\)$",
        done.stdout,
        re.M,
    )
    assert head is not None, done.stdout
    figures = re.search(
        rf"^decision latency over ({NUMBER}) batches of 600 events: p50 (?:> )?({NUMBER}) ms, "
        rf"p99 (?:> )?({NUMBER}) ms, mean ({NUMBER}) ms$",
        done.stdout,
        re.M,
    )
    assert figures is not None, done.stdout
    batches, p50, p99, _ = (_number(g) for g in figures.groups())
    assert batches >= 1
    assert 0 <= p50 <= p99
    state = re.search(
        rf"^state in PostgreSQL: ({NUMBER}) flushes, each holding batches up for ({NUMBER}) "
        rf"ms \(sinks flushed, deltas cut\) and done ({NUMBER}) ms after it began \(mean\)$",
        done.stdout,
        re.M,
    )
    assert state is not None, done.stdout
    flushes, held, saved = (_number(g) for g in state.groups())
    assert flushes >= 1
    assert held >= 0 and saved >= 0
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        left = conn.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
            (SCHEMA_STEM + "%",),
        ).fetchall()
    assert left == []


def test_bench_scale_prints_the_ratio_of_two_instances_to_one(kafka_broker: TansuBroker) -> None:
    done = _bench(
        "scale", "--events", "800", "--partitions", "2",
        "--bootstrap-servers", kafka_broker.bootstrap,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    one = re.search(rf"^1 instance :\s+({NUMBER}) ev/s$", done.stdout, re.M)
    two = re.search(
        rf"^2 instances:\s+({NUMBER}) ev/s \(events per instance ({NUMBER}) \+ ({NUMBER}); "
        r"rebalances after the first join: (\d+)\)$",
        done.stdout,
        re.M,
    )
    ratio = re.search(r"^ratio 2/1: (\d+\.\d\d)$", done.stdout, re.M)
    routing = re.search(rf"^routing alone .*: ({NUMBER}) ev/s in one process$", done.stdout, re.M)
    assert one and two and ratio and routing, done.stdout
    assert _number(routing.group(1)) > 0
    # Both instances did part of the work, and together all of it.
    first, second = _number(two.group(2)), _number(two.group(3))
    assert first > 0 and second > 0
    assert first + second >= 800
    assert _number(ratio.group(1)) == pytest.approx(
        _number(two.group(1)) / _number(one.group(1)), abs=0.01
    )


def test_bench_scale_needs_two_partitions(kafka_broker: TansuBroker) -> None:
    done = _bench(
        "scale", "--events", "10", "--partitions", "1",
        "--bootstrap-servers", kafka_broker.bootstrap,
    )  # fmt: skip
    assert done.returncode == 1
    assert "2 or more partitions" in done.stderr
