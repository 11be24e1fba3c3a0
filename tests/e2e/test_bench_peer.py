"""`trailguard bench peer` against the real pypanther, in an interpreter of its own.

pypanther cannot be installed next to the dev extra (it pins ruff<0.5), so the test makes
a virtualenv with the pinned release, once per machine: it is kept in the temporary
directory under the pin's name, and made again only when missing. Without the package
index the test is skipped with pip's own words; the path without pypanther is tested in
test_bench_cli.py either way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from detector.bench.peer import PYPANTHER

pytestmark = pytest.mark.integration
NUMBER = r"[\d,]+(?:\.\d+)?"


@pytest.fixture(scope="session")
def peer_python() -> Path:
    home = Path(tempfile.gettempdir()) / f"trailguard-peer-{PYPANTHER.replace('==', '-')}"
    python = home / "bin" / "python"
    check = [str(python), "-c", "import pypanther"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    staging = home.with_name(f"{home.name}.{uuid.uuid4().hex[:8]}")
    subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True)
    install = [str(staging / "bin" / "python"), "-m", "pip", "install", "-q", PYPANTHER]
    done = subprocess.run(install, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.skip(f"cannot install {PYPANTHER}: {done.stderr.strip()[-500:]}")
    shutil.rmtree(home, ignore_errors=True)
    staging.rename(home)
    return python


def test_bench_peer_runs_pypanther_and_replay_side_by_side(peer_python: Path) -> None:
    command = [sys.executable, "-m", "detector", "bench", "peer", "--events", "1500"]
    command += ["--peer-python", str(peer_python)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    ours = re.search(rf"^trailguard replay\s+{NUMBER}\s+({NUMBER})\s+(\d+)", done.stdout, re.M)
    theirs = re.search(
        rf"^pypanther {re.escape(PYPANTHER.split('==')[1])} \((\d+) rules\)\s+{NUMBER}\s+"
        rf"({NUMBER})\s+(\d+)\s+matches (\d+) from (\d+) rules, rule errors (\d+);",
        done.stdout,
        re.M,
    )
    ratio = re.search(
        r"^trailguard / pypanther: (\d+\.\d)x \((\d+) AWS CloudTrail", done.stdout, re.M
    )
    assert ours and theirs and ratio, done.stdout
    rules, rate, alerts, matches, alerting, _ = theirs.groups()
    # pypanther's CloudTrail rule set, all of it run; the incident's deletions match some.
    assert int(rules) == int(ratio.group(2)) > 100
    assert float(rate.replace(",", "")) > 0
    assert int(matches) >= int(alerts) > 0 and int(alerting) > 0
