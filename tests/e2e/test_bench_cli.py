"""Smoke tests of `trailguard bench` and its modes that need no broker: each runs on a tiny
size and must print its figures, well formed. The figures' values are never asserted."""

from __future__ import annotations

import re
import subprocess
import sys

NUMBER = r"[\d,]+(?:\.\d+)?"


def _bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", "bench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def test_bench_prints_the_ratio_on_both_workloads() -> None:
    done = _bench("--events", "400")
    assert done.returncode == 0, done.stderr
    for workload in ("bench", "mixed"):
        row = re.search(
            rf"^{workload}\s+400\s+(\d+)\s+{NUMBER}\s+({NUMBER})\s+({NUMBER})\s+(\d\.\d{{3}})\s+"
            rf"{NUMBER}$",
            done.stdout,
            re.MULTILINE,
        )
        assert row is not None, done.stdout
        sessions, decode, replay, ratio = row.groups()
        assert int(sessions) > 0
        assert float(replay.replace(",", "")) > 0
        assert float(decode.replace(",", "")) > 0
        assert float(ratio) > 0


def test_bench_memory_prints_bytes_per_session() -> None:
    done = _bench("memory", "--sessions", "300")
    assert done.returncode == 0, done.stderr
    row = re.search(
        rf"^\s+(\d+)\s+(\d+)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+({NUMBER})\s+{NUMBER}\s+{NUMBER}$",
        done.stdout,
        re.MULTILINE,
    )
    assert row is not None, done.stdout
    added, live, per_session = row.groups()
    # It ends holding exactly the sessions asked for; the first tenth were the warm-up.
    assert (int(added), int(live)) == (270, 300)
    assert "bytes/session" in done.stdout and "evicted" not in done.stdout
    assert float(per_session.replace(",", "")) >= 0


def test_bench_peer_without_pypanther_says_why_and_fails() -> None:
    """The test interpreter has no pypanther (it cannot share the dev extra's environment):
    replay's figures are printed, then the reason and the way to give pypanther its own."""
    done = _bench("peer", "--events", "200", "--peer-python", sys.executable)
    assert done.returncode == 1
    assert re.search(rf"^trailguard replay\s+{NUMBER}\s+{NUMBER}\s+\d+", done.stdout, re.M)
    assert "pypanther" in done.stdout and "not measured" in done.stdout
    assert "No module named 'pypanther'" in done.stderr
    assert "ruff<0.5" in done.stderr and "--peer-python" in done.stderr


def test_bench_peer_with_an_interpreter_that_does_not_exist() -> None:
    done = _bench("peer", "--events", "50", "--peer-python", "/nonexistent/python")
    assert done.returncode == 1
    assert "cannot start /nonexistent/python" in done.stderr


def test_every_bench_mode_lists_its_exit_codes() -> None:
    for mode in ("kafka", "memory", "latency", "peer", "scale"):
        done = _bench(mode, "--help", timeout=60)
        assert done.returncode == 0, done.stderr
        epilog = done.stdout.split("exit codes:", 1)[1]
        assert "  0  " in epilog and "  1  " in epilog and "  2  " in epilog


def test_bench_modes_reject_sizes_below_one() -> None:
    done = _bench("memory", "--sessions", "0", timeout=60)
    assert done.returncode == 2
    assert "must be at least 1" in done.stderr
