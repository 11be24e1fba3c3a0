"""The approval tests run on both state stores, as the store contract tests do."""

from tests.state.conftest import open_store, pg_schema, store

__all__ = ["open_store", "pg_schema", "store"]
