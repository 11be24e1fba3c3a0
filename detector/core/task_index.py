"""Registered agent tasks as the pipeline sees them: which credentials belong to which task.

The task registry lives in the state store; the service (or `replay --config`) reads it and
hands the pipeline a `TaskIndex`, so binding stays a pure function of the event, the session
and this data. A session whose access key, principal id or source identity is a registered
task's is bound to that task's scope authoritatively (attribution source `registry`): the
credentials were minted for it, nothing is guessed from names or markers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from detector.core.session_view import SessionView

REGISTRY = "registry"


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskBinding:
    """One registered task.

    ends_at  when its credentials stop being the task's: `task end`, or their expiry
    ended    True when `task end` ended it (rather than expiry alone)
    """

    task_id: str
    agent: str
    scope: str
    source_identity: str
    ends_at: datetime
    ended: bool = False
    owner: str | None = None
    access_key_id: str | None = None
    principal_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaskIndex:
    """Tasks looked up by access key id, principal id and source identity."""

    tasks: tuple[TaskBinding, ...] = ()
    _by_key: dict[str, TaskBinding] = field(default_factory=dict, compare=False, repr=False)
    _by_principal: dict[str, TaskBinding] = field(default_factory=dict, compare=False, repr=False)
    _by_identity: dict[str, TaskBinding] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, tasks: Iterable[TaskBinding]) -> TaskIndex:
        listed = tuple(tasks)
        return cls(
            listed,
            {t.access_key_id: t for t in listed if t.access_key_id},
            {t.principal_id: t for t in listed if t.principal_id},
            {t.source_identity: t for t in listed},
        )

    def find(self, session: SessionView) -> tuple[TaskBinding, str] | None:
        """The task whose credentials these are, and what matched; the access key is the most
        specific (one credential set), the source identity the widest (it follows role
        chains made from the task's credentials)."""
        if session.access_key_id and (task := self._by_key.get(session.access_key_id)):
            return task, f"access key {session.access_key_id}"
        if session.principal_id and (task := self._by_principal.get(session.principal_id)):
            return task, f"principal id {session.principal_id}"
        if session.source_identity and (task := self._by_identity.get(session.source_identity)):
            return task, f"source identity {session.source_identity}"
        return None

    def __len__(self) -> int:
        return len(self.tasks)
