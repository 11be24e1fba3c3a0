"""Synthetic CloudTrail history for baseline tests: role sessions doing their usual work.

Deterministic (seeded), so thresholds and evidence text are the same on every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detector.baseline.protocol import TrainingEvent
from detector.baseline.train import judge_records
from detector.config import Settings
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline, StepResult

ACCOUNT = "111122223333"
START = datetime(2025, 3, 3, tzinfo=UTC)
CI_ADDRESS = "203.0.113.10"
DEPLOYER = "ci-deployer"
DEPLOYER_WORK: tuple[tuple[str, dict[str, Any]], ...] = (
    ("sts:GetCallerIdentity", {}),
    ("s3:GetObject", {"bucketName": "artifacts", "key": "build.zip"}),
    ("s3:PutObject", {"bucketName": "artifacts", "key": "build.zip"}),
    ("cloudformation:DescribeStacks", {"stackName": "web"}),
    ("cloudformation:UpdateStack", {"stackName": "web"}),
    ("ecr:GetAuthorizationToken", {}),
)
ADMIN = "platform-admin"
ADMIN_WORK: tuple[tuple[str, dict[str, Any]], ...] = (
    ("iam:ListUsers", {}),
    ("iam:GetUser", {"userName": "alice"}),
    ("ec2:DescribeInstances", {}),
)


def call(
    role: str,
    session: str,
    action: str,
    at: datetime,
    *,
    params: dict[str, Any] | None = None,
    address: str = CI_ADDRESS,
    region: str = "eu-west-1",
    error: str | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """One CloudTrail record of an assumed-role session of `role` in ACCOUNT."""
    service, name = action.split(":", 1)
    key = "ASIA" + hashlib.sha256(f"{role}/{session}".encode()).hexdigest()[:16].upper()
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventID": hashlib.sha256(f"{session}/{action}/{at.isoformat()}".encode()).hexdigest(),
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "eventType": "AwsApiCall",
        "awsRegion": region,
        "sourceIPAddress": address,
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
        "recipientAccountId": ACCOUNT,
        "readOnly": name.startswith(("Get", "List", "Describe")),
        "requestParameters": params or None,
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE{role.upper().replace('-', '')}:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
            "accountId": ACCOUNT,
            "accessKeyId": key,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": f"AROAEXAMPLE{role.upper().replace('-', '')}",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                    "accountId": ACCOUNT,
                    "userName": role,
                },
                "attributes": {
                    "creationDate": (issued or at).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "mfaAuthenticated": "false",
                },
            },
        },
    }
    if error is not None:
        record["errorCode"] = error
        record["errorMessage"] = "synthetic"
    return record


def history(days: int = 14, *, seed: int = 7) -> list[dict[str, Any]]:
    """`days` of work: one ci-deployer session a day running its pipeline a few times during
    working hours, and one platform-admin session a day, which twice ran an instance."""
    rng = np.random.default_rng(seed)
    records: list[dict[str, Any]] = []
    for day in range(days):
        morning = START + timedelta(days=day, hours=9)
        session = f"{DEPLOYER}-run-{day}"
        for run in range(int(rng.integers(5, 9))):
            at = morning + timedelta(minutes=int(rng.integers(0, 8 * 60)), seconds=run)
            for step, (action, params) in enumerate(DEPLOYER_WORK):
                records.append(
                    call(DEPLOYER, session, action, at + timedelta(seconds=step), params=params,
                         issued=morning)
                )  # fmt: skip
        admin = f"{ADMIN}-{day}"
        for index in range(10):
            action, params = ADMIN_WORK[index % len(ADMIN_WORK)]
            at = morning + timedelta(hours=1, minutes=3 * index)
            records.append(call(ADMIN, admin, action, at, params=params, address="198.51.100.7"))
        if day in (3, 9):
            at = morning + timedelta(hours=2)
            records.append(call(ADMIN, admin, "ec2:RunInstances", at, address="198.51.100.7"))
    return sorted(records, key=lambda r: str(r["eventTime"]))


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def training_events(records: Iterable[dict[str, Any]]) -> list[TrainingEvent]:
    """Every record as a TrainingEvent (no cut-off: the caller chooses)."""
    return judge_records(records, Settings())


def run(pipeline: Pipeline, records: Iterable[dict[str, Any]]) -> Iterator[StepResult]:
    for record in records:
        yield pipeline.process(parse_record(record))
