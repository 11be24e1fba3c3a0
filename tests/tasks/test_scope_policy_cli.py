"""`trailguard scope policy NAME [--trust]`, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from detector.core.iam_eval import decide

SCOPES = """\
scopes:
  - name: ce-4821-fix
    match: {agent: kiro}
    allow:
      actions: ["cloudformation:*", "s3:GetObject"]
      regions: [eu-west-1]
  - name: huge
    match: {agent: kiro}
    allow:
      actions: [%s]
"""


def _trailguard(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _scopes(tmp_path: Path) -> Path:
    many = ", ".join(f'"ec2:DescribeThing{i:03d}"' for i in range(120))
    path = tmp_path / "scopes.yaml"
    path.write_text(SCOPES % many)
    return path


def test_prints_the_session_policy_of_a_scope(tmp_path: Path) -> None:
    done = _trailguard("scope", "policy", "ce-4821-fix", "--scopes", str(_scopes(tmp_path)))
    assert done.returncode == 0, done.stderr
    policy = json.loads(done.stdout)
    eu = {"aws:RequestedRegion": "eu-west-1"}
    assert decide(policy, action="cloudformation:DescribeStacks", context=eu) == "allow"
    assert decide(policy, action="cloudformation:DeleteStack", context=eu) == "explicit-deny"
    assert decide(policy, action="s3:DeleteObject", context=eu) == "implicit-deny"


def test_a_scope_too_large_for_a_session_policy_exits_2_with_advice(tmp_path: Path) -> None:
    done = _trailguard("scope", "policy", "huge", "--scopes", str(_scopes(tmp_path)))
    assert done.returncode == 2
    assert "2048-character limit" in done.stderr
    assert "Split the scope" in done.stderr
    assert done.stdout == ""


def test_an_unknown_scope_exits_2_naming_the_known_ones(tmp_path: Path) -> None:
    done = _trailguard("scope", "policy", "nope", "--scopes", str(_scopes(tmp_path)))
    assert done.returncode == 2
    assert "no scope 'nope' (scopes: ce-4821-fix, huge)" in done.stderr


def test_trust_prints_a_trust_policy_for_agent_roles() -> None:
    done = _trailguard("scope", "policy", "any", "--trust", "--principal", "arn:aws:iam::1:root")
    assert done.returncode == 0, done.stderr
    statement = json.loads(done.stdout)["Statement"][0]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::1:root"}
    assert statement["Condition"]["StringLike"]["sts:SourceIdentity"] == "agent-*"
    assert "sts:TagSession" in statement["Action"]
