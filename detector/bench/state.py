"""`trailguard bench state`: what a flush costs, with many live sessions and few changed.

The pipeline is built as `run` builds it (default settings, the demo scopes) and given N
sessions, one event each. It is saved to a real store (SQLite in a temporary directory, or
the PostgreSQL DSN given) three ways:

* whole: the full snapshot as one value, as the service saved every flush before rows;
* first: the first delta of a pipeline, which holds every row (once per claim of a shard);
* flush: a delta after K further events on K sessions already held: what each flush costs
  in steady state, and what must stay small however many sessions are live.

Then the shard is loaded back and restored, as a new owner or a restart does. Each figure is
the median of `repeat` rounds; the time covers building the delta, encoding and the store's
transaction.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Final

import orjson

from detector.bench.service import demo_scopes
from detector.bench.workloads import own_session_events

SHARD: Final = "bench"


def _pipeline(sessions: int) -> Any:
    from detector.config import load_settings
    from detector.core.parse import parse_record
    from detector.wiring import build_pipeline

    pipeline = build_pipeline(load_settings(None, {}), scopes_path=demo_scopes())
    pipeline.track_changes()
    for line in own_session_events(sessions):
        pipeline.process(parse_record(orjson.loads(line)))
    return pipeline


def _again(sessions: int, changed: int, round_no: int) -> Iterable[bytes]:
    """Events with new ids on `changed` sessions spread over the `sessions` held."""
    step = max(1, sessions // max(1, changed))
    prefix = f'"eventID":"again{round_no}-'.encode()
    for index, line in enumerate(own_session_events(sessions)):
        if index % step == 0:
            yield line.replace(b'"eventID":"memory-', prefix)


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _save_changes(store: Any, pipeline: Any, epoch: int) -> tuple[float, int]:
    """Seconds to build the pipeline's delta and save it, and the rows it wrote."""
    started = time.perf_counter()
    delta = pipeline.changes()
    store.save(SHARD, delta, epoch=epoch)
    return time.perf_counter() - started, len(delta.rows)


def measure(sessions: int, changed: int, *, repeat: int, dsn: str | None) -> dict[str, Any]:
    from detector.core.parse import parse_record
    from detector.state.postgres import PostgresStateStore
    from detector.state.sqlite import SqliteStateStore

    pipeline = _pipeline(sessions)
    with tempfile.TemporaryDirectory(prefix="trailguard-bench-state-") as folder:
        store: Any = (
            PostgresStateStore(dsn, schema="trailguard_bench_state")
            if dsn
            else SqliteStateStore(Path(folder) / "state.db")
        )
        try:
            epoch = store.claim(SHARD, "bench")
            whole = [
                _timed(lambda: store.save(SHARD, pipeline.snapshot(), epoch=epoch))
                for _ in range(repeat)
            ]
            # Until a delta is marked saved, each one holds every row again.
            first, first_rows = zip(
                *(_save_changes(store, pipeline, epoch) for _ in range(repeat)), strict=True
            )
            pipeline.saved()
            flush, rows = [], 0
            for round_no in range(repeat):
                for line in _again(sessions, changed, round_no):
                    pipeline.process(parse_record(orjson.loads(line)))
                seconds, rows = _save_changes(store, pipeline, epoch)
                flush.append(seconds)
                pipeline.saved()
            fresh = _pipeline(0)
            restore = _timed(lambda: fresh.restore(store.load(SHARD)))
            assert len(fresh.tracker) == len(pipeline.tracker)
        finally:
            store.close()
    return {
        "sessions": len(pipeline.tracker),
        "changed": changed,
        "whole": statistics.median(whole),
        "first": statistics.median(first),
        "first_rows": first_rows[-1],
        "flush": statistics.median(flush),
        "flush_rows": rows,
        "restore": restore,
        "store": "postgresql" if dsn else "sqlite",
    }


def run(out: IO[str], *, sessions: list[int], changed: int, repeat: int, dsn: str | None) -> None:
    out.write(
        f"{'store':>10} {'live':>9} {'whole s':>9} {'first s':>9} {'rows':>9} "
        f"{'changed':>8} {'flush s':>9} {'rows':>7} {'restore s':>10}\n"
    )
    for count in sessions:
        f = measure(count, changed, repeat=repeat, dsn=dsn)
        out.write(
            f"{f['store']:>10} {f['sessions']:>9,} {f['whole']:>9.3f} {f['first']:>9.3f} "
            f"{f['first_rows']:>9,} {f['changed']:>8,} {f['flush']:>9.4f} "
            f"{f['flush_rows']:>7,} {f['restore']:>10.3f}\n"
        )
        out.flush()
    out.write(
        "whole: the snapshot as one value (every flush before rows); first: a shard's first\n"
        "delta, all rows; flush: the delta after events on `changed` held sessions.\n"
    )
