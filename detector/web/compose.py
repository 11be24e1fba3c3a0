"""Builds the two-person rule and the people-facing routes for `trailguard run`.

What the service gets: the gate (for the responders), the extra sinks (the session timeline
recorder, and the approval requests when anything can need approval), the routes for the
HTTP server, and the sweep task that expires requests and releases decisions made elsewhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from detector.approvals.gate import StoreApprovalGate
from detector.approvals.requests import ApprovalRequests
from detector.approvals.settings import api_settings, approval_settings, required_scopes
from detector.approvals.tokens import load_tokens
from detector.config import Settings
from detector.core.scope import ScopeSet
from detector.http_server import RouteInstaller
from detector.metrics import ApprovalMetrics, GateVerdictMetrics, Metrics
from detector.sinks import Sink
from detector.state.store import StateStore
from detector.tasks.starter import TaskStarter
from detector.web.app import PeopleApi, SessionLookup
from detector.web.auth import Auth
from detector.web.gate_verdicts import GateVerdictsApi
from detector.web.tasks import TasksApi
from detector.web.timeline import TimelineRecorder

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class PeopleParts:
    gate: StoreApprovalGate
    api: PeopleApi
    sinks: list[Sink] = field(default_factory=list)
    tasks: TasksApi | None = None
    verdicts: GateVerdictsApi | None = None

    @property
    def routes(self) -> list[RouteInstaller]:
        routes: list[RouteInstaller] = [self.api.install]
        if self.tasks is not None:
            routes.append(self.tasks.install)
        if self.verdicts is not None:
            routes.append(self.verdicts.install)
        return routes


def check(settings: Settings) -> None:
    """Validate `api:`, `approvals:` and the token file without starting anything."""
    approval_settings(settings)
    load_tokens(api_settings(settings), source=settings.source)


def people_parts(
    settings: Settings,
    *,
    store: StateStore,
    scopes: ScopeSet,
    metrics: Metrics | None = None,
    live: SessionLookup | None = None,
) -> PeopleParts:
    approvals = approval_settings(settings)
    api = api_settings(settings)
    tokens = load_tokens(api, source=settings.source)
    if not len(tokens):
        logger.warning(
            "no API tokens configured (api.tokens_file, api.tokens): the approval API and the "
            "session pages refuse everyone"
        )
    gate = StoreApprovalGate(
        store,
        approvals,
        required=settings.responses.approval == "required",
        scopes=required_scopes({s.name: s.on_violation for s in scopes.scopes}),
        metrics=ApprovalMetrics(metrics) if metrics is not None else None,
    )
    public = settings.http.public_url or ""
    auth = Auth(tokens, login_seconds=api.login_seconds, secure_cookie=public.startswith("https"))
    people = PeopleApi(
        gate=gate,
        store=store,
        auth=auth,
        scopes=scopes,
        revokers=api.revokers,
        dry_run=not settings.responses.enabled,
    )
    if live is not None:
        people.live = live
    sinks: list[Sink] = [TimelineRecorder(store, cap=api.timeline_entries)]
    if gate.required or gate.scopes:
        sinks.append(ApprovalRequests(gate))
    tasks = TasksApi(
        auth=auth,
        store=store,
        starter=TaskStarter(settings, scopes=scopes, store=store),
        scopes=scopes,
    )
    verdicts = GateVerdictsApi(
        auth=auth,
        store=store,
        cap=api.timeline_entries,
        metrics=GateVerdictMetrics(metrics) if metrics is not None else None,
    )
    return PeopleParts(gate=gate, api=people, sinks=sinks, tasks=tasks, verdicts=verdicts)


def session_url(settings: Settings, session_id: str) -> str | None:
    """The session page alerts link to: `<http.public_url>/sessions/<id>`, when configured."""
    from urllib.parse import quote

    base = settings.http.public_url
    if not base:
        return None
    return f"{base.rstrip('/')}/sessions/{quote(session_id, safe='')}"


def scopes_for(settings: Settings, scopes_path: Path | None) -> ScopeSet:
    from detector.wiring import scope_set

    return scope_set(settings, scopes_path)
