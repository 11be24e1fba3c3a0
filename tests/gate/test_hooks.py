"""The hook protocols' edges: malformed events, other tools, scopes from the environment,
the journal, and failures of the gate itself, which must still answer 0 or 2."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from detector.commands import gate as gate_command
from detector.gate.cli_index import IndexLookup
from detector.gate.decide import decide
from detector.scope_file import load_scopes
from tests.gate.conftest import NOW, SCOPES, run_gate

ARGS = ["--hook", "claude-code", "--scopes", str(SCOPES), "--scope", "ce-fix"]
DELETE = "aws cloudformation delete-stack --stack-name ce-api"


def bash(command: object) -> bytes:
    return orjson.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                         "tool_input": {"command": command}})  # fmt: skip


@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"tool_input": {"command": "ls"}}', "names no tool"),
        (b'{"tool_name": "Bash"}', "tool_input is not a JSON object"),
        (b'{"tool_name": "Bash", "tool_input": {"command": 7}}', "is not a string"),
        (b'{"tool_name": "mcp__aws__call_aws", "tool_input": {}}', "cli_command is not a string"),
        (b"\xff\xfe", "not JSON"),
        (b" " * (2 << 20), "larger than"),
    ],
)
def test_malformed_events_block(stdin: bytes, says: str) -> None:
    outcome = run_gate(ARGS, stdin)
    assert outcome.code == 2
    assert says in outcome.stderr


def test_other_tools_and_events_pass() -> None:
    read = orjson.dumps({"tool_name": "Read", "tool_input": {"file_path": "/etc/passwd"}})
    assert run_gate(ARGS, read).code == 0
    # Kiro's shell tool is not Claude Code's: under the claude-code protocol it is another tool.
    kiro_shell = orjson.dumps({"tool_name": "execute_bash", "tool_input": {"command": DELETE}})
    assert run_gate(ARGS, kiro_shell).code == 0
    assert run_gate(["--hook", "kiro", *ARGS[2:]], kiro_shell).code == 2
    post = orjson.dumps({"hook_event_name": "PostToolUse", "tool_name": "Bash",
                         "tool_input": {"command": DELETE}})  # fmt: skip
    assert run_gate(ARGS, post).code == 0


def test_scope_from_the_environment() -> None:
    environ = {"TRAILGUARD_SCOPES": str(SCOPES), "TRAILGUARD_SCOPE": "ce-fix",
               "AWS_REGION": "us-east-1"}  # fmt: skip
    assert run_gate(["--hook", "claude-code"], bash(DELETE), environ=environ).code == 2
    ok = run_gate(["--hook", "claude-code"], bash("aws s3 ls"), environ=environ)
    assert ok.code == 0, ok.stderr


def test_no_scope_blocks_aws_calls_but_not_other_commands() -> None:
    outcome = run_gate(["--hook", "claude-code"], bash("aws s3 ls"), environ={})
    assert outcome.code == 2 and "no task scope" in outcome.stderr
    assert run_gate(["--hook", "claude-code"], bash("ls -la"), environ={}).code == 0
    task = run_gate(["--hook", "claude-code"], bash("aws s3 ls"),
                    environ={"TRAILGUARD_TASK": "t-42"})  # fmt: skip
    assert task.code == 2 and "task t-42: the gate cannot look it up" in task.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--scopes", str(SCOPES)], "holds 2 scopes"),
        (["--scopes", str(SCOPES), "--scope", "nope"], "no scope named 'nope'"),
        (["--scopes", "/nonexistent/scopes.yaml", "--scope", "x"], "cannot read scope file"),
    ],
)
def test_unusable_scopes_block(args: list[str], says: str) -> None:
    outcome = run_gate(["--hook", "claude-code", *args], bash(DELETE))
    assert outcome.code == 2
    assert says in outcome.stderr


def test_internal_errors_block_unless_fail_open(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("index unreadable")

    monkeypatch.setattr(gate_command, "decide", broken)
    outcome = run_gate(ARGS, bash("aws s3 ls"))
    assert outcome.code == 2
    assert "the gate failed: RuntimeError: index unreadable" in outcome.stderr
    opened = run_gate(["--fail-open", *ARGS], bash("aws s3 ls"))
    assert opened.code == 0
    assert "allowed (--fail-open)" in opened.stderr


def test_fail_open_does_not_allow_out_of_scope_or_unreadable_lines() -> None:
    assert run_gate(["--fail-open", *ARGS], bash(DELETE)).code == 2
    assert run_gate(["--fail-open", *ARGS], bash("echo 'open")).code == 2
    assert run_gate(["--fail-open", *ARGS], b"{").code == 2


def test_every_verdict_is_journaled(tmp_path: Path) -> None:
    journal = tmp_path / "state" / "gate.jsonl"
    run_gate(ARGS, bash(DELETE), journal=journal)
    run_gate(ARGS, bash("aws s3 ls"), journal=journal)
    run_gate(ARGS, b"{", journal=journal)
    records = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
    assert [r["decision"] for r in records] == ["block", "allow", "block"]
    assert records[0]["command"] == DELETE
    assert records[0]["scope"] == "ce-fix"
    assert records[0]["calls"][0]["actions"] == ["cloudformation:DeleteStack"]
    assert records[0]["time"] == "2026-03-02T10:00:00Z"
    assert records[2]["command"] is None


def test_a_journal_that_cannot_be_written_does_not_allow_a_blocked_call(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    outcome = run_gate(ARGS, bash(DELETE), journal=blocker / "gate.jsonl")
    assert outcome.code == 2
    assert "could not journal the verdict" in outcome.stderr
    allowed = run_gate(ARGS, bash("aws s3 ls"), journal=blocker / "gate.jsonl")
    assert allowed.code == 0


def test_the_default_journal_is_under_the_state_dir() -> None:
    assert gate_command.default_journal({"XDG_STATE_HOME": "/s"}) == Path(
        "/s/trailguard/gate.jsonl"
    )
    assert gate_command.default_journal({"HOME": "/h"}) == Path(
        "/h/.local/state/trailguard/gate.jsonl"
    )


def test_generic_reads_the_line_from_stdin_without_arguments() -> None:
    outcome = run_gate(["--scopes", str(SCOPES), "--scope", "ce-fix"], DELETE.encode())
    assert outcome.code == 2
    assert orjson.loads(outcome.stdout)["decision"] == "block"


def test_approval_scopes_block_and_say_approval_is_not_available() -> None:
    scope = load_scopes(SCOPES).get("ce-fix")
    assert scope is not None
    approve = dataclasses.replace(scope, on_violation="approve")
    verdict = decide(DELETE, scope=approve, env={"AWS_REGION": "us-east-1"}, at=NOW,
                     lookup=IndexLookup())  # fmt: skip
    assert verdict.blocked
    assert "two-person approval, which the gate asks the service for" in verdict.reason


def test_an_expired_scope_blocks() -> None:
    scope = load_scopes(SCOPES).get("ce-fix")
    assert scope is not None
    expired = dataclasses.replace(scope, expires=datetime(2026, 1, 1, tzinfo=UTC))
    verdict = decide("aws s3 ls", scope=expired, env={"AWS_REGION": "us-east-1"}, at=NOW,
                     lookup=IndexLookup())  # fmt: skip
    assert verdict.blocked and "expired" in verdict.reason


def test_arguments_that_are_not_unicode_still_get_an_answer(tmp_path: Path) -> None:
    journal = tmp_path / "gate.jsonl"
    line = "aws s3 rb s3://bucket-\udcff"  # a non-UTF-8 byte as Python passes it in argv
    outcome = run_gate(["--scopes", str(SCOPES), "--scope", "ce-fix", "--", line],
                       journal=journal)  # fmt: skip
    assert outcome.code == 2
    # Lone surrogates are written as JSON escapes, which only the standard library reads.
    assert json.loads(outcome.stdout)["decision"] == "block"
    assert json.loads(journal.read_bytes())["decision"] == "block"


AWS_CONFIG = """\
[default]
region = us-east-1
sso_account_id = 111122223333

