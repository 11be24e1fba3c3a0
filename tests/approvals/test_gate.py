"""StoreApprovalGate on each real state store (SQLite, PostgreSQL): holding, deciding,
expiring, releasing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from detector.approvals.decisions import AlreadyDecided, SelfApproval, UnknownApproval
from detector.approvals.gate import StoreApprovalGate
from detector.approvals.settings import ApprovalSettings
from detector.core.findings import Response
from detector.errors import StateError
from detector.metrics import ApprovalMetrics, Metrics
from detector.responders.approval import ApprovalState
from detector.state.store import StateStore
from tests.approvals.common import Clock, response

Released = list[tuple[str, ApprovalState]]


def _gate(
    store: StateStore,
    clock: Clock,
    *,
    default: str = "deny",
    required: bool = True,
    scopes: frozenset[str] = frozenset(),
) -> tuple[StoreApprovalGate, Released, Metrics]:
    metrics = Metrics(runtime_collectors=False)
    gate = StoreApprovalGate(
        store,
        ApprovalSettings(expire_seconds=600, default_outcome=default),
        required=required,
        scopes=scopes,
        metrics=ApprovalMetrics(metrics),
        clock=clock,
    )
    released: Released = []

    async def release(held: Response, state: ApprovalState) -> None:
        released.append((held.session_id, state))

    gate.on_release(release)
    return gate, released, metrics


def _count(metrics: Metrics, outcome: str) -> float:
    return next(
        v
        for n, labels, v in metrics.samples()
        if n == "trailguard_approvals_total" and labels == {"outcome": outcome}
    )


async def test_nothing_is_held_unless_required(store: StateStore) -> None:
    gate, _, _ = _gate(store, Clock(), required=False, scopes=frozenset({"other-scope"}))
    assert await gate.check(response()) is ApprovalState.NOT_REQUIRED
    assert store.approvals() == []
    per_scope, _, _ = _gate(store, Clock(), required=False, scopes=frozenset({"ce-4821-fix"}))
    assert await per_scope.check(response()) is ApprovalState.PENDING


async def test_asking_again_is_the_same_request(store: StateStore) -> None:
    gate, _, metrics = _gate(store, Clock())
    assert await gate.check(response()) is ApprovalState.PENDING
    assert await gate.check(response()) is ApprovalState.PENDING
    assert len(store.approvals()) == 1
    assert _count(metrics, "requested") == 1


async def test_a_second_person_approves_and_the_responders_are_told_once(
    store: StateStore,
) -> None:
    clock = Clock()
    gate, released, metrics = _gate(store, clock)
    await gate.check(response())
    (row,) = store.approvals()

    with pytest.raises(SelfApproval):
        await gate.decide(row.approval_id, approve=True, person="alice@example.com")
    clock.now += timedelta(minutes=3)
    decided = await gate.decide(row.approval_id, approve=True, person="bob@example.com", note="ok")
    again = await gate.decide(row.approval_id, approve=True, person="carol@example.com")
    with pytest.raises(AlreadyDecided):
        await gate.decide(row.approval_id, approve=False, person="carol@example.com")
    await gate.sweep()

    assert (decided.status, decided.decided_by, decided.decided_at, decided.note) == (
        "approved",
        "bob@example.com",
        clock.now,
        "ok",
    )
    assert again.decided_by == "bob@example.com"
    assert released == [("ses-kiro", ApprovalState.APPROVED)]
    assert await gate.check(response()) is ApprovalState.APPROVED
    assert (_count(metrics, "approved"), _count(metrics, "refused")) == (1, 2)
    with pytest.raises(UnknownApproval):
        await gate.decide("ap-nope", approve=True, person="bob@example.com")


async def test_denied_is_journaled_and_released_as_denied(store: StateStore) -> None:
    gate, released, _ = _gate(store, Clock())
    await gate.check(response())
    (row,) = store.approvals()
    await gate.decide(row.approval_id, approve=False, person="bob@example.com")
    stored = store.approval(row.approval_id)
    assert stored is not None and stored.status == "denied" and stored.released_at is not None
    assert released == [("ses-kiro", ApprovalState.DENIED)]
    assert await gate.check(response()) is ApprovalState.DENIED


@pytest.mark.parametrize(
    ("default", "state"), [("deny", ApprovalState.EXPIRED), ("approve", ApprovalState.APPROVED)]
)
async def test_expiry_applies_the_default_outcome(
    store: StateStore, default: str, state: ApprovalState
) -> None:
    clock = Clock()
    gate, released, metrics = _gate(store, clock, default=default)
    await gate.check(response())
    (row,) = store.approvals()
    clock.now += timedelta(seconds=599)
    await gate.sweep()
    assert store.approvals(status="pending") != []

    clock.now += timedelta(seconds=1)
    await gate.sweep()
    expired = store.approval(row.approval_id)
    assert expired is not None
    assert (expired.status, expired.outcome, expired.decided_by) == ("expired", default, "expiry")
    assert released == [("ses-kiro", state)]
    assert await gate.check(response()) is state
    with pytest.raises(AlreadyDecided):
        await gate.decide(row.approval_id, approve=True, person="bob@example.com")
    assert _count(metrics, "expired") == 1


async def test_check_itself_expires_a_due_request(store: StateStore) -> None:
    clock = Clock()
    gate, _, _ = _gate(store, clock)
    await gate.check(response())
    clock.now += timedelta(hours=2)
    assert await gate.check(response()) is ApprovalState.EXPIRED


async def test_a_failed_release_is_retried_at_the_next_sweep(store: StateStore) -> None:
    gate, _, _ = _gate(store, Clock())
    calls: list[ApprovalState] = []

    async def flaky(held: Response, state: ApprovalState) -> None:
        calls.append(state)
        if len(calls) == 1:
            raise RuntimeError("responder down")

    gate.on_release(flaky)
    await gate.check(response())
    (row,) = store.approvals()
    with pytest.raises(RuntimeError):
        await gate.decide(row.approval_id, approve=True, person="bob@example.com")
    assert [r.approval_id for r in store.unreleased_approvals()] == [row.approval_id]
    await gate.sweep()
    assert calls == [ApprovalState.APPROVED, ApprovalState.APPROVED]
    assert store.unreleased_approvals() == []


async def test_a_decision_made_elsewhere_is_released_by_the_sweep(
    store: StateStore,
) -> None:
    service, released, _ = _gate(store, Clock())
    await service.check(response())
    (row,) = store.approvals()
    # The CLI's gate has no responders: it records the decision and leaves the release.
    cli = StoreApprovalGate(store, ApprovalSettings(), required=True, clock=Clock())
    await cli.decide(row.approval_id, approve=True, person="bob@example.com")
    assert released == [] and len(store.unreleased_approvals()) == 1
    assert await service.sweep() == 1
    assert released == [("ses-kiro", ApprovalState.APPROVED)]


async def test_a_closed_store_is_an_error_not_a_silent_pass(store: StateStore) -> None:
    gate, _, _ = _gate(store, Clock())
    store.close()
    with pytest.raises(StateError):
        await gate.check(response())
