"""How well a baseline separates labelled attacks from the rest of a capture.

For every model of the baseline, on the labelled events scored:
  - event level: ROC AUC of the model's score, and precision and recall of "score above
    the threshold" (a positive score, as `TrainableModel.score` promises);
  - session level: a session is an attack when any of its scored events is, its score is
    its highest event score, and it is flagged when the run time raised a finding for it;
  - the benign part: how many benign sessions the run time raised a finding for, per 1,000
    benign sessions and per day of the scored events' span (one alert per session and kind).
"combined" ranks each event by the highest of the models' percentile ranks among the
scored events (no labels used), so models on different scales combine; it is flagged when
any model is.

Scores come from the fitted state alone (`score`); findings from running the models'
run-time views in the same pipeline replay and the service use, drained at the end (what a
drain returns does not depend on when it runs).

A holdout (`train_until`) fits fresh models on the benign-labelled events before that time
that nothing flagged (the training cut-off) and scores the events from it on, with the
sessions carried across as the pipeline carries them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from detector.baseline.protocol import TrainableModel, TrainingEvent
from detector.config import Settings
from detector.core.findings import Finding
from detector.core.learned import Baseline
from detector.core.policy import EventContext
from detector.core.taxonomy import Severity
from detector.errors import ConfigError

# Label values that mean "not an attack", as the bundled datasets write them.
BENIGN_LABELS = frozenset({"background", "benign", "normal"})
# The Invictus capture labels by activity class; these are not its attack run.
BENIGN_CLASSES = frozenset(
    {"stratus_terraform_warmup_cleanup", "aws_service_or_internal", "other_console_cli_sdk"}
)
COMBINED = "combined"
DAY_SECONDS = 86400.0


def attack_label(label: Mapping[str, Any]) -> bool | None:
    """Whether a labels.jsonl line says attack (True), benign (False) or nothing (None).

    `label` wins ("attack" or any value but background/benign/normal is an attack); else an
    `activity_class` outside BENIGN_CLASSES is; else a `technique` is.
    """
    if label.get("label") is not None:
        return str(label["label"]).lower() not in BENIGN_LABELS
    if label.get("activity_class") is not None:
        return str(label["activity_class"]) not in BENIGN_CLASSES
    if label.get("technique") is not None:
        return True
    return None


def read_labels(path: Path) -> dict[str, bool]:
    """{eventID: is attack} from a labels.jsonl file; lines that say nothing are left out."""
    labels: dict[str, bool] = {}
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the labels: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            label = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ConfigError(f"{path}:line {number}: not JSON") from None
        if not isinstance(label, dict) or not isinstance(label.get("eventID"), str):
            raise ConfigError(f"{path}:line {number}: a label needs an eventID")
        verdict = attack_label(label)
        if verdict is not None:
            labels[label["eventID"]] = verdict
    if not labels:
        raise ConfigError(f"{path}: no line labels an event attack or benign")
    return labels


@dataclass(frozen=True, slots=True, kw_only=True)
class Separation:
    """How one score separates attacks from the rest, at one level."""

    positives: int
    negatives: int
    auc: float | None  # None when one of the two classes is empty
    precision: float | None  # None when nothing is flagged
    recall: float | None  # None when there is no attack

    def to_record(self) -> dict[str, Any]:
        return {
            "positives": self.positives,
            "negatives": self.negatives,
            "roc_auc": self.auc,
            "precision": self.precision,
            "recall": self.recall,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelReport:
    model: str
    events: Separation
    sessions: Separation
    benign_alerts: int  # benign sessions the run time raised a finding for
    per_1000_sessions: float
    per_day: float

    def to_record(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "events": self.events.to_record(),
            "sessions": self.sessions.to_record(),
            "benign_alerts": self.benign_alerts,
            "alerts_per_1000_benign_sessions": self.per_1000_sessions,
            "alerts_per_day": self.per_day,
        }


@dataclass(slots=True, kw_only=True)
class Evaluation:
    """Everything `trailguard baseline evaluate` prints, and the scores behind it."""

    models: list[ModelReport]
    scored_events: int
    benign_sessions: int
    attack_sessions: int
    span_seconds: float
    unlabelled: int
    trained_on: int | None = None  # events fitted on, for a holdout
    scores: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    labels: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    sessions: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return {
            "scored_events": self.scored_events,
            "unlabelled_events": self.unlabelled,
            "benign_sessions": self.benign_sessions,
            "attack_sessions": self.attack_sessions,
            "span_seconds": self.span_seconds,
            "trained_on_events": self.trained_on,
            "models": [m.to_record() for m in self.models],
        }


class _Capture:
    """Wraps a run-time view and keeps the sessions it raised findings for."""

    def __init__(self, inner: Baseline, keep: Callable[[Finding], bool]) -> None:
        self.inner = inner
        self.keep = keep
        self.flagged: set[str] = set()

    @property
    def name(self) -> str:
        return self.inner.name

    def observe(
        self, ctx: EventContext, findings: Sequence[Finding], *, learn: bool
    ) -> list[Finding]:
        return self._seen(self.inner.observe(ctx, findings, learn=learn))

    def drain(self) -> list[Finding]:
        return self._seen(self.inner.drain())

    def forget(self, session_id: str) -> None:
        self.inner.forget(session_id)

    def snapshot(self) -> dict[str, Any]:
        return self.inner.snapshot()

    @property
    def session_collections(self) -> tuple[str, ...]:
        return self.inner.session_collections

    def shared_snapshot(self) -> dict[str, Any]:
        return self.inner.shared_snapshot()

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        return self.inner.session_snapshot(session_id)

    def restore(self, data: Mapping[str, Any]) -> None:
        self.inner.restore(data)

    def _seen(self, found: list[Finding]) -> list[Finding]:
        self.flagged.update(f.session_id for f in found if self.keep(f))
        return found


def evaluate(
    models: Mapping[str, TrainableModel],
    events: Sequence[TrainingEvent],
    labels: Mapping[str, bool],
    *,
    settings: Settings,
    replay: Callable[[Sequence[Baseline]], None],
    since: datetime | None = None,
    trained_on: int | None = None,
) -> Evaluation:
    """Score `events` (every event of the inputs, in order, as `collect` gives them with no
    cut-off) and report on the labelled ones at or after `since`. `replay` runs the inputs
    through a pipeline with the given baselines and drains it at the end."""
    from detector.wiring import severity_policy

    chosen = [
        i
        for i, e in enumerate(events)
        if e.ctx.event.event_id in labels and (since is None or e.ctx.event.event_time >= since)
    ]
    if not chosen:
        raise ConfigError("no labelled event to score (check --labels and --since)")
    in_window = sum(1 for e in events if since is None or e.ctx.event.event_time >= since)
    scored = [events[i] for i in chosen]
    y = np.array([labels[e.ctx.event.event_id] for e in scored], dtype=bool)
    sessions = [e.ctx.session.session_id for e in scored]
    scored_ids = {e.ctx.event.event_id for e in scored}
    policy = severity_policy(settings)
    captures = {
        name: _Capture(
            model.runtime(policy, settings.baseline),
            lambda f: f.event_id in scored_ids,
        )
        for name, model in models.items()
    }
    replay(list(captures.values()))
    scores = {
        name: np.asarray(model.score(events), dtype=np.float64)[chosen]
        for name, model in models.items()
    }
    attack_sessions = {s for s, attack in zip(sessions, y, strict=True) if attack}
    benign = set(sessions) - attack_sessions
    times = [e.ctx.event.event_time.timestamp() for e in scored]
    span = max(times) - min(times)
    reports = [
        _report(name, scores[name], y, sessions, captures[name].flagged, benign, span)
        for name in models
    ]
    if len(models) > 1:
        combined = np.max([_percentiles(s) for s in scores.values()], axis=0)
        flagged = set().union(*(c.flagged for c in captures.values()))
        any_over = np.any([s > 0 for s in scores.values()], axis=0)
        reports.append(
            _report(COMBINED, combined, y, sessions, flagged, benign, span, over=any_over)
        )
        scores[COMBINED] = combined
    return Evaluation(
        models=reports,
        scored_events=len(scored),
        benign_sessions=len(benign),
        attack_sessions=len(attack_sessions),
        span_seconds=span,
        unlabelled=in_window - len(scored),
        trained_on=trained_on,
        scores=scores,
        labels=y,
        sessions=sessions,
    )


def holdout_training(
    events: Iterable[TrainingEvent],
    labels: Mapping[str, bool],
    *,
    until: datetime,
    exclude_at: Severity,
) -> list[TrainingEvent]:
    """The events a holdout fits on: before `until`, labelled benign, nothing flagged."""
    return [
        e
        for e in events
        if e.ctx.event.event_time < until
        and labels.get(e.ctx.event.event_id) is False
        and not any(f.severity >= exclude_at for f in e.findings)
    ]


def _report(
    name: str,
    scores: NDArray[np.float64],
    y: NDArray[np.bool_],
    sessions: Sequence[str],
    flagged_sessions: set[str],
    benign: set[str],
    span: float,
    *,
    over: NDArray[np.bool_] | None = None,
) -> ModelReport:
    events = _separation(scores, y, scores > 0 if over is None else over)
    best: dict[str, float] = {}
    attack: dict[str, bool] = {}
    for session, score, label in zip(sessions, scores, y, strict=True):
        best[session] = max(best.get(session, -np.inf), float(score))
        attack[session] = attack.get(session, False) or bool(label)
    order = sorted(best)
    session_scores = np.array([best[s] for s in order])
    session_y = np.array([attack[s] for s in order], dtype=bool)
    session_flags = np.array([s in flagged_sessions for s in order], dtype=bool)
    alerts = len(flagged_sessions & benign)
    days = max(span, 60.0) / DAY_SECONDS
    return ModelReport(
        model=name,
        events=events,
        sessions=_separation(session_scores, session_y, session_flags),
        benign_alerts=alerts,
        per_1000_sessions=1000.0 * alerts / len(benign) if benign else 0.0,
        per_day=alerts / days,
    )


def _separation(
    scores: NDArray[np.float64], y: NDArray[np.bool_], flagged: NDArray[np.bool_]
) -> Separation:
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

    positives = int(y.sum())
    negatives = len(y) - positives
    auc = float(roc_auc_score(y, scores)) if positives and negatives else None
    hits = int((flagged & y).sum())
    return Separation(
        positives=positives,
        negatives=negatives,
        auc=auc,
        precision=hits / int(flagged.sum()) if flagged.any() else None,
        recall=hits / positives if positives else None,
    )


def _percentiles(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each score's mid-rank among all of them, in (0, 1]: ties share a rank."""
    order = np.sort(scores)
    below = np.searchsorted(order, scores, side="left")
    upto = np.searchsorted(order, scores, side="right")
    ranks: NDArray[np.float64] = (below + upto) / (2.0 * len(scores))
    return ranks


