"""How severe a baseline finding is: alone it pages no one; with other signals it pages.

A learned baseline says what is unusual, not what is wrong: a role that starts using a new
service is unusual every week. So a `novel-action` alone is `low` (recorded, no alert) and
an `anomalous-session` alone is `medium` (an alert record for the review channel, below
what the shipped routes page on). It takes the combined severity, `critical` by default
(what `deploy/alertmanager` and the example PagerDuty sink page on), when the same session
  - raised a scope finding (out of scope, scope expired): the agent left its task and did
    something its group never does;
  - raised a suspicious sequence (delete then recreate, escalation then use);
  - is an agent with no scope bound at all: nothing else says what it may do.
Every one of these severities is a `severity:` key.

The second half is the other direction: for people and services, whom nothing but the
catalogue judges, an action the group does habitually (`Habits.habitual`) lowers the
catalogue's severity by one step (`severity.habitual_step_down`, off by default), never
below medium for tier 0: an administrator deleting a stack every Friday is the group's
normal, but a tier-0 action still deserves an alert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from detector.core.findings import CATEGORY_KINDS, Finding
from detector.core.policy import EventContext, SeverityPolicy
from detector.core.taxonomy import SessionKind, Severity

NOVEL_ACTION = "novel-action"
ANOMALOUS_SESSION = "anomalous-session"
SUSPICIOUS_SEQUENCE = "suspicious-sequence"
# Findings a baseline raises whose severity this module decides.
BASELINE_KINDS = frozenset({NOVEL_ACTION, ANOMALOUS_SESSION})
# Findings that say the session left its task scope.
SCOPE_KINDS = frozenset(
    {
        "out-of-scope-action",
        "out-of-scope-resource",
        "out-of-scope-region",
        "out-of-scope-account",
        "scope-expired",
    }
)
CATALOGUE_KINDS = frozenset(CATEGORY_KINDS.values())

# The evidence line a changed severity adds, and the `severity:` key that set it; metrics
# read the key back (`change_of`) to count changes without another field on Finding.
CHANGE_PREFIX = "severity: "
WITH_SCOPE = "baseline_with_scope"
WITH_SEQUENCE = "baseline_with_sequence"
UNSCOPED_AGENT = "baseline_unscoped_agent"
STEP_DOWN = "habitual_step_down"
CHANGES = (WITH_SCOPE, WITH_SEQUENCE, UNSCOPED_AGENT, STEP_DOWN)


class Signals(NamedTuple):
    """What a session had raised by the time of one event."""

    scope: bool = False  # a scope finding (out of scope, scope expired)
    sequence: bool = False  # a suspicious sequence


class SessionSignals:
    """What each session raised so far that makes its baseline findings page.

    Two sets of session ids, bounded by the session tracker: the pipeline forgets a session
    here when the tracker drops it, and snapshots the sets with the rest of its state.

    A drained finding is combined with its session's signals as they were when its event
    was observed, not when the drain ran: replay drains every N events and the service
    every batch, and both must give the same severity. So each event observed since the
    last drain keeps its session's signals (`mark`), until the drain (`drained`).
    """

    def __init__(self) -> None:
        self._scope: set[str] = set()
        self._sequence: set[str] = set()
        self._at_event: dict[str, Signals] = {}

    def observe(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            if finding.kind in SCOPE_KINDS:
                self._scope.add(finding.session_id)
            elif finding.kind == SUSPICIOUS_SEQUENCE:
                self._sequence.add(finding.session_id)

    def of(self, session_id: str) -> Signals:
        return Signals(session_id in self._scope, session_id in self._sequence)

    def mark(self, event_id: str, session_id: str) -> None:
        """Keep the session's signals as of this event, for a drain of buffered work."""
        self._at_event[event_id] = self.of(session_id)

    def at_event(self, finding: Finding) -> Signals:
        """The signals as of the finding's event; the current ones for an event observed
        before the last drain (a model that held work back)."""
        marked = self._at_event.get(finding.event_id)
        return marked if marked is not None else self.of(finding.session_id)

    def drained(self) -> None:
        self._at_event.clear()

    def forget(self, session_id: str) -> None:
        self._scope.discard(session_id)
        self._sequence.discard(session_id)

    # The parts of `snapshot` kept per session (see core/state_delta.py): {session id: true}.
    session_collections = ("scope", "sequence")

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.shared_snapshot(),
            "scope": dict.fromkeys(self._scope, True),
            "sequence": dict.fromkeys(self._sequence, True),
        }

    def shared_snapshot(self) -> dict[str, Any]:
        return {
            "scope": {},
            "sequence": {},
            "events": {k: list(v) for k, v in self._at_event.items()},
        }

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if session_id in self._scope:
            found["scope"] = True
        if session_id in self._sequence:
            found["sequence"] = True
        return found

    def restore(self, data: Mapping[str, Any]) -> None:
        # A list in snapshots from before state rows; a mapping since: both give the ids.
        self._scope = set(data.get("scope", ()))
        self._sequence = set(data.get("sequence", ()))
        self._at_event = {k: Signals(*v) for k, v in data.get("events", {}).items()}


