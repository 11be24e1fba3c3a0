"""`revoke-session`: deny exactly one session, and no other user of its role.

Writes the managed inline policy `TrailGuardSessionRevocations` (see
detector/core/revocation_policy.py for its exact shape) on the session's role, or on the IAM
user for a GetSessionToken session, then reads it back and checks, with the IAM evaluator,
that it denies the session's request context and spares TrailGuard's own before reporting
`applied`. Read-modify-write is serialised per role within this process.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from detector.config import parse_section
from detector.core import revocation_policy as rp
from detector.core.findings import Response
from detector.core.iam_eval import denies
from detector.responders.aws import AwsAccess, call
from detector.responders.base import (
    RESPONDERS,
    Outcome,
    ResponderError,
    ResponderType,
    ResponseOutcome,
)
from detector.responders.identity import own_identities
from detector.responders.settings import CommonSettings

Clock = Callable[[], datetime]
# GetSessionToken credentials of an IAM user last at most 36 hours.
USER_SESSION_SECONDS = 36 * 3600
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Target:
    kind: str  # "role" or "user"
    name: str
    arn: str
    account: str | None


class RevokeSessionResponder:
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
        }
    )

    def __init__(
        self, name: str, settings: RevokeSessionSettings, *, clock: Clock | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self.guardrails = settings.guardrails()
        self.access = AwsAccess(
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            assume_role_arn=settings.assume_role_arn,
        )
        self.own_arns: frozenset[str] = frozenset()
        self.own_user_ids: frozenset[str] = frozenset()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._locks: dict[str, asyncio.Lock] = {}

    def accepts(self, response: Response) -> bool:
        return response.action == "revoke-session"

    async def open(self) -> None:
        self.own_arns, self.own_user_ids = await own_identities(self.access)

    async def close(self) -> None:
        return None

    async def respond(self, response: Response) -> ResponseOutcome:
        started = self._clock()
        target = _target(response)
        if isinstance(target, str):
            return self._outcome(Outcome.REFUSED, target, started=started)
        lock = self._locks.setdefault(target.arn, asyncio.Lock())
        async with lock, self.access.client("iam", target.account) as iam:
            return await self._revoke(iam, response, target, started)

    async def _revoke(
        self, iam: Any, response: Response, target: _Target, started: datetime
    ) -> ResponseOutcome:
        now = self._clock()
        if target.kind == "role":
            role = (await call(iam.get_role(RoleName=target.name), f"GetRole {target.name}"))[
                "Role"
            ]
            user_id = response.principal_id or f"{role['RoleId']}:{response.session_name}"
            lifetime = int(role.get("MaxSessionDuration") or 3600)
            budget = rp.ROLE_INLINE_BUDGET
        else:
            user_id = response.principal_id or ""
            lifetime = USER_SESSION_SECONDS
            budget = rp.USER_INLINE_BUDGET
        if not user_id or (target.kind == "role" and not response.session_name):
            return self._outcome(
                Outcome.REFUSED, "the response carries no principal id to deny", started=started
            )
        issued = _issued(response.issued_at)
        shared = self._shared(response, target)
        if shared and issued is None:
            return self._outcome(
                Outcome.REFUSED,
                "the session name is shared and its issue time is unknown: "
                "no key singles the session out",
                started=started,
            )
        candidates = self._candidates(user_id, response.source_identity, issued, shared)
        current, others = await self._read(iam, target)
        expires = (issued or now) + timedelta(seconds=lifetime + self.settings.prune_margin_seconds)
        try:
            plan = rp.merge(
                rp.parse_document(current),
                candidates,
                expires=expires,
                now=now,
                budget=budget - others,
            )
        except rp.BudgetFull as exc:
            raise ResponderError(
                f"{target.arn}: inline policy budget full even after pruning ({exc}); "
                "nothing was written and the role is not denied as a whole",
                retriable=False,
                code="PolicyBudgetFull",
            ) from exc
        context = _context(user_id, response.source_identity, issued)
        if plan.already_applied and plan.pruned == 0:
            assert current is not None
            self._verify(current, context, target)
            return self._outcome(
                Outcome.ALREADY_APPLIED,
                f"{target.arn}: the session is already denied",
                started=started,
                target=target.arn,
                policy=current,
                size=plan.size,
            )
        document = plan.document.render()
        await self._put(iam, target, document)
        written = await self._read_back(iam, target, document)
        self._verify(written, context, target)
        key = plan.key or candidates[0]
        return self._outcome(
            Outcome.ALREADY_APPLIED if plan.already_applied else Outcome.APPLIED,
            f"{target.arn}: denied {key.describe()}"
            + (" (narrower keys did not fit the budget)" if plan.fallback else ""),
            started=started,
            target=target.arn,
            policy=written,
            key=key.describe(),
            fallback=plan.fallback,
            pruned=plan.pruned,
            size=plan.size,
            verified_at=self._clock(),
        )

    # --- keys --------------------------------------------------------------------------

    def _shared(self, response: Response, target: _Target) -> bool:
        if target.kind == "user" or response.on_human_credentials:
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

    # --- IAM ---------------------------------------------------------------------------

    async def _read(self, iam: Any, target: _Target) -> tuple[dict[str, Any] | None, int]:
        """The current managed policy and the size of the target's other inline policies."""
        names = await self._policy_names(iam, target)
        current: dict[str, Any] | None = None
        others = 0
        for name in names:
            document = await self._get(iam, target, name)
            if name == self.settings.policy_name:
                current = document
            elif document is not None:
                others += rp.policy_size(document)
        return current, others

    async def _policy_names(self, iam: Any, target: _Target) -> list[str]:
        names: list[str] = []
        marker: str | None = None
        while True:
            extra = {"Marker": marker} if marker else {}
            if target.kind == "role":
                page = await call(
                    iam.list_role_policies(RoleName=target.name, **extra), "ListRolePolicies"
                )
            else:
                page = await call(
                    iam.list_user_policies(UserName=target.name, **extra), "ListUserPolicies"
                )
            names.extend(page.get("PolicyNames", []))
            if not page.get("IsTruncated"):
                return names
            marker = page.get("Marker")

    async def _get(self, iam: Any, target: _Target, name: str) -> dict[str, Any] | None:
        try:
            if target.kind == "role":
                got = await call(
                    iam.get_role_policy(RoleName=target.name, PolicyName=name), "GetRolePolicy"
                )
            else:
                got = await call(
                    iam.get_user_policy(UserName=target.name, PolicyName=name), "GetUserPolicy"
                )
        except ResponderError as exc:
            if exc.code == "NoSuchEntity":
                return None
            raise
        return policy_document(got["PolicyDocument"])

    async def _put(self, iam: Any, target: _Target, document: Mapping[str, Any]) -> None:
        text = json.dumps(document, separators=(",", ":"))
        name = self.settings.policy_name
        if target.kind == "role":
            await call(
                iam.put_role_policy(RoleName=target.name, PolicyName=name, PolicyDocument=text),
                f"PutRolePolicy {target.name}",
            )
        else:
            await call(
                iam.put_user_policy(UserName=target.name, PolicyName=name, PolicyDocument=text),
                f"PutUserPolicy {target.name}",
            )

    async def _read_back(
        self, iam: Any, target: _Target, expected: Mapping[str, Any]
    ) -> dict[str, Any]:
        """IAM is eventually consistent: a read right after the write may be stale."""
        got: dict[str, Any] | None = None
        for attempt in range(READ_BACK_ATTEMPTS):
            got = await self._get(iam, target, self.settings.policy_name)
            if got is not None and rp.parse_document(got) == rp.parse_document(expected):
                return got
            if attempt + 1 < READ_BACK_ATTEMPTS:
                await asyncio.sleep(READ_BACK_PAUSE_SECONDS)
        raise ResponderError(
            f"{target.arn}: the policy read back is not the one written", retriable=True
        )

    def _verify(
        self, document: Mapping[str, Any], context: dict[str, str], target: _Target
    ) -> None:
        if not denies(document, context):
            raise ResponderError(
                f"{target.arn}: the policy read back does not deny the session", retriable=False
            )
        for user_id in self.own_user_ids:
            if denies(document, {"aws:userid": user_id}):
                raise ResponderError(
                    f"{target.arn}: the policy would deny TrailGuard's own identity",
                    retriable=False,
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
        )


def _target(response: Response) -> _Target | str:
    """Where the deny goes, or why there is nowhere it can."""
    account = response.account_id
    if response.role_arn:
        arn = response.role_arn
        if SSO_ROLE_PATH in arn:
            return (
                f"{arn} is an Identity Center role, which IAM does not let anyone edit: revoke "
                "through the permission set's inline policy (not done by this responder)"
            )
        name = arn.rsplit("/", 1)[-1]
        return _Target(kind="role", name=name, arn=arn, account=account or arn.split(":")[4])
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


def policy_document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        loaded: dict[str, Any] = json.loads(urllib.parse.unquote(value))
        return loaded
    return dict(value)


def build(name: str, raw: Mapping[str, Any], source: str, key: str) -> RevokeSessionResponder:
    settings = parse_section(RevokeSessionSettings, dict(raw), source=source, key=key)
    return RevokeSessionResponder(name, settings)


RESPONDERS.register(
    "revoke-session", ResponderType(build, RevokeSessionResponder.required_permissions)
)
