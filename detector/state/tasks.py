"""What the state store keeps of agent tasks: one row per task and the credentials minted for it.

A task is `active` from `task start` until `task end` (or the end of `task exec`), then
`ended`; `expires_at` is when its credentials stop working. The detector binds events signed
with the task's access key, principal id or source identity to the task's scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ACTIVE = "active"
ENDED = "ended"
TASK_STATUSES = (ACTIVE, ENDED)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRow:
    """One agent task.

    source_identity  `agent-<agent>-<task id>`, set on the session and carried by every
                     CloudTrail event its credentials (and roles chained from them) sign
    principal_id     the assumed-role id `AROA...:<session name>` AssumeRole returned
    """

    task_id: str
    agent: str
    owner: str | None
    scope: str
    role_arn: str
    source_identity: str
    created_at: datetime
    expires_at: datetime
    status: str = ACTIVE
    ended_at: datetime | None = None
    access_key_id: str | None = None
    principal_id: str | None = None

    def active_at(self, at: datetime) -> bool:
        """Whether the task's credentials are still meant to be in use at `at`."""
        return self.status == ACTIVE and at < self.expires_at

    def to_dict(self) -> dict[str, object]:
        return {
            "task_id": self.task_id,
            "agent": self.agent,
            "owner": self.owner,
            "scope": self.scope,
            "role_arn": self.role_arn,
            "source_identity": self.source_identity,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "status": self.status,
            "ended_at": _iso(self.ended_at),
            "access_key_id": self.access_key_id,
            "principal_id": self.principal_id,
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
