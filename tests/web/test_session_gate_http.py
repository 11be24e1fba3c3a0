"""The session pages and the gate's verdicts together over real HTTP: the CloudTrail session
a task's credentials made shows the task's verdicts, a look-alike session name does not, and
a page login cannot post verdicts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from detector.approvals.gate import StoreApprovalGate
from detector.approvals.settings import ApprovalSettings
from detector.approvals.tokens import TokenTable, hash_token
from detector.http_server import Health, HttpServer
from detector.metrics import Metrics
from detector.state.approvals import SessionSummary, TimelineEntry
from detector.state.gate_verdicts import GateVerdictRow
from detector.state.sqlite import SqliteStateStore
from detector.state.tasks import TaskRow
from detector.web.app import PeopleApi
from detector.web.auth import Auth
from detector.web.gate_verdicts import GateVerdictsApi
from tests.approvals.common import T0, TOKENS, Clock

BOB = TOKENS["bob@example.com"]
TASK = "c3c3c3c3c3c3"
BLOCKED = "aws cloudformation delete-stack --stack-name prod-api"
ROLE = "arn:aws:sts::111122223333:assumed-role/agent-ce"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "state.db") as opened:
        opened.put_task(
            TaskRow(
                task_id=TASK,
                agent="kiro",
                owner="alice@example.com",
                scope="ce-fix",
                role_arn="arn:aws:iam::111122223333:role/agent-ce",
                source_identity=f"agent-kiro-{TASK}",
                created_at=T0,
                expires_at=T0 + timedelta(hours=1),
            )
        )
        opened.record_gate_verdict(
            GateVerdictRow(verdict_id="gv-page-0000001", session_id=TASK, task_id=TASK,
                           decision="block", reason="cloudformation:DeleteStack is denied",
                           command=BLOCKED, decided_at=T0, received_at=T0, agent="kiro",
                           detail={"calls": [{"kind": "aws",
                                              "actions": ["cloudformation:DeleteStack"]}]}),
            cap=10,
        )  # fmt: skip
        for session, name in (("ses-task", f"agent-kiro-{TASK}"), ("ses-fake", f"agent-x-{TASK}")):
            _cloudtrail_session(opened, session, f"{ROLE}/{name}")
        yield opened


def _cloudtrail_session(store: SqliteStateStore, session_id: str, principal: str) -> None:
    finding = {"type": "finding", "event_id": f"evt-{session_id}", "session_id": session_id,
               "session_kind": "agent", "kind": "out-of-scope-action",
               "action": "s3:ListBuckets", "reason": "not in scope", "resources": []}  # fmt: skip
    entry = TimelineEntry(session_id=session_id, entry_key=f"finding/{session_id}", at=T0,
                          kind="finding", severity="high", title="t", record=finding)  # fmt: skip
    summary = SessionSummary(session_id=session_id, agent="kiro", human="alice@example.com",
                             principal=principal, scope="ce-fix", on_human_credentials=False,
                             last_at=T0)  # fmt: skip
    store.record_timeline([entry], [summary], cap=10)


@pytest.fixture
async def url(store: SqliteStateStore) -> AsyncIterator[str]:
    gate = StoreApprovalGate(store, ApprovalSettings(), required=True, clock=Clock())
    auth = Auth(TokenTable({hash_token(t): p for p, t in TOKENS.items()}), login_seconds=60)
    people = PeopleApi(gate=gate, store=store, auth=auth)
    verdicts = GateVerdictsApi(auth=auth, store=store, cap=10)
    http = HttpServer(Metrics(runtime_collectors=False), Health(), port=0,
                      routes=[people.install, verdicts.install])  # fmt: skip
    await http.start()
    try:
        yield http.url
    finally:
        await http.stop()


async def _page(url: str, path: str) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {BOB}"}
    async with aiohttp.ClientSession() as client, client.get(url + path, headers=headers) as r:
        return r.status, await r.text()


async def test_the_task_and_its_cloudtrail_session_show_the_verdicts(url: str) -> None:
    for path in (f"/sessions/{TASK}", "/sessions/ses-task"):
        status, page = await _page(url, path)
        assert status == 200
        assert "blocked before it ran" in page and BLOCKED in page
        assert f"{TASK} (active" in page
    status, fake = await _page(url, "/sessions/ses-fake")
    assert status == 200 and BLOCKED not in fake and "blocked before it ran" not in fake


async def test_a_page_login_cannot_post_verdicts(url: str, store: SqliteStateStore) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # 127.0.0.1 is an IP address
    async with aiohttp.ClientSession(cookie_jar=jar) as client:
        login = {"token": BOB, "next": "/sessions"}
        async with client.post(f"{url}/login", data=login) as answer:
            assert answer.status == 200  # followed to the session list, logged in
        body = {"id": "gv-from-a-cookie", "time": "2026-03-02T10:00:00Z", "decision": "allow",
                "reason": "r", "session_id": "s"}  # fmt: skip
        async with client.post(f"{url}/v1/gate/verdicts", json=body) as answer:
            assert answer.status == 401
        async with client.get(f"{url}/v1/gate/verdicts") as answer:
            assert answer.status == 200  # reading is what a page login is for
    assert store.gate_verdict("gv-from-a-cookie") is None
