"""`trailguard bench latency`: decision latency of `trailguard run` fed at a steady rate.

A producer in this process sends the mixed workload to a fresh topic at the target rate
(in 10 ms steps), while the service reads it. The figures are the service's own histogram,
`trailguard_decision_latency_seconds`: from a batch's arrival from the Kafka source to its
results handed to every sink and responder. The histogram is read before the paced
traffic starts and after the last event was counted, so the warm-up event and the group
join are left out. Quantiles are interpolated within buckets, as PromQL's
`histogram_quantile` does, so they are as fine as the buckets around them.

When the service cannot keep up with the rate, batches queue behind it and the latency
grows for as long as the run lasts; the achieved rate is printed next to the target so a
reader can tell the two cases apart.
"""

from __future__ import annotations

import math
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from kafka import KafkaProducer

from detector.bench.kafka_rate import WAIT_SECONDS, broker, new_topic
from detector.bench.service import (
    BenchError,
    KafkaInput,
    ServiceProcess,
    sqlite_state,
    stop_all,
    wait_for_count,
)
from detector.bench.workloads import mixed_events

HISTOGRAM: Final = "trailguard_decision_latency_seconds"
FLUSH_HISTOGRAM: Final = "trailguard_state_flush_duration_seconds"
CUT_HISTOGRAM: Final = "trailguard_state_cut_duration_seconds"
# A schema of its own per run (dropped after it): the workload's event ids repeat from run to
# run, and a state kept from an earlier run would take them all for duplicates.
SCHEMA_STEM: Final = "trailguard_bench_latency_"
STEP_SECONDS: Final = 0.01
# Within this fraction of the target, the service counts as having kept up.
KEPT_UP: Final = 0.95


@dataclass(frozen=True, slots=True)
class Buckets:
    """A histogram's cumulative bucket counts by upper bound, with its count and sum."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    count: float
    total: float

    @classmethod
    def scrape(cls, samples: Mapping[str, Sequence[tuple[Mapping[str, str], float]]]) -> Buckets:
        rows = sorted(
            (float(labels["le"]), value) for labels, value in samples.get(f"{HISTOGRAM}_bucket", [])
        )
        if not rows:
            raise BenchError(f"the service exports no {HISTOGRAM}")
        count = sum(v for _, v in samples.get(f"{HISTOGRAM}_count", []))
        total = sum(v for _, v in samples.get(f"{HISTOGRAM}_sum", []))
        return cls(tuple(b for b, _ in rows), tuple(v for _, v in rows), count, total)

    def since(self, earlier: Buckets) -> Buckets:
        return Buckets(
            self.bounds,
            tuple(a - b for a, b in zip(self.cumulative, earlier.cumulative, strict=True)),
            self.count - earlier.count,
            self.total - earlier.total,
        )

    def quantile(self, q: float) -> float:
        """`histogram_quantile(q, ...)`: linear within the bucket the rank falls in."""
        if self.count <= 0:
            return math.nan
        rank = q * self.count
        lower, below = 0.0, 0.0
        for bound, cumulative in zip(self.bounds, self.cumulative, strict=True):
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower  # past the last finite bucket: its bound is all we know
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, cumulative
        return lower

    def milliseconds(self, q: float) -> str:
        """The quantile for printing; past the last finite bucket only a bound is known."""
        value = self.quantile(q) * 1000
        finite = [b for b in self.bounds if not math.isinf(b)]
        rank = q * self.count
        if finite and self.count and self.cumulative[len(finite) - 1] < rank:
            return f"> {value:.0f} ms"
        return f"{value:.1f} ms"


def _drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _mean_ms(
    samples: Mapping[str, Sequence[tuple[Mapping[str, str], float]]], histogram: str
) -> tuple[float, float]:
    """A histogram's count over the whole run, and its mean in milliseconds."""
    count = sum(v for _, v in samples.get(f"{histogram}_count", []))
    total = sum(v for _, v in samples.get(f"{histogram}_sum", []))
    return count, total / count * 1000 if count else math.nan


def paced(lines: Iterator[bytes], rate: int, seconds: float) -> Iterator[bytes]:
    """The lines, released no faster than `rate` per second, for `seconds`."""
    total = int(rate * seconds)
    started = time.monotonic()
    sent = 0
    while sent < total:
        due = min(total, int(rate * (time.monotonic() - started)) + 1)
        while sent < due:
            yield next(lines)
            sent += 1
        time.sleep(STEP_SECONDS)


def run(
    out: IO[str],
    *,
    rate: int,
    seconds: float,
    bootstrap: str | None = None,
    dsn: str | None = None,
) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="trailguard-bench-latency-") as temporary,
        broker(bootstrap) as servers,
    ):
        folder = Path(temporary)
        topic = new_topic(servers, "latency", 1)
        kafka = KafkaInput(bootstrap=servers, topic=topic, group_id=f"{topic}-run")
        schema = SCHEMA_STEM + uuid.uuid4().hex[:10]
        state = (
            {"store": "postgres", "dsn": dsn, "schema": schema}
            if dsn
            else sqlite_state(folder / "state.db")
        )
        service = ServiceProcess(folder, "run", kafka, state=state)
        producer = KafkaProducer(
            bootstrap_servers=servers, acks=1, linger_ms=5, enable_idempotence=False
        )
        # Made before the clock starts, so the paced loop does nothing but send.
        total = int(rate * seconds) + 1
        lines = iter([line.rstrip(b"\n") for line in mixed_events(total)])
        service.start()
        try:
            # One event first: the service has joined its group and reads the topic once it
            # has counted it, so the paced traffic meets a consumer that is already running.
            producer.send(topic, next(lines))
            producer.flush()
            wait_for_count([service], 1, timeout=WAIT_SECONDS)
            before = Buckets.scrape(service.samples() or {})
            started = time.time()
            sent = 1
            for line in paced(lines, rate, seconds):
                producer.send(topic, line)
                sent += 1
            producer.flush()
            produced = (sent - 1) / (time.time() - started)
            progress = wait_for_count([service], sent, timeout=WAIT_SECONDS)
            final = service.samples() or {}
            after = Buckets.scrape(final)
        finally:
            producer.close()
            stop_all([service])
            if dsn:
                _drop_schema(dsn, schema)
        window = after.since(before)
        flushes, flush_ms = _mean_ms(final, FLUSH_HISTOGRAM)
        _, cut_ms = _mean_ms(final, CUT_HISTOGRAM)
        store = "PostgreSQL" if dsn else "SQLite"
        consumed = (sent - 1) / (progress.finished - started)
        kept_up = "yes" if consumed >= KEPT_UP * produced else "no: batches queued behind it"
        out.write(
            f"target {rate:,} ev/s for {seconds:g} s: produced {produced:,.0f} ev/s, "
            f"the service took {consumed:,.0f} ev/s (kept up: {kept_up})\n"
            f"decision latency over {window.count:,.0f} batches of {sent - 1:,} events: "
            f"p50 {window.milliseconds(0.5)}, p99 {window.milliseconds(0.99)}, "
            f"mean {window.total / window.count * 1000 if window.count else math.nan:.1f} ms\n"
            f"(from {HISTOGRAM}: batch arrival to results handed to sinks and responders)\n"
            f"state in {store}: {flushes:,.0f} flushes, each holding batches up for "
            f"{cut_ms:.1f} ms (sinks flushed, deltas cut) and done {flush_ms:.1f} ms after "
            "it began (mean)\n"
        )
