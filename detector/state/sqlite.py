"""The embedded state store: one SQLite file, no server to run.

WAL with `synchronous=FULL`: a save that returned is on disk, so it survives an OS crash or
power cut as well as the process dying. That matters because sources are acknowledged right
after a save, and some acknowledgements live elsewhere (a Kafka offset commit, an SQS delete):
with a weaker setting the last saves could roll back while those acknowledgements stand, and
the events between would be lost. Saves happen once per flush interval, so the fsync is cheap.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any, Self, TypeVar

from detector.core.state_delta import StateDelta
from detector.errors import StateError, TransientError
from detector.state import migrations, sqlite_gate, sqlite_tasks
from detector.state import sqlite_approvals as rows
from detector.state.approvals import ApprovalRow, SessionSummary, TimelineEntry
from detector.state.gate_verdicts import GateVerdictRow
from detector.state.sqlite_time import stamp
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

# How long a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_SECONDS = 30.0
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
# SQLite result codes that mean "someone else holds the lock": worth trying again.
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


class SqliteStateStore:
    """A StateStore in a single SQLite file. `":memory:"` gives a private, throwaway store."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = str(path)
        # One connection shared by every thread; the lock serialises them, which is all a
        # single SQLite writer allows anyway.
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; every write opens its own
            # BEGIN IMMEDIATE so the write lock is taken up front, not upgraded mid-way.
            self._conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open state store {self.path}: {exc}") from exc
        try:
            self._run(self._configure)
            self._run(self._migrate)
        except BaseException:
            self.close()
            raise

    # -- StateStore ---------------------------------------------------------------------------

    def claim(self, shard: str, owner: str) -> int:
        def op(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                conn.execute(
                    f"INSERT OR IGNORE INTO shards (shard, owner, epoch, updated_at) "  # noqa: S608
                    f"VALUES (?, ?, 0, {_NOW})",
                    (shard, owner),
                )
                conn.execute(
                    f"UPDATE shards SET owner = ?, epoch = epoch + 1, updated_at = {_NOW} "  # noqa: S608
                    "WHERE shard = ?",
                    (owner, shard),
                )
                row = conn.execute("SELECT epoch FROM shards WHERE shard = ?", (shard,)).fetchone()
            return int(row[0])

        return self._run(op)

    def load(self, shard: str) -> Mapping[str, Any] | None:
        def op(conn: sqlite3.Connection) -> tuple[bytes, list[tuple[str, bytes]]] | None:
            # One read transaction, so the rows belong to the shared part read with them.
            with _reading(conn):
                row = conn.execute(
                    "SELECT snapshot FROM shards WHERE shard = ?", (shard,)
                ).fetchone()
                if row is None or row[0] is None:
                    return None
                rows = conn.execute(
                    "SELECT key, value FROM shard_rows WHERE shard = ?", (shard,)
                ).fetchall()
            return bytes(row[0]), [(str(k), bytes(v)) for k, v in rows]

        stored = self._run(op)
        return None if stored is None else decode_rows(*stored)

    def shards(self) -> list[str]:
        def op(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT shard FROM shards WHERE snapshot IS NOT NULL ORDER BY shard"
            ).fetchall()
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

        def op(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                updated = conn.execute(
                    f"UPDATE shards SET snapshot = ?, snapshot_bytes = ?, updated_at = {_NOW} "  # noqa: S608
                    "WHERE shard = ? AND epoch = ?",
                    (blob, len(blob), shard, epoch),
                ).rowcount
                if updated != 1:
                    row = conn.execute(
                        "SELECT owner, epoch FROM shards WHERE shard = ?", (shard,)
                    ).fetchone()
                    raise FencedError(
                        shard,
                        epoch=epoch,
                        current_epoch=None if row is None else int(row[1]),
                        owner=None if row is None else str(row[0]),
                    )
                _write_rows(conn, shard, encoded)
                for name, value in checkpoints.items():
                    _upsert_checkpoint(conn, name, value)

        self._run(op)

    def checkpoint(self, name: str) -> str | None:
        def op(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM checkpoints WHERE name = ?", (name,)).fetchone()
            return None if row is None else str(row[0])

        return self._run(op)

    def save_checkpoint(self, name: str, value: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                _upsert_checkpoint(conn, name, value)

        self._run(op)

    def journal(self, entries: Sequence[JournalEntry]) -> None:
        rows = [
            (
                stamp(e.recorded_at),
                e.response_key,
                e.session_id,
                e.action,
                e.responder,
                e.outcome,
                int(e.dry_run),
                e.reason,
                encode_detail(e.detail),
            )
            for e in entries
        ]

        def op(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany(
                    "INSERT INTO response_journal (recorded_at, response_key, session_id, action, "
                    "responder, outcome, dry_run, reason, detail) VALUES (?,?,?,?,?,?,?,?,?)",
                    rows,
                )

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
        where: list[str] = []
        params: list[object] = []
        if session_id is not None:
            where.append("session_id = ?")
            params.append(session_id)
        if response_key is not None:
            where.append("response_key = ?")
            params.append(response_key)
        if since is not None:
            where.append("recorded_at >= ?")
            params.append(stamp(since))
        if outcomes:
            where.append(f"outcome IN ({','.join('?' for _ in outcomes)})")
            params.extend(outcomes)
        query = (
            "SELECT id, recorded_at, response_key, session_id, action, responder, outcome, "
            "dry_run, reason, detail FROM response_journal"
        )
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(int(limit))

        def op(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
            return list(conn.execute(query, params).fetchall())

        rows = self._run(op)
        return [
            JournalEntry(
                id=int(str(r[0])),
                recorded_at=datetime.fromisoformat(str(r[1]).replace("Z", "+00:00")),
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
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- approvals and session timeline -----------------------------------------------------

    def open_approval(self, row: ApprovalRow) -> ApprovalRow:
        return self._write(lambda conn: rows.open_approval(conn, row))

    def approval(self, approval_id: str) -> ApprovalRow | None:
        return self._run(lambda conn: rows.approval(conn, approval_id))

    def approvals(
        self, *, status: str | None = None, session_id: str | None = None, limit: int = 100
    ) -> list[ApprovalRow]:
        return self._run(
            lambda conn: rows.approvals(conn, status=status, session_id=session_id, limit=limit)
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
        return self._write(
            lambda conn: rows.decide_approval(
                conn,
                approval_id,
                status=status,
                outcome=outcome,
                decided_by=decided_by,
                decided_at=decided_at,
                note=note,
            )
        )

    def unreleased_approvals(self, *, limit: int = 100) -> list[ApprovalRow]:
        return self._run(lambda conn: rows.unreleased_approvals(conn, limit=limit))

    def mark_approval_released(self, approval_id: str, at: datetime) -> None:
        self._write(lambda conn: rows.mark_released(conn, approval_id, at))

    def record_timeline(
        self, entries: Sequence[TimelineEntry], summaries: Sequence[SessionSummary], *, cap: int
    ) -> None:
        self._write(lambda conn: rows.record_timeline(conn, entries, summaries, cap=cap))

    def timeline(self, session_id: str, *, limit: int = 1000) -> list[TimelineEntry]:
        return self._run(lambda conn: rows.timeline(conn, session_id, limit=limit))

    def session_summary(self, session_id: str) -> SessionSummary | None:
        return self._run(lambda conn: rows.session_summary(conn, session_id))

    def recent_sessions(self, *, limit: int = 100) -> list[SessionSummary]:
        return self._run(lambda conn: rows.recent_sessions(conn, limit=limit))

    # -- agent tasks --------------------------------------------------------------------------

    def put_task(self, row: TaskRow) -> None:
        self._write(lambda conn: sqlite_tasks.put_task(conn, row))

    def task(self, task_id: str) -> TaskRow | None:
        return self._run(lambda conn: sqlite_tasks.task(conn, task_id))

    def tasks(
        self, *, status: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[TaskRow]:
        return self._run(
            lambda conn: sqlite_tasks.tasks(conn, status=status, since=since, limit=limit)
        )

    def end_task(self, task_id: str, *, at: datetime) -> TaskRow | None:
        return self._write(lambda conn: sqlite_tasks.end_task(conn, task_id, at))

    # -- gate verdicts ------------------------------------------------------------------------

    def record_gate_verdict(
        self, row: GateVerdictRow, *, cap: int, summary: SessionSummary | None = None
    ) -> tuple[GateVerdictRow, bool]:
        return self._write(
            lambda conn: sqlite_gate.record_verdict(conn, row, cap=cap, summary=summary)
        )

    def gate_verdict(self, verdict_id: str) -> GateVerdictRow | None:
        return self._run(lambda conn: sqlite_gate.verdict(conn, verdict_id))

    def gate_verdicts(
        self,
        *,
        session_id: str | None = None,
        task_id: str | None = None,
        decision: str | None = None,
        limit: int = 100,
    ) -> list[GateVerdictRow]:
        return self._run(
            lambda conn: sqlite_gate.verdicts(
                conn, session_id=session_id, task_id=task_id, decision=decision, limit=limit
            )
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run `op` under the lock, turning sqlite3 errors into the detector's error types."""
        with self._lock:
            if self._conn is None:
                raise StateError(f"state store {self.path} is closed")
            try:
                return op(self._conn)
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorcode", None) in _BUSY_CODES:
                    raise TransientError(f"state store {self.path} is busy: {exc}") from exc
                raise StateError(f"state store {self.path}: {exc}") from exc

    def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """`op` in one write transaction."""

        def in_transaction(conn: sqlite3.Connection) -> T:
            with _transaction(conn):
                return op(conn)

        return self._run(in_transaction)

    @staticmethod
    def _configure(conn: sqlite3.Connection) -> None:
        # Switching a new file to WAL needs an exclusive lock, and SQLite does not run the busy
        # handler for it: a second process or thread opening the same new file at the same
        # moment gets "database is locked" at once. The mode is persistent, so only the very
        # first opening switches; until it has, wait and try again like the busy handler would.
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode not in _BUSY_CODES or time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)
        conn.execute("PRAGMA synchronous=FULL")

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        # BEGIN IMMEDIATE serialises concurrent openers: the second waits, then finds the
        # versions the first recorded and applies nothing.
        with _transaction(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, migration in enumerate(migrations.SQLITE, start=1):
                if version in applied:
                    continue
                for statement in _statements(migration):
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO schema_migrations (version, applied_at) VALUES (?, {_NOW})",  # noqa: S608
                    (version,),
                )


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (FencedError included)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def _reading(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _write_rows(conn: sqlite3.Connection, shard: str, encoded: EncodedDelta) -> None:
    if encoded.full:
        conn.execute("DELETE FROM shard_rows WHERE shard = ?", (shard,))
    elif encoded.removed:
        conn.executemany(
            "DELETE FROM shard_rows WHERE shard = ? AND key = ?",
            [(shard, key) for key in encoded.removed],
        )
    conn.executemany(
        "INSERT INTO shard_rows (shard, key, value) VALUES (?, ?, ?) "
        "ON CONFLICT (shard, key) DO UPDATE SET value = excluded.value",
        [(shard, key, value) for key, value in encoded.rows],
    )


def _upsert_checkpoint(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute(
        f"INSERT INTO checkpoints (name, value, updated_at) VALUES (?, ?, {_NOW}) "  # noqa: S608
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (name, value),
    )


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements: sqlite3 runs one per execute(), and executescript()
    would commit the surrounding transaction."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending.strip()
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise StateError(f"migration ends in an incomplete statement: {pending.strip()!r}")
