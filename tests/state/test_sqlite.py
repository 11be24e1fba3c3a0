"""SQLite specifics: the file, its journal mode, migrations, damage and lock contention."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from detector.errors import StateError, TransientError
from detector.state import migrations, sqlite
from detector.state.sqlite import SqliteStateStore
from detector.state.store import encode_snapshot
from tests.state.pipelines import pipeline_with_sessions


def _rows(path: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStateStore(path).close()
    assert _rows(path, "PRAGMA journal_mode") == [("wal",)]


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "trailguard" / "state.db"
    with SqliteStateStore(path) as store:
        store.save_checkpoint("poller", "p-1")
    assert path.is_file()


def test_migrations_are_recorded_once_however_often_the_file_opens(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    for _ in range(3):
        SqliteStateStore(path).close()
    rows = _rows(path, "SELECT version FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, len(migrations.SQLITE) + 1))


def test_the_compressed_size_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    snapshot = pipeline_with_sessions(20).snapshot()
    with SqliteStateStore(path) as store:
        store.save("default", snapshot, epoch=store.claim("default", "a"))
    size = len(encode_snapshot(snapshot))
    assert _rows(path, "SELECT snapshot_bytes, length(snapshot) FROM shards") == [(size, size)]


def test_a_damaged_snapshot_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SqliteStateStore(path) as store:
        store.save("default", {"n": 1}, epoch=store.claim("default", "a"))
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE shards SET snapshot = x'00010203'")
    conn.close()

    with SqliteStateStore(path) as store, pytest.raises(StateError, match="damaged"):
        store.load("default")


def test_a_file_locked_by_another_writer_is_a_transient_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.db"
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_SECONDS", 0.0)
    with SqliteStateStore(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(TransientError) as caught:
                store.claim("default", "a")
            assert caught.value.retriable is True
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert store.claim("default", "a") == 1


def test_an_unopenable_path_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "state.db").mkdir()
    with pytest.raises(StateError):
        SqliteStateStore(tmp_path / "state.db")


def test_an_in_memory_store_works(tmp_path: Path) -> None:
    with SqliteStateStore(":memory:") as store:
        store.save("default", {"n": 1}, epoch=store.claim("default", "a"))
        assert store.load("default") == {"n": 1}
