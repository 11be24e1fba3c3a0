"""`trailguard run` with responses enabled, against moto: the composition in detector/run.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3  # type: ignore[import-untyped]
import orjson
import pytest

from detector.state.sqlite import SqliteStateStore
from tests.moto_aws import REGION
from tests.responders.conftest import Iam
from tests.scenario import DEMO

pytestmark = pytest.mark.integration
WAIT_SECONDS = 60.0
KIRO_SESSION = "ses-3cdc3999faa2cd89"


def test_run_revokes_the_incident_session_and_lists_it(moto_iam: Iam, tmp_path: Path) -> None:
    sso = boto3.client("sso-admin", region_name=REGION, endpoint_url=moto_iam.endpoint)
    instance = sso.list_instances()["Instances"][0]["InstanceArn"]
    sso.create_permission_set(Name="AdministratorAccess", InstanceArn=instance)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "trailguard.yaml"
    config.write_text(
        f"""
scopes: {DEMO / "scopes.yaml"}
sources:
  - {{type: files, name: inbox, path: {inbox}, poll_interval_seconds: 0.1, settle_seconds: 0}}
sinks:
  - {{type: jsonl, path: {tmp_path / "out.jsonl"}}}
state: {{store: sqlite, path: {tmp_path / "state.db"}, flush_interval_seconds: 0}}
http: {{port: 0}}
responses:
  enabled: true
  responders:
    - type: revoke-session
      region: {REGION}
      endpoint_url: {moto_iam.endpoint}
      allow_accounts: ["111122223333"]
      allow_roles: ["arn:aws:iam::111122223333:role/aws-reserved/*"]
"""
    )
    (inbox / "incident.jsonl").write_bytes((DEMO / "incident.jsonl").read_bytes())
    log = tmp_path / "run.log"
    command = [sys.executable, "-m", "detector", "run", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    out = tmp_path / "out.jsonl"
    outcome = None
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while outcome is None and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            if out.exists():
                lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
                outcome = next((r for r in lines if r["type"] == "response-outcome"), None)
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT_SECONDS) == 0, log.read_text()[-3000:]
    assert outcome is not None, log.read_text()[-3000:]
    assert (outcome["session_id"], outcome["outcome"]) == (KIRO_SESSION, "applied")
    with SqliteStateStore(tmp_path / "state.db") as store:
        assert [e.outcome for e in store.journal_entries(session_id=KIRO_SESSION)] == [
            "decided",
            "applied",
        ]
    listed = subprocess.run(
        [sys.executable, "-m", "detector", "responses", "list", "--config", str(config)],
        capture_output=True,
        check=True,
    )
    outcomes = [orjson.loads(line)["outcome"] for line in listed.stdout.splitlines()]
    assert outcomes == ["decided", "applied"]
