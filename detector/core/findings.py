"""Findings, alerts and responses: frozen records with their evidence.

These are the service's output contract (see the README's "Replay output"): `to_record()`
gives exactly the JSON object written for each, so every sink writes the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detector.core.taxonomy import Category, CredentialRelation, SessionKind, Severity
from detector.core.timestamps import iso_seconds
from detector.registry import Registry


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingKind:
    """A kind of finding: its stable name and what it means, for docs and alert titles."""

    name: str
    summary: str


FINDING_KINDS: Registry[FindingKind] = Registry("finding kind")

for _name, _summary in (
    ("out-of-scope-action", "an agent called an action its task scope does not allow"),
    ("out-of-scope-resource", "an agent touched a resource outside its task scope"),
    ("out-of-scope-region", "an agent acted in a region outside its task scope"),
    ("out-of-scope-account", "an agent acted in an account outside its task scope"),
    ("scope-expired", "an agent acted after its task scope expired"),
    ("unscoped-agent", "an agent acted with no task scope bound to its session"),
    ("agent-on-human-credentials", "an agent is running on a person's credentials"),
    ("destructive-action", "an action that destroys resources or data"),
    ("privilege-escalation", "an action that changes permissions"),
    ("defense-evasion", "an action that blinds logging or monitoring"),
    ("data-exposure", "an action that makes resources public or shares them with other accounts"),
    ("credential-access", "an action that reads secrets or credentials"),
    ("persistence", "an action that creates a way back in (users, keys, trust, backdoors)"),
    ("access-denied-burst", "a burst of denied calls from one session"),
    ("novel-action", "first or rare use of an action, service, region or network by this group"),
    ("anomalous-session", "a session whose shape is unlike its group's sessions"),
    ("suspicious-sequence", "one session's calls that together tell a story (delete, recreate)"),
):
    FINDING_KINDS.register(_name, FindingKind(name=_name, summary=_summary))

# The catalogue category an action falls in decides which category finding it raises.
CATEGORY_KINDS: dict[Category, str] = {
    Category.DESTROY: "destructive-action",
    Category.PERMISSIONS: "privilege-escalation",
    Category.DEFENSE_EVASION: "defense-evasion",
    Category.DATA_EXPOSURE: "data-exposure",
    Category.CREDENTIAL_ACCESS: "credential-access",
    Category.PERSISTENCE: "persistence",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One thing worth knowing about one event, with the evidence that supports it."""

    kind: str
    severity: Severity
    event_id: str
    event_time: datetime
    session_id: str
    session_kind: SessionKind
    agent: str | None
    principal: str | None
    human: str | None
    action: str | None
    resources: tuple[str, ...]
    category: Category | None
    scope: str | None
    reason: str
    region: str = ""
    account: str | None = None
    error_code: str | None = None
    evidence: tuple[str, ...] = ()
    # Whose permissions the session's credentials carry, and who delegated them.
    credentials: CredentialRelation = CredentialRelation.OWN
    delegated_by: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "type": "finding",
            "event_id": self.event_id,
            "event_time": iso_seconds(self.event_time),
            "session_id": self.session_id,
            "session_kind": self.session_kind.value,
            "agent": self.agent,
            "principal": self.principal,
            "action": self.action,
            "resources": list(self.resources),
            "kind": self.kind,
            "category": self.category.value if self.category else None,
            "severity": self.severity.label,
            "scope": self.scope,
            "reason": self.reason,
            "human": self.human,
            "region": self.region,
            "account": self.account,
            "error_code": self.error_code,
            "evidence": list(self.evidence),
            "credentials": self.credentials.value,
            "delegated_by": self.delegated_by,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One per session and finding kind. Re-emitted, same dedup_key, when severity rises."""

    dedup_key: str
    severity: Severity
    session_id: str
    kind: str
    title: str
    finding_event_ids: tuple[str, ...]
    session_kind: SessionKind
    agent: str | None
    principal: str | None
    scope: str | None
    first_seen: datetime
    last_seen: datetime

    def to_record(self) -> dict[str, Any]:
        return {
            "type": "alert",
            "dedup_key": self.dedup_key,
            "severity": self.severity.label,
            "session_id": self.session_id,
            "title": self.title,
            "finding_event_ids": list(self.finding_event_ids),
            "kind": self.kind,
            "session_kind": self.session_kind.value,
            "agent": self.agent,
            "principal": self.principal,
            "scope": self.scope,
            "first_seen": iso_seconds(self.first_seen),
            "last_seen": iso_seconds(self.last_seen),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A decided response. `dry_run` travels with it: responders act only when it is False.

    The target fields are what a responder needs to deny exactly this credential set.
    """

    action: str
    session_id: str
    event_id: str
    event_time: datetime
    dry_run: bool
    reason: str
    scope: str | None
    agent: str | None
    principal: str | None
    role_arn: str | None
    session_name: str | None
    source_identity: str | None
    access_key_id: str | None
    issued_at: str | None
    on_human_credentials: bool
    human: str | None
    # What the responders need beyond the above: the `aws:userid` value to deny, the account
    # the guardrails check, and the principal type that picks the route (role or IAM user).
    principal_id: str | None = None
    account_id: str | None = None
    principal_type: str | None = None

    @property
    def key(self) -> str:
        """Identifies this response across redeliveries: one per session and action."""
        return f"{self.session_id}/{self.action}"

    def to_record(self) -> dict[str, Any]:
        return {
            "type": "response",
            "action": self.action,
            "session_id": self.session_id,
            "event_id": self.event_id,
            "dry_run": self.dry_run,
            "reason": self.reason,
            "event_time": iso_seconds(self.event_time),
            "scope": self.scope,
            "target": {
                "agent": self.agent,
                "principal": self.principal,
                "role_arn": self.role_arn,
                "session_name": self.session_name,
                "source_identity": self.source_identity,
                "access_key_id": self.access_key_id,
                "issued_at": self.issued_at,
                "on_human_credentials": self.on_human_credentials,
                "human": self.human,
                "principal_id": self.principal_id,
                "account_id": self.account_id,
                "principal_type": self.principal_type,
            },
        }
