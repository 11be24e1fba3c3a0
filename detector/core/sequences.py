"""Suspicious sequences: calls of one session that together tell a story.

Four patterns, in event time:
  delete-recreate    a resource or stack destroyed, then created again under the same name
                     (the incident: an agent deleting a production stack to rebuild it)
  privilege-use      a privilege change (policy, group, boundary, access key, password, trust
                     policy) followed by a call that uses it
  recon-write        a reconnaissance burst (many distinct reads and lists, or many denied
                     calls, within `recon_window`) followed by a write
  logging-off-write  logging or detection turned off, then any write

CloudTrail delivers minutes late and out of order. Each session keeps a watermark, the
latest event time it has seen; an event up to `lateness` behind it still counts, as the first
step of a sequence whose later step already arrived or as its last. An event further behind
is left out (counted in `late_events`). Steps are kept for `window + lateness` behind the
watermark and capped per kind, so the state of a session is bounded, and it is dropped when
the pipeline forgets the session.

What a session created itself it may tear down: deleting or turning off something the same
session created is IaC set-up and tear-down, not a sequence. For people and services the same
holds for granting permissions to a principal the session created; an agent doing that is
escalating, so agents get no such allowance.

A sequence is raised once, by the event that completes it (the last step, or a late first
step), in that event's session; a use of a privilege can be in another session than the
change, and the evidence names both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from detector.core.findings import Finding
from detector.core.policy import EventContext, SeverityPolicy, describe_session, make_finding
from detector.core.sequence_grants import GrantIndex, uses_of
from detector.core.sequence_state import (
    MAX_ANCHORS,
    MAX_DENIED,
    MAX_WRITES,
    Burst,
    SessionState,
    between,
    drop_before,
    first_after,
    keep,
)
from detector.core.sequence_steps import Mark, Step, grants_cover, session_identities, step_of
from detector.core.shared_values import SharedValues
from detector.core.taxonomy import SessionKind
from detector.core.timestamps import iso_seconds

RECREATE = "delete-recreate"
PRIVILEGE_USE = "privilege-use"
RECON_WRITE = "recon-write"
LOGGING_OFF_WRITE = "logging-off-write"
PATTERNS = (RECREATE, PRIVILEGE_USE, RECON_WRITE, LOGGING_OFF_WRITE)

SNAPSHOT_VERSION = 1
NONE: tuple[Match, ...] = ()
_AGENT = SessionKind.AGENT  # an enum member looked up on its class is slow
PRUNE_EVERY = timedelta(minutes=5)
SAMPLE = 5  # reconnaissance calls named in a recon-write's evidence


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceSettings:
    """Windows and thresholds; the pipeline takes them from the severity policy."""

    window_seconds: int = 3600
    lateness_seconds: int = 900
    recon_distinct_reads: int = 10
    recon_denied_calls: int = 5
    recon_window_seconds: int = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """One sequence found: its pattern, its steps in event-time order and what they tell."""

    pattern: str
    steps: tuple[Step, ...]
    story: str
    agent: bool
    in_scope: bool

    @property
    def ends_in_destroy(self) -> bool:
        return self.steps[-1].has(Mark.DESTROY)


class SequenceDetector:
    """Finds the four patterns in each session's steps. Pure: time comes from the events."""

    def __init__(self, settings: SequenceSettings) -> None:
        self.settings = settings
        self.window = timedelta(seconds=settings.window_seconds)
        self.lateness = timedelta(seconds=settings.lateness_seconds)
        self.recon_window = timedelta(seconds=settings.recon_window_seconds)
        self.late_events = 0
        self._sessions: dict[str, SessionState] = {}
        self._grants = GrantIndex()
        # Sessions other than the event's whose state an event changed (a grant's owner
        # marked as used), since `saved`: the owner of the state must save them too.
        self.changed_elsewhere: set[str] = set()
        # The identity keys of one role or user are the same tuple in each of its sessions.
        self._shared = SharedValues()

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def indexed_grants(self) -> int:
        """Identity keys that hold grants made by live sessions."""
        return len(self._grants)

    def states(self) -> list[SessionState]:
        """The state kept per session, for inspection."""
        return list(self._sessions.values())

    def observe(self, ctx: EventContext) -> Sequence[Match]:
        """The sequences this event completes (usually none). Allocates as little as it can:
        it runs for every event, and what it allocates the garbage collector walks."""
        step = step_of(ctx)
        if step is None:
            return NONE
        state = self._sessions.get(step.session_id)
        if state is None:
            state = SessionState.start(step.at, self._shared(session_identities(ctx.session)))
            self._sessions[step.session_id] = state
            for key in state.identities:
                self._grants.hold(key, step.session_id)
        elif step.at < state.high - self.lateness:
            self.late_events += 1
            return NONE
        if step.at > state.high:
            state.high = step.at
        agent = ctx.session.kind is _AGENT
        marks = step.marks
        found: list[Match] = []
        # Each check only when the session holds what it looks for: most events end here.
        if marks & Mark.CREATE and state.destroys:
            found.extend(self._recreated(state, step, agent))
        if marks & Mark.DESTROY and state.creates:
            found.extend(self._recreated_late(state, step, agent))
        if marks & Mark.WRITE and (state.blinds or state.bursts):
            found.extend(self._written_after(state, step, agent))
        if marks & (Mark.READ | Mark.DENIED):
            recon = self._read(state, step, agent)
            if recon is not None:
                found.append(recon)
        if self._grants and self._grants.any_for(state.identities, step.uses):
            found.extend(self._used(state, step, agent))
        if marks & Mark.BLIND and not self._own(state, step):
            found.extend(self._blinded_late(state, step, agent))
            state.blinds = keep(state.blinds, step, MAX_ANCHORS)
        if marks & Mark.GRANT and self._counts_as_grant(state, step, agent):
            found.extend(self._granted_late(state, step, agent))
            self._store_grant(state, step)
        self._store(state, step)
        if step.at >= state.pruned + PRUNE_EVERY:
            self._prune(state)
        return found or NONE

    def forget(self, session_id: str) -> None:
        state = self._sessions.pop(session_id, None)
        if state is None:
            return
        for grant in state.grants:
            self._grants.remove(grant)
        for key in (*state.identities, *(k for call in state.calls for k in call.uses)):
            self._grants.release(key, session_id)

    # --- delete then recreate ------------------------------------------------------------

    def _recreated(self, state: SessionState, create: Step, agent: bool) -> Iterator[Match]:
        for destroy in state.destroys:
            if destroy.at <= create.at <= destroy.at + self.window:
                yield from self._recreate(state, destroy, create, agent)

    def _recreated_late(self, state: SessionState, destroy: Step, agent: bool) -> Iterator[Match]:
        for create in between(state.creates, destroy.at, destroy.at + self.window):
            yield from self._recreate(state, destroy, create, agent)

    def _recreate(
        self, state: SessionState, destroy: Step, create: Step, agent: bool
    ) -> Iterator[Match]:
        if create.event_id == destroy.event_id or not create.noun.startswith(destroy.noun):
            return
        for key in destroy.keys:
            # Recreating what the session itself created earlier is IaC churn.
            if key not in create.keys or state.created_before(key, destroy.at):
                continue
            if state.mark(f"recreate:{destroy.event_id}", destroy.at):
                story = (
                    f"deleted {key} ({destroy.action}) and created it again "
                    f"{_gap(destroy.at, create.at)} later ({create.action}): delete then "
                    "recreate of the same resource"
                )
                yield _match(RECREATE, (destroy, create), story, agent)
            return

    # --- logging off, or reconnaissance, then a write ------------------------------------

    def _written_after(self, state: SessionState, write: Step, agent: bool) -> Iterator[Match]:
        for blind in state.blinds:
            if (
                blind.at <= write.at <= blind.at + self.window
                and blind.event_id != write.event_id
                and state.mark(f"blind:{blind.event_id}", blind.at)
            ):
                yield self._blind_match(blind, write, agent)
        for burst in state.bursts:
            if not burst.spent and burst.reached < write.at <= burst.end + self.window:
                burst.spent = True
                yield self._recon_match(burst, write, agent)

    def _blinded_late(self, state: SessionState, blind: Step, agent: bool) -> Iterator[Match]:
        write = first_after(state.writes, blind.at, blind.at + self.window)
        if write is not None and state.mark(f"blind:{blind.event_id}", blind.at):
            yield self._blind_match(blind, write, agent)

    def _blind_match(self, blind: Step, write: Step, agent: bool) -> Match:
        target = f" on {blind.resource}" if blind.resource else ""
        story = (
            f"turned logging or detection off ({blind.action}{target}) and then called "
            f"{write.action} {_gap(blind.at, write.at)} later: a write with logging off"
        )
        return _match(LOGGING_OFF_WRITE, (blind, write), story, agent)

    def _read(self, state: SessionState, read: Step, agent: bool) -> Match | None:
        if state.bursts and state.extend_burst(read.at, self.recon_window):
            return None  # judged when the burst was found
        if read.marks & Mark.READ:
            state.keep_read(read)
        if read.marks & Mark.DENIED:
            state.denied = keep(state.denied, read, MAX_DENIED)
        settings = self.settings
        burst = state.burst_at(
            read.at,
            self.recon_window,
            distinct_reads=settings.recon_distinct_reads,
            denied_calls=settings.recon_denied_calls,
        )
        if burst is None:
            return None
        # Reads that arrived after the write they precede complete the sequence now.
        write = first_after(state.writes, burst.reached, burst.end + self.window)
        if write is None:
            return None
        burst.spent = True
        return self._recon_match(burst, write, agent)

    def _recon_match(self, burst: Burst, write: Step, agent: bool) -> Match:
        calls = burst.sample
        denied = sum(1 for s in calls if s.has(Mark.DENIED))
        seconds = int((burst.reached - burst.start).total_seconds())
        story = (
            f"made {len(calls)} reconnaissance calls ({len({s.action for s in calls})} "
            f"distinct, {denied} denied) within {seconds} s, then called {write.action} "
            f"{_gap(burst.reached, write.at)} later: reconnaissance followed by a write"
        )
        shown = (*calls[:SAMPLE], write)
        return _match(RECON_WRITE, shown, story, agent, judged=(*calls, write))

    # --- a privilege change, then its use ------------------------------------------------

    def _counts_as_grant(self, state: SessionState, step: Step, agent: bool) -> bool:
        grant = step.grant
        if grant is None:
            return False
        if agent:
            return True
        if self._own(state, step):
            return False  # a person's IaC granting to a principal it just created
        # For people and services, a change to a group or a managed policy is taken as their
        # own escalation only when the request spells out what it allows.
        return not (grant.label == "its own principal" and grant.actions is None)

    def _used(self, state: SessionState, step: Step, agent: bool) -> Iterator[Match]:
        for key in (*state.identities, *step.uses):
            for granter, grant in self._grants.grants_for(key):
                if grant.event_id == step.event_id or grant.grant is None:
                    continue
                if not grant.at <= step.at <= grant.at + self.window:
                    continue
                owner = self._sessions.get(granter)
                if owner is None or not grants_cover(grant.grant, step):
                    continue
                if owner.mark(f"use:{grant.event_id}", grant.at):
                    self.changed_elsewhere.add(granter)
                    yield self._use_match(grant, step, agent)

    def _granted_late(self, state: SessionState, grant: Step, agent: bool) -> Iterator[Match]:
        assert grant.grant is not None
        candidates: list[Step] = []
        for key in grant.grant.keys:
            for holder in self._grants.holders_of(key):
                other = self._sessions.get(holder)
                if other is not None:
                    candidates.extend(uses_of(other, key))
        late = [
            s
            for s in candidates
            if grant.at <= s.at <= grant.at + self.window
            and s.event_id != grant.event_id
            and grants_cover(grant.grant, s)
        ]
        if late and state.mark(f"use:{grant.event_id}", grant.at):
            yield self._use_match(grant, min(late, key=lambda s: s.at), agent)

    def _use_match(self, grant: Step, use: Step, agent: bool) -> Match:
        assert grant.grant is not None
        other = use.session_id != grant.session_id
        by = f" (by session {grant.session_id})" if other else ""
        where = f" in session {use.session_id}" if other else ""
        story = (
            f"was given new permissions{by}: {grant.action} for {grant.grant.label}, then "
            f"used them{where} with {use.action} {_gap(grant.at, use.at)} later: a privilege "
            "change followed by its use"
        )
        return _match(PRIVILEGE_USE, (grant, use), story, agent)

    def _store_grant(self, state: SessionState, grant: Step) -> None:
        assert grant.grant is not None
        state.grants = keep(state.grants, grant, MAX_ANCHORS, dropped=self._grants.remove)
        self._grants.add(grant)

    # --- state ---------------------------------------------------------------------------

    def _own(self, state: SessionState, step: Step) -> bool:
        """Whether the session itself created what `step` turns off or grants to, before it
        or in the same second (CloudTrail orders the calls of one second arbitrarily)."""
        keys = step.keys or (_noun_key(step),)
        return any(state.created_before(key, step.at, same_second=True) for key in keys)

    def _store(self, state: SessionState, step: Step) -> None:
        if state.long_term_key and (state.first is None or step.at < state.first.at):
            state.first = step
        marks = step.marks
        if not marks & (Mark.WRITE | Mark.CREATE) and not step.uses:
            return
        if marks & Mark.WRITE:
            state.writes = keep(state.writes, step, MAX_WRITES)
        if marks & Mark.DESTROY and step.keys:
            state.destroys = keep(state.destroys, step, MAX_ANCHORS)
        if marks & Mark.CREATE:
            state.creates = keep(state.creates, step, MAX_ANCHORS)
            state.remember_created((*step.keys, _noun_key(step)), step.at)
        if step.uses:
            state.calls = keep(state.calls, step, MAX_ANCHORS)
            for key in step.uses:
                self._grants.hold(key, step.session_id)

    def _prune(self, state: SessionState) -> None:
        """Drop what no event within the lateness can match any more. Done every few minutes
        of event time rather than every event: every check bounds its window itself, so what
        is kept a little longer changes nothing found.

        Anchors (destroys, blindings, grants, bursts) wait a whole window for what follows
        them. The calls that can only follow a late anchor (writes, creates, sign-ins) and
        the reads that can only make a late burst need keeping for the lateness alone."""
        state.pruned = state.high
        anchors = state.high - self.window - self.lateness
        followers = state.high - self.lateness - self.recon_window
        state.destroys = drop_before(state.destroys, anchors)
        state.blinds = drop_before(state.blinds, anchors)
        if state.grants and state.grants[0].at < anchors:
            for grant in [g for g in state.grants if g.at < anchors]:
                self._grants.remove(grant)
            state.grants = drop_before(state.grants, anchors)
        if state.bursts and state.bursts[0].end < anchors:
            state.bursts = [b for b in state.bursts if b.end >= anchors]
        if state.raised:
            for key in [k for k, at in state.raised.items() if at < anchors]:
                del state.raised[key]
        state.creates = drop_before(state.creates, followers)
        state.writes = drop_before(state.writes, followers)
        state.calls = drop_before(state.calls, followers)
        state.denied = drop_before(state.denied, followers)
        state.reads = drop_before(state.reads, followers)

    # The parts of `snapshot` kept per session (see core/state_delta.py).
    session_collections = ("sessions",)

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.shared_snapshot(),
            "sessions": {sid: state.to_dict() for sid, state in self._sessions.items()},
        }

    def shared_snapshot(self) -> dict[str, Any]:
        # The grant index is not saved: `restore` rebuilds it from the sessions' states.
        return {"version": SNAPSHOT_VERSION, "late_events": self.late_events, "sessions": {}}

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        state = self._sessions.get(session_id)
        return {} if state is None else {"sessions": state.to_dict(late=True)}

    def restore(self, data: Mapping[str, Any]) -> None:
        """State from `snapshot`; an empty mapping (a snapshot from before sequences) resets."""
        self.late_events = int(data.get("late_events", 0))
        self._sessions = {
            sid: SessionState.from_dict(sid, raw) for sid, raw in data.get("sessions", {}).items()
        }
        for state in self._sessions.values():
            state.identities = self._shared(state.identities)
        # Snapshots from before the index was derived hold it too; it is rebuilt all the same.
        self._grants = GrantIndex()
        self._grants.rebuild(self._sessions)


