"""What the state store keeps for the two-person rule and for the session page.

`ApprovalRow` is one held response: opened when a response needs a second person, decided
once (approved, denied, or expired with the configured default outcome), and marked released
once the gate has handed the decision to the responders. `TimelineEntry` is one thing that
happened in an agent session (a finding, an alert, a response, an approval) as the session
page shows it; `SessionSummary` is who the session is, as its latest records said.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"
STATUSES = (PENDING, APPROVED, DENIED, EXPIRED)

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRow:
    """One request for a second person's approval, and its decision once there is one.

    request_key  what makes two requests the same (session and action): asking again
                 returns the open row instead of a second request
    human        the session's own person, who may not approve it
    response     the held response's contract record, so a restarted service can act on it
    outcome      what the decision means for the response: "approve" or "deny" (for an
                 expired request, the configured default outcome)
    """

    approval_id: str
    request_key: str
    session_id: str
    action: str
    reason: str
    scope: str | None
    agent: str | None
    human: str | None
    principal: str | None
    requested_at: datetime
    expires_at: datetime
    response: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False)
    status: str = PENDING
    outcome: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None
    released_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.approval_id,
            "session_id": self.session_id,
            "action": self.action,
            "reason": self.reason,
            "scope": self.scope,
            "agent": self.agent,
            "human": self.human,
            "principal": self.principal,
            "status": self.status,
            "outcome": self.outcome,
            "requested_at": iso(self.requested_at),
            "expires_at": iso(self.expires_at),
            "decided_by": self.decided_by,
            "decided_at": iso(self.decided_at) if self.decided_at else None,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEntry:
    """One line of a session's timeline. `entry_key` is unique within the session, so
    recording the same batch twice (redelivery) adds nothing."""

    session_id: str
    entry_key: str
    at: datetime
    kind: str  # finding | alert | response | approval
    severity: str | None
    title: str
    record: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSummary:
    """Who an agent session is, as its latest recorded records said."""

    session_id: str
    agent: str | None
    human: str | None
    principal: str | None
    scope: str | None
    on_human_credentials: bool
    last_at: datetime
    entries: int = 0


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
