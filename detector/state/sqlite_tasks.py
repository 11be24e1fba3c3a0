"""The SQLite store's task registry (migration 4), as functions of a connection;
`SqliteStateStore` runs them under its lock and transaction rules."""

# The statements are built from this module's own column list; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from detector.state.sqlite_time import parse_stamp, stamp, stamp_or_none
from detector.state.tasks import ACTIVE, ENDED, TaskRow

COLUMNS = (
    "task_id, agent, owner, scope, role_arn, source_identity, created_at, expires_at, status, "
    "ended_at, access_key_id, principal_id"
)


def put_task(conn: sqlite3.Connection, row: TaskRow) -> None:
    conn.execute(
        f"INSERT INTO tasks ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.task_id,
            row.agent,
            row.owner,
            row.scope,
            row.role_arn,
            row.source_identity,
            stamp(row.created_at),
            stamp(row.expires_at),
            row.status,
            stamp_or_none(row.ended_at),
            row.access_key_id,
            row.principal_id,
        ),
    )


def task(conn: sqlite3.Connection, task_id: str) -> TaskRow | None:
    found = conn.execute(f"SELECT {COLUMNS} FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
    return None if found is None else _row(found)


def tasks(
    conn: sqlite3.Connection, *, status: str | None, since: datetime | None, limit: int
) -> list[TaskRow]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM tasks WHERE (? IS NULL OR status = ?) "
        "AND (? IS NULL OR expires_at >= ? OR ended_at >= ?) "
        "ORDER BY created_at DESC, task_id LIMIT ?",
        (status, status, stamp_or_none(since), stamp_or_none(since), stamp_or_none(since), limit),
    ).fetchall()
    return [_row(r) for r in rows]


def end_task(conn: sqlite3.Connection, task_id: str, at: datetime) -> TaskRow | None:
    conn.execute(
        "UPDATE tasks SET status = ?, ended_at = ? WHERE task_id = ? AND status = ?",
        (ENDED, stamp(at), task_id, ACTIVE),
    )
    return task(conn, task_id)


def _row(r: Sequence[Any]) -> TaskRow:
    return TaskRow(
        task_id=r[0],
        agent=r[1],
        owner=r[2],
        scope=r[3],
        role_arn=r[4],
        source_identity=r[5],
        created_at=parse_stamp(r[6]),
        expires_at=parse_stamp(r[7]),
        status=r[8],
        ended_at=parse_stamp(r[9]) if r[9] else None,
        access_key_id=r[10],
        principal_id=r[11],
    )
