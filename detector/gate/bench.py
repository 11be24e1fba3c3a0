"""`trailguard bench gate`: how long the gate adds before each tool call.

Figures, printed and never asserted:
- cold start: a fresh process per run, the way an agent runs the hook (interpreter start,
  imports, scope file, index, decision, journal), on a Claude Code event: an AWS call
  checked against a YAML scope file, and a line without AWS calls. Each figure is the
  median wall time, the median CPU time of the process (user + system, which the other
  work on a shared machine disturbs less than wall time) and the slowest wall time. Modules
  are imported from bytecode, as from an installed package (pip compiles it at install):
  the runs get a private bytecode cache, warmed by one run first. The last row is the same
  hook where nothing may be cached (`PYTHONDONTWRITEBYTECODE=1` on a source checkout), so
  every module is compiled on every run. The row "verdict sent" is the AWS call with a
  service configured: the verdict is POSTed to a stand-in on loopback, which answers as
  the service does (the cost of urllib and one round trip).
- `--against DIR` runs the gate of another checkout (its `detector` package on
  PYTHONPATH) in the same runs, interleaved run by run, so both see the same load: a
  before/after comparison from one run.
- decision: the in-process time of one `decide` over a mix of command lines, once the
  interpreter and the index are warm.
"""

from __future__ import annotations

import http.server
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from detector.gate.cli_index import IndexLookup
from detector.gate.decide import decide

COLD_RUNS = 15
DECISIONS = 2000
SCOPES = """\
scopes:
  - name: bench
    match: {agent: bench}
    allow:
      actions: ["cloudformation:Describe*", "s3:Get*", "s3:List*", "lambda:UpdateFunctionCode"]
      regions: ["us-east-1"]
      accounts: ["111122223333"]
    deny:
      actions: ["*:Delete*"]
"""
LINES = (
    "aws cloudformation describe-stacks --stack-name api --region us-east-1",
    "AWS_REGION=us-east-1 aws cloudformation delete-stack --stack-name api",
    "cd infra && terraform plan -out plan.bin && terraform apply plan.bin",
    "bash -c 'aws s3 ls s3://logs/2025/ --recursive | grep error' --region us-east-1",
    "aws ec2 describe-instances --region us-east-1 --filters Name=tag:env,Values=dev",
    "git status && pytest -q tests/",
    "echo $(aws sts get-caller-identity) && aws s3 rb s3://old-bucket --force",
)
EVENTS = {"AWS call": LINES[1], "no AWS call": LINES[5]}
ENTRY_POINTS = {
    "trailguard-gate": ["-m", "detector.commands.gate"],
    "trailguard gate": ["-m", "detector", "gate"],
}
HERE = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    tree: Path
    entry: list[str]
    event: bytes
    bytecode: bool = True
    service: bool = False


@dataclass(frozen=True, slots=True)
class Timing:
    wall: list[float]
    cpu: list[float]


def cold_start(cases: list[Case], folder: Path, runs: int = COLD_RUNS) -> dict[str, Timing]:
    """Seconds per fresh-process gate run for each case, the cases interleaved run by run."""
    scopes = folder / "scopes.yaml"
    scopes.write_text(SCOPES, encoding="utf-8")
    (folder / "token").write_text("bench-token\n", encoding="utf-8")
    timings = {case.label: Timing([], []) for case in cases}
    with _stand_in() as url:
        for warm in (True, *(False,) * runs):
            for case in cases:
                wall, cpu = _run(case, scopes, folder, url if case.service else None)
                if not warm:
                    timings[case.label].wall.append(wall)
                    timings[case.label].cpu.append(cpu)
    return timings


@contextmanager
def _stand_in() -> Iterator[str]:
    """A loopback server answering `POST /v1/gate/verdicts` as the service does."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            answer = json.dumps({"verdict": {"id": body.get("id")}}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _run(case: Case, scopes: Path, folder: Path, service: str | None) -> tuple[float, float]:
    command = [sys.executable, *case.entry, "--hook", "claude-code", "--scopes", str(scopes)]
    command += ["--journal", str(folder / "gate.jsonl")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILGUARD_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if case.bytecode:
        env["PYTHONPYCACHEPREFIX"] = str(folder / "bytecode")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = str(case.tree)
    env["XDG_CACHE_HOME"] = str(folder / "cache")
    env["AWS_CONFIG_FILE"] = os.devnull
    if service is not None:
        env["TRAILGUARD_URL"] = service
        env["TRAILGUARD_TOKEN_FILE"] = str(folder / "token")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # In the scratch folder: `python -m` puts the working directory first on sys.path, which
    # would import a checkout there instead of the tree asked for.
    subprocess.run(  # noqa: S603
        command, input=case.event, capture_output=True, check=False, env=env, cwd=folder
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def decision_time(scopes: Path, count: int = DECISIONS) -> float:
    """Mean seconds per decision, in process, over the mix of command lines."""
    from detector.scope_file import load_scopes

    scope = load_scopes(scopes).scopes[0]
    lookup = IndexLookup()
    at = datetime.now(UTC)
    env = {"AWS_REGION": "us-east-1"}
    for line in LINES:  # warm the index for the services used
        decide(line, scope=scope, env=env, at=at, lookup=lookup)
    started = time.perf_counter()
    for index in range(count):
        decide(LINES[index % len(LINES)], scope=scope, env=env, at=at, lookup=lookup)
    return (time.perf_counter() - started) / count


def cases(against: Path | None) -> list[Case]:
    trees = {"": HERE} if against is None else {"": HERE, f" [{against}]": against}
    found = []
    for suffix, tree in trees.items():
        for what, line in EVENTS.items():
            event = orjson.dumps(
                {"hook_event_name": "PreToolUse", "tool_name": "Bash",
                 "tool_input": {"command": line}}
            )  # fmt: skip
            for name, entry in ENTRY_POINTS.items():
                found.append(Case(f"{name}, {what}{suffix}", tree, entry, event))
        aws = orjson.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                            "tool_input": {"command": EVENTS["AWS call"]}})  # fmt: skip
        gate = ENTRY_POINTS["trailguard-gate"]
        label = f"trailguard-gate, AWS call, verdict sent{suffix}"
        found.append(Case(label, tree, gate, aws, service=True))
        label = f"trailguard-gate, AWS call, no bytecode cache{suffix}"
        found.append(Case(label, tree, gate, aws, bytecode=False))
    return found


def run(out: IO[str], *, runs: int = COLD_RUNS, against: Path | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="trailguard-bench-gate-") as name:
        folder = Path(name)
        baseline = _python_start()
        timings = cold_start(cases(against), folder, runs)
        per_decision = decision_time(folder / "scopes.yaml")
    out.write(
        "trailguard gate: one Claude Code PreToolUse event, a fresh process per run "
        f"({runs} runs, interleaved)\n"
    )
    for label, timing in timings.items():
        out.write(
            f"  {label}: median {statistics.median(timing.wall) * 1000:.1f} ms, "
            f"cpu {statistics.median(timing.cpu) * 1000:.1f} ms, "
            f"slowest {max(timing.wall) * 1000:.1f} ms\n"
        )
    out.write(f"  bare interpreter (`python -c pass`): {baseline * 1000:.1f} ms\n")
    out.write(
        f"  decision: {per_decision * 1e6:.0f} µs per command line, in process "
        f"(mean of {DECISIONS} over {len(LINES)} lines)\n"
    )
    out.write(f"  cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}\n")


def _python_start(runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)
