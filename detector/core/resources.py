"""The resource ARNs one CloudTrail event touched.

CloudTrail fills `resources[]` only for some services; for the common ones the ARNs are
rebuilt from request parameters. Request parameters are arbitrary JSON, so every lookup
checks its type and skips what is not the expected shape: this module never raises on data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from detector.core.actions import service_prefix
from detector.core.events import CloudTrailEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class ArnContext:
    """Partition, region and account to build ARNs with, taken from the event."""

    partition: str
    region: str
    account: str

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )


def partition_for(region: str) -> str:
    """The ARN partition a region belongs to."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def extract_resources(event: CloudTrailEvent) -> tuple[str, ...]:
    """ARNs from `resources[]` first, then derived from request parameters; de-duplicated."""
    seen: dict[str, None] = {ref.arn: None for ref in event.resources}
    extractor = _EXTRACTORS.get(service_prefix(event.event_source))
    if extractor is not None:
        region = event.aws_region
        context = ArnContext(
            partition=partition_for(region), region=region, account=event.account_id or ""
        )
        for arn in extractor(event, event.request_parameters, context):
            seen.setdefault(arn, None)
    return tuple(seen)


# --- helpers -------------------------------------------------------------------------------


def _str(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    return value if isinstance(value, str) and value else None


def _strs(params: Mapping[str, Any], *keys: str) -> Iterator[str]:
    """Each key's value when it is a non-empty string, or each string in it when a list."""
    for key in keys:
        value = params.get(key)
        if isinstance(value, str) and value:
            yield value
        elif isinstance(value, list):
            yield from (item for item in value if isinstance(item, str) and item)


def _items(value: Any) -> Iterator[Mapping[str, Any]]:
    """EC2's {"items": [...]} wrappers, or a bare list, yielding only objects."""
    if isinstance(value, Mapping):
        value = value.get("items")
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, Mapping))


def _named(names: Iterable[str], context: ArnContext, service: str, kind: str) -> Iterator[str]:
    """An ARN passed as a name is kept; a plain name becomes `arn:…:{service}:…:{kind}{name}`."""
    for name in names:
        yield name if name.startswith("arn:") else context.arn(service, f"{kind}{name}")


Extractor = Callable[[CloudTrailEvent, Mapping[str, Any], ArnContext], Iterable[str]]


# --- per service ---------------------------------------------------------------------------


