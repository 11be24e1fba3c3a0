"""What the state store keeps of the pre-flight gate's verdicts (migration 5).

The gate decides before a tool call runs and sends each verdict, allowed or blocked, to the
service. One row per verdict id: the gate makes the id, so a send it retries (or a network
that delivers twice) is stored once. `session_id` is the session the gate knew (the task
id under `trailguard task exec`); `task_id` and `access_key_id` (the task's credentials,
the key id only) let the session page of the CloudTrail session those credentials made show
what was blocked before it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

ALLOW = "allow"
BLOCK = "block"
DECISIONS = (ALLOW, BLOCK)

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class GateVerdictRow:
    """One verdict of the gate, as stored.

    decided_at   the gate's clock when it decided; received_at the service's when stored
    sent_by      the person whose token the gate sent it with
    detail       the verdict's calls (actions, resources, region, ...) and notes
    """

    verdict_id: str
    session_id: str
    decision: str
    reason: str
    decided_at: datetime
    received_at: datetime
    task_id: str | None = None
    access_key_id: str | None = None
    agent: str | None = None
    owner: str | None = None
    scope: str | None = None
    command: str | None = None
    tool_name: str | None = None
    hook: str | None = None
    sent_by: str | None = None
    detail: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False)

    @property
    def blocked(self) -> bool:
        return self.decision == BLOCK

    def to_record(self) -> dict[str, Any]:
        return {
            "type": "gate-verdict",
            "id": self.verdict_id,
            "session_id": self.session_id,
            "task_id": self.task_id,
            "access_key_id": self.access_key_id,
            "agent": self.agent,
            "owner": self.owner,
            "scope": self.scope,
            "decision": self.decision,
            "reason": self.reason,
            "command": self.command,
            "tool_name": self.tool_name,
            "hook": self.hook,
            "time": _iso(self.decided_at),
            "received_at": _iso(self.received_at),
            "sent_by": self.sent_by,
            "calls": list(self.detail.get("calls", ())),
            "notes": list(self.detail.get("notes", ())),
        }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# The stored columns, in the order both stores read and write them.
COLUMN_NAMES = (
    "verdict_id", "session_id", "task_id", "access_key_id", "agent", "owner", "scope",
    "decision", "reason", "command", "tool_name", "hook", "decided_at", "received_at",
    "sent_by", "detail",
)  # fmt: skip
COLUMNS = ", ".join(COLUMN_NAMES)
_TIMES = frozenset({"decided_at", "received_at"})


def column_values(
    row: GateVerdictRow, *, time: Callable[[datetime], Any], detail: Callable[[Any], Any]
) -> tuple[Any, ...]:
    """The row's values in COLUMNS order; each store says how it writes times and detail."""
    values = []
    for name in COLUMN_NAMES:
        value = getattr(row, name)
        if name in _TIMES:
            value = time(value)
        elif name == "detail":
            value = detail(dict(value))
        values.append(value)
    return tuple(values)


def from_columns(
    values: Sequence[Any], *, time: Callable[[Any], datetime], detail: Callable[[Any], Any]
) -> GateVerdictRow:
    """A row read back in COLUMNS order; each store says how it reads times and detail."""
    fields: dict[str, Any] = dict(zip(COLUMN_NAMES, values, strict=True))
    for name in _TIMES:
        fields[name] = time(fields[name])
    fields["detail"] = detail(fields["detail"])
    return GateVerdictRow(**fields)
