"""The CloudTrail record as the core sees it: only the fields detection needs, typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})


# The two record types below are built once per event and never changed afterwards. They are
# not declared frozen because a frozen dataclass's __init__ costs four times as much, and this
# is the hottest allocation of the pipeline; nothing assigns to their fields after parsing.
@dataclass(slots=True, kw_only=True, eq=False)
class Actor:
    """The `userIdentity` block, flattened to what attribution uses."""

    type: str
    arn: str | None = None
    principal_id: str | None = None
    account_id: str | None = None
    access_key_id: str | None = None
    user_name: str | None = None
    session_issuer_arn: str | None = None
    session_issuer_type: str | None = None
    session_created_at: str | None = None
    mfa_authenticated: bool = False
    source_identity: str | None = None
    invoked_by: str | None = None
    on_behalf_of: str | None = None
    identity_provider: str | None = None
    credentials_issued_to: str | None = None

    @property
    def session_name(self) -> str | None:
        """The role session name of an assumed-role caller (the part after ':' in principalId)."""
        if self.type == "AssumedRole" and self.principal_id and ":" in self.principal_id:
            return self.principal_id.split(":", 1)[1]
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceRef:
    """One entry of the record's `resources[]`, or one derived from request parameters."""

    arn: str
    type: str | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class CloudTrailEvent:
    """One CloudTrail record. Request and response bodies are kept read-only and uncompared."""

    event_id: str
    event_time: datetime
    event_source: str
    event_name: str
    event_type: str = "AwsApiCall"
    aws_region: str = ""
    source_ip: str | None = None
    user_agent: str = ""
    error_code: str | None = None
    error_message: str | None = None
    read_only: bool | None = None
    recipient_account_id: str | None = None
    shared_event_id: str | None = None
    console_session: bool = False
    actor: Actor
    resources: tuple[ResourceRef, ...] = ()
    request_parameters: Mapping[str, Any] = field(
        default_factory=lambda: EMPTY, compare=False, repr=False
    )
    response_elements: Mapping[str, Any] = field(
        default_factory=lambda: EMPTY, compare=False, repr=False
    )
    additional_event_data: Mapping[str, Any] = field(
        default_factory=lambda: EMPTY, compare=False, repr=False
    )

    @property
    def account_id(self) -> str | None:
        """The account the call acted in: the recipient, else the caller's own account."""
        return self.recipient_account_id or self.actor.account_id

    @property
    def failed(self) -> bool:
        return self.error_code is not None

    @property
    def denied(self) -> bool:
        """True when IAM (or a resource policy) refused the call."""
        code = self.error_code
        return code is not None and (
            "AccessDenied" in code
            or code in DENIED_CODES
            or code.startswith("UnauthorizedOperation")
        )


DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "Client.UnauthorizedOperation",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "Forbidden",
        "AuthorizationError",
        "AuthFailure",
        "NotAuthorized",
    }
)
