"""`replay --baseline DIR` and `baseline:` from the command line: output, overrides, and a
missing, tampered or mismatched artifact refused with exit 2 naming what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.baseline_use.history import AFTER, OPS, new_role_events
from tests.e2e.test_replay_cli import records, run
from tests.scenario import DEMO, as_jsonl, incident


def _input(tmp_path: Path) -> Path:
    path = tmp_path / "input.jsonl"
    path.write_bytes(as_jsonl(incident() + new_role_events("n", 2, OPS[0], start=AFTER)))
    return path


def _replay(*args: str) -> tuple[int, list[dict[str, object]], str]:
    done = run("replay", "--format", "jsonl", "--scopes", str(DEMO / "scopes.yaml"), *args)
    return done.returncode, records(done.stdout), done.stderr.decode()


def test_replay_with_a_baseline_adds_its_findings_to_the_contract(
    tmp_path: Path, artifact: Path
) -> None:
    path = _input(tmp_path)
    code, plain, _ = _replay(str(path))
    assert code == 0
    code, scored, err = _replay("--baseline", str(artifact), str(path))
    assert code == 0, err
    novel = [r for r in scored if r["type"] == "finding" and r["kind"] == "novel-action"]
    assert novel and all(r["reason"] and r["evidence"] for r in novel)
    # Everything replay found without the baseline is still there, unchanged and in order;
    # what the baseline adds is its own kinds (the session model's among them).
    learned = {"novel-action", "anomalous-session"}
    assert {r["kind"] for r in scored if r["type"] == "finding"} - {
        r["kind"] for r in plain if r["type"] == "finding"
    } <= learned
    assert [r for r in scored if r.get("kind") not in learned] == [
        r for r in plain if r.get("kind") not in learned
    ]


def test_the_config_names_the_artifact_and_the_flag_overrides_it(
    tmp_path: Path, artifact: Path
) -> None:
    path = _input(tmp_path)
    _, expected, _ = _replay("--baseline", str(artifact), str(path))
    config = tmp_path / "trailguard.yaml"
    config.write_text(f"baseline:\n  path: {artifact}\n")
    code, got, err = _replay("--config", str(config), str(path))
    assert code == 0, err
    assert got == expected
    config.write_text("baseline:\n  path: nowhere\n")
    code, got, err = _replay("--config", str(config), "--baseline", str(artifact), str(path))
    assert code == 0, err
    assert got == expected
    code, _, err = _replay("--config", str(config), str(path))
    assert code == 2
    assert f"{config}: baseline.path: {tmp_path / 'nowhere'} is not a directory" in err


def test_a_missing_or_tampered_artifact_is_refused_naming_the_file(
    tmp_path: Path, artifact: Path
) -> None:
    path = _input(tmp_path)
    code, out, err = _replay("--baseline", str(tmp_path / "missing"), str(path))
    assert (code, out) == (2, [])
    assert "--baseline:" in err and "is not a directory" in err
    copy = tmp_path / "copy"
    shutil.copytree(artifact, copy)
    counts = copy / "action-frequency" / "counts.npz"
    counts.write_bytes(counts.read_bytes() + b"\0")
    code, out, err = _replay("--baseline", str(copy), str(path))
    assert (code, out) == (2, [])
    assert "configuration error: --baseline:" in err and "counts.npz" in err


def test_config_check_loads_the_artifact(tmp_path: Path, artifact: Path) -> None:
    config = tmp_path / "trailguard.yaml"
    config.write_text(f"baseline:\n  path: {artifact}\n  models: [action-frequency]\n")
    done = run("config", "check", str(config))
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert f"  baseline: {artifact} (action-frequency; manifest sha256 " in out
    copy = tmp_path / "copy"
    shutil.copytree(artifact, copy)
    (copy / "manifest.json").write_text("{}")
    config.write_text(f"baseline:\n  path: {copy}\n")
    done = run("config", "check", str(config))
    assert done.returncode == 2
    assert "manifest.json" in done.stderr.decode() and done.stdout == b""
