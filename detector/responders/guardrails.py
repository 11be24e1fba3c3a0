"""What responders may touch, checked before any of them acts.

A response outside these limits is not carried out: it is journaled as `refused` with the
reason, counted, and sent to the sinks as an alert, because a revocation that was wanted
and did not happen is something a person must hear about.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from detector.core.findings import Response

# Never revoked whatever the settings say: AWS refuses policies on service-linked roles, and
# a deny there would hit every use the service makes of it.
ALWAYS_PROTECTED = ("arn:aws:iam::*:role/aws-service-role/*",)


@dataclass(frozen=True, slots=True, kw_only=True)
class Guardrails:
    """allow_accounts / allow_roles / allow_users are globs. Empty means nothing is allowed,
    so a new installation revokes nothing until someone says where it may."""

    allow_accounts: tuple[str, ...] = ()
    allow_roles: tuple[str, ...] = ()
    allow_users: tuple[str, ...] = ()
    break_glass: tuple[str, ...] = ()
    max_per_hour: int = 10

    def refusal(
        self,
        response: Response,
        *,
        own_identities: Collection[str],
        applied_last_hour: int,
    ) -> str | None:
        """The reason this response must not be carried out, or None when it may be."""
        account = response.account_id or _account_of(response.role_arn or response.principal)
        if account is None:
            return "the response names no account"
        if not matches(account, self.allow_accounts):
            return f"account {account} is not in allow_accounts"
        targets = [t for t in (response.role_arn, response.principal) if t]
        if response.role_arn is not None and not matches(response.role_arn, self.allow_roles):
            return f"role {response.role_arn} is not in allow_roles"
        user = response.principal if response.principal_type == "IAMUser" else None
        if user is not None and not matches(user, self.allow_users):
            return f"user {user} is not in allow_users"
        for target in targets:
            if target in own_identities or matches(target, own_identities):
                return f"{target} is TrailGuard's own identity"
            if matches(target, self.break_glass):
                return f"{target} is on the break-glass list"
            if matches(target, ALWAYS_PROTECTED):
                return f"{target} is an AWS-managed role that is never revoked"
        if applied_last_hour >= self.max_per_hour:
            return (
                f"rate limit: {applied_last_hour} responses carried out in the last hour "
                f"(max_per_hour {self.max_per_hour})"
            )
        return None


def matches(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def _account_of(arn: str | None) -> str | None:
    if not arn or not arn.startswith("arn:"):
        return None
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None
