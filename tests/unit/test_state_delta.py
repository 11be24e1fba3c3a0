"""Saving only what changed: rows applied flush after flush give back the whole snapshot.

The service saves `Pipeline.changes()` at every flush and restores from the rows. If any part
of the pipeline changed state without the delta saying so, a restart would resume from a
state the pipeline never had; these tests hold the rows of every delta, as a store would,
and compare what they assemble to the snapshot after every flush.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.bench.workloads import mixed_events, own_session_events, synthetic_events
from detector.config import Settings
from detector.core.dedup import CHUNK_IDS, EventIdWindow
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline
from detector.core.state_delta import StateDelta, assemble, encode_row, row_key, split
from detector.wiring import build_pipeline, load_baselines
from tests.unit.sequence_events import (
    NEW_KEY,
    agent_creates_key,
    at,
    call,
    sequences,
    user,
)
from tests.unit.sequence_events import pipeline as sequence_pipeline

DATA = Path(__file__).resolve().parents[1] / "data" / "cloudtrail"
MODELS = Path(__file__).resolve().parents[2] / "models" / "default"


class Rows:
    """The rows of one shard as a store keeps them."""

    def __init__(self) -> None:
        self.shared: dict[str, Any] = {}
        self.rows: dict[str, Any] = {}

    def apply(self, delta: StateDelta) -> None:
        if delta.full:
            self.rows.clear()
        for key in delta.removed:
            self.rows.pop(key, None)
        # Through JSON, as a store round-trips them.
        self.rows.update({key: orjson.loads(encode_row(row)) for key, row in delta.rows.items()})
        self.shared = orjson.loads(orjson.dumps(delta.shared))

    def snapshot(self) -> dict[str, Any]:
        return assemble(self.shared, self.rows.items())


def _normal(snapshot: dict[str, Any]) -> Any:
    return orjson.loads(orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS))


def _with_baselines() -> Pipeline:
    settings = Settings()
    loaded = load_baselines(settings, path=MODELS)
    assert loaded is not None
    return build_pipeline(settings, baselines=loaded.factory(settings))


def _dataset(name: str) -> list[bytes]:
    return (DATA / name / "events.jsonl").read_bytes().splitlines()


def _encoded(delta: StateDelta) -> bytes:
    return orjson.dumps(
        [delta.shared, delta.rows, sorted(delta.removed), delta.full],
        default=lambda late: orjson.loads(encode_row(late)),
        option=orjson.OPT_SORT_KEYS,
    )


def _flushes(pipeline: Pipeline, lines: Iterable[bytes], every: int, rows: Rows) -> int:
    """Process, and at every `every` events evict, drain and save, checking the rows.

    Each delta must also stay as it was cut while the pipeline goes on: the service writes
    it while later batches run (see `Service._save`).
    """
    pipeline.track_changes()
    checked = 0
    watermark: datetime | None = None
    cut: tuple[StateDelta, bytes] | None = None
    for count, line in enumerate(lines, start=1):
        event = parse_record(orjson.loads(line))
        pipeline.process(event)
        if watermark is None or event.event_time > watermark:
            watermark = event.event_time
        if count % every == 0:
            pipeline.drain()
            if count % (every * 3) == 0:
                # Evict sessions idle for an hour of event time, as the service's flush does.
                pipeline.evict_idle(watermark - timedelta(hours=1))
            if cut is not None:
                assert _encoded(cut[0]) == cut[1], "a delta changed after it was cut"
            delta = pipeline.changes()
            cut = delta, _encoded(delta)
            rows.apply(delta)
            pipeline.saved()
            assert _normal(rows.snapshot()) == _normal(pipeline.snapshot())
            checked += 1
    pipeline.drain()
    rows.apply(pipeline.changes())
    pipeline.saved()
    assert _normal(rows.snapshot()) == _normal(pipeline.snapshot())
    return checked + 1


@pytest.mark.parametrize(
    "dataset",
    [
        "invictus_aws_dataset",
        "stratus_detonation_logs",
        "otrf_ec2_proxy_s3_exfiltration",
        "zmallen_stratus_2022",
    ],
)
def test_deltas_rebuild_the_snapshot_on_real_trails(dataset: str) -> None:
    rows = Rows()
    assert _flushes(_with_baselines(), _dataset(dataset), 37, rows) >= 1


def test_deltas_rebuild_the_snapshot_with_minted_credentials_and_evictions() -> None:
    rows = Rows()
    pipeline = _with_baselines()
    _flushes(pipeline, mixed_events(6000, sessions=300), 250, rows)
    assert len(pipeline.tracker) > 100
    assert any(key.startswith("sessions.links/") for key in rows.rows)


def test_a_delta_holds_only_what_changed() -> None:
    pipeline = build_pipeline(Settings())
    pipeline.track_changes()
    lines = list(synthetic_events(4000, sessions=2000))
    for line in lines[:3000]:
        pipeline.process(parse_record(orjson.loads(line)))
    first = pipeline.changes()
    assert first.full, "nothing was saved yet: the first delta holds everything"
    pipeline.saved()
    for line in lines[3000:3010]:
        pipeline.process(parse_record(orjson.loads(line)))
    second = pipeline.changes()
    assert not second.full
    sessions = {k for k in second.rows if k.startswith("sessions.sessions/")}
    assert 1 <= len(sessions) <= 10
    chunks = {k for k in second.rows if k.startswith("dedup.chunks/")}
    assert chunks == {row_key("dedup.chunks", str(3009 // CHUNK_IDS))}
    pipeline.saved()
    nothing = pipeline.changes()
    assert not nothing.rows and not nothing.removed


def test_a_restored_state_saved_whole_is_saved_whole_again() -> None:
    pipeline = build_pipeline(Settings())
    for line in itertools.islice(own_session_events(50), 50):
        pipeline.process(parse_record(orjson.loads(line)))
    old = pipeline.snapshot()
    old["version"] = 1  # as a release that saved the whole snapshot in one value wrote it
    old["sessions"]["version"] = 1
    old["sessions"]["sessions"] = sorted(
        old["sessions"]["sessions"].values(), key=lambda r: r["order"]
    )
    old["dedup"] = [i for n in sorted(old["dedup"]["chunks"], key=int)
                    for i in old["dedup"]["chunks"][n]]  # fmt: skip
    restored = build_pipeline(Settings())
    restored.restore(old)
    restored.track_changes()
    delta = restored.changes()
    assert delta.full and len([k for k in delta.rows if k.startswith("sessions.sessions/")]) == 50
    assert _normal(assemble(delta.shared, delta.rows.items())) == _normal(pipeline.snapshot())


def test_changes_that_will_not_be_stored_are_saved_whole_next_time() -> None:
    rows = Rows()
    pipeline = build_pipeline(Settings())
    pipeline.track_changes()
    lines = list(own_session_events(40))
    for line in lines[:20]:
        pipeline.process(parse_record(orjson.loads(line)))
    rows.apply(pipeline.changes())
    pipeline.saved()
    for line in lines[20:]:
        pipeline.process(parse_record(orjson.loads(line)))
    pipeline.changes()  # handed to a save that never stores it
    pipeline.saved()
    pipeline.unsaved()
    delta = pipeline.changes()
    assert delta.full
    rows.apply(delta)
    assert _normal(rows.snapshot()) == _normal(pipeline.snapshot())
    assert len([k for k in rows.rows if k.startswith("sessions.sessions/")]) == 40


def test_the_eviction_order_survives_rows() -> None:
    pipeline = build_pipeline(Settings())
    lines = list(synthetic_events(600, sessions=200))
    for line in lines:
        pipeline.process(parse_record(orjson.loads(line)))
    delta = split(pipeline.snapshot(), ["sessions.sessions"])
    reversed_rows = list(reversed(list(delta.rows.items())))
    restored = build_pipeline(Settings())
    restored.restore(assemble(delta.shared, reversed_rows))
    assert [v.session_id for v, _ in restored.tracker.live()] == [
        v.session_id for v, _ in pipeline.tracker.live()
    ]


def _ids(stream: Iterator[int]) -> list[str]:
    return [f"e{n}" for n in stream]


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=3 * CHUNK_IDS),
    batches=st.lists(st.integers(min_value=0, max_value=2 * CHUNK_IDS), max_size=8),
    repeat=st.integers(min_value=1, max_value=4),
)
def test_the_event_id_window_saved_in_chunks_restores_exactly(
    capacity: int, batches: list[int], repeat: int
) -> None:
    window = EventIdWindow(capacity)
    stored: dict[str, list[str]] = {}
    shared: dict[str, Any] = {}
    counter = itertools.count()
    for size in batches:
        for event_id in _ids(n // repeat for n in itertools.islice(counter, size)):
            window.seen(event_id)
        chunks, gone = window.changes()
        for number in gone:
            stored.pop(number, None)
        stored.update(chunks)
        shared = window.shared_snapshot()
        window.saved()
        again = EventIdWindow(capacity)
        again.restore({**shared, "chunks": dict(stored)})
        assert again.snapshot() == window.snapshot()
        assert len(again) == len(window) <= capacity
        probe = f"e{next(counter) // repeat}"
        assert again.seen(probe) == window.seen(probe)


def test_a_grant_used_by_another_session_saves_the_granters_state(tmp_path: Path) -> None:
    p = sequence_pipeline(tmp_path)
    p.track_changes()
    rows = Rows()
    p.process(agent_creates_key("k1", at(1)))
    rows.apply(p.changes())
    p.saved()
    used = call("u1", "s3:ListBuckets", at(3), identity=user("backup", NEW_KEY))
    assert sequences(p.process(used)), "the key's use is a sequence across the two sessions"
    rows.apply(p.changes())
    p.saved()
    assert _normal(rows.snapshot()) == _normal(p.snapshot())
