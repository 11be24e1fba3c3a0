"""The task registry (migration 4), on every store's real backend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from detector.errors import StateError
from detector.state.tasks import ACTIVE, ENDED, TaskRow
from tests.state.conftest import Opener

T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def _task(task_id: str = "t1a2b3c4d5e6", **changes: object) -> TaskRow:
    row = TaskRow(
        task_id=task_id,
        agent="kiro",
        owner="alice@example.com",
        scope="ce-4821-fix",
        role_arn="arn:aws:iam::111122223333:role/agent-ce",
        source_identity=f"agent-kiro-{task_id}",
        created_at=T0,
        expires_at=T0 + timedelta(hours=1),
        access_key_id=f"ASIA{task_id.upper()}",
        principal_id=f"AROAEXAMPLE:agent-kiro-{task_id}",
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def test_a_registered_task_reads_back_equal_from_another_store(open_store: Opener) -> None:
    row = _task(owner=None)
    open_store().put_task(row)
    assert open_store().task(row.task_id) == row
    assert open_store().task("nope") is None


def test_a_task_id_or_source_identity_is_registered_once(open_store: Opener) -> None:
    store = open_store()
    store.put_task(_task())
    with pytest.raises(StateError):
        store.put_task(_task())
    with pytest.raises(StateError):
        store.put_task(_task("other", source_identity="agent-kiro-t1a2b3c4d5e6"))
    assert [t.task_id for t in store.tasks()] == ["t1a2b3c4d5e6"]


def test_end_is_recorded_once(open_store: Opener) -> None:
    store = open_store()
    store.put_task(_task())
    ended = store.end_task("t1a2b3c4d5e6", at=T0 + timedelta(minutes=5))
    assert ended is not None
    assert (ended.status, ended.ended_at) == (ENDED, T0 + timedelta(minutes=5))
    again = store.end_task("t1a2b3c4d5e6", at=T0 + timedelta(minutes=9))
    assert again == ended
    assert store.end_task("nope", at=T0) is None


def test_listing_filters_by_status_and_by_when_the_task_stopped_mattering(
    open_store: Opener,
) -> None:
    store = open_store()
    store.put_task(
        _task("old", created_at=T0 - timedelta(days=2), expires_at=T0 - timedelta(days=1))
    )
    store.put_task(_task("live", created_at=T0 + timedelta(minutes=1)))
    store.put_task(_task("done", created_at=T0 + timedelta(minutes=2)))
    store.end_task("done", at=T0 + timedelta(minutes=3))
    assert [t.task_id for t in store.tasks()] == ["done", "live", "old"]
    assert [t.task_id for t in store.tasks(status=ACTIVE)] == ["live", "old"]
    assert [t.task_id for t in store.tasks(since=T0)] == ["done", "live"]
    assert [t.task_id for t in store.tasks(limit=1)] == ["done"]


def test_active_at_follows_status_and_expiry() -> None:
    row = _task()
    assert row.active_at(T0 + timedelta(minutes=59))
    assert not row.active_at(T0 + timedelta(hours=1))
    assert not replace(row, status=ENDED).active_at(T0)
