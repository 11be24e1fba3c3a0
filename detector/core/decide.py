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
    """One open alert. Kept for every session that raised one, up to a million: its event
    ids are one string until a second arrives (most alerts never get one)."""

    kind: str
    severity: Severity
    event_ids: str | list[str]
    first_seen: str
    last_seen: str

    def ids(self) -> tuple[str, ...]:
        ids = self.event_ids
        return (ids,) if isinstance(ids, str) else tuple(ids)

    def add(self, event_id: str) -> None:
        ids = self.event_ids
        if isinstance(ids, str):
            if event_id != ids:
                self.event_ids = [ids, event_id]
        elif event_id not in ids and len(ids) < MAX_ALERT_EVENT_IDS:
            ids.append(event_id)


# A session's open alerts: the alert itself when it has one kind, as most do, else by kind.
# A dict per session cost more than the alert in it.
_Held = _OpenAlert | dict[str, _OpenAlert]


def _kinds(held: _Held) -> dict[str, _OpenAlert]:
    return held if isinstance(held, dict) else {held.kind: held}


class Decider:
    """Turns findings into alerts and responses; remembers what it already emitted."""

    def __init__(self, policy: SeverityPolicy, *, responses_enabled: bool) -> None:
        self.policy = policy
        self.responses_enabled = responses_enabled
        # session id -> its open alerts (see _Held)
        self._alerts: dict[str, _Held] = {}
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
        sid, kind = finding.session_id, finding.kind
        key = alert_key(sid, kind)
        stamp = _iso(finding)
        held = self._alerts.get(sid)
        if held is None or isinstance(held, dict):
            current = None if held is None else held.get(kind)
        else:
            current = held if held.kind == kind else None
        if current is None:
            current = _OpenAlert(kind, finding.severity, finding.event_id, stamp, stamp)
            if held is None:
                self._alerts[sid] = current
            elif isinstance(held, dict):
                held[kind] = current
            else:
                self._alerts[sid] = {held.kind: held, kind: current}
        else:
            current.add(finding.event_id)
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
            finding_event_ids=current.ids(),
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
            sid: max(a.severity for a in _kinds(held).values())
            for sid, held in self._alerts.items()
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.shared_snapshot(),
            "alerts": {sid: _alerts_json(held) for sid, held in self._alerts.items()},
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
        held = self._alerts.get(session_id)
        if held is not None:
            found["alerts"] = _alerts_json(held)
        if session_id in self._responded:
            found["responded"] = True
        return found

    def restore(self, data: Mapping[str, Any]) -> None:
        by_session: dict[str, dict[str, _OpenAlert]] = {}
        for key, value in data.get("alerts", {}).items():
            if isinstance(value, Mapping):
                by_session[key] = {kind: _open_alert(kind, a) for kind, a in value.items()}
            else:  # older snapshots: keyed by dedup key, trailguard/<session>/<kind>
                _, session_id, kind = key.split("/", 2)
                by_session.setdefault(session_id, {})[kind] = _open_alert(kind, value)
        self._alerts = {
            sid: next(iter(kinds.values())) if len(kinds) == 1 else kinds
            for sid, kinds in by_session.items()
            if kinds
        }
        # A list in snapshots from before state rows, {session id: true} since.
        self._responded = set(data.get("responded", ()))


def _alerts_json(held: _Held) -> dict[str, Any]:
    # A copy of the evidence list: a snapshot is written while later events extend it.
    return {
        kind: [a.severity.label, list(a.ids()), a.first_seen, a.last_seen]
        for kind, a in _kinds(held).items()
    }


def _open_alert(kind: str, stored: Sequence[Any]) -> _OpenAlert:
    severity, ids, first, last = stored
    event_ids: str | list[str] = ids[0] if len(ids) == 1 else list(ids)
    return _OpenAlert(kind, Severity.parse(severity), event_ids, first, last)


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
