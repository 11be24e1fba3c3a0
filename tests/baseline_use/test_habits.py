"""severity.habitual_step_down with the action model: a person's daily deletions are one
step lower (tier 0 never below medium), anyone else's keep the catalogue's severity."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.config import Settings, SeveritySettings
from detector.core.combine import STEP_DOWN, change_of
from detector.core.findings import Finding
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline
from detector.core.taxonomy import Severity
from detector.wiring import build_pipeline, load_baselines
from tests.baseline_use.artifact import train
from tests.baseline_use.history import AFTER, OPS, Call, history, record, user_identity

DELETE_BUCKET, DELETE_ROLE = OPS[2], OPS[3]
# The history's deletions raise high and medium findings: to be learned at all, training
# and online learning must keep events up to those (learn_below: critical).
HABITS = SeveritySettings(habitual_step_down=True, learn_below=Severity.CRITICAL)


@pytest.fixture(scope="module")
def learned_habits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = Settings(severity=HABITS)
    return train(history(), tmp_path_factory.mktemp("habits") / "artifact", settings=settings)


def _pipeline(artifact: Path, severity: SeveritySettings) -> Pipeline:
    settings = Settings(severity=severity)
    loaded = load_baselines(settings, path=artifact)
    assert loaded is not None
    return build_pipeline(settings, baselines=loaded.factory(settings))


def _catalogue(pipeline: Pipeline, who: str, call: Call, event_id: str) -> list[Finding]:
    result = pipeline.process(parse_record(record(event_id, AFTER, user_identity(who), call)))
    return [f for f in result.findings if f.kind == "destructive-action"]


def test_a_habit_lowers_a_person_s_catalogue_severity_one_step(learned_habits: Path) -> None:
    pipeline = _pipeline(learned_habits, HABITS)
    (bucket,) = _catalogue(pipeline, "ops-admin", DELETE_BUCKET, "e1")
    (role,) = _catalogue(pipeline, "ops-admin", DELETE_ROLE, "e2")
    assert (bucket.severity, role.severity) == (Severity.MEDIUM, Severity.LOW)  # high, medium
    assert change_of(bucket) == change_of(role) == STEP_DOWN
    assert "s3:DeleteBucket is habitual for this human's group" in bucket.evidence[-1]
    (other,) = _catalogue(pipeline, "someone-else", DELETE_BUCKET, "e3")
    assert other.severity is Severity.HIGH and change_of(other) is None


def test_off_by_default_and_tier_0_stays_at_medium(learned_habits: Path) -> None:
    pipeline = _pipeline(learned_habits, SeveritySettings(learn_below=Severity.CRITICAL))
    (bucket,) = _catalogue(pipeline, "ops-admin", DELETE_BUCKET, "e1")
    assert bucket.severity is Severity.HIGH
    at_medium = SeveritySettings(
        habitual_step_down=True, learn_below=Severity.CRITICAL, tier_0=Severity.MEDIUM
    )
    (bucket,) = _catalogue(_pipeline(learned_habits, at_medium), "ops-admin", DELETE_BUCKET, "e2")
    assert bucket.severity is Severity.MEDIUM and change_of(bucket) is None


def test_history_left_out_at_the_default_cut_off_is_no_habit(tmp_path: Path) -> None:
    # Trained at learn_below: medium the deletions were left out: nothing is habitual.
    artifact = train(history(), tmp_path / "artifact")
    pipeline = _pipeline(artifact, SeveritySettings(habitual_step_down=True))
    (bucket,) = _catalogue(pipeline, "ops-admin", DELETE_BUCKET, "e1")
    assert bucket.severity is Severity.HIGH
