"""PostgreSQL specifics: migrations, outages and reconnection, against the server on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from detector.bench.tansu import free_port
from detector.errors import TransientError
from detector.state import migrations
from detector.state.postgres import PostgresStateStore
from detector.state.store import encode_snapshot
from tests.state.conftest import PG_DSN, drop_schema
from tests.state.pipelines import pipeline_with_sessions

pytestmark = pytest.mark.integration


def _query(query: str, schema: str) -> list[tuple[object, ...]]:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        composed = sql.SQL(query).format(schema=sql.Identifier(schema), name=sql.Literal(schema))
        return conn.execute(composed).fetchall()


class TcpProxy:
    """Forwards a loopback port to the PostgreSQL server and can be cut and restored, so a
    test can take the database away from a store that is already connected."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port = port
        self.upstream = upstream
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and drop every forwarded connection."""
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(free_port(), ("127.0.0.1", 5432))
    proxy.start()
    yield proxy
    proxy.cut()


def test_an_unreachable_server_is_a_transient_error() -> None:
    dsn = f"host=127.0.0.1 port={free_port()} dbname=test user=postgres connect_timeout=5"
    with pytest.raises(TransientError) as caught:
        PostgresStateStore(dsn, schema=f"trailguard_test_{uuid.uuid4().hex}")
    assert caught.value.retriable is True
    assert "dbname" not in str(caught.value)


def test_migrations_are_recorded_once_however_often_the_store_opens(pg_schema: str) -> None:
    for _ in range(3):
        PostgresStateStore(PG_DSN, schema=pg_schema).close()

    rows = _query("SELECT version FROM {schema}.schema_migrations ORDER BY version", pg_schema)
    assert [r[0] for r in rows] == list(range(1, len(migrations.POSTGRES) + 1))


def test_the_tables_have_the_documented_columns(pg_schema: str) -> None:
    PostgresStateStore(PG_DSN, schema=pg_schema).close()
    rows = _query(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = {name} ORDER BY table_name, ordinal_position",
        pg_schema,
    )
    # Migrations 1 and 2; later migrations' tables are checked by the tests of the feature
    # that adds them.
    first = {"checkpoints", "schema_migrations", "shards", "response_journal"}
    columns = {(t, c): d for t, c, d in rows if t in first}
    assert columns == {
        ("checkpoints", "name"): "text",
        ("checkpoints", "value"): "text",
        ("checkpoints", "updated_at"): "timestamp with time zone",
        ("schema_migrations", "version"): "integer",
        ("schema_migrations", "applied_at"): "timestamp with time zone",
        ("shards", "shard"): "text",
        ("shards", "owner"): "text",
        ("shards", "epoch"): "bigint",
        ("shards", "snapshot"): "bytea",
        ("shards", "snapshot_bytes"): "integer",
        ("shards", "updated_at"): "timestamp with time zone",
        ("response_journal", "id"): "bigint",
        ("response_journal", "recorded_at"): "timestamp with time zone",
        ("response_journal", "response_key"): "text",
        ("response_journal", "session_id"): "text",
        ("response_journal", "action"): "text",
        ("response_journal", "responder"): "text",
        ("response_journal", "outcome"): "text",
        ("response_journal", "dry_run"): "boolean",
        ("response_journal", "reason"): "text",
        ("response_journal", "detail"): "text",
    }


def test_the_compressed_size_is_recorded(pg_schema: str) -> None:
    snapshot = pipeline_with_sessions(20).snapshot()
    with PostgresStateStore(PG_DSN, schema=pg_schema) as store:
        store.save("default", snapshot, epoch=store.claim("default", "a"))

    rows = _query("SELECT snapshot_bytes, octet_length(snapshot) FROM {schema}.shards", pg_schema)
    assert rows == [(len(encode_snapshot(snapshot)), len(encode_snapshot(snapshot)))]


def test_schemas_do_not_share_state(pg_schema: str) -> None:
    other = f"trailguard_test_{uuid.uuid4().hex}"
    try:
        with (
            PostgresStateStore(PG_DSN, schema=pg_schema) as one,
            PostgresStateStore(PG_DSN, schema=other) as two,
        ):
            one.save("default", {"n": 1}, epoch=one.claim("default", "a"))
            assert two.load("default") is None
            assert two.claim("default", "a") == 1
    finally:
        drop_schema(other)


def test_a_terminated_connection_is_replaced_without_the_caller_noticing(pg_schema: str) -> None:
    name = f"tg-test-{uuid.uuid4().hex[:12]}"
    with PostgresStateStore(f"{PG_DSN} application_name={name}", schema=pg_schema) as store:
        epoch = store.claim("default", "a")
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            ).fetchall()
        assert killed == [(True,)]

        store.save("default", {"n": 1}, epoch=epoch)
        assert store.load("default") == {"n": 1}


def test_an_outage_is_transient_and_the_store_recovers(pg_schema: str, proxy: TcpProxy) -> None:
    dsn = f"host=127.0.0.1 port={proxy.port} dbname=test user=postgres connect_timeout=5"
    with PostgresStateStore(dsn, schema=pg_schema) as store:
        epoch = store.claim("default", "a")
        proxy.cut()

        with pytest.raises(TransientError) as caught:
            store.save("default", {"n": 1}, epoch=epoch)
        assert caught.value.retriable is True
        with pytest.raises(TransientError):
            store.checkpoint("poller")

        proxy.start()
        store.save("default", {"n": 2}, epoch=epoch)
        assert store.load("default") == {"n": 2}
