"""`trailguard bench baseline`: replay throughput with a learned baseline against without it,
measured in the same run, over the same generated input.

The workload is the bundled incident's records spread over many sessions (fresh access
keys, event ids and times), as `trailguard bench` generates it, so attribution, scopes and
the catalogue do the same work in both runs and the difference is the baseline's: features,
back-off scoring per event, online updates, drains. Each replay runs in a child process
(`trailguard replay --format jsonl`); rates are per CPU second of that process (user and
system time), so other work on a shared machine slows the run without changing the figure,
and its peak RSS is reported. The output is read afterwards to count what the baseline
added. Figures are printed, never asserted.
"""

from __future__ import annotations

import importlib.resources
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from detector.core.combine import BASELINE_KINDS

DEMO = ("data", "demo")
SESSIONS = 2000
# The shipped prior, when run from a source checkout.
DEFAULT_ARTIFACT = Path(__file__).resolve().parents[1] / "models" / "default"


@dataclass(frozen=True, slots=True)
class ReplayRun:
    cpu_seconds: float  # user + system time of the replay process
    peak_mib: float
    kinds: Counter[str]


def events(count: int, *, sessions: int = SESSIONS) -> Iterator[bytes]:
    """`count` JSON lines: the demo records with their credentials spread over `sessions`."""
    demo = importlib.resources.files("detector").joinpath(*DEMO, "incident.jsonl")
    rows = [orjson.loads(line) for line in demo.read_bytes().splitlines() if line.strip()]
    base = time.mktime((2025, 12, 8, 0, 0, 0, 0, 0, 0))
    for index in range(count):
        record = dict(rows[index % len(rows)])
        identity = dict(record.get("userIdentity") or {})
        if identity.get("accessKeyId"):
            identity["accessKeyId"] = f"ASIABENCH{index % sessions:011d}"
        record["userIdentity"] = identity
        record["eventID"] = f"bench-{index:012d}"
        record["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + index // 50))
        yield orjson.dumps(record) + b"\n"


def replay_child(path: Path, scopes: Path, output: Path, extra: Sequence[str] = ()) -> ReplayRun:
    """CPU time, peak RSS and finding kinds of one `trailguard replay` in a fresh process."""
    command = [sys.executable, "-m", "detector", "replay", "--format", "jsonl"]
    command += ["--output", str(output), "--scopes", str(scopes), *extra, str(path)]
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(command, stderr=errors)  # noqa: S603 - our own interpreter
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the maximum over all.
        _, status, usage = os.wait4(child.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            tail = errors.read()[-2000:].decode("utf-8", "replace")
            raise RuntimeError(f"replay exited {os.waitstatus_to_exitcode(status)}: {tail}")
    kinds: Counter[str] = Counter()
    with output.open("rb") as handle:
        for line in handle:
            record = orjson.loads(line)
            if record["type"] == "finding":
                kinds[record["kind"]] += 1
    output.unlink()
    return ReplayRun(usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, kinds)


def run(sizes: Sequence[int], artifact: Path, out: IO[str] | Any) -> None:
    demo = importlib.resources.files("detector").joinpath(*DEMO)
    with (
        tempfile.TemporaryDirectory(prefix="trailguard-bench-baseline-") as folder,
        importlib.resources.as_file(demo) as demo_folder,
    ):
        scopes = demo_folder / "scopes.yaml"
        out.write(f"baseline: {_shown(artifact)}\n")
        out.write(
            f"{'events':>10} {'without ev/s':>13} {'with ev/s':>10} {'ratio':>6} "
            f"{'RSS without':>12} {'RSS with':>9} {'baseline findings':>18}\n"
        )
        for count in sorted(sizes):
            path = Path(folder) / f"events-{count}.jsonl"
            with path.open("wb") as handle:
                handle.writelines(events(count))
            output = Path(folder) / "out.jsonl"
            without = replay_child(path, scopes, output)
            scored = replay_child(path, scopes, output, ["--baseline", str(artifact)])
            added = sum(scored.kinds[k] for k in BASELINE_KINDS)
            out.write(
                f"{count:>10} {count / without.cpu_seconds:>13,.0f} "
                f"{count / scored.cpu_seconds:>10,.0f} "
                f"{without.cpu_seconds / scored.cpu_seconds:>6.2f} {without.peak_mib:>8.1f} MiB "
                f"{scored.peak_mib:>5.1f} MiB {added:>18,}\n"
            )
            path.unlink()
        out.write(
            "ev/s: events per CPU second of the replay process, interpreter start-up (and, with\n"
            "the baseline, loading the artifact), reading, the pipeline and writing JSONL\n"
            "included; ratio = with / without; baseline findings = novel-action and\n"
            "anomalous-session findings the baseline added.\n"
        )


def _shown(path: Path) -> str:
    """The artifact's path relative to the working directory when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
