"""Shape helpers shared by the parameter rules: they read odd shapes without raising."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from detector.core.events import CloudTrailEvent


def get(value: Any, *path: str) -> Any:
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


def as_list(value: Any) -> list[Any]:
    """A list as is, EC2's {"items": [...]} unwrapped, a lone value wrapped, None → []."""
    if isinstance(value, Mapping) and "items" in value:
        value = value["items"]
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def json_object(value: Any) -> Mapping[str, Any] | None:
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


def account_of(principal: str) -> str | None:
    match = _ACCOUNT.match(principal)
    return match.group(1) if match else None


def restricted(condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return False
    return any(
        str(key).lower() in _RESTRICTING_KEYS
        for clause in condition.values()
        if isinstance(clause, Mapping)
        for key in clause
    )


def aws_principals(principal: Any) -> list[str]:
    if principal == "*":
        return ["*"]
    values = get(principal, "AWS")
    return [p for p in as_list(values) if isinstance(p, str)]


def policy_grant(document: Any, own_account: str | None, *, what: str) -> str | None:
    """A reason when an Allow statement lets anyone, or another account, in."""
    policy = json_object(document)
    if policy is None:
        return None
    for statement in as_list(get(policy, "Statement")):
        if not isinstance(statement, Mapping) or str(get(statement, "Effect")).lower() != "allow":
            continue
        if get(statement, "NotPrincipal") is not None:
            return f"{what} allows everyone outside a NotPrincipal list"
        principals = aws_principals(get(statement, "Principal"))
        if "*" in principals and not restricted(get(statement, "Condition")):
            return f"{what} grants Principal '*' without a restricting condition"
        for principal in principals:
            account = account_of(principal)
            if account and own_account and account != own_account:
                return f"{what} grants account {account}"
    return None


def other_accounts(values: Iterable[Any], own_account: str | None) -> list[str]:
    return [
        v for v in values if isinstance(v, str) and re.fullmatch(r"\d{12}", v) and v != own_account
    ]


def strings(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > 8:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item, depth + 1)


def arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4] else None


def bucket(event: CloudTrailEvent) -> str:
    return str(get(event.request_parameters, "bucketName") or "?")


def find_key(value: Any, key: str, depth: int = 0) -> Any:
    """The first value under `key` (case-insensitive) at any depth; None when there is none.

    For requests whose logged shape nests the interesting member under a wrapper whose name
    differs by API (S3 Control's `PutAccessPointPolicyRequest`, API Gateway's `patch`)."""
    if depth > 8:
        return None
    if isinstance(value, Mapping):
        lowered = key.lower()
        for name, item in value.items():
            if str(name).lower() == lowered:
                return item
        for item in value.values():
            found = find_key(item, key, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = find_key(item, key, depth + 1)
            if found is not None:
                return found
    return None
