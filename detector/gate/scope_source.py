"""Which scope the gate checks a call against: a scope file, or the task the agent runs under.

Without a task (`TRAILGUARD_TASK`), the scope is `--scopes FILE --scope NAME` (or
`TRAILGUARD_SCOPES` / `TRAILGUARD_SCOPE`), as before. Under a task, the task is looked up:
in the task registry when the gate can read the embedded state store (`--state` /
`TRAILGUARD_STATE`), else from the service (`GET /v1/tasks/{id}`). The task's scope is the
one checked, from the scope file when one is given, else as the service defines it. A task
that ended or whose credentials expired (or whose scope expired) blocks. A task that is
unknown, or cannot be looked up where the gate was told to look, gives a problem too, which
blocks every AWS call. With a scope file and nowhere to look the task up, the file's scope
is used and the verdict says the task was not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from detector.core.scope import Scope, parse_scopes
from detector.errors import ConfigError
from detector.gate.scope_cache import load_scopes
from detector.gate.service import Service
from detector.gate.task import GateTask, TaskLookupError, from_registry, from_service

LOOK_UP = (
    "run the agent under `trailguard task exec`, or set TRAILGUARD_STATE (the state store "
    "file) or TRAILGUARD_URL and TRAILGUARD_TOKEN_FILE"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopePlaces:
    """Where the gate was told to find the scope and the task."""

    scopes_path: Path | None = None
    scope_name: str | None = None
    task_id: str | None = None
    state_path: Path | None = None
    service: Service | None = None
    # Set when a service is named but cannot be used (no token): said when it is needed.
    service_problem: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    scope: Scope | None = None
    problem: str | None = None
    task: GateTask | None = None
    notes: tuple[str, ...] = ()


def resolve(places: ScopePlaces, *, environ: Mapping[str, str], at: datetime) -> Resolved:
    if places.task_id is None:
        return _from_file(places, environ)
    task_id = places.task_id
    found = _look_up(places, task_id)
    if isinstance(found, str):
        return Resolved(problem=found)
    if found is None:
        if places.scopes_path is None:
            return Resolved(problem=f"task {task_id}: the gate cannot look it up; {LOOK_UP}")
        checked = _from_file(places, environ)
        note = f"task {task_id} was not looked up (no task registry or service configured)"
        return replace(checked, notes=(*checked.notes, note))
    task = found
    ended = task.problem(at)
    if ended is not None:
        return Resolved(problem=f"{ended}, so its AWS calls are blocked", task=task)
    if places.scope_name is not None and places.scope_name != task.scope:
        return Resolved(
            problem=f"the gate was given scope {places.scope_name!r}, but task {task_id} "
            f"runs under scope {task.scope!r}",
            task=task,
        )
    scope, problem = _task_scope(places, task, environ)
    if scope is None:
        return Resolved(problem=problem, task=task)
    return Resolved(scope=scope, task=task)


def _look_up(places: ScopePlaces, task_id: str) -> GateTask | str | None:
    """The task, a problem, or None when the gate was given nowhere to look it up."""
    try:
        if places.state_path is not None:
            task = from_registry(places.state_path, task_id)
            if task is None:
                return f"task {task_id} is not in the task registry at {places.state_path}"
            if places.scopes_path is None and places.service is not None:
                # The registry names the scope; the service can say what it is.
                remote = from_service(places.service, task_id)
                if remote is not None and remote.scope == task.scope:
                    task = replace(task, scope_document=remote.scope_document)
            return task
        if places.service is not None:
            task = from_service(places.service, task_id)
            if task is None:
                return f"task {task_id} is not known to the service at {places.service.url}"
            return task
    except TaskLookupError as exc:
        return f"task {task_id}: {exc}"
    if places.service_problem is not None:
        return f"task {task_id}: {places.service_problem}"
    return None


def _task_scope(
    places: ScopePlaces, task: GateTask, environ: Mapping[str, str]
) -> tuple[Scope | None, str | None]:
    if places.scopes_path is not None:
        try:
            scope = load_scopes(places.scopes_path, environ).get(task.scope)
        except ConfigError as exc:
            return None, f"the scope file cannot be used: {exc}"
        if scope is None:
            return None, (
                f"{places.scopes_path} has no scope named {task.scope!r} (the scope of task "
                f"{task.task_id})"
            )
        return scope, None
    if task.scope_document is not None:
        source = f"the service's scope {task.scope!r}"
        try:
            (scope,) = parse_scopes({"scopes": [task.scope_document]}, source=source).scopes
        except (ConfigError, ValueError) as exc:
            return None, f"the service sent a scope the gate cannot use: {exc}"
        return scope, None
    return None, (
        f"task {task.task_id} runs under scope {task.scope!r}, but the gate has no scope file "
        "(--scopes, TRAILGUARD_SCOPES) and the service did not send its definition"
    )


def _from_file(places: ScopePlaces, environ: Mapping[str, str]) -> Resolved:
    path, name = places.scopes_path, places.scope_name
    if path is None:
        return Resolved(
            problem="no task scope: pass --scopes FILE --scope NAME or set TRAILGUARD_SCOPES"
        )
    try:
        scopes = load_scopes(path, environ)
    except ConfigError as exc:
        return Resolved(problem=f"the scope file cannot be used: {exc}")
    if name is None:
        if len(scopes) == 1:
            return Resolved(scope=scopes.scopes[0])
        return Resolved(problem=f"{path} holds {len(scopes)} scopes: name one with --scope")
    scope = scopes.get(name)
    if scope is None:
        return Resolved(problem=f"{path} has no scope named {name!r}")
    return Resolved(scope=scope)
