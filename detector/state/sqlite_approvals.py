"""The SQLite store's approvals and session timeline (migration 3), as functions of a
connection; `SqliteStateStore` runs them under its lock and transaction rules."""

# The statements are built from this module's own column lists; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from detector.state.approvals import PENDING, ApprovalRow, SessionSummary, TimelineEntry
from detector.state.sqlite_time import parse_stamp, stamp, stamp_or_none

_APPROVAL_COLUMNS = (
    "approval_id, request_key, session_id, action, reason, scope, agent, human, principal, "
    "response, status, outcome, requested_at, expires_at, decided_by, decided_at, note, "
    "released_at"
)
_SUMMARY_COLUMNS = "session_id, agent, human, principal, scope, on_human_credentials, last_at"


def open_approval(conn: sqlite3.Connection, row: ApprovalRow) -> ApprovalRow:
    conn.execute(
        f"INSERT INTO approvals ({_APPROVAL_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (request_key) DO NOTHING",
        (
            row.approval_id,
            row.request_key,
            row.session_id,
            row.action,
            row.reason,
            row.scope,
            row.agent,
            row.human,
            row.principal,
            orjson.dumps(dict(row.response)).decode(),
            row.status,
            row.outcome,
            stamp(row.requested_at),
            stamp(row.expires_at),
            row.decided_by,
            stamp_or_none(row.decided_at),
            row.note,
            stamp_or_none(row.released_at),
        ),
    )
    found = conn.execute(
        f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE request_key = ?",
        (row.request_key,),
    ).fetchone()
    return _approval(found)


def approval(conn: sqlite3.Connection, approval_id: str) -> ApprovalRow | None:
    found = conn.execute(
        f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE approval_id = ?",
        (approval_id,),
    ).fetchone()
    return None if found is None else _approval(found)


