"""The gate's verdicts (migration 5), on every store's real backend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from detector.state.approvals import SessionSummary
from detector.state.gate_verdicts import GateVerdictRow
from tests.state.conftest import Opener

T0 = datetime(2026, 12, 1, 14, 0, 0, 123456, tzinfo=UTC)


def _verdict(verdict_id: str = "gv-0001", **changes: object) -> GateVerdictRow:
    row = GateVerdictRow(
        verdict_id=verdict_id,
        session_id="a1b2c3d4e5f6",
        task_id="a1b2c3d4e5f6",
        access_key_id="ASIAEXAMPLETASK00001",
        agent="kiro",
        owner="alice@example.com",
        scope="ce-4821-fix",
        decision="block",
        reason="aws cloudformation delete-stack: cloudformation:DeleteStack is not allowed",
        command="aws cloudformation delete-stack --stack-name prod-api",
        tool_name="execute_bash",
        hook="kiro",
        decided_at=T0,
        received_at=T0 + timedelta(milliseconds=40),
        sent_by="carol@example.com",
        detail={"calls": [{"kind": "aws", "actions": ["cloudformation:DeleteStack"]}], "notes": []},
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def test_a_verdict_reads_back_equal_from_another_store(open_store: Opener) -> None:
    row = _verdict()
    stored, created = open_store().record_gate_verdict(row, cap=10)
    assert created and stored == row and stored.detail == row.detail
    again = open_store().gate_verdict("gv-0001")
    assert again == row and again is not None and again.detail == row.detail
    assert open_store().gate_verdict("nope") is None


def test_a_retried_send_is_stored_once_and_the_first_wins(open_store: Opener) -> None:
    store = open_store()
    store.record_gate_verdict(_verdict(), cap=10)
    stored, created = store.record_gate_verdict(_verdict(reason="changed in transit"), cap=10)
    assert not created and stored.reason == _verdict().reason
    assert len(store.gate_verdicts()) == 1


def test_filters_and_order(open_store: Opener) -> None:
    store = open_store()
    store.record_gate_verdict(_verdict("gv-1"), cap=10)
    store.record_gate_verdict(
        _verdict("gv-2", decision="allow", decided_at=T0 + timedelta(seconds=1)), cap=10
    )
    store.record_gate_verdict(
        _verdict("gv-3", session_id="ses-other", task_id=None, decided_at=T0), cap=10
    )
    assert store.gate_verdicts()[0].verdict_id == "gv-2"
    session = [v.verdict_id for v in store.gate_verdicts(session_id="a1b2c3d4e5f6")]
    assert session == ["gv-2", "gv-1"]
    assert [v.verdict_id for v in store.gate_verdicts(task_id="a1b2c3d4e5f6")] == ["gv-2", "gv-1"]
    blocked = store.gate_verdicts(session_id="a1b2c3d4e5f6", decision="block")
    assert [v.verdict_id for v in blocked] == ["gv-1"]
    assert [v.verdict_id for v in store.gate_verdicts(limit=1)] == ["gv-2"]


def test_each_session_keeps_its_newest_cap_verdicts(open_store: Opener) -> None:
    store = open_store()
    for n in range(5):
        at = T0 + timedelta(seconds=n)
        store.record_gate_verdict(_verdict(f"gv-{n}", decided_at=at), cap=3)
    store.record_gate_verdict(_verdict("gv-x", session_id="ses-other"), cap=3)
    kept = [v.verdict_id for v in store.gate_verdicts(session_id="a1b2c3d4e5f6")]
    assert kept == ["gv-4", "gv-3", "gv-2"]
    assert [v.verdict_id for v in store.gate_verdicts(session_id="ses-other")] == ["gv-x"]


def test_a_new_verdict_upserts_the_session_summary(open_store: Opener) -> None:
    store = open_store()
    summary = SessionSummary(
        session_id="a1b2c3d4e5f6",
        agent="kiro",
        human="alice@example.com",
        principal=None,
        scope="ce-4821-fix",
        on_human_credentials=False,
        last_at=T0.replace(microsecond=0),
    )
    store.record_gate_verdict(_verdict(), cap=10, summary=summary)
    found = store.session_summary("a1b2c3d4e5f6")
    assert found is not None
    assert (found.agent, found.human, found.scope, found.last_at) == (
        "kiro", "alice@example.com", "ce-4821-fix", summary.last_at)  # fmt: skip
    assert [s.session_id for s in store.recent_sessions()] == ["a1b2c3d4e5f6"]
    # A retried send changes nothing, not even the summary's time.
    later = replace(summary, last_at=T0 + timedelta(hours=1))
    store.record_gate_verdict(_verdict(), cap=10, summary=later)
    again = store.session_summary("a1b2c3d4e5f6")
    assert again is not None and again.last_at == summary.last_at
