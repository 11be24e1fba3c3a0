"""The PostgreSQL store's approvals and session timeline (migration 3): statements and row
mapping. `PostgresStateStore` formats the statements with its schema and runs them."""

# The statements are built from this module's own column lists; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from detector.state.approvals import ApprovalRow, SessionSummary, TimelineEntry

_APPROVAL_COLUMNS = (
    "approval_id, request_key, session_id, action, reason, scope, agent, human, principal, "
    "response, status, outcome, requested_at, expires_at, decided_by, decided_at, note, "
    "released_at"
)
_SUMMARY_SELECT = (
    "SELECT s.session_id, s.agent, s.human, s.principal, s.scope, s.on_human_credentials, "
    "s.last_at, (SELECT count(*) FROM {schema}.session_timeline t "
    "WHERE t.session_id = s.session_id) FROM {schema}.session_summaries s "
)

STATEMENTS: dict[str, str] = {
    "approval_open": (
        f"INSERT INTO {{schema}}.approvals ({_APPROVAL_COLUMNS}) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (request_key) DO NOTHING"
    ),
    "approval_by_key": (
        f"SELECT {_APPROVAL_COLUMNS} FROM {{schema}}.approvals WHERE request_key = %s"
    ),
    "approval_by_id": (
        f"SELECT {_APPROVAL_COLUMNS} FROM {{schema}}.approvals WHERE approval_id = %s"
    ),
    "approvals": (
        f"SELECT {_APPROVAL_COLUMNS} FROM {{schema}}.approvals "
        "WHERE (%(status)s::text IS NULL OR status = %(status)s) "
        "AND (%(session)s::text IS NULL OR session_id = %(session)s) "
        "ORDER BY requested_at DESC, approval_id LIMIT %(limit)s"
    ),
    "approval_decide": (
        "UPDATE {schema}.approvals SET status = %s, outcome = %s, decided_by = %s, "
        "decided_at = %s, note = %s WHERE approval_id = %s AND status = 'pending'"
    ),
    "approvals_unreleased": (
        f"SELECT {_APPROVAL_COLUMNS} FROM {{schema}}.approvals "
        "WHERE status <> 'pending' AND released_at IS NULL ORDER BY decided_at LIMIT %s"
    ),
    "approval_released": (
        "UPDATE {schema}.approvals SET released_at = %s "
        "WHERE approval_id = %s AND released_at IS NULL"
    ),
    "timeline_add": (
        "INSERT INTO {schema}.session_timeline "
        "(session_id, entry_key, at, kind, severity, title, record) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (session_id, entry_key) DO NOTHING"
    ),
    "summary_put": (
        "INSERT INTO {schema}.session_summaries AS s "
        "(session_id, agent, human, principal, scope, on_human_credentials, last_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (session_id) DO UPDATE SET "
        "agent = coalesce(EXCLUDED.agent, s.agent), human = coalesce(EXCLUDED.human, s.human), "
        "principal = coalesce(EXCLUDED.principal, s.principal), "
        "scope = coalesce(EXCLUDED.scope, s.scope), "
        "on_human_credentials = s.on_human_credentials OR EXCLUDED.on_human_credentials, "
        "last_at = greatest(s.last_at, EXCLUDED.last_at)"
    ),
    "timeline_prune": (
        "DELETE FROM {schema}.session_timeline WHERE session_id = %s AND seq NOT IN ("
        "SELECT seq FROM {schema}.session_timeline WHERE session_id = %s "
        "ORDER BY at DESC, seq DESC LIMIT %s)"
    ),
    "timeline": (
        "SELECT session_id, entry_key, at, kind, severity, title, record FROM ("
        "SELECT * FROM {schema}.session_timeline WHERE session_id = %s "
        "ORDER BY at DESC, seq DESC LIMIT %s) t ORDER BY at, seq"
    ),
    "summary": _SUMMARY_SELECT + "WHERE s.session_id = %s",
    "summaries_recent": _SUMMARY_SELECT + "ORDER BY s.last_at DESC LIMIT %s",
}


def approval_params(row: ApprovalRow) -> tuple[Any, ...]:
    return (
        row.approval_id,
        row.request_key,
        row.session_id,
        row.action,
        row.reason,
        row.scope,
        row.agent,
        row.human,
        row.principal,
        Jsonb(dict(row.response)),
        row.status,
        row.outcome,
        row.requested_at,
        row.expires_at,
        row.decided_by,
        row.decided_at,
        row.note,
        row.released_at,
    )


def timeline_params(entries: Sequence[TimelineEntry]) -> list[tuple[Any, ...]]:
    return [
        (e.session_id, e.entry_key, e.at, e.kind, e.severity, e.title, Jsonb(dict(e.record)))
        for e in entries
    ]


def summary_params(summaries: Sequence[SessionSummary]) -> list[tuple[Any, ...]]:
    return [
        (s.session_id, s.agent, s.human, s.principal, s.scope, s.on_human_credentials, s.last_at)
        for s in summaries
    ]


def approval_row(r: Sequence[Any]) -> ApprovalRow:
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
        response=r[9],
        status=r[10],
        outcome=r[11],
        requested_at=_utc(r[12]),
        expires_at=_utc(r[13]),
        decided_by=r[14],
        decided_at=_utc(r[15]) if r[15] else None,
        note=r[16],
        released_at=_utc(r[17]) if r[17] else None,
    )


def timeline_entry(r: Sequence[Any]) -> TimelineEntry:
    return TimelineEntry(
        session_id=r[0],
        entry_key=r[1],
        at=_utc(r[2]),
        kind=r[3],
        severity=r[4],
        title=r[5],
        record=r[6],
    )


def summary_row(r: Sequence[Any]) -> SessionSummary:
    return SessionSummary(
        session_id=r[0],
        agent=r[1],
        human=r[2],
        principal=r[3],
        scope=r[4],
        on_human_credentials=bool(r[5]),
        last_at=_utc(r[6]),
        entries=int(r[7]),
    )


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
