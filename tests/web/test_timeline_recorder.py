"""The timeline recorder over the demo incident's real pipeline output, on a SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from detector.config import Settings
from detector.core.parse import parse_record
from detector.errors import TransientError
from detector.scope_file import load_scopes
from detector.sinks.jsonl import step_records
from detector.state.approvals import SessionSummary, TimelineEntry
from detector.state.sqlite import SqliteStateStore
from detector.state.store import StateStore
from detector.web.timeline import TimelineRecorder
from detector.wiring import build_pipeline
from tests.scenario import DEMO, incident


def demo_records() -> list[dict[str, Any]]:
    pipeline = build_pipeline(Settings(), scopes_path=DEMO / "scopes.yaml")
    records: list[dict[str, Any]] = []
    for raw in incident():
        records.extend(step_records(pipeline.process(parse_record(raw))))
    return records


KIRO = "ses-3cdc3999faa2cd89"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "state.db") as opened:
        yield opened


async def test_agent_sessions_are_recorded_once_however_often_delivered(
    store: SqliteStateStore,
) -> None:
    records = demo_records()
    recorder = TimelineRecorder(store, cap=500)
    for _ in range(2):
        await recorder.write(records)
        await recorder.flush()

    entries = store.timeline(KIRO)
    kinds = {(e.kind, e.record.get("action")) for e in entries}
    assert ("finding", "cloudformation:DeleteStack") in kinds
    assert ("response", "revoke-session") in kinds
    assert len(entries) == len({e.entry_key for e in entries})
    agent_findings = [r for r in records if r["type"] == "finding" and r["session_id"] == KIRO]
    assert sum(e.kind == "finding" for e in entries) == len(agent_findings)
    # Human and service sessions have no page.
    humans = {r["session_id"] for r in records if r.get("session_kind") == "human"}
    assert humans and not any(store.timeline(s) for s in humans)

    summary = store.session_summary(KIRO)
    assert summary is not None
    assert (summary.agent, summary.human, summary.scope, summary.on_human_credentials) == (
        "kiro",
        "alice@example.com",
        "ce-4821-fix",
        True,
    )
    assert load_scopes(DEMO / "scopes.yaml").get("ce-4821-fix") is not None


async def test_each_session_keeps_its_newest_entries(store: SqliteStateStore) -> None:
    recorder = TimelineRecorder(store, cap=5)
    records = demo_records()
    await recorder.write(records)
    await recorder.flush()
    kept = store.timeline(KIRO)
    assert len(kept) == 5
    newest = max(
        r.get("event_time") or r.get("last_seen") for r in records if r["session_id"] == KIRO
    )
    assert kept[-1].at.strftime("%Y-%m-%dT%H:%M:%SZ") == newest


class FailsOnce:
    """The real store, with one transient failure injected into the next timeline write."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.failures = 1

    def record_timeline(
        self, entries: Sequence[TimelineEntry], summaries: Sequence[SessionSummary], *, cap: int
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientError("state store busy")
        self.store.record_timeline(entries, summaries, cap=cap)


async def test_a_failed_flush_keeps_the_batch_for_the_retry(store: SqliteStateStore) -> None:
    flaky = FailsOnce(store)
    recorder = TimelineRecorder(flaky, cap=500)  # type: ignore[arg-type]
    await recorder.write(demo_records())
    with pytest.raises(TransientError) as caught:
        await recorder.flush()
    assert caught.value.retriable
    assert store.timeline(KIRO) == []
    await recorder.flush()
    assert any(e.record.get("action") == "cloudformation:DeleteStack" for e in store.timeline(KIRO))


async def test_a_write_during_a_failed_flush_is_kept_with_the_batch_it_failed(
    store: SqliteStateStore,
) -> None:
    records = demo_records()
    half = len(records) // 2
    flaky = FailsOnce(store)
    recorder = TimelineRecorder(flaky, cap=500)  # type: ignore[arg-type]
    await recorder.write(records[:half])
    flushing = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0)  # the flush is writing in its worker thread
    await recorder.write(records[half:])
    with pytest.raises(TransientError):
        await flushing
    await recorder.flush()

    clean = SqliteStateStore(":memory:")
    reference = TimelineRecorder(clean, cap=500)
    await reference.write(records)
    await reference.flush()
    assert [e.entry_key for e in store.timeline(KIRO)] == [
        e.entry_key for e in clean.timeline(KIRO)
    ]
    assert store.session_summary(KIRO) == clean.session_summary(KIRO)
    clean.close()


def _finding(event_id: str, at: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "finding",
        "session_kind": "agent",
        "session_id": "ses-a",
        "event_id": event_id,
        "event_time": at,
        "kind": "out-of-scope-action",
        "reason": "outside its scope",
        **fields,
    }


async def test_the_summary_takes_each_field_from_the_newest_record_that_names_it(
    store: SqliteStateStore,
) -> None:
    recorder = TimelineRecorder(store, cap=50)
    await recorder.write(
        [
            _finding("e1", "2026-01-01T00:00:03Z", agent="kiro", scope="old-task",
                     target={"on_human_credentials": True, "human": "alice@example.com"}),
            _finding("e2", "2026-01-01T00:00:01Z", scope="new-task", target={}),
        ]
    )  # fmt: skip
    await recorder.write([_finding("e3", "2026-01-01T00:00:02Z", agent="kiro-2")])
    await recorder.flush()

    summary = store.session_summary("ses-a")
    assert summary is not None
    assert (summary.agent, summary.human, summary.scope) == (
        "kiro-2",
        "alice@example.com",
        "new-task",
    )
    assert summary.on_human_credentials  # once seen, a later record without it does not clear it
    assert summary.last_at.strftime("%H:%M:%S") == "00:00:03"  # the latest, not the last written
