"""EC2: shared images and snapshots, ingress from the internet, user data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import as_list, get, is_true, other_accounts
from detector.core.taxonomy import Category

RULES = RuleSet()

# --- sharing images and snapshots ------------------------------------------------------------


def _launch_or_volume_share(event: CloudTrailEvent, attribute: str, what: str) -> Hit | None:
    added = as_list(get(event.request_parameters, attribute, "add"))
    groups = [get(item, "group") for item in added]
    if "all" in groups:
        return Hit(reason=f"{what} made public (group 'all')")
    accounts = other_accounts((get(item, "userId") for item in added), event.account_id)
    if accounts:
        return Hit(reason=f"{what} shared with account {accounts[0]}")
    return None


@RULES.rule(
    "ami-shared",
    "ec2:ModifyImageAttribute",
    Category.DATA_EXPOSURE,
    0,
    "an AMI's launch permission given to 'all' or another account",
)
def _ami_shared(event: CloudTrailEvent) -> Hit | None:
    return _launch_or_volume_share(event, "launchPermission", "AMI")


@RULES.rule(
    "ebs-snapshot-shared",
    "ec2:ModifySnapshotAttribute",
    Category.DATA_EXPOSURE,
    0,
    "an EBS snapshot's create-volume permission given to 'all' or another account",
)
def _ebs_snapshot_shared(event: CloudTrailEvent) -> Hit | None:
    return _launch_or_volume_share(event, "createVolumePermission", "EBS snapshot")


# --- network exposure ------------------------------------------------------------------------

_ADMIN_PORTS = (22, 3389)


def _world_ranges(permission: Mapping[str, Any]) -> list[str]:
    v4 = [get(r, "cidrIp") for r in as_list(get(permission, "ipRanges"))]
    v6 = [get(r, "cidrIpv6") for r in as_list(get(permission, "ipv6Ranges"))]
    # Any prefix length of 0 is the whole address space, whatever the address bits say.
    return [c for c in (*v4, *v6) if isinstance(c, str) and c.endswith("/0")]


def _opens_admin_port(permission: Mapping[str, Any]) -> bool:
    if str(get(permission, "ipProtocol")) in ("-1", "all"):
        return True
    low, high = get(permission, "fromPort"), get(permission, "toPort")
    if not isinstance(low, int) or not isinstance(high, int):
        return False
    return low == -1 or any(low <= port <= high for port in _ADMIN_PORTS)


@RULES.rule(
    "security-group-open-to-internet",
    "ec2:AuthorizeSecurityGroupIngress",
    Category.DATA_EXPOSURE,
    1,
    "a security group ingress rule from 0.0.0.0/0 or ::/0 (tier 0 for SSH, RDP or all ports)",
)
def _security_group_open(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    # Older callers pass one rule at the top level instead of ipPermissions.
    permissions = [p for p in as_list(get(params, "ipPermissions")) if isinstance(p, Mapping)]
    if isinstance(get(params, "cidrIp"), str):
        permissions.append({"ipRanges": [{"cidrIp": get(params, "cidrIp")}], **params})
    group = get(params, "groupId") or get(params, "groupName") or "?"
    for permission in permissions:
        ranges = _world_ranges(permission)
        if not ranges:
            continue
        ports = f"{get(permission, 'ipProtocol')} {get(permission, 'fromPort')}"
        reason = f"security group {group} opens {ports} to {ranges[0]}"
        return Hit(reason=reason, tier=0 if _opens_admin_port(permission) else None)
    return None


@RULES.rule(
    "network-acl-open-ingress",
    "ec2:CreateNetworkAclEntry ec2:ReplaceNetworkAclEntry",
    Category.DATA_EXPOSURE,
    1,
    "a network ACL ingress entry allowing 0.0.0.0/0 or ::/0",
)
def _network_acl_open(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    if is_true(get(params, "egress")) or str(get(params, "ruleAction")).lower() != "allow":
        return None
    for key in ("cidrBlock", "ipv6CidrBlock"):
        cidr = get(params, key)
        if isinstance(cidr, str) and cidr.endswith("/0"):
            return Hit(
                reason=f"network ACL {get(params, 'networkAclId')} allows ingress from {cidr}"
            )
    return None


@RULES.rule(
    "ec2-user-data-read",
    "ec2:DescribeInstanceAttribute",
    Category.CREDENTIAL_ACCESS,
    2,
    "instance user data read (often holds secrets)",
)
def _user_data_read(event: CloudTrailEvent) -> Hit | None:
    if str(get(event.request_parameters, "attribute")) == "userData":
        instance = get(event.request_parameters, "instanceId")
        return Hit(reason=f"user data of instance {instance} read")
    return None
