"""`trailguard run` over the demo incident, with the two-person rule on, for end-to-end tests.

The service reads the demo's CloudTrail records from a watched directory, keeps state in
SQLite and serves the approval API and session pages on a free loopback port.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.approvals.common import write_token_file
from tests.scenario import DEMO

WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class RunningService:
    url: str
    config: Path
    process: subprocess.Popen[bytes]
    log: Path


def config_file(tmp_path: Path, *, expire_seconds: int = 3600) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_token_file(tmp_path / "tokens.yaml")
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
sinks:
  - type: jsonl
    path: {tmp_path / "out.jsonl"}
state:
  store: sqlite
  path: {tmp_path / "state.db"}
  flush_interval_seconds: 0
responses:
  enabled: true
  approval: required
approvals:
  expire_seconds: {expire_seconds}
  default_outcome: deny
  sweep_seconds: 0.2
api:
  tokens_file: tokens.yaml
http:
  port: 0
log:
  format: json
"""
    )
    return config


@contextmanager
def demo_service(tmp_path: Path, *, expire_seconds: int = 3600) -> Iterator[RunningService]:
    config = config_file(tmp_path, expire_seconds=expire_seconds)
    log = tmp_path / "run.log"
    command = [sys.executable, "-m", "detector", "run", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    try:
        port = _port(log, process)
        shutil.copy(DEMO / "incident.jsonl", tmp_path / "inbox" / "incident.jsonl")
        yield RunningService(f"http://127.0.0.1:{port}", config, process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert code == 0, log.read_text()[-3000:]


def _port(log: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        for line in log.read_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("message") == "HTTP server listening":
                    return int(entry["port"])
        time.sleep(0.05)
    raise AssertionError("the service did not start listening")


def call(method: str, url: str, *, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    """One JSON request; returns (status, decoded body)."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text.decode()


def wait_for_pending(service: RunningService, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        assert service.process.poll() is None, service.log.read_text()[-3000:]
        status, body = call("GET", f"{service.url}/v1/approvals?status=pending", token=token)
        if status == 200 and body["approvals"]:
            (held,) = body["approvals"]
            return dict(held)
        time.sleep(0.1)
    raise AssertionError("no approval request appeared: " + service.log.read_text()[-3000:])
