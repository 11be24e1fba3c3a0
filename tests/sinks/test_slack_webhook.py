"""The slack and webhook sinks against a real HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest

from detector.errors import ConfigError
from detector.sinks.delivery import DeliveryError
from detector.sinks.webhook import verify
from detector.state.sqlite import SqliteStateStore
from tests.sinks.conftest import KIRO
from tests.sinks.helpers import PUBLIC_URL, Clock, by_step, make_sink
from tests.sinks.receiver import Receiver

SECRET = "s3cr3t-shared-with-the-receiver"


def _text(message: dict[str, Any]) -> str:
    parts: list[str] = [message["text"]]
    for block in message["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(f["text"] for f in block.get("fields", ()))
        for element in block.get("elements", ()):
            parts.append(element.get("text", {}).get("text", "") if "url" in element else "")
            parts.append(element.get("text", "") if isinstance(element.get("text"), str) else "")
    return "\n".join(parts)


async def test_slack_message_says_who_what_and_what_was_revoked(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    receiver.ok_status = 200
    sink = make_sink("slack", {"webhook_url": f"{receiver.url}/services/T0/B0/x"})
    await sink.open()
    await sink.write(incident_records)
    await sink.close()
    messages = [r.json() for r in receiver.accepted() if KIRO in r.body.decode()]
    assert len(messages) == 1  # one message for the session, not one per kind
    [message] = messages
    text = _text(message)
    for expected in (
        "kiro",
        "alice@example.com",
        "ce-4821-fix",
        "cloudformation:DeleteStack",
        "arn:aws:cloudformation:",
        "denied by scope ce-4821-fix",
        "revoke-session",
        " revoked",
    ):
        assert expected in text, expected
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == f"{PUBLIC_URL}/sessions/{KIRO}"


async def test_slack_says_a_dry_run_would_revoke_and_posts_again_on_escalation(
    receiver: Receiver, dry_run_records: list[dict[str, Any]]
) -> None:
    receiver.ok_status = 200
    sink = make_sink("slack", {"webhook_url": f"{receiver.url}/hook", "min_severity": "high"})
    await sink.open()
    for batch in by_step(dry_run_records):
        await sink.write(batch)
    await sink.close()
    texts = [_text(r.json()) for r in receiver.accepted()]
    assert "TrailGuard high" in texts[0] and "nothing revoked" in texts[0]
    assert any("TrailGuard critical" in t and "would be revoked (dry run)" in t for t in texts)
    # A message per change worth acting on, not one per alert record.
    alerts = [r for r in dry_run_records if r["type"] == "alert" and r["session_id"] == KIRO]
    assert 2 <= len(texts) < len(alerts)


async def test_slack_restart_posts_nothing_twice(
    tmp_path: Path, receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    receiver.ok_status = 200
    store = SqliteStateStore(tmp_path / "state.db")
    settings = {"webhook_url": f"{receiver.url}/hook"}
    for _ in range(2):
        sink = make_sink("slack", settings, store=store)
        await sink.open()
        await sink.write(incident_records)
        await sink.close()
    store.close()
    bodies = [r.body for r in receiver.accepted()]
    assert len(bodies) == len(set(bodies)) == 2  # Kiro's session and Bob's, once each


async def test_slack_gone_channel_is_not_retried(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    receiver.script = [(404, 0.0)]
    sink = make_sink("slack", {"webhook_url": f"{receiver.url}/hook"})
    await sink.open()
    with pytest.raises(DeliveryError) as raised:
        await sink.write(incident_records)
    await sink.close()
    assert not raised.value.retriable
    assert len(receiver.requests) == 1


async def test_webhook_body_is_signed_and_verifiable(
    receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    sink = make_sink("webhook", {"url": f"{receiver.url}/in", "secret": SECRET})
    await sink.open()
    await sink.write(incident_records)
    await sink.close()
    assert receiver.accepted()
    for request in receiver.accepted():
        header = request.headers["x-trailguard-signature-256"]
        # What the README tells a receiver to do, written out independently.
        expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(header, expected)
        assert verify(SECRET, request.body, header)
        assert not verify("another secret", request.body, header)
        assert not verify(SECRET, request.body + b" ", header)
        body = request.json()
        assert request.headers["x-trailguard-delivery"] == body["delivery_id"]
        assert body["type"] == "trailguard.incident"
    [kiro] = [r.json() for r in receiver.accepted() if r.json()["session_id"] == KIRO]
    assert kiro["event"] == "trigger"
    assert kiro["severity"] == "critical"
    assert kiro["session_url"] == f"{PUBLIC_URL}/sessions/{KIRO}"
    assert "out-of-scope-action" in kiro["kinds"]


async def test_webhook_resolve_and_restart_deliver_each_change_once(
    tmp_path: Path, receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    clock = Clock()
    settings = {"url": f"{receiver.url}/in", "secret": SECRET, "resolve_quiet_seconds": 10}
    sink = make_sink("webhook", settings, store=store, clock=clock)
    await sink.open()
    await sink.write(incident_records)
    await sink.close()
    again = make_sink("webhook", settings, store=store, clock=clock)
    await again.open()
    await again.write(incident_records)
    clock.advance(11)
    await again.tick()
    await again.close()
    store.close()
    kiro = [r.json() for r in receiver.accepted() if r.json()["session_id"] == KIRO]
    assert [b["event"] for b in kiro] == ["trigger", "resolve"]
    assert kiro[1]["resolve_reason"] == "revoked"
    ids = [r.headers["x-trailguard-delivery"] for r in receiver.accepted()]
    assert len(ids) == len(set(ids))


def test_webhook_needs_a_secret() -> None:
    with pytest.raises(ConfigError, match=r"sinks\[0\]\.secret"):
        make_sink("webhook", {"url": "http://127.0.0.1:1/in"})
