"""Every Sink passes detector.testing.conformance.check_sink against its real destination:
each registered sink type (a file, or a real HTTP receiver on 127.0.0.1 standing in for a
paging system), and the sinks the service adds itself (the session timeline, the approval
requests) over a real SQLite state store."""

from __future__ import annotations

from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterator,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.adapters import load_adapters
from detector.approvals.gate import StoreApprovalGate
from detector.approvals.requests import ApprovalRequests
from detector.approvals.settings import ApprovalSettings
from detector.config import Settings
from detector.core.parse import parse_record
from detector.sinks import SINKS, Sink
from detector.sinks.jsonl import step_records
from detector.state.sqlite import SqliteStateStore
from detector.testing.conformance import SinkUnderTest, check_sink
from detector.web.timeline import TimelineRecorder
from detector.wiring import build_pipeline
from tests.scenario import DEMO, incident, read_output
from tests.sinks.helpers import Clock, make_sink
from tests.sinks.receiver import Receiver

load_adapters()


def contract_records() -> list[dict[str, Any]]:
    """Findings, alerts and responses of the demo incident: every kind of record a sink gets."""
    pipeline = build_pipeline(Settings(), scopes_path=DEMO / "scopes.yaml")
    records: list[dict[str, Any]] = []
    for value in incident():
        records.extend(step_records(pipeline.process(parse_record(value))))
    assert {r["type"] for r in records} == {"finding", "alert", "response"}
    return records


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "state.db") as opened:
        yield opened


Case = Callable[[Path, Receiver, SqliteStateStore], SinkUnderTest]


def _notifications(receiver: Receiver) -> Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]:
    """Every notification the receiver accepted; Alertmanager's bodies are lists of alerts."""

    async def written() -> Sequence[Mapping[str, Any]]:
        received: list[Mapping[str, Any]] = []
        for request in receiver.accepted():
            body = request.json()
            received.extend(body if isinstance(body, list) else [body])
        return received

    return written


def _whole(notification: Mapping[str, Any]) -> Hashable:
    # A notification is the same notification when its every byte is: a second page for the
    # same records, even with an unchanged body, is what the check catches.
    return orjson.dumps(notification, option=orjson.OPT_SORT_KEYS)


def _paging(kind: str, settings: Callable[[Receiver], dict[str, Any]]) -> Case:
    def case(tmp_path: Path, receiver: Receiver, store: SqliteStateStore) -> SinkUnderTest:
        receiver.ok_status = 200
        clock = Clock()
        return SinkUnderTest(
            make=lambda: make_sink(kind, settings(receiver), store=store, clock=clock),
            written=_notifications(receiver),
            key=_whole,
            per_record=False,
        )

    return case


def _jsonl(tmp_path: Path, receiver: Receiver, store: SqliteStateStore) -> SinkUnderTest:
    out = tmp_path / "out.jsonl"

    async def written() -> Sequence[Mapping[str, Any]]:
        return read_output(out)

    return SinkUnderTest(
        make=lambda: SINKS.get("jsonl")("out", {"path": str(out)}), written=written
    )


REGISTERED: dict[str, Case] = {
    "jsonl": _jsonl,
    "alertmanager": _paging("alertmanager", lambda r: {"url": r.url}),
    "pagerduty": _paging(
        "pagerduty", lambda r: {"routing_key": "R0UTINGKEY", "url": f"{r.url}/v2/enqueue"}
    ),
    "slack": _paging("slack", lambda r: {"webhook_url": f"{r.url}/services/T0/B0/x"}),
    "webhook": _paging("webhook", lambda r: {"url": f"{r.url}/hook", "secret": "s3cr3t"}),
}


def test_every_registered_sink_has_a_conformance_case() -> None:
    uncovered = sorted(set(SINKS) - set(REGISTERED))
    assert not uncovered, f"sinks without a conformance case: {uncovered}"
    assert not sorted(set(REGISTERED) - set(SINKS)), "cases for sinks no longer registered"


@pytest.mark.parametrize("kind", sorted(SINKS))
async def test_registered_sink(
    kind: str, tmp_path: Path, receiver: Receiver, store: SqliteStateStore
) -> None:
    if kind not in REGISTERED:
        pytest.fail(f"sink {kind!r} has no conformance case in REGISTERED")
    await check_sink(REGISTERED[kind](tmp_path, receiver, store), contract_records())


def _sessions(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({str(r["session_id"]) for r in records})


async def test_session_timeline(store: SqliteStateStore) -> None:
    records = contract_records()

    async def written() -> Sequence[Mapping[str, Any]]:
        return [
            {"session_id": e.session_id, "entry_key": e.entry_key}
            for session in _sessions(records)
            for e in store.timeline(session)
        ]

    def make() -> Sink:
        return TimelineRecorder(store, cap=500)

    await check_sink(
        SinkUnderTest(
            make=make,
            written=written,
            key=lambda e: (e["session_id"], e["entry_key"]),
            per_record=False,
        ),
        records,
    )


async def test_approval_requests(store: SqliteStateStore) -> None:
    # Responses carried out, not dry runs: those are what a second person approves.
    pipeline_settings = Settings(responses=Settings().responses.__class__(enabled=True))
    pipeline = build_pipeline(pipeline_settings, scopes_path=DEMO / "scopes.yaml")
    records: list[dict[str, Any]] = []
    for value in incident():
        records.extend(step_records(pipeline.process(parse_record(value))))
    assert any(r["type"] == "response" and r["dry_run"] is False for r in records)

    def make() -> Sink:
        gate = StoreApprovalGate(store, ApprovalSettings(), required=True, clock=Clock())
        return ApprovalRequests(gate)

    async def written() -> Sequence[Mapping[str, Any]]:
        return [{"request_key": row.request_key} for row in reversed(store.approvals())]

    await check_sink(
        SinkUnderTest(make=make, written=written, key=lambda r: r["request_key"], per_record=False),
        records,
    )
