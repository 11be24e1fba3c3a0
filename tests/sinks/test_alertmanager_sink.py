"""The alertmanager sink's requests, against a real HTTP receiver in Alertmanager's place."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from detector.errors import ConfigError
from detector.sinks.delivery import DeliveryError
from tests.sinks.conftest import KIRO
from tests.sinks.helpers import PUBLIC_URL, Clock, make_sink
from tests.sinks.receiver import Receiver


def _am(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {"url": receiver.url, "headers": {"Authorization": "Bearer am-token"}, **extra}


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _kiro(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["labels"]["session"] == KIRO]


async def test_alerts_carry_labels_annotations_and_links(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    receiver.ok_status = 200
    clock = Clock()
    sink = make_sink(
        "alertmanager", _am(receiver, runbook_url="https://wiki/tg/{kind}"), clock=clock
    )
    await sink.open()
    await sink.write(incident_records)
    await sink.close()
    request = receiver.accepted()[0]
    assert request.path == "/api/v2/alerts"
    assert request.headers["authorization"] == "Bearer am-token"
    alerts = _kiro([a for r in receiver.accepted() for a in r.json()])
    kinds = {a["labels"]["alertname"] for a in alerts}
    assert kinds == {
        r["kind"] for r in incident_records if r["type"] == "alert" and r["session_id"] == KIRO
    }
    [delete] = [a for a in alerts if a["labels"]["alertname"] == "out-of-scope-action"]
    assert delete["labels"] == {
        "alertname": "out-of-scope-action",
        "severity": "critical",
        "account": "111122223333",
        "agent": "kiro",
        "session_kind": "agent",
        "scope": "ce-4821-fix",
        "session": KIRO,
    }
    link = f"{PUBLIC_URL}/sessions/{KIRO}"
    assert delete["generatorURL"] == link
    notes = delete["annotations"]
    assert notes["session_url"] == link
    assert notes["runbook_url"] == "https://wiki/tg/out-of-scope-action"
    assert "cloudformation:DeleteStack" in notes["summary"]
    for words in ("agent kiro for alice@example.com", "Task scope: ce-4821-fix", "revoked"):
        assert words in notes["description"]
    now = clock.now.timestamp()
    assert _time(delete["startsAt"]) <= now < _time(delete["endsAt"])
    # Started when TrailGuard raised it: an older startsAt makes Alertmanager skip its
    # group_wait and page with only the kinds it had taken in at that instant.
    assert _time(delete["startsAt"]) == now
    [raised] = [
        r
        for r in incident_records
        if r["type"] == "alert" and r["session_id"] == KIRO and r["kind"] == "out-of-scope-action"
    ]
    assert notes["first_seen"] == raised["first_seen"]


async def test_escalation_resolves_the_old_severity_label_set(
    receiver: Receiver, dry_run_records: list[dict[str, Any]]
) -> None:
    receiver.ok_status = 200
    clock = Clock()
    sink = make_sink("alertmanager", _am(receiver), clock=clock)
    await sink.open()
    high = next(r for r in dry_run_records if r["type"] == "alert" and r["severity"] == "high")
    await sink.write([high])
    await sink.write([{**high, "severity": "critical"}])
    await sink.write([{**high, "severity": "high"}])  # a late, lower record changes nothing
    await sink.close()
    now = clock.now.timestamp()
    first, second = (r.json() for r in receiver.accepted())
    assert [a["labels"]["severity"] for a in first] == ["high"]
    states = {(a["labels"]["severity"], _time(a["endsAt"]) > now) for a in second}
    assert states == {("critical", True), ("high", False)}


async def test_active_alerts_are_resent_before_they_lapse_and_resolve_after_revocation(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    receiver.ok_status = 200
    clock = Clock()
    settings = _am(receiver, resend_seconds=60, alert_ttl_seconds=240, resolve_quiet_seconds=150)
    sink = make_sink("alertmanager", settings, clock=clock)
    await sink.open()
    await sink.write(incident_records)
    first = len(receiver.accepted())
    clock.advance(61)
    await sink.tick()
    resent = receiver.accepted()[first:]
    assert resent, "active alerts are re-sent"
    alerts = _kiro([a for r in resent for a in r.json()])
    assert alerts and all(_time(a["endsAt"]) > clock.now.timestamp() + 120 for a in alerts)
    clock.advance(90)
    await sink.tick()
    await sink.close()
    last = _kiro(receiver.accepted()[-1].json()) or _kiro(receiver.accepted()[-2].json())
    assert last and all(_time(a["endsAt"]) <= clock.now.timestamp() for a in last)


async def test_an_idle_session_resolves(
    receiver: Receiver, dry_run_records: list[dict[str, Any]]
) -> None:
    receiver.ok_status = 200
    clock = Clock()
    sink = make_sink("alertmanager", _am(receiver, idle_seconds=3600), clock=clock)
    await sink.open()
    await sink.write(dry_run_records)
    assert len(sink.ledger.active) == 2
    clock.advance(3601)
    await sink.tick()
    await sink.close()
    assert sink.ledger.active == {}


def test_resend_must_come_before_alerts_lapse() -> None:
    with pytest.raises(ConfigError, match=r"sinks\[0\]\.resend_seconds"):
        make_sink("alertmanager", {"url": "http://am:9093", "resend_seconds": 300})


async def test_a_rejected_refresh_surfaces_at_the_next_write(
    receiver: Receiver, dry_run_records: list[dict[str, Any]]
) -> None:
    receiver.ok_status = 200
    clock = Clock()
    sink = make_sink(
        "alertmanager", _am(receiver, resend_seconds=1, alert_ttl_seconds=10), clock=clock
    )
    await sink.open()
    await sink.write(dry_run_records)
    receiver.script = [(400, 0.0)]
    clock.advance(2)
    for _ in range(200):  # the periodic task runs on its own
        await asyncio.sleep(0.05)
        if receiver.requests[-1].headers["x-answer"] == "400":
            break
    await asyncio.sleep(0.05)
    with pytest.raises(DeliveryError) as raised:
        await sink.write([])
    await sink.close()
    assert raised.value.status == 400


async def test_labels_stay_as_first_sent(
    receiver: Receiver, dry_run_records: list[dict[str, Any]]
) -> None:
    receiver.ok_status = 200
    sink = make_sink("alertmanager", _am(receiver))
    await sink.open()
    high = next(r for r in dry_run_records if r["type"] == "alert" and r["severity"] == "high")
    await sink.write([{**high, "agent": None}])
    await sink.write([{**high, "severity": "critical", "agent": "kiro"}])
    await sink.close()
    second = receiver.accepted()[1].json()
    assert {a["labels"]["severity"] for a in second} == {"critical", "high"}
    assert all("agent" not in a["labels"] for a in second)
