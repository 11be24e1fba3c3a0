"""Writes detector/data/demo/incident.jsonl: the December 2025 incident, retold in CloudTrail.

An agent (Kiro) is asked to fix a rounding bug in the Cost Explorer forecast Lambda. It runs
on the engineer's own Identity Center session, so IAM lets it do anything she can. It reads
costs, patches the function, then deletes and recreates the production stack. Around it:
the engineer in the console, a second engineer cleaning up a dev log group, a brokered
Claude Code session that stays inside its scope, a third engineer who hands Kiro another fix
the recommended way (her own AssumeRole into a dedicated agent role, with an agent
SourceIdentity and session tags, bound by its own task scope), and ordinary service traffic.

Deterministic: run it again and the file is byte-for-byte the same.
    python tests/tools/make_demo_scenario.py
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ACCOUNT = "111122223333"
REGION = "us-east-1"
OUT = Path(__file__).resolve().parents[2] / "detector" / "data" / "demo" / "incident.jsonl"
T0 = datetime(2025, 12, 8, 9, 55, 0, tzinfo=UTC)
NS = uuid.UUID("6f1c2b7e-3d4a-4c55-9e61-7a8b9c0d1e2f")

SSO_ROLE = "AWSReservedSSO_AdministratorAccess_5e2b7c1d9a0f4e38"
SSO_ROLE_ID = "AROARBCDEFGHSSOADMIN1"
KIRO_UA = (
    "aws-cli/2.35.24 md/awscrt#0.27.6 ua/2.1 os/linux#6.8.0-49-generic md/arch#x86_64 "
    "lang/python#3.13.7 md/pyimpl#CPython m/AQ,E,Z,b cfg/retry-mode#standard "
    "md/installer#exe md/distrib#ubuntu.24 md/prompt#off md/command#{command}"
)
CONSOLE_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15"

counter = 0


def event_id() -> str:
    global counter
    counter += 1
    return str(uuid.uuid5(NS, str(counter)))


def sso_identity(key: str, created: datetime, person: str = "alice@example.com") -> dict:
    return {
        "type": "AssumedRole",
        "principalId": f"{SSO_ROLE_ID}:{person}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/{person}",
        "accountId": ACCOUNT,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": SSO_ROLE_ID,
                "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{SSO_ROLE}",
                "accountId": ACCOUNT,
                "userName": SSO_ROLE,
            },
            "attributes": {"creationDate": iso(created), "mfaAuthenticated": "false"},
        },
    }


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(
    at: datetime,
    source: str,
    name: str,
    identity: dict,
    *,
    ua: str,
    params: dict | None = None,
    response: dict | None = None,
    read_only: bool | None = None,
    ip: str = "203.0.113.24",
    resources: list | None = None,
    error: tuple[str, str] | None = None,
    console: bool = False,
    category: str = "Management",
) -> dict:
    rec: dict = {
        "eventVersion": "1.11",
        "userIdentity": identity,
        "eventTime": iso(at),
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": params,
        "responseElements": response,
        "requestID": event_id(),
        "eventID": event_id(),
        "readOnly": read_only
        if read_only is not None
        else name.startswith(("Get", "Describe", "List")),
        "eventType": "AwsApiCall",
        "managementEvent": category == "Management",
        "recipientAccountId": ACCOUNT,
        "eventCategory": category,
    }
    if resources:
        rec["resources"] = resources
    if error:
        rec["errorCode"], rec["errorMessage"] = error
    if console:
        rec["sessionCredentialFromConsole"] = "true"
    return rec


def fas(identity: dict, service: str) -> dict:
    """The caller's identity as a service acting on its behalf records it."""
    return {**identity, "invokedBy": service}


