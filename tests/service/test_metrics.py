"""Metrics: counts that match what the pipeline produced, a valid exposition, bounded labels."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from detector import __version__
from detector.config import Settings
from detector.core.findings import FINDING_KINDS
from detector.core.parse import parse_record
from detector.core.pipeline import StepResult
from detector.core.taxonomy import SessionKind, Severity
from detector.metrics import BatchOutcome, Metrics, ParseErrorReason
from detector.wiring import build_pipeline
from tests.conftest import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "detector" / "data" / "demo"
SOURCE = "demo-stream"
LAG = timedelta(seconds=90)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def results() -> list[StepResult]:
    pipeline = build_pipeline(Settings(), scopes_path=DEMO / "scopes.yaml")
    return [pipeline.process(parse_record(r)) for r in read_jsonl(DEMO / "incident.jsonl")]


@pytest.fixture
def metrics(results: list[StepResult]) -> Metrics:
    metrics = Metrics(sources=[SOURCE], sinks=["jsonl"])
    for result in results:
        metrics.observe_step(SOURCE, result, result.event.event_time + LAG)
    return metrics


def scrape(metrics: Metrics) -> Samples:
    body, _ = metrics.render()
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_the_demo_produces_findings_alerts_and_a_duplicate(results: list[StepResult]) -> None:
    # The assertions below are only meaningful if there is something to count.
    assert sum(len(r.findings) for r in results) > 0
    assert sum(len(r.alerts) for r in results) > 0
    assert any(r.duplicate for r in results)


def test_findings_by_kind_and_severity(metrics: Metrics, results: list[StepResult]) -> None:
    expected = Counter((f.kind, f.severity.label) for r in results for f in r.findings)
    samples = scrape(metrics)
    for kind in FINDING_KINDS:
        for severity in Severity:
            got = value(samples, "trailguard_findings_total", kind=kind, severity=severity.label)
            assert got == expected[(kind, severity.label)], (kind, severity.label)


def test_events_duplicates_alerts_and_responses(
    metrics: Metrics, results: list[StepResult]
) -> None:
    samples = scrape(metrics)
    assert value(samples, "trailguard_events_total", source=SOURCE) == len(results)
    duplicates = sum(r.duplicate for r in results)
    assert value(samples, "trailguard_duplicate_events_total", source=SOURCE) == duplicates

    alerts = Counter(a.severity.label for r in results for a in r.alerts)
    for severity in Severity:
        got = value(samples, "trailguard_alerts_total", severity=severity.label)
        assert got == alerts[severity.label]

    responses = Counter(
        (x.action, "true" if x.dry_run else "false") for r in results for x in r.responses
    )
    assert responses, "the demo scope revokes, so a (dry-run) response is expected"
    for (action, dry_run), count in responses.items():
        got = value(samples, "trailguard_responses_total", action=action, dry_run=dry_run)
        assert got == count


def test_event_lag_is_observed_once_per_new_event(
    metrics: Metrics, results: list[StepResult]
) -> None:
    samples = scrape(metrics)
    fresh = sum(not r.duplicate for r in results)
    name = "trailguard_event_lag_seconds"
    assert value(samples, f"{name}_count", source=SOURCE) == fresh
    assert value(samples, f"{name}_sum", source=SOURCE) == pytest.approx(90.0 * fresh)
    assert value(samples, f"{name}_bucket", source=SOURCE, le="60.0") == 0
    assert value(samples, f"{name}_bucket", source=SOURCE, le="120.0") == fresh


def test_arrival_before_event_time_counts_as_no_lag(results: list[StepResult]) -> None:
    metrics = Metrics(runtime_collectors=False)
    first = results[0]
    metrics.observe_step(SOURCE, first, first.event.event_time - timedelta(seconds=30))
    samples = scrape(metrics)
    assert value(samples, "trailguard_event_lag_seconds_sum", source=SOURCE) == 0
    assert value(samples, "trailguard_event_lag_seconds_bucket", source=SOURCE, le="1.0") == 1


def test_batches_sinks_state_and_consumer_lag(metrics: Metrics) -> None:
    metrics.observe_batch(SOURCE, seconds=0.2)
    metrics.observe_batch(SOURCE, seconds=3.0, outcome=BatchOutcome.NACKED)
    metrics.observe_sink_write("jsonl", seconds=0.01)
    metrics.observe_sink_write("jsonl", seconds=0.5, ok=False)
    metrics.observe_state_flush(seconds=0.3)
    metrics.observe_state_flush(seconds=1.0, ok=False)
    metrics.parse_error(SOURCE, ParseErrorReason.INVALID_JSON, 2)
    metrics.dead_lettered(SOURCE, 2)
    metrics.set_consumer_lag(SOURCE, "3", 1500)
    metrics.set_consumer_lag(SOURCE, "4", 10)
    metrics.forget_shard(SOURCE, "4")
    metrics.forget_shard(SOURCE, "never-set")

    samples = scrape(metrics)
    assert value(samples, "trailguard_batches_total", source=SOURCE, outcome="acked") == 1
    assert value(samples, "trailguard_batches_total", source=SOURCE, outcome="nacked") == 1
    assert value(samples, "trailguard_batch_duration_seconds_count", source=SOURCE) == 2
    assert value(samples, "trailguard_sink_write_duration_seconds_count", sink="jsonl") == 2
    assert value(samples, "trailguard_sink_failures_total", sink="jsonl") == 1
    assert value(samples, "trailguard_state_flush_duration_seconds_count") == 2
    assert value(samples, "trailguard_state_flush_failures_total") == 1
    reason = "invalid-json"
    assert value(samples, "trailguard_parse_errors_total", source=SOURCE, reason=reason) == 2
    assert (
        value(samples, "trailguard_parse_errors_total", source=SOURCE, reason="invalid-record") == 0
    )
    assert value(samples, "trailguard_dead_lettered_records_total", source=SOURCE) == 2
    assert value(samples, "trailguard_consumer_lag_records", source=SOURCE, shard="3") == 1500
    assert (
        "trailguard_consumer_lag_records",
        frozenset({("source", SOURCE), ("shard", "4")}),
    ) not in samples


def test_parse_error_reason_must_come_from_the_enum(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="is not a valid ParseErrorReason"):
        metrics.parse_error(SOURCE, "unexpected token at 'arn:aws:iam::1:user/x'")  # type: ignore[arg-type]


def test_active_sessions_are_read_at_scrape_time(
    metrics: Metrics, results: list[StepResult]
) -> None:
    latest = {r.session.session_id: r.session.kind for r in results if r.session is not None}
    counts = Counter(latest.values())
    metrics.count_sessions_with(lambda: counts)
    samples = scrape(metrics)
    for kind in SessionKind:
        assert value(samples, "trailguard_active_sessions", kind=kind.value) == counts[kind]


def test_a_failing_session_count_leaves_the_rest_of_the_scrape(metrics: Metrics) -> None:
    def broken() -> dict[SessionKind, int]:
        raise RuntimeError("tracker unavailable")

    metrics.count_sessions_with(broken)
    samples = scrape(metrics)
    assert not any(name == "trailguard_active_sessions" for name, _ in samples)
    assert value(samples, "trailguard_build_info", version=__version__) == 1


def test_no_label_value_names_a_principal_or_session(
    metrics: Metrics, results: list[StepResult]
) -> None:
    # The inputs are full of both, so their absence from labels is not an accident.
    assert any((f.principal or "").startswith("arn:") for r in results for f in r.findings)
    assert any(f.session_id.startswith("ses-") for r in results for f in r.findings)
    metrics.count_sessions_with(lambda: {SessionKind.AGENT: 1})
    metrics.set_consumer_lag(SOURCE, "0", 5)
    for (name, labels), _ in scrape(metrics).items():
        for label, label_value in labels:
            assert "arn:" not in label_value, (name, label, label_value)
            assert "ses-" not in label_value, (name, label, label_value)


def test_instances_do_not_share_counts(results: list[StepResult]) -> None:
    one, two = Metrics(), Metrics()
    one.observe_step(SOURCE, results[0], results[0].event.event_time)
    assert value(scrape(one), "trailguard_events_total", source=SOURCE) == 1
    assert ("trailguard_events_total", frozenset({("source", SOURCE)})) not in scrape(two)


def test_render_returns_a_prometheus_content_type(metrics: Metrics) -> None:
    _, content_type = metrics.render()
    assert content_type.startswith("text/plain")


def test_exposition_passes_promtool(metrics: Metrics) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian/Ubuntu package: prometheus)")
    metrics.count_sessions_with(lambda: {SessionKind.AGENT: 2, SessionKind.HUMAN: 1})
    metrics.observe_batch(SOURCE, seconds=0.1)
    metrics.set_consumer_lag(SOURCE, "0", 42)
    body, _ = metrics.render()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


class _CountingSource:
    """The part of the Source protocol the metrics read: a name, counters and a lag map."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.deleted_messages = 0
        self.skipped_digests = 0
        self.lag: dict[str, int] = {}

    def counters(self) -> dict[str, int]:
        return {
            "deleted_messages": self.deleted_messages,
            "skipped_digests": self.skipped_digests,
        }


