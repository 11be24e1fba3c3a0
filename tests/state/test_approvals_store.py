"""Approvals and the session timeline (migration 3), on every store's real backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detector.state.approvals import (
    APPROVED,
    DENIED,
    PENDING,
    ApprovalRow,
    SessionSummary,
    TimelineEntry,
)
from detector.state.store import StateStore
from tests.state.conftest import Opener

T0 = datetime(2025, 12, 8, 14, 0, tzinfo=UTC)


def _row(approval_id: str = "ap-1", session: str = "sess-1", **changes: object) -> ApprovalRow:
    fields: dict[str, object] = {
        "approval_id": approval_id,
        "request_key": f"{session}/revoke-session",
        "session_id": session,
        "action": "revoke-session",
        "reason": "critical destructive-action: DeleteStack",
        "scope": "ce-4821-fix",
        "agent": "kiro",
        "human": "alice@example.com",
        "principal": "arn:aws:sts::111122223333:assumed-role/dev/kiro",
        "requested_at": T0,
        "expires_at": T0 + timedelta(hours=1),
        "response": {"type": "response", "action": "revoke-session", "session_id": session},
    }
    fields.update(changes)
    return ApprovalRow(**fields)  # type: ignore[arg-type]


def test_opening_twice_returns_the_first_request(store: StateStore) -> None:
    first = store.open_approval(_row("ap-1"))
    again = store.open_approval(_row("ap-2"))

    assert first.approval_id == again.approval_id == "ap-1"
    assert again.status == PENDING and again.response["session_id"] == "sess-1"
    assert [r.approval_id for r in store.approvals()] == ["ap-1"]
    assert store.approval("ap-2") is None


def test_the_first_decision_stands_and_is_journaled(store: StateStore) -> None:
    store.open_approval(_row())
    at = T0 + timedelta(minutes=5)
    decided = store.decide_approval(
        "ap-1", status=APPROVED, outcome="approve", decided_by="bob", decided_at=at, note="ok"
    )
    late = store.decide_approval(
        "ap-1", status=DENIED, outcome="deny", decided_by="carol", decided_at=at + timedelta(1)
    )

    assert decided is not None and late is not None
    assert (late.status, late.outcome, late.decided_by, late.decided_at, late.note) == (
        APPROVED,
        "approve",
        "bob",
        at,
        "ok",
    )
    assert (
        store.decide_approval(
            "nope", status=DENIED, outcome="deny", decided_by="bob", decided_at=at
        )
        is None
    )
    assert store.approvals(status=PENDING) == []
    assert [r.approval_id for r in store.approvals(status=APPROVED)] == ["ap-1"]


def test_released_once(store: StateStore) -> None:
    store.open_approval(_row("ap-1", "s1"))
    store.open_approval(_row("ap-2", "s2"))
    store.decide_approval("ap-2", status=DENIED, outcome="deny", decided_by="bob", decided_at=T0)

    assert [r.approval_id for r in store.unreleased_approvals()] == ["ap-2"]
    store.mark_approval_released("ap-2", T0 + timedelta(seconds=1))
    assert store.unreleased_approvals() == []
    row = store.approval("ap-2")
    assert row is not None and row.released_at == T0 + timedelta(seconds=1)


def test_approvals_survive_reopening(open_store: Opener) -> None:
    open_store().open_approval(_row())
    row = open_store().approval("ap-1")
    assert row is not None and row.expires_at == T0 + timedelta(hours=1)
    assert row.session_id == "sess-1" and row.human == "alice@example.com"


def _entry(session: str, n: int) -> TimelineEntry:
    return TimelineEntry(
        session_id=session,
        entry_key=f"finding/e{n}/destructive-action",
        at=T0 + timedelta(seconds=n),
        kind="finding",
        severity="critical",
        title=f"event {n}",
        record={"event_id": f"e{n}"},
    )


def _summary(session: str, n: int, **changes: object) -> SessionSummary:
    fields: dict[str, object] = {
        "session_id": session,
        "agent": "kiro",
        "human": None,
        "principal": "arn:aws:sts::1:assumed-role/dev/kiro",
        "scope": "ce-4821-fix",
        "on_human_credentials": False,
        "last_at": T0 + timedelta(seconds=n),
    }
    fields.update(changes)
    return SessionSummary(**fields)  # type: ignore[arg-type]


def test_timeline_is_idempotent_ordered_and_capped(store: StateStore) -> None:
    store.record_timeline([_entry("s1", n) for n in range(3)], [_summary("s1", 2)], cap=4)
    # Redelivery of the same batch adds nothing.
    store.record_timeline([_entry("s1", n) for n in range(3)], [_summary("s1", 2)], cap=4)
    assert [e.title for e in store.timeline("s1")] == ["event 0", "event 1", "event 2"]

    store.record_timeline(
        [_entry("s1", n) for n in range(3, 6)], [_summary("s1", 5, human="alice")], cap=4
    )
    kept = store.timeline("s1")
    assert [e.title for e in kept] == ["event 2", "event 3", "event 4", "event 5"]
    assert kept[0].record == {"event_id": "e2"} and kept[0].at == T0 + timedelta(seconds=2)
    assert [e.title for e in store.timeline("s1", limit=2)] == ["event 4", "event 5"]

    summary = store.session_summary("s1")
    assert summary is not None
    assert (summary.human, summary.last_at, summary.entries) == (
        "alice",
        T0 + timedelta(seconds=5),
        4,
    )


def test_recent_sessions_newest_first(store: StateStore) -> None:
    store.record_timeline([_entry("old", 1)], [_summary("old", 1)], cap=10)
    store.record_timeline(
        [_entry("new", 9)], [_summary("new", 9, on_human_credentials=True)], cap=10
    )
    recent = store.recent_sessions()
    assert [s.session_id for s in recent] == ["new", "old"]
    assert recent[0].on_human_credentials is True
    assert store.session_summary("missing") is None
    assert store.timeline("missing") == []


@pytest.mark.integration
def test_postgres_keeps_times_and_json_natively(pg_schema: str) -> None:
    import psycopg
    from psycopg import sql

    from detector.state.postgres import PostgresStateStore
    from tests.state.conftest import PG_DSN

    PostgresStateStore(PG_DSN, schema=pg_schema).close()
    with psycopg.connect(PG_DSN) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = {} AND table_name IN "
                "('approvals', 'session_timeline', 'session_summaries')"
            ).format(sql.Literal(pg_schema))
        ).fetchall()
    types = {(t, c): d for t, c, d in rows}
    assert types[("approvals", "response")] == "jsonb"
    assert types[("approvals", "expires_at")] == "timestamp with time zone"
    assert types[("session_timeline", "record")] == "jsonb"
    assert types[("session_summaries", "on_human_credentials")] == "boolean"
