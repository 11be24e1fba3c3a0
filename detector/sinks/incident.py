"""One incident per session: how the paging sinks fold per-kind alert records together.

The JSON Lines contract keeps one alert per session and finding kind, which is what tools
want. A person wants one page per session, so the paging sinks fold a session's alert
records (and the revocation decided for it) into an `Incident`: its kinds become labels and
evidence, its severity is the highest of them and only rises, and it resolves when the
session was revoked (a response with `dry_run: false`) and has been quiet since, or when it
has been idle for long enough that its credentials have expired.

Pure: records and the current time in, state out. Applying the same records twice changes
nothing, which is what makes redelivery after a crash harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detector.core.taxonomy import Severity

ACTIVE = "active"
RESOLVED = "resolved"


@dataclass(slots=True, kw_only=True)
class KindEvidence:
    """What one finding kind contributed: the alert record's fields and its latest finding's."""

    severity: Severity
    title: str
    event_ids: list[str]
    first_seen: str
    last_seen: str
    action: str | None = None
    resources: list[str] = field(default_factory=list)
    reason: str = ""
    evidence: list[str] = field(default_factory=list)
    region: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.label,
            "title": self.title,
            "event_ids": self.event_ids,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "action": self.action,
            "resources": self.resources,
            "reason": self.reason,
            "evidence": self.evidence,
            "region": self.region,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KindEvidence:
        return cls(**{**data, "severity": Severity.parse(data["severity"])})


@dataclass(slots=True, kw_only=True)
class SessionUpdate:
    """A batch's records for one session, as the paging sinks read them."""

    session_id: str
    alerts: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = field(default_factory=list)
    response: Mapping[str, Any] | None = None


def session_updates(
    records: Sequence[Mapping[str, Any]], *, min_severity: Severity | None = None
) -> dict[str, SessionUpdate]:
    """Group a batch's contract records by session, pairing each alert with the finding
    that raised it (it precedes the alert in the same batch: findings, alerts, responses)."""
    findings: dict[tuple[str, str], Mapping[str, Any]] = {}
    updates: dict[str, SessionUpdate] = {}
    for record in records:
        kind = record.get("type")
        session_id = str(record.get("session_id"))
        if kind == "finding":
            findings[(session_id, str(record.get("kind")))] = record
        elif kind == "alert":
            if min_severity is not None and Severity.parse(record["severity"]) < min_severity:
                continue
            update = updates.setdefault(session_id, SessionUpdate(session_id=session_id))
            update.alerts.append((record, findings.get((session_id, str(record["kind"])))))
        elif kind == "response":
            update = updates.setdefault(session_id, SessionUpdate(session_id=session_id))
            # A revocation carried out outranks one recorded as a dry run.
            if update.response is None or (
                update.response.get("dry_run") and not record.get("dry_run")
            ):
                update.response = record
    return {sid: u for sid, u in updates.items() if u.alerts or u.response is not None}


