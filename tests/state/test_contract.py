"""The StateStore contract, run against every store on its real backend."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

from detector.config import Settings
from detector.core.parse import parse_record
from detector.core.state_delta import StateDelta
from detector.errors import StateError
from detector.state.store import FencedError, StateStore
from detector.wiring import build_pipeline
from tests.state.conftest import Opener
from tests.state.pipelines import pipeline_with_sessions, session_events

SHARD = "trailguard.keyed:3"


def test_stores_satisfy_the_protocol(store: StateStore) -> None:
    assert isinstance(store, StateStore)


def test_a_real_pipeline_snapshot_round_trips(store: StateStore) -> None:
    pipeline = pipeline_with_sessions(5)
    snapshot = pipeline.snapshot()
    assert snapshot["sessions"]["sessions"] and snapshot["decisions"] and snapshot["dedup"]

    epoch = store.claim(SHARD, "instance-a")
    store.save(SHARD, snapshot, epoch=epoch)
    loaded = store.load(SHARD)

    assert loaded == snapshot
    fresh = build_pipeline(Settings())
    assert loaded is not None
    fresh.restore(loaded)
    assert fresh.snapshot() == snapshot


def test_a_restored_pipeline_does_not_judge_seen_events_again(store: StateStore) -> None:
    epoch = store.claim(SHARD, "instance-a")
    store.save(SHARD, pipeline_with_sessions(2).snapshot(), epoch=epoch)
    restored = build_pipeline(Settings())
    loaded = store.load(SHARD)
    assert loaded is not None
    restored.restore(loaded)

    again = restored.process(parse_record(session_events(1)[1]))

    assert again.duplicate and again.alerts == ()


def test_nothing_is_loaded_before_the_first_save(store: StateStore) -> None:
    assert store.load(SHARD) is None
    store.claim(SHARD, "instance-a")
    assert store.load(SHARD) is None


def test_each_claim_returns_a_higher_epoch_per_shard(store: StateStore) -> None:
    assert [store.claim(SHARD, "a"), store.claim(SHARD, "b"), store.claim(SHARD, "a")] == [1, 2, 3]
    assert store.claim("default", "a") == 1


def test_the_latest_save_wins(store: StateStore) -> None:
    epoch = store.claim(SHARD, "a")
    store.save(SHARD, {"n": 1}, epoch=epoch)
    store.save(SHARD, {"n": 2}, epoch=epoch)
    assert store.load(SHARD) == {"n": 2}


def test_shards_are_independent(store: StateStore) -> None:
    store.save("default", {"shard": "default"}, epoch=store.claim("default", "a"))
    store.save(SHARD, {"shard": SHARD}, epoch=store.claim(SHARD, "a"))
    assert store.load("default") == {"shard": "default"}
    assert store.load(SHARD) == {"shard": SHARD}


def test_checkpoints_are_saved_with_the_snapshot(store: StateStore) -> None:
    epoch = store.claim(SHARD, "a")
    store.save(
        SHARD,
        {"n": 1},
        epoch=epoch,
        checkpoints={"lookup-events:us-east-1": "token-1", "dir:/var/log/ct": "file-0007"},
    )
    store.save(SHARD, {"n": 2}, epoch=epoch, checkpoints={"lookup-events:us-east-1": "token-2"})

    assert store.checkpoint("lookup-events:us-east-1") == "token-2"
    assert store.checkpoint("dir:/var/log/ct") == "file-0007"
    assert store.checkpoint("never-saved") is None


def test_a_save_that_fails_part_way_writes_nothing(store: StateStore) -> None:
    epoch = store.claim(SHARD, "a")
    store.save(SHARD, {"n": 1}, epoch=epoch, checkpoints={"first": "1"})

    # The snapshot row is updated before the second checkpoint fails to bind.
    bad = cast(dict[str, str], {"first": "2", "second": object()})
    with pytest.raises(StateError):
        store.save(SHARD, {"n": 2}, epoch=epoch, checkpoints=bad)

    assert store.load(SHARD) == {"n": 1}
    assert store.checkpoint("first") == "1"
    assert store.checkpoint("second") is None
    store.save(SHARD, {"n": 3}, epoch=epoch)  # the store is still usable
    assert store.load(SHARD) == {"n": 3}


def test_a_stale_owner_is_fenced_and_writes_nothing(open_store: Opener) -> None:
    instance_a, instance_b = open_store(), open_store()
    epoch_a = instance_a.claim(SHARD, "instance-a")
    instance_a.save(SHARD, {"owner": "a"}, epoch=epoch_a, checkpoints={"poller": "a-1"})
    epoch_b = instance_b.claim(SHARD, "instance-b")

    with pytest.raises(FencedError) as caught:
        instance_a.save(
            SHARD, {"owner": "a", "late": True}, epoch=epoch_a, checkpoints={"poller": "a-2"}
        )
    assert caught.value.retriable is False
    assert isinstance(caught.value, StateError)
    assert (caught.value.shard, caught.value.epoch) == (SHARD, epoch_a)
    assert (caught.value.current_epoch, caught.value.owner) == (epoch_b, "instance-b")
    assert instance_b.load(SHARD) == {"owner": "a"}
    assert instance_b.checkpoint("poller") == "a-1"

    instance_b.save(SHARD, {"owner": "b"}, epoch=epoch_b, checkpoints={"poller": "b-1"})
    assert instance_a.load(SHARD) == {"owner": "b"}
    assert instance_a.checkpoint("poller") == "b-1"


def test_saving_an_unclaimed_shard_is_fenced(store: StateStore) -> None:
    with pytest.raises(FencedError) as caught:
        store.save(SHARD, {"n": 1}, epoch=1)
    assert caught.value.current_epoch is None
    assert store.load(SHARD) is None


def test_concurrent_claims_get_distinct_epochs(open_store: Opener) -> None:
    stores = [open_store(), open_store()]

    def claim(i: int) -> int:
        return stores[i % 2].claim(SHARD, f"owner-{i % 2}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        epochs = list(pool.map(claim, range(40)))

    assert sorted(epochs) == list(range(1, 41))


def test_standalone_checkpoints(store: StateStore) -> None:
    store.save_checkpoint("lookup-events:eu-west-1", "2025-12-08T10:00:00Z")
    store.save_checkpoint("lookup-events:eu-west-1", "2025-12-08T10:05:00Z")
    assert store.checkpoint("lookup-events:eu-west-1") == "2025-12-08T10:05:00Z"


def test_state_survives_closing_and_reopening(open_store: Opener) -> None:
    first = open_store()
    epoch = first.claim(SHARD, "a")
    snapshot = pipeline_with_sessions(3).snapshot()
    first.save(SHARD, snapshot, epoch=epoch, checkpoints={"dir": "f-9"})
    first.save_checkpoint("poller", "p-3")
    first.close()

    second = open_store()
    assert second.load(SHARD) == snapshot
    assert second.checkpoint("dir") == "f-9"
    assert second.checkpoint("poller") == "p-3"
    assert second.claim(SHARD, "a") == epoch + 1


def test_opening_twice_is_harmless(open_store: Opener) -> None:
    first = open_store()
    first.save(SHARD, {"n": 1}, epoch=first.claim(SHARD, "a"))
    second = open_store()
    assert second.load(SHARD) == {"n": 1}


def test_two_stores_opened_at_once_on_an_empty_backend_both_work(open_store: Opener) -> None:
    barrier = threading.Barrier(2)
    opened: list[StateStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        barrier.wait()
        try:
            opened.append(open_store())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(opened) == 2
    assert [s.claim(SHARD, f"owner-{i}") for i, s in enumerate(opened)] == [1, 2]


def test_a_store_is_usable_from_another_thread(store: StateStore) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        epoch = pool.submit(store.claim, SHARD, "a").result()
        pool.submit(lambda: store.save(SHARD, {"n": 1}, epoch=epoch)).result()
    assert store.load(SHARD) == {"n": 1}


def test_a_closed_store_refuses_calls(store: StateStore) -> None:
    store.close()
    store.close()
    with pytest.raises(StateError):
        store.load(SHARD)
    with pytest.raises(StateError):
        store.checkpoint("x")


def test_a_snapshot_that_is_not_json_is_refused_before_writing(store: StateStore) -> None:
    epoch = store.claim(SHARD, "a")
    snapshot: dict[str, Any] = {"n": object()}
    with pytest.raises(StateError):
        store.save(SHARD, snapshot, epoch=epoch)
    assert store.load(SHARD) is None


# -- saving what changed ---------------------------------------------------------------------


def _delta(shared: dict[str, Any], rows: dict[str, Any], removed: tuple[str, ...] = (),
           *, full: bool = False) -> StateDelta:  # fmt: skip
    return StateDelta(shared=shared, rows=rows, removed=frozenset(removed), full=full)


def test_rows_are_written_replaced_and_removed(store: StateStore) -> None:
    epoch = store.claim(SHARD, "a")
    shared = {"version": 2, "sessions": {"sessions": {}}, "n": 1}
    store.save(SHARD, _delta(shared, {"sessions.sessions/s1": {"v": 1},
                                      "sessions.sessions/s2": {"v": 2}}, full=True),
               epoch=epoch)  # fmt: skip
    store.save(
        SHARD,
        _delta({**shared, "n": 2}, {"sessions.sessions/s2": {"v": 3}, "dedup.chunks/0": ["e1"]},
               ("sessions.sessions/s1", "sessions.sessions/never-saved")),
        epoch=epoch,
    )  # fmt: skip
    assert store.load(SHARD) == {
        "version": 2,
        "n": 2,
        "sessions": {"sessions": {"s2": {"v": 3}}},
        "dedup": {"chunks": {"0": ["e1"]}},
    }


def test_a_full_save_drops_every_other_row_of_its_shard_only(store: StateStore) -> None:
    epoch = store.claim(SHARD, "a")
    other = store.claim("default", "a")
    store.save(SHARD, _delta({}, {"a.b/1": 1, "a.b/2": 2}), epoch=epoch)
    store.save("default", _delta({}, {"a.b/1": 10}), epoch=other)
    store.save(SHARD, _delta({}, {"a.b/3": 3}, full=True), epoch=epoch)
    assert store.load(SHARD) == {"a": {"b": {"3": 3}}}
    assert store.load("default") == {"a": {"b": {"1": 10}}}
    store.save(SHARD, {"whole": True}, epoch=epoch)  # a mapping is saved whole
    assert store.load(SHARD) == {"whole": True}


def test_a_fenced_delta_writes_no_row(store: StateStore) -> None:
    old = store.claim(SHARD, "a")
    store.save(SHARD, _delta({"n": 1}, {"a.b/1": 1}), epoch=old)
    new = store.claim(SHARD, "b")
    with pytest.raises(FencedError):
        store.save(SHARD, _delta({"n": 2}, {"a.b/2": 2}, ("a.b/1",), full=True), epoch=old)
    assert store.load(SHARD) == {"n": 1, "a": {"b": {"1": 1}}}
    store.save(SHARD, _delta({"n": 3}, {"a.b/4": 4}), epoch=new)
    assert store.load(SHARD) == {"n": 3, "a": {"b": {"1": 1, "4": 4}}}


def test_a_pipeline_saved_flush_by_flush_restores_as_it_was(store: StateStore) -> None:
    events = [parse_record(r) for n in range(6) for r in session_events(n)]
    pipeline = build_pipeline(Settings())
    pipeline.track_changes()
    epoch = store.claim(SHARD, "a")
    written = []
    for start in range(0, len(events), 3):
        for event in events[start : start + 3]:
            pipeline.process(event)
        delta = pipeline.changes()
        written.append((delta.full, len(delta.rows)))
        store.save(SHARD, delta, epoch=epoch)
        pipeline.saved()
    assert written[0][0] and not any(full for full, _ in written[1:])
    loaded = store.load(SHARD)
    assert loaded is not None
    restored = build_pipeline(Settings())
    restored.restore(loaded)
    assert restored.snapshot() == pipeline.snapshot()
