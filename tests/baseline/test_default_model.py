"""The shipped prior, models/default: it loads, its hashes hold, and it is what the command
in its model card trains today (so it is never stale)."""

from __future__ import annotations

import json
from pathlib import Path

from detector.baseline.artifact import TrainingWindow, load_artifact
from detector.baseline.inputs import plan
from detector.baseline.train import CollectStats, collect, fit_and_save, make_models
from detector.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "models" / "default"
DATA = ROOT / "tests" / "data" / "cloudtrail"
MODELS = ["action-frequency"]
INPUTS = [str(DATA / "invictus_aws_dataset"), str(DATA / "otrf_ec2_proxy_s3_exfiltration")]


def test_the_shipped_prior_loads_and_holds_only_what_generalises() -> None:
    loaded = load_artifact(DEFAULT)
    assert set(loaded.models) == {"action-frequency"}
    [entry] = loaded.manifest.models
    assert set(entry.counts) == {"global"}, "no principal of the training accounts is kept"
    listed = {f"{name}" for name in loaded.manifest.sha256} | {"manifest.json"}
    present = {p.relative_to(DEFAULT).as_posix() for p in DEFAULT.rglob("*") if p.is_file()}
    assert present - listed == {"MODEL_CARD.md", "training.yaml"}


def test_the_shipped_prior_is_what_its_training_command_writes(tmp_path: Path) -> None:
    settings = load_settings(DEFAULT / "training.yaml")
    stats = CollectStats()
    events = list(collect(plan(INPUTS, s3_client=_no_s3), settings=settings, s3_client=_no_s3,
                          stats=stats))  # fmt: skip
    # The models its card's command names (`--models`): a prior holds only what generalises.
    models = make_models(MODELS, dict(settings.baseline) | {"prior_only": True}, source="t")
    fresh = tmp_path / "default"
    fit_and_save(models, events, fresh, window=stats.window(), source_note=", ".join(INPUTS))
    shipped = json.loads((DEFAULT / "manifest.json").read_text())
    retrained = json.loads((fresh / "manifest.json").read_text())
    assert retrained["sha256"] == shipped["sha256"], "retrain models/default (see its card)"
    assert retrained["window"] == shipped["window"]
    assert TrainingWindow.from_dict(shipped["window"]).events == 2583


def _no_s3() -> None:
    raise AssertionError("no S3 path was given")
