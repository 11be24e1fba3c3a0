"""The service reads the task registry from its own state store and binds task credentials."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from detector.config import Settings, StateSettings
from detector.service import Service
from detector.sinks.jsonl import JsonlSink
from detector.state.sqlite import SqliteStateStore
from detector.state.tasks import TaskRow
from detector.wiring import build_pipeline
from tests.service.test_service_loop import ScriptedSource
from tests.unit.test_task_binding import IDENTITY, SCOPES, TASK_ID

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ROW = TaskRow(
    task_id=TASK_ID,
    agent="kiro",
    owner="alice@example.com",
    scope="ce-4821-fix",
    role_arn="arn:aws:iam::111122223333:role/agent-ce",
    source_identity=f"agent-kiro-{TASK_ID}",
    created_at=T0,
    expires_at=T0 + timedelta(hours=1),
    access_key_id=IDENTITY["accessKeyId"],
    principal_id=IDENTITY["principalId"],
)


def _record(event_id: str, name: str, at: datetime) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventID": event_id,
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.22.0",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
        "requestParameters": {"bucketName": "ce-logs"},
        "userIdentity": IDENTITY,
    }


async def _run(tmp_path: Path, records: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    scopes = tmp_path / "scopes.yaml"
    scopes.write_text(SCOPES)
    settings = Settings(
        state=StateSettings(flush_interval_seconds=60, session_idle_seconds=10 * 365 * 86400)
    )
    store = SqliteStateStore(tmp_path / "state.db")
    service = Service(
        settings,
        pipeline_factory=lambda: build_pipeline(settings, scopes_path=scopes),
        sources=[ScriptedSource([records])],
        sinks=[JsonlSink("out", {"path": str(out)})],
        store=store,
        owner="test",
        clock=lambda: T0 + timedelta(minutes=30),
    )
    await asyncio.wait_for(service.run(asyncio.Event()), timeout=30)
    store.close()
    raw = await asyncio.to_thread(out.read_bytes)
    return [orjson.loads(line) for line in raw.splitlines()]


async def test_task_credentials_bind_then_use_after_end_is_expired(tmp_path: Path) -> None:
    with SqliteStateStore(tmp_path / "state.db") as store:
        store.put_task(ROW)
    first = await _run(
        tmp_path, [_record("e1", "DeleteBucket", T0 + timedelta(minutes=5))], tmp_path / "1.jsonl"
    )
    bound = [r for r in first if r["type"] == "finding"]
    assert bound and {f["scope"] for f in bound} == {"ce-4821-fix"}
    assert any("attribution: registry" in e for e in bound[0]["evidence"])
    with SqliteStateStore(tmp_path / "state.db") as store:
        store.end_task(TASK_ID, at=T0 + timedelta(minutes=10))
    second = await _run(
        tmp_path, [_record("e2", "GetObject", T0 + timedelta(minutes=20))], tmp_path / "2.jsonl"
    )
    kinds = {r["kind"] for r in second if r["type"] == "finding"}
    assert "scope-expired" in kinds
