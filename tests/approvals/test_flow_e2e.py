"""The approval flow end to end: `trailguard run` over the demo incident holds the Kiro
session's revocation for a second person; the HTTP API and the CLI decide it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.approvals.common import TOKENS
from tests.approvals.service import call, demo_service, wait_for_pending

pytestmark = pytest.mark.integration

ALICE, BOB, CAROL = (
    TOKENS[p] for p in ("alice@example.com", "bob@example.com", "carol@example.com")
)


def _cli(config: Path, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", "approvals", *args]
    command += ["--config", str(config), "--token-file", "-"]
    return subprocess.run(command, input=token + "\n", capture_output=True, text=True, timeout=60)


def test_http_flow_with_and_without_a_valid_token(tmp_path: Path) -> None:
    with demo_service(tmp_path) as service:
        held = wait_for_pending(service, BOB)
        assert (held["action"], held["agent"], held["human"]) == (
            "revoke-session",
            "kiro",
            "alice@example.com",
        )
        assert "DeleteStack" in held["reason"]
        approve = f"{service.url}/v1/approvals/{held['id']}/approve"

        # No token, a wrong token, a wrong scheme: 401, and nothing decided.
        assert call("GET", f"{service.url}/v1/approvals")[0] == 401
        assert call("POST", approve)[0] == 401
        assert call("POST", approve, token=BOB + "x")[0] == 401
        status, _ = call("POST", approve, token="")
        assert status == 401
        # The person the agent acts for cannot approve their own session's revocation.
        status, body = call("POST", approve, token=ALICE)
        assert status == 403 and "second person" in body["error"]
        assert (
            call("GET", f"{service.url}/v1/approvals/{held['id']}", token=BOB)[1]["status"]
            == "pending"
        )

        status, decided = call("POST", approve, token=BOB, body={"note": "checked the stack"})
        assert status == 200
        assert (decided["status"], decided["decided_by"], decided["note"]) == (
            "approved",
            "bob@example.com",
            "checked the stack",
        )
        # Approving again is harmless; a contrary decision is refused.
        again_status, again = call("POST", approve, token=CAROL)
        assert again_status == 200 and again["decided_by"] == "bob@example.com"
        deny = f"{service.url}/v1/approvals/{held['id']}/deny"
        assert call("POST", deny, token=CAROL)[0] == 409
        assert call("POST", f"{service.url}/v1/approvals/ap-none/approve", token=BOB)[0] == 404

        # The CLI reads the same journal while the service runs.
        listed = _cli(service.config, CAROL, "list", "--status", "all", "--format", "jsonl")
        assert listed.returncode == 0, listed.stderr
        (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert (row["status"], row["decided_by"], row["decided_at"]) == (
            "approved",
            "bob@example.com",
            decided["decided_at"],
        )
        with urllib.request.urlopen(f"{service.url}/metrics", timeout=10) as answer:
            metrics = answer.read().decode()
        assert 'trailguard_approvals_total{outcome="approved"} 1.0' in metrics
        assert 'trailguard_approvals_total{outcome="requested"} 1.0' in metrics
        assert 'trailguard_approvals_total{outcome="refused"}' in metrics


def test_cli_flow_and_expiry_with_the_default_outcome(tmp_path: Path) -> None:
    with demo_service(tmp_path) as service:
        held = wait_for_pending(service, BOB)
        config = service.config

        bad = _cli(config, "not-a-token", "approve", held["id"])
        assert bad.returncode == 4 and "not valid" in bad.stderr
        own = _cli(config, ALICE, "deny", held["id"])
        assert own.returncode == 5 and "second person" in own.stderr
        listed = _cli(config, BOB, "list")
        assert listed.returncode == 0 and held["id"] in listed.stdout
        assert "pending" in listed.stdout

        denied = _cli(config, BOB, "deny", held["id"], "--note", "not this one")
        assert denied.returncode == 0, denied.stderr
        assert f"{held['id']}: denied by bob@example.com" in denied.stdout
        assert _cli(config, CAROL, "approve", held["id"]).returncode == 5
        assert _cli(config, BOB, "deny", held["id"]).returncode == 0
        assert _cli(config, BOB, "approve", "ap-none").returncode == 1

        status, row = call("GET", f"{service.url}/v1/approvals/{held['id']}", token=CAROL)
        assert status == 200
        assert (row["status"], row["decided_by"], row["note"]) == (
            "denied",
            "bob@example.com",
            "not this one",
        )


def test_a_request_nobody_decides_expires_denied(tmp_path: Path) -> None:
    import time

    with demo_service(tmp_path, expire_seconds=1) as service:
        held = wait_for_pending(service, BOB)
        deadline = time.monotonic() + 30
        row = held
        while row["status"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.2)
            row = call("GET", f"{service.url}/v1/approvals/{held['id']}", token=BOB)[1]
        assert (row["status"], row["outcome"], row["decided_by"]) == ("expired", "deny", "expiry")
        late = call("POST", f"{service.url}/v1/approvals/{held['id']}/approve", token=BOB)
        assert late[0] == 409