def _s3(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    bucket = _str(params, "bucketName")
    if bucket is None:
        return
    bucket_arn = f"arn:{ctx.partition}:s3:::{bucket}"
    yield bucket_arn
    key = _str(params, "key")
    if key is not None:
        yield f"{bucket_arn}/{key}"


def _lambda(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    yield from _named(_strs(params, "functionName"), ctx, "lambda", "function:")


def _cloudformation(
    event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext
) -> Iterator[str]:
    # A stack ARN ends in a generated id that a name-only request does not carry.
    yield from _named(_strs(params, "stackId", "stackName"), ctx, "cloudformation", "stack/")
    response = event.response_elements
    stack_id = _str(response, "stackId")
    if stack_id is not None and stack_id.startswith("arn:"):
        yield stack_id


_EC2_KEYS = (
    ("instanceId", "instance/", True),
    ("volumeId", "volume/", True),
    ("snapshotId", "snapshot/", False),  # snapshot and image ARNs have no account field
    ("imageId", "image/", False),
    ("groupId", "security-group/", True),
)


def _ec2(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    instance_ids = [
        value
        for source in (params, event.response_elements)
        for item in _items(source.get("instancesSet"))
        if isinstance(value := item.get("instanceId"), str) and value
    ]
    instance_ids.extend(_strs(params, "instanceIds"))
    for instance_id in instance_ids:
        yield ctx.arn("ec2", f"instance/{instance_id}")
    for key, kind, with_account in _EC2_KEYS:
        for value in _strs(params, key):
            yield ctx.arn("ec2", f"{kind}{value}", account=with_account)


def _iam(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    for key, kind in (
        ("roleName", "role/"),
        ("userName", "user/"),
        ("groupName", "group/"),
        ("instanceProfileName", "instance-profile/"),
    ):
        for name in _strs(params, key):
            yield ctx.arn("iam", f"{kind}{name}", region=False)
    yield from _strs(params, "policyArn")


_RDS_KEYS = (
    ("dBInstanceIdentifier", "db:"),
    ("dBSnapshotIdentifier", "snapshot:"),
    ("dBClusterIdentifier", "cluster:"),
    ("dBClusterSnapshotIdentifier", "cluster-snapshot:"),
)


def _rds(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    for key, kind in _RDS_KEYS:
        yield from _named(_strs(params, key), ctx, "rds", kind)


def _dynamodb(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    yield from _named(_strs(params, "tableName"), ctx, "dynamodb", "table/")


def _kms(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    for key_id in _strs(params, "keyId", "targetKeyId"):
        if key_id.startswith("arn:"):
            yield key_id
        elif key_id.startswith("alias/"):
            yield ctx.arn("kms", key_id)
        else:
            yield ctx.arn("kms", f"key/{key_id}")
    for alias in _strs(params, "aliasName"):
        yield ctx.arn("kms", alias if alias.startswith("alias/") else f"alias/{alias}")


def _cloudtrail(
    event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext
) -> Iterator[str]:
    yield from _named(_strs(params, "name", "trailName"), ctx, "cloudtrail", "trail/")


_QUEUE_URL = re.compile(r"^https?://([^/]+)/(\d{12})/([^/?#]+)")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")


def _sqs(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    for url in _strs(params, "queueUrl"):
        match = _QUEUE_URL.match(url)
        if match is None:
            continue
        host, account, name = match.groups()
        # sqs.us-east-1.amazonaws.com, us-east-1.queue.amazonaws.com or a legacy global host.
        region = next((label for label in host.split(".") if _REGION.match(label)), ctx.region)
        yield f"arn:{ctx.partition}:sqs:{region}:{account}:{name}"
    for name in _strs(params, "queueName"):
        yield ctx.arn("sqs", name)


def _sns(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    yield from (arn for arn in _strs(params, "topicArn", "targetArn") if arn.startswith("arn:"))


def _secretsmanager(
    event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext
) -> Iterator[str]:
    # A secret's full ARN ends in a random suffix; a name-only request yields the bare name.
    names = list(_strs(params, "secretId"))
    if event.event_name == "CreateSecret":
        names.extend(_strs(params, "name"))
    yield from _named(names, ctx, "secretsmanager", "secret:")


def _ecr(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    registry = _str(params, "registryId") or ctx.account
    for name in _strs(params, "repositoryName"):
        yield f"arn:{ctx.partition}:ecr:{ctx.region}:{registry}:repository/{name}"


def _ssm(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    if "Parameter" in event.event_name:
        for name in _strs(params, "name", "names"):
            if name.startswith("arn:"):
                yield name
            else:
                yield ctx.arn("ssm", f"parameter/{name.lstrip('/')}")
    elif "Document" in event.event_name:
        yield from _named(_strs(params, "name"), ctx, "ssm", "document/")
    for instance_id in _strs(params, "instanceId", "instanceIds", "target"):
        if instance_id.startswith(("i-", "mi-")):
            yield ctx.arn("ec2", f"instance/{instance_id}")


def _logs(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    group = _str(params, "logGroupName")
    if group is None:
        return
    yield ctx.arn("logs", f"log-group:{group}")
    stream = _str(params, "logStreamName")
    if stream is not None:
        yield ctx.arn("logs", f"log-group:{group}:log-stream:{stream}")


def _eks(event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext) -> Iterator[str]:
    yield from _named(_strs(params, "name", "clusterName"), ctx, "eks", "cluster/")


# API Gateway ARNs are paths with no account: arn:aws:apigateway:us-east-1::/restapis/a1b2/...
# (request parameter, path segment) of the resources below an API.
_REST_API_CHILDREN = (
    ("stageName", "stages"),
    ("deploymentId", "deployments"),
    ("authorizerId", "authorizers"),
    ("modelName", "models"),
)
_HTTP_API_CHILDREN = (
    ("stageName", "stages"),
    ("routeId", "routes"),
    ("integrationId", "integrations"),
    ("deploymentId", "deployments"),
    ("authorizerId", "authorizers"),
)
_APIGATEWAY_TOP = (
    ("apiKey", "apikeys"),
    ("usagePlanId", "usageplans"),
    ("domainName", "domainnames"),
    ("vpcLinkId", "vpclinks"),
)


def _apigateway(
    event: CloudTrailEvent, params: Mapping[str, Any], ctx: ArnContext
) -> Iterator[str]:
    """The most specific resource the request names: IAM authorises API Gateway calls on it."""
    path = _apigateway_path(event, params)
    if path is not None:
        yield f"arn:{ctx.partition}:apigateway:{ctx.region}::{path}"


def _apigateway_path(event: CloudTrailEvent, params: Mapping[str, Any]) -> str | None:
    rest_api = _str(params, "restApiId")
    if rest_api is None and event.event_name == "CreateRestApi":
        rest_api = _str(event.response_elements, "id")
    if rest_api is not None:
        base = f"/restapis/{rest_api}"
        resource = _str(params, "resourceId")
        if resource is not None:
            method = _str(params, "httpMethod")
            path = f"{base}/resources/{resource}"
            return f"{path}/methods/{method}" if method else path
        for key, segment in _REST_API_CHILDREN:
            value = _str(params, key)
            if value is not None:
                return f"{base}/{segment}/{value}"
        return base
    http_api = _str(params, "apiId")
    if http_api is None and event.event_name == "CreateApi":
        http_api = _str(event.response_elements, "apiId")
    if http_api is not None:
        for key, segment in _HTTP_API_CHILDREN:
            value = _str(params, key)
            if value is not None:
                return f"/apis/{http_api}/{segment}/{value}"
        return f"/apis/{http_api}"
    for key, segment in _APIGATEWAY_TOP:
        value = _str(params, key)
        if value is not None:
            return f"/{segment}/{value}"
    return None


_EXTRACTORS: Mapping[str, Extractor] = {
    "apigateway": _apigateway,
    "s3": _s3,
    "lambda": _lambda,
    "cloudformation": _cloudformation,
    "ec2": _ec2,
    "iam": _iam,
    "rds": _rds,
    "dynamodb": _dynamodb,
    "kms": _kms,
    "cloudtrail": _cloudtrail,
    "sqs": _sqs,
    "sns": _sns,
    "secretsmanager": _secretsmanager,
    "ecr": _ecr,
    "ssm": _ssm,
    "logs": _logs,
    "eks": _eks,
}
