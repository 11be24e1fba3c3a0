"""The shared state store: PostgreSQL, for several service instances splitting the shards.

One connection guarded by a lock is enough: a store is called a few times per checkpoint
interval per shard, never per event. A dropped connection (server restart, failover, idle
timeout in a proxy) is replaced and the call retried once; if the server cannot be reached,
the call raises TransientError and the caller decides when to try again. Retrying is safe for
every call: `save` is idempotent for a given epoch, and a repeated `claim` only skips an epoch.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from detector.core.state_delta import StateDelta
from detector.errors import ConfigError, StateError, TransientError
from detector.state import migrations, postgres_gate, postgres_tasks
from detector.state import postgres_approvals as rows
from detector.state.approvals import ApprovalRow, SessionSummary, TimelineEntry
from detector.state.gate_verdicts import GateVerdictRow
from detector.state.store import (
    NO_CHECKPOINTS,
    EncodedDelta,
    FencedError,
    JournalEntry,
    decode_detail,
    decode_rows,
    encode_delta,
    encode_detail,
)
from detector.state.tasks import TaskRow

T = TypeVar("T")
Connection = psycopg.Connection[TupleRow]

# Applied only when the DSN does not say otherwise. Without a connect timeout an unreachable
# host (packets dropped rather than refused) would block a worker thread for minutes.
CONNECT_DEFAULTS: Mapping[str, str | int] = {
    "connect_timeout": 10,
    "application_name": "trailguard",
}
MAX_IDENTIFIER_BYTES = 63


class PostgresStateStore:
    """A StateStore in a PostgreSQL schema. Opening it creates or migrates the schema."""

    def __init__(self, dsn: str, *, schema: str = "trailguard") -> None:
        try:
            given = parse_dsn(dsn)
            check_schema(schema)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.schema = schema
        self._conninfo = make_conninfo(
            dsn, **{k: v for k, v in CONNECT_DEFAULTS.items() if k not in given}
        )
        # For messages: where the store is, never the password.
        self._where = f"postgres {given.get('host', 'localhost')}:{given.get('port', 5432)}"
        self._where += f"/{given.get('dbname', '')} schema {schema}"
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._closed = False
        ident = sql.Identifier(schema)
        statements = {
            **_STATEMENTS,
            **rows.STATEMENTS,
            **postgres_tasks.STATEMENTS,
            **postgres_gate.STATEMENTS,
        }
        self._sql = {name: sql.SQL(text).format(schema=ident) for name, text in statements.items()}
        try:
            self._run(self._migrate)
        except BaseException:
            self.close()
            raise

    # -- StateStore ---------------------------------------------------------------------------

    def claim(self, shard: str, owner: str) -> int:
        def op(conn: Connection) -> int:
            row = conn.execute(self._sql["claim"], (shard, owner)).fetchone()
            assert row is not None  # INSERT ... RETURNING always yields the row
            return int(row[0])

        return self._run(op)

    def load(self, shard: str) -> Mapping[str, Any] | None:
        def op(conn: Connection) -> tuple[bytes, list[tuple[str, bytes]]] | None:
            # REPEATABLE READ: the rows are those of the shared part read with them, even
            # while the shard's owner saves.
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                row = conn.execute(self._sql["load"], (shard,)).fetchone()
                if row is None or row[0] is None:
                    return None
                rows = conn.execute(self._sql["rows_get"], (shard,)).fetchall()
            return bytes(row[0]), [(str(k), bytes(v)) for k, v in rows]

        stored = self._run(op)
        return None if stored is None else decode_rows(*stored)

    def shards(self) -> list[str]:
        def op(conn: Connection) -> list[str]:
            rows = conn.execute(self._sql["shards"]).fetchall()
            return [str(row[0]) for row in rows]

        return self._run(op)

    def save(
        self,
        shard: str,
        state: StateDelta | Mapping[str, Any],
        *,
        epoch: int,
        checkpoints: Mapping[str, str] = NO_CHECKPOINTS,
    ) -> None:
        encoded = encode_delta(state)
        blob = encoded.shared

        def op(conn: Connection) -> None:
            with conn.transaction():
                # The UPDATE locks the shard row, so a concurrent claim waits for this
                # transaction and cannot slip in between the fence check and the commit.
                updated = conn.execute(self._sql["save"], (blob, len(blob), shard, epoch)).rowcount
                if updated != 1:
                    row = conn.execute(self._sql["owner"], (shard,)).fetchone()
                    raise FencedError(
                        shard,
                        epoch=epoch,
                        current_epoch=None if row is None else int(row[1]),
                        owner=None if row is None else str(row[0]),
                    )
                self._write_rows(conn, shard, encoded)
                if checkpoints:
                    with conn.cursor() as cur:
                        cur.executemany(self._sql["checkpoint_put"], list(checkpoints.items()))

        self._run(op)

    def _write_rows(self, conn: Connection, shard: str, encoded: EncodedDelta) -> None:
        if encoded.full:
            conn.execute(self._sql["rows_clear"], (shard,))
        elif encoded.removed:
            conn.execute(self._sql["rows_delete"], (shard, encoded.removed))
        if encoded.rows:
            keys = [key for key, _ in encoded.rows]
            values = [value for _, value in encoded.rows]
            conn.execute(self._sql["rows_put"], (shard, keys, values))

    def checkpoint(self, name: str) -> str | None:
        def op(conn: Connection) -> str | None:
            row = conn.execute(self._sql["checkpoint_get"], (name,)).fetchone()
            return None if row is None else str(row[0])

        return self._run(op)

    def save_checkpoint(self, name: str, value: str) -> None:
        def op(conn: Connection) -> None:
            conn.execute(self._sql["checkpoint_put"], (name, value))

        self._run(op)

    def journal(self, entries: Sequence[JournalEntry]) -> None:
        rows = [
            (
                e.recorded_at,
                e.response_key,
                e.session_id,
                e.action,
                e.responder,
                e.outcome,
                e.dry_run,
                e.reason,
                encode_detail(e.detail),
            )
            for e in entries
        ]

        def op(conn: Connection) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(self._sql["journal_put"], rows)

        if rows:
            self._run(op)

    def journal_entries(
        self,
        *,
        session_id: str | None = None,
        response_key: str | None = None,
        since: datetime | None = None,
        outcomes: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[JournalEntry]:
        # Each filter is always present and switched off with NULL, so the statement is fixed.
        params = (
            session_id,
            session_id,
            response_key,
            response_key,
            since,
            since,
            list(outcomes) or None,
            list(outcomes) or None,
            limit,
        )

        def op(conn: Connection) -> list[tuple[object, ...]]:
            return list(conn.execute(self._sql["journal_get"], params).fetchall())

        rows = self._run(op)
        return [
            JournalEntry(
                id=int(str(r[0])),
                recorded_at=r[1],  # type: ignore[arg-type]
                response_key=str(r[2]),
                session_id=str(r[3]),
                action=str(r[4]),
                responder=None if r[5] is None else str(r[5]),
                outcome=str(r[6]),
                dry_run=bool(r[7]),
                reason=str(r[8]),
                detail=decode_detail(str(r[9])),
            )
            for r in reversed(rows)
        ]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- approvals and session timeline -----------------------------------------------------

    def open_approval(self, row: ApprovalRow) -> ApprovalRow:
        def op(conn: Connection) -> ApprovalRow:
            with conn.transaction():
                conn.execute(self._sql["approval_open"], rows.approval_params(row))
                found = conn.execute(self._sql["approval_by_key"], (row.request_key,)).fetchone()
            assert found is not None  # inserted or already there, inside the transaction
            return rows.approval_row(found)

        return self._run(op)

    def approval(self, approval_id: str) -> ApprovalRow | None:
        def op(conn: Connection) -> ApprovalRow | None:
            found = conn.execute(self._sql["approval_by_id"], (approval_id,)).fetchone()
            return None if found is None else rows.approval_row(found)

        return self._run(op)

    def approvals(
        self, *, status: str | None = None, session_id: str | None = None, limit: int = 100
    ) -> list[ApprovalRow]:
        args = {"status": status, "session": session_id, "limit": limit}
        return self._run(
            lambda conn: [
                rows.approval_row(r) for r in conn.execute(self._sql["approvals"], args).fetchall()
            ]
        )

    def decide_approval(
        self,
        approval_id: str,
        *,
        status: str,
        outcome: str,
        decided_by: str,
        decided_at: datetime,
        note: str | None = None,
    ) -> ApprovalRow | None:
        args = (status, outcome, decided_by, decided_at, note, approval_id)

        def op(conn: Connection) -> ApprovalRow | None:
            with conn.transaction():
                conn.execute(self._sql["approval_decide"], args)
                found = conn.execute(self._sql["approval_by_id"], (approval_id,)).fetchone()
            return None if found is None else rows.approval_row(found)

        return self._run(op)

    def unreleased_approvals(self, *, limit: int = 100) -> list[ApprovalRow]:
        return self._run(
            lambda conn: [
                rows.approval_row(r)
                for r in conn.execute(self._sql["approvals_unreleased"], (limit,)).fetchall()
            ]
        )

    def mark_approval_released(self, approval_id: str, at: datetime) -> None:
        self._run(lambda conn: conn.execute(self._sql["approval_released"], (at, approval_id)))

    def record_timeline(
        self, entries: Sequence[TimelineEntry], summaries: Sequence[SessionSummary], *, cap: int
    ) -> None:
        sessions = sorted({e.session_id for e in entries})

        def op(conn: Connection) -> None:
            with conn.transaction(), conn.cursor() as cur:
                if entries:
                    cur.executemany(self._sql["timeline_add"], rows.timeline_params(entries))
                if summaries:
                    cur.executemany(self._sql["summary_put"], rows.summary_params(summaries))
                if sessions:
                    prune = [(sid, sid, cap) for sid in sessions]
                    cur.executemany(self._sql["timeline_prune"], prune)

        self._run(op)

    def timeline(self, session_id: str, *, limit: int = 1000) -> list[TimelineEntry]:
        return self._run(
            lambda conn: [
                rows.timeline_entry(r)
                for r in conn.execute(self._sql["timeline"], (session_id, limit)).fetchall()
            ]
        )

    def session_summary(self, session_id: str) -> SessionSummary | None:
        def op(conn: Connection) -> SessionSummary | None:
            found = conn.execute(self._sql["summary"], (session_id,)).fetchone()
            return None if found is None else rows.summary_row(found)

        return self._run(op)

    def recent_sessions(self, *, limit: int = 100) -> list[SessionSummary]:
        return self._run(
            lambda conn: [
                rows.summary_row(r)
                for r in conn.execute(self._sql["summaries_recent"], (limit,)).fetchall()
            ]
        )

    # -- agent tasks --------------------------------------------------------------------------

    def put_task(self, row: TaskRow) -> None:
        self._run(lambda conn: conn.execute(self._sql["task_put"], postgres_tasks.task_params(row)))

    def task(self, task_id: str) -> TaskRow | None:
        def op(conn: Connection) -> TaskRow | None:
            found = conn.execute(self._sql["task_by_id"], (task_id,)).fetchone()
            return None if found is None else postgres_tasks.task_row(found)

        return self._run(op)

    def tasks(
        self, *, status: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[TaskRow]:
        args = {"status": status, "since": since, "limit": limit}
        return self._run(
            lambda conn: [
                postgres_tasks.task_row(r)
                for r in conn.execute(self._sql["tasks"], args).fetchall()
            ]
        )

    def end_task(self, task_id: str, *, at: datetime) -> TaskRow | None:
        def op(conn: Connection) -> TaskRow | None:
            with conn.transaction():
                conn.execute(self._sql["task_end"], (at, task_id))
                found = conn.execute(self._sql["task_by_id"], (task_id,)).fetchone()
            return None if found is None else postgres_tasks.task_row(found)

        return self._run(op)

    # -- gate verdicts ------------------------------------------------------------------------

    def record_gate_verdict(
        self, row: GateVerdictRow, *, cap: int, summary: SessionSummary | None = None
    ) -> tuple[GateVerdictRow, bool]:
        def op(conn: Connection) -> tuple[GateVerdictRow, bool]:
            with conn.transaction():
                params = postgres_gate.verdict_params(row)
                created = conn.execute(self._sql["verdict_put"], params).rowcount == 1
                if created and summary is not None:
                    put = self._sql["summary_put"]
                    conn.execute(put, rows.summary_params([summary])[0])
                if created:
                    prune = {"session": row.session_id, "cap": cap}
                    conn.execute(self._sql["verdicts_prune"], prune)
                found = conn.execute(self._sql["verdict_by_id"], (row.verdict_id,)).fetchone()
            return (row if found is None else postgres_gate.verdict_row(found)), created

        return self._run(op)

    def gate_verdict(self, verdict_id: str) -> GateVerdictRow | None:
        def op(conn: Connection) -> GateVerdictRow | None:
            found = conn.execute(self._sql["verdict_by_id"], (verdict_id,)).fetchone()
            return None if found is None else postgres_gate.verdict_row(found)

        return self._run(op)

    def gate_verdicts(
        self,
        *,
        session_id: str | None = None,
        task_id: str | None = None,
        decision: str | None = None,
        limit: int = 100,
    ) -> list[GateVerdictRow]:
        args = {"session": session_id, "task": task_id, "decision": decision, "limit": limit}
        return self._run(
            lambda conn: [
                postgres_gate.verdict_row(r)
                for r in conn.execute(self._sql["verdicts"], args).fetchall()
            ]
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _connect(self) -> Connection:
        try:
            # Autocommit: single statements commit on their own; multi-statement work uses
            # explicit conn.transaction() blocks.
            return psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            raise TransientError(f"{self._where} is unreachable: {exc}") from exc

    def _run(self, op: Callable[[Connection], T]) -> T:
        """Run `op` under the lock on a live connection, reconnecting once if it dropped."""
        with self._lock:
            if self._closed:
                raise StateError(f"state store {self._where} is closed")
            for attempt in (1, 2):
                fresh = self._conn is None or self._conn.closed
                if fresh:
                    self._conn = self._connect()
                conn = self._conn
                assert conn is not None
                try:
                    return op(conn)
                except psycopg.OperationalError as exc:
                    self._conn = None
                    conn.close()
                    # A connection opened just now failing again is an outage, not staleness.
                    if fresh or attempt == 2:
                        raise TransientError(f"{self._where}: {exc}") from exc
                except psycopg.Error as exc:
                    raise StateError(f"{self._where}: {exc}") from exc
            raise AssertionError("unreachable")  # pragma: no cover

    def _migrate(self, conn: Connection) -> None:
        # The advisory lock is held until the transaction ends, so instances starting together
        # take turns: the second sees the versions the first recorded and applies nothing.
        # CREATE SCHEMA IF NOT EXISTS is inside the lock too, because two of them racing can
        # still fail on the catalogue's unique index.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self.schema),))
            conn.execute(self._sql["create_schema"])
            conn.execute(self._sql["create_migrations"])
            applied = {row[0] for row in conn.execute(self._sql["applied"])}
            ident = sql.Identifier(self.schema)
            for version, migration in enumerate(migrations.POSTGRES, start=1):
                if version in applied:
                    continue
                conn.execute(sql.SQL(migration).format(schema=ident))
                conn.execute(self._sql["record"], (version,))


def parse_dsn(dsn: str) -> dict[str, Any]:
    """The DSN's parameters; ValueError (without echoing the DSN, which may hold a password)
    when it is not a libpq connection string or URI."""
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise ValueError("not a valid PostgreSQL connection string or URI") from None


def check_schema(schema: str) -> None:
    """ValueError unless `schema` can be used as is: PostgreSQL silently truncates longer
    identifiers, which would make two configured schemas one."""
    if not schema or len(schema.encode()) > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"must be 1 to {MAX_IDENTIFIER_BYTES} bytes long, got {schema!r}")


def _lock_key(schema: str) -> int:
    """A stable signed 64-bit advisory lock key per schema, so distinct schemas never wait."""
    digest = hashlib.blake2b(f"trailguard.migrations:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_STATEMENTS: dict[str, str] = {
    "create_schema": "CREATE SCHEMA IF NOT EXISTS {schema}",
    "create_migrations": (
        "CREATE TABLE IF NOT EXISTS {schema}.schema_migrations "
        "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    ),
    "applied": "SELECT version FROM {schema}.schema_migrations",
    "record": "INSERT INTO {schema}.schema_migrations (version) VALUES (%s)",
    "claim": (
        "INSERT INTO {schema}.shards AS s (shard, owner, epoch) VALUES (%s, %s, 1) "
        "ON CONFLICT (shard) DO UPDATE "
        "SET owner = EXCLUDED.owner, epoch = s.epoch + 1, updated_at = now() "
        "RETURNING epoch"
    ),
    "load": "SELECT snapshot FROM {schema}.shards WHERE shard = %s",
    "shards": "SELECT shard FROM {schema}.shards WHERE snapshot IS NOT NULL ORDER BY shard",
    "save": (
        "UPDATE {schema}.shards SET snapshot = %s, snapshot_bytes = %s, updated_at = now() "
        "WHERE shard = %s AND epoch = %s"
    ),
    "owner": "SELECT owner, epoch FROM {schema}.shards WHERE shard = %s",
    "rows_get": "SELECT key, value FROM {schema}.shard_rows WHERE shard = %s",
    "rows_clear": "DELETE FROM {schema}.shard_rows WHERE shard = %s",
    "rows_delete": "DELETE FROM {schema}.shard_rows WHERE shard = %s AND key = ANY(%s)",
    # One statement for every row of a save, however many: arrays, not a round trip each.
    "rows_put": (
        "INSERT INTO {schema}.shard_rows (shard, key, value) "
        "SELECT %s, k, v FROM unnest(%s::text[], %s::bytea[]) AS r(k, v) "
        "ON CONFLICT (shard, key) DO UPDATE SET value = EXCLUDED.value"
    ),
    "checkpoint_get": "SELECT value FROM {schema}.checkpoints WHERE name = %s",
    "journal_put": (
        "INSERT INTO {schema}.response_journal (recorded_at, response_key, session_id, action, "
        "responder, outcome, dry_run, reason, detail) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
    ),
    "journal_get": (
        "SELECT id, recorded_at, response_key, session_id, action, responder, outcome, dry_run, "
        "reason, detail FROM {schema}.response_journal "
        "WHERE (%s::text IS NULL OR session_id = %s) "
        "AND (%s::text IS NULL OR response_key = %s) "
        "AND (%s::timestamptz IS NULL OR recorded_at >= %s) "
        "AND (%s::text[] IS NULL OR outcome = ANY(%s)) "
        "ORDER BY id DESC LIMIT %s"
    ),
    "checkpoint_put": (
        "INSERT INTO {schema}.checkpoints AS c (name, value) VALUES (%s, %s) "
        "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
    ),
}
