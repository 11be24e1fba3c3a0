"""Severities of baseline findings: alone they page no one, combined they page; habitual
actions of people and services one step lower. Pure logic, driven through the pipeline
with a baseline by rule (tests/baselines.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from detector.config import Settings, SeveritySettings
from detector.core.combine import (
    STEP_DOWN,
    UNSCOPED_AGENT,
    WITH_SCOPE,
    WITH_SEQUENCE,
    SessionSignals,
    Signals,
    change_of,
)
from detector.core.findings import Finding
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline
from detector.core.policy import EventContext, make_finding
from detector.core.taxonomy import Severity
from detector.wiring import build_pipeline
from tests.baselines import RuleBaseline
from tests.conftest import make_event
from tests.unit.test_pipeline import AGENT_ROLE, SCOPES, _agent_event

IN_SCOPE = {"requestParameters": {"bucketName": "docs-site", "key": "a"}}


def _pipeline(tmp_path: Path, *baselines: Any, scopes: str = SCOPES, **severity: Any) -> Pipeline:
    path = tmp_path / "scopes.yaml"
    path.write_text(scopes)
    values = {k: Severity.parse(v) if isinstance(v, str) else v for k, v in severity.items()}
    settings = Settings(severity=SeveritySettings(**values))
    pipeline = build_pipeline(settings, scopes_path=path)
    pipeline.baselines = baselines
    return pipeline


def _person(event_id: str, source: str, name: str, **extra: Any) -> Any:
    return parse_record(
        make_event(eventID=event_id, eventSource=source, eventName=name, readOnly=False, **extra)
    )


def _kinds(findings: tuple[Finding, ...]) -> dict[str, Finding]:
    return {f.kind: f for f in findings}


def test_a_novel_action_alone_is_low_and_opens_no_alert(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, RuleBaseline(flag=frozenset({"s3:PutObject"})))
    result = pipeline.process(_agent_event("e1", "PutObject", **IN_SCOPE))
    novel = _kinds(result.findings)["novel-action"]
    assert novel.severity is Severity.LOW  # the model said high; the policy decides
    assert result.alerts == () and change_of(novel) is None


def test_an_anomalous_session_alone_is_medium_an_alert_for_review(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, RuleBaseline(milestone=1))
    pipeline.process(_agent_event("e1", "PutObject", **IN_SCOPE))
    drained = pipeline.drain()
    assert [(f.kind, f.severity) for f in drained.findings] == [
        ("anomalous-session", Severity.MEDIUM)
    ]
    assert [(a.kind, a.severity) for a in drained.alerts] == [
        ("anomalous-session", Severity.MEDIUM)
    ]


def test_with_a_scope_finding_earlier_in_the_session_it_pages(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, RuleBaseline(flag=frozenset({"s3:PutObject"})))
    outside = pipeline.process(
        _agent_event("e1", "GetObject", requestParameters={"bucketName": "billing", "key": "a"})
    )
    assert "out-of-scope-resource" in _kinds(outside.findings)
    result = pipeline.process(_agent_event("e2", "PutObject", **IN_SCOPE))
    novel = _kinds(result.findings)["novel-action"]
    assert novel.severity is Severity.CRITICAL and change_of(novel) == WITH_SCOPE
    assert "went outside its task scope docs-refresh" in novel.reason
    assert novel.reason.endswith("so it is critical.")
    assert [(a.kind, a.severity) for a in result.alerts] == [("novel-action", Severity.CRITICAL)]


def test_with_a_scope_finding_on_the_same_event_it_pages(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, RuleBaseline(flag=frozenset({"s3:PutObject"})))
    result = pipeline.process(
        _agent_event("e1", "PutObject", requestParameters={"bucketName": "billing", "key": "a"})
    )
    assert change_of(_kinds(result.findings)["novel-action"]) == WITH_SCOPE


def test_another_sessions_scope_finding_does_not_count(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, RuleBaseline(flag=frozenset({"s3:PutObject"})))
    other = {**AGENT_ROLE, "accessKeyId": "ASIAEXAMPLEAGENT0002"}
    pipeline.process(
        parse_record(
            make_event(
                eventID="e1",
                eventName="GetObject",
                userIdentity=other,
                requestParameters={"bucketName": "billing", "key": "a"},
            )
        )
    )
    result = pipeline.process(_agent_event("e2", "PutObject", **IN_SCOPE))
    assert _kinds(result.findings)["novel-action"].severity is Severity.LOW


def test_a_suspicious_sequence_in_the_session_makes_later_baseline_findings_page(
    tmp_path: Path,
) -> None:
    class Sequences(RuleBaseline):
        """Raises a suspicious-sequence on the event named, like the sequence detector."""

        def observe(self, ctx: EventContext, findings: Any, *, learn: bool) -> list[Finding]:
            if ctx.event.event_id != "e1":
                return []
            made = make_finding(
                ctx,
                kind="suspicious-sequence",
                severity=Severity.HIGH,
                classification=None,
                reason="deleted then recreated",
            )
            return [made]

    flagger = RuleBaseline(flag=frozenset({"s3:PutObject"}), milestone=2)
    pipeline = _pipeline(tmp_path, Sequences(name="sequences"), flagger)
    first = pipeline.process(_agent_event("e1", "PutObject", **IN_SCOPE))
    second = pipeline.process(_agent_event("e2", "PutObject", **IN_SCOPE))
    # The sequence came from an earlier baseline on the same event: the later one sees it.
    assert change_of(_kinds(first.findings)["novel-action"]) == WITH_SEQUENCE
    assert _kinds(second.findings)["novel-action"].severity is Severity.CRITICAL
    (drained,) = pipeline.drain().findings
    assert drained.kind == "anomalous-session" and change_of(drained) == WITH_SEQUENCE


def test_an_agent_with_no_scope_pages_on_a_baseline_finding(tmp_path: Path) -> None:
    pipeline = _pipeline(
        tmp_path, RuleBaseline(flag=frozenset({"s3:PutObject"})), scopes="scopes: []"
    )
    result = pipeline.process(_agent_event("e1", "PutObject", **IN_SCOPE))
    kinds = _kinds(result.findings)
    assert "unscoped-agent" in kinds
    novel = kinds["novel-action"]
    assert novel.severity is Severity.CRITICAL and change_of(novel) == UNSCOPED_AGENT
    assert "has no task scope bound to its session" in novel.reason


def test_a_person_with_a_novel_action_and_no_other_signal_stays_low(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, RuleBaseline(flag=frozenset({"s3:ListAllMyBuckets"})))
    result = pipeline.process(parse_record(make_event(eventID="e1")))
    assert [(f.kind, f.severity) for f in result.findings] == [("novel-action", Severity.LOW)]


def test_every_severity_is_a_key_and_the_combined_one_never_lowers(tmp_path: Path) -> None:
    pipeline = _pipeline(
        tmp_path,
        RuleBaseline(flag=frozenset({"s3:PutObject"})),
        scopes="scopes: []",
        novel_action="medium",
        baseline_unscoped_agent="low",
    )
    result = pipeline.process(_agent_event("e1", "PutObject", **IN_SCOPE))
    novel = _kinds(result.findings)["novel-action"]
    assert novel.severity is Severity.MEDIUM
    high = _pipeline(
        tmp_path,
        RuleBaseline(flag=frozenset({"s3:PutObject"})),
        scopes="scopes: []",
        baseline_unscoped_agent="high",
    )
    result = high.process(_agent_event("e1", "PutObject", **IN_SCOPE))
    assert _kinds(result.findings)["novel-action"].severity is Severity.HIGH


def test_the_signals_are_snapshotted_restored_and_forgotten_with_the_session(
    tmp_path: Path,
) -> None:
    pipeline = _pipeline(tmp_path, RuleBaseline(flag=frozenset({"s3:PutObject"})))
    outside = pipeline.process(
        _agent_event("e1", "GetObject", requestParameters={"bucketName": "billing", "key": "a"})
    )
    assert outside.session is not None
    session = outside.session.session_id
    snapshot = pipeline.snapshot()
    assert snapshot["baseline_signals"] == {
        "scope": {session: True},
        "sequence": {},
        "events": {"e1": [True, False]},
    }
    restored = _pipeline(tmp_path, RuleBaseline(flag=frozenset({"s3:PutObject"})))
    restored.restore(snapshot)
    result = restored.process(_agent_event("e2", "PutObject", **IN_SCOPE))
    assert _kinds(result.findings)["novel-action"].severity is Severity.CRITICAL
    restored.drain()
    restored.evict_idle(outside.event.event_time.replace(year=2030))
    assert restored.snapshot()["baseline_signals"] == {"scope": {}, "sequence": {}, "events": {}}
    old = dict(snapshot)
    del old["baseline_signals"]  # a snapshot from before the signals restores empty
    restored.restore(old)
    assert restored.signals.of(session) == Signals()


@pytest.mark.parametrize("drain_before_the_scope_finding", [True, False])
def test_a_drained_finding_is_combined_as_of_its_event_whenever_the_drain_runs(
    tmp_path: Path, drain_before_the_scope_finding: bool
) -> None:
    """Replay drains every N events, the service every batch: the same severities."""
    pipeline = _pipeline(tmp_path, RuleBaseline(milestone=1))
    pipeline.process(_agent_event("e1", "PutObject", **IN_SCOPE))  # buffered, in scope so far
    drained = list(pipeline.drain().findings) if drain_before_the_scope_finding else []
    pipeline.process(
        _agent_event("e2", "GetObject", requestParameters={"bucketName": "billing", "key": "a"})
    )
    drained.extend(pipeline.drain().findings)
    assert [(f.event_id, f.severity) for f in drained] == [("e1", Severity.MEDIUM)]


def test_a_drained_finding_after_a_scope_finding_pages(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, RuleBaseline(milestone=2))
    pipeline.process(
        _agent_event("e1", "GetObject", requestParameters={"bucketName": "billing", "key": "a"})
    )
    pipeline.process(_agent_event("e2", "PutObject", **IN_SCOPE))
    (finding,) = pipeline.drain().findings
    assert finding.severity is Severity.CRITICAL and change_of(finding) == WITH_SCOPE


def test_signals_only_count_scope_and_sequence_kinds() -> None:
    signals = SessionSignals()
    assert signals.snapshot() == {"scope": {}, "sequence": {}, "events": {}}
    signals.restore({"scope": ["a"], "sequence": ["b"]})  # as snapshots before state rows
    assert signals.of("a") == Signals(scope=True) and signals.of("b") == Signals(sequence=True)
    signals.restore({"scope": {"a": True}, "sequence": {"b": True}})
    assert signals.of("a") == Signals(scope=True) and signals.of("b") == Signals(sequence=True)
    signals.forget("a")
    assert signals.of("a") == Signals()


# --- habitual actions of people and services ---------------------------------------------


def test_step_down_is_off_by_default(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, RuleBaseline(habits=frozenset({"s3:DeleteBucket"})))
    result = pipeline.process(_person("e1", "s3.amazonaws.com", "DeleteBucket"))
    assert [(f.kind, f.severity) for f in result.findings] == [
        ("destructive-action", Severity.HIGH)
    ]


def test_a_habitual_tier_1_action_of_a_person_is_one_step_lower(tmp_path: Path) -> None:
    habits = RuleBaseline(habits=frozenset({"iam:DeleteRole"}))
    pipeline = _pipeline(tmp_path, habits, habitual_step_down=True)
    result = pipeline.process(_person("e1", "iam.amazonaws.com", "DeleteRole"))
    (finding,) = result.findings
    assert finding.severity is Severity.LOW and change_of(finding) == STEP_DOWN
    assert "iam:DeleteRole is habitual" in finding.evidence[-1]
    assert result.alerts == ()
    # What is learned is decided on the catalogue's own medium: nothing.
    assert habits.learned == []


def test_tier_0_never_goes_below_medium(tmp_path: Path) -> None:
    habits = RuleBaseline(habits=frozenset({"s3:DeleteBucket"}))
    pipeline = _pipeline(tmp_path, habits, habitual_step_down=True)
    result = pipeline.process(_person("e1", "s3.amazonaws.com", "DeleteBucket"))
    assert [f.severity for f in result.findings] == [Severity.MEDIUM]
    at_medium = _pipeline(tmp_path, habits, habitual_step_down=True, tier_0="medium")
    result = at_medium.process(_person("e2", "s3.amazonaws.com", "DeleteBucket"))
    (finding,) = result.findings
    assert finding.severity is Severity.MEDIUM and change_of(finding) is None
    # A step-down never raises: tier 0 configured at low stays low.
    at_low = _pipeline(tmp_path, habits, habitual_step_down=True, tier_0="low")
    result = at_low.process(_person("e3", "s3.amazonaws.com", "DeleteBucket"))
    (finding,) = result.findings
    assert finding.severity is Severity.LOW and change_of(finding) is None


def test_an_action_not_habitual_keeps_the_catalogue_severity(tmp_path: Path) -> None:
    habits = RuleBaseline(habits=frozenset({"iam:CreateUser"}))
    pipeline = _pipeline(tmp_path, habits, habitual_step_down=True)
    result = pipeline.process(_person("e1", "iam.amazonaws.com", "DeleteRole"))
    assert [f.severity for f in result.findings] == [Severity.MEDIUM]


def test_agents_keep_their_severity_whatever_their_habits(tmp_path: Path) -> None:
    habits = RuleBaseline(habits=frozenset({"s3:DeleteBucket"}))
    pipeline = _pipeline(tmp_path, habits, habitual_step_down=True)
    outside = pipeline.process(
        _agent_event("e2", "DeleteBucket", requestParameters={"bucketName": "billing"})
    )
    assert all(change_of(f) is None for f in outside.findings)
    assert max(f.severity for f in outside.findings) is Severity.CRITICAL


def test_a_baseline_without_habits_lowers_nothing(tmp_path: Path) -> None:
    class NoHabits:
        name = "plain"

        def observe(self, ctx: Any, findings: Any, *, learn: bool) -> list[Finding]:
            return []

        def drain(self) -> list[Finding]:
            return []

        def forget(self, session_id: str) -> None:
            pass

        session_collections = ()

        def snapshot(self) -> dict[str, Any]:
            return {}

        def shared_snapshot(self) -> dict[str, Any]:
            return {}

        def session_snapshot(self, session_id: str) -> dict[str, Any]:
            return {}

        def restore(self, data: Any) -> None:
            pass

    pipeline = _pipeline(tmp_path, NoHabits(), habitual_step_down=True)
    result = pipeline.process(_person("e1", "iam.amazonaws.com", "DeleteRole"))
    assert [f.severity for f in result.findings] == [Severity.MEDIUM]
