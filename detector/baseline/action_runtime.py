"""The action model as the pipeline runs it: `novel-action` findings, online learning.

Each shard's runtime reads the fitted counts (shared, never changed) and keeps its own
online updates beside them, with each live session's own counts. It learns from an event
only when the pipeline says it may (no finding at or above `severity.learn_below`) and the
event did not raise `novel-action` itself, so an unusual call stays unusual however often
it is repeated. Nothing is buffered: findings come out of `observe`, `drain` has none.

Settings (the `baseline:` section, keys this model reads): `default_time_zone`,
`time_zones` and `networks` override what the model was trained with (keep them the same as
at training); `half_life_days` sets how fast counts decay from the end of the training
window on (default: the half-life it was trained with; 30 days for a shipped prior).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from detector.baseline.action_evidence import sentence, what
from detector.baseline.action_model import (
    DAY,
    DEFAULT_HALF_LIFE_DAYS,
    PRIOR_LEVELS,
    ActionFrequencyModel,
    number_setting,
)
from detector.baseline.counts import CountTable, OverlayCounts
from detector.baseline.features import FEATURES, FeatureExtractor, parse_feature_config
from detector.baseline.groups import group_chain, level
from detector.baseline.habits import habit_calls, habitual
from detector.baseline.surprisal import SESSION, clearly_usual, surprisals
from detector.core.findings import Finding
from detector.core.policy import EventContext, SeverityPolicy, make_finding, worst

KIND = "novel-action"
SNAPSHOT_VERSION = 1
FEATURE_KEYS = ("default_time_zone", "time_zones", "networks")


class ActionFrequencyRuntime:
    """One shard's view of a fitted ActionFrequencyModel (the pipeline's `Baseline`)."""

    def __init__(
        self,
        model: ActionFrequencyModel,
        policy: SeverityPolicy,
        settings: Mapping[str, Any],
        *,
        source: str = "<settings>",
    ) -> None:
        self._name = model.name
        self.model = model
        self.severity = policy.novel_action
        # A prior's half-life weighed the captures it was fitted on against each other; what
        # the service learns online decays at the usual pace unless the settings say otherwise.
        days = DEFAULT_HALF_LIFE_DAYS if model.prior_only else model.half_life_days
        if settings.get("half_life_days") is not None:
            days = number_setting(
                settings["half_life_days"], 0.0, None, source, "baseline.half_life_days"
            )
        self.half_life = days * DAY
        features = (model.features.to_dict() if model.features else {}) | {
            key: settings[key] for key in FEATURE_KEYS if settings.get(key) is not None
        }
        self.extractor = FeatureExtractor(
            parse_feature_config(features, source=source, key="baseline")
        )
        self.thresholds: list[float] = [float(t) for t in model.thresholds_]
        # A value at least this likely is surely below its threshold (with a margin far
        # above rounding), so `clearly_usual` can clear an event without the full back-off.
        self.floors = [2.0**-t * (1 + 1e-9) for t in self.thresholds]
        # A shipped prior is as fresh as the first event this runtime sees, however long ago
        # it was trained; a baseline of the account's own trail ages from its window's end.
        # Its thresholds were calibrated on its own (global) counts: what is learned online
        # about roles, users and accounts makes their habits familiar, never novel.
        self.rebase = model.prior_only
        self.sessions: dict[str, CountTable] = {}
        self.habit_calls = habit_calls(settings)
        self._bind(None if self.rebase else model.counts_.reference)

    def _bind(self, reference: float | None, touched: CountTable | None = None) -> None:
        """Read the fitted counts as of `reference`, decaying at this runtime's half-life
        from then on (the fitted weights are the counts as of the reference)."""
        fitted = self.model.counts_
        self.reference = reference
        view = CountTable(self.half_life, fitted.reference if reference is None else reference)
        view.cells, view.groups = fitted.cells, fitted.groups
        self.counts = OverlayCounts(view, touched)

    @property
    def name(self) -> str:
        return self._name

    def observe(
        self, ctx: EventContext, findings: Sequence[Finding], *, learn: bool
    ) -> list[Finding]:
        chain, values, at = self._inputs(ctx)
        base, touched = self.counts.base, self.counts.touched
        if not clearly_usual(base, touched, chain, values, at, self.floors):
            excess = self._excess(ctx, chain, values, at)
            if max(excess) > 0:
                return [self._finding(ctx, chain, values, excess, at)]
        if learn:
            self._learn(ctx.session.session_id, chain, values, at)
        return []

    def score(self, ctx: EventContext) -> float:
        """The event's score (largest excess over a threshold, in bits), learning nothing."""
        return max(self._excess(ctx, *self._inputs(ctx)))

    def _inputs(self, ctx: EventContext) -> tuple[tuple[str, ...], tuple[str, ...], float]:
        at = ctx.event.event_time.timestamp()
        if self.reference is None:
            self._bind(at)
        # Online, every lasting group learns, whatever the fitted model kept (a shipped
        # prior holds only agent kinds and the global counts; roles are learned here).
        return group_chain(ctx)[1:], self.extractor.values(ctx), at

    def _excess(
        self, ctx: EventContext, chain: tuple[str, ...], values: tuple[str, ...], at: float
    ) -> list[float]:
        """Each feature's surprisal minus its threshold."""
        bits = surprisals(
            self.counts.base, self.counts.touched, chain, values, at,
            session=self.sessions.get(ctx.session.session_id),
            session_prior=self.model.session_prior,
            familiar=tuple(level(g) not in PRIOR_LEVELS for g in chain) if self.rebase else None,
        )  # fmt: skip
        return [b - t for b, t in zip(bits, self.thresholds, strict=True)]

    def _learn(
        self, session_id: str, chain: Sequence[str], values: Sequence[str], at: float
    ) -> None:
        weight = self.counts.base.weight(at)
        self.counts.learn(chain, values, weight, at)
        own = self.sessions.get(session_id)
        if own is None:
            base = self.counts.base
            own = self.sessions[session_id] = CountTable(base.half_life, base.reference)
        own.add_call(SESSION, at)
        for feature, value in enumerate(values):
            own.add(SESSION, feature, value, weight)

    def _finding(
        self,
        ctx: EventContext,
        chain: Sequence[str],
        values: Sequence[str],
        excess: Sequence[float],
        at: float,
    ) -> Finding:
        # In the order of FEATURES: the action first, the way on-call reads a call.
        ranked = [i for i, e in enumerate(excess) if e > 0]
        top = ranked[0]
        zone = self.extractor.hour_zone(ctx.event.account_id)
        reason = sentence(self.counts, chain, top, values[top], zone=zone)
        if len(ranked) > 1:
            also = ", ".join(what(i, values[i], zone) for i in ranked[1:])
            reason = f"{reason[:-1]} (also unusual: {also})."
        finding = make_finding(
            ctx,
            kind=KIND,
            severity=self.severity,
            classification=worst(ctx.classifications),
            reason=reason,
        )
        scores = tuple(
            f"{self._name}: {FEATURES[i]} {values[i]!r} is {excess[i] + self.thresholds[i]:.1f} "
            f"bits of surprisal, threshold {self.thresholds[i]:.1f}"
            for i in ranked
        )
        return replace(finding, evidence=(*finding.evidence, *scores))

    def drain(self) -> list[Finding]:
        return []

    def habitual(self, ctx: EventContext, action: str) -> bool:
        """`Habits`: the role, user or service called `action` often (see `habits`)."""
        return habitual(self.counts, ctx, action, calls=self.habit_calls)

    def forget(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)

    session_collections = ("sessions",)

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.shared_snapshot(),
            "sessions": {sid: table.to_json() for sid, table in self.sessions.items()},
        }

    def shared_snapshot(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "reference": self.reference,
            "learned": self.counts.touched.to_json(),
            "sessions": {},
        }

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        table = self.sessions.get(session_id)
        return {} if table is None else {"sessions": table.to_json()}

    def restore(self, data: Mapping[str, Any]) -> None:
        if data.get("version") != SNAPSHOT_VERSION:
            # A state saved by another version of this model: start from the fitted counts.
            return
        self._bind(data["reference"], CountTable.from_json(data["learned"], self.half_life))
        self.sessions = {
            sid: CountTable.from_json(table, self.half_life)
            for sid, table in data["sessions"].items()
        }
