"""The shipped prior in the pipeline: findings in the output contract, state in the shard
snapshot, a restored pipeline continuing with the same findings."""

from __future__ import annotations

import json
from pathlib import Path

from detector.baseline.artifact import load_artifact
from detector.config import Settings
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline
from detector.wiring import build_pipeline, severity_policy

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "data" / "cloudtrail" / "zmallen_stratus_2022" / "events.jsonl"


def _pipeline() -> Pipeline:
    settings = Settings()
    pipeline = build_pipeline(settings)
    loaded = load_artifact(ROOT / "models" / "default")
    pipeline.baselines = loaded.runtimes(severity_policy(settings), settings.baseline)
    return pipeline


def _kinds(pipeline: Pipeline, lines: list[str]) -> list[list[dict[str, object]]]:
    found = []
    for line in lines:
        result = pipeline.process(parse_record(json.loads(line)))
        found.append([f.to_record() for f in result.findings if f.kind == "novel-action"])
    return found


def test_the_prior_raises_novel_actions_and_resumes_from_a_snapshot() -> None:
    lines = CAPTURE.read_text().splitlines()
    half = len(lines) // 2
    whole = _pipeline()
    found = _kinds(whole, lines)
    assert any(found), "an attack the prior was not trained on holds calls it never saw"
    first = next(f for event in found for f in event)
    assert first["severity"] == "low" and str(first["reason"]).endswith(".")

    resumed = _pipeline()
    _kinds(resumed, lines[:half])
    state = json.loads(json.dumps(resumed.snapshot()))
    assert set(state["baselines"]) == {"action-frequency"}
    restored = _pipeline()
    restored.restore(state)
    assert _kinds(restored, lines[half:]) == found[half:]
