"""Baseline metrics: drains timed, drained findings counted with the rest, severity changes
counted by the key that made them, loaded models; labels from fixed sets only."""

from __future__ import annotations

from datetime import timedelta

from detector.config import Settings, SeveritySettings
from detector.core.combine import CHANGES
from detector.core.parse import parse_record
from detector.core.taxonomy import Severity
from detector.metrics import Metrics
from detector.wiring import build_pipeline
from tests.baselines import RuleBaseline
from tests.scenario import DEMO, incident
from tests.service.test_metrics import scrape, value

SOURCE = "demo-stream"


def test_drains_and_severity_changes_are_counted() -> None:
    settings = Settings(severity=SeveritySettings(habitual_step_down=True))
    baseline = RuleBaseline(
        flag=frozenset({"cloudformation:DeleteStack", "s3:GetObject"}),
        milestone=3,
        habits=frozenset({"logs:DeleteLogGroup"}),
    )
    pipeline = build_pipeline(
        settings, scopes_path=DEMO / "scopes.yaml", baselines=lambda _: [baseline]
    )
    metrics = Metrics(sources=[SOURCE], runtime_collectors=False)
    before = scrape(metrics)
    for key in CHANGES:
        assert value(before, "trailguard_baseline_severity_changes_total", key=key) == 0
    changed: dict[str, int] = {}
    for record in incident():
        result = pipeline.process(parse_record(record))
        metrics.observe_step(SOURCE, result, result.event.event_time + timedelta(seconds=60))
        for finding in result.findings:
            if finding.evidence and finding.evidence[-1].startswith("severity: "):
                key = finding.evidence[-1].split("(")[1].split(")")[0]
                changed[key] = changed.get(key, 0) + 1
    drained = pipeline.drain()
    found = len(drained.findings)
    metrics.observe_drain(drained, seconds=0.002)
    metrics.baselines_loaded(["rules"])
    after = scrape(metrics)
    # The person's DeleteLogGroup is habitual; the agent's DeleteStack is out of scope.
    assert changed.get("habitual_step_down") == 1 and changed.get("baseline_with_scope") == 1
    for key in CHANGES:
        assert value(after, "trailguard_baseline_severity_changes_total", key=key) == changed.get(
            key, 0
        )
    assert value(after, "trailguard_baseline_drain_duration_seconds_count") == 1
    assert found == 5
    medium = Severity.MEDIUM.label
    drained_medium = sum(1 for f in drained.findings if f.severity is Severity.MEDIUM)
    counted = value(after, "trailguard_findings_total", kind="anomalous-session", severity=medium)
    assert counted == drained_medium > 0
    assert value(after, "trailguard_baseline_models", model="rules") == 1
