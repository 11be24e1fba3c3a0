"""Fixtures opening each state store against a real backend: a SQLite file in tmp_path, and
a throwaway schema in the PostgreSQL server on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from detector.state.postgres import PostgresStateStore
from detector.state.sqlite import SqliteStateStore
from detector.state.store import StateStore

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"

# Opens a store on the test's backend; every call opens another store on the same data.
Opener = Callable[[], StateStore]


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A schema name no other test or run uses; dropped afterwards."""
    schema = f"trailguard_test_{uuid.uuid4().hex}"
    yield schema
    drop_schema(schema)


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.integration),
    ]
)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """A factory of stores on one backend, closing every store it opened at teardown."""
    opened: list[StateStore] = []
    if request.param == "sqlite":
        path = tmp_path / "state.db"

        def make() -> StateStore:
            return SqliteStateStore(path)

    else:
        schema: str = request.getfixturevalue("pg_schema")

        def make() -> StateStore:
            return PostgresStateStore(PG_DSN, schema=schema)

    def opener() -> StateStore:
        store = make()
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Opener) -> StateStore:
    return open_store()
