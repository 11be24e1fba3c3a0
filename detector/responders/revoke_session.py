"""`revoke-session`: deny exactly one session, and no other user of its role.

Writes the managed inline policy `TrailGuardSessionRevocations` (see
detector/core/revocation_policy.py for its exact shape) on the session's role, on the IAM
user for a GetSessionToken session, or into the Identity Center permission set behind an
`AWSReservedSSO_*` role (see policy_holders.py), then reads it back and checks, with the IAM
evaluator, that it denies the session's request context and spares TrailGuard's own before
reporting `applied`. Read-modify-write is serialised per role within this process.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from detector.config import parse_section
from detector.core import revocation_policy as rp
from detector.core.findings import Response
from detector.core.iam_eval import denies
from detector.responders.aws import AwsResponderBase, Clock, call
from detector.responders.base import (
    RESPONDERS,
    Outcome,
    ResponderError,
    ResponderType,
    ResponseOutcome,
)
from detector.responders.policy_holders import (
    PermissionSetPolicy,
    PolicyHolder,
    RolePolicy,
    UserPolicy,
)
from detector.responders.settings import CommonSettings

# GetSessionToken credentials of an IAM user last at most 36 hours.
USER_SESSION_SECONDS = 36 * 3600
# Identity Center permission sets allow sessions of up to 12 hours.
SSO_SESSION_SECONDS = 12 * 3600
SSO_ROLE_PATH = "/aws-reserved/sso.amazonaws.com/"
READ_BACK_ATTEMPTS = 5
READ_BACK_PAUSE_SECONDS = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeSessionSettings(CommonSettings):
    policy_name: str = rp.POLICY_NAME
    # Session names that more than one credential set uses (CI runners, shared tooling):
    # those get an aws:TokenIssueTime window, as do sessions on a person's credentials.
    shared_session_names: tuple[str, ...] = ()
    token_window_seconds: int = 1
    # Kept past the longest a session of the role can last before the entry is pruned.
    prune_margin_seconds: int = 3600
    # Where Identity Center's permission sets live (the management or delegated
    # administrator account), when it is not the session's own account.
    identity_center_account: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Target:
    kind: str  # "role", "user" or "permission-set"
    name: str
    arn: str
    account: str | None


class RevokeSessionResponder(AwsResponderBase):
    """Denies one session by `aws:userid` (narrowed as the session allows)."""

    required_permissions: ClassVar[frozenset[str]] = frozenset(
        {
            "sts:GetCallerIdentity",
            "sts:AssumeRole",
            "iam:GetRole",
            "iam:GetRolePolicy",
            "iam:ListRolePolicies",
            "iam:PutRolePolicy",
            "iam:GetUserPolicy",
            "iam:ListUserPolicies",
            "iam:PutUserPolicy",
            "sso:ListInstances",
            "sso:ListPermissionSets",
            "sso:DescribePermissionSet",
            "sso:GetInlinePolicyForPermissionSet",
            "sso:PutInlinePolicyToPermissionSet",
            "sso:ProvisionPermissionSet",
        }
    )

    def __init__(
        self, name: str, settings: RevokeSessionSettings, *, clock: Clock | None = None
    ) -> None:
        super().__init__(name, settings, clock=clock)
        self.settings = settings
        self._locks: dict[str, asyncio.Lock] = {}

    def accepts(self, response: Response) -> bool:
        return response.action == "revoke-session"

    async def respond(self, response: Response) -> ResponseOutcome:
        started = self._clock()
        target = _target(response)
        if isinstance(target, str):
            return self._outcome(Outcome.REFUSED, target, started=started)
        lock = self._locks.setdefault(target.arn, asyncio.Lock())
        if target.kind == "permission-set":
            # The permission set lives in the organisation's Identity Center account; the
            # session's role id (in its principalId) is the member account's.
            sso_account = self.settings.identity_center_account or target.account
            async with lock, self.access.client("sso-admin", sso_account) as sso:
                holder: PolicyHolder = PermissionSetPolicy(
                    sso, target.name, target.arn, target.account or ""
                )
                user_id = response.principal_id or ""
                return await self._revoke(holder, response, user_id, SSO_SESSION_SECONDS, started)
        async with lock, self.access.client("iam", target.account) as iam:
            if target.kind == "user":
                holder = UserPolicy(iam, target.name, target.arn, self.settings.policy_name)
                user_id = response.principal_id or ""
                return await self._revoke(holder, response, user_id, USER_SESSION_SECONDS, started)
            got = await call(iam.get_role(RoleName=target.name), f"GetRole {target.name}")
            role = got["Role"]
            user_id = response.principal_id or (
                f"{role['RoleId']}:{response.session_name}" if response.session_name else ""
            )
            lifetime = int(role.get("MaxSessionDuration") or 3600)
            holder = RolePolicy(iam, target.name, target.arn, self.settings.policy_name)
            return await self._revoke(holder, response, user_id, lifetime, started)

    async def _revoke(
        self,
        holder: PolicyHolder,
        response: Response,
        user_id: str,
        lifetime: int,
        started: datetime,
    ) -> ResponseOutcome:
        now = self._clock()
        if not user_id or (":" not in user_id and holder.budget == rp.ROLE_INLINE_BUDGET):
            return self._outcome(
                Outcome.REFUSED, "the response carries no principal id to deny", started=started
            )
        issued = _issued(response.issued_at)
        shared = self._shared(response, holder)
        if shared and issued is None:
            return self._outcome(
                Outcome.REFUSED,
                "the session name is shared and its issue time is unknown: "
                "no key singles the session out",
                started=started,
            )
        candidates = self._candidates(user_id, response.source_identity, issued, shared)
        current, others = await holder.read()
        expires = (issued or now) + timedelta(seconds=lifetime + self.settings.prune_margin_seconds)
        try:
            plan = rp.merge(
                rp.parse_document(current),
                candidates,
                expires=expires,
                now=now,
                budget=holder.budget - others,
            )
        except rp.BudgetFull as exc:
            raise ResponderError(
                f"{holder.arn}: inline policy budget full even after pruning ({exc}); "
                "nothing was written and the role is not denied as a whole",
                retriable=False,
                code="PolicyBudgetFull",
            ) from exc
        context = _context(user_id, response.source_identity, issued)
        if plan.already_applied and plan.pruned == 0:
            assert current is not None
            self._verify(current, context, holder.arn)
            return self._outcome(
                Outcome.ALREADY_APPLIED,
                f"{holder.arn}: the session is already denied",
                started=started,
                target=holder.arn,
                policy=current,
                size=plan.size,
            )
        document = plan.document.render()
        facts = await holder.put(document)
        written = await self._read_back(holder, document)
        self._verify(written, context, holder.arn)
        key = plan.key or candidates[0]
        return self._outcome(
            Outcome.ALREADY_APPLIED if plan.already_applied else Outcome.APPLIED,
            f"{holder.arn}: denied {key.describe()}"
            + (" (narrower keys did not fit the budget)" if plan.fallback else ""),
            started=started,
            target=holder.arn,
            policy=written,
            key=key.describe(),
            fallback=plan.fallback,
            pruned=plan.pruned,
            size=plan.size,
            verified_at=self._clock(),
            extra=facts,
        )

    # --- keys --------------------------------------------------------------------------

    def _shared(self, response: Response, holder: PolicyHolder) -> bool:
        # An IAM user's sessions all share the user's id; an Identity Center session name is
        # the person's user name, shared by every tool they run.
        if not isinstance(holder, RolePolicy) or response.on_human_credentials:
            return True
        name = response.session_name or ""
        return any(fnmatch.fnmatchcase(name, p) for p in self.settings.shared_session_names)

    def _candidates(
        self, user_id: str, source_identity: str | None, issued: datetime | None, shared: bool
    ) -> list[rp.DenyKey]:
        """Narrowest first. A shared session name never falls back to `aws:userid` alone:
        that would deny every credential set using the name, the person's own included."""
        window: dict[str, Any] = {}
        if shared and issued is not None:
            until = issued + timedelta(seconds=max(1, self.settings.token_window_seconds))
            window = {"issued_from": issued, "issued_until": until}
        keys: list[rp.DenyKey] = []
        if source_identity:
            keys.append(rp.DenyKey(user_id=user_id, source_identity=source_identity, **window))
        keys.append(rp.DenyKey(user_id=user_id, **window))
        return keys

    # --- read back and verify ----------------------------------------------------------

    async def _read_back(self, holder: PolicyHolder, expected: Mapping[str, Any]) -> dict[str, Any]:
        """IAM is eventually consistent: a read right after the write may be stale."""
        for attempt in range(READ_BACK_ATTEMPTS):
            got = await holder.get()
            if got is not None and rp.parse_document(got) == rp.parse_document(expected):
                return got
            if attempt + 1 < READ_BACK_ATTEMPTS:
                await asyncio.sleep(READ_BACK_PAUSE_SECONDS)
        raise ResponderError(
            f"{holder.arn}: the policy read back is not the one written", retriable=True
        )

    def _verify(self, document: Mapping[str, Any], context: dict[str, str], where: str) -> None:
        if not denies(document, context):
            raise ResponderError(
                f"{where}: the policy read back does not deny the session", retriable=False
            )
        for user_id in self.own_user_ids:
            if denies(document, {"aws:userid": user_id}):
                raise ResponderError(
                    f"{where}: the policy would deny TrailGuard's own identity", retriable=False
                )

    def _outcome(
        self,
        outcome: Outcome,
        reason: str,
        *,
        started: datetime,
        target: str | None = None,
        policy: Mapping[str, Any] | None = None,
        key: str | None = None,
        fallback: bool = False,
        pruned: int = 0,
        size: int | None = None,
        verified_at: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ResponseOutcome:
        return ResponseOutcome(
            outcome=outcome,
            responder=self.name,
            reason=reason,
            target=target,
            policy_name=self.settings.policy_name if policy is not None else None,
            policy=policy,
            key=key,
            fallback=fallback,
            pruned=pruned,
            policy_size=size,
            started_at=started,
            verified_at=verified_at or (started if outcome is Outcome.ALREADY_APPLIED else None),
            extra=extra or {},
        )


def _target(response: Response) -> _Target | str:
    """Where the deny goes, or why there is nowhere it can."""
    account = response.account_id
    if response.role_arn:
        arn = response.role_arn
        name = arn.rsplit("/", 1)[-1]
        kind = "permission-set" if SSO_ROLE_PATH in arn else "role"
        return _Target(kind=kind, name=name, arn=arn, account=account or arn.split(":")[4])
    principal = response.principal or ""
    key = response.access_key_id or ""
    if response.principal_type == "IAMUser" and ":user/" in principal:
        if not key.startswith("ASIA"):
            return "a long-term access key has no session to deny: use disable-access-key"
        return _Target(
            kind="user",
            name=principal.rsplit("/", 1)[-1],
            arn=principal,
            account=account or principal.split(":")[4],
        )
    return f"no role or IAM user to write a deny on (principal type {response.principal_type})"


def _issued(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return rp.parse_iso(value).replace(microsecond=0)
    except ValueError:
        return None


def _context(user_id: str, source_identity: str | None, issued: datetime | None) -> dict[str, str]:
    context = {"aws:userid": user_id}
    if source_identity:
        context["aws:SourceIdentity"] = source_identity
    if issued is not None:
        context["aws:TokenIssueTime"] = rp.iso(issued)
    return context


def build(name: str, raw: Mapping[str, Any], source: str, key: str) -> RevokeSessionResponder:
    settings = parse_section(RevokeSessionSettings, dict(raw), source=source, key=key)
    return RevokeSessionResponder(name, settings)


RESPONDERS.register(
    "revoke-session", ResponderType(build, RevokeSessionResponder.required_permissions)
)
