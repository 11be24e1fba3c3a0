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
    # 3: approvals held for a second person, and the bounded per-session timeline the
    # session page shows (with one summary row per session).
    """
    CREATE TABLE {schema}.approvals (
        approval_id  text PRIMARY KEY,
        request_key  text NOT NULL UNIQUE,
        session_id   text NOT NULL,
        action       text NOT NULL,
        reason       text NOT NULL,
        scope        text,
        agent        text,
        human        text,
        principal    text,
        response     jsonb NOT NULL,
        status       text NOT NULL,
        outcome      text,
        requested_at timestamptz NOT NULL,
        expires_at   timestamptz NOT NULL,
        decided_by   text,
        decided_at   timestamptz,
        note         text,
        released_at  timestamptz
    );
    CREATE INDEX approvals_status ON {schema}.approvals (status, expires_at);
    CREATE INDEX approvals_session ON {schema}.approvals (session_id);
    CREATE TABLE {schema}.session_timeline (
        session_id text NOT NULL,
        entry_key  text NOT NULL,
        seq        bigserial,
        at         timestamptz NOT NULL,
        kind       text NOT NULL,
        severity   text,
        title      text NOT NULL,
        record     jsonb NOT NULL,
        PRIMARY KEY (session_id, entry_key)
    );
    CREATE INDEX session_timeline_order ON {schema}.session_timeline (session_id, at, seq);
    CREATE TABLE {schema}.session_summaries (
        session_id           text PRIMARY KEY,
        agent                text,
        human                text,
        principal            text,
        scope                text,
        on_human_credentials boolean NOT NULL,
        last_at              timestamptz NOT NULL
    );
    CREATE INDEX session_summaries_recent ON {schema}.session_summaries (last_at);
    """,
    # 4: agent tasks and the scoped credentials minted for each (the task registry).
    """
    CREATE TABLE {schema}.tasks (
        task_id         text PRIMARY KEY,
        agent           text NOT NULL,
        owner           text,
        scope           text NOT NULL,
        role_arn        text NOT NULL,
        source_identity text NOT NULL UNIQUE,
        created_at      timestamptz NOT NULL,
        expires_at      timestamptz NOT NULL,
        status          text NOT NULL,
        ended_at        timestamptz,
        access_key_id   text,
        principal_id    text
    );
    CREATE INDEX tasks_created ON {schema}.tasks (created_at);
    CREATE INDEX tasks_access_key ON {schema}.tasks (access_key_id);
    """,
    # 5: the pre-flight gate's verdicts as the gate sent them, one row per verdict id (a
    # retried send is stored once), linked to the agent's session, task and credentials.
    """
    CREATE TABLE {schema}.gate_verdicts (
        verdict_id    text PRIMARY KEY,
        session_id    text NOT NULL,
        task_id       text,
        access_key_id text,
        agent         text,
        owner         text,
        scope         text,
        decision      text NOT NULL,
        reason        text NOT NULL,
        command       text,
        tool_name     text,
        hook          text,
        decided_at    timestamptz NOT NULL,
        received_at   timestamptz NOT NULL,
        sent_by       text,
        detail        jsonb NOT NULL
    );
    CREATE INDEX gate_verdicts_session ON {schema}.gate_verdicts (session_id, decided_at);
    CREATE INDEX gate_verdicts_task ON {schema}.gate_verdicts (task_id, decided_at);
    """,
    # 6: a shard's state as rows (core/state_delta.py): one per session, credential link and
    # eventID chunk, so a save writes what changed; shards.snapshot keeps the shared part.
    """
    CREATE TABLE {schema}.shard_rows (
        shard text NOT NULL,
        key   text NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (shard, key)
    );
    -- Values arrive zlib-compressed, like snapshots.
    ALTER TABLE {schema}.shard_rows ALTER COLUMN value SET STORAGE EXTERNAL;
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
    # 3: approvals, the per-session timeline and its summaries.
    """
    CREATE TABLE approvals (
        approval_id  TEXT PRIMARY KEY,
        request_key  TEXT NOT NULL UNIQUE,
        session_id   TEXT NOT NULL,
        action       TEXT NOT NULL,
        reason       TEXT NOT NULL,
        scope        TEXT,
        agent        TEXT,
        human        TEXT,
        principal    TEXT,
        response     TEXT NOT NULL,
        status       TEXT NOT NULL,
        outcome      TEXT,
        requested_at TEXT NOT NULL,
        expires_at   TEXT NOT NULL,
        decided_by   TEXT,
        decided_at   TEXT,
        note         TEXT,
        released_at  TEXT
    );
    CREATE INDEX approvals_status ON approvals (status, expires_at);
    CREATE INDEX approvals_session ON approvals (session_id);
    CREATE TABLE session_timeline (
        session_id TEXT NOT NULL,
        entry_key  TEXT NOT NULL,
        at         TEXT NOT NULL,
        kind       TEXT NOT NULL,
        severity   TEXT,
        title      TEXT NOT NULL,
        record     TEXT NOT NULL,
        PRIMARY KEY (session_id, entry_key)
    );
    CREATE INDEX session_timeline_order ON session_timeline (session_id, at);
    CREATE TABLE session_summaries (
        session_id           TEXT PRIMARY KEY,
        agent                TEXT,
        human                TEXT,
        principal            TEXT,
        scope                TEXT,
        on_human_credentials INTEGER NOT NULL,
        last_at              TEXT NOT NULL
    );
    CREATE INDEX session_summaries_recent ON session_summaries (last_at);
    """,
    # 4: agent tasks and the scoped credentials minted for each (the task registry).
    """
    CREATE TABLE tasks (
        task_id         TEXT PRIMARY KEY,
        agent           TEXT NOT NULL,
        owner           TEXT,
        scope           TEXT NOT NULL,
        role_arn        TEXT NOT NULL,
        source_identity TEXT NOT NULL UNIQUE,
        created_at      TEXT NOT NULL,
        expires_at      TEXT NOT NULL,
        status          TEXT NOT NULL,
        ended_at        TEXT,
        access_key_id   TEXT,
        principal_id    TEXT
    );
    CREATE INDEX tasks_created ON tasks (created_at);
    CREATE INDEX tasks_access_key ON tasks (access_key_id);
    """,
    # 5: the pre-flight gate's verdicts.
    """
    CREATE TABLE gate_verdicts (
        verdict_id    TEXT PRIMARY KEY,
        session_id    TEXT NOT NULL,
        task_id       TEXT,
        access_key_id TEXT,
        agent         TEXT,
        owner         TEXT,
        scope         TEXT,
        decision      TEXT NOT NULL,
        reason        TEXT NOT NULL,
        command       TEXT,
        tool_name     TEXT,
        hook          TEXT,
        decided_at    TEXT NOT NULL,
        received_at   TEXT NOT NULL,
        sent_by       TEXT,
        detail        TEXT NOT NULL
    );
    CREATE INDEX gate_verdicts_session ON gate_verdicts (session_id, decided_at);
    CREATE INDEX gate_verdicts_task ON gate_verdicts (task_id, decided_at);
    """,
    # 6: a shard's state as rows; shards.snapshot keeps the shared part.
    """
    -- A rowid table: values of a kilobyte or so make WITHOUT ROWID's b-tree slow to update.
    CREATE TABLE shard_rows (
        shard TEXT NOT NULL,
        key   TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (shard, key)
    );
    """,
)
