"""Durable state for the always-on service: pipeline snapshots per shard, source checkpoints.

`STATE_STORES` maps the name written in the config file ("sqlite", "postgres") to a factory
that takes that store's settings mapping and opens the store. Factories validate the settings
themselves and raise ConfigError naming the offending key, e.g. `state.postgres.dsn: required`.
The store modules are imported on first use so that SQLite users never load psycopg.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from os import PathLike
from typing import Any

from detector.errors import ConfigError
from detector.registry import Registry
from detector.state.store import FencedError, StateStore, decode_snapshot, encode_snapshot

StateStoreFactory = Callable[[Mapping[str, Any]], StateStore]

STATE_STORES: Registry[StateStoreFactory] = Registry("state store")


def _check_keys(kind: str, settings: object, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(settings, Mapping):
        raise ConfigError(f"state.{kind}: must be a mapping, got {type(settings).__name__}")
    unknown = sorted(str(k) for k in settings if k not in allowed)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise ConfigError(f"state.{kind}.{unknown[0]}: unknown key (known: {known})")
    return settings


def _text(kind: str, settings: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = settings.get(key, default)
    if value is None:
        raise ConfigError(f"state.{kind}.{key}: required")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"state.{kind}.{key}: must be a non-empty string, got {value!r}")
    return value


def open_sqlite(settings: Mapping[str, Any]) -> StateStore:
    """`{"path": "/var/lib/trailguard/state.db"}`; the parent directory is created if missing."""
    from detector.state.sqlite import SqliteStateStore

    settings = _check_keys("sqlite", settings, {"path"})
    path = settings.get("path")
    if isinstance(path, PathLike):
        path = str(path)
    return SqliteStateStore(_text("sqlite", {"path": path}, "path"))


def open_postgres(settings: Mapping[str, Any]) -> StateStore:
    """`{"dsn": "host=... dbname=...", "schema": "trailguard"}`; schema is optional."""
    from detector.state.postgres import PostgresStateStore, check_schema, parse_dsn

    settings = _check_keys("postgres", settings, {"dsn", "schema"})
    dsn = _text("postgres", settings, "dsn")
    schema = _text("postgres", settings, "schema", "trailguard")
    try:
        parse_dsn(dsn)
    except ValueError as exc:
        raise ConfigError(f"state.postgres.dsn: {exc}") from None
    try:
        check_schema(schema)
    except ValueError as exc:
        raise ConfigError(f"state.postgres.schema: {exc}") from None
    return PostgresStateStore(dsn, schema=schema)


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
