"""Findings → alerts and responses, deduplicated.

Alerts: one per (session, kind). The first finding at or above the alert threshold opens it;
a later finding of higher severity re-emits it under the same dedup_key, so a pager sees one
incident that escalates rather than a stream of pages.

Responses: the first finding at or above the revoke threshold on an agent session whose scope
says `on_violation: revoke` yields one `revoke-session` response. People are never revoked
automatically; `dry_run` is carried in the response, not decided by whoever performs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detector.core.findings import Alert, Finding, Response
from detector.core.parse import parse_time
from detector.core.policy import SeverityPolicy
from detector.core.session_view import SessionView
from detector.core.taxonomy import SessionKind, Severity
from detector.core.timestamps import iso_seconds

# Scope verdicts that decide a revocation; under "approve" it waits for a second person
# (detector/approvals), which the responders ask before acting.
REVOKING = frozenset({"revoke", "approve"})

# An alert lists at most this many event ids; the findings themselves carry the rest.
MAX_ALERT_EVENT_IDS = 50


@dataclass(slots=True)
class _OpenAlert:
    severity: Severity
    event_ids: list[str]
    first_seen: str
    last_seen: str


class Decider:
    """Turns findings into alerts and responses; remembers what it already emitted."""

    def __init__(self, policy: SeverityPolicy, *, responses_enabled: bool) -> None:
        self.policy = policy
        self.responses_enabled = responses_enabled
        # session id -> finding kind -> its open alert
        self._alerts: dict[str, dict[str, _OpenAlert]] = {}
        self._responded: set[str] = set()

    def decide(
        self,
        findings: Sequence[Finding],
        session: SessionView,
        *,
        on_violation: str | None,
    ) -> tuple[list[Alert], list[Response]]:
        alerts: list[Alert] = []
        responses: list[Response] = []
        for finding in findings:
            alert = self._alert_for(finding)
            if alert is not None:
                alerts.append(alert)
            response = self._response_for(finding, session, on_violation)
            if response is not None:
                responses.append(response)
        return alerts, responses

    def _alert_for(self, finding: Finding) -> Alert | None:
        if finding.severity < self.policy.alert_min:
            return None
        key = alert_key(finding.session_id, finding.kind)
        stamp = _iso(finding)
        open_alerts = self._alerts.setdefault(finding.session_id, {})
        current = open_alerts.get(finding.kind)
        if current is None:
            current = _OpenAlert(finding.severity, [finding.event_id], stamp, stamp)
            open_alerts[finding.kind] = current
        else:
            ids = current.event_ids
            if finding.event_id not in ids and len(ids) < MAX_ALERT_EVENT_IDS:
                ids.append(finding.event_id)
            current.first_seen = min(current.first_seen, stamp)
            current.last_seen = max(current.last_seen, stamp)
            if finding.severity <= current.severity:
                return None
            current.severity = finding.severity
        return Alert(
            dedup_key=key,
            severity=current.severity,
            session_id=finding.session_id,
            kind=finding.kind,
            title=_title(finding),
            finding_event_ids=tuple(current.event_ids),
            session_kind=finding.session_kind,
            agent=finding.agent,
            principal=finding.principal,
            scope=finding.scope,
            first_seen=parse_time(current.first_seen),
            last_seen=parse_time(current.last_seen),
        )

    def _response_for(
        self, finding: Finding, session: SessionView, on_violation: str | None
    ) -> Response | None:
        if (
            session.kind is not SessionKind.AGENT
            or on_violation not in REVOKING
            or finding.severity < self.policy.revoke_min
            or session.session_id in self._responded
        ):
            return None
        self._responded.add(session.session_id)
        return Response(
            action=response_action(session),
            session_id=session.session_id,
            event_id=finding.event_id,
            event_time=finding.event_time,
            dry_run=not self.responses_enabled,
            reason=f"{finding.severity.label} {finding.kind}: {finding.reason}",
            scope=finding.scope,
            agent=session.agent,
            principal=session.principal_arn,
            role_arn=session.role_arn,
            session_name=session.session_name,
            source_identity=session.source_identity,
            access_key_id=session.access_key_id,
            issued_at=session.issued_at,
            on_human_credentials=session.on_human_credentials,
            human=session.human,
            principal_id=session.principal_id,
            account_id=session.account_id,
            principal_type=session.principal_type,
        )

    def forget(self, session_id: str) -> None:
        """Drop what is remembered about an evicted session."""
        self._alerts.pop(session_id, None)
        self._responded.discard(session_id)

    def worst_severities(self) -> dict[str, Severity]:
        """Each session with an open alert, and the highest severity among them."""
        return {
            sid: max(a.severity for a in kinds.values())
            for sid, kinds in self._alerts.items()
            if kinds
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.shared_snapshot(),
            "alerts": {sid: _alerts_json(kinds) for sid, kinds in self._alerts.items() if kinds},
            "responded": dict.fromkeys(self._responded, True),
        }

    def shared_snapshot(self) -> dict[str, Any]:
        """`snapshot` without the open alerts, which are kept per session."""
        return {"alerts": {}, "responded": {}}

    # The parts of `snapshot` kept per session (see core/state_delta.py).
    session_collections = ("alerts", "responded")

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        """The session's entries in `snapshot`'s collections (absent where it has none)."""
        found: dict[str, Any] = {}
        kinds = self._alerts.get(session_id)
        if kinds:
            found["alerts"] = _alerts_json(kinds)
        if session_id in self._responded:
            found["responded"] = True
        return found

    def restore(self, data: Mapping[str, Any]) -> None:
        self._alerts = {}
        for key, value in data.get("alerts", {}).items():
            if isinstance(value, Mapping):
                self._alerts[key] = {kind: _open_alert(a) for kind, a in value.items()}
            else:  # older snapshots: keyed by dedup key, trailguard/<session>/<kind>
                _, session_id, kind = key.split("/", 2)
                self._alerts.setdefault(session_id, {})[kind] = _open_alert(value)
        # A list in snapshots from before state rows, {session id: true} since.
        self._responded = set(data.get("responded", ()))


def _alerts_json(kinds: Mapping[str, _OpenAlert]) -> dict[str, Any]:
    # A copy of the evidence list: a snapshot is written while later events extend it.
    return {
        kind: [a.severity.label, list(a.event_ids), a.first_seen, a.last_seen]
        for kind, a in kinds.items()
    }


def _open_alert(stored: Sequence[Any]) -> _OpenAlert:
    severity, ids, first, last = stored
    return _OpenAlert(Severity.parse(severity), list(ids), first, last)


def response_action(session: SessionView) -> str:
    """An IAM user's long-term key (AKIA...) has no session to deny: the key itself is
    disabled. Every other credential set is a session, revoked on its own."""
    key = session.access_key_id or ""
    if session.principal_type == "IAMUser" and key.startswith("AKIA"):
        return "disable-access-key"
    return "revoke-session"


def alert_key(session_id: str, kind: str) -> str:
    return f"trailguard/{session_id}/{kind}"


def _title(finding: Finding) -> str:
    who = finding.agent or finding.principal or finding.session_id
    if finding.session_kind is SessionKind.AGENT:
        who = f"agent {finding.agent or 'unidentified'}"
        if finding.human:
            who += f" for {finding.human}"
    what = finding.action or finding.kind
    scope = f" (scope {finding.scope})" if finding.scope else ""
    return f"{finding.kind}: {who} called {what}{scope}"


def _iso(finding: Finding) -> str:
    return iso_seconds(finding.event_time)
