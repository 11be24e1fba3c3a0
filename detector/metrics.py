"""Every Prometheus metric TrailGuard exports, in one place.

One `Metrics` per service, each on its own `CollectorRegistry`: the global registry would make
two services in one process (and every test) share counters and fail on duplicate names.

Label values come only from bounded sets: configured source and sink names, Kafka shards,
the finding-kind registry, severities, session kinds, response actions and the fixed
`ParseErrorReason` and `BatchOutcome` enums. Session ids, principals, event ids and error
messages never become labels: each distinct value is a new time series kept for the life of
the process, and one busy account would grow the series without bound.

`observe_step` runs once per event, so it touches only label children cached in plain dicts;
resolving a child through `labels()` costs a lock, a tuple build and a dict lookup inside the
client, which is several times the cost of the increment itself.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from detector import __version__
from detector.core.combine import CHANGES, change_of
from detector.core.findings import FINDING_KINDS, Alert, Finding, Response
from detector.core.learned import Drained
from detector.core.pipeline import StepResult
from detector.core.taxonomy import SessionKind, Severity
from detector.sources.screen import SkipReason

logger = logging.getLogger(__name__)

NAMESPACE = "trailguard"

# CloudTrail delivers most events within five minutes and some after fifteen; anything past
# an hour is a stuck source or a backfill, and +Inf says so without finer buckets.
EVENT_LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600)
# A batch is tens to thousands of events at tens of microseconds each, plus sink writes.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Sink writes range from a local file append to a webhook or database round trip.
SINK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# A state flush serialises up to a million sessions; large ones take seconds.
FLUSH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Decision latency is aimed at well under 50 ms at 10,000 events/s; fine steps up to there,
# coarse ones for a service that has fallen behind.
DECISION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1,
    0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip


class ParseErrorReason(StrEnum):
    """Why a record was rejected: the label of trailguard_parse_errors_total.

    A fixed set so the label stays bounded; the full message goes to the log and the
    dead-letter record, where cardinality costs nothing.
    """

    INVALID_JSON = "invalid-json"  # bytes that do not decode as JSON (or gzip, or UTF-8)
    NOT_CLOUDTRAIL = "not-cloudtrail"  # valid JSON, but no CloudTrail record or envelope
    INVALID_RECORD = "invalid-record"  # a CloudTrail record with a missing or malformed field


class BatchOutcome(StrEnum):
    ACKED = "acked"  # processed, written and settled with the source
    NACKED = "nacked"  # failed; handed back to the source for redelivery or dead-lettering


@dataclass(slots=True)
class _SourceChildren:
    """The per-source children `observe_step` touches, resolved once per source."""

    events: Counter
    duplicates: Counter
    lag: Histogram


SessionCounts = Callable[[], Mapping[SessionKind, int]]


class _ActiveSessions:
    """Reads session counts at scrape time, so the runtime never has to push them.

    Scrapes are served on the event loop that runs the pipeline, so the count function can
    read pipeline state without locks.
    """

    name = f"{NAMESPACE}_active_sessions"
    documentation = "Sessions held in memory, by session kind."

    def __init__(self) -> None:
        self.count: SessionCounts | None = None

    def describe(self) -> Iterable[Metric]:
        # Lets the registry learn the name without calling the count function at registration.
        return [GaugeMetricFamily(self.name, self.documentation, labels=["kind"])]

    def collect(self) -> Iterable[Metric]:
        if self.count is None:
            return []
        try:
            counts = self.count()
        except Exception:
            # A failing count must not fail the whole scrape and hide every other metric.
            logger.exception("counting active sessions failed; metric omitted from this scrape")
            return []
        family = GaugeMetricFamily(self.name, self.documentation, labels=["kind"])
        for kind in SessionKind:
            family.add_metric([kind.value], counts.get(kind, 0))
        return [family]


class CountingSource(Protocol):
    """What metrics read of a source (every `detector.sources.base.Source` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def lag(self) -> Mapping[str, int]: ...

    def counters(self) -> Mapping[str, int]: ...


class _SourceOperations:
    """Reads the sources' own counters at scrape time (SQS deletes, skipped digests, ...)."""

    name = f"{NAMESPACE}_source_operations"
    documentation = "Operations counted by sources, by source and operation."

    def __init__(self) -> None:
        self.sources: list[CountingSource] = []

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=["source", "operation"])]

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=["source", "operation"])
        for source in self.sources:
            for operation, value in source.counters().items():
                family.add_metric([source.name, operation], value)
        return [family]