def sequence_finding(ctx: EventContext, match: Match, policy: SeverityPolicy) -> Finding:
    """The `suspicious-sequence` finding of one match, on the event that completed it; its
    evidence lists every step with its time, action, resource and event id."""
    severity = policy.sequence(
        match.pattern,
        agent=match.agent,
        in_scope=match.in_scope,
        ends_in_destroy=match.ends_in_destroy,
    )
    reason = f"{describe_session(ctx.session)} {match.story}."
    finding = make_finding(
        ctx, kind="suspicious-sequence", severity=severity, classification=None, reason=reason
    )
    total = len(match.steps)
    steps = tuple(
        f"sequence {match.pattern} step {index}/{total}: {iso_seconds(step.at)} {step.action}"
        + (f" on {step.resource}" if step.resource else "")
        + f" (event {step.event_id}"
        + ("" if step.session_id == ctx.session.session_id else f", session {step.session_id}")
        + ")"
        for index, step in enumerate(match.steps, 1)
    )
    return replace(finding, evidence=(*finding.evidence, *steps))


def _match(
    pattern: str,
    steps: tuple[Step, ...],
    story: str,
    agent: bool,
    *,
    judged: Iterable[Step] | None = None,
) -> Match:
    """`judged`: the steps whose scope decides whether the sequence stayed in scope, when
    more than the ones shown."""
    ordered = tuple(sorted(steps, key=lambda s: s.at))
    in_scope = all(s.has(Mark.IN_SCOPE) for s in (judged if judged is not None else ordered))
    return Match(
        pattern=pattern,
        steps=ordered,
        story=story,
        agent=agent or any(s.has(Mark.AGENT) for s in ordered),
        in_scope=in_scope,
    )


def _noun_key(step: Step) -> str:
    return f"noun:{step.action.split(':', 1)[0]}:{step.noun}"


def _gap(start: datetime, end: datetime) -> str:
    seconds = int((end - start).total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes} min {seconds} s"
    return f"{minutes // 60} h {minutes % 60} min"
