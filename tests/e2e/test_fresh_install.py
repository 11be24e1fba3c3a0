"""The package as a new user installs it: a fresh virtualenv, no dev or test extras.

The rest of the suite runs with the dev extras installed, which pull in packages the
runtime also needs (boto3 through moto); a runtime dependency missing from pyproject.toml
shows only here. The install reuses pip's cache, so after the first run it is quick.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# What a source distribution of the project holds: enough to build the wheel.
PACKAGE_FILES = ("pyproject.toml", "README.md", "LICENSE")


def _env() -> dict[str, str]:
    # Nothing of the worktree or the suite's own virtualenv may leak into the fresh one.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A virtualenv with only the built wheel and its runtime dependencies; and the build log."""
    base = tmp_path_factory.mktemp("fresh-install")
    src = base / "src"
    src.mkdir()
    for name in PACKAGE_FILES:
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "detector", src / "detector", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = base / "venv"
    made = _run(sys.executable, "-m", "venv", venv, cwd=base)
    assert made.returncode == 0, made.stderr
    pip = venv / "bin" / "pip"
    # -v shows the build backend's own output, where setuptools prints its warnings.
    built = _run(pip, "wheel", "-v", "--no-deps", "-w", base / "dist", src, cwd=base)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    (wheel,) = (base / "dist").glob("trailguard-*.whl")
    installed = _run(pip, "install", "--quiet", wheel, cwd=base)
    assert installed.returncode == 0, installed.stderr[-4000:]
    return venv, built.stdout + built.stderr


def test_build_prints_no_setuptools_warning(fresh: tuple[Path, str]) -> None:
    _, log = fresh
    assert "SetuptoolsDeprecationWarning" not in log
    assert "SetuptoolsWarning" not in log


def test_runtime_dependencies_are_consistent_without_dev_extras(fresh: tuple[Path, str]) -> None:
    venv, _ = fresh
    checked = _run(venv / "bin" / "pip", "check", cwd=venv)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    python = venv / "bin" / "python"
    # The dev extras are absent, so nothing the runtime imports can come from them.
    assert _run(python, "-c", "import pytest", cwd=venv).returncode != 0
    assert _run(python, "-c", "import boto3, aiobotocore", cwd=venv).returncode == 0


def test_config_check_accepts_the_deploy_example(fresh: tuple[Path, str]) -> None:
    venv, _ = fresh
    result = _run(
        venv / "bin" / "trailguard",
        "config",
        "check",
        ROOT / "deploy" / "trailguard.yaml",
        cwd=venv,
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_demo_runs_and_writes_json_lines_to_a_pipe(fresh: tuple[Path, str]) -> None:
    venv, _ = fresh
    result = _run(venv / "bin" / "trailguard", "demo", cwd=venv)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["type"] for r in records} >= {"finding", "alert", "response"}