@dataclass(slots=True, kw_only=True)
class Incident:
    """A session's page. `version` counts changes; `sent_version` is the last delivered."""

    session_id: str
    session_kind: str = "unknown"
    agent: str | None = None
    principal: str | None = None
    human: str | None = None
    scope: str | None = None
    account: str | None = None
    severity: Severity = Severity.INFO
    kinds: dict[str, KindEvidence] = field(default_factory=dict)
    response: dict[str, Any] | None = None
    opened_at: float = 0.0
    last_alert_at: float = 0.0
    revoked_at: float | None = None
    status: str = ACTIVE
    resolved_at: float | None = None
    resolve_reason: str | None = None
    version: int = 0
    sent_version: int = 0
    # What the sink last delivered, in its own terms (PagerDuty: triggered or not, ...).
    sent: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        # A revocation with no alert behind it (alerts below the sink's minimum) pages no one.
        return self.version > self.sent_version and bool(self.kinds)

    @property
    def revoked(self) -> bool:
        return self.response is not None and not self.response.get("dry_run", True)

    def apply(self, update: SessionUpdate, now: float) -> bool:
        """Fold one batch's records in; True when the incident changed."""
        changed = False
        for alert, finding in update.alerts:
            changed |= self._apply_alert(alert, finding)
        if changed:
            if self.status == RESOLVED:
                # Activity after a resolution reopens the page; a revocation that did not
                # stop the session is for a person to look at, not to resolve again.
                self.status = ACTIVE
                self.resolved_at = None
                self.resolve_reason = None
                self.revoked_at = None
                self.response = None
            self.last_alert_at = now
            if not self.opened_at:
                self.opened_at = now
        response = update.response
        if response is not None and self.status == ACTIVE:
            carried_out = not response.get("dry_run", True)
            if self.response is None or (carried_out and not self.revoked):
                self.response = dict(response)
                if carried_out:
                    self.revoked_at = now
                changed = True
        if changed:
            self.version += 1
        return changed

    def _apply_alert(self, alert: Mapping[str, Any], finding: Mapping[str, Any] | None) -> bool:
        kind = str(alert["kind"])
        severity = Severity.parse(alert["severity"])
        current = self.kinds.get(kind)
        self.session_kind = alert.get("session_kind") or self.session_kind
        self.agent = alert.get("agent") or self.agent
        self.principal = alert.get("principal") or self.principal
        self.scope = alert.get("scope") or self.scope
        if finding is not None:
            self.human = finding.get("human") or self.human
            self.account = finding.get("account") or self.account
        if current is not None and severity <= current.severity:
            return False
        self.kinds[kind] = KindEvidence(
            severity=severity,
            title=str(alert.get("title", kind)),
            event_ids=list(alert.get("finding_event_ids", ())),
            first_seen=str(alert.get("first_seen", "")),
            last_seen=str(alert.get("last_seen", "")),
            action=finding.get("action") if finding else None,
            resources=list(finding.get("resources", ())) if finding else [],
            reason=str(finding.get("reason", "")) if finding else "",
            evidence=list(finding.get("evidence", ())) if finding else [],
            region=str(finding.get("region", "")) if finding else "",
        )
        self.severity = max(self.severity, severity)
        return True

    def due(self, now: float, *, quiet_seconds: float, idle_seconds: float | None) -> str | None:
        """Why the incident should resolve now, or None."""
        if self.status != ACTIVE:
            return None
        if self.revoked_at is not None and now - max(self.revoked_at, self.last_alert_at) >= (
            quiet_seconds
        ):
            return "revoked"
        if idle_seconds is not None and now - self.last_alert_at >= idle_seconds:
            return "idle"
        return None

    def resolve(self, now: float, reason: str) -> None:
        self.status = RESOLVED
        self.resolved_at = now
        self.resolve_reason = reason
        self.version += 1

    def headline(self) -> KindEvidence:
        """The kind that first took the incident to its severity: what paged."""
        top = [k for k in self.kinds.values() if k.severity == self.severity]
        return min(top, key=lambda k: k.last_seen)

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "session_kind": self.session_kind,
            "agent": self.agent,
            "principal": self.principal,
            "human": self.human,
            "scope": self.scope,
            "account": self.account,
            "severity": self.severity.label,
            "kinds": {k: v.to_json() for k, v in self.kinds.items()},
            "response": self.response,
            "opened_at": self.opened_at,
            "last_alert_at": self.last_alert_at,
            "revoked_at": self.revoked_at,
            "status": self.status,
            "resolved_at": self.resolved_at,
            "resolve_reason": self.resolve_reason,
            "version": self.version,
            "sent_version": self.sent_version,
            "sent": self.sent,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Incident:
        values = dict(data)
        values["severity"] = Severity.parse(values["severity"])
        values["kinds"] = {k: KindEvidence.from_json(v) for k, v in values["kinds"].items()}
        return cls(**values)
