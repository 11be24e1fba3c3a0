"""Shared pieces of the gate tests: the scope file, and running the gate in process."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from detector.commands import gate as gate_command

SCOPES = Path(__file__).with_name("scopes.yaml")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ENVIRON = {"AWS_REGION": "us-east-1"}
# Keep the machine's own ~/.aws/config out of the tests unless a test gives one.
NO_CONFIG = "/nonexistent/aws-config"
# The scope cache of the gates these tests run, away from the user's own cache.
CACHE = tempfile.mkdtemp(prefix="trailguard-gate-tests-")


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_gate(
    args: list[str],
    stdin: bytes = b"",
    *,
    environ: Mapping[str, str] | None = None,
    journal: Path | None = None,
) -> Outcome:
    """`trailguard-gate ARGS` in process, with the I/O captured."""
    import argparse

    parser = argparse.ArgumentParser(prog="trailguard-gate")
    gate_command.add_parser(parser.add_subparsers())
    extra = ["--journal", str(journal)] if journal is not None else ["--no-journal"]
    parsed = parser.parse_args(["gate", *extra, *args])
    out, err = io.StringIO(), io.StringIO()
    code = gate_command.gate(
        parsed,
        stdin=io.BytesIO(stdin),
        stdout=out,
        stderr=err,
        environ={
            "AWS_CONFIG_FILE": NO_CONFIG,
            "XDG_CACHE_HOME": CACHE,
            **(ENVIRON if environ is None else environ),
        },
        now=NOW,
    )
    return Outcome(code=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture
def scopes() -> Path:
    return SCOPES
