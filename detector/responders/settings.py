"""Settings every responder shares: where AWS is, and the guardrails.

Each responder's own settings dataclass extends `CommonSettings`; all of them are validated
with `detector.config.parse_section`, so a mistake reads `responses.responders[0].region`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detector.responders.guardrails import Guardrails


@dataclass(frozen=True, slots=True, kw_only=True)
class CommonSettings:
    region: str = "us-east-1"
    # Only for tests and private endpoints: the IAM/STS endpoint to call instead of AWS's.
    endpoint_url: str | None = None
    # Account id (or "*") -> role to assume there; "{account}" in the ARN is replaced.
    assume_role_arn: Mapping[str, Any] = field(default_factory=dict)
    allow_accounts: tuple[str, ...] = ()
    allow_roles: tuple[str, ...] = ()
    allow_users: tuple[str, ...] = ()
    break_glass: tuple[str, ...] = ()
    max_per_hour: int = 10

    def guardrails(self) -> Guardrails:
        return Guardrails(
            allow_accounts=self.allow_accounts,
            allow_roles=self.allow_roles,
            allow_users=self.allow_users,
            break_glass=self.break_glass,
            max_per_hour=self.max_per_hour,
        )
