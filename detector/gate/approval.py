"""What an approval request means for a blocked call: pure, from the service's answer.

The gate asks the service for a second person's approval when it blocks a call under an
`on_violation: approve` scope (detector/commands/gate.py does the asking). Only an approved
request lets the call run; pending, denied and expired requests, and a service the gate
cannot reach or understand, keep it blocked. An expired request stays blocked whatever the
configured default outcome: nobody looked at it, so the call does not run unattended.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.gate.decide import Verdict

EXCEED_SCOPE = "exceed-scope"


def request_body(
    verdict: Verdict, *, line: str, session_id: str, agent: str, human: str
) -> dict[str, Any]:
    """The `POST /v1/approvals` body for a blocked verdict: every blocked call's actions,
    resources and reasons (one request for the whole line, as one call blocks the line)."""
    blocked = [c for c in verdict.calls if c.decision == "block"]
    actions = sorted({a for c in blocked for a in c.actions})
    resources = sorted({r for c in blocked for r in c.resources})
    regions = sorted({c.region for c in blocked if c.region})
    return {
        "kind": EXCEED_SCOPE,
        "session_id": session_id,
        "agent": agent,
        "human": human,
        "scope": verdict.scope,
        "command": line,
        "actions": actions,
        "resources": resources,
        "region": regions[0] if len(regions) == 1 else "",
        "reasons": [f"{c.command}: {'; '.join(c.reasons)}" for c in blocked],
    }


def askable(verdict: Verdict) -> bool:
    """Whether a second person could let this blocked line run: every blocked call names
    the IAM actions it needs (an unreadable line or unknown program is never approvable)."""
    blocked = [c for c in verdict.calls if c.decision == "block"]
    return bool(blocked) and all(c.kind in ("aws", "tool") and c.actions for c in blocked)


def with_approval(verdict: Verdict, record: Mapping[str, Any]) -> Verdict:
    """The verdict once the service answered with the stored request `record`."""
    approval = str(record.get("id", "?"))
    status = record.get("status")
    by = record.get("decided_by") or "somebody"
    calls = "\n".join(f"{c.command}: {'; '.join(c.reasons)}" for c in verdict.calls
                      if c.decision == "block")  # fmt: skip
    if status == "approved":
        reason = f"allowed by approval {approval} decided by {by}"
        notes = (*verdict.notes, f"{reason}; without it: {calls}")
        return Verdict(decision="allow", reason=reason, scope=verdict.scope,
                       calls=verdict.calls, notes=notes)  # fmt: skip
    if status == "pending":
        how = (
            f"held for a second person as approval {approval}: another person decides it with "
            f"`trailguard approvals approve {approval}` (or deny), or on the session page; "
            "run the same command again once it is approved"
        )
    elif status == "denied":
        how = f"approval {approval} was denied by {by}"
    elif status == "expired":
        how = f"approval {approval} expired before anybody decided it"
    else:
        how = f"approval {approval} has a status the gate does not know ({status!r})"
    return _blocked(verdict, f"{calls}\n{how}")


def unavailable(verdict: Verdict, problem: str) -> Verdict:
    """Blocked: the approval could not be asked for (no service, no owner, a failure)."""
    calls = "\n".join(f"{c.command}: {'; '.join(c.reasons)}" for c in verdict.calls
                      if c.decision == "block")  # fmt: skip
    why = (f"scope {verdict.scope} routes out-of-scope calls to two-person approval, but "
           f"{problem}, so the call is blocked")  # fmt: skip
    return _blocked(verdict, f"{calls}\n{why}")


def _blocked(verdict: Verdict, reason: str) -> Verdict:
    return Verdict(decision="block", reason=reason, scope=verdict.scope, calls=verdict.calls,
                   notes=verdict.notes)  # fmt: skip
