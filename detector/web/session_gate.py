"""Which registered task a session page is about, and the gate's verdicts to show on it.

A gate running under `trailguard task exec` reports its verdicts with the task id as their
session, so `/sessions/<task id>` is the task's own page, and it exists even when every AWS
call was blocked before it ran (nothing reached CloudTrail). The CloudTrail session the
task's credentials make (`/sessions/ses-...`) is the same task: its role session name and
source identity are `agent-<agent>-<task id>`, which names the task, and its page shows the
task's verdicts too.
"""

from __future__ import annotations

import re

from detector.core.session_view import SessionView
from detector.state.approvals import SessionSummary
from detector.state.gate_verdicts import GateVerdictRow
from detector.state.store import StateStore
from detector.state.tasks import TaskRow

# `agent-<agent>-<12 hex>`, the session name and source identity `task start` sets.
_TASK_SESSION = re.compile(r"agent-.+-([0-9a-f]{12})")


def linked_task(
    store: StateStore,
    session_id: str,
    summary: SessionSummary | None,
    live: SessionView | None,
) -> TaskRow | None:
    task = store.task(session_id)
    if task is not None:
        return task
    names = []
    if live is not None:
        names += [live.source_identity, live.session_name]
    if summary is not None and summary.principal:
        names.append(summary.principal.rsplit("/", 1)[-1])
    for name in names:
        found = _TASK_SESSION.fullmatch(name or "")
        if found is None:
            continue
        task = store.task(found.group(1))
        # The name alone could be anyone's: the registry must have minted it for the task.
        if task is not None and task.source_identity == name:
            return task
    return None


def session_verdicts(
    store: StateStore, session_id: str, task: TaskRow | None, *, limit: int
) -> list[GateVerdictRow]:
    """The session's verdicts and its task's, newest first, each once."""
    found = {v.verdict_id: v for v in store.gate_verdicts(session_id=session_id, limit=limit)}
    if task is not None and task.task_id != session_id:
        for v in store.gate_verdicts(task_id=task.task_id, limit=limit):
            found.setdefault(v.verdict_id, v)
    ordered = sorted(found.values(), key=lambda v: v.decided_at, reverse=True)
    return ordered[:limit]
