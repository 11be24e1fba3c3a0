"""One step of the pipeline: a parsed CloudTrail event in, findings and decisions out.

`replay` and the always-on service both drive this same object; they differ only in where
events come from and where the results go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from detector.core.actions import resolve_actions
from detector.core.bursts import DeniedBurstDetector
from detector.core.catalog import RiskCatalog
from detector.core.combine import SessionSignals, combine, step_down
from detector.core.decide import Decider
from detector.core.dedup import EventIdWindow
from detector.core.events import CloudTrailEvent
from detector.core.findings import Alert, Finding, Response
from detector.core.learned import Baseline, Drained, Habits
from detector.core.policy import EventContext, SeverityPolicy, judge, make_finding
from detector.core.resources import extract_resources
from detector.core.scope import Scope, ScopeSet, ScopeVerdict, stamp
from detector.core.sequences import SequenceDetector, SequenceSettings, sequence_finding
from detector.core.session_view import SessionView
from detector.core.sessions import SessionTracker
from detector.core.state_delta import (
    SEPARATOR,
    RowsBuilder,
    SessionParts,
    Snapshots,
    StateDelta,
    split,
)
from detector.core.task_index import REGISTRY, TaskBinding, TaskIndex
from detector.core.taxonomy import CredentialRelation, SessionKind, Severity
from detector.errors import StateError


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """What one event produced. A duplicate event produces nothing."""

    event: CloudTrailEvent
    duplicate: bool = False
    session: SessionView | None = None
    findings: tuple[Finding, ...] = ()
    alerts: tuple[Alert, ...] = ()
    responses: tuple[Response, ...] = ()


# 2: cut into rows (core/state_delta.py): sessions and links keyed by id, open alerts kept
# per session, the eventID window in chunks. A version-1 state is restored and saved whole.
STATE_VERSION = 2
# Agent sessions already flagged as running on a person's credentials: {session id: true}.
FLAGGED = "flagged_human_credentials"


class Pipeline:
    """Attribution, scope check, catalogue, policy and decisions for a stream of events.

    State (sessions, scope bindings, open alerts, bursts, the eventID window) lives here and
    can be snapshotted and restored, so a restarted service resumes without re-alerting.
    """

    def __init__(
        self,
        *,
        catalog: RiskCatalog,
        scopes: ScopeSet,
        tracker: SessionTracker,
        policy: SeverityPolicy,
        responses_enabled: bool = False,
        dedup_capacity: int = 250_000,
        tasks: TaskIndex | None = None,
        baselines: Sequence[Baseline] = (),
    ) -> None:
        self.catalog = catalog
        self.baselines = tuple(baselines)
        self.tasks = tasks or TaskIndex()
        self.scopes = scopes
        self.tracker = tracker
        self.policy = policy
        self.decider = Decider(policy, responses_enabled=responses_enabled)
        self.dedup = EventIdWindow(dedup_capacity)
        self.bursts = DeniedBurstDetector(
            threshold=policy.burst_threshold, window_seconds=policy.burst_window_seconds
        )
        self.sequences = SequenceDetector(
            SequenceSettings(
                window_seconds=policy.sequence_window_seconds,
                lateness_seconds=policy.sequence_lateness_seconds,
                recon_distinct_reads=policy.recon_distinct_reads,
                recon_denied_calls=policy.recon_denied_calls,
                recon_window_seconds=policy.recon_window_seconds,
            )
        )
        # session_id -> (the view the binding was computed for, the view bound, its scope);
        # the view alone when nothing bound it (most sessions: a tuple per session costs 80
        # bytes at a million of them).
        self._bindings: dict[str, _Binding] = {}
        self._task_of: dict[str, TaskBinding] = {}
        self._flagged_human_credentials: set[str] = set()
        # What each session raised that makes its baseline findings page (core/combine.py).
        self.signals = SessionSignals()
        # Sessions changed other than by their own events (drained findings), since `saved`;
        # None until `track_changes`.
        self._touched: set[str] | None = None
        # Whether the next delta must hold everything: nothing was saved as rows yet.
        self._whole = True

    def set_tasks(self, tasks: TaskIndex) -> None:
        """Use a fresh copy of the task registry (the service re-reads it at every flush)."""
        self.tasks = tasks
        self._bindings.clear()
        self._task_of.clear()

    def process(self, event: CloudTrailEvent) -> StepResult:
        if self.dedup.seen(event.event_id):
            return StepResult(event=event, duplicate=True)
        session = self.tracker.observe(event)
        for dropped in self.tracker.drain_dropped():
            self._forget(dropped)
        session, scope = self._bind(session)
        actions = resolve_actions(event.event_source, event.event_name)
        resources = extract_resources(event)
        classifications = tuple(self.catalog.classify(event, action) for action in actions)
        verdict = None
        if scope is not None:
            verdict = scope.evaluate(
                actions=actions,
                resources=resources,
                region=event.aws_region,
                account=event.account_id,
                at=event.event_time,
            )
            task = self._task_of.get(session.session_id)
            if task is not None:
                verdict = _task_verdict(verdict, task)
        ctx = EventContext(
            event=event,
            session=session,
            actions=actions,
            resources=resources,
            classifications=classifications,
            scope=scope.name if scope else None,
            verdict=verdict,
        )
        findings = judge(ctx, self.policy)
        findings.extend(self._session_findings(ctx))
        if self.baselines:
            # What someone flagged is not normal: no baseline learns from it. Decided on the
            # catalogue's own severities, so a step-down never changes what is learned.
            learn = not any(f.severity >= self.policy.learn_below for f in findings)
            if self.policy.habitual_step_down:
                findings = self._step_down(ctx, findings)
            self.signals.observe(findings)
            sid = session.session_id
            for baseline in self.baselines:
                found = [
                    combine(f, self.signals.of(sid), self.policy)
                    for f in baseline.observe(ctx, tuple(findings), learn=learn)
                ]
                self.signals.observe(found)
                findings.extend(found)
            self.signals.mark(event.event_id, sid)
        alerts, responses = self.decider.decide(
            findings, session, on_violation=scope.on_violation if scope else None
        )
        return StepResult(
            event=event,
            session=session,
            findings=tuple(findings),
            alerts=tuple(alerts),
            responses=tuple(responses),
        )

    def drain(self) -> Drained:
        """Findings from the baselines' buffered work, decided like any other findings."""
        found: list[Finding] = []
        for baseline in self.baselines:
            found.extend(
                combine(f, self.signals.at_event(f), self.policy) for f in baseline.drain()
            )
        self.signals.drained()
        if not found:
            return Drained()
        alerts: list[Alert] = []
        responses: list[Response] = []
        for finding in found:
            if self._touched is not None:
                self._touched.add(finding.session_id)
            session = self.tracker.get(finding.session_id)
            if session is None:
                continue  # left the tracker since: nothing to page or revoke about
            cached = self._bindings.get(finding.session_id)
            bound, scope = _bound(cached) if cached is not None else (session, None)
            more_alerts, more_responses = self.decider.decide(
                [finding], bound, on_violation=scope.on_violation if scope else None
            )
            alerts.extend(more_alerts)
            responses.extend(more_responses)
        return Drained(findings=tuple(found), alerts=tuple(alerts), responses=tuple(responses))

    def _step_down(self, ctx: EventContext, findings: list[Finding]) -> list[Finding]:
        """The catalogue's findings one step lower where a baseline finds the action habitual."""
        habits = [b for b in self.baselines if isinstance(b, Habits)]
        if not habits or not findings:
            return findings
        return step_down(
            ctx, findings, lambda action: any(h.habitual(ctx, action) for h in habits), self.policy
        )

    def evict_idle(self, before: datetime) -> int:
        """Forget sessions whose last event is older than `before`; returns how many."""
        count = self.tracker.evict_idle(before)
        for dropped in self.tracker.drain_dropped():
            self._forget(dropped)
        return count

    def _forget(self, session_id: str) -> None:
        self._bindings.pop(session_id, None)
        self._task_of.pop(session_id, None)
        self._flagged_human_credentials.discard(session_id)
        self.bursts.forget(session_id)
        self.sequences.forget(session_id)
        self.decider.forget(session_id)
        self.signals.forget(session_id)
        for baseline in self.baselines:
            baseline.forget(session_id)

    def _bind(self, session: SessionView) -> tuple[SessionView, Scope | None]:
        """Bind the session to its task scope; re-bind only when attribution learned more."""
        cached = self._bindings.get(session.session_id)
        if cached is session:
            return session, None
        if isinstance(cached, tuple) and cached[0] is session:
            return cached[1], cached[2]
        observed = session
        bound = self._bind_task(session)
        if bound is not None:
            self._bindings[session.session_id] = (observed, *bound)
            return bound
        scope = self.scopes.bind(session) if len(self.scopes) else None
        if scope is not None and (
            session.kind is not SessionKind.AGENT
            or (scope.names_credentials and session.credentials is CredentialRelation.INHERITED)
        ):
            # A session bound to a task scope is an agent task session, whatever it looked like;
            # a scope that names the credential set also marks them as minted for the task.
            session = self.tracker.promote(
                session.session_id,
                agent=session.agent,
                evidence=f"bound to scope {scope.name}",
                scope_binding=scope.name if scope.names_credentials else None,
            )
            observed = session
        self._bindings[session.session_id] = (
            session if scope is None and observed is session else (observed, session, scope)
        )
        return session, scope

    def _bind_task(self, session: SessionView) -> tuple[SessionView, Scope] | None:
        """A registered task's credentials: its agent, owner and scope, no guessing."""
        found = self.tasks.find(session) if len(self.tasks) else None
        if found is None:
            return None
        task, matched = found
        scope = self.scopes.get(task.scope)
        if scope is None:
            return None
        self._task_of[session.session_id] = task
        evidence = f"attribution: {REGISTRY}: task {task.task_id} ({matched})"
        view = replace(
            session,
            kind=SessionKind.AGENT,
            agent=task.agent,
            agent_confidence=REGISTRY,
            human=task.owner or session.human,
            credentials=CredentialRelation.DELEGATED,
            on_human_credentials=False,
            delegated_by=task.owner,
            evidence=(evidence, *session.evidence),
        )
        if scope.expires is None or task.ends_at < scope.expires:
            scope = replace(scope, expires=task.ends_at)
        return view, scope

    def _session_findings(self, ctx: EventContext) -> list[Finding]:
        """Findings about the session rather than the single call."""
        session = ctx.session
        found: list[Finding] = []
        if (
            session.kind is SessionKind.AGENT
            and session.on_human_credentials
            and session.session_id not in self._flagged_human_credentials
        ):
            self._flagged_human_credentials.add(session.session_id)
            reason = (
                f"agent {session.agent or 'unidentified'} is running on "
                f"{session.human or 'a person'}'s credentials ({session.principal_arn}); "
                "it can do anything that person can, two-person rules included."
            )
            found.append(
                _session_finding(
                    ctx,
                    "agent-on-human-credentials",
                    self.policy.agent_on_human_credentials,
                    reason,
                )
            )
        if ctx.event.denied:
            count = self.bursts.observe(session.session_id, ctx.event.event_time)
            if count is not None:
                agent = session.kind is SessionKind.AGENT
                severity = (
                    self.policy.agent_access_denied_burst
                    if agent
                    else self.policy.access_denied_burst
                )
                reason = (
                    f"{count} denied calls within {self.policy.burst_window_seconds}s from "
                    f"{session.principal_arn}: probing for permissions it lacks, or a revoked "
                    "session still retrying."
                )
                found.append(_session_finding(ctx, "access-denied-burst", severity, reason))
        matches = self.sequences.observe(ctx)
        if matches:
            found.extend(sequence_finding(ctx, match, self.policy) for match in matches)
        return found

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to resume without re-alerting, as plain JSON-able data."""
        return self._snapshot(whole=True)

    def _snapshot(self, *, whole: bool) -> dict[str, Any]:
        """The snapshot, or (not `whole`) its shared part: every collection left empty."""

        def part(state: Snapshots) -> dict[str, Any]:
            return state.snapshot() if whole else state.shared_snapshot()

        flagged = self._flagged_human_credentials if whole else ()
        return {
            "version": STATE_VERSION,
            "sessions": part(self.tracker),
            "decisions": part(self.decider),
            "bursts": part(self.bursts),
            "sequences": part(self.sequences),
            "dedup": part(self.dedup),
            "baselines": {b.name: part(b) for b in self.baselines},
            FLAGGED: dict.fromkeys(flagged, True),
            "baseline_signals": part(self.signals),
        }

    def _state_parts(self) -> list[tuple[str, SessionParts]]:
        """Where each part keeping state per session sits in the snapshot."""
        parts: list[tuple[str, SessionParts]] = [
            ("decisions", self.decider),
            ("bursts", self.bursts),
            ("sequences", self.sequences),
            ("baseline_signals", self.signals),
        ]
        parts.extend((f"baselines.{b.name}", b) for b in self.baselines)
        return parts

    def _row_paths(self) -> list[str]:
        paths = ["sessions.sessions", "sessions.links", "dedup.chunks", FLAGGED]
        for prefix, part in self._state_parts():
            paths.extend(f"{prefix}.{name}" for name in part.session_collections)
        return paths

    def track_changes(self) -> None:
        """Remember what changes from now on, so `changes` can give only that."""
        for baseline in self.baselines:
            if "." in baseline.name or SEPARATOR in baseline.name:
                raise StateError(f"baseline name {baseline.name!r} cannot key state rows")
        self.tracker.track_changes()
        self._touched = set()
        self._forget_changes()

    def changes(self) -> StateDelta:
        """What changed since `track_changes` or `saved`: the shared part whole, and the rows
        of the sessions, links and eventID chunks that changed. Everything, marked full,
        until a delta was saved or a state saved as rows was restored. The delta shares no
        mutable container with the pipeline: the service writes it while later events run."""
        if self._touched is None:
            raise StateError("the pipeline is not tracking its changes")
        if self._whole:
            return split(self.snapshot(), self._row_paths())
        built = RowsBuilder()
        sessions, links = self.tracker.changes()
        for session_id, entry in sessions.items():
            built.put("sessions.sessions", session_id, entry)
        for access_key, entry in links.items():
            built.put("sessions.links", access_key, entry)
        changed = {*sessions, *self._touched, *self.sequences.changed_elsewhere}
        for prefix, part in self._state_parts():
            built.sessions(prefix, part, changed)
        flagged = self._flagged_human_credentials
        for session_id in changed:
            built.put(FLAGGED, session_id, True if session_id in flagged else None)
        chunks, gone = self.dedup.changes()
        for number in gone:
            built.put("dedup.chunks", number, None)
        for number, ids in chunks.items():
            built.put("dedup.chunks", number, ids)
        return built.delta(self._snapshot(whole=False))

    def saved(self) -> None:
        """The last `changes` are stored: the next delta starts from here."""
        self._forget_changes()
        self._whole = False

    def unsaved(self) -> None:
        """The changes handed out last will not be stored after all: the next delta holds
        everything again, marked full."""
        self._whole = True

    def _forget_changes(self) -> None:
        self.tracker.saved()
        if self._touched is not None:
            self._touched.clear()
        self.sequences.changed_elsewhere.clear()
        self.dedup.saved()

    def restore(self, data: Mapping[str, Any]) -> None:
        self._whole = data.get("version") != STATE_VERSION
        self.tracker = SessionTracker.restore(
            data["sessions"],
            self.tracker.markers,
            max_sessions=self.tracker.max_sessions,
            credential_rules=self.tracker.credential_rules,
        )
        self.decider.restore(data["decisions"])
        self.bursts.restore(data["bursts"])
        # Snapshots from before sequences hold none: start with empty per-session state.
        self.sequences.restore(data.get("sequences", {}))
        self.dedup.restore(data["dedup"])
        self._flagged_human_credentials = set(data["flagged_human_credentials"])
        saved = data.get("baselines", {})  # snapshots from before baselines hold none
        for baseline in self.baselines:
            if baseline.name in saved:
                baseline.restore(saved[baseline.name])
        self.signals.restore(data.get("baseline_signals", {}))
        self._bindings.clear()
        self._task_of.clear()
        if self._touched is not None:
            self.track_changes()  # the restored tracker starts with nothing changed


PipelineFactory = Callable[[], Pipeline]
"""Builds a pipeline with fresh state, sharing everything read from files."""


def _task_verdict(verdict: ScopeVerdict, task: TaskBinding) -> ScopeVerdict:
    """Say that the task ended (or its credentials expired), not that the scope did."""
    how = "ended" if task.ended else "expired"
    violations = tuple(
        replace(
            v,
            reason=f"task {task.task_id} (scope {verdict.scope}) {how} at {stamp(task.ends_at)}; "
            f"its credentials are still in use ({v.reason})",
        )
        if v.kind == "scope-expired"
        else v
        for v in verdict.violations
    )
    return replace(verdict, violations=violations)


def _session_finding(ctx: EventContext, kind: str, severity: Severity, reason: str) -> Finding:
    return make_finding(ctx, kind=kind, severity=severity, classification=None, reason=reason)


_Binding = SessionView | tuple[SessionView, SessionView, Scope | None]


def _bound(binding: _Binding) -> tuple[SessionView, Scope | None]:
    """The view a binding bound, and its scope."""
    if isinstance(binding, tuple):
        return binding[1], binding[2]
    return binding, None
