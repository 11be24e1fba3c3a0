"""The core turns records into decisions without touching the world.

Parsing, attribution, scope checks, classification and decisions take everything they need
as arguments (time included), so the service, replay and the tests run the same code. These
tests keep it that way: a core module that imports an I/O library or reads the clock fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "detector" / "core"
MODULES = sorted(CORE.rglob("*.py"))

# Standard-library and third-party modules that do I/O, read the clock or the environment.
FORBIDDEN = {
    "asyncio", "boto3", "botocore", "aiobotocore", "kafka", "prometheus_client", "logging",
    "os", "sys", "time", "socket", "subprocess", "threading", "sqlite3", "psycopg", "urllib",
    "http", "requests", "pathlib", "shutil", "tempfile", "random", "uuid",
}  # fmt: skip
# Calls that read the clock even without importing `time`.
CLOCK_CALLS = {"now", "utcnow", "today"}
# Within the package, the core may import only itself, the error types and the registry.
ALLOWED_INTERNAL = ("detector.core", "detector.errors", "detector.registry")


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_the_core_has_modules() -> None:
    assert len(MODULES) > 10


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for name in _imports(tree):
        top = name.split(".", 1)[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        if top == "detector":
            assert name.startswith(ALLOWED_INTERNAL), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_does_not_read_the_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in CLOCK_CALLS, (
                f"{path.name}:{node.lineno} calls .{node.func.attr}()"
            )


def test_the_check_catches_a_violation(tmp_path: Path) -> None:
    bad = ast.parse("import boto3\nfrom datetime import datetime\nx = datetime.now()\n")
    assert "boto3" in _imports(bad)
    calls = [n.func.attr for n in ast.walk(bad) if isinstance(n, ast.Call)]
    assert "now" in calls
