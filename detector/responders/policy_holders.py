"""Where a session's deny is written: a role, an IAM user, or an Identity Center permission set.

Each holder reads the current TrailGuard policy and the size of everything else counted
against the same budget, writes a new document, and reads it back. The revoke-session
responder does the rest the same way for all three.

Identity Center roles (`AWSReservedSSO_<permission set>_<hash>`) cannot be edited in IAM:
the deny goes into the permission set's inline policy, which is then provisioned to the
account. That inline policy may hold the permission set's own statements; they are kept.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol

from detector.core import revocation_policy as rp
from detector.responders.aws import call
from detector.responders.base import ResponderError

_SSO_ROLE = re.compile(r"^AWSReservedSSO_(?P<name>.+)_[0-9a-f]{16}$")


class PolicyHolder(Protocol):
    arn: str
    budget: int

    async def read(self) -> tuple[dict[str, Any] | None, int]:
        """(the current TrailGuard document, the characters other policies use)."""
        ...

    async def get(self) -> dict[str, Any] | None: ...

    async def put(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Write; returns facts for the journal (e.g. a provisioning request)."""
        ...


def policy_document(value: Any) -> dict[str, Any]:
    """IAM returns documents URL-encoded in the raw API and decoded by botocore."""
    if isinstance(value, str):
        loaded: dict[str, Any] = json.loads(urllib.parse.unquote(value))
        return loaded
    return dict(value)


def compact(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


class _InlinePolicy:
    """The managed inline policy on an IAM role or user: the same five IAM calls, named
    `<Verb>RolePolicy` or `<Verb>UserPolicy` and keyed by `RoleName` or `UserName`."""

    kind = "Role"  # or "User"

    def __init__(self, iam: Any, name: str, arn: str, policy_name: str, budget: int) -> None:
        self.iam, self.name, self.arn, self.policy_name = iam, name, arn, policy_name
        self.budget = budget
        # Each client method is the IAM operation in snake case: list_role_policies, ...
        self._key = {f"{self.kind}Name": name}
        self._lower = self.kind.lower()

    async def read(self) -> tuple[dict[str, Any] | None, int]:
        names: list[str] = []
        marker: dict[str, str] = {}
        listing = getattr(self.iam, f"list_{self._lower}_policies")
        while True:
            page = await call(listing(**self._key, **marker), f"List{self.kind}Policies")
            names.extend(page.get("PolicyNames", []))
            if not page.get("IsTruncated"):
                break
            marker = {"Marker": page["Marker"]}
        current, others = None, 0
        for name in names:
            document = await self._get(name)
            if name == self.policy_name:
                current = document
            elif document is not None:
                others += rp.policy_size(document)
        return current, others

    async def get(self) -> dict[str, Any] | None:
        return await self._get(self.policy_name)

    async def put(self, document: Mapping[str, Any]) -> dict[str, Any]:
        put = getattr(self.iam, f"put_{self._lower}_policy")
        await call(
            put(**self._key, PolicyName=self.policy_name, PolicyDocument=compact(document)),
            f"Put{self.kind}Policy {self.name}",
        )
        return {}

    async def _get(self, name: str) -> dict[str, Any] | None:
        get = getattr(self.iam, f"get_{self._lower}_policy")
        try:
            got = await call(get(**self._key, PolicyName=name), f"Get{self.kind}Policy")
        except ResponderError as exc:
            if exc.code == "NoSuchEntity":
                return None
            raise
        return policy_document(got["PolicyDocument"])


class RolePolicy(_InlinePolicy):
    """The managed inline policy on an IAM role."""

    kind = "Role"

    def __init__(self, iam: Any, name: str, arn: str, policy_name: str) -> None:
        super().__init__(iam, name, arn, policy_name, rp.ROLE_INLINE_BUDGET)


class UserPolicy(_InlinePolicy):
    """The managed inline policy on an IAM user (its GetSessionToken sessions)."""

    kind = "User"

    def __init__(self, iam: Any, name: str, arn: str, policy_name: str) -> None:
        super().__init__(iam, name, arn, policy_name, rp.USER_INLINE_BUDGET)


class PermissionSetPolicy:
    """The inline policy of the Identity Center permission set behind an SSO role."""

    def __init__(self, sso: Any, role_name: str, arn: str, account: str) -> None:
        match = _SSO_ROLE.match(role_name)
        if match is None:
            raise ResponderError(f"{arn}: not an Identity Center role name", retriable=False)
        self.sso, self.arn, self.account = sso, arn, account
        self.permission_set_name = match.group("name")
        self.budget = rp.ROLE_INLINE_BUDGET  # it lands as the role's inline policy
        self._instance: str | None = None
        self._permission_set: str | None = None

    async def read(self) -> tuple[dict[str, Any] | None, int]:
        # The permission set's own statements are in the same document, kept as foreign
        # statements and counted by the document's size: nothing else to add.
        return await self.get(), 0

    async def get(self) -> dict[str, Any] | None:
        instance, permission_set = await self._locate()
        got = await call(
            self.sso.get_inline_policy_for_permission_set(
                InstanceArn=instance, PermissionSetArn=permission_set
            ),
            "GetInlinePolicyForPermissionSet",
        )
        text = got.get("InlinePolicy") or ""
        return policy_document(text) if text else None

    async def put(self, document: Mapping[str, Any]) -> dict[str, Any]:
        instance, permission_set = await self._locate()
        await call(
            self.sso.put_inline_policy_to_permission_set(
                InstanceArn=instance,
                PermissionSetArn=permission_set,
                InlinePolicy=compact(document),
            ),
            "PutInlinePolicyToPermissionSet",
        )
        provisioned = await call(
            self.sso.provision_permission_set(
                InstanceArn=instance,
                PermissionSetArn=permission_set,
                TargetType="AWS_ACCOUNT",
                TargetId=self.account,
            ),
            "ProvisionPermissionSet",
        )
        status = provisioned.get("PermissionSetProvisioningStatus", {})
        return {
            "permission_set": permission_set,
            "provisioning_request": status.get("RequestId"),
            "provisioning_status": status.get("Status"),
        }

    async def _locate(self) -> tuple[str, str]:
        if self._instance is not None and self._permission_set is not None:
            return self._instance, self._permission_set
        instances = await call(self.sso.list_instances(), "ListInstances")
        for instance in instances.get("Instances", []):
            arn = instance["InstanceArn"]
            token: dict[str, str] = {}
            while True:
                page = await call(
                    self.sso.list_permission_sets(InstanceArn=arn, **token), "ListPermissionSets"
                )
                for candidate in page.get("PermissionSets", []):
                    described = await call(
                        self.sso.describe_permission_set(
                            InstanceArn=arn, PermissionSetArn=candidate
                        ),
                        "DescribePermissionSet",
                    )
                    if described["PermissionSet"].get("Name") == self.permission_set_name:
                        self._instance, self._permission_set = arn, candidate
                        return arn, candidate
                if not page.get("NextToken"):
                    break
                token = {"NextToken": page["NextToken"]}
        raise ResponderError(
            f"{self.arn}: no permission set named {self.permission_set_name!r}", retriable=False
        )
