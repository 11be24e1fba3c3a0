"""`POST /v1/tasks`, `GET /v1/tasks`, `GET /v1/tasks/{id}`, `POST /v1/tasks/{id}/end`: the task
registry over HTTP, behind the same bearer tokens as the approval API. A task started here is
owned by the person whose token asked (unless the body names an `owner`).

`GET /v1/tasks/{id}` also answers with the task's scope as the scope file defines it
(`scope_document`), which is what the pre-flight gate checks an agent's calls against when it
runs under the task and cannot read the registry itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from detector.core.scope import ScopeSet
from detector.core.scope_document import scope_document
from detector.errors import ConfigError, DetectorError
from detector.state.store import StateStore
from detector.state.tasks import TASK_STATUSES, TaskRow
from detector.tasks.mint import Credentials
from detector.web.auth import Auth, json_error, unauthorized

# (scope, agent, role or None, owner, duration or None) -> the registered task and credentials
Starter = Callable[
    [str, str, str | None, str | None, timedelta | None], tuple[TaskRow, Credentials]
]


class TasksApi:
    def __init__(
        self,
        *,
        auth: Auth,
        store: StateStore,
        starter: Starter,
        scopes: ScopeSet | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.auth = auth
        self.store = store
        self.starter = starter
        self.scopes = scopes or ScopeSet()
        self._clock = clock

    def install(self, app: web.Application) -> None:
        app.router.add_post("/v1/tasks", self._start)
        app.router.add_get("/v1/tasks", self._list)
        app.router.add_get("/v1/tasks/{id}", self._one)
        app.router.add_post("/v1/tasks/{id}/end", self._end)

    async def _start(self, request: web.Request) -> web.Response:
        viewer = self.auth.viewer(request)
        if viewer is None or viewer.csrf is not None:
            return unauthorized()
        try:
            body: Any = await request.json()
        except ValueError:
            return json_error(400, "the body must be a JSON object")
        if not isinstance(body, dict):
            return json_error(400, "the body must be a JSON object")
        scope, agent = body.get("scope"), body.get("agent")
        if not isinstance(scope, str) or not isinstance(agent, str):
            return json_error(400, "'scope' and 'agent' are required strings")
        seconds = body.get("duration_seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int)):
            return json_error(400, "'duration_seconds' must be an integer")
        duration = timedelta(seconds=seconds) if seconds is not None else None
        owner = body.get("owner") or viewer.person
        role = body.get("role_arn")
        try:
            row, creds = await asyncio.to_thread(
                self.starter, scope, agent, role if isinstance(role, str) else None, owner, duration
            )
        except ConfigError as exc:
            return json_error(400, str(exc))
        except DetectorError as exc:
            return json_error(503 if exc.retriable else 502, str(exc))
        credentials = {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "SessionToken": creds.session_token,
            "Expiration": creds.expiration.isoformat().replace("+00:00", "Z"),
        }
        return web.json_response({"task": row.to_dict(), "credentials": credentials}, status=201)

    async def _list(self, request: web.Request) -> web.Response:
        if self.auth.viewer(request) is None:
            return unauthorized()
        status = request.query.get("status")
        if status is not None and status not in TASK_STATUSES:
            return json_error(400, f"status must be one of {', '.join(TASK_STATUSES)}")
        rows = await asyncio.to_thread(self.store.tasks, status=status, limit=200)
        return web.json_response({"tasks": [r.to_dict() for r in rows]})

    async def _one(self, request: web.Request) -> web.Response:
        if self.auth.viewer(request) is None:
            return unauthorized()
        row = await asyncio.to_thread(self.store.task, request.match_info["id"])
        if row is None:
            return json_error(404, "no such task")
        scope = self.scopes.get(row.scope)
        document = scope_document(scope) if scope is not None else None
        return web.json_response({"task": row.to_dict(), "scope": document})

    async def _end(self, request: web.Request) -> web.Response:
        viewer = self.auth.viewer(request)
        if viewer is None or viewer.csrf is not None:
            return unauthorized()
        task_id = request.match_info["id"]
        row = await asyncio.to_thread(self.store.end_task, task_id, at=self._clock())
        if row is None:
            return json_error(404, "no such task")
        return web.json_response({"task": row.to_dict()})
