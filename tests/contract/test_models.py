"""Every registered baseline model passes detector.testing.conformance.check_model on real
CloudTrail (the bundled captures, attributed by the pipeline as training sees them). A
registered model with no case here fails, as for sinks and responders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from detector.baseline.action_model import ActionFrequencyModel
from detector.baseline.inputs import plan
from detector.baseline.protocol import TrainableModel, TrainingEvent
from detector.baseline.registry import load_models
from detector.baseline.train import collect
from detector.config import Settings
from detector.testing.conformance import check_model

DATA = Path(__file__).resolve().parents[1] / "data" / "cloudtrail"
MODELS = load_models()


def _no_s3() -> None:
    raise AssertionError("no S3 path was given")


@pytest.fixture(scope="module")
def events() -> list[TrainingEvent]:
    paths = [str(DATA / "invictus_aws_dataset"), str(DATA / "otrf_ec2_proxy_s3_exfiltration")]
    found = list(collect(plan(paths, s3_client=_no_s3), settings=Settings(), s3_client=_no_s3))
    assert len(found) > 1000
    return found


REGISTERED: dict[str, Callable[[], TrainableModel]] = {
    "action-frequency": lambda: ActionFrequencyModel(half_life_days=1.0),
}


def test_every_registered_model_has_a_conformance_case() -> None:
    uncovered = sorted(set(MODELS) - set(REGISTERED))
    assert not uncovered, f"models without a conformance case: {uncovered}"
    assert not sorted(set(REGISTERED) - set(MODELS)), "cases for models no longer registered"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registered_model(name: str, events: list[TrainingEvent], tmp_path: Path) -> None:
    if name not in REGISTERED:
        pytest.fail(f"model {name!r} has no conformance case in REGISTERED")
    check_model(REGISTERED[name], events, directory=tmp_path)
