"""Schema migrations, in order. Migration N is the N-th entry (counting from 1).

Append only: an applied migration is never edited, because databases that already ran it will
not run it again. Keep migrations additive (new tables, new nullable columns) so an older
release still works against a schema a newer one has migrated; the stores tolerate versions
they do not know for that reason.

Each store records applied versions in its own `schema_migrations(version, applied_at)` table
and applies what is missing at open, in one transaction.
"""

from __future__ import annotations

from typing import Final

# `{schema}` is replaced by the quoted schema name. Several statements may share one entry.
POSTGRES: Final[tuple[str, ...]] = (
    # 1: shard snapshots with their fencing epoch, and source checkpoints.
    """
    CREATE TABLE {schema}.shards (
        shard          text PRIMARY KEY,
        owner          text NOT NULL,
        epoch          bigint NOT NULL,
        snapshot       bytea,
        snapshot_bytes integer,
        updated_at     timestamptz NOT NULL DEFAULT now()
    );
    -- Snapshots arrive zlib-compressed: keep them out of line but skip TOAST's own compression,
    -- which would spend CPU on every save for nothing.
    ALTER TABLE {schema}.shards ALTER COLUMN snapshot SET STORAGE EXTERNAL;
    CREATE TABLE {schema}.checkpoints (
        name       text PRIMARY KEY,
        value      text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    """,
    # 2: the response journal: every decided response and what became of it, append-only.
    """
    CREATE TABLE {schema}.response_journal (
        id           bigserial PRIMARY KEY,
        recorded_at  timestamptz NOT NULL,
        response_key text NOT NULL,
        session_id   text NOT NULL,
        action       text NOT NULL,
        responder    text,
        outcome      text NOT NULL,
        dry_run      boolean NOT NULL,
        reason       text NOT NULL,
        detail       text NOT NULL
    );
    CREATE INDEX response_journal_key ON {schema}.response_journal (response_key, id);
    CREATE INDEX response_journal_session ON {schema}.response_journal (session_id, id);
    CREATE INDEX response_journal_recorded ON {schema}.response_journal (recorded_at);
    """,
)

# The same tables for the embedded store. Times are ISO-8601 UTC text.
SQLITE: Final[tuple[str, ...]] = (
    # 1: shard snapshots with their fencing epoch, and source checkpoints.
    """
    CREATE TABLE shards (
        shard          TEXT PRIMARY KEY,
        owner          TEXT NOT NULL,
        epoch          INTEGER NOT NULL,
        snapshot       BLOB,
        snapshot_bytes INTEGER,
        updated_at     TEXT NOT NULL
    );
    CREATE TABLE checkpoints (
        name       TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 2: the response journal: every decided response and what became of it, append-only.
    """
    CREATE TABLE response_journal (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        recorded_at  TEXT NOT NULL,
        response_key TEXT NOT NULL,
        session_id   TEXT NOT NULL,
        action       TEXT NOT NULL,
        responder    TEXT,
        outcome      TEXT NOT NULL,
        dry_run      INTEGER NOT NULL,
        reason       TEXT NOT NULL,
        detail       TEXT NOT NULL
    );
    CREATE INDEX response_journal_key ON response_journal (response_key, id);
    CREATE INDEX response_journal_session ON response_journal (session_id, id);
    CREATE INDEX response_journal_recorded ON response_journal (recorded_at);
    """,
)
