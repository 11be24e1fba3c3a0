"""Synthetic role sessions for the session model's tests: ordinary builds and one that is not.

Role `ci-deployer` runs build sessions: a few dozen calls, ten seconds apart, to S3,
CloudFormation and STS in one region, each on its own role session (its own access key and
session name). The unusual session uses the same role to walk through many services in
several regions, fast. Records go through the real pipeline (attribution, catalogue), so the
contexts are the ones a model sees in replay and in the service.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from detector.baseline.protocol import TrainingEvent
from detector.baseline.train import judge_records
from detector.config import Settings
from detector.core.pipeline import Pipeline
from detector.wiring import build_pipeline
from tests.conftest import make_event

ACCOUNT = "111122223333"
ROLE = "ci-deployer"
START = datetime(2025, 11, 1, 8, 0, tzinfo=UTC)

USUAL: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("sts.amazonaws.com", "GetCallerIdentity", None),
    ("s3.amazonaws.com", "GetObject", {"bucketName": "ci-artifacts", "key": "build.zip"}),
    ("cloudformation.amazonaws.com", "DescribeStacks", {"stackName": "web-app"}),
    ("s3.amazonaws.com", "PutObject", {"bucketName": "ci-artifacts", "key": "out.zip"}),
    ("cloudformation.amazonaws.com", "DescribeStackEvents", {"stackName": "web-app"}),
)
RECON: tuple[tuple[str, str], ...] = (
    ("iam.amazonaws.com", "ListUsers"),
    ("iam.amazonaws.com", "ListRoles"),
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "DescribeSecurityGroups"),
    ("rds.amazonaws.com", "DescribeDBInstances"),
    ("lambda.amazonaws.com", "ListFunctions20150331"),
    ("kms.amazonaws.com", "ListKeys"),
    ("dynamodb.amazonaws.com", "ListTables"),
    ("sns.amazonaws.com", "ListTopics"),
    ("sqs.amazonaws.com", "ListQueues"),
    ("ecr.amazonaws.com", "DescribeRepositories"),
    ("eks.amazonaws.com", "ListClusters"),
    ("organizations.amazonaws.com", "DescribeOrganization"),
    ("s3.amazonaws.com", "ListBuckets"),
)
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1")


def identity(index: int, role: str = ROLE) -> dict[str, Any]:
    """The AssumedRole identity of session number `index` of `role`."""
    name = f"build-{index}"
    role_id = "AROACIDEPLOYER000001"
    return {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{name}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{name}",
        "accountId": ACCOUNT,
        "accessKeyId": f"ASIACI{index:014d}",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                "accountId": ACCOUNT,
                "userName": role,
            },
            "attributes": {"creationDate": _stamp(START), "mfaAuthenticated": "false"},
        },
    }


def usual_session(index: int, start: datetime, calls: int | None = None) -> list[dict[str, Any]]:
    """An ordinary build: 12 to 40 calls (seeded by `index`), ten seconds apart."""
    rng = random.Random(index)
    count = calls if calls is not None else rng.randint(12, 40)
    records = []
    for n in range(count):
        source, name, params = USUAL[rng.randrange(len(USUAL))] if n else USUAL[0]
        records.append(
            _record(index, n, start + timedelta(seconds=10 * n), source, name, params=params)
        )
    return records


def unusual_session(index: int, start: datetime, calls: int = 64) -> list[dict[str, Any]]:
    """The same role listing its way through many services and regions, a call a second."""
    records = []
    for n in range(calls):
        source, name = RECON[n % len(RECON)]
        region = REGIONS[n % len(REGIONS)]
        records.append(_record(index, n, start + timedelta(seconds=n), source, name, region=region))
    return records


def history(sessions: int = 30) -> list[dict[str, Any]]:
    """`sessions` ordinary builds, one an hour."""
    records: list[dict[str, Any]] = []
    for index in range(sessions):
        records.extend(usual_session(index, START + timedelta(hours=index)))
    return records


def pipeline() -> Pipeline:
    return build_pipeline(Settings())


def training_events(records: Iterable[Mapping[str, Any]]) -> list[TrainingEvent]:
    """The records as the pipeline judged them, in order."""
    return judge_records(records, Settings())


def _record(
    index: int,
    n: int,
    at: datetime,
    source: str,
    name: str,
    *,
    region: str = "us-east-1",
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return make_event(
        eventID=f"s{index:04d}-{n:04d}",
        eventTime=_stamp(at),
        eventSource=source,
        eventName=name,
        awsRegion=region,
        userIdentity=identity(index),
        requestParameters=params,
        readOnly=name.startswith(("Get", "Describe", "List")),
    )


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