def combine(finding: Finding, signals: Signals, policy: SeverityPolicy) -> Finding:
    """The baseline finding at its severity: alone, or combined with what its session raised.

    Findings of other kinds pass unchanged. The most severe matching reason names its key
    in the evidence; the severity is the highest of the alone and combined ones, so a
    combined key set below the alone one never lowers a finding.
    """
    alone = _alone(finding.kind, policy)
    if alone is None:
        return finding
    reasons = _combined(finding, signals, policy)
    if not reasons:
        return finding if finding.severity == alone else replace(finding, severity=alone)
    key, severity, why = reasons[0]
    combined = max(alone, severity)
    line = f"{CHANGE_PREFIX}{combined.label} ({key}): {why}"
    # On-call reads the reason first: say there why an unusual call is this severe.
    reason = f"{finding.reason.rstrip()} {why[0].upper()}{why[1:]}, so it is {combined.label}."
    return replace(finding, severity=combined, reason=reason, evidence=(*finding.evidence, line))


def _alone(kind: str, policy: SeverityPolicy) -> Severity | None:
    if kind == NOVEL_ACTION:
        return policy.novel_action
    if kind == ANOMALOUS_SESSION:
        return policy.anomalous_session
    return None


def _combined(
    finding: Finding, signals: Signals, policy: SeverityPolicy
) -> list[tuple[str, Severity, str]]:
    reasons: list[tuple[str, Severity, str]] = []
    if signals.scope:
        why = f"the session also went outside its task scope {finding.scope or ''}".rstrip()
        reasons.append((WITH_SCOPE, policy.baseline_with_scope, why))
    if signals.sequence:
        why = "the session also raised a suspicious sequence"
        reasons.append((WITH_SEQUENCE, policy.baseline_with_sequence, why))
    if finding.session_kind is SessionKind.AGENT and finding.scope is None:
        why = f"agent {finding.agent or 'unidentified'} has no task scope bound to its session"
        reasons.append((UNSCOPED_AGENT, policy.baseline_unscoped_agent, why))
    # The most severe reason decides; on a tie the first listed names it.
    return sorted(reasons, key=lambda r: -r[1])


Habitual = Callable[[str], bool]
"""Whether an action (as the catalogue names it) is habitual for the event's group."""


def step_down(
    ctx: EventContext, findings: Sequence[Finding], habitual: Habitual, policy: SeverityPolicy
) -> list[Finding]:
    """Catalogue findings of a person or service, one step lower where the action is habitual.

    Agents are judged against their scope and keep every severity; tier 0 never goes below
    medium. A finding whose action is not habitual, or that is not the catalogue's, passes
    unchanged. `habitual` is asked only for catalogue findings, at most once per action.
    """
    if not policy.habitual_step_down or ctx.session.kind not in (
        SessionKind.HUMAN,
        SessionKind.SERVICE,
    ):
        return list(findings)
    tiers = {c.action: c.tier for c in ctx.classifications}
    asked: dict[str, bool] = {}
    changed: list[Finding] = []
    for finding in findings:
        action = finding.action
        if finding.kind not in CATALOGUE_KINDS or action is None or action not in tiers:
            changed.append(finding)
            continue
        if action not in asked:
            asked[action] = habitual(action)
        if not asked[action]:
            changed.append(finding)
            continue
        floor = Severity.MEDIUM if tiers[action] == 0 else Severity.INFO
        # Never a raise: a tier 0 configured below medium stays where it is.
        lowered = Severity(min(finding.severity, max(floor, finding.severity - 1)))
        if lowered == finding.severity:
            changed.append(finding)
            continue
        line = (
            f"{CHANGE_PREFIX}{lowered.label} ({STEP_DOWN}): {action} is habitual for this "
            f"{ctx.session.kind.value}'s group; the catalogue says {finding.severity.label}"
        )
        changed.append(replace(finding, severity=lowered, evidence=(*finding.evidence, line)))
    return changed


def change_of(finding: Finding) -> str | None:
    """The `severity:` key that changed the finding's severity here, if one did.

    The line is always the finding's last evidence (a baseline finding is never stepped
    down, a catalogue finding never combined), so this costs one comparison per finding.
    """
    if not finding.evidence or not finding.evidence[-1].startswith(CHANGE_PREFIX):
        return None
    key = finding.evidence[-1][len(CHANGE_PREFIX) :].partition(" (")[2].partition(")")[0]
    return key if key in CHANGES else None
