"""Training: history through the pipeline (baselines off), then each model fitted and saved.

`collect` replays CloudTrail history through the same pipeline the service runs, so every
event is attributed (session, role, agent kind, scope) exactly as it will be when scored,
and yields it as a `TrainingEvent` with the findings scope and catalogue raised. Events
with a finding at or above the cut-off (`severity.learn_below` unless given) are left out:
an attack in the history must not be learned as normal. Evaluation uses `collect` with no
cut-off to score every event.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from detector.baseline.artifact import Manifest, TrainingWindow, save_artifact
from detector.baseline.inputs import Plan, plan, read, s3_clients
from detector.baseline.protocol import TrainableModel, TrainingEvent
from detector.baseline.registry import load_models
from detector.config import Settings
from detector.core.findings import Finding
from detector.core.parse import parse_record
from detector.core.policy import EventContext
from detector.core.taxonomy import Severity
from detector.records import Rejection, parse_items
from detector.wiring import build_pipeline

KEEP_ALL = None


@dataclass(slots=True)
class CollectStats:
    """What `collect` read and kept, for the command's summary and the manifest."""

    inputs: int = 0
    records: int = 0
    rejected: int = 0
    events: int = 0  # parsed, not duplicate
    outside_window: int = 0
    excluded: int = 0  # findings at or above the cut-off
    kept: int = 0
    first: datetime | None = None
    last: datetime | None = None
    rejections: list[Rejection] = field(default_factory=list)

    def window(self) -> TrainingWindow:
        return TrainingWindow(
            start=self.first, end=self.last, events=self.kept, excluded=self.excluded
        )


class TrainingRecorder:
    """A baseline that learns nothing and raises nothing: it keeps the context and findings
    of each event the pipeline judged (duplicates never reach it), as training sees them."""

    name = "training-recorder"
    session_collections: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.events: list[TrainingEvent] = []

    def observe(
        self, ctx: EventContext, findings: Sequence[Finding], *, learn: bool
    ) -> list[Finding]:
        self.events.append(TrainingEvent(ctx=ctx, findings=tuple(findings)))
        return []

    def drain(self) -> list[Finding]:
        return []

    def forget(self, session_id: str) -> None:
        return None

    def snapshot(self) -> dict[str, Any]:
        return {}

    def shared_snapshot(self) -> dict[str, Any]:
        return {}

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        return {}

    def restore(self, data: Mapping[str, Any]) -> None:
        return None


def judge_records(
    records: Iterable[Mapping[str, Any]],
    settings: Settings,
    *,
    scopes_path: Path | None = None,
) -> list[TrainingEvent]:
    """Every record as the pipeline judged it, baselines off, in order (no cut-off)."""
    pipeline = build_pipeline(settings, scopes_path=scopes_path)
    recorder = TrainingRecorder()
    pipeline.baselines = (recorder,)
    for record in records:
        pipeline.process(parse_record(dict(record)))
    return recorder.events


def collect(
    history: Plan,
    *,
    settings: Settings,
    s3_client: Callable[[], Any],
    scopes_path: Path | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    exclude_at: Severity | None = Severity.MEDIUM,
    stats: CollectStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[TrainingEvent]:
    """Training events of `history` in input order, within [since, until), without those with
    a finding at or above `exclude_at` (KEEP_ALL keeps every event)."""
    stats = stats if stats is not None else CollectStats()
    pipeline = build_pipeline(settings, scopes_path=scopes_path)
    recorder = TrainingRecorder()
    pipeline.baselines = (recorder,)
    reject = functools.partial(_reject, stats)
    for item in history.inputs:
        stats.inputs += 1
        records = _counted(stats, read(item, s3_client=s3_client, progress=progress))
        for _, event in parse_items(records, reject):
            recorder.events.clear()
            pipeline.process(event)
            if not recorder.events:
                continue  # a duplicate eventID
            stats.events += 1
            at = event.event_time
            if (since is not None and at < since) or (until is not None and at >= until):
                stats.outside_window += 1
                continue
            [judged] = recorder.events
            findings = judged.findings
            if exclude_at is not None and any(f.severity >= exclude_at for f in findings):
                stats.excluded += 1
                continue
            stats.kept += 1
            stats.first = at if stats.first is None else min(stats.first, at)
            stats.last = at if stats.last is None else max(stats.last, at)
            yield judged


def read_history(
    paths: Sequence[str],
    *,
    settings: Settings,
    exclude_at: Severity | None = Severity.MEDIUM,
    since: datetime | None = None,
    until: datetime | None = None,
    endpoint_url: str | None = None,
    stats: CollectStats | None = None,
) -> list[TrainingEvent]:
    """`collect` over files, directories and S3 prefixes, in one call (for evaluation and
    notebooks); `exclude_at=KEEP_ALL` keeps the events that raised findings."""
    client = s3_clients(endpoint_url)
    inputs = plan(paths, s3_client=client, since=since, until=until)
    return list(
        collect(inputs, settings=settings, s3_client=client, since=since, until=until,
                exclude_at=exclude_at, stats=stats)
    )  # fmt: skip


def _counted(stats: CollectStats, items: Iterator[Any]) -> Iterator[Any]:
    for item in items:
        stats.records += 1
        yield item


def _reject(stats: CollectStats, rejection: Rejection) -> None:
    stats.rejected += 1
    if len(stats.rejections) < 20:
        stats.rejections.append(rejection)


def make_models(
    names: Sequence[str] | None, settings: Mapping[str, Any], *, source: str
) -> list[TrainableModel]:
    """Unfitted models by registry name (all registered when `names` is None)."""
    registry = load_models()
    chosen = list(registry) if names is None else list(names)
    return [registry.get(name).from_settings(settings, source=source) for name in chosen]


def fit_and_save(
    models: Sequence[TrainableModel],
    events: Sequence[TrainingEvent],
    output: Path,
    *,
    window: TrainingWindow,
    source_note: str,
    replace: bool = False,
    on_fitted: Callable[[TrainableModel], None] | None = None,
) -> Manifest:
    for model in models:
        model.fit(events)
        if on_fitted is not None:
            on_fitted(model)
    return save_artifact(output, models, window=window, source_note=source_note, replace=replace)
