"""`trailguard bench peer`: pypanther's AWS CloudTrail rules and `trailguard replay`, side by
side on the same events in one run.

pypanther (Panther's detection rules as a Python package, PyPI `pypanther`) is the nearest
open peer: Python rules over CloudTrail records. Its releases cannot share an environment
with TrailGuard's dev tools: from 0.1.1a50 on it pins `ruff<0.5` (the dev extra needs
`ruff>=0.5`), and the releases before pin `aiohttp<3.10.2` and ship a fraction of the rules.
So it runs in an interpreter of its own (`--peer-python`), in a child that needs nothing
but pypanther (`pypanther_child.py`); when none is given, this interpreter is tried.

Replay's rate includes its start-up; pypanther's leaves out loading its rules (printed
apart), so the comparison, if anything, favours the peer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Final

import orjson

from detector.bench.replay_rate import replay_in_child
from detector.bench.service import BenchError, count_types, demo_scopes
from detector.bench.workloads import mixed_events, write_events

PYPANTHER: Final = "pypanther==0.1.1a62"
CHILD: Final = Path(__file__).with_name("pypanther_child.py")
SETUP: Final = (
    f"python3.11 -m venv .venv-peer && .venv-peer/bin/pip install '{PYPANTHER}', "
    "then pass --peer-python .venv-peer/bin/python"
)
# No AWS call is made (the child refuses them); these keep boto3 from looking for any.
_CHILD_ENV: Final = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}


def unavailable(python: str) -> str | None:
    """Why pypanther cannot run under `python`, or None when it can."""
    command = [python, "-c", "import pypanther, panther_core"]
    try:
        done = subprocess.run(command, capture_output=True, check=False, timeout=120)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot start {python}: {exc}"
    if done.returncode == 0:
        return None
    last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
    return (
        f"pypanther cannot be imported by {python} ({last}). It is not in the dev extra: "
        "pypanther 0.1.1a50 and later pin ruff<0.5 while the dev extra needs ruff>=0.5, so "
        f"pip cannot install both in one environment. Give it an interpreter of its own: {SETUP}"
    )


def run_peer(python: str, path: Path) -> dict[str, Any]:
    command = [python, str(CHILD), str(path)]
    env = {**os.environ, **_CHILD_ENV}
    done = subprocess.run(command, capture_output=True, check=False, env=env)  # noqa: S603
    if done.returncode != 0:
        tail = done.stderr[-2000:].decode("utf-8", "replace")
        raise BenchError(f"pypanther's run exited {done.returncode}: {tail}")
    figures: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return figures


def run(out: IO[str], *, events: int, python: str | None = None) -> None:
    interpreter = python or sys.executable
    with tempfile.TemporaryDirectory(prefix="trailguard-bench-peer-") as temporary:
        folder = Path(temporary)
        path = folder / "events.jsonl"
        count, size, sessions = write_events(path, mixed_events(events))
        out.write(f"{count} events (mixed, {sessions} sessions, {size / 2**20:.1f} MiB)\n")
        output = folder / "replay.jsonl"
        seconds, _ = replay_in_child(path, demo_scopes(), output=str(output))
        ours = count / seconds
        types = count_types(output)
        out.write(
            f"{'':<34} {'seconds':>8} {'ev/s':>9} {'alerts':>7}\n"
            f"{'trailguard replay':<34} {seconds:>8.1f} {ours:>9,.0f} {types.get('alert', 0):>7}"
            f"   findings {types.get('finding', 0)}, responses {types.get('response', 0)}; "
            "start-up included\n"
        )
        out.flush()
        reason = unavailable(interpreter)
        if reason is not None:
            out.write("pypanther                          not measured (see below)\n")
            raise BenchError(reason)
        peer = run_peer(interpreter, path)
        theirs = peer["events"] / peer["seconds"] if peer["seconds"] else 0.0
        label = f"pypanther {peer['version']} ({peer['rules']} rules)"
        out.write(
            f"{label:<34} {peer['seconds']:>8.1f} {theirs:>9,.0f} {peer['alerts']:>7}"
            f"   matches {peer['matches']} from {peer['rules_alerting']} rules, rule errors "
            f"{peer['rule_errors']}; {peer['load_seconds']:.1f} s loading rules left out\n"
            f"trailguard / pypanther: {ours / theirs if theirs else float('nan'):.1f}x "
            f"({peer['rules']} AWS CloudTrail rules, {peer['enabled']} of them enabled by "
            "default, all run)\n"
        )