def build() -> list[dict]:
    events: list[dict] = []
    t = T0

    def at(minutes: float) -> datetime:
        return t + timedelta(minutes=minutes)

    alice_console = sso_identity("ASIARBCDEFGHALICE0C1", T0 - timedelta(minutes=40))
    kiro = sso_identity("ASIARBCDEFGHALICE0K2", T0 - timedelta(minutes=5))
    bob = {
        "type": "IAMUser",
        "principalId": "AIDARBCDEFGHBOB00001",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/bob",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIARBCDEFGHBOB00001",
        "userName": "bob",
    }
    ingest = {
        "type": "AssumedRole",
        "principalId": "AROARBCDEFGHINGEST01:i-0a1b2c3d4e5f60718",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ce-ingest-role/i-0a1b2c3d4e5f60718",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIARBCDEFGHINGEST01",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROARBCDEFGHINGEST01",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/ce-ingest-role",
                "accountId": ACCOUNT,
                "userName": "ce-ingest-role",
            },
            "attributes": {
                "creationDate": iso(T0 - timedelta(hours=2)),
                "mfaAuthenticated": "false",
            },
            "ec2RoleDelivery": "2.0",
        },
    }
    broker = {
        "type": "AssumedRole",
        "principalId": "AROARBCDEFGHBROKER01:agent-broker",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AgentBroker/agent-broker",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIARBCDEFGHBROKER01",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROARBCDEFGHBROKER01",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/AgentBroker",
                "accountId": ACCOUNT,
                "userName": "AgentBroker",
            },
            "attributes": {
                "creationDate": iso(T0 - timedelta(hours=1)),
                "mfaAuthenticated": "false",
            },
        },
    }
    claude_key = "ASIARBCDEFGHCLAUDE01"
    claude = {
        "type": "AssumedRole",
        "principalId": "AROARBCDEFGHDOCSAG01:agent-claude-7f3e",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AgentDocsRole/agent-claude-7f3e",
        "accountId": ACCOUNT,
        "accessKeyId": claude_key,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROARBCDEFGHDOCSAG01",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/AgentDocsRole",
                "accountId": ACCOUNT,
                "userName": "AgentDocsRole",
            },
            "attributes": {"creationDate": iso(at(1)), "mfaAuthenticated": "false"},
            "sourceIdentity": "agent-claude-7f3e",
        },
    }
    service_ua = "autoscaling.amazonaws.com"
    boto_ua = (
        "Boto3/1.40.11 md/Botocore#1.40.11 ua/2.1 os/linux#6.1.0 md/arch#x86_64 lang/python#3.12.7"
    )

    # Background: the ingest instance reads raw cost data all morning.
    for i in range(12):
        events.append(
            record(
                at(i * 2.5),
                "s3.amazonaws.com",
                "GetObject",
                ingest,
                ua=boto_ua,
                ip="10.20.3.14",
                params={"bucketName": "ce-raw-costs", "key": f"2025/12/08/part-{i:04d}.parquet"},
                category="Data",
                resources=[
                    {
                        "type": "AWS::S3::Object",
                        "ARN": f"arn:aws:s3:::ce-raw-costs/2025/12/08/part-{i:04d}.parquet",
                    },
                    {
                        "accountId": ACCOUNT,
                        "type": "AWS::S3::Bucket",
                        "ARN": "arn:aws:s3:::ce-raw-costs",
                    },
                ],
            )
        )
    # An AWS service doing its own housekeeping.
    events.append(
        {
            **record(
                at(1.5),
                "autoscaling.amazonaws.com",
                "DescribeScalingActivities",
                {"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"},
                ua=service_ua,
                ip=service_ua,
            ),
            "eventType": "AwsServiceEvent",
        }
    )
    # Alice in the console, looking at the forecast stack before handing the fix to Kiro.
    for minutes, source, name, params in [
        (0.5, "cloudformation.amazonaws.com", "DescribeStacks", {"stackName": "ce-prod"}),
        (1.0, "lambda.amazonaws.com", "GetFunction20150331v2", {"functionName": "ce-forecast-api"}),
        (
            2.0,
            "logs.amazonaws.com",
            "FilterLogEvents",
            {"logGroupName": "/aws/lambda/ce-forecast-api"},
        ),
    ]:
        events.append(
            record(
                at(minutes), source, name, alice_console, ua=CONSOLE_UA, params=params, console=True
            )
        )
    # The broker mints a scoped session for a Claude Code docs task (SourceIdentity + tags).
    events.append(
        record(
            at(1),
            "sts.amazonaws.com",
            "AssumeRole",
            broker,
            ua=boto_ua,
            ip="10.20.9.7",
            params={
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/AgentDocsRole",
                "roleSessionName": "agent-claude-7f3e",
                "sourceIdentity": "agent-claude-7f3e",
                "durationSeconds": 3600,
                "tags": [
                    {"key": "agent_session", "value": "7f3e"},
                    {"key": "agent_kind", "value": "claude-code"},
                    {"key": "human", "value": "carol"},
                ],
                "transitiveTagKeys": ["agent_session", "agent_kind", "human"],
            },
            response={
                "credentials": {
                    "accessKeyId": claude_key,
                    "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE",
                    "expiration": "Dec 8, 2025, 11:56:00 AM",
                },
                "assumedRoleUser": {
                    "assumedRoleId": "AROARBCDEFGHDOCSAG01:agent-claude-7f3e",
                    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AgentDocsRole/agent-claude-7f3e",
                },
                "sourceIdentity": "agent-claude-7f3e",
            },
            read_only=False,
            resources=[
                {
                    "accountId": ACCOUNT,
                    "type": "AWS::IAM::Role",
                    "ARN": f"arn:aws:iam::{ACCOUNT}:role/AgentDocsRole",
                }
            ],
        )
    )
    claude_ua = (
        "aws-cli/2.35.24 ua/2.1 os/linux#6.8.0 md/arch#x86_64 lang/python#3.13.7 m/AN,E,Z"
        " md/command#s3.cp"
    )
    for i, page in enumerate(["index.html", "pricing.html", "faq.html"]):
        events.append(
            record(
                at(3 + i * 0.4),
                "s3.amazonaws.com",
                "PutObject",
                claude,
                ua=claude_ua,
                params={"bucketName": "docs-example-com", "key": page},
                category="Data",
                read_only=False,
                resources=[
                    {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::docs-example-com/{page}"},
                    {
                        "accountId": ACCOUNT,
                        "type": "AWS::S3::Bucket",
                        "ARN": "arn:aws:s3:::docs-example-com",
                    },
                ],
            )
        )
    # Dana hands Kiro a second fix the recommended way: she assumes a dedicated agent role
    # for it, stamping the session with an agent SourceIdentity and tags; a scope binds it.
    # Its permissions are the agent role's, not hers: delegated, not inherited.
    dana = sso_identity("ASIARBCDEFGHDANA0001", T0 - timedelta(minutes=20), "dana@example.com")
    delegated_key = "ASIARBCDEFGHKIRODLG1"
    task = "agent-kiro-ce-4833"
    agent_role = f"arn:aws:iam::{ACCOUNT}:role/AgentKiroRole"
    dana_ua = (
        "aws-cli/2.35.24 ua/2.1 os/macos#24.1.0 md/arch#arm64 lang/python#3.13.7 m/E,r,Z"
        " md/command#sts.assume-role"
    )
    events.append(
        record(
            at(5.5),
            "sts.amazonaws.com",
            "AssumeRole",
            dana,
            ua=dana_ua,
            ip="203.0.113.41",
            params={
                "roleArn": agent_role,
                "roleSessionName": task,
                "sourceIdentity": task,
                "durationSeconds": 3600,
                "tags": [
                    {"key": "agent_session", "value": "ce-4833"},
                    {"key": "agent_kind", "value": "kiro"},
                    {"key": "human", "value": "dana@example.com"},
                ],
                "transitiveTagKeys": ["agent_session", "agent_kind", "human"],
            },
            response={
                "credentials": {
                    "accessKeyId": delegated_key,
                    "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLEDANA",
                    "expiration": "Dec 8, 2025, 11:00:30 AM",
                },
                "assumedRoleUser": {
                    "assumedRoleId": f"AROARBCDEFGHKIROAG01:{task}",
                    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AgentKiroRole/{task}",
                },
                "sourceIdentity": task,
            },
            read_only=False,
            resources=[{"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": agent_role}],
        )
    )
    delegated = {
        "type": "AssumedRole",
        "principalId": f"AROARBCDEFGHKIROAG01:{task}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AgentKiroRole/{task}",
        "accountId": ACCOUNT,
        "accessKeyId": delegated_key,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROARBCDEFGHKIROAG01",
                "arn": agent_role,
                "accountId": ACCOUNT,
                "userName": "AgentKiroRole",
            },
            "attributes": {"creationDate": iso(at(5.5)), "mfaAuthenticated": "false"},
            "sourceIdentity": task,
        },
    }
    for minutes, source, name, command, params, read_only in [
        (
            8.2,
            "lambda.amazonaws.com",
            "GetFunction20150331v2",
            "lambda.get-function",
            {"functionName": "ce-budget-alerts"},
            True,
        ),
        (
            8.8,
            "logs.amazonaws.com",
            "FilterLogEvents",
            "logs.filter-log-events",
            {"logGroupName": "/aws/lambda/ce-budget-alerts"},
            True,
        ),
        (
            9.4,
            "lambda.amazonaws.com",
            "UpdateFunctionCode20150331v2",
            "lambda.update-function-code",
            {"functionName": "ce-budget-alerts", "publish": True},
            False,
        ),
    ]:
        events.append(
            record(
                at(minutes),
                source,
                name,
                delegated,
                ua=KIRO_UA.format(command=command),
                ip="203.0.113.41",
                params=params,
                read_only=read_only,
            )
        )

    # Bob tidies up a dev log group: a person, judged by the catalogue alone.
    events.append(
        record(
            at(4),
            "logs.amazonaws.com",
            "DeleteLogGroup",
            bob,
            ua=(
                "aws-cli/2.31.2 ua/2.1 os/macos#24.1.0 md/arch#arm64 lang/python#3.12.6 m/E,n"
                " md/command#logs.delete-log-group"
            ),
            params={"logGroupName": "/dev/bob/scratch"},
            read_only=False,
        )
    )

    # Kiro on Alice's CLI credentials: the task is the forecast rounding bug.
    def kiro_call(
        minutes: float, source: str, name: str, command: str, params: dict | None, **kw: object
    ) -> None:
        events.append(
            record(
                at(minutes),
                source,
                name,
                kiro,
                ua=KIRO_UA.format(command=command),
                params=params,
                **kw,
            )
        )  # type: ignore[arg-type]

    kiro_call(
        7.0,
        "ce.amazonaws.com",
        "GetCostAndUsage",
        "ce.get-cost-and-usage",
        {"timePeriod": {"start": "2025-11-01", "end": "2025-12-01"}, "granularity": "DAILY"},
    )
    kiro_call(
        7.5,
        "ce.amazonaws.com",
        "GetCostForecast",
        "ce.get-cost-forecast",
        {"timePeriod": {"start": "2025-12-08", "end": "2026-01-01"}, "metric": "UNBLENDED_COST"},
    )
    kiro_call(
        8.0,
        "lambda.amazonaws.com",
        "GetFunction20150331v2",
        "lambda.get-function",
        {"functionName": "ce-forecast-api"},
    )
    kiro_call(
        10.5,
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        "lambda.update-function-code",
        {"functionName": "ce-forecast-api", "publish": True},
        read_only=False,
    )
    kiro_call(
        11.0,
        "cloudformation.amazonaws.com",
        "DescribeStacks",
        "cloudformation.describe-stacks",
        {"stackName": "ce-prod"},
    )
    kiro_call(
        11.5,
        "cloudformation.amazonaws.com",
        "DescribeStackResources",
        "cloudformation.describe-stack-resources",
        {"stackName": "ce-prod"},
    )
    # The decision that took the region down: delete the stack to "recreate it cleanly".
    kiro_call(
        12.25,
        "cloudformation.amazonaws.com",
        "DeleteStack",
        "cloudformation.delete-stack",
        {"stackName": "ce-prod"},
        read_only=False,
    )
    cfn = fas(kiro, "cloudformation.amazonaws.com")
    for i, (source, name, params) in enumerate(
        [
            ("lambda.amazonaws.com", "DeleteFunction20150331", {"functionName": "ce-forecast-api"}),
            ("apigateway.amazonaws.com", "DeleteRestApi", {"restApiId": "a1b2c3d4e5"}),
            ("dynamodb.amazonaws.com", "DeleteTable", {"tableName": "ce-forecast-cache"}),
            (
                "logs.amazonaws.com",
                "DeleteLogGroup",
                {"logGroupName": "/aws/lambda/ce-forecast-api"},
            ),
            ("iam.amazonaws.com", "DeleteRole", {"roleName": "ce-forecast-role"}),
        ]
    ):
        events.append(
            record(
                at(12.5 + i * 0.2),
                source,
                name,
                cfn,
                ua="cloudformation.amazonaws.com",
                ip="cloudformation.amazonaws.com",
                params=params,
                read_only=False,
            )
        )
    kiro_call(
        14.0,
        "cloudformation.amazonaws.com",
        "DescribeStacks",
        "cloudformation.describe-stacks",
        {"stackName": "ce-prod"},
    )
    kiro_call(
        15.5,
        "cloudformation.amazonaws.com",
        "CreateStack",
        "cloudformation.create-stack",
        {
            "stackName": "ce-prod",
            "templateURL": "https://ce-templates.s3.amazonaws.com/ce-prod.yaml",
            "capabilities": ["CAPABILITY_NAMED_IAM"],
        },
        read_only=False,
    )
    for i, (source, name, params) in enumerate(
        [
            ("iam.amazonaws.com", "CreateRole", {"roleName": "ce-forecast-role"}),
            ("dynamodb.amazonaws.com", "CreateTable", {"tableName": "ce-forecast-cache"}),
            ("lambda.amazonaws.com", "CreateFunction20150331", {"functionName": "ce-forecast-api"}),
        ]
    ):
        events.append(
            record(
                at(15.8 + i * 0.3),
                source,
                name,
                cfn,
                ua="cloudformation.amazonaws.com",
                ip="cloudformation.amazonaws.com",
                params=params,
                read_only=False,
            )
        )
    # Minutes later the console shows the outage; Alice looks at the stack events.
    events.append(
        record(
            at(19),
            "cloudformation.amazonaws.com",
            "DescribeStackEvents",
            alice_console,
            ua=CONSOLE_UA,
            params={"stackName": "ce-prod"},
            console=True,
        )
    )
    # CloudTrail delivers duplicates: the same DeleteStack record arrives twice.
    delete = next(e for e in events if e["eventName"] == "DeleteStack")
    events.append(dict(delete))
    events.sort(key=lambda e: e["eventTime"])
    return events


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w") as handle:
        for item in build():
            handle.write(json.dumps(item, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
