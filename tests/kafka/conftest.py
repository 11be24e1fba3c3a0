"""A Tansu broker shared by the whole test session, and a fresh topic name for each test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.kafka.broker import TansuBroker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """One broker for the session: starting one is quick, but every consumer group that joins
    on it waits out part of its session timeout, so tests share it and keep topics apart by
    name instead."""
    # pytest's temporary directory keeps the broker log of the last few runs for inspection.
    broker = TansuBroker(workdir=tmp_path_factory.mktemp("tansu"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test or run uses; the test's name is kept for reading the log."""
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in request.node.name)[:80]
    return f"{stem}-{uuid.uuid4().hex[:12]}"