@runtime_checkable
class ScreensFiles(Protocol):
    """A source that judges files by content and counts those it skips (the `files` source)."""

    name: str

    @property
    def skipped_files(self) -> Mapping[str, int]:
        """Files not read so far, by SkipReason value."""
        ...


class _SkippedFiles:
    """Reads the file sources' skip counts at scrape time, one series per reason."""

    name = f"{NAMESPACE}_skipped_files"
    documentation = (
        "Files a source did not read, by reason: empty, binary, not-json, not-cloudtrail, "
        "digest, hidden, special-file (a FIFO, socket or device)."
    )

    def __init__(self) -> None:
        self.sources: list[ScreensFiles] = []

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=["source", "reason"])]

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=["source", "reason"])
        for source in self.sources:
            counts = source.skipped_files
            for reason in SkipReason:
                family.add_metric([source.name, reason.value], counts.get(reason.value, 0))
        return [family]


class Metrics:
    """The service's metrics and the cheap ways to update them.

    `sources` and `sinks` are the configured names; their series are created up front so
    dashboards and `rate()` see zeros instead of missing series before the first event.
    Names that appear later are still accepted (they come from the same configuration).
    """

    def __init__(
        self,
        *,
        sources: Iterable[str] = (),
        sinks: Iterable[str] = (),
        version: str = __version__,
        runtime_collectors: bool = True,
    ) -> None:
        # `_created` samples would double the series count for a timestamp Prometheus does not
        # use with the text format. The client only offers this switch process-wide; every
        # metric TrailGuard exports is created here, so switching it off here covers them all.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if runtime_collectors:
            # A dedicated registry loses the process, platform and GC metrics the global one
            # carries by default; memory and CPU are the first things to look at on a stall.
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)  # registers itself only where gc statistics exist

        self.events = Counter(
            f"{NAMESPACE}_events",
            "CloudTrail events run through the pipeline, duplicates included.",
            ["source"],
            registry=r,
        )
        self.duplicates = Counter(
            f"{NAMESPACE}_duplicate_events",
            "Events skipped because their eventID was already seen.",
            ["source"],
            registry=r,
        )
        self.parse_errors = Counter(
            f"{NAMESPACE}_parse_errors",
            "Records rejected before the pipeline, by reason.",
            ["source", "reason"],
            registry=r,
        )
        self.dead_letters = Counter(
            f"{NAMESPACE}_dead_lettered_records",
            "Records written to the dead-letter destination.",
            ["source"],
            registry=r,
        )
        self.findings = Counter(
            f"{NAMESPACE}_findings",
            "Findings raised, by finding kind and severity.",
            ["kind", "severity"],
            registry=r,
        )
        self.alerts = Counter(
            f"{NAMESPACE}_alerts",
            "Alerts raised or re-raised at a higher severity.",
            ["severity"],
            registry=r,
        )
        self.responses = Counter(
            f"{NAMESPACE}_responses",
            "Responses decided; dry_run=true ones are recorded, not carried out.",
            ["action", "dry_run"],
            registry=r,
        )
        self.event_lag = Histogram(
            f"{NAMESPACE}_event_lag_seconds",
            "Arrival time minus CloudTrail eventTime, per event.",
            ["source"],
            buckets=EVENT_LAG_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            f"{NAMESPACE}_consumer_lag_records",
            "Records the source has yet to read, as the source reports it.",
            ["source", "shard"],
            registry=r,
        )
        self._sessions = _ActiveSessions()
        r.register(self._sessions)
        self._operations = _SourceOperations()
        r.register(self._operations)
        self._skipped_files = _SkippedFiles()
        r.register(self._skipped_files)
        self._lag_shards: dict[str, set[str]] = {}
        self.batches = Counter(
            f"{NAMESPACE}_batches",
            "Batches processed, by how they were settled with the source.",
            ["source", "outcome"],
            registry=r,
        )
        self.batch_duration = Histogram(
            f"{NAMESPACE}_batch_duration_seconds",
            "Time from taking a batch to settling it: pipeline, sinks and state flush.",
            ["source"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.sink_write_duration = Histogram(
            f"{NAMESPACE}_sink_write_duration_seconds",
            "Time to write one batch's output to a sink.",
            ["sink"],
            buckets=SINK_BUCKETS,
            registry=r,
        )
        self.sink_failures = Counter(
            f"{NAMESPACE}_sink_failures",
            "Sink writes that failed.",
            ["sink"],
            registry=r,
        )
        self.state_flush_duration = Histogram(
            f"{NAMESPACE}_state_flush_duration_seconds",
            "Time from the start of a state flush to its delta stored and its batches "
            "acknowledged.",
            buckets=FLUSH_BUCKETS,
            registry=r,
        )
        self.state_cut_duration = Histogram(
            f"{NAMESPACE}_state_cut_duration_seconds",
            "Time batches wait at a state flush: the sinks' flush and cutting each changed "
            "shard's delta. Writing the delta (state_flush_duration) runs while batches go on.",
            buckets=FLUSH_BUCKETS,
            registry=r,
        )
        self.decision_latency = Histogram(
            f"{NAMESPACE}_decision_latency_seconds",
            "Time from a batch's arrival from its source to its findings, alerts and "
            "responses handed to every sink and responder; every batch, alerting or not.",
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.state_flush_failures = Counter(
            f"{NAMESPACE}_state_flush_failures",
            "State flushes that failed.",
            registry=r,
        )
        self.build_info = Info(f"{NAMESPACE}_build", "TrailGuard build information.", registry=r)
        self.build_info.info({"version": version})

        self._sources: dict[str, _SourceChildren] = {}
        self._findings: dict[tuple[str, Severity], Counter] = {}
        self._alerts: dict[Severity, Counter] = {}
        self._responses: dict[tuple[str, bool], Counter] = {}
        for source in sources:
            self._source(source)
            for reason in ParseErrorReason:
                self.parse_errors.labels(source=source, reason=reason.value)
            self.dead_letters.labels(source=source)
            for outcome in BatchOutcome:
                self.batches.labels(source=source, outcome=outcome.value)
            self.batch_duration.labels(source=source)
        for sink in sinks:
            self.sink_write_duration.labels(sink=sink)
            self.sink_failures.labels(sink=sink)
        for severity in Severity:
            self._alert(severity)
            for kind in FINDING_KINDS:
                self._finding(kind, severity)
        self._init_responder_metrics()
        self._init_baseline_metrics()

    # --- per event -------------------------------------------------------------------------

    def observe_step(self, source: str, result: StepResult, arrival: datetime) -> None:
        """Count one pipeline step. `arrival` is when the record reached TrailGuard (UTC-aware).

        Duplicates add no lag sample: they are mostly redeliveries, whose late arrival says
        nothing about CloudTrail's delivery delay.
        """
        children = self._sources.get(source)
        if children is None:
            children = self._source(source)
        children.events.inc()
        if result.duplicate:
            children.duplicates.inc()
            return
        lag = (arrival - result.event.event_time).total_seconds()
        # Clock skew between AWS and this host can make arrival precede eventTime.
        children.lag.observe(lag if lag > 0.0 else 0.0)
        self._decided(result.findings, result.alerts, result.responses)

    def _decided(
        self, findings: Iterable[Finding], alerts: Iterable[Alert], responses: Iterable[Response]
    ) -> None:
        for finding in findings:
            found = self._findings.get((finding.kind, finding.severity))
            if found is None:
                found = self._finding(finding.kind, finding.severity)
            found.inc()
            change = change_of(finding)
            if change is not None:
                self._severity_changes[change].inc()
        for alert in alerts:
            alerted = self._alerts.get(alert.severity)
            if alerted is None:
                alerted = self._alert(alert.severity)
            alerted.inc()
        for response in responses:
            responded = self._responses.get((response.action, response.dry_run))
            if responded is None:
                responded = self._response(response.action, response.dry_run)
            responded.inc()

    def parse_error(self, source: str, reason: ParseErrorReason, count: int = 1) -> None:
        # Coercing through the enum rejects a free-text message passed by mistake.
        self.parse_errors.labels(source=source, reason=ParseErrorReason(reason).value).inc(count)

    def dead_lettered(self, source: str, count: int = 1) -> None:
        self.dead_letters.labels(source=source).inc(count)

    # --- per batch, sink write and flush --------------------------------------------------

    def observe_batch(
        self, source: str, *, seconds: float, outcome: BatchOutcome = BatchOutcome.ACKED
    ) -> None:
        """Count one settled batch and how long it took from receipt to ack or nack."""
        self.batches.labels(source=source, outcome=BatchOutcome(outcome).value).inc()
        self.batch_duration.labels(source=source).observe(seconds)

    def observe_sink_write(self, sink: str, *, seconds: float, ok: bool = True) -> None:
        self.sink_write_duration.labels(sink=sink).observe(seconds)
        if not ok:
            self.sink_failures.labels(sink=sink).inc()

    def observe_decision(self, seconds: float) -> None:
        self.decision_latency.observe(seconds)

    def observe_state_cut(self, seconds: float) -> None:
        self.state_cut_duration.observe(seconds)

    def observe_state_flush(self, *, seconds: float, ok: bool = True) -> None:
        self.state_flush_duration.observe(seconds)
        if not ok:
            self.state_flush_failures.inc()

    # --- set by sources and the runtime ---------------------------------------------------

    def set_consumer_lag(self, source: str, shard: str, records: float) -> None:
        self.consumer_lag.labels(source=source, shard=shard).set(records)

    def forget_shard(self, source: str, shard: str) -> None:
        """Drop a shard's lag series when the shard moves to another instance.

        Left in place, the last value would be reported forever by an instance that no
        longer reads the shard, and summing lag across instances would count it twice.
        """
        # Older client versions raise KeyError for a series that was never set.
        with contextlib.suppress(KeyError):
            self.consumer_lag.remove(source, shard)

    def watch_sources(self, sources: Iterable[CountingSource]) -> None:
        """Export the sources' own counters, read at each scrape."""
        self._operations.sources = list(sources)
        self._skipped_files.sources = [
            s for s in self._operations.sources if isinstance(s, ScreensFiles)
        ]

    def sync_consumer_lag(self, sources: Iterable[CountingSource]) -> None:
        """Copy each source's `lag` {shard: records} into the gauge; drop shards it lost."""
        for source in sources:
            name = source.name
            current = dict(source.lag)
            for shard in self._lag_shards.get(name, set()) - set(current):
                self.forget_shard(name, shard)
            for shard, records in current.items():
                self.set_consumer_lag(name, shard, records)
            self._lag_shards[name] = set(current)

    def count_sessions_with(self, count: SessionCounts | None) -> None:
        """Install the function read at each scrape for trailguard_active_sessions."""
        self._sessions.count = count

    # --- exposition ------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """Every current sample as (name, labels, value), for tests and diagnostics."""
        for family in self.registry.collect():
            for sample in family.samples:
                yield sample.name, dict(sample.labels), sample.value

    # --- child caches ----------------------------------------------------------------------

    def _source(self, source: str) -> _SourceChildren:
        children = _SourceChildren(
            events=self.events.labels(source=source),
            duplicates=self.duplicates.labels(source=source),
            lag=self.event_lag.labels(source=source),
        )
        self._sources[source] = children
        return children

    def _finding(self, kind: str, severity: Severity) -> Counter:
        child = self.findings.labels(kind=kind, severity=severity.label)
        self._findings[(kind, severity)] = child
        return child

    def _alert(self, severity: Severity) -> Counter:
        child = self.alerts.labels(severity=severity.label)
        self._alerts[severity] = child
        return child

    def _response(self, action: str, dry_run: bool) -> Counter:
        child = self.responses.labels(action=action, dry_run="true" if dry_run else "false")
        self._responses[(action, dry_run)] = child
        return child

    # --- responders ------------------------------------------------------------------------

    def _init_responder_metrics(self) -> None:
        r = self.registry
        self.response_outcomes = Counter(
            f"{NAMESPACE}_response_outcomes",
            "What became of decided responses, by action, outcome and dry_run.",
            ["action", "outcome", "dry_run"],
            registry=r,
        )
        self.time_to_revoke = Histogram(
            f"{NAMESPACE}_time_to_revoke_seconds",
            "From the triggering event (since=event: its eventTime; since=arrival: when it "
            "reached TrailGuard) to the verified revocation.",
            ["action", "since"],
            buckets=REVOKE_BUCKETS,
            registry=r,
        )
        for action in RESPONSE_ACTIONS:
            for outcome in RESPONSE_OUTCOMES:
                for dry_run in ("true", "false"):
                    self.response_outcomes.labels(action=action, outcome=outcome, dry_run=dry_run)
            for since in ("event", "arrival"):
                self.time_to_revoke.labels(action=action, since=since)

    def observe_response(
        self,
        action: str,
        outcome: str,
        *,
        dry_run: bool,
        since_event: float | None = None,
        since_arrival: float | None = None,
    ) -> None:
        """Count one outcome; the timings are given only for a verified revocation."""
        self.response_outcomes.labels(
            action=action, outcome=outcome, dry_run="true" if dry_run else "false"
        ).inc()
        if since_event is not None:
            self.time_to_revoke.labels(action=action, since="event").observe(max(0.0, since_event))
        if since_arrival is not None:
            self.time_to_revoke.labels(action=action, since="arrival").observe(
                max(0.0, since_arrival)
            )

    # --- learned baselines ------------------------------------------------------------------

    def _init_baseline_metrics(self) -> None:
        r = self.registry
        self.baseline_drain_duration = Histogram(
            f"{NAMESPACE}_baseline_drain_duration_seconds",
            "Time to score the baselines' buffered work at the end of a batch.",
            buckets=DRAIN_BUCKETS,
            registry=r,
        )
        self.baseline_severity_changes = Counter(
            f"{NAMESPACE}_baseline_severity_changes",
            "Findings whose severity a combination or a habit changed, by the severity key "
            "that set it (baseline_with_scope, baseline_with_sequence, "
            "baseline_unscoped_agent, habitual_step_down).",
            ["key"],
            registry=r,
        )
        self.baseline_models = Gauge(
            f"{NAMESPACE}_baseline_models",
            "Learned baseline models running, by registry name (1 while loaded).",
            ["model"],
            registry=r,
        )
        self._severity_changes = {
            key: self.baseline_severity_changes.labels(key=key) for key in CHANGES
        }

    def observe_drain(self, drained: Drained, *, seconds: float) -> None:
        """One drain of the baselines: its duration, and what it found counted with the rest."""
        self.baseline_drain_duration.observe(seconds)
        self._decided(drained.findings, drained.alerts, drained.responses)

    def baselines_loaded(self, models: Iterable[str]) -> None:
        for model in models:
            self.baseline_models.labels(model=model).set(1)


# Scoring a batch's buffered rows: from nothing buffered to an IsolationForest over thousands.
DRAIN_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# CloudTrail's delivery delay (minutes) dominates time from eventTime; from arrival it is the
# IAM calls and the read-back (seconds). Past an hour the response was held for approval.
REVOKE_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
RESPONSE_ACTIONS = ("revoke-session", "disable-access-key")
RESPONSE_OUTCOMES = ("applied", "already_applied", "dry_run", "refused", "failed", "held")


# --- alert sinks -------------------------------------------------------------------------


class AlertSinkMetrics:
    """What the paging sinks (alertmanager, pagerduty, slack, webhook) report, by sink.

    Handed to the sinks through their SinkContext (detector.sinks.DeliveryMetrics); built on
    the service's registry next to `Metrics`. `failed` counts every attempt that failed,
    retried or not, so a receiver that is flapping shows before it drops a page.
    """

    def __init__(self, registry: CollectorRegistry, *, sinks: Iterable[str] = ()) -> None:
        self.sent_total = Counter(
            f"{NAMESPACE}_alerts_sent",
            "Notifications a paging sink's receiver accepted (first sends, updates, re-sends).",
            ["sink"],
            registry=registry,
        )
        self.failed_total = Counter(
            f"{NAMESPACE}_alerts_failed",
            "Notification attempts that failed, by whether trying again can help.",
            ["sink", "retriable"],
            registry=registry,
        )
        self.active_alerts = Gauge(
            f"{NAMESPACE}_active_alerts",
            "Sessions with an active (unresolved) incident, by paging sink.",
            ["sink"],
            registry=registry,
        )
        for sink in sinks:
            self.sent_total.labels(sink=sink)
            for retriable in ("true", "false"):
                self.failed_total.labels(sink=sink, retriable=retriable)

    def sent(self, sink: str) -> None:
        self.sent_total.labels(sink=sink).inc()

    def failed(self, sink: str, *, retriable: bool) -> None:
        self.failed_total.labels(sink=sink, retriable="true" if retriable else "false").inc()

    def active(self, sink: str, count: int) -> None:
        self.active_alerts.labels(sink=sink).set(count)


# --- two-person approval ------------------------------------------------------------------

APPROVAL_OUTCOMES = ("requested", "approved", "denied", "expired", "refused")


class ApprovalMetrics:
    """Approvals by outcome: requested (opened), approved, denied, expired (decided by the
    clock with the default outcome) and refused (a decision the rule did not allow: the
    session's own person, a second different decision, a missing or invalid token)."""

    def __init__(self, metrics: Metrics) -> None:
        self.approvals = Counter(
            f"{NAMESPACE}_approvals",
            "Approval requests and decisions, by outcome.",
            ["outcome"],
            registry=metrics.registry,
        )
        for outcome in APPROVAL_OUTCOMES:
            self.approvals.labels(outcome=outcome)

    def approval(self, outcome: str) -> None:
        if outcome not in APPROVAL_OUTCOMES:
            raise ValueError(f"unknown approval outcome {outcome!r}")
        self.approvals.labels(outcome=outcome).inc()


GATE_VERDICTS = ("allow", "block")


class GateVerdictMetrics:
    """Verdicts of the pre-flight gate received by the service, by verdict (allow or block).
    A retried send of a verdict already stored is not counted again."""

    def __init__(self, metrics: Metrics) -> None:
        self.verdicts = Counter(
            f"{NAMESPACE}_gate_verdicts",
            "Pre-flight gate verdicts received from agents' hooks, by verdict.",
            ["verdict"],
            registry=metrics.registry,
        )
        for verdict in GATE_VERDICTS:
            self.verdicts.labels(verdict=verdict)

    def verdict(self, verdict: str) -> None:
        if verdict not in GATE_VERDICTS:
            raise ValueError(f"unknown gate verdict {verdict!r}")
        self.verdicts.labels(verdict=verdict).inc()
