"""The exceed-scope request's key and validation, the gate's verdict from the service's
answer, and the store-backed gate opening such requests once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from detector.approvals.decisions import ApprovalError, SelfApproval
from detector.approvals.exceed import parse_request, request_key
from detector.approvals.gate import StoreApprovalGate
from detector.approvals.settings import ApprovalSettings
from detector.gate.approval import askable, request_body, unavailable, with_approval
from detector.gate.decide import CheckedCall, Verdict
from detector.state.store import StateStore
from tests.approvals.common import T0, Clock

BODY = {
    "kind": "exceed-scope",
    "session_id": "ses-1",
    "agent": "kiro",
    "human": "alice@example.com",
    "scope": "fix-api",
    "command": "aws cloudformation delete-stack --stack-name prod",
    "actions": ["cloudformation:DeleteStack"],
    "resources": ["arn:aws:cloudformation:us-east-1:111122223333:stack/prod"],
    "reasons": ["not allowed"],
}
CALL = CheckedCall(kind="aws", command=str(BODY["command"]), decision="block",
                   reasons=("cloudformation:DeleteStack is not allowed",),
                   actions=("cloudformation:DeleteStack",), region="us-east-1")  # fmt: skip
BLOCKED = Verdict(decision="block", reason="x", scope="fix-api", calls=(CALL,))


def _key(**changes: object) -> str:
    base: dict[str, object] = {"session_id": "s", "scope": "sc", "agent": "a",
                               "actions": ["x:A", "x:B"], "resources": ["r"]}  # fmt: skip
    base.update(changes)
    return request_key(**base)  # type: ignore[arg-type]


def test_the_key_ignores_order_and_repetition_and_nothing_else() -> None:
    assert _key() == _key(actions=["x:B", "x:A", "x:A"])
    for change in ({"session_id": "t"}, {"scope": "o"}, {"agent": "b"},
                   {"actions": ["x:A"]}, {"resources": ["q"]}):  # fmt: skip
        assert _key(**change) != _key(), change
    assert _key().startswith("exceed-scope/")


def test_bad_requests_name_the_field() -> None:
    assert parse_request(BODY).key() == parse_request(dict(BODY)).key()
    for field, value, text in [
        ("kind", "revocation", "kind"),
        ("human", "", "human"),
        ("actions", [], "actions"),
        ("actions", "x:A", "actions"),
        ("resources", [1], "resources"),
    ]:
        with pytest.raises(ApprovalError, match=text):
            parse_request({**BODY, field: value})


@pytest.mark.parametrize(
    ("status", "decision", "text"),
    [
        ("approved", "allow", "allowed by approval ap-1 decided by bob"),
        ("pending", "block", "trailguard approvals approve ap-1"),
        ("denied", "block", "approval ap-1 was denied by bob"),
        ("expired", "block", "approval ap-1 expired"),
        ("weird", "block", "does not know"),
    ],
)
def test_only_an_approved_request_lets_the_call_run(status: str, decision: str, text: str) -> None:
    verdict = with_approval(BLOCKED, {"id": "ap-1", "status": status, "decided_by": "bob"})
    assert verdict.decision == decision and text in verdict.reason


def test_what_the_gate_asks_for() -> None:
    body = request_body(BLOCKED, line="L", session_id="s", agent="kiro", human="alice")
    assert parse_request(body).actions == ("cloudformation:DeleteStack",)
    assert body["region"] == "us-east-1" and body["command"] == "L"
    unreadable = Verdict(decision="block", reason="cannot parse", scope="fix-api")
    assert not askable(unreadable) and askable(BLOCKED)
    assert unavailable(BLOCKED, "no service").blocked


def test_the_store_opens_one_request_and_keeps_the_rule(store: StateStore) -> None:
    clock = Clock()
    gate = StoreApprovalGate(store, ApprovalSettings(expire_seconds=60), required=False,
                             clock=clock)  # fmt: skip
    wanted = parse_request(BODY)

    async def flow() -> None:
        first = await gate.open_exceed(wanted, requested_by="carol")
        again = await gate.open_exceed(wanted, requested_by="carol")
        assert again.approval_id == first.approval_id and first.pending
        assert first.response["actions"] == ["cloudformation:DeleteStack"]
        with pytest.raises(SelfApproval):
            await gate.decide(first.approval_id, approve=True, person="Alice@Example.com")
        other = await gate.open_exceed(parse_request({**BODY, "session_id": "ses-2"}),
                                       requested_by="carol")  # fmt: skip
        clock.now = T0 + timedelta(seconds=61)
        expired = await gate.open_exceed(wanted, requested_by="carol")
        assert expired.status == "expired" and other.approval_id != first.approval_id

    asyncio.run(flow())