def _value(metrics: Metrics, name: str, labels: dict[str, str]) -> float | None:
    for sample, sample_labels, value in metrics.samples():
        if sample == name and sample_labels == labels:
            return value
    return None


def test_source_counters_are_read_at_scrape() -> None:
    metrics = Metrics(sources=["queue"], runtime_collectors=False)
    source = _CountingSource("queue")
    metrics.watch_sources([source])
    source.deleted_messages = 7
    source.skipped_digests = 2
    labels = {"source": "queue", "operation": "deleted_messages"}
    assert _value(metrics, "trailguard_source_operations_total", labels) == 7
    labels = {"source": "queue", "operation": "skipped_digests"}
    assert _value(metrics, "trailguard_source_operations_total", labels) == 2


def test_consumer_lag_follows_the_shards_a_source_holds() -> None:
    metrics = Metrics(sources=["trail"], runtime_collectors=False)
    source = _CountingSource("trail")
    source.lag = {"t:0": 5, "t:1": 9}
    metrics.sync_consumer_lag([source])
    assert (
        _value(metrics, "trailguard_consumer_lag_records", {"source": "trail", "shard": "t:1"}) == 9
    )
    source.lag = {"t:0": 1}
    metrics.sync_consumer_lag([source])
    assert (
        _value(metrics, "trailguard_consumer_lag_records", {"source": "trail", "shard": "t:0"}) == 1
    )
    assert (
        _value(metrics, "trailguard_consumer_lag_records", {"source": "trail", "shard": "t:1"})
        is None
    )
