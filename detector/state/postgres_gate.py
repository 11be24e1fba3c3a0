"""The PostgreSQL store's gate verdicts (migration 5): statements and row mapping.
`PostgresStateStore` formats the statements with its schema and runs them."""

# The statements are built from this module's own column list; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from detector.state.gate_verdicts import COLUMNS, GateVerdictRow, column_values, from_columns

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
    return column_values(row, time=_same, detail=Jsonb)


def verdict_row(r: Sequence[Any]) -> GateVerdictRow:
    return from_columns(r, time=_utc, detail=_same)


def _same(value: Any) -> Any:
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
