"""The action model's behaviour: learning online, never from what it flags, decay, state."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import numpy as np
import pytest

from detector.baseline.action_evidence import span, times
from detector.baseline.action_model import ActionFrequencyModel
from detector.baseline.action_runtime import ActionFrequencyRuntime
from detector.baseline.counts import GroupInfo
from detector.baseline.groups import level
from detector.baseline.protocol import TrainingEvent
from detector.core.policy import SeverityPolicy
from detector.core.taxonomy import Severity
from detector.errors import ConfigError
from tests.baseline.history import ADMIN, DEPLOYER, START, call, history, training_events

LATER = START + timedelta(days=14, hours=10)


def _usable(events: list[TrainingEvent]) -> list[TrainingEvent]:
    return [e for e in events if not any(f.severity >= Severity.MEDIUM for f in e.findings)]


@pytest.fixture(scope="module")
def events() -> list[TrainingEvent]:
    return _usable(training_events(history()))


@pytest.fixture(scope="module")
def model(events: list[TrainingEvent]) -> ActionFrequencyModel:
    return ActionFrequencyModel().fit(events)


def _runtime(model: ActionFrequencyModel, **settings: object) -> ActionFrequencyRuntime:
    runtime = model.runtime(SeverityPolicy(novel_action=Severity.MEDIUM), settings)
    assert isinstance(runtime, ActionFrequencyRuntime)
    return runtime


def _one(record: dict[str, object]) -> TrainingEvent:
    [event] = training_events([record])
    return event


def test_it_never_learns_from_an_event_it_flags(model: ActionFrequencyModel) -> None:
    runtime = _runtime(model)
    novel = [
        _one(call(DEPLOYER, "new", "ec2:RunInstances", LATER + timedelta(minutes=i)))
        for i in range(30)
    ]
    flagged = [runtime.observe(e.ctx, e.findings, learn=True) for e in novel]
    assert all(len(found) == 1 for found in flagged), "flagged every time, never learned"
    assert flagged[0][0].severity is Severity.MEDIUM  # severity.novel_action
    assert "ec2:runinstances" not in json.dumps(runtime.snapshot())


def test_learn_false_changes_nothing_and_learning_makes_a_value_familiar(
    model: ActionFrequencyModel,
) -> None:
    """Each use the model is allowed to learn from makes a value less surprising."""
    runtime = _runtime(model)
    event = _one(call(ADMIN, "new", "ec2:DescribeInstances", LATER, address="198.51.100.7"))
    before = runtime.snapshot()
    assert runtime.observe(event.ctx, event.findings, learn=False) == []
    assert runtime.snapshot() == before
    scores = []
    for minute in range(5):
        at = LATER + timedelta(minutes=minute)
        repeat = _one(call(ADMIN, "new", "ec2:DescribeInstances", at, address="198.51.100.7"))
        scores.append(runtime.score(repeat.ctx))
        assert runtime.observe(repeat.ctx, repeat.findings, learn=True) == []
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]


def test_forget_drops_the_sessions_own_counts_but_keeps_what_its_role_learned(
    model: ActionFrequencyModel,
) -> None:
    runtime = _runtime(model)
    event = _one(call(DEPLOYER, "new", "s3:GetObject", LATER, params={"bucketName": "artifacts",
                      "key": "build.zip"}))  # fmt: skip
    runtime.observe(event.ctx, event.findings, learn=True)
    session = event.ctx.session.session_id
    assert session in runtime.snapshot()["sessions"]
    runtime.forget(session)
    state = runtime.snapshot()
    assert session not in json.dumps(state)
    assert any(DEPLOYER in cell[0] for cell in state["learned"]["cells"])


def test_old_history_weighs_less_than_recent_history() -> None:
    def fitted(days_ago: int) -> ActionFrequencyModel:
        end = START + timedelta(days=60)
        records = [call(ADMIN, f"s{d}", "iam:ListUsers", end - timedelta(days=d, minutes=m))
                   for d in range(10) for m in range(20)]  # fmt: skip
        records += [call(ADMIN, "old", "iam:GetUser", end - timedelta(days=days_ago, minutes=m))
                    for m in range(20)]  # fmt: skip
        return ActionFrequencyModel(half_life_days=7).fit(training_events(sorted(
            records, key=lambda r: str(r["eventTime"]))))  # fmt: skip

    probe = [_one(call(ADMIN, "probe", "iam:GetUser", START + timedelta(days=60, hours=1)))]
    recent = fitted(days_ago=1).surprisals(probe)[0][0]
    old = fitted(days_ago=50).surprisals(probe)[0][0]
    assert old > recent + 3  # 49 days at a 7-day half-life: its weight is ~1/128 as large


def test_counts_and_scores_do_not_depend_on_the_order_of_the_history(
    events: list[TrainingEvent], model: ActionFrequencyModel
) -> None:
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    again = ActionFrequencyModel().fit(shuffled)
    assert np.allclose(again.score(events), model.score(events))
    assert np.allclose(again.thresholds_, model.thresholds_)


def test_a_prior_keeps_only_agent_kinds_and_the_global_counts(events: list[TrainingEvent]) -> None:
    prior = ActionFrequencyModel(prior_only=True).fit(events)
    assert {level(group) for group in prior.counts_.groups} == {"global"}
    assert prior.counts_.groups["global"][0] == len(events)


def test_settings_are_checked_and_the_runtime_may_decay_at_its_own_pace(
    model: ActionFrequencyModel,
) -> None:
    with pytest.raises(ConfigError, match=r"'baseline.quantile' must be a number above 0.5"):
        ActionFrequencyModel.from_settings({"quantile": 1.5}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"'baseline.prior_only' must be true or false"):
        ActionFrequencyModel.from_settings({"prior_only": "yes"}, source="c.yaml")
    built = ActionFrequencyModel.from_settings(
        {"half_life_days": 7, "time_zones": {"1": "Europe/Paris"}, "path": "ignored"}, source="c"
    )
    assert built.half_life_days == 7.0 and built.features is not None
    assert built.features.time_zones == {"1": "Europe/Paris"}
    with pytest.raises(ConfigError, match=r"'baseline.half_life_days' must be a number above 0"):
        _runtime(model, half_life_days=0)
    assert _runtime(model, half_life_days=7).half_life == 7 * 86400
    zoned = _runtime(model, default_time_zone="Asia/Tokyo")
    assert zoned.extractor.hour_zone("999") == "Asia/Tokyo"


def test_a_familiar_call_from_a_tool_the_role_never_used_is_flagged_and_named(
    model: ActionFrequencyModel,
) -> None:
    """The client takes part like any feature: ci-deployer always calls through the AWS
    CLI; the same call from an attack tool's SDK is novel for its client alone."""
    runtime = _runtime(model)
    usual = _one(call(DEPLOYER, "new", "sts:GetCallerIdentity", LATER))
    assert runtime.observe(usual.ctx, usual.findings, learn=False) == []
    record = call(DEPLOYER, "new", "sts:GetCallerIdentity", LATER)
    record["userAgent"] = "stratus-red-team_ea782787-a65d-4fc4-9fca-1c97869a9a25"
    tool = _one(record)
    [finding] = runtime.observe(tool.ctx, tool.findings, learn=False)
    assert finding.reason == (
        f"{DEPLOYER} never used stratus-red-team in 13 days and 540 "
        "calls; nothing else in the baseline did."
    )
    assert any("client 'stratus-red-team' is" in line for line in finding.evidence)
    assert not any("action " in line for line in finding.evidence)


