"""`trailguard bench baseline` prints its figures (never judged here: speed is not tested)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_replay_cli import run


def test_bench_baseline_prints_both_rates_and_what_the_baseline_added(artifact: Path) -> None:
    done = run("bench", "baseline", "--baseline", str(artifact), "--events", "300")
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines[0] == f"baseline: {artifact}"
    assert lines[1].split()[:4] == ["events", "without", "ev/s", "with"]
    row = lines[2].split()
    assert row[0] == "300" and int(row[-1].replace(",", "")) > 0


def test_bench_baseline_without_an_artifact_is_a_usage_error(tmp_path: Path) -> None:
    done = run("bench", "baseline", "--baseline", str(tmp_path), "--events", "10")
    assert done.returncode == 2
    assert f"no baseline artifact at {tmp_path}" in done.stderr.decode()
