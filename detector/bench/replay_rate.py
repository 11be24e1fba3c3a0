"""`trailguard bench`: replay throughput against the JSON decoder alone, and peak memory.

The figures are printed, never asserted: a test that times code fails on a busy machine and
proves nothing on an idle one. Each size is measured on two workloads (`workloads.py`): the
bench's own (the incident's records spread over 2,000 access keys) and a mixed stream of
whole sessions, about 2,000 of them. The ratio is replay's rate over orjson's on the same
file in the same run, so the machine's load cancels out of it as far as it can.

Peak memory is measured in a child process per size (`ru_maxrss` of the child), so the
parent's own allocations do not count and a flat figure across sizes shows bounded memory.
"""

from __future__ import annotations

import importlib.resources
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import orjson

from detector.bench.workloads import DEMO, WORKLOADS, write_events


def decode_rate(path: Path) -> float:
    """Events per second that orjson alone decodes from the file's lines."""
    started = time.perf_counter()
    count = 0
    with path.open("rb") as handle:
        for line in handle:
            orjson.loads(line)
            count += 1
    return count / (time.perf_counter() - started)


def replay_in_child(path: Path, scopes: Path, *, output: str = os.devnull) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of `trailguard replay` over the file in a fresh process."""
    command = [sys.executable, "-m", "detector", "replay", "--format", "jsonl"]
    command += ["--output", output, "--scopes", str(scopes), str(path)]
    started = time.perf_counter()
    # Replay's summary goes to stderr; kept aside so it does not break the table of figures.
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(command, stderr=errors)  # noqa: S603 - our own interpreter
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the maximum over all.
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            errors.seek(0)
            tail = errors.read()[-2000:].decode("utf-8", "replace")
            raise RuntimeError(f"replay exited {child.returncode}: {tail}")
    return elapsed, usage.ru_maxrss / 1024


def run(sizes: Sequence[int], out: IO[str]) -> None:
    demo = importlib.resources.files("detector").joinpath(*DEMO)
    with (
        tempfile.TemporaryDirectory(prefix="trailguard-bench-") as folder,
        importlib.resources.as_file(demo) as demo_folder,
    ):
        scopes = demo_folder / "scopes.yaml"
        out.write(f"{'workload':<8} {'events':>10} {'sessions':>9} {'MiB in':>8} ")
        out.write(f"{'decode ev/s':>12} {'replay ev/s':>12} {'ratio':>6} {'peak RSS MiB':>13}\n")
        for count in sorted(sizes):
            for name, make in WORKLOADS.items():
                path = Path(folder) / f"{name}-{count}.jsonl"
                events, size, sessions = write_events(path, make(count))
                decoded = decode_rate(path)
                seconds, peak = replay_in_child(path, scopes)
                replayed = events / seconds
                out.write(
                    f"{name:<8} {events:>10} {sessions:>9} {size / 2**20:>8.1f} "
                    f"{decoded:>12,.0f} {replayed:>12,.0f} {replayed / decoded:>6.3f} "
                    f"{peak:>13.1f}\n"
                )
                out.flush()
                path.unlink()
        out.write(
            "bench: the incident's records over 2,000 access keys; mixed: copies of the\n"
            "incident's sessions interleaved, about 2,000 sessions. replay ev/s includes\n"
            "interpreter start-up, reading, attribution, scope checks, catalogue, decisions\n"
            "and writing JSONL; ratio = replay / orjson decode alone, same file, same run.\n"
        )
