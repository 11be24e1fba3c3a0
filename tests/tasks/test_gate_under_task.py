"""A gate hook inside `trailguard task exec`, end to end with no options of its own: task exec
mints against a moto server and sets what the gate needs; the agent (here a script) runs
the real `trailguard-gate` as its hook; the gate reads the task from the registry, checks
the task's scope, and sends its verdicts to a real `trailguard run` on the same state store;
the task's session page shows what was blocked before it ran. Once the task has ended, the
same hook blocks its AWS calls."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.bench.tansu import free_port
from tests.approvals.common import TOKENS, write_token_file
from tests.approvals.service import call
from tests.tasks.test_task_cli import ROLE, SCOPES, create_agent_role

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BOB = TOKENS["bob@example.com"]
IN_SCOPE = "aws s3 ls"
OUT_OF_SCOPE = "aws ec2 describe-instances"
AGENT = """
import json, os, subprocess, sys

def hook(command):
    event = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                        "tool_input": {"command": command}})
    done = subprocess.run([sys.executable, "-m", "detector.commands.gate", "--hook", "claude-code"],
                          input=event, capture_output=True, text=True)
    return {"code": done.returncode, "stderr": done.stderr}

gate = {k: v for k, v in os.environ.items()
        if k.startswith("TRAILGUARD_") or k == "AWS_ACCESS_KEY_ID"}
print(json.dumps({"env": gate, "in": hook(sys.argv[1]), "out": hook(sys.argv[2])}))
"""


@pytest.fixture
def setup(tmp_path: Path, moto_endpoint: str) -> dict[str, Any]:
    create_agent_role(moto_endpoint)
    (tmp_path / "scopes.yaml").write_text(SCOPES)
    (tmp_path / "inbox").mkdir()
    write_token_file(tmp_path / "tokens.yaml")
    port = free_port()
    config = tmp_path / "trailguard.yaml"
    config.write_text(
        f"""
scopes: scopes.yaml
sources:
  - {{type: files, name: inbox, path: {tmp_path / "inbox"}, poll_interval_seconds: 0.1}}
sinks:
  - {{type: jsonl, path: {tmp_path / "out.jsonl"}}}
state: {{path: state.db, flush_interval_seconds: 0}}
tasks: {{region: us-east-1, endpoint_url: '{moto_endpoint}', role_arn: '{ROLE}'}}
api: {{tokens_file: tokens.yaml}}
http: {{port: {port}, public_url: 'http://127.0.0.1:{port}'}}
log: {{format: json}}
"""
    )
    token = tmp_path / "gate.token"
    token.write_text(TOKENS["carol@example.com"] + "\n")
    return {"config": config, "url": f"http://127.0.0.1:{port}", "token": token, "tmp": tmp_path}


@contextlib.contextmanager
def _service(setup: dict[str, Any]) -> Iterator[None]:
    log = setup["tmp"] / "run.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "detector", "run", "--config", str(setup["config"])]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("ab"), env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{setup['url']}/healthz", timeout=2).close()
                break
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]


def _caller_env(setup: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRAILGUARD_"))}
    env.update(
        AWS_ACCESS_KEY_ID="AKIACALLERCALLER0000",
        AWS_SECRET_ACCESS_KEY="caller-secret",
        TRAILGUARD_TOKEN_FILE=str(setup["token"]),
        TRAILGUARD_SCOPE="a-stale-scope-of-the-caller",
        XDG_STATE_HOME=str(setup["tmp"] / "xdg-state"),
        XDG_CACHE_HOME=str(setup["tmp"] / "xdg-cache"),
        PYTHONPATH=str(ROOT),
    )
    return env


def test_a_gate_hook_inside_task_exec_needs_no_options(setup: dict[str, Any]) -> None:
    with _service(setup):
        command = [sys.executable, "-m", "detector", "task", "exec", "--config",
                   str(setup["config"]), "--scope", "ce-4821-fix", "--agent", "kiro",
                   "--owner", "alice@example.com", "--",
                   sys.executable, "-c", AGENT, IN_SCOPE, OUT_OF_SCOPE]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=180,
                              env=_caller_env(setup))  # fmt: skip
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
        env = seen["env"]
        task_id = env["TRAILGUARD_TASK"]
        assert env["TRAILGUARD_STATE"] == str((setup["tmp"] / "state.db").resolve())
        assert env["TRAILGUARD_SCOPES"] == str((setup["tmp"] / "scopes.yaml").resolve())
        assert env["TRAILGUARD_SCOPE"] == "ce-4821-fix"  # the caller's stale one replaced
        assert env["TRAILGUARD_URL"] == setup["url"]
        assert (env["TRAILGUARD_AGENT"], env["TRAILGUARD_OWNER"]) == ("kiro", "alice@example.com")

        assert seen["in"]["code"] == 0, seen["in"]["stderr"]
        assert seen["out"]["code"] == 2
        assert "ec2:DescribeInstances" in seen["out"]["stderr"]
        assert "ce-4821-fix" in seen["out"]["stderr"]
        assert "not sent" not in seen["in"]["stderr"] + seen["out"]["stderr"]

        status, body = call("GET", f"{setup['url']}/v1/gate/verdicts?task={task_id}", token=BOB)
        assert status == 200
        verdicts = body["verdicts"]
        assert [(v["decision"], v["command"]) for v in verdicts] == [
            ("block", OUT_OF_SCOPE), ("allow", IN_SCOPE)]  # fmt: skip
        for v in verdicts:
            assert v["session_id"] == task_id and v["scope"] == "ce-4821-fix"
            assert v["access_key_id"] == env["AWS_ACCESS_KEY_ID"] and v["agent"] == "kiro"
            assert v["sent_by"] == "carol@example.com"

        request = urllib.request.Request(
            f"{setup['url']}/sessions/{task_id}", headers={"Authorization": f"Bearer {BOB}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            page = answer.read().decode()
        assert "Agent kiro acting for alice@example.com" in page
        assert "blocked before it ran" in page and OUT_OF_SCOPE in page
        assert f"{task_id} (ended" in page  # task exec ended the task when the agent exited

        # The same hook once the task has ended: its AWS calls are blocked, others are not.
        after = {**_caller_env(setup), **env}
        event = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                            "tool_input": {"command": IN_SCOPE}})  # fmt: skip
        gate = [sys.executable, "-m", "detector.commands.gate", "--hook", "claude-code"]
        late = subprocess.run(gate, input=event, capture_output=True, text=True, env=after)
        assert late.returncode == 2
        assert f"task {task_id} (scope ce-4821-fix) ended at" in late.stderr
        journal = setup["tmp"] / "xdg-state" / "trailguard" / "gate.jsonl"
        records = [json.loads(line) for line in journal.read_text().splitlines()]
        assert [r["decision"] for r in records] == ["allow", "block", "block"]
        assert all(r["sent"] and r["task_id"] == task_id for r in records)