def approvals(
    conn: sqlite3.Connection, *, status: str | None, session_id: str | None, limit: int
) -> list[ApprovalRow]:
    where, args = _filters(status=status, session_id=session_id)
    rows = conn.execute(
        f"SELECT {_APPROVAL_COLUMNS} FROM approvals {where} "
        "ORDER BY requested_at DESC, approval_id LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [_approval(r) for r in rows]


def decide_approval(
    conn: sqlite3.Connection,
    approval_id: str,
    *,
    status: str,
    outcome: str,
    decided_by: str,
    decided_at: datetime,
    note: str | None,
) -> ApprovalRow | None:
    conn.execute(
        "UPDATE approvals SET status = ?, outcome = ?, decided_by = ?, decided_at = ?, note = ? "
        "WHERE approval_id = ? AND status = ?",
        (status, outcome, decided_by, stamp_or_none(decided_at), note, approval_id, PENDING),
    )
    return approval(conn, approval_id)


def unreleased_approvals(conn: sqlite3.Connection, *, limit: int) -> list[ApprovalRow]:
    rows = conn.execute(
        f"SELECT {_APPROVAL_COLUMNS} FROM approvals "
        "WHERE status <> ? AND released_at IS NULL ORDER BY decided_at LIMIT ?",
        (PENDING, limit),
    ).fetchall()
    return [_approval(r) for r in rows]


def mark_released(conn: sqlite3.Connection, approval_id: str, at: datetime) -> None:
    conn.execute(
        "UPDATE approvals SET released_at = ? WHERE approval_id = ? AND released_at IS NULL",
        (stamp(at), approval_id),
    )


def record_timeline(
    conn: sqlite3.Connection,
    entries: Sequence[TimelineEntry],
    summaries: Sequence[SessionSummary],
    *,
    cap: int,
) -> None:
    conn.executemany(
        "INSERT INTO session_timeline (session_id, entry_key, at, kind, severity, title, record) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, entry_key) DO NOTHING",
        [
            (
                e.session_id,
                e.entry_key,
                stamp(e.at),
                e.kind,
                e.severity,
                e.title,
                orjson.dumps(dict(e.record)).decode(),
            )
            for e in entries
        ],
    )
    conn.executemany(
        f"INSERT INTO session_summaries ({_SUMMARY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (session_id) DO UPDATE SET "
        "agent = coalesce(excluded.agent, agent), human = coalesce(excluded.human, human), "
        "principal = coalesce(excluded.principal, principal), "
        "scope = coalesce(excluded.scope, scope), "
        "on_human_credentials = max(on_human_credentials, excluded.on_human_credentials), "
        "last_at = max(last_at, excluded.last_at)",
        [
            (
                s.session_id,
                s.agent,
                s.human,
                s.principal,
                s.scope,
                int(s.on_human_credentials),
                stamp(s.last_at),
            )
            for s in summaries
        ],
    )
    # Keep the newest `cap` entries of each session touched by this batch.
    conn.executemany(
        "DELETE FROM session_timeline WHERE session_id = ? AND rowid NOT IN ("
        "SELECT rowid FROM session_timeline WHERE session_id = ? "
        "ORDER BY at DESC, rowid DESC LIMIT ?)",
        [(sid, sid, cap) for sid in sorted({e.session_id for e in entries})],
    )


def timeline(conn: sqlite3.Connection, session_id: str, *, limit: int) -> list[TimelineEntry]:
    rows = conn.execute(
        "SELECT session_id, entry_key, at, kind, severity, title, record FROM ("
        "SELECT *, rowid AS r FROM session_timeline WHERE session_id = ? "
        "ORDER BY at DESC, rowid DESC LIMIT ?) ORDER BY at, r",
        (session_id, limit),
    ).fetchall()
    return [
        TimelineEntry(
            session_id=r[0],
            entry_key=r[1],
            at=parse_stamp(r[2]),
            kind=r[3],
            severity=r[4],
            title=r[5],
            record=orjson.loads(r[6]),
        )
        for r in rows
    ]


def session_summary(conn: sqlite3.Connection, session_id: str) -> SessionSummary | None:
    found = _summaries(conn, "WHERE s.session_id = ?", (session_id,))
    return found[0] if found else None


def recent_sessions(conn: sqlite3.Connection, *, limit: int) -> list[SessionSummary]:
    return _summaries(conn, "ORDER BY s.last_at DESC LIMIT ?", (limit,))


def _summaries(conn: sqlite3.Connection, tail: str, args: tuple[Any, ...]) -> list[SessionSummary]:
    rows = conn.execute(
        "SELECT s.session_id, s.agent, s.human, s.principal, s.scope, s.on_human_credentials, "
        "s.last_at, (SELECT count(*) FROM session_timeline t WHERE t.session_id = s.session_id) "
        f"FROM session_summaries s {tail}",
        args,
    ).fetchall()
    return [
        SessionSummary(
            session_id=r[0],
            agent=r[1],
            human=r[2],
            principal=r[3],
            scope=r[4],
            on_human_credentials=bool(r[5]),
            last_at=parse_stamp(r[6]),
            entries=int(r[7]),
        )
        for r in rows
    ]


def _filters(*, status: str | None, session_id: str | None) -> tuple[str, tuple[str, ...]]:
    clauses: list[str] = []
    args: list[str] = []
    if status is not None:
        clauses.append("status = ?")
        args.append(status)
    if session_id is not None:
        clauses.append("session_id = ?")
        args.append(session_id)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def _approval(r: Sequence[Any]) -> ApprovalRow:
    return ApprovalRow(
        approval_id=r[0],
        request_key=r[1],
        session_id=r[2],
        action=r[3],
        reason=r[4],
        scope=r[5],
        agent=r[6],
        human=r[7],
        principal=r[8],
        response=orjson.loads(r[9]),
        status=r[10],
        outcome=r[11],
        requested_at=parse_stamp(r[12]),
        expires_at=parse_stamp(r[13]),
        decided_by=r[14],
        decided_at=parse_stamp(r[15]) if r[15] else None,
        note=r[16],
        released_at=parse_stamp(r[17]) if r[17] else None,
    )