def format_report(evaluation: Evaluation) -> str:
    """The table `trailguard baseline evaluate` prints."""
    lines = [
        f"scored {evaluation.scored_events:,} labelled events "
        f"({evaluation.unlabelled:,} unlabelled left out) over "
        f"{evaluation.span_seconds / 60:.0f} min: {evaluation.attack_sessions} attack and "
        f"{evaluation.benign_sessions} benign sessions"
        + (
            f"; fitted on {evaluation.trained_on:,} events"
            if evaluation.trained_on is not None
            else ""
        ),
        "",
        f"{'model':<20} {'level':<8} {'ROC AUC':>7} {'precision':>9} {'recall':>6} "
        f"{'attacks':>7} {'benign':>7}",
    ]
    for report in evaluation.models:
        for level, sep in (("event", report.events), ("session", report.sessions)):
            lines.append(
                f"{report.model:<20} {level:<8} {_num(sep.auc):>7} {_num(sep.precision):>9} "
                f"{_num(sep.recall):>6} {sep.positives:>7,} {sep.negatives:>7,}"
            )
    lines += ["", "alerts on the benign part (one per session and model):"]
    for report in evaluation.models:
        lines.append(
            f"  {report.model:<20} {report.benign_alerts:>4} benign sessions alerted: "
            f"{report.per_1000_sessions:,.0f} per 1,000 sessions, {report.per_day:,.0f} per day"
        )
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
