"""The delivered-incident ledger on both state stores: restarts, instances sharing a store."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.errors import StateError, TransientError
from detector.state.postgres import PostgresStateStore
from detector.state.sqlite import SqliteStateStore
from detector.state.store import StateStore
from tests.sinks.conftest import KIRO
from tests.sinks.helpers import Clock, make_sink
from tests.sinks.receiver import Receiver
from tests.state.conftest import PG_DSN, drop_schema

Opener = Callable[[], StateStore]


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.integration)]
)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[StateStore] = []
    schema = f"trailguard_test_{uuid.uuid4().hex}"

    def opener() -> StateStore:
        if request.param == "sqlite":
            store: StateStore = SqliteStateStore(tmp_path / "state.db")
        else:
            store = PostgresStateStore(PG_DSN, schema=schema)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()
    if request.param == "postgres":
        drop_schema(schema)


def _split(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    mine = [r for r in records if r.get("session_id") == KIRO]
    others = [r for r in records if r.get("session_id") != KIRO]
    return mine, others


async def test_two_instances_keep_their_incidents_and_a_restart_sees_both(
    open_store: Opener, receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    settings = {"routing_key": "k", "url": f"{receiver.url}/v2/enqueue"}
    clock = Clock()
    kiro, others = _split(incident_records)
    one = make_sink("pagerduty", settings, store=open_store(), clock=clock)
    two = make_sink("pagerduty", settings, store=open_store(), clock=clock)
    for sink, batch in ((one, kiro), (two, others)):
        await sink.open()
        await sink.write(batch)
        await sink.close()
    sent = len(receiver.accepted())
    assert sent == 2
    restarted = make_sink("pagerduty", settings, store=open_store(), clock=clock)
    await restarted.open()
    # Only sessions that paged have an incident: the delegated session's low finding does not.
    paged = {r["session_id"] for r in incident_records if r["type"] == "alert"}
    assert set(restarted.ledger.active) == paged
    await restarted.write(incident_records)
    await restarted.close()
    assert len(receiver.accepted()) == sent


async def test_a_damaged_stored_incident_is_a_state_error(
    open_store: Opener, receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    store = open_store()
    store.save_checkpoint(f"sink/pagerduty/session/{KIRO}", "{not json")
    sink = make_sink("pagerduty", {"routing_key": "k", "url": receiver.url}, store=store)
    await sink.open()
    with pytest.raises(StateError, match="damaged"):
        await sink.write(incident_records)
    await sink.close()
    assert receiver.requests == []


class _FailingOnce:
    """A real SQLite store whose next checkpoint write fails as a store outage would."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.fail_next = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def save_checkpoint(self, name: str, value: str) -> None:
        if self.fail_next:
            self.fail_next = False
            raise TransientError("state store unavailable")
        self.store.save_checkpoint(name, value)


async def test_a_delivery_the_store_failed_to_record_is_recorded_not_resent(
    tmp_path: Path, receiver: Receiver, incident_records: list[dict[str, Any]]
) -> None:
    real = SqliteStateStore(tmp_path / "state.db")
    flaky = _FailingOnce(real)
    settings = {"routing_key": "k", "url": receiver.url, "min_severity": "critical"}
    sink = make_sink("pagerduty", settings, store=flaky)  # type: ignore[arg-type]
    await sink.open()
    flaky.fail_next = True
    with pytest.raises(TransientError):
        await sink.write(incident_records)
    assert len(receiver.accepted()) == 1
    await sink.write(incident_records)  # the service's retry of the batch
    await sink.close()
    assert len(receiver.accepted()) == 1
    restarted = make_sink("pagerduty", settings, store=real)
    await restarted.open()
    await restarted.write(incident_records)
    await restarted.close()
    real.close()
    assert len(receiver.accepted()) == 1
