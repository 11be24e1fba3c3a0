"""The PostgreSQL store's gate verdicts (migration 5): statements and row mapping.
`PostgresStateStore` formats the statements with its schema and runs them."""

# The statements are built from this module's own column list; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from detector.state.gate_verdicts import GateVerdictRow

COLUMNS = (
    "verdict_id, session_id, task_id, access_key_id, agent, owner, scope, decision, reason, "
    "command, tool_name, hook, decided_at, received_at, sent_by, detail"
)

STATEMENTS: dict[str, str] = {
    "verdict_put": f"INSERT INTO {{schema}}.gate_verdicts ({COLUMNS}) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (verdict_id) DO NOTHING",
    "verdict_by_id": f"SELECT {COLUMNS} FROM {{schema}}.gate_verdicts WHERE verdict_id = %s",
    "verdicts": (
        f"SELECT {COLUMNS} FROM {{schema}}.gate_verdicts "
        "WHERE (%(session)s::text IS NULL OR session_id = %(session)s) "
        "AND (%(task)s::text IS NULL OR task_id = %(task)s) "
        "AND (%(decision)s::text IS NULL OR decision = %(decision)s) "
        "ORDER BY decided_at DESC, verdict_id DESC LIMIT %(limit)s"
    ),
    "verdicts_prune": (
        "DELETE FROM {schema}.gate_verdicts WHERE session_id = %(session)s AND verdict_id "
        "NOT IN (SELECT verdict_id FROM {schema}.gate_verdicts WHERE session_id = %(session)s "
        "ORDER BY decided_at DESC, verdict_id DESC LIMIT %(cap)s)"
    ),
}


def verdict_params(row: GateVerdictRow) -> tuple[Any, ...]:
    return (
        row.verdict_id,
        row.session_id,
        row.task_id,
        row.access_key_id,
        row.agent,
        row.owner,
        row.scope,
        row.decision,
        row.reason,
        row.command,
        row.tool_name,
        row.hook,
        row.decided_at,
        row.received_at,
        row.sent_by,
        Jsonb(dict(row.detail)),
    )


def verdict_row(r: Sequence[Any]) -> GateVerdictRow:
    return GateVerdictRow(
        verdict_id=r[0],
        session_id=r[1],
        task_id=r[2],
        access_key_id=r[3],
        agent=r[4],
        owner=r[5],
        scope=r[6],
        decision=r[7],
        reason=r[8],
        command=r[9],
        tool_name=r[10],
        hook=r[11],
        decided_at=_utc(r[12]),
        received_at=_utc(r[13]),
        sent_by=r[14],
        detail=r[15],
    )


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
