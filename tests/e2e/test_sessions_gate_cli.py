"""`trailguard sessions --config FILE --session ID`: the pre-flight gate's verdicts on a
session, read from the state store, for a task the gate reported under."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from detector.state.gate_verdicts import GateVerdictRow
from detector.state.sqlite import SqliteStateStore
from detector.state.tasks import TaskRow

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TASK = "b2b2b2b2b2b2"
BLOCKED = "aws s3 rb s3://ce-artifacts --force"


def _trailguard(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "trailguard.yaml"
    config.write_text(f"state: {{path: {tmp_path / 'state.db'}}}\n")
    with SqliteStateStore(tmp_path / "state.db") as store:
        store.put_task(
            TaskRow(
                task_id=TASK,
                agent="kiro",
                owner="alice@example.com",
                scope="ce-fix",
                role_arn="arn:aws:iam::111122223333:role/agent-ce",
                source_identity=f"agent-kiro-{TASK}",
                created_at=T0,
                expires_at=T0 + timedelta(hours=1),
            )
        )
        for n, (decision, line) in enumerate([("allow", "aws s3 ls"), ("block", BLOCKED)]):
            store.record_gate_verdict(
                GateVerdictRow(verdict_id=f"gv-cli-{n:08d}", session_id=TASK, task_id=TASK,
                               decision=decision, reason=f"{line}: s3:DeleteBucket is denied",
                               command=line, decided_at=T0 + timedelta(seconds=n),
                               received_at=T0 + timedelta(seconds=n)),
                cap=100,
            )  # fmt: skip
    return config


def test_the_gate_verdicts_of_a_task(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = _trailguard("sessions", "--config", str(config), "--session", TASK, "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["type"], r["decision"], r["command"]) for r in records] == [
        ("gate-verdict", "allow", "aws s3 ls"), ("gate-verdict", "block", BLOCKED)]  # fmt: skip
    table = _trailguard("sessions", "--config", str(config), "--session", TASK, "--format", "table")
    assert table.returncode == 0, table.stderr
    assert f"blocked before it ran: {BLOCKED}" in table.stdout
    assert "s3:DeleteBucket is denied" in table.stdout


def test_a_session_nobody_reported_is_still_unknown(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = _trailguard("sessions", "--config", str(config), "--session", "ses-nope")
    assert done.returncode == 2 and "no session 'ses-nope'" in done.stderr
