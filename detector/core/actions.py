"""CloudTrail (eventSource, eventName) → the IAM actions that authorised the call.

eventName is the API operation, which usually but not always equals the IAM action. The
differences live here as data: service prefixes that differ from the endpoint host, operation
renames, version suffixes, and sign-in events that no IAM action authorises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from detector.core.events import CloudTrailEvent

# Endpoint host label → IAM service prefix, where they differ.
SOURCE_PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        "monitoring": "cloudwatch",  # CloudWatch metrics and alarms
        "email": "ses",  # SES classic endpoint
        "servicecatalog-appregistry": "servicecatalog",  # AppRegistry uses servicecatalog:*
        "tagging": "tag",  # Resource Groups Tagging API
        "billingconsole": "aws-portal",  # legacy billing console events
        "runtime.sagemaker": "sagemaker",
        "bedrock-runtime": "bedrock",
        "bedrock-agent": "bedrock",
        "bedrock-agent-runtime": "bedrock",
        "streams.dynamodb": "dynamodb",
        "api.ecr": "ecr",
        "models.lex": "lex",
        "runtime.lex": "lex",
        "portal.sso": "sso",
        "data.iot": "iot",
        "s3-control": "s3",
        "cloudcontrolapi": "cloudformation",  # Cloud Control API is authorised as cloudformation:*
    }
)

_HOST_SUFFIXES = (".amazonaws.com.cn", ".amazonaws.com", ".api.aws")

# Operation → IAM actions where the name differs. Keys are (service prefix, eventName).
RENAMES: Mapping[tuple[str, str], tuple[str, ...]] = MappingProxyType(
    {
        # Console and SDK list buckets; IAM checks the account-wide list permission.
        ("s3", "ListBuckets"): ("s3:ListAllMyBuckets",),
        # The batch delete is authorised per key by the single-object permission.
        ("s3", "DeleteObjects"): ("s3:DeleteObject",),
        # Listing keys is ListBucket in IAM, whatever the API version.
        ("s3", "ListObjects"): ("s3:ListBucket",),
        ("s3", "ListObjectsV2"): ("s3:ListBucket",),
        ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
        # HEAD requests need the same permission as the matching GET.
        ("s3", "HeadObject"): ("s3:GetObject",),
        ("s3", "HeadBucket"): ("s3:ListBucket",),
        # A server-side copy reads the source and writes the destination.
        ("s3", "CopyObject"): ("s3:GetObject", "s3:PutObject"),
        ("s3", "UploadPartCopy"): ("s3:GetObject", "s3:PutObject"),
        # Multipart steps are all authorised by PutObject.
        ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
        ("s3", "UploadPart"): ("s3:PutObject",),
        ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
        ("s3", "ListMultipartUploads"): ("s3:ListBucketMultipartUploads",),
        ("s3", "ListParts"): ("s3:ListMultipartUploadParts",),
        # S3 Select reads the object.
        ("s3", "SelectObjectContent"): ("s3:GetObject",),
        # Bucket sub-resources: IAM names the configuration, not the bucket operation,
        # and deleting a configuration needs the Put permission.
        ("s3", "GetBucketLifecycle"): ("s3:GetLifecycleConfiguration",),
        ("s3", "GetBucketLifecycleConfiguration"): ("s3:GetLifecycleConfiguration",),
        ("s3", "PutBucketLifecycle"): ("s3:PutLifecycleConfiguration",),
        ("s3", "PutBucketLifecycleConfiguration"): ("s3:PutLifecycleConfiguration",),
        ("s3", "DeleteBucketLifecycle"): ("s3:PutLifecycleConfiguration",),
        ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
        ("s3", "PutBucketEncryption"): ("s3:PutEncryptionConfiguration",),
        ("s3", "DeleteBucketEncryption"): ("s3:PutEncryptionConfiguration",),
        ("s3", "GetBucketReplication"): ("s3:GetReplicationConfiguration",),
        ("s3", "PutBucketReplication"): ("s3:PutReplicationConfiguration",),
        ("s3", "DeleteBucketReplication"): ("s3:PutReplicationConfiguration",),
        ("s3", "PutBucketCors"): ("s3:PutBucketCORS",),
        ("s3", "DeleteBucketCors"): ("s3:PutBucketCORS",),
        ("s3", "DeleteBucketTagging"): ("s3:PutBucketTagging",),
        ("s3", "DeleteBucketOwnershipControls"): ("s3:PutBucketOwnershipControls",),
        ("s3", "GetBucketAccelerateConfiguration"): ("s3:GetAccelerateConfiguration",),
        ("s3", "PutBucketAccelerateConfiguration"): ("s3:PutAccelerateConfiguration",),
        ("s3", "PutObjectLockConfiguration"): ("s3:PutBucketObjectLockConfiguration",),
        ("s3", "GetObjectLockConfiguration"): ("s3:GetBucketObjectLockConfiguration",),
        ("s3", "GetBucketNotificationConfiguration"): ("s3:GetBucketNotification",),
        ("s3", "PutBucketNotificationConfiguration"): ("s3:PutBucketNotification",),
        ("s3", "GetBucketInventoryConfiguration"): ("s3:GetInventoryConfiguration",),
        ("s3", "ListBucketInventoryConfigurations"): ("s3:GetInventoryConfiguration",),
        ("s3", "PutBucketInventoryConfiguration"): ("s3:PutInventoryConfiguration",),
        ("s3", "DeleteBucketInventoryConfiguration"): ("s3:PutInventoryConfiguration",),
        ("s3", "GetBucketMetricsConfiguration"): ("s3:GetMetricsConfiguration",),
        ("s3", "ListBucketMetricsConfigurations"): ("s3:GetMetricsConfiguration",),
        ("s3", "PutBucketMetricsConfiguration"): ("s3:PutMetricsConfiguration",),
        ("s3", "DeleteBucketMetricsConfiguration"): ("s3:PutMetricsConfiguration",),
        ("s3", "GetBucketAnalyticsConfiguration"): ("s3:GetAnalyticsConfiguration",),
        ("s3", "ListBucketAnalyticsConfigurations"): ("s3:GetAnalyticsConfiguration",),
        ("s3", "PutBucketAnalyticsConfiguration"): ("s3:PutAnalyticsConfiguration",),
        ("s3", "DeleteBucketAnalyticsConfiguration"): ("s3:PutAnalyticsConfiguration",),
        ("s3", "GetBucketIntelligentTieringConfiguration"): (
            "s3:GetIntelligentTieringConfiguration",
        ),
        ("s3", "ListBucketIntelligentTieringConfigurations"): (
            "s3:GetIntelligentTieringConfiguration",
        ),
        ("s3", "PutBucketIntelligentTieringConfiguration"): (
            "s3:PutIntelligentTieringConfiguration",
        ),
        ("s3", "DeleteBucketIntelligentTieringConfiguration"): (
            "s3:PutIntelligentTieringConfiguration",
        ),
        # Block Public Access: the S3 API calls both levels *PublicAccessBlock; removing
        # the block needs the Put permission of the matching level.
        ("s3", "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
        ("s3", "PutPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
        ("s3", "DeletePublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
        ("s3", "DeleteBucketPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
        ("s3", "DeleteAccountPublicAccessBlock"): ("s3:PutAccountPublicAccessBlock",),
        # The console's Storage Lens dashboard loads through an internal operation.
        ("s3", "GetStorageLensDashboardDataInternal"): ("s3:GetStorageLensDashboard",),
        # Lambda's synchronous invoke is logged as "Invoke".
        ("lambda", "Invoke"): ("lambda:InvokeFunction",),
        ("lambda", "InvokeWithResponseStream"): ("lambda:InvokeFunction",),
        # KMS re-encryption needs permission on both keys.
        ("kms", "ReEncrypt"): ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
        # Bedrock's Converse API is authorised by the model invocation permissions.
        ("bedrock", "Converse"): ("bedrock:InvokeModel",),
        ("bedrock", "ConverseStream"): ("bedrock:InvokeModelWithResponseStream",),
    }
)

# Sign-in, console and service-notification events that no IAM action authorises.
NON_IAM_EVENTS: frozenset[str] = frozenset(
    {
        "ConsoleLogin",  # console sign-in (signin.amazonaws.com)
        "ConsoleLogout",
        "CheckMfa",  # MFA step of a console sign-in
        "AwsConsoleSignIn",  # the eventType, sometimes seen as a name in exports
        "AwsConsoleAction",
        "AwsServiceEvent",
        "SwitchRole",  # console role switching
        "ExitRole",
        "RenewRole",
        "GetSigninToken",  # federation endpoint token for console access
        "CredentialChallenge",  # sign-in credential checks
        "CredentialVerification",
        "UserAuthentication",
        "PasswordUpdated",
        "PasswordRecoveryRequested",
        "PasswordRecoveryCompleted",
        "GetRoleCredentials",  # IAM Identity Center portal, authorised by an SSO token
        "ListAccountRoles",
        "Federate",
        "Logout",
        "SharedSnapshotVolumeCreated",  # EC2 notices to the account a snapshot was shared with
        "SharedSnapshotCopyInitiated",
        "StartSecretVersionDelete",  # Secrets Manager notices about its own housekeeping
        "EndSecretVersionDelete",
        "RotationStarted",
        "RotationSucceeded",
        "RotationFailed",
        "RotationAbandoned",
    }
)

# CloudTrail event types that record something other than an authorised API call.
NON_IAM_EVENT_TYPES: frozenset[str] = frozenset(
    {"AwsConsoleSignIn", "AwsConsoleAction", "AwsServiceEvent"}
)

# API versions some services append to eventName.
VERSION_SUFFIXES: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {
        "lambda": re.compile(r"\d{8}(v\d+)?$"),  # UpdateFunctionCode20150331v2
        "cloudfront": re.compile(r"\d{4}_\d{2}_\d{2}$"),  # UpdateDistribution2020_05_31
    }
)

# API Gateway authorises its management API by HTTP method on the resource path; the
# operations below are the ones that have a named IAM action of their own instead.
_APIGATEWAY_NAMED = frozenset(
    {
        "AddCertificateToDomain",
        "CreateAccessAssociation",
        "RejectAccessAssociation",
        "RemoveCertificateFromDomain",
        "SetWebACL",
        "UpdateDomainNamePolicy",
        "UpdateDomainNameManagementPolicy",
        "UpdateRestApiPolicy",
    }
)
_APIGATEWAY_METHODS = (
    (("Get",), "GET"),
    (("Create", "Import", "Generate", "Test", "Flush"), "POST"),
    (("Update",), "PATCH"),
    (("Put", "Reimport", "Tag"), "PUT"),
    (("Delete", "Untag"), "DELETE"),
)
_APIGATEWAY_NAMED_MARKERS = ("Portal", "ProductPage", "ProductRestEndpointPage", "RoutingRule")


@lru_cache(maxsize=1024)
def service_prefix(event_source: str) -> str:
    """The IAM service prefix for an eventSource: "monitoring.amazonaws.com" → "cloudwatch"."""
    host = event_source.strip().lower()
    for suffix in _HOST_SUFFIXES:
        if host.endswith(suffix):
            host = host[: -len(suffix)]
            break
    if host in SOURCE_PREFIXES:
        return SOURCE_PREFIXES[host]
    # "streams.dynamodb"-style hosts put the service last.
    label = host.rsplit(".", 1)[-1]
    return SOURCE_PREFIXES.get(label, label)


def strip_version(prefix: str, event_name: str) -> str:
    """eventName without the API version some services append (Lambda, CloudFront)."""
    pattern = VERSION_SUFFIXES.get(prefix)
    if pattern is None:
        return event_name
    stripped = pattern.sub("", event_name)
    return stripped or event_name


@lru_cache(maxsize=16384)
def resolve_actions(event_source: str, event_name: str) -> tuple[str, ...]:
    """IAM actions ("service:Action") that authorise the call; () for non-IAM events."""
    if event_name in NON_IAM_EVENTS:
        return ()
    prefix = service_prefix(event_source)
    name = strip_version(prefix, event_name)
    renamed = RENAMES.get((prefix, name))
    if renamed is not None:
        return renamed
    if prefix == "apigateway":
        return (_apigateway_action(name),)
    return (f"{prefix}:{name}",)


def event_actions(event: CloudTrailEvent) -> tuple[str, ...]:
    """resolve_actions for one event; () when the event type is not an authorised call."""
    if event.event_type in NON_IAM_EVENT_TYPES:
        return ()
    return resolve_actions(event.event_source, event.event_name)


def action_verb(action: str) -> str:
    """The leading verb of an action name: "s3:DeleteBucket" → "Delete"."""
    name = action.rsplit(":", 1)[-1]
    if name.startswith("Batch") and len(name) > 5 and name[5].isupper():
        name = name[5:]
    match = _VERB.match(name)
    return match.group(0) if match else name


_VERB = re.compile(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*|[a-z0-9]+")


def _apigateway_action(name: str) -> str:
    if name in _APIGATEWAY_NAMED or any(m in name for m in _APIGATEWAY_NAMED_MARKERS):
        return f"apigateway:{name}"
    for verbs, method in _APIGATEWAY_METHODS:
        if name.startswith(verbs):
            return f"apigateway:{method}"
    return f"apigateway:{name}"