def test_evidence_wording() -> None:
    assert [times(n) for n in (1, 2, 3, 61204)] == ["once", "twice", "3 times", "61,204 times"]
    assert span(GroupInfo(calls=1, first=0, last=14 * 86400 + 3600)) == "14 days"
    assert span(GroupInfo(calls=1, first=0, last=3 * 3600)) == "3 hours"
    assert span(GroupInfo(calls=1, first=0, last=0)) == "1 minute"


def test_a_shipped_prior_is_as_fresh_as_the_first_event_it_sees(
    events: list[TrainingEvent],
) -> None:
    """Trained years ago, a prior still speaks: its counts are read as of the service's
    first event, and decay from there."""
    prior = ActionFrequencyModel(prior_only=True).fit(events)
    years_later = START + timedelta(days=3 * 365, hours=10)
    usual = _one(call(DEPLOYER, "new", "sts:GetCallerIdentity", years_later))
    novel = _one(call(DEPLOYER, "new", "kms:CreateGrant", years_later + timedelta(seconds=1)))
    runtime = _runtime(prior)
    assert runtime.observe(usual.ctx, usual.findings, learn=True) == []
    assert runtime.snapshot()["reference"] == usual.ctx.event.event_time.timestamp()
    [found] = runtime.observe(novel.ctx, novel.findings, learn=True)
    assert "nothing else in the baseline did" in found.reason
