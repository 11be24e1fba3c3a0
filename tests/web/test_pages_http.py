"""The session pages and the approval API over real HTTP on loopback (in-process server):
authentication, the cookie login and its CSRF check, escaping, redirects, headers."""

from __future__ import annotations

import re
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
from detector.state.sqlite import SqliteStateStore
from detector.web.app import PeopleApi
from detector.web.auth import COOKIE, Auth
from tests.approvals.common import T0, TOKENS, Clock, response

BOB = TOKENS["bob@example.com"]
EVIL = '<script>alert("x")</script>'


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
async def server(store: SqliteStateStore) -> AsyncIterator[tuple[HttpServer, StoreApprovalGate]]:
    gate = StoreApprovalGate(store, ApprovalSettings(), required=True, clock=Clock())
    tokens = TokenTable({hash_token(t): p for p, t in TOKENS.items()})
    api = PeopleApi(gate=gate, store=store, auth=Auth(tokens, login_seconds=60))
    http = HttpServer(Metrics(runtime_collectors=False), Health(), port=0, routes=[api.install])
    await http.start()
    try:
        yield http, gate
    finally:
        await http.stop()


def _record_session(store: SqliteStateStore, agent: str = "kiro") -> None:
    finding = {
        "type": "finding",
        "event_id": "evt-1",
        "session_id": "ses-kiro",
        "session_kind": "agent",
        "kind": "out-of-scope-action",
        "action": "cloudformation:DeleteStack",
        "reason": f"called DeleteStack {EVIL}",
        "resources": [f"arn:aws:cloudformation:us-east-1:1:stack/{EVIL}"],
    }
    store.record_timeline(
        [
            TimelineEntry(
                session_id="ses-kiro",
                entry_key="finding/evt-1/out-of-scope-action",
                at=T0,
                kind="finding",
                severity="critical",
                title="t",
                record=finding,
            )
        ],
        [
            SessionSummary(
                session_id="ses-kiro",
                agent=agent,
                human="alice@example.com",
                principal=None,
                scope=EVIL,
                on_human_credentials=True,
                last_at=T0 + timedelta(seconds=1),
            )
        ],
        cap=10,
    )


async def test_pages_ask_for_a_login_and_escape_everything(
    server: tuple[HttpServer, StoreApprovalGate], store: SqliteStateStore
) -> None:
    http, _ = server
    _record_session(store, agent=EVIL)
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{http.url}/sessions/ses-kiro") as answer:
            assert answer.status == 401
            assert 'name="token"' in await answer.text()
        headers = {"Authorization": f"Bearer {BOB}"}
        async with client.get(f"{http.url}/sessions/ses-kiro", headers=headers) as answer:
            assert answer.status == 200
            page = await answer.text()
            assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
            assert answer.headers["Cache-Control"] == "no-store"
        async with client.get(f"{http.url}/sessions", headers=headers) as answer:
            listing = await answer.text()
        async with client.get(f"{http.url}/sessions/ses-none", headers=headers) as answer:
            assert answer.status == 404
    for html in (page, listing):
        assert "<script>" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "cloudformation:DeleteStack" in page and "Signed in as bob@example.com" in page


async def test_cookie_login_needs_the_forms_csrf_value(
    server: tuple[HttpServer, StoreApprovalGate], store: SqliteStateStore
) -> None:
    http, gate = server
    _record_session(store)
    held = await gate.open(response())
    jar = aiohttp.CookieJar(unsafe=True)  # 127.0.0.1 is an IP address
    async with aiohttp.ClientSession(cookie_jar=jar) as client:
        login = {"token": "wrong", "next": "/sessions/ses-kiro"}
        async with client.post(f"{http.url}/login", data=login) as answer:
            assert answer.status == 401
        login["token"] = BOB
        async with client.post(f"{http.url}/login", data=login, allow_redirects=False) as answer:
            assert answer.status == 303 and answer.headers["Location"] == "/sessions/ses-kiro"
            cookie = answer.headers["Set-Cookie"]
            assert COOKIE in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert BOB not in cookie
        async with client.get(f"{http.url}/sessions/ses-kiro") as answer:
            page = await answer.text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None

        approve = f"{http.url}/v1/approvals/{held.approval_id}/approve"
        forged = {"next": "/sessions/ses-kiro"}
        async with client.post(approve, data=forged, allow_redirects=False) as answer:
            assert answer.status == 403
        still = store.approval(held.approval_id)
        assert still is not None and still.pending

        # A form may only send people back to this service's pages: here, the session.
        real = {"csrf": csrf.group(1), "next": "https://elsewhere.example/", "note": "ok"}
        async with client.post(approve, data=real, allow_redirects=False) as answer:
            assert answer.status == 303 and answer.headers["Location"] == "/sessions/ses-kiro"
    row = store.approval(held.approval_id)
    assert row is not None and (row.status, row.decided_by, row.note) == (
        "approved",
        "bob@example.com",
        "ok",
    )


