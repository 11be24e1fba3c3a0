"""demo, catalog, scope and the exit codes in --help, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "detector" / "data" / "demo"


def _trailguard(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", *args]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def test_demo_writes_json_lines_off_a_terminal() -> None:
    done = _trailguard("demo")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records and {r["type"] for r in records} >= {"finding", "alert", "response"}


@pytest.mark.parametrize(
    ("action", "suggested"),
    [
        ("DeleteBucket", "s3:DeleteBucket"),
        ("s3:DeleteBukcet", "s3:DeleteBucket"),
        ("foo:DeleteBucket", "s3:DeleteBucket"),
        ("foo:Bar", None),
    ],
)
def test_catalog_show_refuses_an_unknown_action(action: str, suggested: str | None) -> None:
    done = _trailguard("catalog", "show", action)
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"unknown IAM action {action!r}" in done.stderr
    if suggested is not None:
        assert "did you mean" in done.stderr and suggested in done.stderr


def test_catalog_show_prints_a_known_entry() -> None:
    done = _trailguard("catalog", "show", "s3:deletebucket")
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)
    assert entry["action"] == "s3:DeleteBucket" and entry["known"] is True


SCOPE = """
scopes:
  - name: first
    match: {agent: kiro}
    allow: {actions: ["s3:Get*"]}
  - name: broken-one
    match: {agent: kiro}
    allow: {actions: "s3:Get*"}
  - name: copy-of-first
    match: {agent: kiro}
    allow: {actions: ["ec2:Describe*"]}
  - name: old
    match: {agent: claude-code}
    allow: {actions: ["*"]}
    expires: 2020-01-01T00:00:00Z
  - name: broken-two
    match: {nonsense: x}
    allow: {actions: ["*"]}
"""


def test_scope_check_reports_every_error_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "scopes.yaml"
    path.write_text(SCOPE)
    done = _trailguard("scope", "check", str(path))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "warning" not in line]
    assert any("'broken-one'" in line and "allow.actions" in line for line in errors)
    assert any("'broken-two'" in line and "match" in line for line in errors)
    assert "2 error(s)" in done.stderr
    assert "scope 'copy-of-first': never binds a session: scope 'first'" in done.stderr
    assert "scope 'old': expired at 2020-01-01" in done.stderr


def test_scope_check_of_a_valid_file_exits_0_with_its_warnings(tmp_path: Path) -> None:
    path = tmp_path / "scopes.yaml"
    path.write_text(SCOPE.split("  - name: broken-two")[0].replace("broken-one", "second"))
    fixed = path.read_text().replace('allow: {actions: "s3:Get*"}', 'allow: {actions: ["s3:*"]}')
    path.write_text(fixed)
    done = _trailguard("scope", "check", str(path))
    assert done.returncode == 0, done.stderr
    assert "4 scope(s) valid" in done.stdout
    assert done.stderr.count("warning") == 3  # second and copy-of-first shadowed; old expired


def _demo_events() -> list[dict[str, object]]:
    return [json.loads(line) for line in (DEMO / "incident.jsonl").read_text().splitlines()]


def test_scope_explain_reads_json_lines_and_picks_an_event_by_id() -> None:
    delete = next(e for e in _demo_events() if e["eventName"] == "DeleteStack")
    done = _trailguard(
        "scope",
        "explain",
        str(DEMO / "scopes.yaml"),
        str(DEMO / "incident.jsonl"),
        "--event-id",
        str(delete["eventID"]),
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # The same eventID is delivered twice in the scenario; each delivery is explained once.
    assert out.count(f"event {delete['eventID']}") == 2
    lines = [line.strip() for line in out.splitlines()]
    assert sum(line.startswith("scope ce-4821-fix (") for line in lines) == 2
    assert sum(line.startswith("verdict:") for line in lines) == 2
    assert "verdict: out of scope" in out
    assert "GetFunction" not in out


def test_scope_explain_explains_every_event_of_a_json_lines_file() -> None:
    done = _trailguard(
        "scope",
        "explain",
        str(DEMO / "scopes.yaml"),
        "-",
        stdin=(DEMO / "incident.jsonl").read_text(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\nevent ") + 1 == len(_demo_events())


def test_scope_explain_names_an_event_id_it_does_not_find() -> None:
    done = _trailguard(
        "scope", "explain", str(DEMO / "scopes.yaml"), str(DEMO / "incident.jsonl"),
        "--event-id", "no-such-event",
    )  # fmt: skip
    assert done.returncode == 2
    assert "no event with eventID 'no-such-event'" in done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["replay"],
        ["demo"],
        ["catalog"],
        ["catalog", "show"],
        ["scope"],
        ["scope", "check"],
        ["scope", "explain"],
        ["sessions"],
        ["bench"],
        ["run"],
        ["route"],
        ["config"],
        ["config", "check"],
    ],
)
def test_every_command_lists_its_exit_codes_in_help(command: list[str]) -> None:
    done = _trailguard(*command, "--help")
    assert done.returncode == 0
    epilog = done.stdout.split("exit codes:", 1)[1]
    assert "  0  " in epilog and "  2  " in epilog
