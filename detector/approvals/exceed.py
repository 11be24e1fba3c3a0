"""An agent's request to exceed its task scope: a command the pre-flight gate blocked under
an `on_violation: approve` scope, held for a second person like a revocation.

The request is stored in the approvals table with action `exceed-scope`; what the agent
wants to run (command line, IAM actions, resources, region, the gate's reasons) is kept in
the row's JSON `response` column, so no migration is needed. Its key is computed here from
what the request is about, never taken from the client: the same command under the same
scope, session and agent asks once, however often the agent retries it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detector.approvals.decisions import ApprovalError

EXCEED_SCOPE = "exceed-scope"
KINDS = ("revocation", EXCEED_SCOPE)
MAX_TEXT = 4000
MAX_ITEMS = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class ExceedRequest:
    """What the gate asks for, as validated from `POST /v1/approvals`."""

    session_id: str
    agent: str
    human: str
    scope: str
    command: str
    actions: tuple[str, ...]
    resources: tuple[str, ...] = ()
    region: str = ""
    reasons: tuple[str, ...] = ()

    def key(self) -> str:
        return request_key(
            session_id=self.session_id,
            scope=self.scope,
            agent=self.agent,
            actions=self.actions,
            resources=self.resources,
        )

    def reason(self) -> str:
        why = "; ".join(self.reasons) or "outside its scope"
        return f"{self.agent} asks to run {self.command} outside scope {self.scope}: {why}"[
            :MAX_TEXT
        ]

    def details(self, *, requested_by: str) -> dict[str, Any]:
        """The JSON kept with the request (the row's `response` column)."""
        return {
            "kind": EXCEED_SCOPE,
            "command": self.command,
            "actions": list(self.actions),
            "resources": list(self.resources),
            "region": self.region,
            "reasons": list(self.reasons),
            "requested_by": requested_by,
        }


def request_key(
    *,
    session_id: str,
    scope: str,
    agent: str,
    actions: Sequence[str],
    resources: Sequence[str],
) -> str:
    """One request per session, scope, agent and set of actions and resources: order and
    repetition do not make a second request."""
    canonical = json.dumps(
        [session_id, scope, agent, sorted(set(actions)), sorted(set(resources))],
        separators=(",", ":"),
    )
    return f"{EXCEED_SCOPE}/{hashlib.sha256(canonical.encode()).hexdigest()}"


def parse_request(body: Mapping[str, Any]) -> ExceedRequest:
    """Validate a request body; raises ApprovalError (400) naming the field at fault."""
    kind = body.get("kind")
    if kind != EXCEED_SCOPE:
        raise ApprovalError(
            f"kind must be {EXCEED_SCOPE!r} (revocations are opened by the service itself)"
        )
    texts = {name: _text(body, name) for name in ("session_id", "agent", "human", "scope")}
    command = _text(body, "command", limit=MAX_TEXT)
    actions = _texts(body, "actions")
    if not actions:
        raise ApprovalError("actions must name at least one IAM action")
    region = body.get("region") or ""
    if not isinstance(region, str) or len(region) > 64:
        raise ApprovalError("region must be a short string")
    return ExceedRequest(
        session_id=texts["session_id"],
        agent=texts["agent"],
        human=texts["human"],
        scope=texts["scope"],
        command=command,
        actions=actions,
        resources=_texts(body, "resources"),
        region=region,
        reasons=_texts(body, "reasons", limit=MAX_TEXT),
    )


def _text(body: Mapping[str, Any], name: str, *, limit: int = 512) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApprovalError(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise ApprovalError(f"{name} must be at most {limit} characters")
    return value.strip()


def _texts(body: Mapping[str, Any], name: str, *, limit: int = 2048) -> tuple[str, ...]:
    value = body.get(name, [])
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise ApprovalError(f"{name} must be a list of at most {MAX_ITEMS} strings")
    if not all(isinstance(v, str) and 0 < len(v) <= limit for v in value):
        raise ApprovalError(f"{name} must hold non-empty strings of at most {limit} characters")
    return tuple(value)
