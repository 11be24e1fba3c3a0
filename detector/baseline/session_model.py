"""The session model: is this session shaped like its role's (or user's) sessions?

Each training session is replayed through `SessionFeatures`, and its row is taken at the
same milestones the run time scores (its 1st, 2nd, 4th, ... event, then every
`milestone_every`). An IsolationForest is fitted per principal group (a role, an IAM user,
a calling AWS service) that has at least `min_sessions` training sessions, and one over all
rows; a group with fewer sessions is scored by that global forest. Each forest's threshold
is the `quantile` of its own training rows' scores, so about 1 - quantile of ordinary rows
stand out (scored as if unseen: each half of the sessions by a forest fitted on the other
half). Each group also keeps the 1st, 50th and 99th percentile of every feature
(`session_profile`): a row with a feature further than `range_margin` spreads outside that
range is anomalous too, which covers what a forest cannot see (a feature that never varied
in training, a value beyond all of them), and the same distances name the features that
stand out in the evidence.

A session is described by the calls it makes that nothing flagged (no finding at or above
`learn_below`, the cut-off training uses too): training never sees flagged calls, so the
run time leaves them out of the row as well and both describe the same thing. Flagged
calls have findings of their own; this model looks for what the rules did not flag.

The model is not updated online: a session's shape is judged against the sessions it was
trained on until `trailguard baseline train` fits it again. Fitting is deterministic
(`random_state`). Forests are saved as plain arrays (`iforest.PackedForest`), no pickle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from detector.baseline.iforest import PackedForest
from detector.baseline.protocol import ModelEntry, TrainingEvent
from detector.baseline.registry import MODELS
from detector.baseline.session_features import (
    FEATURE_NAMES,
    SessionFeatures,
    is_milestone,
    scaled,
)
from detector.baseline.session_profile import GroupProfile
from detector.core.learned import Baseline
from detector.core.policy import EventContext, SeverityPolicy
from detector.core.taxonomy import Severity
from detector.errors import ConfigError

NAME = "session-isolation"
SCHEMA_VERSION = 1
GLOBAL = "global"
FORESTS_FILE = "forests.npz"
GROUPS_FILE = "groups.json"
# The `baseline:` keys this model reads (see detector/baseline/settings.py).
SETTINGS_KEYS = frozenset({"session_quantile", "session_min_sessions", "session_milestone_every"})
# Group kinds with a forest of their own when they have enough sessions.
PRINCIPAL_LEVELS = ("role:", "user:", "service:")


def principal_group(ctx: EventContext) -> str:
    """The session's role (session name stripped), IAM user or calling service; else global.

    The same names as `detector.baseline.groups.group_chain`'s second element.
    """
    session = ctx.session
    if session.role_arn:
        return f"role:{session.role_arn}"
    if session.principal_arn:
        return f"user:{session.principal_arn}"
    if ctx.event.actor.invoked_by:
        return f"service:{ctx.event.actor.invoked_by}"
    return GLOBAL


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One scored point of one session: which group judges it and its feature values."""

    session_id: str
    group: str
    values: tuple[float, ...]


