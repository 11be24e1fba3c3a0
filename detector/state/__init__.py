"""Durable state for the always-on service: pipeline snapshots per shard, source checkpoints.

`STATE_STORES` maps the name written in the config file ("sqlite", "postgres") to a factory
that takes that store's settings mapping and opens the store. Factories validate the settings
themselves (`config.parse_section`) and raise ConfigError naming the key as the user writes
it under `state`, e.g. `'state.dsn' is required`.
The store modules are imported on first use so that SQLite users never load psycopg.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Annotated, Any, Protocol

from detector.config import NON_EMPTY, parse_section
from detector.errors import ConfigError
from detector.registry import Registry
from detector.state.store import FencedError, StateStore, decode_snapshot, encode_snapshot


class StateStoreFactory(Protocol):
    """(the store's settings, the configuration file they came from) → an open store."""

    def __call__(self, settings: Mapping[str, Any], *, source: str = ...) -> StateStore: ...


STATE_STORES: Registry[StateStoreFactory] = Registry("state store")


@dataclass(frozen=True, slots=True, kw_only=True)
class SqliteStoreSettings:
    path: Annotated[str, NON_EMPTY]


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresStoreSettings:
    dsn: Annotated[str, NON_EMPTY]
    schema: Annotated[str, NON_EMPTY] = "trailguard"


def open_sqlite(settings: Mapping[str, Any], *, source: str = "<settings>") -> StateStore:
    """`{"path": "/var/lib/trailguard/state.db"}`; the parent directory is created if missing."""
    from detector.state.sqlite import SqliteStateStore

    if isinstance(settings, Mapping) and isinstance(settings.get("path"), PathLike):
        settings = {**settings, "path": str(settings["path"])}
    own = parse_section(SqliteStoreSettings, settings, source=source, key="state")
    return SqliteStateStore(own.path)


def open_postgres(settings: Mapping[str, Any], *, source: str = "<settings>") -> StateStore:
    """`{"dsn": "host=... dbname=...", "schema": "trailguard"}`; schema is optional."""
    from detector.state.postgres import PostgresStateStore

    own = postgres_settings(settings, source=source)
    return PostgresStateStore(own.dsn, schema=own.schema)


def postgres_settings(
    settings: Mapping[str, Any], *, source: str = "<settings>"
) -> PostgresStoreSettings:
    """Validate the postgres store's settings without connecting (`config check` uses it)."""
    from detector.state.postgres import check_schema, parse_dsn

    own = parse_section(PostgresStoreSettings, settings, source=source, key="state")
    try:
        parse_dsn(own.dsn)
    except ValueError as exc:
        raise ConfigError(f"{source}: 'state.dsn': {exc}") from None
    try:
        check_schema(own.schema)
    except ValueError as exc:
        raise ConfigError(f"{source}: 'state.schema': {exc}") from None
    return own


STATE_STORES.register("sqlite", open_sqlite)
STATE_STORES.register("postgres", open_postgres)

__all__ = [
    "STATE_STORES",
    "FencedError",
    "StateStore",
    "StateStoreFactory",
    "decode_snapshot",
    "encode_snapshot",
    "open_postgres",
    "open_sqlite",
]
