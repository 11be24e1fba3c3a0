"""Cold start: a role with 14 days of history, and a brand-new session of that role."""

from __future__ import annotations

from datetime import timedelta

import pytest

from detector.baseline.action_model import ActionFrequencyModel
from detector.baseline.inputs import plan
from detector.baseline.train import collect
from detector.config import Settings
from detector.core.pipeline import Pipeline
from detector.core.policy import SeverityPolicy
from detector.wiring import build_pipeline
from tests.baseline.history import (
    DEPLOYER,
    DEPLOYER_WORK,
    START,
    call,
    history,
    run,
    write_jsonl,
)

NEW_SESSION = f"{DEPLOYER}-run-new"
LATER = START + timedelta(days=14, hours=11)


def _no_s3() -> None:
    raise AssertionError("no S3 path was given")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ActionFrequencyModel:
    path = write_jsonl(tmp_path_factory.mktemp("history") / "trail.jsonl", history())
    events = list(
        collect(plan([str(path)], s3_client=_no_s3), settings=Settings(), s3_client=_no_s3)
    )
    return ActionFrequencyModel().fit(events)


def _pipeline(model: ActionFrequencyModel) -> Pipeline:
    pipeline = build_pipeline(Settings())
    pipeline.baselines = (model.runtime(SeverityPolicy(), {}),)
    return pipeline


def _usual_work(minutes: int = 0) -> list[dict[str, object]]:
    return [
        call(DEPLOYER, NEW_SESSION, action, LATER + timedelta(minutes=minutes, seconds=step),
             params=params, issued=LATER)
        for step, (action, params) in enumerate(DEPLOYER_WORK)
    ]  # fmt: skip


def test_a_new_session_doing_its_roles_usual_work_raises_no_novel_action(
    model: ActionFrequencyModel,
) -> None:
    results = list(run(_pipeline(model), _usual_work() + _usual_work(minutes=30)))
    assert all(r.session is not None and r.session.session_id for r in results)
    assert {r.session.session_id for r in results if r.session} and len(results) == 12
    assert [f.reason for r in results for f in r.findings if f.kind == "novel-action"] == []


def test_the_same_session_doing_what_its_role_never_did_is_flagged_on_the_first_such_event(
    model: ActionFrequencyModel,
) -> None:
    pipeline = _pipeline(model)
    usual = list(run(pipeline, _usual_work()))
    never = call(DEPLOYER, NEW_SESSION, "ec2:RunInstances", LATER + timedelta(minutes=5),
                 issued=LATER)  # fmt: skip
    flagged = next(run(pipeline, [never]))
    assert usual[0].session is not None and flagged.session is not None
    assert flagged.session.session_id == usual[0].session.session_id, "one session throughout"
    novel = [f for f in flagged.findings if f.kind == "novel-action"]
    assert len(novel) == 1
    reason = novel[0].reason
    assert reason.startswith("ci-deployer never called ec2:runinstances in 14 days and "), reason
    assert "; its account did twice (also unusual: used ec2, " in reason, reason
    assert novel[0].action == "ec2:RunInstances"
    assert any("bits of surprisal" in line for line in novel[0].evidence)


def test_a_session_of_a_role_never_seen_backs_off_to_its_account(
    model: ActionFrequencyModel,
) -> None:
    """A role with no history at all: its first call of what the account does daily is not
    novel, a call nobody in the account ever made is."""
    pipeline = _pipeline(model)
    usual = call("new-role", "s1", "s3:GetObject", LATER, params={"bucketName": "artifacts",
                 "key": "build.zip"})  # fmt: skip
    odd = call("new-role", "s1", "kms:CreateGrant", LATER + timedelta(seconds=1))
    first, second = run(pipeline, [usual, odd])
    assert not [f for f in first.findings if f.kind == "novel-action"]
    [novel] = [f for f in second.findings if f.kind == "novel-action"]
    assert "nothing else in the baseline did" in novel.reason
