"""The incident fold, pure: records in, one incident per session out."""

from __future__ import annotations

from typing import Any

from detector.core.taxonomy import Severity
from detector.sinks.incident import ACTIVE, RESOLVED, Incident, session_updates
from tests.sinks.conftest import KIRO


def _fold(records: list[dict[str, Any]], now: float = 100.0) -> dict[str, Incident]:
    incidents: dict[str, Incident] = {}
    for sid, update in session_updates(records).items():
        incidents.setdefault(sid, Incident(session_id=sid)).apply(update, now)
    return incidents


def test_a_session_is_one_incident_with_every_kind_and_the_findings_evidence(
    incident_records: list[dict[str, Any]],
) -> None:
    kiro = _fold(incident_records)[KIRO]
    alerts = [r for r in incident_records if r["type"] == "alert" and r["session_id"] == KIRO]
    assert set(kiro.kinds) == {a["kind"] for a in alerts}
    assert kiro.severity is Severity.CRITICAL
    assert kiro.human == "alice@example.com" and kiro.account == "111122223333"
    top = kiro.headline()
    assert top.action == "cloudformation:DeleteStack"
    assert top.resources and top.reason
    assert kiro.revoked and kiro.revoked_at == 100.0


def test_folding_the_same_records_again_changes_nothing(
    incident_records: list[dict[str, Any]],
) -> None:
    kiro = _fold(incident_records)[KIRO]
    version = kiro.version
    for update in session_updates(incident_records).values():
        if update.session_id == KIRO:
            assert kiro.apply(update, 200.0) is False
    assert kiro.version == version
    assert kiro.revoked_at == 100.0  # the quiet period is not restarted by a redelivery


def test_severity_only_rises(dry_run_records: list[dict[str, Any]]) -> None:
    alert = next(r for r in dry_run_records if r["type"] == "alert" and r["severity"] == "high")
    incident = Incident(session_id=alert["session_id"])
    [update] = session_updates([{**alert, "severity": "critical"}]).values()
    incident.apply(update, 1.0)
    [lower] = session_updates([alert]).values()
    assert incident.apply(lower, 2.0) is False
    assert incident.kinds[alert["kind"]].severity is Severity.CRITICAL


def test_due_after_revocation_and_quiet_and_reopened_by_new_activity(
    incident_records: list[dict[str, Any]], dry_run_records: list[dict[str, Any]]
) -> None:
    kiro = _fold(incident_records)[KIRO]
    assert kiro.due(150.0, quiet_seconds=60, idle_seconds=None) is None
    assert kiro.due(160.0, quiet_seconds=60, idle_seconds=None) == "revoked"
    kiro.resolve(160.0, "revoked")
    assert kiro.status == RESOLVED
    new_kind = {
        "type": "alert",
        "session_id": KIRO,
        "kind": "credential-access",
        "severity": "high",
        "title": "credential-access: agent kiro read a secret",
    }
    [update] = session_updates([new_kind]).values()
    assert kiro.apply(update, 300.0) is True
    assert kiro.status == ACTIVE and not kiro.revoked
    assert kiro.due(10_000.0, quiet_seconds=60, idle_seconds=None) is None
    dry = _fold(dry_run_records)[KIRO]
    assert not dry.revoked
    assert dry.due(10_000.0, quiet_seconds=60, idle_seconds=None) is None
    assert dry.due(10_000.0, quiet_seconds=60, idle_seconds=3600) == "idle"


def test_min_severity_filters_alerts_and_a_lone_revocation_pages_no_one(
    incident_records: list[dict[str, Any]],
) -> None:
    updates = session_updates(incident_records, min_severity=Severity.CRITICAL)
    assert set(updates) == {KIRO}
    responses = [r for r in incident_records if r["type"] == "response"]
    [update] = session_updates(responses).values()
    incident = Incident(session_id=KIRO)
    assert incident.apply(update, 1.0) is True
    assert not incident.pending


def test_incidents_round_trip_through_json(incident_records: list[dict[str, Any]]) -> None:
    kiro = _fold(incident_records)[KIRO]
    kiro.sent = {"triggered": True}
    again = Incident.from_json(kiro.to_json())
    assert again == kiro
