"""The response journal (migration 2), on every store's real backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detector.state.store import JournalEntry, StateStore
from tests.state.conftest import Opener

T0 = datetime(2026, 8, 24, 10, 0, 0, tzinfo=UTC)


def _entry(n: int, outcome: str, *, session: str = "ses-1", dry_run: bool = False) -> JournalEntry:
    return JournalEntry(
        recorded_at=T0 + timedelta(minutes=n),
        response_key=f"{session}/revoke-session",
        session_id=session,
        action="revoke-session",
        responder=None if outcome == "decided" else "revoke-session",
        outcome=outcome,
        dry_run=dry_run,
        reason=f"step {n}",
        detail={"policy": {"Statement": [{"Sid": "TrailGuardU2026082412"}]}, "n": n},
    )


def test_entries_come_back_in_order_with_their_detail(store: StateStore) -> None:
    store.journal([_entry(0, "decided"), _entry(1, "failed"), _entry(2, "applied")])
    store.journal([_entry(3, "decided", session="ses-2"), _entry(4, "dry_run", session="ses-2")])

    mine = store.journal_entries(session_id="ses-1")
    assert [e.outcome for e in mine] == ["decided", "failed", "applied"]
    assert mine[2].detail == {"policy": {"Statement": [{"Sid": "TrailGuardU2026082412"}]}, "n": 2}
    assert mine[2].recorded_at == T0 + timedelta(minutes=2)
    assert mine[0].responder is None and mine[2].responder == "revoke-session"
    assert all(e.id is not None for e in mine)
    assert [e.session_id for e in store.journal_entries()] == ["ses-1"] * 3 + ["ses-2"] * 2


def test_filters_and_limit(store: StateStore) -> None:
    store.journal([_entry(n, "applied" if n % 2 else "decided") for n in range(10)])

    since = store.journal_entries(since=T0 + timedelta(minutes=5), outcomes=["applied"])
    assert [e.reason for e in since] == ["step 5", "step 7", "step 9"]
    newest = store.journal_entries(limit=3)
    assert [e.reason for e in newest] == ["step 7", "step 8", "step 9"]
    assert store.journal_entries(response_key="nope") == []


def test_the_journal_survives_reopening(open_store: Opener) -> None:
    first = open_store()
    first.journal([_entry(0, "decided"), _entry(1, "applied")])
    first.close()
    again = open_store()
    assert [e.outcome for e in again.journal_entries(session_id="ses-1")] == ["decided", "applied"]
