"""The PostgreSQL store's task registry (migration 4): statements and row mapping.
`PostgresStateStore` formats the statements with its schema and runs them."""

# The statements are built from this module's own column list; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from detector.state.tasks import TaskRow

COLUMNS = (
    "task_id, agent, owner, scope, role_arn, source_identity, created_at, expires_at, status, "
    "ended_at, access_key_id, principal_id"
)

STATEMENTS: dict[str, str] = {
    "task_put": f"INSERT INTO {{schema}}.tasks ({COLUMNS}) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
    "task_by_id": f"SELECT {COLUMNS} FROM {{schema}}.tasks WHERE task_id = %s",
    "tasks": (
        f"SELECT {COLUMNS} FROM {{schema}}.tasks "
        "WHERE (%(status)s::text IS NULL OR status = %(status)s) "
        "AND (%(since)s::timestamptz IS NULL OR expires_at >= %(since)s "
        "OR ended_at >= %(since)s) "
        "ORDER BY created_at DESC, task_id LIMIT %(limit)s"
    ),
    "task_end": (
        "UPDATE {schema}.tasks SET status = 'ended', ended_at = %s "
        "WHERE task_id = %s AND status = 'active'"
    ),
}


def task_params(row: TaskRow) -> tuple[Any, ...]:
    return (
        row.task_id,
        row.agent,
        row.owner,
        row.scope,
        row.role_arn,
        row.source_identity,
        row.created_at,
        row.expires_at,
        row.status,
        row.ended_at,
        row.access_key_id,
        row.principal_id,
    )


def task_row(r: Sequence[Any]) -> TaskRow:
    return TaskRow(
        task_id=r[0],
        agent=r[1],
        owner=r[2],
        scope=r[3],
        role_arn=r[4],
        source_identity=r[5],
        created_at=_utc(r[6]),
        expires_at=_utc(r[7]),
        status=r[8],
        ended_at=None if r[9] is None else _utc(r[9]),
        access_key_id=r[10],
        principal_id=r[11],
    )


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
