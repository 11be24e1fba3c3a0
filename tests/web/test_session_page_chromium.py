"""The session page in headless Chromium, served by `trailguard run` over the demo incident:
log in with a token, read the Kiro session's page (its DeleteStack finding, the revocation
held for a second person), click Approve and see the approval recorded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.approvals.common import TOKENS
from tests.approvals.service import demo_service, wait_for_pending
from tests.web.chromium import CHROMIUM, chromium, first_page

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make system-deps)"),
]

BOB = TOKENS["bob@example.com"]
ALICE = TOKENS["alice@example.com"]


def _login_script(token: str) -> str:
    return (
        f"document.querySelector('input[name=token]').value = {json.dumps(token)};"
        "document.querySelector('form[action=\"/login\"]').submit();"
    )


def test_the_kiro_session_page_in_chromium(tmp_path: Path) -> None:
    with demo_service(tmp_path) as service:
        held = wait_for_pending(service, BOB)
        page_url = f"{service.url}/sessions/{held['session_id']}"
        with chromium(tmp_path / "profile") as port:
            asyncio.run(_drive(port, page_url, service.url, tmp_path))


async def _drive(port: int, page_url: str, base: str, tmp_path: Path) -> None:
    async with first_page(port) as page:
        # Not logged in: the login form, not the session.
        await page.goto(page_url)
        text = await page.text()
        assert "Log in to TrailGuard" in text and "DeleteStack" not in text

        # The session's own person sees the hold but gets no approve button.
        await page.submit(_login_script(ALICE))
        text = await page.text()
        assert "a second person must decide" in text
        assert await page.evaluate("document.querySelectorAll('button[value=approve]').length") == 0
        await page.submit("document.querySelector('form[action=\"/logout\"]').submit()")

        await page.goto(f"{base}/login?next=/sessions")
        await page.submit(_login_script(BOB))
        listing = await page.text()
        assert "kiro" in listing and "1 awaiting approval" in listing
        await page.screenshot(tmp_path / "sessions.png")
        await page.goto(page_url)
        text = await page.text()
        assert "Agent kiro acting for alice@example.com" in text
        assert "Inherited credentials" in text
        assert "cloudformation:DeleteStack" in text
        assert "Revocation of this session: held for a second person" in text
        assert "awaiting a second person" in text
        assert "events with findings" in text and "out of scope" in text
        assert "ce-4821-fix" in text
        await page.screenshot(tmp_path / "session-held.png")

        await page.submit(
            "document.querySelector('input[name=note]').value = 'stack deletion confirmed';"
            "document.querySelector('button[value=approve]').click();"
        )
        assert await page.evaluate("location.pathname") == page_url[len(base) :]
        text = await page.text()
        assert "approval approved" in text
        assert "revoke-session approved by bob@example.com: stack deletion confirmed" in text
        assert "awaiting a second person" not in text
        assert "Revocation of this session: approval approved by bob@example.com" in text
        await page.screenshot(tmp_path / "session-approved.png")
