"""`trailguard run` with a baseline: the same findings as `replay --baseline`, and online
updates that survive a restart, on SQLite and on PostgreSQL.

Real processes: the CLI's `run` with a watched directory, a JSONL file sink and the state
store, stopped with SIGTERM; `replay` as a subprocess; the artifact trained on the synthetic
history (tests/baseline_use/history.py) by the training code.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.state.postgres import PostgresStateStore
from detector.state.sqlite import SqliteStateStore
from detector.state.store import StateStore
from tests.baseline_use.history import (
    AFTER,
    ETL,
    OPS,
    new_role_events,
    record,
    user_identity,
)
from tests.scenario import DEMO, as_jsonl, incident
from tests.state.conftest import PG_DSN, drop_schema

pytestmark = pytest.mark.integration
WAIT_SECONDS = 60.0
NEW_ROLE = "role:arn:aws:iam::111122223333:role/report-builder"


def _phase_one() -> list[dict[str, Any]]:
    """The new role's usual work (learned online), then a call that raises a finding, so a
    test sees when the service is through."""
    records = new_role_events("p1", 100, ETL[0], start=AFTER)
    marker = ("s3.amazonaws.com", "DeleteBucket", {"bucketName": "old-logs"}, False)
    records.append(
        record("p1-marker", AFTER + timedelta(hours=2), user_identity("someone-else"), marker)
    )
    return records


def _phase_two() -> list[dict[str, Any]]:
    """The new role calls what its account does but it never did."""
    return new_role_events("p2", 3, OPS[0], start=AFTER + timedelta(hours=3))


def _records(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def _findings(records: list[dict[str, Any]]) -> Counter[bytes]:
    return Counter(
        orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records if r["type"] == "finding"
    )


def _replay(artifact: Path | None, *paths: Path) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "detector", "replay", "--format", "jsonl"]
    command += ["--scopes", str(DEMO / "scopes.yaml")]
    if artifact is not None:
        command += ["--baseline", str(artifact)]
    done = subprocess.run([*command, *map(str, paths)], capture_output=True, check=True)
    return _records(done.stdout)


def _config(tmp_path: Path, artifact: Path, state: str) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    config = tmp_path / "trailguard.yaml"
    config.write_text(
        f"""
scopes: {DEMO / "scopes.yaml"}
baseline:
  path: {artifact}
sources:
  - type: files
    name: inbox
    path: {inbox}
    poll_interval_seconds: 0.1
    settle_seconds: 0
sinks:
  - type: jsonl
    path: {tmp_path / "out.jsonl"}
state:
{state}
  flush_interval_seconds: 0
http:
  port: 0
"""
    )
    return config


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "detector", "run", "--config", str(config)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("ab"))


def _wait_for(out: Path, count: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    have = 0
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        if out.exists():
            have = len(_records(out.read_bytes()))
            if have >= count:
                return
        time.sleep(0.1)
    raise AssertionError(f"waited for {count} records, have {have}")


def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=WAIT_SECONDS) == 0, log.read_text()[-3000:]


def test_run_finds_what_replay_finds(tmp_path: Path, artifact: Path) -> None:
    parts = [incident(), _phase_one(), _phase_two()]
    folder = tmp_path / "parts"
    folder.mkdir()
    paths = []
    for index, records in enumerate(parts):
        path = folder / f"part-{index}.jsonl"
        path.write_bytes(as_jsonl(records))
        paths.append(path)
    expected = _replay(artifact, folder)
    novel = [r for r in expected if r["type"] == "finding" and r["kind"] == "novel-action"]
    # Alone and combined: the incident's agent out of its scope pages.
    assert {r["severity"] for r in novel} == {"low", "critical"}
    config = _config(tmp_path, artifact, "  store: sqlite\n  path: " + str(tmp_path / "s.db"))
    log = tmp_path / "run.log"
    process = _start(config, log)
    try:
        for path in paths:
            # One file at a time, in order, as they were replayed.
            (tmp_path / "inbox" / path.name).write_bytes(path.read_bytes())
            time.sleep(0.3)
        _wait_for(tmp_path / "out.jsonl", len(expected), process, log)
    finally:
        _stop(process, log)
    got = _records((tmp_path / "out.jsonl").read_bytes())
    assert _findings(got) == _findings(expected)
    assert len(got) == len(expected)


@pytest.fixture(params=["sqlite", pytest.param("postgres")])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The `state:` lines of the config, and a way to open the same store in the test."""
    if request.param == "sqlite":
        path = tmp_path / "state.db"
        yield f"  store: sqlite\n  path: {path}", lambda: SqliteStateStore(path)
        return
    schema = f"trailguard_test_{uuid.uuid4().hex}"
    lines = f'  store: postgres\n  dsn: "{PG_DSN}"\n  schema: {schema}'
    yield lines, lambda: PostgresStateStore(PG_DSN, schema=schema)
    drop_schema(schema)


def test_online_updates_survive_a_restart(
    tmp_path: Path, artifact: Path, state: tuple[str, Any]
) -> None:
    lines, open_store = state
    one, two = tmp_path / "phase-1.jsonl", tmp_path / "phase-2.jsonl"
    one.write_bytes(as_jsonl(_phase_one()))
    two.write_bytes(as_jsonl(_phase_two()))
    # What online learning changes: the new role, fresh, inherits its account's history,
    # where ec2:DescribeInstances is common; after 100 calls of its own it is not.
    assert not [r for r in _replay(artifact, two) if r.get("kind") == "novel-action"]
    expected = [r for r in _replay(artifact, one, two) if r.get("event_id", "").startswith("p2")]
    assert {r["kind"] for r in expected if r["type"] == "finding"} == {"novel-action"}

    config = _config(tmp_path, artifact, lines)
    log, out = tmp_path / "run.log", tmp_path / "out.jsonl"
    first = _start(config, log)
    try:
        (tmp_path / "inbox" / one.name).write_bytes(one.read_bytes())
        _wait_for(out, 1, first, log)  # the marker's finding: phase one is through
    finally:
        _stop(first, log)
    store: StateStore = open_store()
    try:
        saved = store.load("default")
    finally:
        store.close()
    assert saved is not None
    learned = saved["baselines"]["action-frequency"]["learned"]
    assert any(row[0] == NEW_ROLE for row in learned["groups"])

    written = len(_records(out.read_bytes()))
    second = _start(config, log)
    try:
        (tmp_path / "inbox" / two.name).write_bytes(two.read_bytes())
        _wait_for(out, written + len(expected), second, log)
    finally:
        _stop(second, log)
    after = [r for r in _records(out.read_bytes())[written:] if r["type"] == "finding"]
    assert _findings(after) == _findings(expected)