async def test_the_api_refuses_other_schemes_and_bad_bodies(
    server: tuple[HttpServer, StoreApprovalGate],
) -> None:
    http, gate = server
    held = await gate.open(response())
    url = f"{http.url}/v1/approvals/{held.approval_id}/deny"
    async with aiohttp.ClientSession() as client:
        async with client.post(url, headers={"Authorization": f"Basic {BOB}"}) as answer:
            assert answer.status == 401
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        bearer = {"Authorization": f"Bearer {BOB}", "Content-Type": "application/json"}
        async with client.post(url, headers=bearer, data=b"{not json") as answer:
            assert answer.status == 400
        async with client.get(f"{http.url}/v1/approvals?status=pending", headers=bearer) as answer:
            listed = await answer.json()
    assert [a["id"] for a in listed["approvals"]] == [held.approval_id]


async def test_listing_refuses_an_unknown_status(
    server: tuple[HttpServer, StoreApprovalGate],
) -> None:
    http, _ = server
    headers = {"Authorization": f"Bearer {BOB}"}
    url = f"{http.url}/v1/approvals?status=maybe"
    async with aiohttp.ClientSession() as client, client.get(url, headers=headers) as answer:
        assert answer.status == 400
        assert "pending" in (await answer.json())["error"]


async def test_revoke_from_the_page_only_for_revokers_and_never_for_ones_own_session(
    store: SqliteStateStore,
) -> None:
    from detector.core.session_view import SessionView
    from detector.core.taxonomy import SessionKind

    _record_session(store)
    view = SessionView(
        session_id="ses-kiro",
        kind=SessionKind.AGENT,
        agent="kiro",
        principal_arn="arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com",
        role_arn="arn:aws:iam::111122223333:role/Admin",
        session_name="alice@example.com",
        human="alice@example.com",
        on_human_credentials=True,
        access_key_id="ASIARBCDEFGHALICE0K2",
    )
    gate = StoreApprovalGate(store, ApprovalSettings(), required=False, clock=Clock())
    tokens = TokenTable({hash_token(t): p for p, t in TOKENS.items()})
    api = PeopleApi(
        gate=gate,
        store=store,
        auth=Auth(tokens, login_seconds=60),
        live=lambda sid: view if sid == "ses-kiro" else None,
        revokers=["bob@example.com", "alice@example.com"],
        dry_run=False,
        clock=Clock(),
    )
    http = HttpServer(Metrics(runtime_collectors=False), Health(), port=0, routes=[api.install])
    await http.start()
    url = f"{http.url}/v1/sessions/ses-kiro/revoke"
    try:
        async with aiohttp.ClientSession() as client:

            async def as_(person: str, target: str = url) -> tuple[int, dict[str, object]]:
                headers = {"Authorization": f"Bearer {TOKENS[person]}"}
                async with client.post(target, headers=headers, json={"note": "n"}) as answer:
                    return answer.status, await answer.json()

            async def page(person: str) -> str:
                headers = {"Authorization": f"Bearer {TOKENS[person]}"}
                async with client.get(f"{http.url}/sessions/ses-kiro", headers=headers) as a:
                    return await a.text()

            assert "Revoke this session now" in await page("bob@example.com")
            assert "Revoke this session now" not in await page("carol@example.com")
            assert "Revoke this session now" not in await page("alice@example.com")
            assert (await as_("carol@example.com"))[0] == 403
            assert (await as_("alice@example.com"))[0] == 403
            assert store.approvals() == []
            missing = f"{http.url}/v1/sessions/ses-other/revoke"
            assert (await as_("bob@example.com", missing))[0] == 404
            status, row = await as_("bob@example.com")
            assert status == 200
            assert (row["status"], row["decided_by"], row["action"]) == (
                "approved",
                "bob@example.com",
                "revoke-session",
            )
            assert "Revoke this session now" not in await page("bob@example.com")
    finally:
        await http.stop()
    (stored,) = store.approvals()
    held = stored.response
    assert held["dry_run"] is False
    assert held["target"]["access_key_id"] == "ASIARBCDEFGHALICE0K2"
    assert "revoked from the session page by bob@example.com" in str(held["reason"])
