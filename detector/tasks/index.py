"""The task registry as the pipeline's `TaskIndex`, read from the state store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from detector.config import Settings
from detector.core.task_index import TaskBinding, TaskIndex
from detector.state.store import StateStore
from detector.state.tasks import ENDED, TaskRow

# Tasks that stopped longer ago than this are left out: their credentials expired long before,
# and AWS refuses them, so a late event can only be a delayed delivery.
MAX_TASKS = 10_000


def binding(row: TaskRow) -> TaskBinding:
    ended = row.status == ENDED and row.ended_at is not None
    ends_at = min(row.expires_at, row.ended_at) if ended and row.ended_at else row.expires_at
    return TaskBinding(
        task_id=row.task_id,
        agent=row.agent,
        scope=row.scope,
        source_identity=row.source_identity,
        ends_at=ends_at,
        ended=ended and ends_at == row.ended_at,
        owner=row.owner,
        access_key_id=row.access_key_id,
        principal_id=row.principal_id,
    )


def task_index(rows: Iterable[TaskRow]) -> TaskIndex:
    return TaskIndex.of(binding(row) for row in rows)


def load_task_index(store: StateStore, *, now: datetime, keep: timedelta) -> TaskIndex:
    """Tasks still active, or that stopped within `keep` of `now` (their late use matters)."""
    return task_index(store.tasks(since=now - keep, limit=MAX_TASKS))


def replay_task_index(settings: Settings) -> TaskIndex:
    """For `replay --config`: every task of the configured store, if it has one. An embedded
    store file that does not exist yet means no tasks (replay never creates one)."""
    if settings.state.store == "sqlite" and not settings.state.path.exists():
        return TaskIndex()
    from detector.run import open_store

    store = open_store(settings)
    try:
        return task_index(store.tasks(limit=MAX_TASKS))
    finally:
        store.close()
