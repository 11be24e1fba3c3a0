"""How long /healthz and /metrics take to answer while the service works through one file.

    python tests/tools/probe_latency.py [--events 200000] [--chunk-events 100]
        [--batch-records N] [--flush-interval SECONDS] [--no-gc-freeze]

Prints the median and slowest answer of each endpoint while the file is read and while
its events go through the pipeline, then over the whole run, and the garbage collector's
full passes (how many, the longest, their total). `--chunk-events` larger than the file
reproduces a loop that processes the batch in one go (the behaviour before batches were
chunked); `--batch-records` larger than the file, a file handed over as one batch;
`--no-gc-freeze`, a service that leaves the collector walking all of its state. A short
`--flush-interval` puts state saves in the middle of the file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.probe import process_while_probing, write_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--chunk-events", type=int, default=100)
    parser.add_argument("--batch-records", type=int, default=None)
    parser.add_argument("--flush-interval", type=float, default=60.0)
    parser.add_argument("--no-gc-freeze", action="store_true")
    args = parser.parse_args()
    extra = {} if args.batch_records is None else {"batch_records": args.batch_records}
    full_passes: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_file(root / "inbox", args.events)
        began = time.monotonic()
        with _timing_full_passes(full_passes):
            run = asyncio.run(
                process_while_probing(
                    root,
                    events=args.events,
                    chunk_events=args.chunk_events,
                    flush_interval_seconds=args.flush_interval,
                    gc_freeze=not args.no_gc_freeze,
                    **extra,
                )
            )
        took = time.monotonic() - began
    print(
        f"events {args.events}, chunk_events {args.chunk_events}, "
        f"batch_records {args.batch_records or 'default'}, flush every {args.flush_interval} s, "
        f"gc_freeze {not args.no_gc_freeze}, run {took:.1f} s"
    )
    # Answers sent after the last one that saw no event processed: the pipeline was running.
    idle = [a.sent for a in run.answers if a.events == 0]
    boundary = max(idle) if idle else run.answers[0].sent
    phases = {
        "reading": [a for a in run.answers if a.sent <= boundary],
        "processing": [a for a in run.answers if a.sent > boundary],
    }
    phases["all"] = run.answers
    for phase, answers in phases.items():
        for path in ("/healthz", "/metrics"):
            times = [a.seconds for a in answers if a.path == path]
            if not times:
                continue
            failed = sum(1 for a in answers if a.path == path and a.status != 200)
            print(
                f"{phase:10} {path:9} answers {len(times):4}  median "
                f"{statistics.median(times) * 1000:7.1f} ms  slowest {max(times) * 1000:8.1f} ms"
                f"  not 200: {failed}"
            )
    print(f"/metrics answers served mid-batch: {len(run.mid_batch())}")
    longest = max(full_passes, default=0.0)
    print(
        f"full collections {len(full_passes)}, longest {longest * 1000:.0f} ms, "
        f"total {sum(full_passes):.2f} s"
    )


@contextlib.contextmanager
def _timing_full_passes(into: list[float]) -> Iterator[None]:
    """Time each generation-2 collection of the garbage collector while the block runs."""
    began: list[float] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            began.append(time.perf_counter())
        elif began:
            into.append(time.perf_counter() - began.pop())

    gc.callbacks.append(callback)
    try:
        yield
    finally:
        gc.callbacks.remove(callback)


if __name__ == "__main__":
    main()
