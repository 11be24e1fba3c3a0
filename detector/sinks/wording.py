"""The words every paging sink uses for an incident: who, on whose behalf, which task, what."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from detector.sinks.incident import Incident, KindEvidence


def session_url(public_url: str | None, session_id: str) -> str | None:
    """`<http.public_url>/sessions/<session_id>`, the session page; None without a base."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/sessions/{quote(session_id, safe='')}"


def who(incident: Incident) -> str:
    if incident.session_kind == "agent":
        name = f"agent {incident.agent or 'unidentified'}"
        return f"{name} for {incident.human}" if incident.human else name
    return incident.principal or incident.session_id


def summary(incident: Incident) -> str:
    """One line: severity, who, what, in which task."""
    top = incident.headline()
    what = top.action or top.title
    scope = f" (task scope {incident.scope})" if incident.scope else ""
    extra = len(incident.kinds) - 1
    more = f" and {extra} more finding kind{'s' if extra > 1 else ''}" if extra > 0 else ""
    return f"[{incident.severity.label}] {who(incident)} called {what}{scope}{more}"


def revocation(incident: Incident) -> str:
    """What was or would be revoked, in words."""
    response = incident.response
    if response is None:
        return "nothing revoked (no automatic response for this session)"
    target = response.get("target") or {}
    credential = target.get("principal") or response.get("session_id")
    if target.get("access_key_id"):
        credential = f"{credential}, access key {target['access_key_id']}"
    verb = "would be revoked (dry run)" if response.get("dry_run", True) else "revoked"
    return f"{response.get('action', 'revoke-session')}: {credential} {verb}"


def kind_line(kind: str, evidence: KindEvidence) -> str:
    resources = ", ".join(evidence.resources[:3]) or "no resource named"
    reason = f": {evidence.reason}" if evidence.reason else ""
    return (
        f"{evidence.severity.label} {kind}: {evidence.action or '?'} on {resources}{reason} "
        f"(events {', '.join(evidence.event_ids[:5])})"
    )


def description(incident: Incident) -> str:
    """Who, on whose behalf, which task, what, the evidence, and the response."""
    lines = [
        f"Who: {who(incident)} ({incident.session_kind} session {incident.session_id})",
        f"Principal: {incident.principal or 'unknown'}",
        f"On behalf of: {incident.human or 'nobody identified'}",
        f"Task scope: {incident.scope or 'none bound'}",
        f"Account: {incident.account or 'unknown'}",
        "What:",
    ]
    by_severity = sorted(incident.kinds.items(), key=lambda kv: (-kv[1].severity, kv[0]))
    lines.extend(f"  - {kind_line(kind, ev)}" for kind, ev in by_severity)
    lines.append(f"Response: {revocation(incident)}")
    return "\n".join(lines)


def details(incident: Incident, public_url: str | None) -> dict[str, Any]:
    """The incident as structured evidence (PagerDuty custom_details, webhook body)."""
    return {
        "session_id": incident.session_id,
        "session_kind": incident.session_kind,
        "agent": incident.agent,
        "principal": incident.principal,
        "human": incident.human,
        "scope": incident.scope,
        "account": incident.account,
        "severity": incident.severity.label,
        "status": incident.status,
        "resolve_reason": incident.resolve_reason,
        "kinds": {kind: ev.to_json() for kind, ev in sorted(incident.kinds.items())},
        "response": incident.response,
        "session_url": session_url(public_url, incident.session_id),
    }
