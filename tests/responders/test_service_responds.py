"""The service over the incident scenario with responses enabled, on moto: Kiro's session on
alice's Identity Center credentials is denied, journaled, and not denied twice on redelivery."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import orjson
import pytest

from detector.config import ResponseSettings, Settings, StateSettings
from detector.core import revocation_policy as rp
from detector.core.iam_eval import denies
from detector.responders.build import build_dispatcher
from detector.service import Service
from detector.sinks.jsonl import JsonlSink
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline
from tests.moto_aws import REGION
from tests.responders.conftest import Iam
from tests.scenario import DEMO, incident
from tests.service.test_service_loop import ScriptedSource

pytestmark = pytest.mark.integration
KIRO_SESSION = "ses-3cdc3999faa2cd89"
ALICE = "AROARBCDEFGHSSOADMIN1:alice@example.com"


def _settings(endpoint: str, tmp_path: Path) -> Settings:
    responder = {
        "type": "revoke-session",
        "region": REGION,
        "endpoint_url": endpoint,
        "allow_accounts": ["111122223333"],
        "allow_roles": ["arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/*"],
    }
    return Settings(
        state=StateSettings(flush_interval_seconds=60, path=tmp_path / "state.db"),
        responses=ResponseSettings(enabled=True, responders=(responder,)),
    )


async def _run(settings: Settings, store: SqliteStateStore, out: Path) -> None:
    records = incident()
    sink = JsonlSink("out", {"path": str(out)})
    dispatcher = build_dispatcher(settings, store, sinks=[sink])
    service = Service(
        settings,
        pipeline_factory=lambda: build_pipeline(settings, scopes_path=DEMO / "scopes.yaml"),
        sources=[ScriptedSource([records[:20], records[20:]])],
        sinks=[sink],
        store=store,
        owner="test",
        responders=dispatcher,
    )
    await dispatcher.open()
    await asyncio.wait_for(service.run(asyncio.Event()), timeout=60)


def _permission_set(endpoint: str) -> tuple[Any, str, str]:
    sso = boto3.client("sso-admin", region_name=REGION, endpoint_url=endpoint)
    instance = sso.list_instances()["Instances"][0]["InstanceArn"]
    created = sso.create_permission_set(Name="AdministratorAccess", InstanceArn=instance)
    return sso, instance, created["PermissionSet"]["PermissionSetArn"]


async def test_the_incident_revokes_kiros_session_once(moto_iam: Iam, tmp_path: Path) -> None:
    sso, instance, permission_set = _permission_set(moto_iam.endpoint)
    settings = _settings(moto_iam.endpoint, tmp_path)
    out = tmp_path / "out.jsonl"
    with SqliteStateStore(tmp_path / "state.db") as store:
        await _run(settings, store, out)
        entries = store.journal_entries(session_id=KIRO_SESSION)

    assert [e.outcome for e in entries] == ["decided", "applied"]
    applied = entries[-1]
    assert applied.detail["seconds_from_event"] > 0
    assert applied.detail["seconds_from_arrival"] >= 0
    written = json.loads(
        sso.get_inline_policy_for_permission_set(
            InstanceArn=instance, PermissionSetArn=permission_set
        )["InlinePolicy"]
    )
    # The agent's credentials (issued 09:50:00) are denied; alice logging in again is not.
    assert denies(written, {"aws:userid": ALICE, "aws:TokenIssueTime": "2025-12-08T09:50:00Z"})
    assert not denies(written, {"aws:userid": ALICE, "aws:TokenIssueTime": "2025-12-08T10:30:00Z"})
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    outcomes = [r for r in lines if r["type"] == "response-outcome"]
    assert [(r["session_id"], r["outcome"], r["alert"]) for r in outcomes] == [
        (KIRO_SESSION, "applied", False)
    ]

    # The state save is lost (a crash before the flush): the redelivered batches decide the
    # response again, and the journal stops it from being carried out twice.
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("DELETE FROM shards")
    with SqliteStateStore(tmp_path / "state.db") as store:
        await _run(settings, store, out)
        again = store.journal_entries(session_id=KIRO_SESSION)
    assert [e.outcome for e in again] == ["decided", "applied"]
    after = json.loads(
        sso.get_inline_policy_for_permission_set(
            InstanceArn=instance, PermissionSetArn=permission_set
        )["InlinePolicy"]
    )
    assert after == written
    assert rp.policy_size(after) <= rp.ROLE_INLINE_BUDGET
