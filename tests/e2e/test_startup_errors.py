"""Start-up errors of `trailguard run`: one clear line and exit 2, caught by `config check`."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _trailguard(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def _config(tmp_path: Path, watched: Path, port: int = 0) -> Path:
    path = tmp_path / "trailguard.yaml"
    path.write_text(
        f"sources: [{{type: files, path: '{watched}'}}]\n"
        f"state: {{path: '{tmp_path / 'state.db'}'}}\n"
        f"http: {{host: 127.0.0.1, port: {port}}}\n"
    )
    return path


def _one_clear_line(stderr: str) -> str:
    # Structured log records (JSON lines, e.g. a warning about settings) may precede it; the
    # error itself is one plain line.
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_config_check_rejects_a_watched_path_that_does_not_exist(tmp_path: Path) -> None:
    done = _trailguard("config", "check", str(_config(tmp_path, tmp_path / "missing")))
    assert done.returncode == 2
    line = _one_clear_line(done.stderr)
    assert f"'sources[0].path': {tmp_path / 'missing'} is not a directory" in line


def test_run_exits_2_on_a_watched_path_that_does_not_exist(tmp_path: Path) -> None:
    done = _trailguard("run", "--config", str(_config(tmp_path, tmp_path / "missing")))
    assert done.returncode == 2
    assert "is not a directory" in _one_clear_line(done.stderr)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def test_run_exits_2_when_the_http_port_is_in_use(tmp_path: Path, busy_port: int) -> None:
    watched = tmp_path / "in"
    watched.mkdir()
    done = _trailguard("run", "--config", str(_config(tmp_path, watched, busy_port)))
    assert done.returncode == 2
    line = _one_clear_line(done.stderr)
    assert f"http.port: cannot listen on 127.0.0.1:{busy_port}" in line
