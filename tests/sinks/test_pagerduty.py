"""The pagerduty sink against a real HTTP receiver: one incident per session, escalation,
resolution after a revocation, retries, and no second page after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from detector.errors import ConfigError
from detector.metrics import AlertSinkMetrics
from detector.sinks.delivery import DeliveryError
from detector.state.sqlite import SqliteStateStore
from tests.sinks.conftest import KIRO
from tests.sinks.helpers import PUBLIC_URL, Clock, by_step, make_sink
from tests.sinks.receiver import Receiver


def _pd(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {"routing_key": "R0UTINGKEY", "url": f"{receiver.url}/v2/enqueue", **extra}


def _events(receiver: Receiver, session: str = KIRO) -> list[dict[str, Any]]:
    return [
        r.json() for r in receiver.accepted() if r.json()["dedup_key"] == f"trailguard/{session}"
    ]


async def test_one_incident_per_session_with_evidence_and_link(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    sink = make_sink("pagerduty", _pd(receiver))
    await sink.open()
    await sink.write(incident_records)
    await sink.close()
    keys = {r.json()["dedup_key"] for r in receiver.accepted()}
    alerted = {r["session_id"] for r in incident_records if r["type"] == "alert"}
    # Five kinds alerted on Kiro's session; one incident per session all the same.
    assert keys == {f"trailguard/{s}" for s in alerted}
    [event] = _events(receiver)
    assert event["event_action"] == "trigger"
    assert event["routing_key"] == "R0UTINGKEY"
    payload = event["payload"]
    assert payload["severity"] == "critical"
    assert "agent kiro for alice@example.com" in payload["summary"]
    details = payload["custom_details"]
    assert set(details["kinds"]) >= {"out-of-scope-action", "agent-on-human-credentials"}
    assert details["kinds"]["out-of-scope-action"]["action"] == "cloudformation:DeleteStack"
    assert details["scope"] == "ce-4821-fix"
    assert details["response"]["dry_run"] is False
    link = f"{PUBLIC_URL}/sessions/{KIRO}"
    assert event["links"] == [{"href": link, "text": "TrailGuard session page"}]
    assert event["client_url"] == link


async def test_severity_only_rises_under_one_dedup_key(
    receiver: Receiver, dry_run_records: list[dict[str, Any]]
) -> None:
    sink = make_sink("pagerduty", _pd(receiver))
    await sink.open()
    for batch in by_step(dry_run_records):
        await sink.write(batch)
    await sink.close()
    events = _events(receiver)
    severities = [e["payload"]["severity"] for e in events]
    assert severities[0] == "error"  # agent on a person's credentials, high
    assert "critical" in severities
    order = ["info", "warning", "error", "critical"]
    assert severities == sorted(severities, key=order.index)
    assert all(e["event_action"] == "trigger" for e in events)


async def test_resolves_when_revoked_and_quiet_not_before(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    clock = Clock()
    sink = make_sink("pagerduty", _pd(receiver, resolve_quiet_seconds=120), clock=clock)
    await sink.open()
    await sink.write(incident_records)
    clock.advance(100)
    await sink.tick()
    assert [e["event_action"] for e in _events(receiver)] == ["trigger"]
    clock.advance(30)
    await sink.tick()
    await sink.tick()
    await sink.close()
    assert [e["event_action"] for e in _events(receiver)] == ["trigger", "resolve"]
    # Bob's session was never revoked: it stays open for a person.
    others = [r.json() for r in receiver.accepted() if KIRO not in r.json()["dedup_key"]]
    assert others and all(e["event_action"] == "trigger" for e in others)


async def test_a_dry_run_revocation_never_resolves(
    receiver: Receiver, dry_run_records: list[dict[str, Any]]
) -> None:
    clock = Clock()
    sink = make_sink("pagerduty", _pd(receiver, resolve_quiet_seconds=1), clock=clock)
    await sink.open()
    await sink.write(dry_run_records)
    clock.advance(100_000)
    await sink.tick()
    await sink.close()
    assert [e["event_action"] for e in _events(receiver)] == ["trigger"]
    # Idle for longer than any session lasts: left to people in PagerDuty, no longer tracked.
    assert sink.ledger.active == {}


async def test_restart_and_redelivery_page_once(
    tmp_path: Path, receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    clock = Clock()
    settings = _pd(receiver, resolve_quiet_seconds=60)
    first = make_sink("pagerduty", settings, store=store, clock=clock)
    await first.open()
    await first.write(incident_records)
    sent = len(receiver.accepted())
    # A crash before the batch was acknowledged: a new process, the same batch again.
    await first.close()
    second = make_sink("pagerduty", settings, store=store, clock=clock)
    await second.open()
    await second.write(incident_records)
    assert len(receiver.accepted()) == sent
    # The revocation's quiet period runs on across the restart, from the stored incident.
    clock.advance(61)
    await second.tick()
    await second.close()
    assert [e["event_action"] for e in _events(receiver)] == ["trigger", "resolve"]
    third = make_sink("pagerduty", settings, store=store, clock=clock)
    await third.open()
    await third.write(incident_records)
    await third.tick()
    await third.close()
    assert [e["event_action"] for e in _events(receiver)] == ["trigger", "resolve"]
    store.close()


async def test_server_errors_are_retried_then_delivered(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    registry = CollectorRegistry()
    metrics = AlertSinkMetrics(registry, sinks=["pagerduty"])
    receiver.script = [(500, 0.0), (503, 0.0), (429, 0.0)]
    sink = make_sink("pagerduty", _pd(receiver, min_severity="critical"), metrics=metrics)
    await sink.open()
    await sink.write(incident_records)
    await sink.close()
    assert [r.headers["x-answer"] for r in receiver.requests] == ["500", "503", "429", "ok"]
    assert len({r.body for r in receiver.requests}) == 1  # the same event each time
    value = registry.get_sample_value
    assert value("trailguard_alerts_failed_total", {"sink": "pagerduty", "retriable": "true"}) == 3
    assert value("trailguard_alerts_sent_total", {"sink": "pagerduty"}) == 1
    assert value("trailguard_active_alerts", {"sink": "pagerduty"}) == 1


async def test_a_client_error_is_not_retried_and_stops_the_write(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    registry = CollectorRegistry()
    metrics = AlertSinkMetrics(registry, sinks=["pagerduty"])
    receiver.script = [(400, 0.0)]
    sink = make_sink("pagerduty", _pd(receiver, min_severity="critical"), metrics=metrics)
    await sink.open()
    with pytest.raises(DeliveryError) as raised:
        await sink.write(incident_records)
    await sink.close()
    assert raised.value.retriable is False
    assert raised.value.status == 400
    assert len(receiver.requests) == 1
    labels = {"sink": "pagerduty", "retriable": "false"}
    assert registry.get_sample_value("trailguard_alerts_failed_total", labels) == 1


async def test_a_timeout_is_retried(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    receiver.script = [(202, 1.0)]
    settings = _pd(receiver, min_severity="critical", timeout_seconds=0.2)
    sink = make_sink("pagerduty", settings)
    await sink.open()
    await sink.write(incident_records)
    await sink.close()
    assert len(receiver.requests) == 2
    assert len(_events(receiver)) == 2  # the receiver saw both; the first answer came too late


async def test_retries_are_bounded_and_what_failed_is_sent_by_the_next_write(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    receiver.script = [(502, 0.0)] * 3
    settings = _pd(receiver, min_severity="critical", max_attempts=3)
    sink = make_sink("pagerduty", settings)
    await sink.open()
    with pytest.raises(DeliveryError) as raised:
        await sink.write(incident_records)
    assert raised.value.retriable is True
    assert len(receiver.requests) == 3
    # The service retries the batch: the same records, and the pending page goes out once.
    await sink.write(incident_records)
    await sink.write(incident_records)
    await sink.close()
    assert len(receiver.accepted()) == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "'sinks[0].routing_key' or 'sinks[0].routing_key_file'"),
        ({"routing_key": "k", "routing_key_file": "/k"}, "exactly one"),
        ({"routing_key": "k", "url": "ftp://x"}, "'sinks[0].url' must be an http(s) URL"),
        ({"routing_key": "k", "min_severity": "urgent"}, "'sinks[0].min_severity'"),
        ({"routing_key": "k", "rooting": 1}, "unknown key 'sinks[0].rooting'"),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"test\.yaml") as raised:
        make_sink("pagerduty", settings)
    assert message in str(raised.value)


async def test_the_routing_key_can_come_from_a_file(
    tmp_path: Path, receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    key_file = tmp_path / "routing-key"
    key_file.write_text("FROMAFILE\n")
    settings = {"routing_key_file": str(key_file), "url": f"{receiver.url}/v2/enqueue"}
    sink = make_sink("pagerduty", {**settings, "min_severity": "critical"})
    await sink.open()
    await sink.write(incident_records)
    await sink.close()
    assert receiver.accepted()[0].json()["routing_key"] == "FROMAFILE"
