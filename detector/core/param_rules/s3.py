"""S3: ACLs, Block Public Access, access logging, lifecycle expiry and versioning."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import as_list, bucket, get, is_false, strings
from detector.core.taxonomy import Category

RULES = RuleSet()

_PUBLIC_GROUPS = ("acs.amazonaws.com/groups/global/AllUsers", "/groups/global/AuthenticatedUsers")
_PUBLIC_CANNED = frozenset({"public-read", "public-read-write", "authenticated-read"})


@RULES.rule(
    "public-s3-acl",
    "s3:PutBucketAcl s3:PutObjectAcl s3:PutObject s3:CreateBucket",
    Category.DATA_EXPOSURE,
    0,
    "an S3 ACL grants AllUsers or AuthenticatedUsers",
)
def _public_s3_acl(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    canned = [v for v in as_list(get(params, "x-amz-acl")) if isinstance(v, str)]
    public = sorted(_PUBLIC_CANNED.intersection(v.lower() for v in canned))
    if public:
        return Hit(reason=f"S3 canned ACL {public[0]} makes the resource public")
    for text in strings(params):
        if any(group in text for group in _PUBLIC_GROUPS):
            group = "AllUsers" if "AllUsers" in text else "AuthenticatedUsers"
            return Hit(reason=f"S3 ACL grants the {group} group")
    return None


_BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@RULES.rule(
    "public-access-block-weakened",
    "s3:PutBucketPublicAccessBlock s3:PutAccountPublicAccessBlock",
    Category.DATA_EXPOSURE,
    1,
    "S3 Block Public Access removed or a flag turned off",
)
def _public_access_block(event: CloudTrailEvent) -> Hit | None:
    account_level = "Account" in event.event_name or event.event_source.startswith("s3-control")
    tier = 0 if account_level else None
    scope = "account" if account_level else "bucket"
    if event.event_name.startswith("Delete"):
        return Hit(reason=f"S3 Block Public Access removed for the {scope}", tier=tier)
    config = get(event.request_parameters, "PublicAccessBlockConfiguration")
    off = [flag for flag in _BLOCK_FLAGS if is_false(get(config, flag))]
    if off:
        return Hit(reason=f"S3 Block Public Access {', '.join(off)} turned off", tier=tier)
    return None


@RULES.rule(
    "s3-access-logging-disabled",
    "s3:PutBucketLogging",
    Category.DEFENSE_EVASION,
    1,
    "S3 server access logging turned off",
)
def _s3_logging_disabled(event: CloudTrailEvent) -> Hit | None:
    status = get(event.request_parameters, "BucketLoggingStatus")
    if isinstance(status, Mapping) and get(status, "LoggingEnabled") is None:
        return Hit(reason=f"S3 access logging turned off for {bucket(event)}")
    return None


@RULES.rule(
    "s3-lifecycle-expiration",
    "s3:PutLifecycleConfiguration",
    Category.DESTROY,
    1,
    "an enabled lifecycle rule that expires objects (T1485.001)",
)
def _s3_lifecycle_expiration(event: CloudTrailEvent) -> Hit | None:
    config = get(event.request_parameters, "LifecycleConfiguration")
    for rule in as_list(get(config, "Rule")):
        if str(get(rule, "Status")).lower() == "disabled":
            continue
        if _expires_objects(get(rule, "Expiration")) or get(rule, "NoncurrentVersionExpiration"):
            return Hit(
                reason=f"lifecycle rule {get(rule, 'ID')} expires objects in {bucket(event)}"
            )
    return None


def _expires_objects(expiration: Any) -> bool:
    """An Expiration that sets only ExpiredObjectDeleteMarker removes delete markers left with
    no versions behind them (S3 refuses it alongside Days or Date), so it deletes no data."""
    if expiration is None:
        return False
    if isinstance(expiration, Mapping) and get(expiration, "ExpiredObjectDeleteMarker") is not None:
        return get(expiration, "Days") is not None or get(expiration, "Date") is not None
    return True


@RULES.rule(
    "s3-versioning-suspended",
    "s3:PutBucketVersioning",
    Category.DESTROY,
    1,
    "bucket versioning suspended",
)
def _s3_versioning_suspended(event: CloudTrailEvent) -> Hit | None:
    status = get(event.request_parameters, "VersioningConfiguration", "Status")
    if str(status).lower() == "suspended":
        return Hit(reason=f"versioning suspended on bucket {bucket(event)}")
    return None
