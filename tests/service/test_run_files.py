"""`trailguard run` end to end: a watched directory, SQLite state, a JSONL file sink.

The service must emit exactly what `trailguard replay` emits for the same input, and a
SIGKILL mid-stream followed by a restart must lose nothing and emit nothing twice.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.sinks.jsonl import record_key
from detector.state.sqlite import SqliteStateStore
from tests.scenario import DEMO, as_jsonl, scenario

pytestmark = pytest.mark.integration
PARTS = 20
WAIT_SECONDS = 60.0


def _records(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("parts")
    records = scenario()
    size = -(-len(records) // PARTS)
    paths = []
    for index in range(PARTS):
        path = folder / f"part-{index:02d}.jsonl"
        path.write_bytes(as_jsonl(records[index * size : (index + 1) * size]))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def expected(parts: list[Path]) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "detector", "replay", "--format", "jsonl"]
    command += ["--scopes", str(DEMO / "scopes.yaml"), str(parts[0].parent)]
    done = subprocess.run(command, capture_output=True, check=True)
    records = _records(done.stdout)
    assert any(r["type"] == "response" for r in records)
    # The incident's delete and recreate; after a restart between its steps the service must
    # still raise it, from the saved state.
    findings = [r for r in records if r["type"] == "finding"]
    sequences = [r for r in findings if r["kind"] == "suspicious-sequence"]
    assert "critical" in {r["severity"] for r in sequences}
    return records


def _config(tmp_path: Path, *, batch_records: int = 5000) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "trailguard.yaml"
    config.write_text(
        f"""
scopes: {DEMO / "scopes.yaml"}
sources:
  - type: files
    name: inbox
    path: {inbox}
    poll_interval_seconds: 0.1
    settle_seconds: 0
    batch_records: {batch_records}
sinks:
  - type: jsonl
    path: {tmp_path / "out.jsonl"}
state:
  store: sqlite
  path: {tmp_path / "state.db"}
  flush_interval_seconds: 0
http:
  port: 0
log:
  format: json
"""
    )
    return config


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "detector", "run", "--config", str(config)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("ab"))


def _wait_for(out: Path, count: int, process: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_SECONDS
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        assert process.poll() is None, "trailguard run exited early"
        if out.exists():
            records = _records(out.read_bytes())
            if len(records) >= count:
                return records
        time.sleep(0.1)
    raise AssertionError(f"waited for {count} records, have {len(records)}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=WAIT_SECONDS)


def test_run_emits_what_replay_emits(
    tmp_path: Path, parts: list[Path], expected: list[dict[str, Any]]
) -> None:
    config = _config(tmp_path)
    for part in parts:
        shutil.copy(part, tmp_path / "inbox" / part.name)
    process = _start(config, tmp_path / "run.log")
    try:
        got = _wait_for(tmp_path / "out.jsonl", len(expected), process)
    finally:
        assert _stop(process) == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert got == expected


def test_sigkill_and_restart_lose_nothing_and_repeat_nothing(
    tmp_path: Path, parts: list[Path], expected: list[dict[str, Any]]
) -> None:
    config = _config(tmp_path)
    inbox = tmp_path / "inbox"
    out = tmp_path / "out.jsonl"
    log = tmp_path / "run.log"
    process = _start(config, log)
    half = PARTS // 2
    for part in parts[:half]:
        shutil.copy(part, inbox / part.name)
        time.sleep(0.05)
    # Kill while it is busy with the files just dropped in.
    while not out.exists() or not out.read_bytes():
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=WAIT_SECONDS)
    for part in parts[half:]:
        shutil.copy(part, inbox / part.name)

    restarted = _start(config, log)
    try:
        got = _wait_for(out, len(expected), restarted)
        time.sleep(1.0)  # anything emitted twice would show up now
        got = _records(out.read_bytes())
    finally:
        assert _stop(restarted) == 0, log.read_text()[-3000:]
    keys = Counter(record_key(r) for r in got)
    assert [k for k, n in keys.items() if n > 1] == []
    assert set(keys) == {record_key(r) for r in expected}
    assert len(got) == len(expected)


def _position(state: Path) -> int | None:
    """The saved position of the one file in the inbox, while it is part-way; else None."""
    store = SqliteStateStore(state)
    try:
        value = store.checkpoint("files:inbox")
    finally:
        store.close()
    entry = orjson.loads(value or "{}").get("trail.jsonl")
    return entry[2] if entry is not None and len(entry) == 3 else None


def _events_processed(log: Path) -> float:
    """trailguard_events_total of the newest process writing to `log`."""
    port = next(
        entry["port"]
        for entry in reversed([orjson.loads(line) for line in log.read_bytes().splitlines()])
        if entry.get("message") == "HTTP server listening"
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    prefix = 'trailguard_events_total{source="inbox"} '
    return float(next(line for line in body.splitlines() if line.startswith(prefix))[len(prefix) :])


def test_sigkill_part_way_through_a_file_resumes_at_its_position(
    tmp_path: Path, parts: list[Path], expected: list[dict[str, Any]]
) -> None:
    """The whole scenario as one file read 200 records at a time, killed part-way."""
    config = _config(tmp_path, batch_records=200)
    state, out, log = tmp_path / "state.db", tmp_path / "out.jsonl", tmp_path / "run.log"
    trail = tmp_path / "trail.jsonl"
    trail.write_bytes(b"".join(part.read_bytes() for part in parts))
    total = len(_records(trail.read_bytes()))
    process = _start(config, log)
    shutil.move(trail, tmp_path / "inbox" / trail.name)
    deadline = time.monotonic() + WAIT_SECONDS
    while not (_position(state) or 0) >= 1000:
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no position saved part-way through the file"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=WAIT_SECONDS)
    position = _position(state)
    assert position is not None and 0 < position < total

    restarted = _start(config, log)
    try:
        got = _wait_for(out, len(expected), restarted)
        time.sleep(1.0)  # anything emitted twice would show up now
        got = _records(out.read_bytes())
        # Only what follows the position was read again.
        assert _events_processed(log) == total - position
    finally:
        assert _stop(restarted) == 0, log.read_text()[-3000:]
    keys = Counter(record_key(r) for r in got)
    assert [k for k, n in keys.items() if n > 1] == []
    assert set(keys) == {record_key(r) for r in expected}
    assert _position(state) is None  # done
