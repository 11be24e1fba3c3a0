"""Acceptance: a real Alertmanager receives TrailGuard's alerts from `trailguard run` over the
incident scenario and routes them, with deploy/alertmanager/alertmanager.yml, to a local
receiver standing in for PagerDuty's Events API: one incident per session, no second
notification after a SIGKILL and a restart that redelivers the batch, and a resolve after
the revocation.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from detector.bench.tansu import free_port
from tests.scenario import DEMO
from tests.sinks.conftest import KIRO
from tests.sinks.receiver import Receiver

pytestmark = pytest.mark.integration
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"
WAIT_SECONDS = 60.0
QUIET_SECONDS = 8


def _alertmanager_binary() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found is None:
        pytest.skip("Alertmanager is not installed (make test installs the Debian package)")
    return found


def _alertmanager_config(tmp_path: Path, receiver: Receiver) -> Path:
    """The deploy configuration with PagerDuty replaced by the local receiver, and timings
    shortened so the test takes seconds."""
    config = yaml.safe_load(DEPLOY.read_text())
    key_file = tmp_path / "pagerduty-routing-key"
    key_file.write_text("TESTROUTINGKEY\n")
    [pagerduty] = [r for r in config["receivers"] if r["name"] == "pagerduty"]
    pagerduty["pagerduty_configs"][0]["url"] = f"{receiver.url}/v2/enqueue"
    pagerduty["pagerduty_configs"][0]["routing_key_file"] = str(key_file)
    for route in (config["route"], *config["route"]["routes"]):
        route.update(group_wait="1s", group_interval="2s")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start_alertmanager(tmp_path: Path, config: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        _alertmanager_binary(),
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    log = (tmp_path / "alertmanager.log").open("ab")
    process = subprocess.Popen(command, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.1)
    raise AssertionError("Alertmanager did not become ready")


def _trailguard_config(tmp_path: Path, alertmanager: str) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(DEMO / "incident.jsonl", inbox / "incident.jsonl")
    config = {
        "scopes": str(DEMO / "scopes.yaml"),
        "responses": {"enabled": True},
        "sources": [
            {"type": "files", "path": str(inbox), "poll_interval_seconds": 0.1, "settle_seconds": 0}
        ],
        "sinks": [
            {
                "type": "alertmanager",
                "url": alertmanager,
                "resend_seconds": 1,
                "alert_ttl_seconds": 60,
                "resolve_quiet_seconds": QUIET_SECONDS,
            },
            # Stdout keeps no memory across runs: it shows what each run processed.
            {"type": "jsonl", "path": "-"},
        ],
        # Long enough that the batch is still unacknowledged when the process is killed:
        # the restart reads the file again and the sink sees every alert a second time.
        "state": {"path": str(tmp_path / "state.db"), "flush_interval_seconds": 600},
        "http": {"port": 0, "public_url": "https://trailguard.example.com"},
    }
    path = tmp_path / "trailguard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start_trailguard(config: Path, tmp_path: Path, run: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "detector", "run", "--config", str(config)]
    log = (tmp_path / "trailguard.log").open("ab")
    out = (tmp_path / f"run-{run}.jsonl").open("wb")
    return subprocess.Popen(command, stdout=out, stderr=log)


def _alerted(path: Path) -> set[str]:
    lines = [yaml.safe_load(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["dedup_key"] for r in lines if r["type"] == "alert"}


def _events(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.accepted() if r.path == "/v2/enqueue"]


async def _wait(receiver: Receiver, what: str, done: Any, *processes: Any) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, f"a process exited while waiting for {what}"
        if done(_events(receiver)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"waited for {what}; received {_events(receiver)}")


async def test_alertmanager_pages_once_per_session_across_a_restart_and_resolves(
    tmp_path: Path, receiver: Receiver
) -> None:
    alertmanager, am_url = _start_alertmanager(tmp_path, _alertmanager_config(tmp_path, receiver))
    config = _trailguard_config(tmp_path, am_url)
    trailguard = _start_trailguard(config, tmp_path, 1)
    try:
        await _wait(receiver, "the page", lambda ev: ev, alertmanager, trailguard)
        [page] = _events(receiver)
        assert page["event_action"] == "trigger"
        assert page["routing_key"] == "TESTROUTINGKEY"
        details = page["payload"]["custom_details"]
        assert details["session"] == KIRO
        # Every critical kind of the session in one incident, the rebuild's sequence included.
        assert set(details["kinds"].split()) == {
            "out-of-scope-action",
            "destructive-action",
            "defense-evasion",
            "persistence",
            "suspicious-sequence",
        }
        assert details["agent"] == "kiro" and details["scope"] == "ce-4821-fix"
        assert page["links"][0]["href"] == f"https://trailguard.example.com/sessions/{KIRO}"

        trailguard.send_signal(signal.SIGKILL)
        trailguard.wait(timeout=WAIT_SECONDS)
        trailguard = _start_trailguard(config, tmp_path, 2)

        await _wait(
            receiver,
            "the resolve",
            lambda ev: any(e["event_action"] == "resolve" for e in ev),
            alertmanager,
            trailguard,
        )
        # Let a second notification, were one coming, arrive before counting.
        await asyncio.sleep(4)
        events = _events(receiver)
        assert [e["event_action"] for e in events] == ["trigger", "resolve"]
        assert {e["dedup_key"] for e in events} == {page["dedup_key"]}
    finally:
        for process in (trailguard, alertmanager):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=WAIT_SECONDS)
    # The restart did process the incident again (the killed run had not acknowledged it):
    # the sink's ledger and Alertmanager's deduplication, not luck, kept the page single.
    first, second = _alerted(tmp_path / "run-1.jsonl"), _alerted(tmp_path / "run-2.jsonl")
    assert f"trailguard/{KIRO}/out-of-scope-action" in first
    assert second == first
