"""Calls blocked before they ran, on the session page in headless Chromium: the real
`trailguard-gate` in a subprocess sends its verdicts to a real `trailguard run`, and the
agent's session page lists what was blocked, with the command line and the reason."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.approvals.common import TOKENS
from tests.approvals.service import call, demo_service
from tests.web.chromium import CHROMIUM, chromium, first_page

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make system-deps)"),
]

BOB = TOKENS["bob@example.com"]
SESSION = "kiro-ce-4821"
SCOPES = """
scopes:
  - name: ce-4821-fix
    match: {agent: kiro}
    allow:
      actions: ["cloudformation:Describe*", "s3:ListBucket"]
      regions: [us-east-1]
"""
BLOCKED = "aws s3 rb s3://ce-artifacts --force --region us-east-1"
ALLOWED = "aws cloudformation describe-stacks --stack-name ce-api --region us-east-1"


def _gate(tmp_path: Path, url: str, line: str) -> subprocess.CompletedProcess[str]:
    scopes = tmp_path / "gate-scopes.yaml"
    scopes.write_text(SCOPES)
    token = tmp_path / "gate.token"
    token.write_text(TOKENS["carol@example.com"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAILGUARD_", "AWS_"))}
    env.update(
        TRAILGUARD_URL=url,
        TRAILGUARD_TOKEN_FILE=str(token),
        TRAILGUARD_SESSION=SESSION,
        TRAILGUARD_AGENT="kiro",
        TRAILGUARD_OWNER="alice@example.com",
        TRAILGUARD_SCOPES=str(scopes),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    event = json.dumps({"hook_event_name": "preToolUse", "tool_name": "execute_bash",
                        "tool_input": {"command": line}})  # fmt: skip
    command = [sys.executable, "-m", "detector.commands.gate", "--hook", "kiro"]
    return subprocess.run(command, input=event, capture_output=True, text=True, timeout=60, env=env)


def test_blocked_before_it_ran_on_the_session_page(tmp_path: Path) -> None:
    with demo_service(tmp_path) as service:
        blocked = _gate(tmp_path, service.url, BLOCKED)
        assert blocked.returncode == 2, blocked.stderr
        assert "not sent" not in blocked.stderr
        assert _gate(tmp_path, service.url, ALLOWED).returncode == 0
        assert _gate(tmp_path, service.url, "git status").returncode == 0
        status, body = call("GET", f"{service.url}/v1/gate/verdicts?session={SESSION}", token=BOB)
        assert status == 200
        assert [v["decision"] for v in body["verdicts"]] == ["allow", "allow", "block"]
        with chromium(tmp_path / "profile") as port:
            asyncio.run(_drive(port, service.url, tmp_path))


def _login_script(token: str) -> str:
    return (
        f"document.querySelector('input[name=token]').value = {json.dumps(token)};"
        "document.querySelector('form[action=\"/login\"]').submit();"
    )


async def _drive(port: int, base: str, tmp_path: Path) -> None:
    async with first_page(port) as page:
        await page.goto(f"{base}/login?next=/sessions")
        await page.submit(_login_script(BOB))
        listing = await page.text()
        assert SESSION not in listing  # the list shows agents; the link carries the id
        links = await page.evaluate(
            "[...document.querySelectorAll('a')].map(a => a.getAttribute('href'))"
        )
        assert f"/sessions/{SESSION}" in links
        await page.goto(f"{base}/sessions/{SESSION}")
        text = await page.text()
        assert "Agent kiro acting for alice@example.com" in text
        # The gate knows who the agent acts for, not whose credentials it holds.
        assert "Delegated credentials" not in text and "Inherited credentials" not in text
        assert (
            "Pre-flight gate: 1 command line(s) blocked before they ran, 1 with AWS calls" in text
        )
        assert "blocked before it ran" in text and BLOCKED in text
        assert "s3:DeleteBucket" in text and "not among the actions" in text
        assert "checked before it ran" in text and ALLOWED in text
        assert "git status" not in text
        rows = await page.evaluate("document.querySelectorAll('tr.gate.blocked').length")
        assert rows == 1
        await page.screenshot(tmp_path / "session-gate.png")