[profile prod]
region = us-east-1
role_arn = arn:aws:iam::999999999999:role/admin
source_profile = default

[sso-session corp]
sso_region = eu-west-1
"""


def test_profiles_give_the_region_and_account_as_the_cli_would(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(AWS_CONFIG)
    environ = {"AWS_CONFIG_FILE": str(config)}  # no AWS_REGION: the profile's region applies
    args = ["--hook", "claude-code", "--scopes", str(SCOPES), "--scope", "ce-fix"]
    read = bash("aws cloudformation describe-stacks --stack-name ce-api")
    assert run_gate(args, read, environ=environ).code == 0
    prod = run_gate(args, bash("aws --profile prod cloudformation describe-stacks"),
                    environ=environ)  # fmt: skip
    assert prod.code == 2
    assert "account 999999999999 is not among the accounts" in prod.stderr
    broken = tmp_path / "broken"
    broken.write_text("[default\nregion")
    unread = run_gate(args, read, environ={"AWS_CONFIG_FILE": str(broken)})
    assert unread.code == 2 and "names no region" in unread.stderr


def test_parse_config() -> None:
    from detector.gate.aws_config import AwsProfile, parse_config

    assert parse_config(AWS_CONFIG) == {
        "default": AwsProfile(region="us-east-1", account="111122223333"),
        "prod": AwsProfile(region="us-east-1", account="999999999999"),
    }
    assert parse_config("not ini") == {}
