"""`trailguard task start | list | end | exec` against a moto server on loopback, run as a user
runs them (subprocesses with their own environment)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from detector.core.iam_eval import decide
from detector.state.sqlite import SqliteStateStore

ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/agent-ce"
SCOPES = """\
scopes:
  - name: ce-4821-fix
    match: {agent: kiro}
    allow:
      actions: ["s3:*", "sts:GetCallerIdentity"]
      regions: [us-east-1]
"""
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
        }
    ],
}
# The caller's own AWS setup: a profile in its own config file, and keys in the environment.
CALLER = {
    "AWS_ACCESS_KEY_ID": "AKIACALLERCALLER0000",
    "AWS_SECRET_ACCESS_KEY": "caller-secret",
    "AWS_PROFILE": "caller-admin",
    "AWS_DEFAULT_REGION": "us-east-1",
    "CALLER_ONLY": "kept",
}
CALLER_CONFIG = """\
[profile caller-admin]
aws_access_key_id = AKIACALLERCALLER0000
aws_secret_access_key = caller-secret
"""


def create_agent_role(moto_endpoint: str) -> None:
    """The task role in the emulator, so it answers AssumeRole with its real role id."""
    iam = boto3.client(
        "iam",
        region_name="us-east-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="AKIASETUPSETUP000000",
        aws_secret_access_key="setup",
    )
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName="agent-ce", AssumeRolePolicyDocument=json.dumps(TRUST))


@pytest.fixture
def setup(tmp_path: Path, moto_endpoint: str) -> dict[str, Any]:
    create_agent_role(moto_endpoint)
    (tmp_path / "scopes.yaml").write_text(SCOPES)
    config = tmp_path / "trailguard.yaml"
    config.write_text(
        f"scopes: scopes.yaml\nstate: {{path: state.db}}\n"
        f"tasks: {{region: us-east-1, endpoint_url: '{moto_endpoint}', role_arn: '{ROLE}'}}\n"
    )
    caller_config = tmp_path / "caller-aws-config"
    caller_config.write_text(CALLER_CONFIG)
    return {
        "config": config,
        "db": tmp_path / "state.db",
        "endpoint": moto_endpoint,
        "caller_config": caller_config,
    }


def _trailguard(config: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update(CALLER)
    base["AWS_CONFIG_FILE"] = str(config.parent / "caller-aws-config")
    base.update(env or {})
    base["PYTHONPATH"] = str(ROOT)
    # --config right after the subcommand: everything after `exec ... --` is the command.
    command = [
        sys.executable,
        "-m",
        "detector",
        "task",
        args[0],
        "--config",
        str(config),
        *args[1:],
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=base
    )


def _client(service: str, endpoint: str, creds: dict[str, str]) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _start(setup: dict[str, Any], *extra: str) -> Any:
    return _trailguard(
        setup["config"],
        "start",
        "--scope",
        "ce-4821-fix",
        "--agent",
        "kiro",
        "--owner",
        "alice@example.com",
        "--format",
        "credential-process",
        *extra,
    )


def test_start_returns_working_credentials_and_registers_the_task(setup: dict[str, Any]) -> None:
    done = _start(setup)
    assert done.returncode == 0, done.stderr
    creds = json.loads(done.stdout)
    assert creds["Version"] == 1 and creds["AccessKeyId"].startswith("ASIA")
    identity = _client("sts", setup["endpoint"], creds).get_caller_identity()
    with SqliteStateStore(setup["db"]) as store:
        [task] = store.tasks()
    assert identity["Arn"].endswith(f"assumed-role/agent-ce/agent-kiro-{task.task_id}")
    assert task.access_key_id == creds["AccessKeyId"]
    assert task.principal_id == identity["UserId"]
    assert (task.agent, task.owner, task.scope, task.status) == (
        "kiro",
        "alice@example.com",
        "ce-4821-fix",
        "active",
    )


def test_moto_does_not_enforce_the_session_policy(setup: dict[str, Any]) -> None:
    """The policy denies s3:DeleteBucket (tier 0, covered by s3:* but not named); moto lets it
    through, so the denial is shown by evaluating the policy, not by the emulator."""
    policy = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "detector",
                "scope",
                "policy",
                "ce-4821-fix",
                "--config",
                str(setup["config"]),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ).stdout
    )
    context = {"aws:RequestedRegion": "us-east-1"}
    assert decide(policy, action="s3:DeleteBucket", context=context) == "explicit-deny"
    assert decide(policy, action="ec2:RunInstances", context=context) == "implicit-deny"
    creds = json.loads(_start(setup).stdout)
    s3 = _client("s3", setup["endpoint"], creds)
    s3.create_bucket(Bucket="tasks-policy-probe")
    s3.delete_bucket(Bucket="tasks-policy-probe")  # moto: allowed despite the session policy
    _client("ec2", setup["endpoint"], creds).describe_instances()


def test_list_and_end(setup: dict[str, Any]) -> None:
    assert _start(setup).returncode == 0
    listed = _trailguard(setup["config"], "list", "--format", "jsonl")
    [task] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert task["status"] == "active"
    ended = _trailguard(setup["config"], "end", task["task_id"])
    assert ended.returncode == 0, ended.stderr
    again = _trailguard(setup["config"], "list", "--status", "ended", "--format", "jsonl")
    assert json.loads(again.stdout)["task_id"] == task["task_id"]
    assert _trailguard(setup["config"], "end", "no-such-task").returncode == 1


CHILD = """
import json, os, sys
import boto3
arn = boto3.client("sts").get_caller_identity()["Arn"]
aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k.startswith("TRAILGUARD")}
print(json.dumps({"arn": arn, "aws": aws, "caller_only": os.environ.get("CALLER_ONLY")}))
sys.exit(7)
"""


def test_exec_passes_the_task_credentials_and_nothing_of_the_caller(
    setup: dict[str, Any],
) -> None:
    done = _trailguard(
        setup["config"],
        "exec",
        "--scope",
        "ce-4821-fix",
        "--agent",
        "kiro",
        "--",
        sys.executable,
        "-c",
        CHILD,
    )
    assert done.returncode == 7, done.stderr
    seen = json.loads(done.stdout)
    with SqliteStateStore(setup["db"]) as store:
        [task] = store.tasks()
    assert seen["arn"].endswith(f"agent-kiro-{task.task_id}")
    assert seen["aws"]["AWS_ACCESS_KEY_ID"] == task.access_key_id
    assert seen["aws"]["TRAILGUARD_TASK"] == task.task_id
    assert set(seen["aws"]) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "TRAILGUARD_TASK",
        # What a gate hook inside needs (tests/tasks/test_gate_under_task.py).
        "TRAILGUARD_SCOPES",
        "TRAILGUARD_SCOPE",
        "TRAILGUARD_STATE",
        "TRAILGUARD_AGENT",
    }
    assert seen["aws"]["AWS_SECRET_ACCESS_KEY"] != CALLER["AWS_SECRET_ACCESS_KEY"]
    assert seen["aws"]["AWS_CONFIG_FILE"] == os.devnull
    assert seen["caller_only"] == "kept"
    assert task.status == "ended" and task.ended_at is not None


def test_exec_of_a_missing_command_ends_the_task_and_exits_127(setup: dict[str, Any]) -> None:
    done = _trailguard(
        setup["config"], "exec", "--scope", "ce-4821-fix", "--agent", "kiro", "--", "no-such-cmd"
    )
    assert done.returncode == 127
    with SqliteStateStore(setup["db"]) as store:
        [task] = store.tasks()
    assert task.status == "ended"


def test_sts_unreachable_registers_nothing(setup: dict[str, Any], tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = setup["config"]
    config.write_text(config.read_text().replace(setup["endpoint"], f"http://127.0.0.1:{port}"))
    done = _start(setup)
    assert done.returncode == 1
    assert "sts:AssumeRole" in done.stderr
    assert done.stdout == ""
    with SqliteStateStore(setup["db"]) as store:
        assert store.tasks() == []


def test_unknown_scope_and_bad_agent_are_usage_errors(setup: dict[str, Any]) -> None:
    done = _trailguard(setup["config"], "start", "--scope", "nope", "--agent", "kiro")
    assert done.returncode == 2
    assert "no scope 'nope' (scopes: ce-4821-fix)" in done.stderr
    bad = _trailguard(setup["config"], "start", "--scope", "ce-4821-fix", "--agent", "k i r o")
    assert bad.returncode == 2


def test_profile_format_writes_the_aws_config_file(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = setup["caller_config"]
    done = _start(setup, "--format", "profile")
    assert done.returncode == 2
    assert "--profile-name" in done.stderr
    done = _start(setup, "--format", "profile", "--profile-name", "ce-task")
    assert done.returncode == 0, done.stderr
    text = path.read_text()
    assert "[profile caller-admin]" in text and "[profile ce-task]" in text
    with SqliteStateStore(setup["db"]) as store:
        [task] = store.tasks()
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    session = boto3.Session(profile_name="ce-task")
    sts = session.client("sts", endpoint_url=setup["endpoint"])
    assert sts.get_caller_identity()["Arn"].endswith(f"agent-kiro-{task.task_id}")


def _cloudtrail(
    task: Any, event_id: str, name: str, at: datetime, source: str = "s3.amazonaws.com"
) -> dict[str, Any]:
    """The record CloudTrail writes for a call signed with the task's credentials."""
    session_name = task.principal_id.split(":", 1)[1]
    return {
        "eventVersion": "1.09",
        "eventID": event_id,
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.22.0",
        "readOnly": name.startswith(("Get", "List")),
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
        "requestParameters": {"bucketName": "ce-logs"},
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": task.principal_id,
            "arn": f"arn:aws:sts::123456789012:assumed-role/agent-ce/{session_name}",
            "accountId": "123456789012",
            "accessKeyId": task.access_key_id,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": task.principal_id.split(":", 1)[0],
                    "arn": ROLE,
                    "accountId": "123456789012",
                    "userName": "agent-ce",
                },
                "attributes": {
                    "creationDate": task.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "mfaAuthenticated": "false",
                },
                "sourceIdentity": task.source_identity,
            },
        },
    }


