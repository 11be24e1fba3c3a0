"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import copy
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

# Fixtures for the AWS APIs (moto server), available to every test module.
pytest_plugins = ["tests.moto_aws"]

DATA = Path(__file__).parent / "data"
CLOUDTRAIL = DATA / "cloudtrail"
DATASETS = (
    "invictus_aws_dataset",
    "stratus_detonation_logs",
    "otrf_ec2_proxy_s3_exfiltration",
    "zmallen_stratus_2022",
)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)


def make_event(**overrides: Any) -> dict[str, Any]:
    """A valid CloudTrail record (an IAM user listing buckets); override any top-level key."""
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventID": "11111111-2222-3333-4444-555555555555",
        "eventTime": "2025-12-08T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.17.0 ua/2.1 os/linux md/arch#x86_64 lang/python#3.12.6 m/E,n",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEUSER00001",
            "arn": "arn:aws:iam::111122223333:user/dana",
            "accountId": "111122223333",
            "accessKeyId": "AKIAEXAMPLEUSER00001",
            "userName": "dana",
        },
        "requestParameters": None,
        "responseElements": None,
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }
    record.update(copy.deepcopy(overrides))
    return record


@pytest.fixture
def event_factory() -> Any:
    return make_event


@pytest.fixture(autouse=True)
def _collector_sees_everything_after_each_test() -> Iterator[None]:
    """Services in tests freeze what survives their batches (detector/heap.py); a process
    that runs a whole suite of them hands it back to the collector after each test."""
    yield
    gc.unfreeze()
