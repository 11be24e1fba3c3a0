"""Resource policies and permissions that let anyone, or another account, in."""

from __future__ import annotations

from collections.abc import Mapping

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import (
    account_of,
    as_list,
    find_key,
    get,
    json_object,
    policy_grant,
)
from detector.core.taxonomy import Category

RULES = RuleSet()

# Where each action carries its policy document.
_POLICY_PATHS: Mapping[str, tuple[str, ...]] = {
    "PutBucketPolicy": ("bucketPolicy",),
    "SetQueueAttributes": ("attributes", "Policy"),
    "PutKeyPolicy": ("policy",),
    "CreateKey": ("policy",),
    "SetRepositoryPolicy": ("policyText",),
    "PutResourcePolicy": ("resourcePolicy",),
    "SetVaultAccessPolicy": ("policy", "policy"),
    "PutBackupVaultAccessPolicy": ("policy",),
    "PutFileSystemPolicy": ("policy",),
    "PutRegistryPolicy": ("policyText",),
    # OpenSearch and its Elasticsearch-era API take the domain's access policy as a string.
    "CreateDomain": ("accessPolicies",),
    "UpdateDomainConfig": ("accessPolicies",),
    "CreateElasticsearchDomain": ("accessPolicies",),
    "UpdateElasticsearchDomainConfig": ("accessPolicies",),
}


@RULES.rule(
    "public-resource-policy",
    "s3:PutBucketPolicy sqs:SetQueueAttributes sns:SetTopicAttributes kms:PutKeyPolicy"
    " kms:CreateKey ecr:SetRepositoryPolicy secretsmanager:PutResourcePolicy"
    " glacier:SetVaultAccessPolicy backup:PutBackupVaultAccessPolicy"
    " elasticfilesystem:PutFileSystemPolicy ecr:PutRegistryPolicy cloudtrail:PutResourcePolicy"
    " es:CreateDomain es:UpdateDomainConfig es:CreateElasticsearchDomain"
    " es:UpdateElasticsearchDomainConfig",
    Category.DATA_EXPOSURE,
    0,
    "a resource policy grants '*' or another account",
)
def _public_resource_policy(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    if event.event_name == "SetTopicAttributes":
        if str(get(params, "attributeName")).lower() != "policy":
            return None
        document = get(params, "attributeValue")
    else:
        path = _POLICY_PATHS.get(event.event_name)
        document = get(params, *path) if path else None
    reason = policy_grant(document, event.account_id, what="resource policy")
    return Hit(reason=reason) if reason else None


@RULES.rule(
    "public-api-policy",
    "apigateway:POST apigateway:PATCH apigateway:UpdateRestApiPolicy",
    Category.DATA_EXPOSURE,
    0,
    "a REST API resource policy grants '*' or another account",
)
def _public_api_policy(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    if event.event_name == "CreateRestApi":
        document = get(params, "policy")
    elif event.event_name == "UpdateRestApi":
        # The policy arrives as a JSON-patch operation on the path /policy.
        operations = as_list(find_key(params, "patchOperations"))
        document = next(
            (
                get(op, "value")
                for op in operations
                if str(get(op, "path")) == "/policy"
                and str(get(op, "op")).lower() in ("add", "replace")
            ),
            None,
        )
    else:
        return None
    reason = policy_grant(document, event.account_id, what="REST API resource policy")
    return Hit(reason=reason) if reason else None


@RULES.rule(
    "foreign-account-permission",
    "sns:AddPermission sqs:AddPermission",
    Category.DATA_EXPOSURE,
    0,
    "a topic or queue permission for '*' or another account",
)
def _foreign_account_permission(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    accounts = as_list(get(params, "AWSAccountIds") or get(params, "AWSAccountId"))
    for account in accounts:
        if account == "*":
            return Hit(reason="permission granted to every AWS account ('*')")
        owner = account_of(str(account))
        if owner and event.account_id and owner != event.account_id:
            return Hit(reason=f"permission granted to account {owner}")
    return None


@RULES.rule(
    "public-access-point",
    "s3:PutAccessPointPolicy s3:PutMultiRegionAccessPointPolicy"
    " s3:PutAccessPointPolicyForObjectLambda s3:CreateAccessPoint s3:CreateMultiRegionAccessPoint",
    Category.DATA_EXPOSURE,
    0,
    "an access point policy grants '*' or another account, or its public access block is off",
)
def _public_access_point(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    if event.event_name.startswith("Put"):
        document = find_key(params, "Policy")
        if json_object(document) is None:
            return None
        reason = policy_grant(document, event.account_id, what="access point policy")
        return Hit(reason=reason) if reason else None
    # A new access point blocks public access unless the request turns a flag off.
    block = find_key(params, "PublicAccessBlockConfiguration") or find_key(
        params, "PublicAccessBlock"
    )
    off = [flag for flag in _ACCESS_POINT_FLAGS if str(get(block, flag)).lower() == "false"]
    if off:
        return Hit(reason=f"access point created with {', '.join(off)} off", tier=1)
    return None


_ACCESS_POINT_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)
