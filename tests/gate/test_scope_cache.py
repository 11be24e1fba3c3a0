"""The gate's cache of YAML scope files: used only while the file reads exactly the same,
never able to make a file that does not parse pass, and skipped when it cannot be used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from detector import scope_file
from detector.errors import ConfigError
from detector.gate import scope_cache
from tests.gate.conftest import SCOPES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    path = tmp_path / "scopes.yaml"
    path.write_text(SCOPES.read_text())
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


def _no_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the YAML was decoded again")

    monkeypatch.setattr(scope_file, "decode", refuse)


def test_a_cached_file_reads_the_same_without_decoding_it_again(
    copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = scope_cache.load_scopes(copy, _env(tmp_path))
    assert first == scope_file.load_scopes(copy)
    (entry,) = (tmp_path / "cache" / "trailguard" / "scopes").iterdir()
    assert entry.stat().st_mode & 0o777 == 0o600
    _no_yaml(monkeypatch)
    assert scope_cache.load_scopes(copy, _env(tmp_path)) == first


def test_an_edited_file_is_read_again(copy: Path, tmp_path: Path) -> None:
    scope_cache.load_scopes(copy, _env(tmp_path))
    # The same length: only the text tells the two apart.
    edited = copy.read_text().replace('"s3:PutObject"', '"s3:PutObjekt"')
    assert len(edited) == len(copy.read_text())
    copy.write_text(edited)
    scope = scope_cache.load_scopes(copy, _env(tmp_path)).get("ce-fix")
    assert scope is not None and "s3:PutObjekt" in scope.allow_actions.patterns


def test_a_damaged_or_foreign_cache_entry_is_not_trusted(copy: Path, tmp_path: Path) -> None:
    expected = scope_cache.load_scopes(copy, _env(tmp_path))
    (entry,) = (tmp_path / "cache" / "trailguard" / "scopes").iterdir()
    text = copy.read_text()
    damaged = [
        "{",
        "[]",
        json.dumps({"version": 1, "text": "another file", "scopes": []}),
        json.dumps({"version": 99, "text": text, "scopes": []}),
        json.dumps({"version": 1, "text": text, "scopes": [{"name": 1}]}),
    ]
    for damage in damaged:
        entry.write_text(damage)
        assert scope_cache.load_scopes(copy, _env(tmp_path)) == expected


def test_a_file_that_does_not_parse_is_refused_and_not_cached(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("scopes:\n  - name: x\n    allow: {actions: ['*']}\n")  # no match
    for _ in range(2):
        with pytest.raises(ConfigError, match="match"):
            scope_cache.load_scopes(bad, _env(tmp_path))
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_is_skipped(copy: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory would go")
    assert scope_cache.load_scopes(copy, _env(tmp_path)) == scope_file.load_scopes(copy)


def test_a_json_scope_file_is_read_directly(tmp_path: Path) -> None:
    path = tmp_path / "scopes.json"
    path.write_text('{"scopes": [{"name": "j", "match": {"agent": "kiro"}, '
                    '"allow": {"actions": ["s3:Get*"]}}]}')  # fmt: skip
    assert scope_cache.load_scopes(path, _env(tmp_path)).get("j") is not None
    assert not (tmp_path / "cache").exists()


def _gate_imports(tmp_path: Path, command: str, **extra: str) -> str:
    """The modules a fresh `trailguard-gate` process imports for one Bash event."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAILGUARD_", "AWS_"))}
    env.update(PYTHONPATH=str(ROOT), AWS_REGION="us-east-1", **_env(tmp_path), **extra)
    event = json.dumps({"tool_name": "Bash", "tool_input": {"command": command}})
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "detector.commands.gate", "--hook",
         "claude-code", "--scopes", str(SCOPES), "--scope", "ce-fix", "--no-journal"],
        input=event, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 2), done.stderr
    return "\n".join(
        line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line
    )


def test_the_gate_imports_yaml_only_to_fill_the_cache(tmp_path: Path) -> None:
    line = "aws s3 ls s3://ce-artifacts --region us-east-1"
    assert "yaml" in _gate_imports(tmp_path, line).split()
    warm = _gate_imports(tmp_path, line).split()
    assert "yaml" not in warm and "detector.core.scope" in warm
    # A line without AWS calls reads no scope and imports neither the scope engine nor
    # the AWS CLI reader.
    plain = _gate_imports(tmp_path, "git status && pytest -q").split()
    assert "detector.gate.decide" in plain
    assert not {"detector.core.scope", "detector.gate.awscli", "yaml"} & set(plain)


def test_sending_a_verdict_to_an_http_service_imports_no_urllib(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = tmp_path / "token"
    token.write_text("t\n")
    service = {"TRAILGUARD_URL": f"http://127.0.0.1:{port}", "TRAILGUARD_TOKEN_FILE": str(token)}
    modules = set(_gate_imports(tmp_path, "git status", **service).split())
    assert "detector.gate.http_client" in modules and "socket" in modules
    assert not {"urllib.request", "http.client", "email", "ssl"} & modules
