"""Train a baseline artifact from records with the training code `baseline train` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from detector.baseline.inputs import plan
from detector.baseline.train import CollectStats, collect, fit_and_save, make_models
from detector.config import Settings
from tests.scenario import as_jsonl


def _no_s3() -> NoReturn:
    raise AssertionError("no S3 input here")


def train(
    records: list[dict[str, Any]],
    directory: Path,
    *,
    settings: Settings | None = None,
    scopes: Path | None = None,
) -> Path:
    """Fit every registered model on `records` (judged with `settings` and `scopes`, events
    at or above severity.learn_below left out, as training does) and save it at `directory`."""
    settings = settings or Settings()
    history = directory.with_name(f"{directory.name}-history.jsonl")
    history.write_bytes(as_jsonl(records))
    stats = CollectStats()
    events = list(
        collect(
            plan([str(history)], s3_client=_no_s3),
            settings=settings,
            s3_client=_no_s3,
            scopes_path=scopes,
            exclude_at=settings.severity.learn_below,
            stats=stats,
        )
    )
    models = make_models(None, dict(settings.baseline), source=settings.source)
    fit_and_save(models, events, directory, window=stats.window(), source_note="tests")
    return directory
