"""`evaluate` over CloudTrail inputs: read them, load or fit the models, score, report.

The inputs are read as training reads them (`train.collect`, no cut-off, so every event is
scored) and once more through a pipeline running the models' run-time views, for the
findings on-call would have seen. With an artifact, its models are scored as saved; with a
holdout time, fresh models are fitted on the benign-labelled events before it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from detector.baseline.artifact import load_artifact
from detector.baseline.evaluate import Evaluation, evaluate, holdout_training, read_labels
from detector.baseline.inputs import Plan, plan, read
from detector.baseline.protocol import TrainableModel, TrainingEvent
from detector.baseline.registry import load_models
from detector.baseline.session_model import NAME as SESSION_MODEL
from detector.baseline.train import KEEP_ALL, collect, make_models
from detector.config import Settings
from detector.core.learned import Baseline
from detector.errors import ConfigError
from detector.records import Rejection, parse_items
from detector.wiring import build_pipeline


def evaluate_inputs(
    paths: Sequence[str],
    labels_path: Path,
    *,
    settings: Settings,
    baseline: Path | None = None,
    train_until: datetime | None = None,
    since: datetime | None = None,
    model_names: Sequence[str] | None = None,
    scopes_path: Path | None = None,
    s3_client: Callable[[], Any] | None = None,
) -> Evaluation:
    """Evaluate an artifact (`baseline`) or a holdout (`train_until`) on `paths`."""
    if (baseline is None) == (train_until is None):
        raise ConfigError("give either --baseline DIR or --train-until TIME")
    client = s3_client or _no_s3
    labels = read_labels(labels_path)
    inputs = plan(list(paths), s3_client=client)
    events = list(
        collect(inputs, settings=settings, s3_client=client, scopes_path=scopes_path,
                exclude_at=KEEP_ALL)
    )  # fmt: skip
    if not events:
        raise ConfigError("the inputs hold no CloudTrail event")
    trained_on = None
    if baseline is not None:
        loaded = load_artifact(baseline)
        names = list(model_names) if model_names is not None else run_order(loaded.models)
        missing = [n for n in names if n not in loaded.models]
        if missing:
            raise ConfigError(f"{baseline}: holds no model {missing[0]!r}")
        models: dict[str, TrainableModel] = {n: loaded.models[n] for n in names}
    else:
        assert train_until is not None
        history = holdout_training(
            events, labels, until=train_until, exclude_at=settings.severity.learn_below
        )
        if not history:
            raise ConfigError("no benign-labelled event before --train-until to fit on")
        names = list(model_names) if model_names is not None else run_order(load_models())
        fitted = make_models(names, settings.baseline, source=settings.source)
        models = {m.name: m.fit(history) for m in fitted}
        trained_on = len(history)
        since = since or train_until
    return evaluate(
        models,
        events,
        labels,
        settings=settings,
        replay=functools.partial(_replay, inputs, settings, scopes_path, client),
        since=since,
        trained_on=trained_on,
    )


def run_order(names: Iterable[str]) -> list[str]:
    """Models in the order the pipeline runs them: the session model last, since it counts
    the novel-action findings the others raise for the same event."""
    return sorted(names, key=lambda name: name == SESSION_MODEL)


def _replay(
    inputs: Plan,
    settings: Settings,
    scopes_path: Path | None,
    s3_client: Callable[[], Any],
    baselines: Sequence[Baseline],
) -> None:
    """The inputs through the pipeline with `baselines`, drained at the end."""
    pipeline = build_pipeline(settings, scopes_path=scopes_path)
    pipeline.baselines = tuple(baselines)
    for item in inputs.inputs:
        for _, event in parse_items(read(item, s3_client=s3_client), _ignore):
            pipeline.process(event)
    pipeline.drain()


def _ignore(rejection: Rejection) -> None:
    return None  # counted and reported by the collecting pass


def _no_s3() -> Any:
    raise ConfigError("an s3:// input needs an S3 client")


def training_events(
    paths: Sequence[str], *, settings: Settings, scopes_path: Path | None = None
) -> list[TrainingEvent]:
    """Every event of local `paths` as the pipeline judged it (no cut-off), for notebooks."""
    inputs = plan(list(paths), s3_client=_no_s3)
    return list(
        collect(inputs, settings=settings, s3_client=_no_s3, scopes_path=scopes_path,
                exclude_at=KEEP_ALL)
    )  # fmt: skip
