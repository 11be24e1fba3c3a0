"""The session model: fitted per role with a global fallback, scored in batches at milestones,
explained by the features that stand out, saved as plain arrays, restored exactly."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from detector.baseline.protocol import TrainingEvent
from detector.baseline.registry import load_models
from detector.baseline.session_model import GLOBAL, SessionIsolationModel
from detector.baseline.session_runtime import SessionIsolationRuntime, finding_from_record
from detector.core.findings import Finding
from detector.core.policy import SeverityPolicy, make_finding
from detector.core.taxonomy import Severity
from detector.errors import ConfigError
from tests.session_history import (
    ACCOUNT,
    ROLE,
    START,
    history,
    training_events,
    unusual_session,
    usual_session,
)

ROLE_GROUP = f"role:arn:aws:iam::{ACCOUNT}:role/{ROLE}"
LATER = START + timedelta(days=3)


@pytest.fixture(scope="module")
def model() -> SessionIsolationModel:
    return SessionIsolationModel().fit(training_events(history(30)))


@pytest.fixture(scope="module")
def new_sessions() -> list[TrainingEvent]:
    """An ordinary build and an unusual session of the same role, after the history."""
    return training_events(
        usual_session(900, LATER, calls=40) + unusual_session(901, LATER + timedelta(hours=1))
    )


def _run(
    model: SessionIsolationModel, events: Sequence[TrainingEvent], drain_at: set[int]
) -> list[Finding]:
    runtime = model.runtime(SeverityPolicy(), {})
    found: list[Finding] = []
    for index, event in enumerate(events):
        assert runtime.observe(event.ctx, event.findings, learn=model.counted(event)) == []
        if index in drain_at:
            found.extend(runtime.drain())
    return found + runtime.drain()


def test_a_role_with_enough_sessions_has_its_own_forest(model: SessionIsolationModel) -> None:
    assert set(model.forests_) == {GLOBAL, ROLE_GROUP}
    assert model.sessions_[ROLE_GROUP] == 30
    assert model.judge(ROLE_GROUP) == ROLE_GROUP
    assert model.judge("role:arn:aws:iam::111122223333:role/other") == GLOBAL


def test_a_group_with_too_few_sessions_is_judged_by_the_global_forest() -> None:
    few = SessionIsolationModel(min_sessions=31).fit(training_events(history(30)))
    assert set(few.forests_) == {GLOBAL}
    assert few.judge(ROLE_GROUP) == GLOBAL


def test_an_ordinary_session_raises_nothing_and_an_unusual_one_once_with_its_reasons(
    model: SessionIsolationModel, new_sessions: list[TrainingEvent]
) -> None:
    found = _run(model, new_sessions, drain_at=set())
    assert len(found) == 1
    finding = found[0]
    assert finding.kind == "anomalous-session"
    assert finding.event_id.startswith("s0901-")  # the unusual session, at one of its milestones
    assert int(finding.event_id.rsplit("-", 1)[1]) + 1 in {1, 2, 4, 8, 16, 32, 64}
    assert f"of role {ROLE} is unlike role {ROLE}'s 30 training sessions" in finding.reason
    assert "regions" in finding.reason  # the feature that never varied in training
    assert any("spreads outside the training range" in line for line in finding.evidence)
    assert finding.severity is Severity.MEDIUM


def test_scores_put_the_unusual_session_over_and_the_ordinary_one_under(
    model: SessionIsolationModel, new_sessions: list[TrainingEvent]
) -> None:
    scores = model.score(new_sessions)
    usual = [s for s, e in zip(scores, new_sessions, strict=True) if e.ctx.event.event_id < "s0901"]
    unusual = scores[len(usual) :]
    assert max(usual) <= 0 < max(unusual)
    assert np.all(np.isfinite(scores))


def test_what_it_finds_does_not_depend_on_when_it_is_drained(
    model: SessionIsolationModel, new_sessions: list[TrainingEvent]
) -> None:
    once = _run(model, new_sessions, drain_at=set())
    every = _run(model, new_sessions, drain_at=set(range(len(new_sessions))))
    chance = random.Random(7)
    sometimes = _run(
        model, new_sessions, drain_at={i for i in range(len(new_sessions)) if chance.random() < 0.1}
    )
    assert once == every == sometimes


def test_flagged_events_are_not_counted(model: SessionIsolationModel) -> None:
    events = training_events(unusual_session(902, LATER))
    runtime = model.runtime(SeverityPolicy(), {})
    for event in events:
        runtime.observe(event.ctx, event.findings, learn=False)
    assert runtime.drain() == []
    assert runtime.snapshot()["sessions"] == {}


def test_snapshot_with_rows_pending_restores_exactly(
    model: SessionIsolationModel, new_sessions: list[TrainingEvent]
) -> None:
    expected = _run(model, new_sessions, drain_at=set())
    first = model.runtime(SeverityPolicy(), {})
    half = len(new_sessions) - 40
    for event in new_sessions[:half]:
        first.observe(event.ctx, event.findings, learn=True)
    assert isinstance(first, SessionIsolationRuntime) and first.pending > 0
    saved = json.loads(json.dumps(first.snapshot()))
    second = model.runtime(SeverityPolicy(), {})
    second.restore(saved)
    for event in new_sessions[half:]:
        second.observe(event.ctx, event.findings, learn=True)
    assert second.drain() == expected


def test_forgetting_a_session_drops_its_counts(
    model: SessionIsolationModel, new_sessions: list[TrainingEvent]
) -> None:
    runtime = model.runtime(SeverityPolicy(), {})
    for event in new_sessions[:5]:
        runtime.observe(event.ctx, event.findings, learn=True)
    session = new_sessions[0].ctx.session.session_id
    assert session in runtime.snapshot()["sessions"]
    runtime.forget(session)
    assert session not in runtime.snapshot()["sessions"]


def test_a_finding_survives_its_record(new_sessions: list[TrainingEvent]) -> None:
    ctx = new_sessions[3].ctx
    finding = make_finding(
        ctx, kind="anomalous-session", severity=Severity.HIGH, classification=None, reason="odd"
    )
    assert finding_from_record(finding.to_record()) == finding


def test_saved_and_loaded_it_scores_the_same(
    model: SessionIsolationModel, new_sessions: list[TrainingEvent], tmp_path: Path
) -> None:
    entry = model.save(tmp_path)
    assert set(entry.files) == {"forests.npz", "groups.json"}
    assert entry.counts[ROLE_GROUP] == 30 and set(entry.thresholds) == set(model.forests_)
    loaded = SessionIsolationModel.load(tmp_path, entry)
    assert np.array_equal(loaded.score(new_sessions), model.score(new_sessions))
    assert _run(loaded, new_sessions, set()) == _run(model, new_sessions, set())


def test_loading_refuses_other_features_and_arrays_that_are_not_a_forest(
    model: SessionIsolationModel, tmp_path: Path
) -> None:
    entry = model.save(tmp_path)
    groups = json.loads((tmp_path / "groups.json").read_text())
    groups["features"] = groups["features"][:-1]
    (tmp_path / "groups.json").write_text(json.dumps(groups))
    with pytest.raises(ValueError, match="features differ"):
        SessionIsolationModel.load(tmp_path, entry)
    model.save(tmp_path)
    with np.load(tmp_path / "forests.npz", allow_pickle=False) as arrays:
        broken = {key: arrays[key] for key in arrays.files}
    broken["f0_children"] = broken["f0_children"] + 10_000
    np.savez(tmp_path / "forests.npz", **broken)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a session model"):
        SessionIsolationModel.load(tmp_path, entry)


def test_fitting_is_deterministic(model: SessionIsolationModel, tmp_path: Path) -> None:
    again = SessionIsolationModel().fit(training_events(history(30)))
    model.save(tmp_path / "a")
    again.save(tmp_path / "b")
    for name in ("forests.npz", "groups.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_no_training_events_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no training events"):
        SessionIsolationModel().fit([])


def test_settings_are_validated_naming_the_key() -> None:
    model = SessionIsolationModel.from_settings(
        {"session_quantile": 0.95, "session_min_sessions": 5, "quantile": 0.999}
    )
    assert (model.quantile, model.min_sessions) == (0.95, 5)
    with pytest.raises(ConfigError, match=r"'baseline\.session_quantile'"):
        SessionIsolationModel.from_settings({"session_quantile": 2}, source="tg.yaml")
    with pytest.raises(ConfigError, match=r"'baseline\.session_milestone_every'"):
        SessionIsolationModel.from_settings({"session_milestone_every": 0})


def test_it_is_registered() -> None:
    assert load_models().get("session-isolation") is SessionIsolationModel
