"""Evaluation: labels, the figures and `trailguard baseline evaluate` on the Invictus capture."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from detector.baseline.artifact import TrainingWindow, save_artifact
from detector.baseline.evaluate import (
    _percentiles,
    _separation,
    attack_label,
    holdout_training,
    read_labels,
)
from detector.baseline.evaluate_inputs import training_events
from detector.baseline.session_model import SessionIsolationModel
from detector.cli import main
from detector.config import Settings
from detector.core.taxonomy import Severity
from detector.errors import ConfigError
from tests.conftest import CLOUDTRAIL

INVICTUS = CLOUDTRAIL / "invictus_aws_dataset"
HALF = "2023-07-10T12:08:00Z"


def test_labels_say_attack_by_label_then_class_then_technique(tmp_path: Path) -> None:
    assert attack_label({"label": "attack"}) is True
    assert attack_label({"label": "background"}) is False
    assert attack_label({"activity_class": "stratus_detonation"}) is True
    assert attack_label({"activity_class": "aws_service_or_internal"}) is False
    assert attack_label({"technique": "aws.persistence.iam-backdoor-user"}) is True
    assert attack_label({"source_file": "x"}) is None
    path = tmp_path / "labels.jsonl"
    path.write_text('{"eventID": "a", "label": "attack"}\n\n{"eventID": "b", "x": 1}\n')
    assert read_labels(path) == {"a": True}
    path.write_text('{"eventID": "a", "label": "attack"}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2: not JSON"):
        read_labels(path)
    path.write_text('{"label": "attack"}\n')
    with pytest.raises(ConfigError, match="needs an eventID"):
        read_labels(path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_labels(tmp_path / "missing.jsonl")


def test_separation_counts_what_is_over_the_threshold() -> None:
    y = np.array([True, True, False, False, False])
    scores = np.array([0.9, -0.1, 0.5, -0.2, -0.3])
    sep = _separation(scores, y, scores > 0)
    assert sep.auc == pytest.approx(5 / 6)
    assert (sep.precision, sep.recall) == (0.5, 0.5)
    none = _separation(scores, np.zeros(5, dtype=bool), np.zeros(5, dtype=bool))
    assert none.auc is None and none.precision is None and none.recall is None
    assert list(_percentiles(np.array([1.0, 3.0, 3.0, 2.0]))) == [0.125, 0.75, 0.75, 0.375]


@pytest.fixture(scope="module")
def invictus_events() -> list:  # type: ignore[type-arg]
    return training_events([str(INVICTUS / "events.jsonl")], settings=Settings())


def test_a_holdout_fits_only_on_benign_unflagged_events_before_the_split(
    invictus_events: list,  # type: ignore[type-arg]
) -> None:
    labels = read_labels(INVICTUS / "labels.jsonl")
    split = datetime(2023, 7, 10, 12, 8, tzinfo=UTC)
    history = holdout_training(invictus_events, labels, until=split, exclude_at=Severity.MEDIUM)
    assert history and len(history) < len(invictus_events) / 2
    for event in history:
        assert event.ctx.event.event_time < split
        assert labels[event.ctx.event.event_id] is False
        assert all(f.severity < Severity.MEDIUM for f in event.findings)


def test_the_holdout_command_reports_every_model_at_both_levels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["baseline", "evaluate", "--train-until", HALF, "--json",
         "--labels", str(INVICTUS / "labels.jsonl"), str(INVICTUS / "events.jsonl")]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scored_events"] == 1414 and report["attack_sessions"] == 3
    names = [m["model"] for m in report["models"]]
    assert names == ["action-frequency", "session-isolation", "combined"]
    for model in report["models"]:
        assert model["events"]["positives"] == 59
        assert 0.0 <= model["events"]["roc_auc"] <= 1.0
        assert model["sessions"]["positives"] == 3
        assert model["alerts_per_day"] >= model["benign_alerts"]  # 30 minutes scored
    # The attacks the action model sees: it ranks Stratus events above most benign ones.
    assert report["models"][0]["events"]["roc_auc"] > 0.7


def test_an_artifact_is_evaluated_as_saved_and_refused_when_changed(
    tmp_path: Path,
    invictus_events: list,
    capsys: pytest.CaptureFixture[str],  # type: ignore[type-arg]
) -> None:
    labels = read_labels(INVICTUS / "labels.jsonl")
    split = datetime(2023, 7, 10, 12, 8, tzinfo=UTC)
    history = holdout_training(invictus_events, labels, until=split, exclude_at=Severity.MEDIUM)
    model = SessionIsolationModel().fit(history)
    save_artifact(tmp_path / "art", [model], window=TrainingWindow(events=len(history)),
                  source_note="test")  # fmt: skip
    args = ["baseline", "evaluate", "--baseline", str(tmp_path / "art"), "--since", HALF,
            "--labels", str(INVICTUS / "labels.jsonl"), str(INVICTUS / "events.jsonl")]  # fmt: skip
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "session-isolation    event" in table and "benign sessions alerted" in table
    forests = next((tmp_path / "art").rglob("forests.npz"))
    forests.write_bytes(forests.read_bytes() + b"\0")
    assert main(args) == 1
    assert "forests.npz" in capsys.readouterr().err


def test_both_or_neither_of_baseline_and_holdout_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels, events = str(INVICTUS / "labels.jsonl"), str(INVICTUS / "events.jsonl")
    assert main(["baseline", "evaluate", "--labels", labels, events]) == 2
    assert "either --baseline" in capsys.readouterr().err
    both = ["--baseline", str(tmp_path), "--train-until", HALF]
    assert main(["baseline", "evaluate", *both, "--labels", labels, events]) == 2
