"""Resource policies that let anyone, or another account, in."""

from __future__ import annotations

from collections.abc import Mapping

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import get, policy_grant
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
}


@RULES.rule(
    "public-resource-policy",
    "s3:PutBucketPolicy sqs:SetQueueAttributes sns:SetTopicAttributes kms:PutKeyPolicy"
    " kms:CreateKey ecr:SetRepositoryPolicy secretsmanager:PutResourcePolicy"
    " glacier:SetVaultAccessPolicy backup:PutBackupVaultAccessPolicy",
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
