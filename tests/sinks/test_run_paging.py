"""`trailguard run` with paging sinks: a receiver that is down holds the service back until it
delivers, several sinks at once, and a receiver that rejects the request stops the service."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.scenario import DEMO
from tests.sinks.conftest import KIRO
from tests.sinks.receiver import Receiver

pytestmark = pytest.mark.integration
WAIT_SECONDS = 60.0


def _config(tmp_path: Path, sinks: list[dict[str, Any]]) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    shutil.copy(DEMO / "incident.jsonl", inbox / "incident.jsonl")
    config = {
        "scopes": str(DEMO / "scopes.yaml"),
        "sources": [
            {"type": "files", "path": str(inbox), "poll_interval_seconds": 0.1, "settle_seconds": 0}
        ],
        "sinks": sinks,
        "state": {"path": str(tmp_path / "state.db"), "flush_interval_seconds": 0},
        "http": {"port": 0},
    }
    path = tmp_path / "trailguard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start(config: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "detector", "run", "--config", str(config)]
    log = (tmp_path / "trailguard.log").open("ab")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)


def _log(tmp_path: Path) -> str:
    path = tmp_path / "trailguard.log"
    return path.read_text(errors="replace") if path.exists() else ""


async def _until(what: str, done: Any, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if done():
            return
        assert process.poll() is None, f"trailguard exited while waiting for {what}"
        await asyncio.sleep(0.1)
    raise AssertionError(f"waited for {what}")


async def _exit(process: subprocess.Popen[bytes]) -> int:
    """Wait without blocking the loop: the receivers answer on it."""
    deadline = time.monotonic() + WAIT_SECONDS
    while process.poll() is None:
        assert time.monotonic() < deadline, "trailguard did not exit"
        await asyncio.sleep(0.1)
    return process.returncode


async def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return await _exit(process)


async def test_a_receiver_that_is_down_delays_the_page_but_it_goes_out_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    slack = Receiver(ok_status=200)
    await slack.start()
    receiver.script = [(503, 0.0)] * 7
    sinks = [
        {
            "type": "pagerduty",
            "routing_key": "k",
            "url": f"{receiver.url}/v2/enqueue",
            "max_attempts": 3,
            "retry_first_seconds": 0.05,
            "min_severity": "critical",
        },
        {"type": "slack", "webhook_url": f"{slack.url}/hook", "min_severity": "critical"},
    ]
    config = _config(tmp_path, sinks)
    process = _start(config, tmp_path)
    try:
        await _until("the page", lambda: receiver.accepted(), process)
        await asyncio.sleep(1.0)
        assert await _stop(process) == 0
        # Restarted: the file was acknowledged only once delivered; nothing is sent again.
        runs = _log(tmp_path).count("trailguard running")
        process = _start(config, tmp_path)
        # Stop only once it is running: a signal before its handlers exist would kill it.
        await _until("the restart", lambda: _log(tmp_path).count("trailguard running") > runs,
                     process)  # fmt: skip
        await asyncio.sleep(1.0)
        assert await _stop(process) == 0
    finally:
        await _stop(process)
        await slack.stop()
    failed = [r for r in receiver.requests if r.headers["x-answer"] != "ok"]
    assert len(failed) == 7
    pages = [r.json() for r in receiver.accepted()]
    assert [p["dedup_key"] for p in pages] == [f"trailguard/{KIRO}"]
    assert len(slack.accepted()) == 1 and KIRO in slack.accepted()[0].body.decode()


async def test_a_rejected_notification_stops_the_service(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script = [(400, 0.0)]
    sinks = [{"type": "pagerduty", "routing_key": "bad", "url": f"{receiver.url}/v2/enqueue"}]
    process = _start(_config(tmp_path, sinks), tmp_path)
    try:
        code = await _exit(process)
    finally:
        await _stop(process)
    assert code == 1
    assert len(receiver.requests) == 1
    assert "HTTP 400" in (tmp_path / "trailguard.log").read_text()
