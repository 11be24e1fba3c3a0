"""`revoke-role-sessions`: deny every session of a role issued before now.

AWS's "revoke active sessions" (`aws:TokenIssueTime` DateLessThan now). Every session of the
role dies, people's included; new sessions work. So it runs only when configured, and only
for the roles listed in its own `roles` (globs): roles that only agents use. Never a default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from detector.config import parse_section
from detector.core import revocation_policy as rp
from detector.core.findings import Response
from detector.core.iam_eval import denies
from detector.errors import ConfigError
from detector.responders.aws import AwsResponderBase, Clock, call
from detector.responders.base import (
    RESPONDERS,
    Outcome,
    ResponderError,
    ResponderType,
    ResponseOutcome,
)
from detector.responders.guardrails import matches
from detector.responders.policy_holders import policy_document
from detector.responders.settings import CommonSettings

POLICY_NAME = "TrailGuardRevokeOlderSessions"


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeRoleSessionsSettings(CommonSettings):
    roles: tuple[str, ...] = ()  # required: the agent-only roles this may act on


class RevokeRoleSessionsResponder(AwsResponderBase):
    required_permissions: ClassVar[frozenset[str]] = frozenset(
        {"sts:GetCallerIdentity", "sts:AssumeRole", "iam:GetRolePolicy", "iam:PutRolePolicy"}
    )

    def __init__(
        self, name: str, settings: RevokeRoleSessionsSettings, *, clock: Clock | None = None
    ) -> None:
        super().__init__(name, settings, clock=clock)
        self.settings = settings

    def accepts(self, response: Response) -> bool:
        return (
            response.action == "revoke-session"
            and response.role_arn is not None
            and matches(response.role_arn, self.settings.roles)
        )

    async def respond(self, response: Response) -> ResponseOutcome:
        started = self._clock()
        role_arn = response.role_arn or ""
        name = role_arn.rsplit("/", 1)[-1]
        issued = response.issued_at
        account = response.account_id or role_arn.split(":")[4]
        async with self.access.client("iam", account) as iam:
            current = await _get(iam, name)
            if current is not None and issued and denies(current, _context(issued)):
                return ResponseOutcome(
                    outcome=Outcome.ALREADY_APPLIED,
                    responder=self.name,
                    reason=f"{role_arn}: sessions issued before the session are already denied",
                    target=role_arn,
                    policy_name=POLICY_NAME,
                    policy=current,
                    started_at=started,
                    verified_at=started,
                )
            cutoff = started.replace(microsecond=0)
            document = rp.role_wide(cutoff)
            await call(
                iam.put_role_policy(
                    RoleName=name,
                    PolicyName=POLICY_NAME,
                    PolicyDocument=json.dumps(document, separators=(",", ":")),
                ),
                f"PutRolePolicy {name}",
            )
            written = await _get(iam, name)
        probe = issued or rp.iso(cutoff.replace(year=cutoff.year - 1))
        if written is None or not denies(written, _context(probe)):
            raise ResponderError(f"{role_arn}: the policy read back does not deny", retriable=True)
        return ResponseOutcome(
            outcome=Outcome.APPLIED,
            responder=self.name,
            reason=f"{role_arn}: every session issued before {rp.iso(cutoff)} denied",
            target=role_arn,
            policy_name=POLICY_NAME,
            policy=written,
            key=f"aws:TokenIssueTime < {rp.iso(cutoff)}",
            started_at=started,
            verified_at=self._clock(),
        )


def _context(issued: str) -> dict[str, str]:
    return {"aws:TokenIssueTime": issued}


async def _get(iam: Any, role: str) -> dict[str, Any] | None:
    try:
        got = await call(
            iam.get_role_policy(RoleName=role, PolicyName=POLICY_NAME), "GetRolePolicy"
        )
    except ResponderError as exc:
        if exc.code == "NoSuchEntity":
            return None
        raise
    return policy_document(got["PolicyDocument"])


def build(name: str, raw: Mapping[str, Any], source: str, key: str) -> RevokeRoleSessionsResponder:
    settings = parse_section(RevokeRoleSessionsSettings, dict(raw), source=source, key=key)
    if not settings.roles:
        raise ConfigError(
            f"{source}: {key}.roles: required: the agent-only roles whose every session "
            "this may revoke"
        )
    return RevokeRoleSessionsResponder(name, settings)


RESPONDERS.register(
    "revoke-role-sessions", ResponderType(build, RevokeRoleSessionsResponder.required_permissions)
)
