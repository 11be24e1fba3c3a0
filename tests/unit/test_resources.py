"""Resource ARNs of an event: from `resources[]` and rebuilt from request parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from detector.core.parse import parse_record
from detector.core.resources import extract_resources, partition_for
from tests.conftest import make_event, read_jsonl

DEMO = Path(__file__).resolve().parents[2] / "detector" / "data" / "demo" / "incident.jsonl"

ACCOUNT = "111122223333"  # make_event's recipient account


def resources_of(
    source: str,
    name: str,
    params: Any = None,
    *,
    response: Any = None,
    region: str = "us-east-1",
    **extra: Any,
) -> tuple[str, ...]:
    record = make_event(
        eventSource=source,
        eventName=name,
        awsRegion=region,
        requestParameters=params,
        responseElements=response,
        **extra,
    )
    return extract_resources(parse_record(record))


# --- resources[] -----------------------------------------------------------------------------


def test_resources_array_comes_first_and_duplicates_are_dropped() -> None:
    listed = [
        {"ARN": "arn:aws:s3:::logs", "accountId": ACCOUNT, "type": "AWS::S3::Bucket"},
        {"arn": "arn:aws:kms:us-east-1:111122223333:key/k-1", "type": "AWS::KMS::Key"},
    ]
    found = resources_of(
        "s3.amazonaws.com",
        "PutObject",
        {"bucketName": "logs", "key": "a/b.txt"},
        resources=listed,
    )
    assert found == (
        "arn:aws:s3:::logs",
        "arn:aws:kms:us-east-1:111122223333:key/k-1",
        "arn:aws:s3:::logs/a/b.txt",
    )


def test_resources_array_is_used_for_services_without_an_extractor() -> None:
    arn = "arn:aws:states:us-east-1:111122223333:stateMachine:nightly"
    found = resources_of(
        "states.amazonaws.com", "StartExecution", {"stateMachineArn": arn}, resources=[{"ARN": arn}]
    )
    assert found == (arn,)


def test_no_resources_for_an_unknown_service_without_resources_array() -> None:
    assert resources_of("states.amazonaws.com", "StartExecution", {"name": "x"}) == ()


# --- per service -----------------------------------------------------------------------------

CASES = [
    pytest.param(
        "s3.amazonaws.com",
        "GetObject",
        {"bucketName": "reports", "key": "2025/q4.csv"},
        None,
        ("arn:aws:s3:::reports", "arn:aws:s3:::reports/2025/q4.csv"),
        id="s3-object",
    ),
    pytest.param(
        "s3.amazonaws.com",
        "DeleteBucket",
        {"bucketName": "reports"},
        None,
        ("arn:aws:s3:::reports",),
        id="s3-bucket",
    ),
    pytest.param(
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        {"functionName": "resize"},
        None,
        ("arn:aws:lambda:us-east-1:111122223333:function:resize",),
        id="lambda-name",
    ),
    pytest.param(
        "lambda.amazonaws.com",
        "DeleteFunction20150331",
        {"functionName": "arn:aws:lambda:eu-west-1:444455556666:function:resize"},
        None,
        ("arn:aws:lambda:eu-west-1:444455556666:function:resize",),
        id="lambda-arn-kept",
    ),
    pytest.param(
        "cloudformation.amazonaws.com",
        "CreateStack",
        {"stackName": "prod"},
        {"stackId": "arn:aws:cloudformation:us-east-1:111122223333:stack/prod/4f6a-11ee"},
        (
            "arn:aws:cloudformation:us-east-1:111122223333:stack/prod",
            "arn:aws:cloudformation:us-east-1:111122223333:stack/prod/4f6a-11ee",
        ),
        id="cloudformation-name-and-response-id",
    ),
    pytest.param(
        "ec2.amazonaws.com",
        "TerminateInstances",
        {"instancesSet": {"items": [{"instanceId": "i-0aa"}, {"instanceId": "i-0bb"}]}},
        None,
        (
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0aa",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0bb",
        ),
        id="ec2-instances-set",
    ),
    pytest.param(
        "ec2.amazonaws.com",
        "RunInstances",
        {"instanceType": "t3.micro"},
        {"instancesSet": {"items": [{"instanceId": "i-0new"}]}},
        ("arn:aws:ec2:us-east-1:111122223333:instance/i-0new",),
        id="ec2-run-instances-response",
    ),
    pytest.param(
        "ec2.amazonaws.com",
        "ModifySnapshotAttribute",
        {"snapshotId": "snap-01"},
        None,
        # Snapshot and image ARNs carry no account.
        ("arn:aws:ec2:us-east-1::snapshot/snap-01",),
        id="ec2-snapshot",
    ),
    pytest.param(
        "ec2.amazonaws.com",
        "ModifyImageAttribute",
        {"imageId": "ami-01"},
        None,
        ("arn:aws:ec2:us-east-1::image/ami-01",),
        id="ec2-image",
    ),
    pytest.param(
        "ec2.amazonaws.com",
        "DeleteVolume",
        {"volumeId": "vol-01"},
        None,
        ("arn:aws:ec2:us-east-1:111122223333:volume/vol-01",),
        id="ec2-volume",
    ),
    pytest.param(
        "ec2.amazonaws.com",
        "AuthorizeSecurityGroupIngress",
        {"groupId": "sg-01"},
        None,
        ("arn:aws:ec2:us-east-1:111122223333:security-group/sg-01",),
        id="ec2-security-group",
    ),
    pytest.param(
        "iam.amazonaws.com",
        "AttachRolePolicy",
        {"roleName": "deploy", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
        None,
        # IAM is global: no region in its ARNs.
        ("arn:aws:iam::111122223333:role/deploy", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
        id="iam-role-and-policy",
    ),
    pytest.param(
        "iam.amazonaws.com",
        "AddUserToGroup",
        {"userName": "dana", "groupName": "admins"},
        None,
        ("arn:aws:iam::111122223333:user/dana", "arn:aws:iam::111122223333:group/admins"),
        id="iam-user-and-group",
    ),
    pytest.param(
        "iam.amazonaws.com",
        "DeleteInstanceProfile",
        {"instanceProfileName": "web"},
        None,
        ("arn:aws:iam::111122223333:instance-profile/web",),
        id="iam-instance-profile",
    ),
    pytest.param(
        "rds.amazonaws.com",
        "DeleteDBInstance",
        {"dBInstanceIdentifier": "orders"},
        None,
        ("arn:aws:rds:us-east-1:111122223333:db:orders",),
        id="rds-instance",
    ),
    pytest.param(
        "rds.amazonaws.com",
        "ModifyDBClusterSnapshotAttribute",
        {"dBClusterSnapshotIdentifier": "nightly", "dBClusterIdentifier": "orders"},
        None,
        (
            "arn:aws:rds:us-east-1:111122223333:cluster:orders",
            "arn:aws:rds:us-east-1:111122223333:cluster-snapshot:nightly",
        ),
        id="rds-cluster-and-snapshot",
    ),
    pytest.param(
        "dynamodb.amazonaws.com",
        "DeleteTable",
        {"tableName": "sessions"},
        None,
        ("arn:aws:dynamodb:us-east-1:111122223333:table/sessions",),
        id="dynamodb",
    ),
    pytest.param(
        "kms.amazonaws.com",
        "ScheduleKeyDeletion",
        {"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"},
        None,
        ("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",),
        id="kms-key-id",
    ),
    pytest.param(
        "kms.amazonaws.com",
        "Decrypt",
        {"keyId": "alias/app"},
        None,
        ("arn:aws:kms:us-east-1:111122223333:alias/app",),
        id="kms-alias-as-key",
    ),
    pytest.param(
        "kms.amazonaws.com",
        "CreateAlias",
        {"aliasName": "alias/app", "targetKeyId": "k-1"},
        None,
        (
            "arn:aws:kms:us-east-1:111122223333:key/k-1",
            "arn:aws:kms:us-east-1:111122223333:alias/app",
        ),
        id="kms-alias-and-target",
    ),
    pytest.param(
        "cloudtrail.amazonaws.com",
        "StopLogging",
        {"name": "org-trail"},
        None,
        ("arn:aws:cloudtrail:us-east-1:111122223333:trail/org-trail",),
        id="cloudtrail",
    ),
    pytest.param(
        "sqs.amazonaws.com",
        "SetQueueAttributes",
        {"queueUrl": "https://sqs.eu-west-1.amazonaws.com/444455556666/jobs"},
        None,
        # The queue's region and account come from its URL, not from the caller.
        ("arn:aws:sqs:eu-west-1:444455556666:jobs",),
        id="sqs-queue-url",
    ),
    pytest.param(
        "sqs.amazonaws.com",
        "DeleteQueue",
        {"queueUrl": "https://queue.amazonaws.com/111122223333/legacy"},
        None,
        ("arn:aws:sqs:us-east-1:111122223333:legacy",),
        id="sqs-legacy-host",
    ),
    pytest.param(
        "sqs.amazonaws.com",
        "CreateQueue",
        {"queueName": "jobs"},
        None,
        ("arn:aws:sqs:us-east-1:111122223333:jobs",),
        id="sqs-queue-name",
    ),
    pytest.param(
        "sns.amazonaws.com",
        "SetTopicAttributes",
        {"topicArn": "arn:aws:sns:us-east-1:111122223333:alerts"},
        None,
        ("arn:aws:sns:us-east-1:111122223333:alerts",),
        id="sns",
    ),
    pytest.param(
        "secretsmanager.amazonaws.com",
        "GetSecretValue",
        {"secretId": "prod/db"},
        None,
        ("arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db",),
        id="secretsmanager-name",
    ),
    pytest.param(
        "secretsmanager.amazonaws.com",
        "CreateSecret",
        {"name": "prod/api"},
        None,
        ("arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/api",),
        id="secretsmanager-create",
    ),
    pytest.param(
        "ecr.amazonaws.com",
        "SetRepositoryPolicy",
        {"repositoryName": "web", "registryId": "444455556666"},
        None,
        ("arn:aws:ecr:us-east-1:444455556666:repository/web",),
        id="ecr-registry",
    ),
    pytest.param(
        "ssm.amazonaws.com",
        "GetParameters",
        {"names": ["/prod/db/password", "plain"], "withDecryption": True},
        None,
        (
            "arn:aws:ssm:us-east-1:111122223333:parameter/prod/db/password",
            "arn:aws:ssm:us-east-1:111122223333:parameter/plain",
        ),
        id="ssm-parameters",
    ),
    pytest.param(
        "ssm.amazonaws.com",
        "SendCommand",
        {"documentName": "AWS-RunShellScript", "instanceIds": ["i-0aa"]},
        None,
        ("arn:aws:ec2:us-east-1:111122223333:instance/i-0aa",),
        id="ssm-send-command-targets",
    ),
    pytest.param(
        "ssm.amazonaws.com",
        "StartSession",
        {"target": "i-0bb"},
        None,
        ("arn:aws:ec2:us-east-1:111122223333:instance/i-0bb",),
        id="ssm-session-target",
    ),
    pytest.param(
        "ssm.amazonaws.com",
        "DeleteDocument",
        {"name": "bootstrap"},
        None,
        ("arn:aws:ssm:us-east-1:111122223333:document/bootstrap",),
        id="ssm-document",
    ),
    pytest.param(
        "logs.amazonaws.com",
        "DeleteLogStream",
        {"logGroupName": "/aws/lambda/resize", "logStreamName": "2025/12/08"},
        None,
        (
            "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/resize",
            "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/resize"
            ":log-stream:2025/12/08",
        ),
        id="logs",
    ),
    pytest.param(
        "eks.amazonaws.com",
        "DeleteCluster",
        {"name": "prod"},
        None,
        ("arn:aws:eks:us-east-1:111122223333:cluster/prod",),
        id="eks",
    ),
    pytest.param(
        "eks.amazonaws.com",
        "DeleteNodegroup",
        {"clusterName": "prod", "nodegroupName": "workers"},
        None,
        ("arn:aws:eks:us-east-1:111122223333:cluster/prod",),
        id="eks-by-cluster-name",
    ),
]


@pytest.mark.parametrize(("source", "name", "params", "response", "expected"), CASES)
def test_resources_from_request_parameters(
    source: str, name: str, params: Any, response: Any, expected: tuple[str, ...]
) -> None:
    assert resources_of(source, name, params, response=response) == expected


def test_ssm_names_are_parameters_only_for_parameter_operations() -> None:
    # DescribeInstanceInformation has no parameter names; a "name" filter is not a parameter.
    assert resources_of("ssm.amazonaws.com", "DescribeInstanceInformation", {"name": "x"}) == ()


def test_secret_name_is_read_only_when_creating() -> None:
    # Only CreateSecret names its secret by "name"; elsewhere the key is not a secret id.
    assert resources_of("secretsmanager.amazonaws.com", "ListSecrets", {"name": "x"}) == ()


def test_sns_values_that_are_not_arns_are_ignored() -> None:
    assert resources_of("sns.amazonaws.com", "Publish", {"targetArn": "alerts"}) == ()


# --- partitions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-east-1", "aws"),
        ("eu-central-2", "aws"),
        ("cn-north-1", "aws-cn"),
        ("cn-northwest-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-gov-east-1", "aws-us-gov"),
    ],
)
def test_partition_for_region(region: str, partition: str) -> None:
    assert partition_for(region) == partition


@pytest.mark.parametrize(
    ("region", "source", "name", "params", "expected"),
    [
        ("cn-north-1", "s3.amazonaws.com", "GetObject", {"bucketName": "b", "key": "k"},
         ("arn:aws-cn:s3:::b", "arn:aws-cn:s3:::b/k")),
        ("cn-north-1", "lambda.amazonaws.com", "Invoke", {"functionName": "f"},
         ("arn:aws-cn:lambda:cn-north-1:111122223333:function:f",)),
        ("us-gov-west-1", "iam.amazonaws.com", "DeleteRole", {"roleName": "r"},
         ("arn:aws-us-gov:iam::111122223333:role/r",)),
        ("us-gov-west-1", "ec2.amazonaws.com", "DeleteSnapshot", {"snapshotId": "snap-1"},
         ("arn:aws-us-gov:ec2:us-gov-west-1::snapshot/snap-1",)),
        ("us-gov-east-1", "dynamodb.amazonaws.com", "DeleteTable", {"tableName": "t"},
         ("arn:aws-us-gov:dynamodb:us-gov-east-1:111122223333:table/t",)),
    ],
)  # fmt: skip
def test_arns_take_the_partition_of_the_event_region(
    region: str, source: str, name: str, params: dict[str, Any], expected: tuple[str, ...]
) -> None:
    assert resources_of(source, name, params, region=region) == expected


# --- odd shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "params"),
    [
        ("s3.amazonaws.com", {"bucketName": ["not", "a", "string"]}),
        ("lambda.amazonaws.com", {"functionName": 5}),
        ("ec2.amazonaws.com", {"instancesSet": "i-0aa", "instanceIds": [None, 3]}),
        ("ec2.amazonaws.com", {"instancesSet": {"items": ["i-0aa", 7]}}),
        ("iam.amazonaws.com", {"roleName": {"nested": True}}),
        ("sqs.amazonaws.com", {"queueUrl": "not a url"}),
        ("kms.amazonaws.com", {"keyId": ""}),
        ("logs.amazonaws.com", {"logStreamName": "no group"}),
        ("ssm.amazonaws.com", {"target": "not-an-instance"}),
        ("s3.amazonaws.com", "HIDDEN_DUE_TO_SECURITY_REASONS"),
        ("apigateway.amazonaws.com", {"restApiId": ["a1"], "apiId": 7}),
    ],
)
def test_unexpected_parameter_shapes_yield_nothing_and_never_raise(
    source: str, params: Any
) -> None:
    assert resources_of(source, "SomeOperation", params) == ()


# --- API Gateway: path ARNs without an account ------------------------------------------------

APIGW = "arn:aws:apigateway:us-east-1::"


@pytest.mark.parametrize(
    ("name", "params", "response", "path"),
    [
        ("DeleteRestApi", {"restApiId": "a1b2c3d4e5"}, None, "/restapis/a1b2c3d4e5"),
        (
            "DeleteStage",
            {"restApiId": "a1b2c3d4e5", "stageName": "prod"},
            None,
            "/restapis/a1b2c3d4e5/stages/prod",
        ),
        (
            "DeleteMethod",
            {"restApiId": "a1", "resourceId": "r9", "httpMethod": "POST"},
            None,
            "/restapis/a1/resources/r9/methods/POST",
        ),
        (
            "DeleteResource",
            {"restApiId": "a1", "resourceId": "r9"},
            None,
            "/restapis/a1/resources/r9",
        ),
        ("CreateRestApi", {"name": "shop"}, {"id": "n3w"}, "/restapis/n3w"),
        ("DeleteApi", {"apiId": "h77"}, None, "/apis/h77"),
        ("DeleteRoute", {"apiId": "h77", "routeId": "x1"}, None, "/apis/h77/routes/x1"),
        ("DeleteApiKey", {"apiKey": "k1"}, None, "/apikeys/k1"),
        (
            "DeleteDomainName",
            {"domainName": "api.example.com"},
            None,
            "/domainnames/api.example.com",
        ),
    ],
)
def test_api_gateway_resources_are_paths(
    name: str, params: dict[str, Any], response: Any, path: str
) -> None:
    assert resources_of("apigateway.amazonaws.com", name, params, response=response) == (
        APIGW + path,
    )


def test_the_demo_delete_rest_api_names_its_api() -> None:
    events = [r for r in read_jsonl(DEMO) if r["eventSource"] == "apigateway.amazonaws.com"]
    assert events, "the demo scenario deletes a REST API"
    for record in events:
        assert extract_resources(parse_record(record)) == (
            f"{APIGW}/restapis/{record['requestParameters']['restApiId']}",
        )
