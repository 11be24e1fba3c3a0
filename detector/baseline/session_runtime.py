"""The session model at run time: rows buffered as sessions evolve, scored in batches.

`observe` only counts: it updates the session's features and, when the session reaches a
milestone of its event count, buffers its row. `drain` scores every buffered row at once
(walking the packed trees for a batch costs a fraction of doing it a row at a time) and
raises `anomalous-session` for the first row of a session over its forest's threshold, once
per session. Milestones depend only on the count, so the findings depend only on the events
seen, never on when the pipeline drains.

Nothing is learned online (see `session_model`). An event the pipeline would not learn from
(`learn` False: something flagged it) is not counted in its session's row, as training never
saw such events. State kept per session is bounded (`session_features.MAX_DISTINCT`) and
dropped when the session is forgotten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from detector.baseline.session_features import FEATURE_NAMES, SessionFeatures, is_milestone
from detector.baseline.session_model import GLOBAL, SessionRow, principal_group
from detector.baseline.session_profile import standing_out
from detector.core.findings import Finding
from detector.core.policy import EventContext, SeverityPolicy, make_finding
from detector.core.taxonomy import Category, CredentialRelation, SessionKind, Severity

if TYPE_CHECKING:
    from detector.baseline.session_model import SessionIsolationModel
    from detector.baseline.session_profile import GroupProfile

KIND = "anomalous-session"
# How many of the features furthest outside the group's range the reason names.
NAMED_FEATURES = 3
# A baseline finding alone does not page; the pipeline's severity policy raises it when it
# combines with a scope finding, a suspicious sequence or an unscoped agent.
DEFAULT_SEVERITY = Severity.MEDIUM


@dataclass(frozen=True, slots=True)
class _Pending:
    row: SessionRow
    finding: Finding  # made at the milestone event; reason and evidence filled in on drain


class SessionIsolationRuntime:
    """One shard's view of a fitted `SessionIsolationModel` (the `Baseline` protocol)."""

    def __init__(
        self,
        model: SessionIsolationModel,
        policy: SeverityPolicy,
        *,
        severity: Severity = DEFAULT_SEVERITY,
    ) -> None:
        self.model = model
        self.policy = policy
        self.severity = severity
        self._sessions: dict[str, SessionFeatures] = {}
        self._pending: list[_Pending] = []
        self._reported: set[str] = set()

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def pending(self) -> int:
        """Rows waiting for the next drain."""
        return len(self._pending)

    def observe(
        self, ctx: EventContext, findings: Sequence[Finding], *, learn: bool
    ) -> list[Finding]:
        if not learn:
            return []
        session_id = ctx.session.session_id
        features = self._sessions.get(session_id)
        if features is None:
            features = self._sessions[session_id] = SessionFeatures()
        features.update(ctx, findings)
        if session_id not in self._reported and is_milestone(
            features.events, self.model.milestone_every
        ):
            row = SessionRow(session_id, principal_group(ctx), features.row())
            template = make_finding(
                ctx, kind=KIND, severity=self.severity, classification=None, reason=""
            )
            self._pending.append(_Pending(row, template))
        return []

    def drain(self) -> list[Finding]:
        if not self._pending:
            return []
        pending, self._pending = self._pending, []
        rows = [p.row for p in pending]
        excess = self.model.excess(rows)
        scores = self.model.anomaly_scores(rows)
        thresholds = self.model.thresholds(rows)
        found: list[Finding] = []
        for item, over, score, threshold in zip(pending, excess, scores, thresholds, strict=True):
            session_id = item.row.session_id
            if over <= 0 or session_id in self._reported:
                continue
            self._reported.add(session_id)
            reason, evidence = explain(self.model, item.row, float(score), float(threshold))
            found.append(
                replace(item.finding, reason=reason, evidence=(*item.finding.evidence, *evidence))
            )
        return found

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._reported.discard(session_id)

    session_collections = ("sessions",)

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.shared_snapshot(),
            "sessions": {sid: f.snapshot() for sid, f in sorted(self._sessions.items())},
        }

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        features = self._sessions.get(session_id)
        return {} if features is None else {"sessions": features.snapshot()}

    def shared_snapshot(self) -> dict[str, Any]:
        return {
            "sessions": {},
            "pending": [
                {
                    "session": p.row.session_id,
                    "group": p.row.group,
                    "values": list(p.row.values),
                    "finding": p.finding.to_record(),
                }
                for p in self._pending
            ],
            "reported": sorted(self._reported),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self._sessions = {
            str(sid): SessionFeatures.restore(state) for sid, state in data["sessions"].items()
        }
        self._pending = [
            _Pending(
                SessionRow(str(p["session"]), str(p["group"]), tuple(map(float, p["values"]))),
                finding_from_record(p["finding"]),
            )
            for p in data["pending"]
        ]
        self._reported = set(data["reported"])


def explain(
    model: SessionIsolationModel, row: SessionRow, score: float, threshold: float
) -> tuple[str, tuple[str, ...]]:
    """One sentence for on-call and the evidence lines behind it."""
    judge = model.judge(row.group)
    profile = model.profiles_[judge]
    who = _label(row.group)
    if judge == row.group:
        against = f"{who}'s {profile.sessions:,} training sessions"
    else:
        own = model.sessions_.get(row.group, 0)
        against = f"the {profile.sessions:,} training sessions of all principals"
        if row.group != GLOBAL:
            against += f" ({who} had {own:,}, too few for its own)"
    distances = model.distances(row)
    standing = standing_out(distances, NAMED_FEATURES)
    named = "; ".join(
        f"{describe(FEATURE_NAMES[i], row.values[i])} ({_range(i, profile)})" for i in standing
    )
    if not named:
        named = "no single feature is outside the usual range; the combination is rare"
    reason = (
        f"session {row.session_id} of {who} is unlike {against} "
        f"(forest score {score:.2f}, threshold {threshold:.2f}): {named}."
    )
    evidence = (
        f"session-isolation: forest score {score:.3f}, threshold {threshold:.3f} "
        f"(forest of {_label(judge)}, {profile.rows:,} training rows)",
        *(
            f"session-isolation: {FEATURE_NAMES[i]} = {row.values[i]:.4g}, "
            f"{distances[i]:.1f} spreads outside the training range "
            f"(median {profile.median[i]:.4g}, 1st-99th percentile "
            f"{profile.low[i]:.4g}-{profile.high[i]:.4g})"
            for i in standing
        ),
    )
    return reason, evidence


def describe(name: str, value: float) -> str:
    """A feature's value as a person says it: "14 distinct services", "destroy ratio 0.40"."""
    if name.endswith("_ratio"):
        return f"{name.removesuffix('_ratio')} share {value:.2f}"
    if name == "duration":
        return f"{_duration(value)} long"
    if name == "call_rate":
        return f"{value:.3g} calls a minute"
    words = {
        "event_count": "calls",
        "distinct_services": "distinct services",
        "distinct_actions": "distinct actions",
        "novel_action_count": "novel actions",
        "resource_spread": "distinct resources",
        "region_count": "regions",
    }
    return f"{value:,.0f} {words.get(name, name)}"


def _range(index: int, profile: GroupProfile) -> str:
    name = FEATURE_NAMES[index]
    low, median, high = profile.low[index], profile.median[index], profile.high[index]

    def say(v: float) -> str:
        if name == "duration":
            return _duration(v)
        if name.endswith("_ratio") or name == "call_rate":
            return f"{v:.2g}"
        return f"{v:,.0f}"

    return f"usually {say(median)}, 98% of training rows between {say(low)} and {say(high)}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _label(group: str) -> str:
    kind, _, value = group.partition(":")
    if kind in ("role", "user"):
        return f"{kind} {value.rsplit('/', 1)[-1]}"
    if kind == "service":
        return value
    return "all principals"


def finding_from_record(record: Mapping[str, Any]) -> Finding:
    """A Finding back from `Finding.to_record()` (pending rows in a snapshot)."""
    category = record.get("category")
    return Finding(
        kind=str(record["kind"]),
        severity=Severity.parse(str(record["severity"])),
        event_id=str(record["event_id"]),
        event_time=datetime.strptime(record["event_time"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC
        ),
        session_id=str(record["session_id"]),
        session_kind=SessionKind(record["session_kind"]),
        agent=record.get("agent"),
        principal=record.get("principal"),
        human=record.get("human"),
        action=record.get("action"),
        resources=tuple(record.get("resources", ())),
        category=Category(category) if category else None,
        scope=record.get("scope"),
        reason=str(record.get("reason", "")),
        region=str(record.get("region", "")),
        account=record.get("account"),
        error_code=record.get("error_code"),
        evidence=tuple(record.get("evidence", ())),
        credentials=CredentialRelation(record.get("credentials", "own")),
        delegated_by=record.get("delegated_by"),
    )
