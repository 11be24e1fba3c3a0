"""`trailguard responses list` reads the journal the service wrote."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from detector.state.sqlite import SqliteStateStore
from detector.state.store import JournalEntry

T0 = datetime(2026, 8, 24, 10, 0, 0, tzinfo=UTC)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", "responses", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_list_shows_the_journal_filtered_by_session(tmp_path: Path) -> None:
    config = tmp_path / "trailguard.yaml"
    config.write_text("state:\n  path: state.db\n")
    with SqliteStateStore(tmp_path / "state.db") as store:
        for session, outcome, seconds in (("ses-a", "applied", 312.5), ("ses-b", "refused", None)):
            store.journal(
                [
                    JournalEntry(
                        recorded_at=T0,
                        response_key=f"{session}/revoke-session",
                        session_id=session,
                        action="revoke-session",
                        responder="revoke-session",
                        outcome=outcome,
                        dry_run=False,
                        reason=f"{outcome} for {session}",
                        detail={"seconds_from_event": seconds} if seconds else {},
                    )
                ]
            )

    table = _run("list", "--config", str(config), "--format", "table")
    only_a = _run("list", "--config", str(config), "--session", "ses-a")

    assert table.returncode == 0, table.stderr
    assert "OUTCOME" in table.stdout and "refused for ses-b" in table.stdout
    assert "(312.5s after the event)" in table.stdout
    records = [orjson.loads(line) for line in only_a.stdout.splitlines()]
    assert [(r["session_id"], r["outcome"]) for r in records] == [("ses-a", "applied")]


def test_list_on_an_empty_journal_and_the_policy_command(tmp_path: Path) -> None:
    config = tmp_path / "trailguard.yaml"
    config.write_text("state:\n  path: state.db\n")
    empty = _run("list", "--config", str(config), "--format", "table")
    assert empty.returncode == 0 and empty.stdout == "no responses journaled\n"
    policy = orjson.loads(_run("policy").stdout)
    assert "iam:PutRolePolicy" in policy["Statement"][0]["Action"]
