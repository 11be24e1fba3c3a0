"""The benchmarks' own logic: workloads, the histogram quantile, reading /metrics."""

from __future__ import annotations

import math
from collections import Counter

import orjson
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from detector.bench.latency import Buckets
from detector.bench.service import parse_exposition
from detector.bench.workloads import (
    credential_set,
    mixed_events,
    own_session_events,
    sessions_per_copy,
    templates,
)
from detector.config import Settings
from detector.core.parse import parse_record
from detector.wiring import build_pipeline
from tests.scenario import DEMO


def test_the_mixed_stream_holds_about_two_thousand_sessions_of_whole_copies() -> None:
    copies = round(2000 / sessions_per_copy())
    records = [orjson.loads(line) for line in mixed_events(copies * len(templates()))]
    sets = {credential_set(r) for r in records}
    assert 1900 <= len(sets) <= 2100
    # Every copy plays the whole incident: each template's event name once per copy.
    names = Counter((r["eventSource"], r["eventName"]) for r in records)
    expected = Counter((r["eventSource"], r["eventName"]) for r in templates())
    assert names == Counter({k: v * copies for k, v in expected.items()})
    # The incident's redelivered record is redelivered in every copy, nothing else repeats.
    repeats = len(templates()) - len({r["eventID"] for r in templates()})
    assert len({r["eventID"] for r in records}) == len(records) - repeats * copies


def _chains(lines: list[bytes]) -> Counter[tuple[str, str, bool]]:
    """(kind, delegated by, has a parent session) of every event's session."""
    pipeline = build_pipeline(Settings(), scopes_path=DEMO / "scopes.yaml")
    seen: Counter[tuple[str, str, bool]] = Counter()
    for line in lines:
        session = pipeline.process(parse_record(orjson.loads(line))).session
        if session is not None:
            seen[
                (session.kind.value, session.delegated_by or "", bool(session.parent_session_id))
            ] += 1
    return seen


def test_each_copy_links_its_own_minted_credentials_as_the_incident_does() -> None:
    """Copies rewrite the keys AssumeRole mints too, so a copy's role sessions walk back to
    that copy's caller, as the original's do: every copy attributes like the incident."""
    copies = round(2000 / sessions_per_copy())
    original = _chains([orjson.dumps(r) for r in templates()])
    assert any(parent for _, _, parent in original), "the incident has minted sessions"
    assert _chains(list(mixed_events(copies * len(templates())))) == Counter(
        {key: count * copies for key, count in original.items()}
    )


def test_own_session_events_never_share_credentials() -> None:
    records = [orjson.loads(line) for line in own_session_events(500)]
    assert len({credential_set(r) for r in records}) == 500


def _buckets(values: list[float], bounds: tuple[float, ...]) -> Buckets:
    registry = CollectorRegistry()
    histogram = Histogram("h_seconds", "test", buckets=bounds, registry=registry)
    for value in values:
        histogram.observe(value)
    text = (
        generate_latest(registry)
        .decode()
        .replace("h_seconds", "trailguard_decision_latency_seconds")
    )
    return Buckets.scrape(parse_exposition(text))


def test_quantiles_interpolate_within_buckets_as_promql_does() -> None:
    buckets = _buckets([0.005] * 50 + [0.015] * 49 + [0.5], (0.01, 0.02, 1.0))
    assert buckets.count == 100
    # The 50th of 100 is the last in the first bucket; the 99th is near the top of the second.
    assert buckets.quantile(0.5) == pytest.approx(0.01)
    assert buckets.quantile(0.99) == pytest.approx(0.01 + 0.01 * 49 / 49)
    assert buckets.quantile(0.995) == pytest.approx(0.02 + 0.98 * 0.5)


def test_quantiles_past_the_last_bucket_and_of_nothing() -> None:
    assert _buckets([5.0], (0.01, 1.0)).quantile(0.99) == 1.0
    assert _buckets([5.0], (0.01, 1.0)).milliseconds(0.99) == "> 1000 ms"
    assert _buckets([0.5], (0.01, 1.0)).milliseconds(0.99) == "990.1 ms"
    assert math.isnan(_buckets([], (0.01,)).quantile(0.5))


def test_a_window_of_the_histogram_leaves_out_what_came_before() -> None:
    early = _buckets([0.5] * 10, (0.01, 1.0))
    late = _buckets([0.5] * 10 + [0.005] * 30, (0.01, 1.0))
    window = late.since(early)
    assert window.count == 30
    assert window.quantile(0.99) < 0.01


def test_parse_exposition_reads_labels_and_values() -> None:
    samples = parse_exposition(
        '# HELP x_total x\nx_total{source="a",shard="t:0"} 3.0\nx_total{source="b"} 4.0\ny 1e3\n'
    )
    assert samples["x_total"] == [({"source": "a", "shard": "t:0"}, 3.0), ({"source": "b"}, 4.0)]
    assert samples["y"] == [({}, 1000.0)]


def test_the_state_bench_saves_a_flush_of_few_changes_as_few_rows() -> None:
    from detector.bench.state import measure

    figures = measure(400, 20, repeat=2, dsn=None)
    assert figures["sessions"] == 400
    # Every session's record, alerts and the eventID chunk in the first delta; then the
    # changed sessions' rows and the chunk their events went to.
    assert figures["first_rows"] >= 400
    assert 20 <= figures["flush_rows"] <= 20 * 6 + 2
    assert min(figures["whole"], figures["first"], figures["flush"], figures["restore"]) > 0
