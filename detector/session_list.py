"""`trailguard sessions`: one summary per session, and one session's timeline.

Two places know sessions: replay's inputs (every event is seen, so counts and the timeline
are complete) and the service's state store (its snapshots keep who each live session is and
when it was last seen, not its events, so counts and the timeline are unknown there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from detector.core.findings import Finding
from detector.core.pipeline import StepResult
from detector.core.scope import ScopeSet
from detector.core.session_view import SessionView
from detector.core.taxonomy import Severity


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One event of a session and what it produced."""

    event_id: str
    event_time: datetime
    action: str  # "service EventName", as CloudTrail names the call
    region: str
    error_code: str | None
    findings: tuple[Finding, ...]

    def to_record(self, session_id: str) -> dict[str, Any]:
        return {
            "type": "event",
            "session_id": session_id,
            "event_id": self.event_id,
            "event_time": _iso(self.event_time),
            "action": self.action,
            "region": self.region or None,
            "error_code": self.error_code,
            "findings": [
                {"kind": f.kind, "severity": f.severity.label, "reason": f.reason}
                for f in self.findings
            ],
        }


@dataclass(slots=True)
class SessionSummary:
    """What one session did, as far as the place it was read from tells."""

    view: SessionView
    scope: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    # None where the source does not keep them (the state store's snapshots).
    events: int | None = 0
    findings: int | None = 0
    worst: Severity | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def credentials(self) -> str | None:
        """ "delegated" (a person minted the session for an agent), "inherited" (an agent on
        the person's own credentials), or None for a session on its own credentials."""
        # Newer session views say which directly; older ones only flag the inherited case.
        relation = getattr(self.view, "credentials", None)
        if relation is not None:
            value = str(getattr(relation, "value", relation))
            return value if value in ("delegated", "inherited") else None
        return "inherited" if self.view.on_human_credentials else None

    def to_record(self) -> dict[str, Any]:
        v = self.view
        return {
            "type": "session",
            "session_id": v.session_id,
            "kind": v.kind.value,
            "agent": v.agent,
            "person": v.human,
            "credentials": self.credentials,
            "principal": v.principal_arn,
            "scope": self.scope,
            "first_seen": _iso(self.first_seen) if self.first_seen else None,
            "last_seen": _iso(self.last_seen) if self.last_seen else None,
            "events": self.events,
            "findings": self.findings,
            "worst_severity": self.worst.label if self.worst is not None else None,
        }


class SessionCollector:
    """Builds summaries from the pipeline's results, in the order sessions first appear."""

    def __init__(self, *, timeline_of: str | None = None) -> None:
        self.sessions: dict[str, SessionSummary] = {}
        self._timeline_of = timeline_of

    def add(self, result: StepResult) -> None:
        if result.duplicate or result.session is None:
            return
        event, view = result.event, result.session
        summary = self.sessions.get(view.session_id)
        if summary is None:
            summary = self.sessions[view.session_id] = SessionSummary(view=view)
        summary.view = view
        summary.events = (summary.events or 0) + 1
        summary.findings = (summary.findings or 0) + len(result.findings)
        when = event.event_time
        if summary.first_seen is None or when < summary.first_seen:
            summary.first_seen = when
        if summary.last_seen is None or when > summary.last_seen:
            summary.last_seen = when
        for finding in result.findings:
            if summary.worst is None or finding.severity > summary.worst:
                summary.worst = finding.severity
            summary.scope = finding.scope or summary.scope
        if view.session_id == self._timeline_of:
            summary.timeline.append(
                TimelineEntry(
                    event_id=event.event_id,
                    event_time=when,
                    action=f"{event.event_source} {event.event_name}",
                    region=event.aws_region,
                    error_code=event.error_code,
                    findings=result.findings,
                )
            )

    def finish(self, scopes: ScopeSet) -> list[SessionSummary]:
        """The summaries, each bound to its scope as the final view of the session binds."""
        for summary in self.sessions.values():
            if summary.scope is None and len(scopes):
                bound = scopes.bind(summary.view)
                summary.scope = bound.name if bound is not None else None
        return list(self.sessions.values())


def from_snapshot(
    views: Iterable[tuple[SessionView, datetime]],
    scopes: ScopeSet,
    worst: Mapping[str, Severity],
) -> list[SessionSummary]:
    """Summaries of the sessions a stored snapshot holds (with their last-seen times)."""
    found = []
    for view, last_seen in views:
        bound = scopes.bind(view) if len(scopes) else None
        found.append(
            SessionSummary(
                view=view,
                scope=bound.name if bound is not None else None,
                last_seen=last_seen,
                events=None,
                findings=None,
                worst=worst.get(view.session_id),
            )
        )
    return found


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
