"""Real pipelines with real state in them, for snapshot round trips and size measurements."""

from __future__ import annotations

from typing import Any

from detector.config import Settings
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline
from detector.wiring import build_pipeline
from tests.conftest import make_event

AGENT_UA = (
    "aws-cli/2.17.0 md/awscrt#0.20 ua/2.1 os/linux lang/python#3.12.6 MCPClient/Claude-Code#2.0.14"
)


def _identity(n: int) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": f"AIDAEXAMPLEUSER{n:05d}",
        "arn": f"arn:aws:iam::111122223333:user/dev{n}",
        "accountId": "111122223333",
        "accessKeyId": f"AKIAEXAMPLEUSER{n:05d}",
        "userName": f"dev{n}",
    }


def session_events(n: int) -> list[dict[str, Any]]:
    """One session's worth of records: a read, a destructive call and a burst of denials,
    so sessions, decisions, bursts and the eventID window all hold something."""
    base = {"userIdentity": _identity(n), "userAgent": AGENT_UA}
    records = [
        make_event(eventID=f"{n}-list", eventTime="2025-12-08T10:00:00Z", **base),
        make_event(
            eventID=f"{n}-delete",
            eventTime="2025-12-08T10:00:05Z",
            eventName="DeleteBucket",
            readOnly=False,
            requestParameters={"bucketName": f"bucket-{n}"},
            **base,
        ),
    ]
    records.extend(
        make_event(
            eventID=f"{n}-denied-{i}",
            eventTime=f"2025-12-08T10:00:{10 + i:02d}Z",
            eventName="GetBucketPolicy",
            errorCode="AccessDenied",
            errorMessage="not authorized",
            requestParameters={"bucketName": f"secret-{i}"},
            **base,
        )
        for i in range(6)
    )
    return records


def pipeline_with_sessions(count: int) -> Pipeline:
    pipeline = build_pipeline(Settings())
    for n in range(count):
        for record in session_events(n):
            pipeline.process(parse_record(record))
    return pipeline