class SessionIsolationModel:
    """IsolationForest per principal group with a global fallback, on session rows.

    n_estimators, max_samples, random_state   passed to scikit-learn's IsolationForest
    min_sessions      a group needs this many training sessions for a forest of its own
    quantile          share of a forest's training rows that score under its threshold
    milestone_every   rows are taken at powers of two up to this count, then every this many
    range_margin      how many spreads outside a group's training range a feature may lie
    learn_below       calls with a finding at or above this are not counted (see above)
    """

    name = NAME
    schema_version = SCHEMA_VERSION

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: int = 256,
        min_sessions: int = 20,
        quantile: float = 0.99,
        milestone_every: int = 64,
        range_margin: float = 1.0,
        random_state: int = 0,
        learn_below: Severity = Severity.MEDIUM,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.min_sessions = min_sessions
        self.quantile = quantile
        self.milestone_every = milestone_every
        self.range_margin = range_margin
        self.random_state = random_state
        self.learn_below = learn_below

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, source: str = "<settings>") -> Self:
        """Hyper-parameters from the `baseline:` section: `session_quantile`,
        `session_min_sessions`, `session_milestone_every` (other keys are not this model's)."""
        kwargs: dict[str, Any] = {}
        if settings.get("session_quantile") is not None:
            kwargs["quantile"] = _number(settings["session_quantile"], source, "session_quantile")
        for key, name in (
            ("session_min_sessions", "min_sessions"),
            ("session_milestone_every", "milestone_every"),
        ):
            if settings.get(key) is not None:
                kwargs[name] = _count(settings[key], source, key)
        return cls(**kwargs)

    def counted(self, event: TrainingEvent) -> bool:
        """Whether an event counts towards its session's row (nothing flagged it)."""
        return not any(f.severity >= self.learn_below for f in event.findings)

    # --- fitting --------------------------------------------------------------------------

    def fit(self, events: Sequence[TrainingEvent]) -> Self:
        rows = list(self.milestone_rows(events))
        if not rows:
            raise ConfigError(f"{self.name}: no training events to learn sessions from")
        by_group: dict[str, list[SessionRow]] = {GLOBAL: rows}
        sessions: dict[str, set[str]] = {GLOBAL: {r.session_id for r in rows}}
        for row in rows:
            if row.group != GLOBAL:
                by_group.setdefault(row.group, []).append(row)
                sessions.setdefault(row.group, set()).add(row.session_id)
        self.sessions_ = {group: len(ids) for group, ids in sorted(sessions.items())}
        self.forests_: dict[str, PackedForest] = {}
        self.thresholds_: dict[str, float] = {}
        self.profiles_: dict[str, GroupProfile] = {}
        for group, group_rows in sorted(by_group.items()):
            if not group_rows or (group != GLOBAL and self.sessions_[group] < self.min_sessions):
                continue
            matrix = np.array([scaled(r.values) for r in group_rows], dtype=np.float64)
            packed = self._forest(matrix)
            self.forests_[group] = packed
            unseen = self._unseen_scores(matrix, [r.session_id for r in group_rows])
            self.thresholds_[group] = float(np.quantile(unseen, self.quantile))
            values = [r.values for r in group_rows]
            self.profiles_[group] = GroupProfile.of(values, self.sessions_[group])
        return self

    def _forest(self, matrix: NDArray[np.float64]) -> PackedForest:
        # Fitting only; scoring needs numpy alone.
        from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(matrix)),
            random_state=self.random_state,
        ).fit(matrix)
        return PackedForest.from_sklearn(forest)

    def _unseen_scores(
        self, matrix: NDArray[np.float64], sessions: Sequence[str]
    ) -> NDArray[np.float64]:
        """Training rows scored as if unseen: the sessions split in two halves, each half
        scored by a forest fitted on the other. A forest scores its own rows lower than new
        ones of the same kind, so an in-sample threshold would flag ordinary new sessions.
        With fewer than four sessions the rows are scored in sample."""
        names = sorted(set(sessions))
        if len(names) < 4:
            return self._forest(matrix).score(matrix)
        half = {name: i % 2 for i, name in enumerate(names)}
        fold = np.array([half[s] for s in sessions])
        scores = np.zeros(len(matrix))
        for side in (0, 1):
            scores[fold == side] = self._forest(matrix[fold != side]).score(matrix[fold == side])
        return scores

    def milestone_rows(self, events: Sequence[TrainingEvent]) -> Iterator[SessionRow]:
        """Each session's rows at its milestones, in the order the events come."""
        features: dict[str, SessionFeatures] = {}
        for event in events:
            if not self.counted(event):
                continue
            ctx = event.ctx
            session = features.setdefault(ctx.session.session_id, SessionFeatures())
            session.update(ctx, event.findings)
            if is_milestone(session.events, self.milestone_every):
                yield SessionRow(ctx.session.session_id, principal_group(ctx), session.row())

    # --- scoring --------------------------------------------------------------------------

    def judge(self, group: str) -> str:
        """The forest that scores a group's rows: its own, else the global one."""
        return group if group in self.forests_ else GLOBAL

    def anomaly_scores(self, rows: Sequence[SessionRow]) -> NDArray[np.float64]:
        """Each row's score under the forest that judges its group, in one batch per
        forest (higher is stranger; about 0.5 is ordinary)."""
        scores = np.zeros(len(rows))
        by_forest: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            by_forest.setdefault(self.judge(row.group), []).append(index)
        for forest, indices in by_forest.items():
            matrix = np.array([scaled(rows[i].values) for i in indices], dtype=np.float64)
            scores[indices] = self.forests_[forest].score(matrix)
        return scores

    def thresholds(self, rows: Sequence[SessionRow]) -> NDArray[np.float64]:
        return np.array([self.thresholds_[self.judge(r.group)] for r in rows], dtype=np.float64)

    def distances(self, row: SessionRow) -> list[float]:
        """Per feature, spreads outside the judging group's training range (0 inside)."""
        return self.profiles_[self.judge(row.group)].distances(row.values)

    def excess(self, rows: Sequence[SessionRow]) -> NDArray[np.float64]:
        """Per row, how far over the nearer limit it is: the forest's score over its
        threshold, or the furthest feature's distance beyond `range_margin`, whichever is
        larger. Above 0 the row is anomalous."""
        forest = self.anomaly_scores(rows) - self.thresholds(rows)
        ranged = np.array(
            [max(self.distances(r), default=0.0) - self.range_margin for r in rows],
            dtype=np.float64,
        )
        return np.maximum(forest, ranged) if len(rows) else forest

    def event_rows(self, events: Sequence[TrainingEvent]) -> list[SessionRow]:
        """One row per event: its session as of that event (evaluation scores them all;
        the run time only the milestones). A flagged event gets its session's row as it
        stands, without counting the event."""
        features: dict[str, SessionFeatures] = {}
        rows = []
        for event in events:
            ctx = event.ctx
            session = features.setdefault(ctx.session.session_id, SessionFeatures())
            if self.counted(event):
                session.update(ctx, event.findings)
            rows.append(SessionRow(ctx.session.session_id, principal_group(ctx), session.row()))
        return rows

    def score(self, events: Sequence[TrainingEvent]) -> NDArray[np.float64]:
        """Per event, its session's `excess` as of that event; above 0 the run time raises
        `anomalous-session` (at a milestone)."""
        return self.excess(self.event_rows(events))

    def runtime(self, policy: SeverityPolicy, settings: Mapping[str, Any]) -> Baseline:
        from detector.baseline.session_runtime import SessionIsolationRuntime

        return SessionIsolationRuntime(self, policy)

    # --- persistence ----------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "min_sessions": self.min_sessions,
            "quantile": self.quantile,
            "milestone_every": self.milestone_every,
            "range_margin": self.range_margin,
            "random_state": self.random_state,
            "learn_below": self.learn_below.label,
        }

    def save(self, directory: Path) -> ModelEntry:
        directory.mkdir(parents=True, exist_ok=True)
        names = sorted(self.forests_)
        arrays: dict[str, NDArray[Any]] = {}
        for index, group in enumerate(names):
            arrays.update(self.forests_[group].arrays(f"f{index}_"))
        with (directory / FORESTS_FILE).open("wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        document = {
            "features": list(FEATURE_NAMES),
            "forests": [
                {
                    "group": group,
                    "arrays": f"f{index}_",
                    "threshold": self.thresholds_[group],
                    "profile": self.profiles_[group].to_json(),
                }
                for index, group in enumerate(names)
            ],
            "sessions": self.sessions_,
        }
        (directory / GROUPS_FILE).write_text(json.dumps(document, indent=1, sort_keys=True))
        return ModelEntry(
            name=self.name,
            schema_version=self.schema_version,
            features=FEATURE_NAMES,
            files=(FORESTS_FILE, GROUPS_FILE),
            thresholds=dict(self.thresholds_),
            counts=dict(self.sessions_),
            params=self.params(),
        )

    @classmethod
    def load(cls, directory: Path, entry: ModelEntry) -> Self:
        """Read what `save` wrote. Arrays that are not a forest, or a feature list other than
        this version's, raise ValueError naming the file."""
        params = dict(entry.params)
        try:
            kwargs = {key: params[key] for key in cls().params() if key in params}
            if "learn_below" in kwargs:
                kwargs["learn_below"] = Severity.parse(str(kwargs["learn_below"]))
            model = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{directory}: bad session model parameters: {exc}") from None
        document = json.loads((directory / GROUPS_FILE).read_text(encoding="utf-8"))
        if tuple(document.get("features", ())) != FEATURE_NAMES:
            raise ValueError(f"{directory / GROUPS_FILE}: features differ from this version's")
        try:
            with np.load(directory / FORESTS_FILE, allow_pickle=False) as arrays:
                model.forests_ = {
                    f["group"]: PackedForest.from_arrays(arrays, f["arrays"])
                    for f in document["forests"]
                }
            model.thresholds_ = {f["group"]: float(f["threshold"]) for f in document["forests"]}
            model.profiles_ = {
                f["group"]: GroupProfile.from_json(f["profile"]) for f in document["forests"]
            }
            model.sessions_ = {str(k): int(v) for k, v in document["sessions"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{directory}: not a session model: {exc}") from None
        if GLOBAL not in model.forests_:
            raise ValueError(f"{directory / GROUPS_FILE}: no global forest")
        return model


MODELS.register(NAME, SessionIsolationModel)


def _number(value: Any, source: str, key: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0.5 <= value < 1.0:
        raise ConfigError(f"{source}: 'baseline.{key}' must be a number in [0.5, 1), got {value!r}")
    return float(value)


def _count(value: Any, source: str, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{source}: 'baseline.{key}' must be a whole number >= 1, got {value!r}")
    return value
