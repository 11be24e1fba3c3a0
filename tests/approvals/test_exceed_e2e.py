"""An agent's request to exceed its scope, end to end: the real `trailguard gate` in a
subprocess asks a real `trailguard run` for a second person's approval."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.approvals.common import TOKENS
from tests.approvals.service import call, demo_service

pytestmark = pytest.mark.integration

ALICE, BOB = TOKENS["alice@example.com"], TOKENS["bob@example.com"]
DELETE = "aws cloudformation delete-stack --stack-name prod-api --region us-east-1"
SCOPES = """
scopes:
  - name: fix-api
    match:
      agent: kiro
    allow:
      actions: ["cloudformation:Describe*"]
    on_violation: approve
"""


def _gate(tmp_path: Path, url: str, line: str = DELETE) -> subprocess.CompletedProcess[str]:
    scopes = tmp_path / "gate-scopes.yaml"
    scopes.write_text(SCOPES)
    token = tmp_path / "gate.token"
    token.write_text(TOKENS["carol@example.com"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAILGUARD_", "AWS_"))}
    env.update(TRAILGUARD_URL=url, TRAILGUARD_TOKEN_FILE=str(token), TRAILGUARD_SESSION="ses-gate")
    command = [sys.executable, "-m", "detector", "gate", "--scopes", str(scopes),
               "--scope", "fix-api", "--agent", "kiro", "--owner", "alice@example.com",
               "--account", "111122223333", "--journal", str(tmp_path / "gate.jsonl"),
               "--", line]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


def _approval_id(stderr: str) -> str:
    (word,) = [w.strip("`.,:;") for w in stderr.split() if w.startswith("ap-")][:1]
    return word


def test_held_then_approved_by_another_person(tmp_path: Path) -> None:
    with demo_service(tmp_path) as service:
        first = _gate(tmp_path, service.url)
        assert first.returncode == 2, first.stderr
        approval = _approval_id(first.stderr)
        assert f"trailguard approvals approve {approval}" in first.stderr
        # Asking again is the same request, not a second one.
        again = _gate(tmp_path, service.url)
        assert again.returncode == 2 and _approval_id(again.stderr) == approval
        status, held = call("GET", f"{service.url}/v1/approvals/{approval}", token=BOB)
        assert status == 200 and held["status"] == "pending"
        assert (held["action"], held["agent"], held["human"], held["scope"]) == (
            "exceed-scope", "kiro", "alice@example.com", "fix-api")  # fmt: skip
        assert held["request"]["actions"] == ["cloudformation:DeleteStack"]
        assert held["request"]["command"] == DELETE
        assert held["request"]["requested_by"] == "carol@example.com"

        # The page of the agent's session shows it with the controls.
        request = urllib.request.Request(
            f"{service.url}/sessions/ses-gate", headers={"Authorization": f"Bearer {BOB}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            page = answer.read().decode()
        assert "Let the agent exceed its scope" in page
        assert f"/v1/approvals/{approval}/approve" in page

        approve = f"{service.url}/v1/approvals/{approval}/approve"
        status, body = call("POST", approve, token=ALICE)
        assert status == 403 and "second person" in body["error"]
        assert _gate(tmp_path, service.url).returncode == 2

        assert call("POST", approve, token=BOB)[0] == 200
        allowed = _gate(tmp_path, service.url)
        assert allowed.returncode == 0, allowed.stderr
        verdict = json.loads(allowed.stdout)
        assert verdict["reason"] == f"allowed by approval {approval} decided by bob@example.com"
        journal = [json.loads(x) for x in (tmp_path / "gate.jsonl").read_text().splitlines()]
        assert [j["decision"] for j in journal] == ["block", "block", "block", "allow"]
        assert journal[-1]["reason"] == verdict["reason"]

        # Another command is another request: still blocked.
        other = _gate(tmp_path, service.url, DELETE.replace("prod-api", "prod-db"))
        assert other.returncode == 2 and _approval_id(other.stderr) != approval
        # Never handed to responders: the service logs no failed release.
        assert "approval sweep failed" not in service.log.read_text()


def test_denied_stays_blocked(tmp_path: Path) -> None:
    with demo_service(tmp_path) as service:
        first = _gate(tmp_path, service.url)
        approval = _approval_id(first.stderr)
        assert call("POST", f"{service.url}/v1/approvals/{approval}/deny", token=BOB)[0] == 200
        denied = _gate(tmp_path, service.url)
        assert denied.returncode == 2
        assert f"approval {approval} was denied by bob@example.com" in denied.stderr


def test_no_service_reachable_blocks(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    result = _gate(tmp_path, f"http://127.0.0.1:{port}")
    assert result.returncode == 2
    assert "did not answer" in result.stderr and "blocked" in result.stderr


def test_a_bad_token_blocks(tmp_path: Path) -> None:
    with demo_service(tmp_path) as service:
        (tmp_path / "gate.token").write_text("not-a-token\n")
        scopes = tmp_path / "gate-scopes.yaml"
        scopes.write_text(SCOPES)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILGUARD_")}
        token = str(tmp_path / "gate.token")
        command = [sys.executable, "-m", "detector", "gate", "--scopes", str(scopes),
                   "--owner", "alice@example.com", "--service", service.url,
                   "--token-file", token, "--no-journal", "--", DELETE]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 2 and "HTTP 401" in result.stderr
