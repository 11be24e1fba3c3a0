"""AWS CLI command lines → IAM actions, resource ARNs and region, and the s3 and IaC tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from detector.gate import iac, s3_commands
from detector.gate.awscli import AwsCall, parse_call
from detector.gate.cli_index import IndexLookup
from detector.gate.unwrap import invocations

AT = datetime(2026, 3, 2, tzinfo=UTC)
LOOKUP = IndexLookup()
ACCOUNT = "111122223333"


def call(line: str, env: dict[str, str] | None = None) -> AwsCall:
    (run,) = invocations(line)
    merged = {**({"AWS_REGION": "us-east-1"} if env is None else env), **dict(run.env)}
    return parse_call(run.words, env=merged, lookup=LOOKUP, account=ACCOUNT, at=AT,
                      appended=run.appended)  # fmt: skip


@pytest.mark.parametrize(
    ("line", "actions", "resources"),
    [
        ("aws cloudformation delete-stack --stack-name prod",
         ("cloudformation:DeleteStack",),
         ("arn:aws:cloudformation:us-east-1:111122223333:stack/prod",)),
        ("aws s3api delete-bucket --bucket logs", ("s3:DeleteBucket",), ("arn:aws:s3:::logs",)),
        ("aws s3api list-buckets", ("s3:ListAllMyBuckets",), ()),
        ("aws s3api put-object --bucket b --key k/x.txt --body x.txt", ("s3:PutObject",),
         ("arn:aws:s3:::b", "arn:aws:s3:::b/k/x.txt")),
        ("aws lambda invoke --function-name f out.json", ("lambda:InvokeFunction",),
         ("arn:aws:lambda:us-east-1:111122223333:function:f",)),
        ("aws s3api get-object --bucket b --key k out.txt", ("s3:GetObject",),
         ("arn:aws:s3:::b", "arn:aws:s3:::b/k")),
        ("aws lambda delete-function --function-name f", ("lambda:DeleteFunction",),
         ("arn:aws:lambda:us-east-1:111122223333:function:f",)),
        ("aws rds delete-db-cluster --db-cluster-identifier c1 --skip-final-snapshot",
         ("rds:DeleteDBCluster",), ("arn:aws:rds:us-east-1:111122223333:cluster:c1",)),
        ("aws dynamodb delete-table --table-name t", ("dynamodb:DeleteTable",),
         ("arn:aws:dynamodb:us-east-1:111122223333:table/t",)),
        ("aws ec2 terminate-instances --instance-ids i-1 i-2", ("ec2:TerminateInstances",),
         ("arn:aws:ec2:us-east-1:111122223333:instance/i-1",
          "arn:aws:ec2:us-east-1:111122223333:instance/i-2")),
        ("aws iam delete-role --role-name r", ("iam:DeleteRole",),
         ("arn:aws:iam::111122223333:role/r",)),
        ("aws cloudwatch delete-alarms --alarm-names a", ("cloudwatch:DeleteAlarms",), ()),
        ("aws configservice describe-config-rules", ("config:DescribeConfigRules",), ()),
        ("aws deploy list-applications", ("codedeploy:ListApplications",), ()),
        ("aws kms schedule-key-deletion --key-id 1234", ("kms:ScheduleKeyDeletion",),
         ("arn:aws:kms:us-east-1:111122223333:key/1234",)),
        ("aws eks delete-cluster --name c", ("eks:DeleteCluster",),
         ("arn:aws:eks:us-east-1:111122223333:cluster/c",)),
        ("aws ecr get-login-password", ("ecr:GetAuthorizationToken",), ()),
    ],
)  # fmt: skip
def test_operations_resolve_to_iam_actions_and_arns(
    line: str, actions: tuple[str, ...], resources: tuple[str, ...]
) -> None:
    found = call(line)
    assert found.known, found.problem
    assert found.actions == actions
    assert found.resources == resources


def test_region_comes_from_the_option_then_the_line_then_the_process() -> None:
    assert call("aws --region eu-west-1 s3api list-buckets").region == "eu-west-1"
    assert call("aws s3api list-buckets --region=eu-west-2").region == "eu-west-2"
    assert call("AWS_REGION=ap-south-1 aws s3api list-buckets").region == "ap-south-1"
    assert call("aws s3api list-buckets", {"AWS_DEFAULT_REGION": "sa-east-1"}).region == (
        "sa-east-1"
    )
    assert call("aws s3api list-buckets", {}).region == ""
    endpoint = call("aws s3api list-buckets --endpoint-url https://s3.eu-north-1.amazonaws.com", {})
    assert endpoint.region == "eu-north-1"
    assert endpoint.endpoint_url == "https://s3.eu-north-1.amazonaws.com"
    assert call("aws s3api list-buckets --region $R").region_dynamic


def test_profile_is_recorded() -> None:
    assert call("aws --profile prod s3 ls").profile == "prod"
    assert call("AWS_PROFILE=dev aws s3 ls").profile == "dev"


def test_unknown_and_local_commands() -> None:
    assert not call("aws cloudformation nuke-it").known
    assert not call("aws nosuch thing").known
    assert call("aws").local and call("aws --help").local
    assert call("aws help").local and call("aws s3 help").local
    assert call("aws configure set region us-east-1").local
    assert call("aws sts get-caller-identity").local


@pytest.mark.parametrize(
    ("command", "paths", "flags", "actions"),
    [
        ("ls", [], set(), ("s3:ListAllMyBuckets",)),
        ("ls", ["s3://b/p/"], set(), ("s3:ListBucket",)),
        ("cp", ["f", "s3://b/k"], set(), ("s3:PutObject",)),
        ("cp", ["s3://b/k", "f"], set(), ("s3:GetObject",)),
        ("cp", ["s3://a/k", "s3://b/k"], set(), ("s3:GetObject", "s3:PutObject")),
        ("cp", ["s3://a/p", "d"], {"--recursive"}, ("s3:ListBucket", "s3:GetObject")),
        ("mv", ["s3://a/k", "f"], set(), ("s3:GetObject", "s3:DeleteObject")),
        ("rm", ["s3://b/k"], set(), ("s3:DeleteObject",)),
        ("rm", ["s3://b/p"], {"--recursive"}, ("s3:ListBucket", "s3:DeleteObject")),
        ("sync", ["d", "s3://b/p"], set(), ("s3:ListBucket", "s3:PutObject")),
        ("sync", ["d", "s3://b/p"], {"--delete"},
         ("s3:ListBucket", "s3:PutObject", "s3:DeleteObject")),
        ("mb", ["s3://b"], set(), ("s3:CreateBucket",)),
        ("rb", ["s3://b"], set(), ("s3:DeleteBucket",)),
        ("rb", ["s3://b"], {"--force"}, ("s3:ListBucket", "s3:DeleteObject", "s3:DeleteBucket")),
        ("presign", ["s3://b/k"], set(), ("s3:GetObject",)),
        ("website", ["s3://b"], set(), ("s3:PutBucketWebsite",)),
    ],
)  # fmt: skip
def test_the_s3_table(command: str, paths: list[str], flags: set[str], actions: tuple[str, ...]):
    found = s3_commands.plan(command, paths, frozenset(flags))
    assert found is not None
    assert found.actions == actions


def test_s3_resources_cover_prefixes_when_recursive() -> None:
    found = call("aws s3 rm s3://logs/2025/ --recursive")
    assert found.resources == ("arn:aws:s3:::logs", "arn:aws:s3:::logs/2025/*")
    flagged = call("aws s3 cp --recursive ./dist s3://site/")
    assert flagged.actions == ("s3:ListBucket", "s3:PutObject")
    assert s3_commands.plan("frobnicate", [], frozenset()) is None


@pytest.mark.parametrize(
    ("argv", "destroys"),
    [
        (["terraform", "destroy"], ("*:Delete*",)),
        (["terraform", "apply", "-destroy"], ("*:Delete*",)),
        (["terraform", "apply"], ()),
        (["terragrunt", "run-all", "destroy"], ("*:Delete*",)),
        (["pulumi", "down"], ("*:Delete*",)),
        (["cdk", "destroy", "S"], ("cloudformation:DeleteStack",)),
        (["cdk", "deploy"], ()),
        (["sam", "delete"], ("cloudformation:DeleteStack",)),
        (["sls", "remove"], ("cloudformation:DeleteStack",)),
        (["eksctl", "delete", "nodegroup"], ("eks:DeleteNodegroup", "cloudformation:DeleteStack")),
        (["eksctl", "delete", "addon"], ("eks:Delete*", "cloudformation:DeleteStack")),
        (["eksctl", "get", "cluster"], ()),
        (["copilot", "env", "delete"], ("cloudformation:DeleteStack",)),
        (["copilot", "deploy"], ()),
    ],
)  # fmt: skip
def test_the_iac_table(argv: list[str], destroys: tuple[str, ...]) -> None:
    tool = iac.tool_name(argv[0])
    assert tool is not None
    assert iac.classify(tool, argv).destroys == destroys
