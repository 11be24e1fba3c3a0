"""The task an agent runs under (`TRAILGUARD_TASK`), as the gate needs it: who it is for, its
scope, and whether it still stands.

Two places can say: the task registry itself, when the gate can read the embedded state
store (an SQLite file: `--state FILE` / `TRAILGUARD_STATE`, set by `trailguard task exec`),
or the service (`GET /v1/tasks/{id}`, which also sends the scope's definition). The SQLite
file is opened read-only with the standard library, without the state store's own module
(which would load the whole store and its migrations), and sqlite3 is imported only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detector.gate.service import Service, ServiceError

LOOKUP_TIMEOUT_SECONDS = 2.0


class TaskLookupError(Exception):
    """The task could not be read: the message says from where and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GateTask:
    """What the registry says about one task. `scope_document` is the scope's definition
    when the service sent it (a scope file's entry), else None."""

    task_id: str
    agent: str
    owner: str | None
    scope: str
    status: str
    expires_at: datetime
    ended_at: datetime | None = None
    scope_document: dict[str, Any] | None = None

    def problem(self, at: datetime) -> str | None:
        """Why the task no longer stands at `at`, or None while it does."""
        if self.status != "active":
            when = f" at {_stamp(self.ended_at)}" if self.ended_at else ""
            return f"task {self.task_id} (scope {self.scope}) ended{when}"
        if at >= self.expires_at:
            return (
                f"task {self.task_id} (scope {self.scope}): its credentials expired at "
                f"{_stamp(self.expires_at)}"
            )
        return None


def from_registry(path: Path, task_id: str) -> GateTask | None:
    """The task as the SQLite state store at `path` has it; None when it is not there."""
    import sqlite3

    if not path.is_file():
        raise TaskLookupError(f"no state store at {path}")
    try:
        # Read-only: the gate never writes the registry, and must not create a file.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
        try:
            row = conn.execute(
                "SELECT task_id, agent, owner, scope, status, expires_at, ended_at "
                "FROM tasks WHERE task_id = ?",
                (task_id,),
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise TaskLookupError(f"the task registry at {path} cannot be read ({exc})") from None
    if row is None:
        return None
    try:
        return GateTask(
            task_id=row[0],
            agent=row[1],
            owner=row[2],
            scope=row[3],
            status=row[4],
            expires_at=_iso_time(row[5]),
            ended_at=_iso_time(row[6]) if row[6] else None,
        )
    except (TypeError, ValueError) as exc:
        raise TaskLookupError(f"task {task_id} in {path} is damaged ({exc})") from None


def from_service(service: Service, task_id: str) -> GateTask | None:
    """The task and its scope's definition from `GET /v1/tasks/{id}`; None for a 404."""
    from urllib.parse import quote

    try:
        answer = service.call(
            "GET", f"/v1/tasks/{quote(task_id, safe='')}", timeout=LOOKUP_TIMEOUT_SECONDS
        )
    except ServiceError as exc:
        if str(exc).startswith("HTTP 404"):
            return None
        raise TaskLookupError(f"the service at {service.url} did not answer ({exc})") from None
    task = answer.get("task") if isinstance(answer, dict) else None
    document = answer.get("scope") if isinstance(answer, dict) else None
    unreadable = TaskLookupError(f"the service at {service.url} sent no task it can read")
    if not isinstance(task, dict):
        raise unreadable
    try:
        ended = task.get("ended_at")
        return GateTask(
            task_id=str(task["task_id"]),
            agent=str(task["agent"]),
            owner=task.get("owner"),
            scope=str(task["scope"]),
            status=str(task["status"]),
            expires_at=_iso_time(task["expires_at"]),
            ended_at=_iso_time(ended) if ended else None,
            scope_document=document if isinstance(document, dict) else None,
        )
    except (KeyError, TypeError, ValueError):
        raise unreadable from None


def _iso_time(text: str) -> datetime:
    # fromisoformat, not strptime: strptime imports its own module (calendar, locale) on
    # first use, and the registry's fixed-width "....000000Z" text is ISO 8601.
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")
