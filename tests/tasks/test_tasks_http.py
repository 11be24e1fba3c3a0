"""The /v1/tasks API over real HTTP on loopback, minting against a moto server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3  # type: ignore[import-untyped]
import pytest

from detector.approvals.tokens import TokenTable, hash_token
from detector.config import Settings
from detector.core.scope import parse_scopes
from detector.http_server import Health, HttpServer
from detector.metrics import Metrics
from detector.state.sqlite import SqliteStateStore
from detector.tasks.starter import TaskStarter
from detector.web.auth import Auth
from detector.web.tasks import TasksApi

TOKEN = "tok-alice-0123456789"
ROLE = "arn:aws:iam::123456789012:role/agent-api"
SCOPES = {
    "scopes": [
        {"name": "ce-4821-fix", "match": {"agent": "kiro"}, "allow": {"actions": ["s3:Get*"]}}
    ]
}


@pytest.fixture
async def server(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, SqliteStateStore]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASERVICE000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "service")
    store = SqliteStateStore(tmp_path / "state.db")
    settings = Settings(tasks={"endpoint_url": moto_endpoint, "role_arn": ROLE})
    starter = TaskStarter(settings, scopes=parse_scopes(SCOPES, source="s"), store=store)
    auth = Auth(TokenTable({hash_token(TOKEN): "alice@example.com"}), login_seconds=60)
    api = TasksApi(auth=auth, store=store, starter=starter)
    http = HttpServer(Metrics(runtime_collectors=False), Health(), port=0, routes=[api.install])
    await http.start()
    try:
        yield f"http://127.0.0.1:{http.port}", store
    finally:
        await http.stop()
        store.close()


async def _call(method: str, url: str, token: str | None = TOKEN, **kw: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as client,
        client.request(method, url, headers=headers, **kw) as response,
    ):
        return response.status, await response.json()


async def test_start_list_end(server: tuple[str, SqliteStateStore], moto_endpoint: str) -> None:
    base, store = server
    status, body = await _call(
        "POST", f"{base}/v1/tasks", json={"scope": "ce-4821-fix", "agent": "kiro"}
    )
    assert status == 201, body
    task = body["task"]
    assert task["owner"] == "alice@example.com" and task["status"] == "active"
    creds = body["credentials"]
    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert sts.get_caller_identity()["Arn"].endswith(task["source_identity"])
    status, listed = await _call("GET", f"{base}/v1/tasks")
    assert status == 200 and [t["task_id"] for t in listed["tasks"]] == [task["task_id"]]
    status, ended = await _call("POST", f"{base}/v1/tasks/{task['task_id']}/end")
    assert status == 200 and ended["task"]["status"] == "ended"
    stored = store.task(task["task_id"])
    assert stored is not None and stored.status == "ended"
    status, _ = await _call("POST", f"{base}/v1/tasks/nope/end")
    assert status == 404


async def test_refusals(server: tuple[str, SqliteStateStore]) -> None:
    base, store = server
    assert (await _call("GET", f"{base}/v1/tasks", token=None))[0] == 401
    assert (await _call("POST", f"{base}/v1/tasks", token="wrong", json={}))[0] == 401
    status, body = await _call("POST", f"{base}/v1/tasks", json={"scope": "nope", "agent": "kiro"})
    assert status == 400 and "no scope 'nope'" in body["error"]
    status, _ = await _call("POST", f"{base}/v1/tasks", json={"agent": "kiro"})
    assert status == 400
    status, _ = await _call("GET", f"{base}/v1/tasks?status=bogus")
    assert status == 400
    assert store.tasks() == []
