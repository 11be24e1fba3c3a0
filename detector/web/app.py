"""The approval API and the session pages, as routes on the service's aiohttp application.

    GET  /v1/approvals[?status=pending&session=ID]   JSON list, newest first
    POST /v1/approvals                               an agent's request to exceed its scope
    GET  /v1/approvals/{id}
    POST /v1/approvals/{id}/approve | deny           JSON {"note": ...} or a form
    POST /v1/sessions/{id}/revoke                    people in `api.revokers` only
    GET  /sessions, /sessions/{id}                   HTML
    GET  /login, POST /login, POST /logout           the pages' token login

Every route needs a person: a bearer token, or the login cookie (see auth.py). The API
answers 401 without one; a page answers 401 with the login form.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from detector.approvals.decisions import ApprovalError
from detector.approvals.exceed import EXCEED_SCOPE, parse_request
from detector.approvals.gate import StoreApprovalGate
from detector.core.findings import Response
from detector.core.scope import ScopeSet
from detector.core.session_view import SessionView
from detector.state.approvals import STATUSES, ApprovalRow
from detector.state.store import StateStore
from detector.web import pages
from detector.web.auth import Auth, Viewer, csrf_ok, unauthorized
from detector.web.revoke import manual_revocation
from detector.web.session_gate import linked_task, session_verdicts

logger = logging.getLogger(__name__)

SessionLookup = Callable[[str], SessionView | None]
HTML = "text/html"
MAX_NOTE = 500
MAX_LISTED = 200


def _no_live_sessions(session_id: str) -> SessionView | None:
    return None


class PeopleApi:
    """Installs its routes on an application (`HttpServer(routes=[api.install])`)."""

    def __init__(
        self,
        *,
        gate: StoreApprovalGate,
        store: StateStore,
        auth: Auth,
        scopes: ScopeSet | None = None,
        live: SessionLookup = _no_live_sessions,
        revokers: Iterable[str] = (),
        dry_run: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.gate = gate
        self.store = store
        self.auth = auth
        self.scopes = scopes or ScopeSet()
        self.live = live
        self.revokers = frozenset(p.strip().casefold() for p in revokers)
        # Whether responses are carried out (`responses.enabled`), for revocations made here.
        self.dry_run = dry_run
        self._clock = clock

    def install(self, app: web.Application) -> None:
        app.router.add_get("/v1/approvals", self._list)
        app.router.add_post("/v1/approvals", self._request)
        app.router.add_get("/v1/approvals/{id}", self._one)
        app.router.add_post("/v1/approvals/{id}/{decision:approve|deny}", self._decide)
        app.router.add_post("/v1/sessions/{id}/revoke", self._revoke)
        app.router.add_get("/sessions", self._sessions)
        app.router.add_get("/sessions/{id}", self._session)
        app.router.add_get("/login", self._login_form)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)

    # -- API --------------------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        if self.auth.viewer(request) is None:
            return unauthorized()
        status = request.query.get("status")
        if status is not None and status not in STATUSES:
            return web.json_response(
                {"error": f"status must be one of {', '.join(STATUSES)}"}, status=400
            )
        session = request.query.get("session")
        rows = await asyncio.to_thread(
            self.store.approvals, status=status, session_id=session, limit=MAX_LISTED
        )
        return web.json_response({"approvals": [r.to_record() for r in rows]})

    async def _one(self, request: web.Request) -> web.Response:
        if self.auth.viewer(request) is None:
            return unauthorized()
        row = await asyncio.to_thread(self.store.approval, request.match_info["id"])
        if row is None:
            return web.json_response({"error": "no such approval"}, status=404)
        return web.json_response(_record(row))

    async def _request(self, request: web.Request) -> web.Response:
        """An agent's request to exceed its scope (from `trailguard gate`): opened, or the
        request already stored for the same key returned with its decision."""
        viewer = self.auth.viewer(request)
        if viewer is None:
            return unauthorized()
        fields = await _fields(request, form=False)
        try:
            wanted = parse_request(fields)
            row = await self.gate.open_exceed(wanted, requested_by=viewer.person)
        except ApprovalError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        return web.json_response(_record(row), status=200)

    async def _decide(self, request: web.Request) -> web.Response:
        form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
        fields = await _fields(request, form=form)
        viewer = self.auth.viewer(request)
        if viewer is None:
            self.gate.count_refused()
            if form:
                return _html(pages.login_page(next_path=_next(fields)), status=401)
            return unauthorized()
        if not csrf_ok(viewer, _text(fields.get("csrf"))):
            self.gate.count_refused()
            return self._refused(form, 403, "the form is stale: reload the page", viewer, fields)
        note = (_text(fields.get("note")) or "").strip()[:MAX_NOTE] or None
        try:
            row = await self.gate.decide(
                request.match_info["id"],
                approve=request.match_info["decision"] == "approve",
                person=viewer.person,
                note=note,
            )
        except ApprovalError as exc:
            return self._refused(form, exc.status, str(exc), viewer, fields)
        if form:
            raise web.HTTPSeeOther(_next(fields, default=_session_path(row.session_id)))
        return web.json_response(row.to_record())

    async def _revoke(self, request: web.Request) -> web.Response:
        form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
        fields = await _fields(request, form=form)
        session_id = request.match_info["id"]
        viewer = self.auth.viewer(request)
        if viewer is None:
            self.gate.count_refused()
            if form:
                return _html(pages.login_page(next_path=_session_path(session_id)), status=401)
            return unauthorized()
        if not csrf_ok(viewer, _text(fields.get("csrf"))):
            self.gate.count_refused()
            return self._refused(form, 403, "the form is stale: reload the page", viewer, fields)
        if not self.may_revoke(viewer):
            self.gate.count_refused()
            message = f"{viewer.person} is not among the people who may revoke (api.revokers)"
            return self._refused(form, 403, message, viewer, fields)
        target = await self._revocation(session_id, viewer.person)
        if target is None:
            return self._refused(form, 404, f"nothing is known to revoke {session_id}", viewer, {})
        note = (_text(fields.get("note")) or "").strip()[:MAX_NOTE] or None
        try:
            row = await self.gate.revoke_now(target, person=viewer.person, note=note)
        except ApprovalError as exc:
            return self._refused(form, exc.status, str(exc), viewer, fields)
        if form:
            raise web.HTTPSeeOther(_next(fields, default=_session_path(session_id)))
        return web.json_response(row.to_record())

    def may_revoke(self, viewer: Viewer) -> bool:
        return viewer.person.strip().casefold() in self.revokers

    async def _revocation(self, session_id: str, person: str) -> Response | None:
        def read() -> tuple[str | None, Mapping[str, Any] | None]:
            summary = self.store.session_summary(session_id)
            decided = [
                e.record
                for e in self.store.timeline(session_id)
                if e.kind == "response" and e.record.get("action") == "revoke-session"
            ]
            return (summary.scope if summary else None), (decided[-1] if decided else None)

        scope, decided = await asyncio.to_thread(read)
        return manual_revocation(
            session_id,
            live=self.live(session_id),
            decided=decided,
            scope=scope,
            person=person,
            now=self._clock(),
            dry_run=self.dry_run,
        )

    def _refused(
        self, form: bool, status: int, message: str, viewer: Viewer, fields: Mapping[str, Any]
    ) -> web.Response:
        if form:
            page = pages.error_page(status, message, back=_next(fields), viewer=viewer)
            return _html(page, status=status)
        return web.json_response({"error": message}, status=status)

    # -- pages ------------------------------------------------------------------------------

    async def _sessions(self, request: web.Request) -> web.Response:
        viewer = self.auth.viewer(request)
        if viewer is None:
            return _html(pages.login_page(next_path="/sessions"), status=401)
        summaries = await asyncio.to_thread(self.store.recent_sessions, limit=MAX_LISTED)
        waiting = await asyncio.to_thread(self.store.approvals, status="pending", limit=1000)
        pending: dict[str, int] = {}
        for row in waiting:
            pending[row.session_id] = pending.get(row.session_id, 0) + 1
        live = {s.session_id: v for s in summaries if (v := self.live(s.session_id)) is not None}
        return _html(pages.sessions_page(summaries, viewer=viewer, live=live, pending=pending))

    async def _session(self, request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        viewer = self.auth.viewer(request)
        if viewer is None:
            return _html(pages.login_page(next_path=_session_path(session_id)), status=401)

        live = self.live(session_id)  # on the loop: the pipeline's state belongs to it

        def read() -> pages.SessionPage:
            summary = self.store.session_summary(session_id)
            task = linked_task(self.store, session_id, summary, live)
            scope_name = (summary.scope if summary else None) or (task.scope if task else None)
            return pages.SessionPage(
                session_id=session_id,
                summary=summary,
                live=None,
                may_revoke=self.may_revoke(viewer),
                scope=self.scopes.get(scope_name) if scope_name else None,
                entries=self.store.timeline(session_id),
                approvals=self.store.approvals(session_id=session_id, limit=MAX_LISTED),
                viewer=viewer,
                verdicts=session_verdicts(self.store, session_id, task, limit=MAX_LISTED),
                task=task,
            )

        page = await asyncio.to_thread(read)
        known = page.approvals or page.verdicts or page.task is not None
        if page.summary is None and live is None and not known:
            message = f"No agent session {session_id} with findings is known here."
            return _html(pages.error_page(404, message, back="/sessions", viewer=viewer), 404)
        page = pages.SessionPage(
            session_id=page.session_id,
            summary=page.summary,
            live=live,
            may_revoke=page.may_revoke
            and (live is not None or any(e.kind == "response" for e in page.entries)),
            dry_run=self.dry_run,
            scope=page.scope,
            entries=page.entries,
            approvals=page.approvals,
            viewer=viewer,
            verdicts=page.verdicts,
            task=page.task,
        )
        return _html(pages.session_page(page))

    async def _login_form(self, request: web.Request) -> web.Response:
        return _html(pages.login_page(next_path=_next(request.query)))

    async def _login(self, request: web.Request) -> web.Response:
        fields = await _fields(request, form=True)
        target = _next(fields)
        response = web.HTTPSeeOther(target)
        if self.auth.login(_text(fields.get("token")) or "", response) is None:
            page = pages.login_page(next_path=target, error="That token is not valid.")
            return _html(page, status=401)
        raise response

    async def _logout(self, request: web.Request) -> web.Response:
        fields = await _fields(request, form=True)
        viewer = self.auth.viewer(request)
        if viewer is not None and not csrf_ok(viewer, _text(fields.get("csrf"))):
            return _html(pages.error_page(403, "stale form", back="/sessions", viewer=viewer), 403)
        response = web.HTTPSeeOther("/login")
        self.auth.logout(request, response)
        raise response


def _record(row: ApprovalRow) -> dict[str, Any]:
    record = row.to_record()
    if row.action == EXCEED_SCOPE:
        record["request"] = dict(row.response)
    return record


async def _fields(request: web.Request, *, form: bool) -> Mapping[str, Any]:
    if form:
        return await request.post()
    if request.can_read_body and request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body is not JSON") from None
        return body if isinstance(body, dict) else {}
    return {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _next(fields: Mapping[str, Any], *, default: str = "/sessions") -> str:
    """Where a form goes back to: only this service's own session pages."""
    target = _text(fields.get("next")) or default
    if target == "/sessions" or (target.startswith("/sessions/") and "//" not in target):
        return target
    return default


def _session_path(session_id: str) -> str:
    return f"/sessions/{quote(session_id, safe='')}"


def _html(body: str, status: int = 200) -> web.Response:
    response = web.Response(text=body, status=status, content_type=HTML, charset="utf-8")
    # The pages show who did what: nothing to cache, nothing to frame.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    return response
