"""Synthetic CloudTrail history of one account, deterministic, for baselines in use.

Fourteen days of three principals doing their usual work, then what the tests replay:

  ci-deployer   a role (one session a day): reads stacks, uploads artifacts, updates code
  etl           a role: reads and lists the data bucket
  ops-admin     an IAM user (a person): lists instances, deletes scratch buckets (tier 0)
                and roles (tier 1) every day: habits the catalogue rates high and medium
  report-builder  a role that first appears after the history (`new_role_events`)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

ACCOUNT = "111122223333"
START = datetime(2025, 11, 20, 8, 0, tzinfo=UTC)
DAYS = 14
AFTER = START + timedelta(days=DAYS)

Call = tuple[str, str, dict[str, Any] | None, bool]  # source, name, parameters, read-only
CI: tuple[Call, ...] = (
    ("cloudformation.amazonaws.com", "DescribeStacks", None, True),
    ("s3.amazonaws.com", "PutObject", {"bucketName": "ci-artifacts", "key": "build.zip"}, False),
    ("lambda.amazonaws.com", "GetFunction20150331v2", {"functionName": "api"}, True),
)
ETL: tuple[Call, ...] = (
    ("s3.amazonaws.com", "GetObject", {"bucketName": "data-lake", "key": "in/part"}, True),
    ("s3.amazonaws.com", "ListObjects", {"bucketName": "data-lake"}, True),
)
OPS: tuple[Call, ...] = (
    ("ec2.amazonaws.com", "DescribeInstances", None, True),
    ("ec2.amazonaws.com", "DescribeInstances", None, True),
    ("s3.amazonaws.com", "DeleteBucket", {"bucketName": "scratch-bucket"}, False),
    ("iam.amazonaws.com", "DeleteRole", {"roleName": "scratch-role"}, False),
)


def role_identity(role: str, session: str, key: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE{role.upper().replace('-', '')[:9]}:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": f"AROAEXAMPLE{role.upper().replace('-', '')[:9]}",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                "accountId": ACCOUNT,
                "userName": role,
            },
            "attributes": {"creationDate": "2025-11-20T08:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def user_identity(name: str) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": f"AIDAEXAMPLE{name.upper().replace('-', '')[:9]}",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "accountId": ACCOUNT,
        "accessKeyId": f"AKIAEXAMPLE{name.upper().replace('-', '')[:9]}",
        "userName": name,
    }


def record(
    event_id: str, at: datetime, identity: dict[str, Any], call: Call, **extra: Any
) -> dict[str, Any]:
    source, name, parameters, read_only = call
    return {
        "eventVersion": "1.08",
        "eventID": event_id,
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.17.0 ua/2.1 os/linux md/arch#x86_64 lang/python#3.12.6 m/E,n",
        "userIdentity": identity,
        "requestParameters": parameters,
        "responseElements": None,
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
        **extra,
    }


def history(per_day: int = 40) -> list[dict[str, Any]]:
    """DAYS days of the three principals' usual work, in event-time order."""
    records: list[dict[str, Any]] = []
    for day in range(DAYS):
        base = START + timedelta(days=day)
        ci = role_identity("ci-deployer", f"build-{day}", f"ASIAEXAMPLECI{day:07d}")
        etl = role_identity("etl", f"run-{day}", f"ASIAEXAMPLEET{day:07d}")
        ops = user_identity("ops-admin")
        for index in range(per_day):
            at = base + timedelta(minutes=5 * index)
            records.append(record(f"h-{day}-ci-{index}", at, ci, CI[index % len(CI)]))
            records.append(record(f"h-{day}-etl-{index}", at, etl, ETL[index % len(ETL)]))
            if index < 2 * len(OPS):
                records.append(record(f"h-{day}-ops-{index}", at, ops, OPS[index % len(OPS)]))
    return sorted(records, key=lambda r: r["eventTime"])


def new_role_events(
    prefix: str, count: int, call: Call, *, start: datetime
) -> list[dict[str, Any]]:
    """`count` calls of a role the history never saw, one session, a minute apart."""
    identity = role_identity("report-builder", "reports", "ASIAEXAMPLEREPORTS01")
    return [
        record(f"{prefix}-{i}", start + timedelta(minutes=i), identity, call) for i in range(count)
    ]
