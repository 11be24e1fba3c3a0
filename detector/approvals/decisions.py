"""The two-person rule's decisions, as pure functions of the stored request, the person
deciding and the time (passed in).

- Nobody approves or denies their own session's request: the person the agent acts for
  (the response's `human`) is exactly who the rule is there to check.
- The first decision stands. Repeating it is harmless and answers with the decision already
  made (an approve click sent twice); a different decision after it is refused.
- A request nobody decided before `expires_at` is decided by the clock with the configured
  default outcome; deciding it afterwards is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from detector.errors import DetectorError
from detector.responders.approval import ApprovalState
from detector.state.approvals import APPROVED, DENIED, EXPIRED, PENDING, ApprovalRow

EXPIRY_DECIDER = "expiry"


class ApprovalError(DetectorError):
    """A decision that cannot be made; `status` is the HTTP status the API answers with."""

    status = 400


class UnknownApproval(ApprovalError):
    status = 404


class SelfApproval(ApprovalError):
    status = 403


class AlreadyDecided(ApprovalError):
    status = 409


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What to write for a request: its new status and outcome, by whom and when."""

    status: str
    outcome: str
    decided_by: str
    decided_at: datetime
    note: str | None = None


def same_person(a: str | None, b: str | None) -> bool:
    """Identities compare without case and surrounding space: `Alice@Example.com` from the
    token file is the SSO user `alice@example.com`."""
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def expiry(row: ApprovalRow, now: datetime, *, default_outcome: str) -> Decision | None:
    """The clock's decision for a pending request past its time, else None."""
    if not row.pending or now < row.expires_at:
        return None
    return Decision(
        status=EXPIRED,
        outcome=default_outcome,
        decided_by=EXPIRY_DECIDER,
        decided_at=now,
        note=f"nobody decided within the time allowed; default outcome {default_outcome}",
    )


def decide(
    row: ApprovalRow, *, approve: bool, person: str, now: datetime, note: str | None = None
) -> Decision | None:
    """The decision `person` makes on `row`, or None when it was already made (idempotent).

    Raises SelfApproval or AlreadyDecided. Call `expiry` first: an expired request is no
    longer pending.
    """
    if same_person(person, row.human):
        raise SelfApproval(
            f"{person} is the person session {row.session_id} acts for and cannot decide "
            "its approval; a second person must"
        )
    wanted = APPROVED if approve else DENIED
    if not row.pending:
        if row.status == wanted:
            return None
        raise AlreadyDecided(
            f"approval {row.approval_id} is already {row.status}"
            + (f" by {row.decided_by}" if row.decided_by else "")
        )
    return Decision(
        status=wanted,
        outcome="approve" if approve else "deny",
        decided_by=person,
        decided_at=now,
        note=note,
    )


def state_of(row: ApprovalRow) -> ApprovalState:
    """What the responders are told about a stored request."""
    if row.status == PENDING:
        return ApprovalState.PENDING
    if row.status == APPROVED:
        return ApprovalState.APPROVED
    if row.status == DENIED:
        return ApprovalState.DENIED
    # Expired: the default outcome decides whether the response goes ahead.
    return ApprovalState.APPROVED if row.outcome == "approve" else ApprovalState.EXPIRED
