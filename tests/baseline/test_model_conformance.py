"""check_model itself: each way a model can break its contract is caught, by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pytest

from detector.baseline.action_model import ActionFrequencyModel
from detector.baseline.action_runtime import ActionFrequencyRuntime
from detector.baseline.protocol import TrainingEvent
from detector.baseline.registry import MODELS
from detector.core.findings import Finding
from detector.core.learned import Baseline
from detector.core.policy import EventContext, SeverityPolicy
from detector.testing.conformance import check_model
from tests.baseline.history import history, training_events


@pytest.fixture(scope="module")
def events() -> list[TrainingEvent]:
    return training_events(history(days=4))


class _LearnsAnyway(ActionFrequencyRuntime):
    def observe(
        self, ctx: EventContext, findings: Sequence[Finding], *, learn: bool
    ) -> list[Finding]:
        return super().observe(ctx, findings, learn=True)


class _RestoresNothing(ActionFrequencyRuntime):
    def restore(self, data: Any) -> None:
        return None


class _Broken(ActionFrequencyModel):
    runtime_class: type[ActionFrequencyRuntime] = ActionFrequencyRuntime

    def runtime(self, policy: SeverityPolicy, settings: Any) -> Baseline:
        return self.runtime_class(self, policy, settings)


def _case(name: str, **attributes: Any) -> type[ActionFrequencyModel]:
    return type(name.title().replace("-", ""), (_Broken,), {"name": name, **attributes})


class _Noisy(ActionFrequencyModel):
    name = "noisy"

    def score(self, events: Sequence[TrainingEvent]) -> npt.NDArray[np.float64]:
        noise: npt.NDArray[np.float64] = np.random.default_rng().random(len(events))
        return super().score(events) + noise


class _FitsEarly(ActionFrequencyModel):
    name = "fits-early"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.thresholds_ = np.zeros(7)

    def fit(self, events: Sequence[TrainingEvent]) -> Self:
        return super().fit(events)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_case("learns-anyway", runtime_class=_LearnsAnyway), "learn=False left a trace"),
        (_case("restores-nothing", runtime_class=_RestoresNothing), "restored"),
        (_Noisy, "scoring changed the model|two fits on the same events differ"),
        (_FitsEarly, r"the constructor set fitted attributes \['thresholds_'\]"),
    ],
)
def test_a_broken_model_fails_the_check(
    model: type[ActionFrequencyModel],
    message: str,
    events: list[TrainingEvent],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(MODELS._items, model.name, model)
    with pytest.raises(AssertionError, match=message):
        check_model(model, events)


def test_an_unregistered_model_fails_and_a_sound_one_passes(events: list[TrainingEvent]) -> None:
    with pytest.raises(AssertionError, match="model 'learns-anyway' is not registered"):
        check_model(_case("learns-anyway"), events)
    check_model(ActionFrequencyModel, events)
