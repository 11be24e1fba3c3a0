"""The deny document and the evaluator that proves what it denies (pure, no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detector.core import revocation_policy as rp
from detector.core.iam_eval import UnsupportedCondition, conditions_hold, denies

T0 = datetime(2026, 8, 24, 10, 0, 0, tzinfo=UTC)
ROLE_ID = "AROAEXAMPLEROLEID1234"


def _agent(n: int) -> str:
    return f"{ROLE_ID}:agent-{n:08d}-6f1c-4e2b-9a41-0c3d5e7f9b21"


def _merge(doc: rp.RevocationDocument, *keys: rp.DenyKey, now: datetime = T0) -> rp.MergePlan:
    return rp.merge(
        doc, list(keys), expires=now + timedelta(hours=2), now=now, budget=rp.ROLE_INLINE_BUDGET
    )


def test_a_userid_deny_hits_that_session_and_no_other_of_the_role() -> None:
    plan = _merge(rp.RevocationDocument(), rp.DenyKey(user_id=_agent(1)))
    policy = plan.document.render()

    assert denies(policy, {"aws:userid": _agent(1)})
    assert not denies(policy, {"aws:userid": _agent(2)})
    assert not denies(policy, {"aws:userid": f"{ROLE_ID}:alice@example.com"})
    # A request context without the key (a service, a long-term key) is never matched.
    assert not denies(policy, {})


def test_source_identity_narrows_the_deny_and_is_its_own_statement() -> None:
    key = rp.DenyKey(user_id=_agent(1), source_identity="agent-1")
    policy = _merge(rp.RevocationDocument(), key).document.render()

    assert denies(policy, {"aws:userid": _agent(1), "aws:SourceIdentity": "agent-1"})
    assert not denies(policy, {"aws:userid": _agent(1), "aws:SourceIdentity": "agent-2"})
    assert not denies(policy, {"aws:userid": _agent(1)})
    (statement,) = policy["Statement"]
    assert statement["Condition"]["StringEquals"] == {
        "aws:userid": _agent(1),
        "aws:SourceIdentity": "agent-1",
    }


def test_a_shared_session_name_is_bracketed_by_token_issue_time() -> None:
    shared = f"{ROLE_ID}:alice@example.com"
    issued = T0 - timedelta(minutes=20)
    key = rp.DenyKey(user_id=shared, issued_from=issued, issued_until=issued + timedelta(seconds=1))
    policy = _merge(rp.RevocationDocument(), key).document.render()

    agent = {"aws:userid": shared, "aws:TokenIssueTime": rp.iso(issued)}
    person_later = {"aws:userid": shared, "aws:TokenIssueTime": rp.iso(issued + timedelta(hours=1))}
    person_earlier = {
        "aws:userid": shared,
        "aws:TokenIssueTime": rp.iso(issued - timedelta(seconds=1)),
    }
    assert denies(policy, agent)
    assert not denies(policy, person_later)
    assert not denies(policy, person_earlier)


def test_merging_the_same_key_again_is_already_applied() -> None:
    first = _merge(rp.RevocationDocument(), rp.DenyKey(user_id=_agent(1)))
    again = _merge(first.document, rp.DenyKey(user_id=_agent(1)))
    assert again.already_applied and again.key is None
    assert again.document.render() == first.document.render()


def test_a_document_round_trips_through_its_rendered_form() -> None:
    doc = rp.RevocationDocument()
    doc = _merge(doc, rp.DenyKey(user_id=_agent(1))).document
    doc = _merge(doc, rp.DenyKey(user_id=_agent(2), source_identity="agent-2")).document
    issued = T0 - timedelta(minutes=5)
    window = rp.DenyKey(
        user_id=_agent(3), issued_from=issued, issued_until=issued + timedelta(seconds=1)
    )
    doc = _merge(doc, window).document
    foreign = {"Sid": "Manual", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    rendered = doc.render()
    rendered["Statement"].append(foreign)

    parsed = rp.parse_document(rendered)
    assert parsed.foreign == (foreign,)
    assert len(parsed.entries) == 3
    assert parsed.render()["Statement"][0] == foreign
    assert sorted(map(str, parsed.render()["Statement"])) == sorted(map(str, rendered["Statement"]))


def test_expired_entries_are_pruned_and_live_ones_kept() -> None:
    doc = _merge(rp.RevocationDocument(), rp.DenyKey(user_id=_agent(1))).document
    later = T0 + timedelta(hours=4)
    plan = _merge(doc, rp.DenyKey(user_id=_agent(2)), now=later)
    policy = plan.document.render()
    assert plan.pruned == 1
    assert not denies(policy, {"aws:userid": _agent(1)})
    assert denies(policy, {"aws:userid": _agent(2)})


def test_five_hundred_revocations_over_a_day_stay_within_the_budget() -> None:
    doc = rp.RevocationDocument()
    pruned = 0
    largest = 0
    for n in range(500):
        now = T0 + timedelta(minutes=3 * n)
        plan = _merge(doc, rp.DenyKey(user_id=_agent(n), source_identity=f"agent-{n}"), now=now)
        doc = plan.document
        pruned += plan.pruned
        largest = max(largest, plan.size)
        policy = doc.render()
        assert denies(policy, {"aws:userid": _agent(n), "aws:SourceIdentity": f"agent-{n}"})
    assert largest <= rp.ROLE_INLINE_BUDGET
    assert pruned > 400


def test_a_full_budget_falls_back_to_the_compact_key_then_refuses() -> None:
    doc = rp.RevocationDocument()
    fallbacks = 0
    with pytest.raises(rp.BudgetFull):
        for n in range(1000):
            plan = _merge(
                doc,
                rp.DenyKey(user_id=_agent(n), source_identity=f"a-{n}"),
                rp.DenyKey(user_id=_agent(n)),
            )
            fallbacks += plan.fallback
            doc = plan.document
            assert plan.size <= rp.ROLE_INLINE_BUDGET
    assert fallbacks > 0
    # Full, and still not one statement that denies the role as a whole.
    policy = doc.render()
    assert not denies(policy, {"aws:userid": f"{ROLE_ID}:someone-else"})
    assert denies(policy, {"aws:userid": _agent(0), "aws:SourceIdentity": "a-0"})


def test_the_role_wide_shape_denies_only_older_sessions() -> None:
    policy = rp.role_wide(T0)
    assert denies(policy, {"aws:TokenIssueTime": rp.iso(T0 - timedelta(seconds=1))})
    assert not denies(policy, {"aws:TokenIssueTime": rp.iso(T0)})
    assert not denies(policy, {"aws:userid": _agent(1)})  # a long-term key has no issue time


def test_evaluator_operators() -> None:
    ctx = {"aws:userid": "AROAX:agent-1", "aws:TokenIssueTime": "2026-08-24T10:00:00Z"}
    assert conditions_hold({"StringLike": {"aws:userid": "AROAX:agent-*"}}, ctx)
    assert not conditions_hold({"StringLike": {"aws:userid": "AROAX:human-?"}}, ctx)
    assert conditions_hold({"StringEquals": {"AWS:UserId": ["x", "AROAX:agent-1"]}}, ctx)
    assert conditions_hold(
        {"DateLessThanEquals": {"aws:TokenIssueTime": "2026-08-24T10:00:00Z"}}, ctx
    )
    assert not conditions_hold(
        {"DateLessThan": {"aws:TokenIssueTime": "2026-08-24T10:00:00Z"}}, ctx
    )
    assert conditions_hold({"DateGreaterThan": {"aws:TokenIssueTime": "2026-08-24T09:59:59Z"}}, ctx)
    # Two operators are ANDed.
    assert not conditions_hold(
        {
            "StringEquals": {"aws:userid": "AROAX:agent-1"},
            "DateGreaterThanEquals": {"aws:TokenIssueTime": "2026-08-24T10:00:01Z"},
        },
        ctx,
    )
    with pytest.raises(UnsupportedCondition):
        conditions_hold({"NumericEquals": {"x": "1"}}, ctx)
    # Allow statements never deny; Action lists are matched.
    allow = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    assert not denies(allow, ctx)
    s3_only = {"Statement": {"Effect": "Deny", "Action": ["s3:*"], "Resource": "*"}}
    assert denies(s3_only, ctx, action="s3:GetObject")
    assert not denies(s3_only, ctx, action="iam:ListRoles")
