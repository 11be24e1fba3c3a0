"""The SQLite store's gate verdicts (migration 5), as functions of a connection;
`SqliteStateStore` runs them under its lock and transaction rules."""

# The statements are built from this module's own column list; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from detector.state import sqlite_approvals
from detector.state.approvals import SessionSummary
from detector.state.gate_verdicts import COLUMNS, GateVerdictRow, column_values, from_columns
from detector.state.sqlite_time import parse_stamp, stamp


def record_verdict(
    conn: sqlite3.Connection, row: GateVerdictRow, *, cap: int, summary: SessionSummary | None
) -> tuple[GateVerdictRow, bool]:
    created = (
        conn.execute(
            f"INSERT INTO gate_verdicts ({COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (verdict_id) DO NOTHING",
            column_values(row, time=stamp, detail=_json),
        ).rowcount
        == 1
    )
    if created:
        if summary is not None:
            sqlite_approvals.record_timeline(conn, (), (summary,), cap=cap)
        # Keep the newest `cap` verdicts of the session.
        conn.execute(
            "DELETE FROM gate_verdicts WHERE session_id = ? AND rowid NOT IN ("
            "SELECT rowid FROM gate_verdicts WHERE session_id = ? "
            "ORDER BY decided_at DESC, rowid DESC LIMIT ?)",
            (row.session_id, row.session_id, cap),
        )
    stored = verdict(conn, row.verdict_id)
    # Pruned at once only when it is older than the session's newest `cap`: report it as sent.
    return (stored if stored is not None else row), created


def verdict(conn: sqlite3.Connection, verdict_id: str) -> GateVerdictRow | None:
    found = conn.execute(
        f"SELECT {COLUMNS} FROM gate_verdicts WHERE verdict_id = ?", (verdict_id,)
    ).fetchone()
    return None if found is None else _row(found)


def verdicts(
    conn: sqlite3.Connection,
    *,
    session_id: str | None,
    task_id: str | None,
    decision: str | None,
    limit: int,
) -> list[GateVerdictRow]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM gate_verdicts WHERE (? IS NULL OR session_id = ?) "
        "AND (? IS NULL OR task_id = ?) AND (? IS NULL OR decision = ?) "
        "ORDER BY decided_at DESC, rowid DESC LIMIT ?",
        (session_id, session_id, task_id, task_id, decision, decision, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def _row(r: Sequence[Any]) -> GateVerdictRow:
    return from_columns(r, time=parse_stamp, detail=orjson.loads)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
