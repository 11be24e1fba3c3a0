"""The gate's decision modules are pure like the core: no I/O, clock or environment.

The edges of the gate (the command module, the index file reader, the index builder and
the benchmark) are the only places that touch the world.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.architecture.test_core_is_pure import CLOCK_CALLS, FORBIDDEN, _imports

GATE = Path(__file__).resolve().parents[2] / "detector" / "gate"
PURE = ["shell.py", "unwrap.py", "awscli.py", "s3_commands.py", "iac.py", "decide.py", "hooks.py",
        "aws_config.py"]  # fmt: skip


@pytest.mark.parametrize("name", PURE)
def test_decision_modules_do_no_io(name: str) -> None:
    tree = ast.parse((GATE / name).read_text(encoding="utf-8"))
    imported = {module.split(".")[0] for module in _imports(tree)}
    assert not imported & FORBIDDEN, f"{name} imports {sorted(imported & FORBIDDEN)}"
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & CLOCK_CALLS
    assert "open" not in {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def test_the_gate_path_imports_no_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys, detector.commands.gate; "
        "print(','.join(m for m in ('numpy', 'sklearn', 'boto3', 'botocore', 'aiobotocore', "
        "'kafka', 'prometheus_client', 'psycopg', 'yaml', 'orjson', 'sqlite3', "
        "'urllib.request', 'http.client') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert result.stdout.decode().strip() == ""