def _replay(setup: dict[str, Any], records: list[dict[str, Any]], path: Path) -> list[Any]:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "detector",
            "replay",
            "--config",
            str(setup["config"]),
            "--format",
            "jsonl",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_detector_binds_task_credentials_and_flags_use_after_end(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    assert _start(setup).returncode == 0
    with SqliteStateStore(setup["db"]) as store:
        [task] = store.tasks()
    now = datetime.now(UTC)
    before = _replay(
        setup,
        [
            _cloudtrail(task, "e1", "GetObject", now),
            _cloudtrail(task, "e2", "TerminateInstances", now, "ec2.amazonaws.com"),
        ],
        tmp_path / "before.jsonl",
    )
    findings = [r for r in before if r["type"] == "finding"]
    # GetObject is in scope: the only findings are about the out-of-scope TerminateInstances.
    assert {f["event_id"] for f in findings} == {"e2"}
    assert "out-of-scope-action" in {f["kind"] for f in findings}
    assert {f["scope"] for f in findings} == {"ce-4821-fix"}
    assert all(any("attribution: registry" in e for e in f["evidence"]) for f in findings)
    assert all(f["agent"] == "kiro" for f in findings)
    assert _trailguard(setup["config"], "end", task.task_id).returncode == 0
    after = _replay(
        setup,
        [_cloudtrail(task, "e3", "GetObject", datetime.now(UTC) + timedelta(seconds=5))],
        tmp_path / "after.jsonl",
    )
    [expired] = [r for r in after if r["type"] == "finding" and r["kind"] == "scope-expired"]
    assert f"task {task.task_id} (scope ce-4821-fix) ended at" in expired["reason"]
