"""`trailguard bench`: replay throughput against the JSON decoder alone, and peak memory.

The figures are printed, never asserted: a test that times code fails on a busy machine and
proves nothing on an idle one. The workload is the bundled incident's records multiplied into
many sessions (fresh access keys, event ids and times), so attribution, scope checks,
catalogue lookups and decisions all do real work on every event.

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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

DEMO = ("data", "demo")


def templates() -> list[dict[str, Any]]:
    demo = importlib.resources.files("detector").joinpath(*DEMO, "incident.jsonl")
    return [orjson.loads(line) for line in demo.read_bytes().splitlines() if line.strip()]


def synthetic_events(count: int, *, sessions: int = 2000) -> Iterator[bytes]:
    """`count` JSON lines: the demo records with their credentials spread over `sessions`."""
    rows = templates()
    base = time.mktime((2025, 12, 8, 0, 0, 0, 0, 0, 0))
    for index in range(count):
        record = dict(rows[index % len(rows)])
        session = index % sessions
        identity = dict(record.get("userIdentity") or {})
        if identity.get("accessKeyId"):
            identity["accessKeyId"] = f"ASIABENCH{session:011d}"
        record["userIdentity"] = identity
        record["eventID"] = f"bench-{index:012d}"
        stamp = time.gmtime(base + index // 50)
        record["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", stamp)
        yield orjson.dumps(record) + b"\n"


def write_events(path: Path, count: int) -> int:
    size = 0
    with path.open("wb") as handle:
        for line in synthetic_events(count):
            handle.write(line)
            size += len(line)
    return size


def decode_rate(path: Path) -> float:
    """Events per second that orjson alone decodes from the file's lines."""
    started = time.perf_counter()
    count = 0
    with path.open("rb") as handle:
        for line in handle:
            orjson.loads(line)
            count += 1
    return count / (time.perf_counter() - started)


def replay_in_child(path: Path, scopes: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of `trailguard replay` over the file in a fresh process."""
    command = [sys.executable, "-m", "detector", "replay", "--format", "jsonl"]
    command += ["--output", os.devnull, "--scopes", str(scopes), str(path)]
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


def run(sizes: Sequence[int], out: Any) -> None:
    demo = importlib.resources.files("detector").joinpath(*DEMO)
    with (
        tempfile.TemporaryDirectory(prefix="trailguard-bench-") as folder,
        importlib.resources.as_file(demo) as demo_folder,
    ):
        scopes = demo_folder / "scopes.yaml"
        out.write(f"{'events':>10} {'MiB in':>8} {'decode ev/s':>12} {'replay ev/s':>12} ")
        out.write(f"{'ratio':>6} {'peak RSS MiB':>13}\n")
        for count in sorted(sizes):
            path = Path(folder) / f"events-{count}.jsonl"
            size = write_events(path, count)
            decoded = decode_rate(path)
            seconds, peak = replay_in_child(path, scopes)
            replayed = count / seconds
            out.write(
                f"{count:>10} {size / 2**20:>8.1f} {decoded:>12,.0f} {replayed:>12,.0f} "
                f"{replayed / decoded:>6.2f} {peak:>13.1f}\n"
            )
            path.unlink()
        out.write(
            "replay ev/s includes interpreter start-up, reading, attribution, scope checks,\n"
            "catalogue, decisions and writing JSONL; ratio = replay / decode alone.\n"
        )
