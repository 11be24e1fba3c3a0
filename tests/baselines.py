"""A baseline by rule, for the pure logic around baselines (drains, severities, rollback).

It implements `detector.core.learned.Baseline` and `Habits` the way a model must: it flags
the actions in `flag`, learns from the events it may learn from, buffers one
`anomalous-session` per session when the session reaches `milestone` events and hands them
out in `drain`, and forgets a session's count with the session. Its snapshot refuses to be
taken with buffered work, which is what the service and replay promise (they drain first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detector.core.findings import Finding
from detector.core.policy import EventContext, make_finding
from detector.core.taxonomy import Severity


@dataclass
class RuleBaseline:
    name: str = "rules"
    flag: frozenset[str] = frozenset()  # actions raising novel-action, as the catalogue names
    milestone: int = 0  # 0: never buffers
    habits: frozenset[str] = frozenset()
    severity: Severity = Severity.HIGH  # what it puts on its findings; the pipeline decides
    learned: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    pending: list[Finding] = field(default_factory=list)
    seen: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (event id, kinds)

    def observe(
        self, ctx: EventContext, findings: Sequence[Finding], *, learn: bool
    ) -> list[Finding]:
        self.seen.append((ctx.event.event_id, tuple(f.kind for f in findings)))
        session = ctx.session.session_id
        self.counts[session] = self.counts.get(session, 0) + 1
        found = [
            make_finding(
                ctx,
                kind="novel-action",
                severity=self.severity,
                classification=None,
                reason=f"{ctx.session.principal_arn} never called {action}.",
            )
            for action in ctx.actions
            if action in self.flag
        ]
        if learn and not found:
            self.learned.append(ctx.event.event_id)
        if self.milestone and self.counts[session] == self.milestone:
            self.pending.append(
                make_finding(
                    ctx,
                    kind="anomalous-session",
                    severity=self.severity,
                    classification=None,
                    reason=f"session {session} is unlike its group's sessions.",
                )
            )
        return found

    def drain(self) -> list[Finding]:
        drained, self.pending = self.pending, []
        return drained

    def forget(self, session_id: str) -> None:
        self.counts.pop(session_id, None)

    def habitual(self, ctx: EventContext, action: str) -> bool:
        return action in self.habits

    session_collections = ("counts",)

    def snapshot(self) -> dict[str, Any]:
        return {**self.shared_snapshot(), "counts": dict(self.counts)}

    def shared_snapshot(self) -> dict[str, Any]:
        assert not self.pending, "snapshot taken with buffered work not drained"
        return {"learned": list(self.learned), "counts": {}}

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        count = self.counts.get(session_id)
        return {} if count is None else {"counts": count}

    def restore(self, data: Mapping[str, Any]) -> None:
        self.learned = list(data["learned"])
        self.counts = dict(data["counts"])
        self.pending = []
