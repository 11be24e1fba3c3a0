"""`trailguard bench gate`: how long the gate adds before each tool call.

Two figures, printed and never asserted:
- cold start: wall time of `python -m detector gate --hook claude-code` in a fresh process
  per run, the way an agent runs the hook (interpreter start, imports, scope file, index,
  decision, journal), as the median and the slowest of several runs;
- decision: the in-process time of one `decide` over a mix of command lines, once the
  interpreter and the index are warm.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
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


ENTRY_POINTS = {
    "trailguard-gate": ["-m", "detector.commands.gate"],
    "trailguard gate": ["-m", "detector", "gate"],
}


def cold_start(scopes: Path, journal: Path, entry: list[str], runs: int = COLD_RUNS) -> list[float]:
    """Seconds per fresh-process gate run on a Claude Code Bash event."""
    event = orjson.dumps(
        {"hook_event_name": "PreToolUse", "tool_name": "Bash",
         "tool_input": {"command": LINES[1]}}
    )  # fmt: skip
    command = [sys.executable, *entry, "--hook", "claude-code"]
    command += ["--scopes", str(scopes), "--journal", str(journal)]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, input=event, capture_output=True, check=False)  # noqa: S603
        times.append(time.perf_counter() - started)
    return times


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


def run(out: IO[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="trailguard-bench-gate-") as folder:
        scopes = Path(folder) / "scopes.yaml"
        scopes.write_text(SCOPES, encoding="utf-8")
        journal = Path(folder) / "gate.jsonl"
        baseline = _python_start()
        cold = {name: cold_start(scopes, journal, entry) for name, entry in ENTRY_POINTS.items()}
        per_decision = decision_time(scopes)
    out.write("trailguard gate: one Claude Code PreToolUse event, a fresh process per run\n")
    for name, times in cold.items():
        out.write(
            f"  cold start, {name}: median {statistics.median(times) * 1000:.1f} ms, "
            f"slowest {max(times) * 1000:.1f} ms over {len(times)} runs\n"
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
