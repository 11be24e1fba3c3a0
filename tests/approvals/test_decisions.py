"""The two-person rule's pure decisions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from detector.approvals import decisions
from detector.responders.approval import ApprovalState
from detector.state.approvals import ApprovalRow
from tests.approvals.common import T0

ROW = ApprovalRow(
    approval_id="ap-1",
    request_key="s/revoke-session",
    session_id="s",
    action="revoke-session",
    reason="r",
    scope=None,
    agent="kiro",
    human="alice@example.com",
    principal=None,
    requested_at=T0,
    expires_at=T0 + timedelta(hours=1),
)


def _decided(status: str, outcome: str) -> ApprovalRow:
    return ApprovalRow(
        **{f: getattr(ROW, f) for f in ROW.__dataclass_fields__ if f not in ("status", "outcome")},
        status=status,
        outcome=outcome,
    )


def test_the_sessions_own_person_cannot_decide_in_any_spelling() -> None:
    for person in ("alice@example.com", " Alice@Example.COM "):
        with pytest.raises(decisions.SelfApproval):
            decisions.decide(ROW, approve=True, person=person, now=T0)
        with pytest.raises(decisions.SelfApproval):
            decisions.decide(ROW, approve=False, person=person, now=T0)


def test_a_second_person_decides() -> None:
    made = decisions.decide(ROW, approve=True, person="bob", now=T0, note="seen")
    assert made == decisions.Decision(
        status="approved", outcome="approve", decided_by="bob", decided_at=T0, note="seen"
    )
    denied = decisions.decide(ROW, approve=False, person="bob", now=T0)
    assert denied is not None and (denied.status, denied.outcome) == ("denied", "deny")


def test_the_first_decision_stands() -> None:
    approved = _decided("approved", "approve")
    assert decisions.decide(approved, approve=True, person="carol", now=T0) is None
    with pytest.raises(decisions.AlreadyDecided):
        decisions.decide(approved, approve=False, person="carol", now=T0)
    expired = _decided("expired", "deny")
    with pytest.raises(decisions.AlreadyDecided):
        decisions.decide(expired, approve=True, person="carol", now=T0)


def test_expiry_applies_the_default_outcome_only_when_due() -> None:
    assert decisions.expiry(ROW, T0 + timedelta(minutes=59), default_outcome="deny") is None
    due = decisions.expiry(ROW, T0 + timedelta(hours=1), default_outcome="deny")
    assert due is not None and (due.status, due.outcome, due.decided_by) == (
        "expired",
        "deny",
        "expiry",
    )
    assert (
        decisions.expiry(
            _decided("approved", "approve"), T0 + timedelta(days=1), default_outcome="deny"
        )
        is None
    )


def test_what_the_responders_are_told() -> None:
    assert decisions.state_of(ROW) is ApprovalState.PENDING
    assert decisions.state_of(_decided("approved", "approve")) is ApprovalState.APPROVED
    assert decisions.state_of(_decided("denied", "deny")) is ApprovalState.DENIED
    assert decisions.state_of(_decided("expired", "deny")) is ApprovalState.EXPIRED
    assert decisions.state_of(_decided("expired", "approve")) is ApprovalState.APPROVED
