"""`POST /v1/gate/verdicts` and `GET /v1/gate/verdicts` over real HTTP on loopback: who may
send, what a verdict must hold, one row per verdict id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from detector.approvals.tokens import TokenTable, hash_token
from detector.http_server import Health, HttpServer
from detector.metrics import GateVerdictMetrics, Metrics
from detector.state.sqlite import SqliteStateStore
from detector.web.auth import Auth
from detector.web.gate_verdicts import GateVerdictsApi

TOKEN = "tok-carol-5e0c1b9a7d3f4e26"
GOOD: dict[str, Any] = {
    "id": "gv-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "time": "2026-03-02T10:00:00.250000Z",
    "decision": "block",
    "reason": "aws s3 rb s3://prod: s3:DeleteBucket is not among the actions of scope ce-fix",
    "session_id": "a1a1a1a1a1a1",
    "task_id": "a1a1a1a1a1a1",
    "access_key_id": "ASIAEXAMPLETASK00042",
    "agent": "kiro",
    "owner": "alice@example.com",
    "scope": "ce-fix",
    "command": "aws s3 rb s3://prod --force",
    "tool_name": "execute_bash",
    "hook": "kiro",
    "calls": [{"kind": "aws", "actions": ["s3:DeleteBucket"], "resources": ["arn:aws:s3:::prod"]}],
    "notes": [],
    "sent": "ignored: a key the service does not know",
}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, SqliteStateStore, Metrics]]:
    store = SqliteStateStore(tmp_path / "state.db")
    metrics = Metrics(runtime_collectors=False)
    auth = Auth(TokenTable({hash_token(TOKEN): "carol@example.com"}), login_seconds=60)
    api = GateVerdictsApi(auth=auth, store=store, cap=100, metrics=GateVerdictMetrics(metrics))
    http = HttpServer(metrics, Health(), port=0, routes=[api.install])
    await http.start()
    try:
        yield f"http://127.0.0.1:{http.port}/v1/gate/verdicts", store, metrics
    finally:
        await http.stop()
        store.close()


async def _call(method: str, url: str, token: str | None = TOKEN, **kw: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    async with (
        aiohttp.ClientSession() as client,
        client.request(method, url, headers=headers, **kw) as response,
    ):
        return response.status, await response.json()


async def test_stored_once_per_id(server: tuple[str, SqliteStateStore, Metrics]) -> None:
    url, store, metrics = server
    status, body = await _call("POST", url, json=GOOD)
    assert status == 201, body
    verdict = body["verdict"]
    assert verdict["id"] == GOOD["id"] and verdict["sent_by"] == "carol@example.com"
    assert verdict["time"] == "2026-03-02T10:00:00.250000Z"
    assert verdict["calls"] == GOOD["calls"]
    again, body = await _call("POST", url, json={**GOOD, "reason": "sent again, changed"})
    assert again == 200 and body["verdict"]["reason"] == GOOD["reason"]
    assert len(store.gate_verdicts()) == 1
    counted = {
        labels["verdict"]: value
        for name, labels, value in metrics.samples()
        if name == "trailguard_gate_verdicts_total"
    }
    assert counted == {"allow": 0.0, "block": 1.0}


async def test_listing_filters(server: tuple[str, SqliteStateStore, Metrics]) -> None:
    url, _, _ = server
    await _call("POST", url, json=GOOD)
    allowed = {**GOOD, "id": "gv-allowed-000001", "decision": "allow", "reason": "ok"}
    await _call("POST", url, json={**allowed, "time": "2026-03-02T10:00:01Z"})
    other = {**GOOD, "id": "gv-other-0000001", "session_id": "ses-other", "task_id": None}
    await _call("POST", url, json=other)
    status, body = await _call("GET", url, params={"session": "a1a1a1a1a1a1"})
    assert status == 200
    assert [v["id"] for v in body["verdicts"]] == ["gv-allowed-000001", GOOD["id"]]
    _, body = await _call("GET", url, params={"task": "a1a1a1a1a1a1", "decision": "block"})
    assert [v["id"] for v in body["verdicts"]] == [GOOD["id"]]
    assert (await _call("GET", url, params={"decision": "maybe"}))[0] == 400
    assert (await _call("GET", url, params={"limit": "0"}))[0] == 400
    assert (await _call("GET", url, params={"limit": "x"}))[0] == 400
    assert (await _call("GET", url, token=None))[0] == 401


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"id": "short"}, "'id' must be 8 to 64"),
        ({"id": None}, "'id' must be"),
        ({"decision": "maybe"}, "'decision' must be one of allow, block"),
        ({"reason": None}, "'reason' is required"),
        ({"reason": 7}, "'reason' must be a string"),
        ({"time": "yesterday"}, "'time' 'yesterday' is not an ISO 8601 time"),
        ({"time": "2026-03-02T10:00:00"}, "'time' must carry its zone"),
        ({"time": None}, "'time' is required"),
        ({"session_id": None, "task_id": None}, "'session_id' or 'task_id' is required"),
        ({"access_key_id": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}, "never the secret"),
        ({"calls": {"kind": "aws"}}, "'calls' must be a list of objects"),
        ({"notes": [1]}, "'notes' must be a list of strings"),
        ({"calls": [{}] * 300}, "'calls' has more than 256 items"),
        ({"command": "x" * 70000}, "'command' is longer than 65536 characters"),
        ({"agent": ["kiro"]}, "'agent' must be a string"),
    ],
)
async def test_bad_bodies_are_refused_with_the_key_named(
    server: tuple[str, SqliteStateStore, Metrics], change: dict[str, Any], says: str
) -> None:
    url, store, _ = server
    status, body = await _call("POST", url, json={**GOOD, **change})
    assert status == 400
    assert says in body["error"]
    assert store.gate_verdicts() == []


async def test_not_json_and_not_an_object(server: tuple[str, SqliteStateStore, Metrics]) -> None:
    url, _, _ = server
    status, body = await _call("POST", url, data=b"{", headers={"Content-Type": "application/json"})
    assert status == 400 and "JSON object" in body["error"]
    assert (await _call("POST", url, json=[GOOD]))[0] == 400


async def test_only_a_valid_bearer_token_may_send(
    server: tuple[str, SqliteStateStore, Metrics],
) -> None:
    url, store, _ = server
    assert (await _call("POST", url, token=None, json=GOOD))[0] == 401
    assert (await _call("POST", url, token="wrong", json=GOOD))[0] == 401
    assert store.gate_verdicts() == []


async def test_text_the_stores_cannot_hold_is_made_safe(
    server: tuple[str, SqliteStateStore, Metrics],
) -> None:
    url, store, _ = server
    raw = (
        b'{"id": "gv-odd-text-00001", "time": "2026-03-02T10:00:00Z", "decision": "block",'
        b' "reason": "r", "session_id": "s", "command": "aws s3 rb s3://b-\\udcff\\u0000",'
        b' "calls": [{"n": NaN}]}'
    )
    status, body = await _call("POST", url, data=raw, headers={"Content-Type": "application/json"})
    assert status == 201, body
    (row,) = store.gate_verdicts()
    assert row.command == "aws s3 rb s3://b-?\ufffd"
    assert row.detail["calls"] == [{"n": None}]
