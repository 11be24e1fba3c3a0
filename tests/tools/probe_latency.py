"""How long /healthz and /metrics take to answer while the service works through one file.

    python tests/tools/probe_latency.py [--events 200000] [--chunk-events 100]

Prints the median and slowest answer of each endpoint while the file is read and while
its events go through the pipeline. `--chunk-events` larger than the file reproduces a loop
that processes the batch in one go (the behaviour before batches were chunked).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.probe import process_while_probing, write_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--chunk-events", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_file(root / "inbox", args.events)
        began = time.monotonic()
        run = asyncio.run(
            process_while_probing(root, events=args.events, chunk_events=args.chunk_events)
        )
        took = time.monotonic() - began
    print(f"events {args.events}, chunk_events {args.chunk_events}, run {took:.1f} s")
    # Answers sent after the last one that saw no event processed: the pipeline was running.
    idle = [a.sent for a in run.answers if a.events == 0]
    boundary = max(idle) if idle else run.answers[0].sent
    phases = {
        "reading": [a for a in run.answers if a.sent <= boundary],
        "processing": [a for a in run.answers if a.sent > boundary],
    }
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


if __name__ == "__main__":
    main()
