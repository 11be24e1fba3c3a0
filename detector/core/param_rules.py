"""Rules that read an event's parameters to raise its risk above the catalogue entry.

The same action can be routine or an attack depending on its arguments: a bucket policy for
CloudTrail's service principal versus one granting Principal "*". Each rule names the actions
it reads, checks the request (and response) and, when the parameters say so, returns a Hit with
a one-sentence reason. Rules never raise on odd shapes; they skip what they do not recognise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from detector.core.events import CloudTrailEvent
from detector.core.taxonomy import Category


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """What a rule found. `tier` is set only when this shape is worse than the rule's usual."""

    reason: str
    tier: int | None = None


Check = Callable[[CloudTrailEvent], "Hit | None"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamRule:
    """One parameter-aware rule: the actions it reads and the risk it assigns when it fires."""

    name: str
    actions: frozenset[str]  # lower-case "service:action", matched against the catalogue entry
    category: Category
    tier: int
    summary: str
    check: Check = field(compare=False, repr=False)


class ParamRuleRegistry:
    """Parameter rules keyed by kebab-case name; a duplicate name raises ValueError."""

    __slots__ = ("_by_action", "_rules")

    def __init__(self, rules: Iterable[ParamRule] = ()) -> None:
        self._rules: dict[str, ParamRule] = {}
        self._by_action: dict[str, tuple[ParamRule, ...]] = {}
        for rule in rules:
            self.register(rule)

    def register(self, rule: ParamRule) -> None:
        if rule.name in self._rules:
            raise ValueError(f"parameter rule {rule.name!r} is already registered")
        if not _KEBAB.match(rule.name):
            raise ValueError(f"parameter rule name {rule.name!r} is not kebab-case")
        self._rules[rule.name] = rule
        for action in rule.actions:
            self._by_action[action] = (*self._by_action.get(action, ()), rule)

    def __iter__(self) -> Iterator[ParamRule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def __getitem__(self, name: str) -> ParamRule:
        return self._rules[name]

    def rules_for(self, action: str) -> tuple[ParamRule, ...]:
        return self._by_action.get(action.lower(), ())

    def evaluate(self, event: CloudTrailEvent, action: str) -> tuple[tuple[ParamRule, Hit], ...]:
        """The rules for `action` that fire on `event`, in registration order."""
        hits = []
        for rule in self.rules_for(action):
            hit = rule.check(event)
            if hit is not None:
                hits.append((rule, hit))
        return tuple(hits)


_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_DEFAULTS: list[ParamRule] = []


def default_param_rules() -> ParamRuleRegistry:
    """A fresh registry holding the shipped rules."""
    return ParamRuleRegistry(_DEFAULTS)


def _rule(
    name: str, actions: str, category: Category, tier: int, summary: str
) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        _DEFAULTS.append(
            ParamRule(
                name=name,
                actions=frozenset(actions.lower().split()),
                category=category,
                tier=tier,
                summary=summary,
                check=check,
            )
        )
        return check

    return register


# --- shape helpers ---------------------------------------------------------------------------


def _get(value: Any, *path: str) -> Any:
    """Follow keys case-insensitively (S3 logs XML element names, most services camelCase)."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        if key in value:
            value = value[key]
            continue
        lowered = key.lower()
        value = next((v for k, v in value.items() if str(k).lower() == lowered), None)
    return value


def _list(value: Any) -> list[Any]:
    """A list as is, EC2's {"items": [...]} unwrapped, a lone value wrapped, None → []."""
    if isinstance(value, Mapping) and "items" in value:
        value = value["items"]
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def _json_object(value: Any) -> Mapping[str, Any] | None:
    """A policy given as an object or as a JSON string; None when it is neither."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


_ACCOUNT = re.compile(r"^(?:arn:aws[\w-]*:(?:iam|sts)::)?(\d{12})(?::|$)")

# Condition keys that pin a grant to known principals, organisations, sources or networks.
_RESTRICTING_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOwner",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceIp",
        "aws:userid",
        "aws:username",
        "kms:CallerAccount",
        "sts:ExternalId",
        "s3:DataAccessPointAccount",
    )
)


def _account_of(principal: str) -> str | None:
    match = _ACCOUNT.match(principal)
    return match.group(1) if match else None


def _restricted(condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return False
    return any(
        str(key).lower() in _RESTRICTING_KEYS
        for clause in condition.values()
        if isinstance(clause, Mapping)
        for key in clause
    )


def _aws_principals(principal: Any) -> list[str]:
    if principal == "*":
        return ["*"]
    values = _get(principal, "AWS")
    return [p for p in _list(values) if isinstance(p, str)]


def _policy_grant(document: Any, own_account: str | None, *, what: str) -> str | None:
    """A reason when an Allow statement lets anyone, or another account, in."""
    policy = _json_object(document)
    if policy is None:
        return None
    for statement in _list(_get(policy, "Statement")):
        if not isinstance(statement, Mapping) or str(_get(statement, "Effect")).lower() != "allow":
            continue
        if _get(statement, "NotPrincipal") is not None:
            return f"{what} allows everyone outside a NotPrincipal list"
        principals = _aws_principals(_get(statement, "Principal"))
        if "*" in principals and not _restricted(_get(statement, "Condition")):
            return f"{what} grants Principal '*' without a restricting condition"
        for principal in principals:
            account = _account_of(principal)
            if account and own_account and account != own_account:
                return f"{what} grants account {account}"
    return None


def _other_accounts(values: Iterable[Any], own_account: str | None) -> list[str]:
    return [
        v for v in values if isinstance(v, str) and re.fullmatch(r"\d{12}", v) and v != own_account
    ]


# --- resource policies -----------------------------------------------------------------------

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


@_rule(
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
        if str(_get(params, "attributeName")).lower() != "policy":
            return None
        document = _get(params, "attributeValue")
    else:
        path = _POLICY_PATHS.get(event.event_name)
        document = _get(params, *path) if path else None
    reason = _policy_grant(document, event.account_id, what="resource policy")
    return Hit(reason=reason) if reason else None


@_rule(
    "public-lambda-permission",
    "lambda:AddPermission lambda:AddLayerVersionPermission",
    Category.DATA_EXPOSURE,
    0,
    "a function or layer permission for '*' or another account",
)
def _public_lambda_permission(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    principal = _get(params, "principal")
    if not isinstance(principal, str):
        return None
    pinned = any(
        _get(params, key)
        for key in ("sourceArn", "sourceAccount", "principalOrgID", "organizationId")
    )
    if principal == "*" and not pinned:
        return Hit(reason="Lambda permission grants principal '*' without a source condition")
    account = _account_of(principal)
    if account and event.account_id and account != event.account_id:
        return Hit(reason=f"Lambda permission grants account {account}")
    return None


_PUBLIC_GROUPS = ("acs.amazonaws.com/groups/global/AllUsers", "/groups/global/AuthenticatedUsers")
_PUBLIC_CANNED = frozenset({"public-read", "public-read-write", "authenticated-read"})


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > 8:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)


@_rule(
    "public-s3-acl",
    "s3:PutBucketAcl s3:PutObjectAcl s3:PutObject s3:CreateBucket",
    Category.DATA_EXPOSURE,
    0,
    "an S3 ACL grants AllUsers or AuthenticatedUsers",
)
def _public_s3_acl(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    canned = [v for v in _list(_get(params, "x-amz-acl")) if isinstance(v, str)]
    public = sorted(_PUBLIC_CANNED.intersection(v.lower() for v in canned))
    if public:
        return Hit(reason=f"S3 canned ACL {public[0]} makes the resource public")
    for text in _strings(params):
        if any(group in text for group in _PUBLIC_GROUPS):
            group = "AllUsers" if "AllUsers" in text else "AuthenticatedUsers"
            return Hit(reason=f"S3 ACL grants the {group} group")
    return None


_BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@_rule(
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
    config = _get(event.request_parameters, "PublicAccessBlockConfiguration")
    off = [flag for flag in _BLOCK_FLAGS if _is_false(_get(config, flag))]
    if off:
        return Hit(reason=f"S3 Block Public Access {', '.join(off)} turned off", tier=tier)
    return None


# --- sharing images and snapshots ------------------------------------------------------------


def _launch_or_volume_share(event: CloudTrailEvent, attribute: str, what: str) -> Hit | None:
    added = _list(_get(event.request_parameters, attribute, "add"))
    groups = [_get(item, "group") for item in added]
    if "all" in groups:
        return Hit(reason=f"{what} made public (group 'all')")
    accounts = _other_accounts((_get(item, "userId") for item in added), event.account_id)
    if accounts:
        return Hit(reason=f"{what} shared with account {accounts[0]}")
    return None


@_rule(
    "ami-shared",
    "ec2:ModifyImageAttribute",
    Category.DATA_EXPOSURE,
    0,
    "an AMI's launch permission given to 'all' or another account",
)
def _ami_shared(event: CloudTrailEvent) -> Hit | None:
    return _launch_or_volume_share(event, "launchPermission", "AMI")


@_rule(
    "ebs-snapshot-shared",
    "ec2:ModifySnapshotAttribute",
    Category.DATA_EXPOSURE,
    0,
    "an EBS snapshot's create-volume permission given to 'all' or another account",
)
def _ebs_snapshot_shared(event: CloudTrailEvent) -> Hit | None:
    return _launch_or_volume_share(event, "createVolumePermission", "EBS snapshot")


@_rule(
    "rds-snapshot-shared",
    "rds:ModifyDBSnapshotAttribute rds:ModifyDBClusterSnapshotAttribute",
    Category.DATA_EXPOSURE,
    0,
    "an RDS snapshot's restore attribute given to 'all' or another account",
)
def _rds_snapshot_shared(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    if str(_get(params, "attributeName")).lower() != "restore":
        return None
    values = _list(_get(params, "valuesToAdd"))
    if "all" in values:
        return Hit(reason="RDS snapshot made public (restore by 'all')")
    accounts = _other_accounts(values, event.account_id)
    if accounts:
        return Hit(reason=f"RDS snapshot shared with account {accounts[0]}")
    return None


# --- network exposure ------------------------------------------------------------------------

_ADMIN_PORTS = (22, 3389)


def _world_ranges(permission: Mapping[str, Any]) -> list[str]:
    v4 = [_get(r, "cidrIp") for r in _list(_get(permission, "ipRanges"))]
    v6 = [_get(r, "cidrIpv6") for r in _list(_get(permission, "ipv6Ranges"))]
    # Any prefix length of 0 is the whole address space, whatever the address bits say.
    return [c for c in (*v4, *v6) if isinstance(c, str) and c.endswith("/0")]


def _opens_admin_port(permission: Mapping[str, Any]) -> bool:
    if str(_get(permission, "ipProtocol")) in ("-1", "all"):
        return True
    low, high = _get(permission, "fromPort"), _get(permission, "toPort")
    if not isinstance(low, int) or not isinstance(high, int):
        return False
    return low == -1 or any(low <= port <= high for port in _ADMIN_PORTS)


@_rule(
    "security-group-open-to-internet",
    "ec2:AuthorizeSecurityGroupIngress",
    Category.DATA_EXPOSURE,
    1,
    "a security group ingress rule from 0.0.0.0/0 or ::/0 (tier 0 for SSH, RDP or all ports)",
)
def _security_group_open(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    # Older callers pass one rule at the top level instead of ipPermissions.
    permissions = [p for p in _list(_get(params, "ipPermissions")) if isinstance(p, Mapping)]
    if isinstance(_get(params, "cidrIp"), str):
        permissions.append({"ipRanges": [{"cidrIp": _get(params, "cidrIp")}], **params})
    group = _get(params, "groupId") or _get(params, "groupName") or "?"
    for permission in permissions:
        ranges = _world_ranges(permission)
        if not ranges:
            continue
        ports = f"{_get(permission, 'ipProtocol')} {_get(permission, 'fromPort')}"
        reason = f"security group {group} opens {ports} to {ranges[0]}"
        return Hit(reason=reason, tier=0 if _opens_admin_port(permission) else None)
    return None


@_rule(
    "network-acl-open-ingress",
    "ec2:CreateNetworkAclEntry ec2:ReplaceNetworkAclEntry",
    Category.DATA_EXPOSURE,
    1,
    "a network ACL ingress entry allowing 0.0.0.0/0 or ::/0",
)
def _network_acl_open(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    if _is_true(_get(params, "egress")) or str(_get(params, "ruleAction")).lower() != "allow":
        return None
    for key in ("cidrBlock", "ipv6CidrBlock"):
        cidr = _get(params, key)
        if isinstance(cidr, str) and cidr.endswith("/0"):
            return Hit(
                reason=f"network ACL {_get(params, 'networkAclId')} allows ingress from {cidr}"
            )
    return None


@_rule(
    "rds-instance-made-public",
    "rds:ModifyDBInstance rds:CreateDBInstance",
    Category.DATA_EXPOSURE,
    1,
    "an RDS instance set publicly accessible",
)
def _rds_public(event: CloudTrailEvent) -> Hit | None:
    if _is_true(_get(event.request_parameters, "publiclyAccessible")):
        return Hit(reason="RDS instance set publicly accessible")
    return None


# --- defense evasion -------------------------------------------------------------------------


@_rule(
    "macie-paused",
    "macie2:UpdateMacieSession",
    Category.DEFENSE_EVASION,
    1,
    "Macie session paused",
)
def _macie_paused(event: CloudTrailEvent) -> Hit | None:
    if str(_get(event.request_parameters, "status")).upper() == "PAUSED":
        return Hit(reason="Macie session paused")
    return None


@_rule(
    "guardduty-disabled",
    "guardduty:UpdateDetector",
    Category.DEFENSE_EVASION,
    0,
    "GuardDuty detector disabled",
)
def _guardduty_disabled(event: CloudTrailEvent) -> Hit | None:
    if _is_false(_get(event.request_parameters, "enable")):
        return Hit(reason="GuardDuty detector disabled")
    return None


def _advanced_selects_all_management(selectors: list[Any]) -> bool:
    for selector in selectors:
        fields = {
            str(_get(f, "field")): f
            for f in _list(_get(selector, "fieldSelectors"))
            if isinstance(f, Mapping)
        }
        category = fields.get("eventCategory")
        if category is not None and "Management" in _list(_get(category, "equals")):
            # A readOnly field or excluded event sources narrow the management events logged.
            narrowed = "readOnly" in fields or "eventSource" in fields
            if not narrowed:
                return True
    return False


@_rule(
    "cloudtrail-management-events-dropped",
    "cloudtrail:PutEventSelectors",
    Category.DEFENSE_EVASION,
    0,
    "trail event selectors stop or narrow management-event logging",
)
def _cloudtrail_selectors(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    trail = _get(params, "trailName")
    advanced = _get(params, "advancedEventSelectors")
    if isinstance(advanced, list):
        if _advanced_selects_all_management(advanced):
            return None
        return Hit(reason=f"advanced event selectors on trail {trail} drop management events")
    selectors = [s for s in _list(_get(params, "eventSelectors")) if isinstance(s, Mapping)]
    if not selectors:
        return None
    for selector in selectors:
        includes = not _is_false(_get(selector, "includeManagementEvents"))
        read_write = _get(selector, "readWriteType")
        excluded = _list(_get(selector, "excludeManagementEventSources"))
        if includes and read_write in (None, "All") and not excluded:
            return None
    if any(not _is_false(_get(s, "includeManagementEvents")) for s in selectors):
        return Hit(reason=f"event selectors on trail {trail} log only part of management events")
    return Hit(reason=f"event selectors on trail {trail} stop logging management events")


@_rule(
    "s3-access-logging-disabled",
    "s3:PutBucketLogging",
    Category.DEFENSE_EVASION,
    1,
    "S3 server access logging turned off",
)
def _s3_logging_disabled(event: CloudTrailEvent) -> Hit | None:
    status = _get(event.request_parameters, "BucketLoggingStatus")
    if isinstance(status, Mapping) and _get(status, "LoggingEnabled") is None:
        return Hit(reason=f"S3 access logging turned off for {_bucket(event)}")
    return None


_SHORT_RETENTION_DAYS = 7


@_rule(
    "log-retention-shortened",
    "logs:PutRetentionPolicy",
    Category.DEFENSE_EVASION,
    1,
    f"a log group's retention cut to {_SHORT_RETENTION_DAYS} days or less",
)
def _log_retention(event: CloudTrailEvent) -> Hit | None:
    days = _get(event.request_parameters, "retentionInDays")
    if isinstance(days, int) and not isinstance(days, bool) and days <= _SHORT_RETENTION_DAYS:
        group = _get(event.request_parameters, "logGroupName")
        return Hit(reason=f"retention of log group {group} cut to {days} days")
    return None


# --- destruction -----------------------------------------------------------------------------


def _bucket(event: CloudTrailEvent) -> str:
    return str(_get(event.request_parameters, "bucketName") or "?")


@_rule(
    "s3-lifecycle-expiration",
    "s3:PutLifecycleConfiguration",
    Category.DESTROY,
    1,
    "an enabled lifecycle rule that expires objects (T1485.001)",
)
def _s3_lifecycle_expiration(event: CloudTrailEvent) -> Hit | None:
    config = _get(event.request_parameters, "LifecycleConfiguration")
    for rule in _list(_get(config, "Rule")):
        if str(_get(rule, "Status")).lower() == "disabled":
            continue
        if _expires_objects(_get(rule, "Expiration")) or _get(rule, "NoncurrentVersionExpiration"):
            return Hit(
                reason=f"lifecycle rule {_get(rule, 'ID')} expires objects in {_bucket(event)}"
            )
    return None


def _expires_objects(expiration: Any) -> bool:
    """An Expiration that sets only ExpiredObjectDeleteMarker removes delete markers left with
    no versions behind them (S3 refuses it alongside Days or Date), so it deletes no data."""
    if expiration is None:
        return False
    if (
        isinstance(expiration, Mapping)
        and _get(expiration, "ExpiredObjectDeleteMarker") is not None
    ):
        return _get(expiration, "Days") is not None or _get(expiration, "Date") is not None
    return True


@_rule(
    "s3-versioning-suspended",
    "s3:PutBucketVersioning",
    Category.DESTROY,
    1,
    "bucket versioning suspended",
)
def _s3_versioning_suspended(event: CloudTrailEvent) -> Hit | None:
    status = _get(event.request_parameters, "VersioningConfiguration", "Status")
    if str(status).lower() == "suspended":
        return Hit(reason=f"versioning suspended on bucket {_bucket(event)}")
    return None


@_rule(
    "rds-backups-disabled",
    "rds:ModifyDBInstance",
    Category.DESTROY,
    1,
    "automated backups turned off (BackupRetentionPeriod 0)",
)
def _rds_backups_disabled(event: CloudTrailEvent) -> Hit | None:
    period = _get(event.request_parameters, "backupRetentionPeriod")
    if period == 0 and not isinstance(period, bool):
        instance = _get(event.request_parameters, "dBInstanceIdentifier")
        return Hit(reason=f"automated backups of RDS instance {instance} turned off")
    return None


@_rule(
    "route53-record-deleted",
    "route53:ChangeResourceRecordSets",
    Category.DESTROY,
    1,
    "a DNS record set deleted",
)
def _route53_delete(event: CloudTrailEvent) -> Hit | None:
    for change in _list(_get(event.request_parameters, "changeBatch", "changes")):
        if str(_get(change, "action")).upper() == "DELETE":
            name = _get(change, "resourceRecordSet", "name")
            return Hit(reason=f"DNS record {name} deleted")
    return None


@_rule(
    "secret-deleted-without-recovery",
    "secretsmanager:DeleteSecret",
    Category.DESTROY,
    0,
    "a secret deleted with no recovery window",
)
def _secret_force_delete(event: CloudTrailEvent) -> Hit | None:
    if _is_true(_get(event.request_parameters, "forceDeleteWithoutRecovery")):
        return Hit(reason="secret deleted immediately, without a recovery window")
    return None


# --- persistence, permissions and credentials ------------------------------------------------


@_rule(
    "lambda-layer-added",
    "lambda:UpdateFunctionConfiguration lambda:CreateFunction",
    Category.PERSISTENCE,
    1,
    "layers attached to a function (code that runs on every invocation)",
)
def _lambda_layers(event: CloudTrailEvent) -> Hit | None:
    layers = [layer for layer in _list(_get(event.request_parameters, "layers")) if layer]
    if not layers:
        return None
    foreign = [
        str(layer)
        for layer in layers
        if (account := _arn_account(str(layer)))
        and event.account_id
        and account != event.account_id
    ]
    if foreign:
        return Hit(reason=f"function given a layer from another account: {foreign[0]}", tier=0)
    return Hit(reason=f"function given layer {layers[0]}")


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4] else None


@_rule(
    "role-trust-opened",
    "iam:CreateRole iam:UpdateAssumeRolePolicy",
    Category.PERSISTENCE,
    0,
    "a role trust policy lets '*' or another account assume the role",
)
def _role_trust_opened(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    document = _get(params, "assumeRolePolicyDocument") or _get(params, "policyDocument")
    reason = _policy_grant(document, event.account_id, what="trust policy")
    return Hit(reason=f"{reason} (role {_get(params, 'roleName')})") if reason else None


_ADMIN_POLICY = re.compile(r":policy/AdministratorAccess$")


def _allows_everything(document: Any) -> bool:
    policy = _json_object(document)
    for statement in _list(_get(policy, "Statement")):
        if str(_get(statement, "Effect")).lower() != "allow":
            continue
        actions = _list(_get(statement, "Action"))
        if ("*" in actions or "*:*" in actions) and "*" in _list(_get(statement, "Resource")):
            return True
    return False


@_rule(
    "admin-policy-granted",
    "iam:AttachUserPolicy iam:AttachRolePolicy iam:AttachGroupPolicy iam:PutUserPolicy"
    " iam:PutRolePolicy iam:PutGroupPolicy iam:CreatePolicyVersion",
    Category.PERMISSIONS,
    0,
    "AdministratorAccess or an Allow */* policy granted",
)
def _admin_policy(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    arn = _get(params, "policyArn")
    target = _get(params, "userName") or _get(params, "roleName") or _get(params, "groupName")
    if event.event_name.startswith("Attach") and isinstance(arn, str) and _ADMIN_POLICY.search(arn):
        return Hit(reason=f"AdministratorAccess attached to {target}")
    if _allows_everything(_get(params, "policyDocument")):
        return Hit(reason=f"policy allowing every action on every resource granted to {target}")
    return None


@_rule(
    "ec2-user-data-read",
    "ec2:DescribeInstanceAttribute",
    Category.CREDENTIAL_ACCESS,
    2,
    "instance user data read (often holds secrets)",
)
def _user_data_read(event: CloudTrailEvent) -> Hit | None:
    if str(_get(event.request_parameters, "attribute")) == "userData":
        instance = _get(event.request_parameters, "instanceId")
        return Hit(reason=f"user data of instance {instance} read")
    return None


@_rule(
    "ssm-parameter-decrypted",
    "ssm:GetParameter ssm:GetParameters ssm:GetParametersByPath ssm:GetParameterHistory",
    Category.CREDENTIAL_ACCESS,
    1,
    "SecureString parameters read with decryption",
)
def _ssm_decrypted(event: CloudTrailEvent) -> Hit | None:
    if _is_true(_get(event.request_parameters, "withDecryption")):
        return Hit(reason="SSM parameters read with decryption")
    return None
