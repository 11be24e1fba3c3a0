"""Opening stores by the name and settings written in the config file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from detector.errors import ConfigError
from detector.state import STATE_STORES
from detector.state.postgres import PostgresStateStore
from detector.state.sqlite import SqliteStateStore
from tests.state.conftest import PG_DSN


def test_both_stores_are_registered() -> None:
    assert sorted(STATE_STORES) == ["postgres", "sqlite"]


@pytest.mark.parametrize("path", ["state.db", Path("state.db")])
def test_sqlite_opens_from_settings(tmp_path: Path, path: str | Path) -> None:
    store = STATE_STORES.get("sqlite")({"path": tmp_path / path})
    try:
        assert isinstance(store, SqliteStateStore)
        assert store.claim("default", "a") == 1
    finally:
        store.close()


@pytest.mark.integration
def test_postgres_opens_from_settings(pg_schema: str) -> None:
    store = STATE_STORES.get("postgres")({"dsn": PG_DSN, "schema": pg_schema})
    try:
        assert isinstance(store, PostgresStateStore)
        assert store.claim("default", "a") == 1
    finally:
        store.close()


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("sqlite", {}, "'state.path' is required"),
        ("sqlite", {"path": ""}, "'state.path' must be a non-empty string"),
        ("sqlite", {"path": 7}, "'state.path' must be a non-empty string"),
        ("sqlite", {"path": "x.db", "dsn": "y"}, "unknown key 'state.dsn'"),
        ("sqlite", ["x.db"], "state must be a mapping"),
        ("postgres", {}, "'state.dsn' is required"),
        ("postgres", {"dsn": None}, "'state.dsn' is required"),
        ("postgres", {"dsn": "   "}, "'state.dsn' must be a non-empty string"),
        ("postgres", {"dsn": "host"}, "'state.dsn': not a valid PostgreSQL connection"),
        ("postgres", {"dsn": PG_DSN, "schema": ""}, "'state.schema' must be a non-empty"),
        ("postgres", {"dsn": PG_DSN, "schema": "s" * 64}, "'state.schema': must be 1 to 63"),
        ("postgres", {"dsn": PG_DSN, "path": "x"}, "unknown key 'state.path'"),
    ],
)
def test_bad_settings_name_the_key(name: str, settings: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        STATE_STORES.get(name)(settings)
    assert message in str(caught.value)


def test_an_invalid_dsn_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        STATE_STORES.get("postgres")({"dsn": "host=db password=hunter2 oops"})
    assert "hunter2" not in str(caught.value)
