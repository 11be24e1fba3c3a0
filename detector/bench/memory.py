"""`trailguard bench memory`: what a live session costs in memory, at N live sessions.

A child process builds the pipeline as `replay` and `run` do (default settings, the demo
scopes) and puts N events through it, each on credentials of its own, so the pipeline ends
holding N live sessions. The figure per session is the growth of the child's resident
memory (after a full collection, read from /proc) from the first 2,000 sessions (the
warm-up) to the last, over the sessions added in between, so the interpreter, the catalogue
and the scopes do not count; the peak RSS
is the child's `ru_maxrss`, transient garbage included. The eventID window is part of what a
session costs here: every event is new, so it fills to `state.dedup_capacity`.

The child also times the events: those that open a session, and as many again on sessions
it already holds, so the price of a new session shows apart from an event's.
"""

from __future__ import annotations

import gc
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import IO, Any, Final

import orjson

from detector.bench.service import BenchError, demo_scopes
from detector.bench.workloads import own_session_events

WARM_UP: Final = 2000
# Events on known sessions timed after the new ones; enough for a stable per-event figure.
KNOWN_EVENTS: Final = 100_000


def resident_bytes() -> int:
    """Current RSS from /proc/self/statm (ru_maxrss only gives the peak)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def measure(sessions: int) -> dict[str, Any]:
    """In the child: hold `sessions` live sessions and report the figures as a dict."""
    from detector.config import load_settings
    from detector.core.parse import parse_record
    from detector.wiring import build_pipeline

    pipeline = build_pipeline(load_settings(None, {}), scopes_path=demo_scopes())

    def feed(lines: Iterable[bytes]) -> float:
        started = time.perf_counter()
        for line in lines:
            pipeline.process(parse_record(orjson.loads(line)))
        return time.perf_counter() - started

    # The warm-up is the first of the N sessions, so the run ends holding exactly N.
    warm = min(WARM_UP, sessions // 10)
    stream = own_session_events(sessions)
    feed(next(stream) for _ in range(warm))
    gc.collect()
    before, held_before = resident_bytes(), len(pipeline.tracker)
    new_seconds = feed(stream)
    gc.collect()
    after, held_after = resident_bytes(), len(pipeline.tracker)
    # The same credentials again, with fresh event ids: events on sessions already held.
    known = min(sessions - warm, KNOWN_EVENTS)
    again = (
        line.replace(b'"eventID":"memory-', b'"eventID":"again-')
        for line in own_session_events(warm + known)
    )
    known_seconds = feed(line for index, line in enumerate(again) if index >= warm)
    return {
        "sessions": held_after - held_before,
        "live": held_after,
        "before": before,
        "after": after,
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "new_us": new_seconds / (sessions - warm) * 1e6 if sessions > warm else 0.0,
        "known_us": known_seconds / known * 1e6 if known else 0.0,
        "max_sessions": pipeline.tracker.max_sessions,
    }


def run(out: IO[str], *, sessions: int) -> None:
    command = [sys.executable, "-m", "detector.bench.memory", str(sessions)]
    done = subprocess.run(command, capture_output=True, check=False)  # noqa: S603 - our own
    if done.returncode != 0:
        tail = done.stderr[-2000:].decode("utf-8", "replace")
        raise BenchError(f"the measuring process exited {done.returncode}: {tail}")
    figures = orjson.loads(done.stdout.splitlines()[-1])
    grown = figures["after"] - figures["before"]
    per_session = grown / figures["sessions"] if figures["sessions"] else 0.0
    mib = 2**20
    out.write(
        f"{'added':>10} {'live':>10} {'RSS before MiB':>15} {'RSS after MiB':>14} "
        f"{'peak RSS MiB':>13} {'bytes/session':>14} {'µs/new':>8} {'µs/known':>9}\n"
        f"{figures['sessions']:>10} {figures['live']:>10} {figures['before'] / mib:>15.1f} "
        f"{figures['after'] / mib:>14.1f} {figures['peak'] / mib:>13.1f} {per_session:>14,.0f} "
        f"{figures['new_us']:>8.1f} {figures['known_us']:>9.1f}\n"
        "bytes/session = RSS growth / sessions added, after a full collection (the eventID\n"
        f"window included); state.max_sessions is {figures['max_sessions']:,}.\n"
        "µs/new: an event that opens a session; µs/known: one on a session already held.\n"
    )
    if figures["live"] < sessions:
        out.write("note: sessions were evicted at state.max_sessions; fewer are live\n")


def main(argv: list[str]) -> None:
    figures = measure(int(argv[0]))
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
