"""The severity policy: which findings one event raises, and how severe each is.

Agents are judged against their task scope; humans and services by the catalogue alone. An
agent outside its scope is judged by what the action can do: the catalogue's tier first
(tiers 0 and 1 are critical whatever the category: new access keys, trust policies and
secret reads are how access outlives the session), then reads versus writes.
Every number here is configurable (`severity:` in the config file); the defaults are the
ones the README documents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from detector.core.catalog import Classification
from detector.core.events import CloudTrailEvent
from detector.core.findings import CATEGORY_KINDS, Finding
from detector.core.scope import ScopeVerdict, Violation
from detector.core.session_view import SessionView
from detector.core.taxonomy import Category, CredentialRelation, SessionKind, Severity

DEFAULT_TIER_SEVERITY: Mapping[int, Severity] = MappingProxyType(
    {0: Severity.HIGH, 1: Severity.MEDIUM, 2: Severity.LOW, 3: Severity.INFO}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeverityPolicy:
    """Severities by situation. See the README's "Severity policy" for the reasoning."""

    out_of_scope_tier_0: Severity = Severity.CRITICAL
    out_of_scope_tier_1: Severity = Severity.CRITICAL
    out_of_scope_read: Severity = Severity.MEDIUM
    out_of_scope_mutating: Severity = Severity.HIGH
    out_of_scope_dangerous: Severity = Severity.CRITICAL
    denied_dangerous: Severity = Severity.HIGH
    in_scope_risky: Severity = Severity.LOW
    agent_on_human_credentials: Severity = Severity.HIGH
    access_denied_burst: Severity = Severity.MEDIUM
    agent_access_denied_burst: Severity = Severity.HIGH
    tier_severity: Mapping[int, Severity] = field(default_factory=lambda: DEFAULT_TIER_SEVERITY)
    # Findings at or above this become alerts; below it they are recorded and page no one.
    alert_min: Severity = Severity.MEDIUM
    # A finding at or above this on a scope with on_violation: revoke triggers revocation.
    revoke_min: Severity = Severity.CRITICAL
    burst_threshold: int = 5
    burst_window_seconds: int = 300
    # Baselines never learn from an event that raised a finding at or above this.
    learn_below: Severity = Severity.MEDIUM
    # Learned baselines (detector/core/combine.py): alone a baseline finding pages no one;
    # with a scope finding or a suspicious sequence in the same session, or on an agent with
    # no scope, it takes the combined severity.
    novel_action: Severity = Severity.LOW
    anomalous_session: Severity = Severity.MEDIUM
    baseline_with_scope: Severity = Severity.CRITICAL
    baseline_with_sequence: Severity = Severity.CRITICAL
    baseline_unscoped_agent: Severity = Severity.CRITICAL
    # People and services: an action habitual for the group lowers the catalogue's severity
    # by one step (never below medium for tier 0).
    habitual_step_down: bool = False
    # Suspicious sequences (detector/core/sequences.py): people and services, then agents.
    sequence_recreate: Severity = Severity.LOW
    agent_sequence_recreate: Severity = Severity.CRITICAL
    sequence_privilege_use: Severity = Severity.MEDIUM
    agent_sequence_privilege_use: Severity = Severity.HIGH
    sequence_recon_write: Severity = Severity.LOW
    agent_sequence_recon_write: Severity = Severity.HIGH
    sequence_logging_off_write: Severity = Severity.MEDIUM
    agent_sequence_logging_off_write: Severity = Severity.CRITICAL
    # An agent's sequence whose last call destroys something, whatever the pattern.
    agent_sequence_destroy: Severity = Severity.CRITICAL
    sequence_window_seconds: int = 3600
    sequence_lateness_seconds: int = 900
    recon_distinct_reads: int = 10
    recon_denied_calls: int = 5
    recon_window_seconds: int = 300

    def out_of_scope(
        self, category: Category | None, tier: int | None, *, denied: bool
    ) -> Severity:
        """Severity of an agent acting outside its scope (or with none).

        Tiers 0 and 1 decide alone, whatever the category. Below them, a category that
        destroys, grants, blinds or exposes keeps `out_of_scope_dangerous` (only an override
        that lowers such an action's tier puts it there), other writes, persistence and
        credential access are `out_of_scope_mutating`, reads and lists `out_of_scope_read`.
        """
        top = self._tier_top(tier)
        if top is not None or (category is not None and category.dangerous):
            severity = top if top is not None else self.out_of_scope_dangerous
            # A refused attempt at one of these did no harm but shows intent.
            return min(self.denied_dangerous, severity) if denied else severity
        # Reading secrets is not a mutation but is as serious as one.
        if category is None or category in (Category.READ, Category.LIST):
            base = self.out_of_scope_read
        else:
            base = self.out_of_scope_mutating
        # A refused attempt did no harm but shows intent: one step lower, never below low.
        return _lower(base) if denied else base

    def _tier_top(self, tier: int | None) -> Severity | None:
        if tier == 0:
            return self.out_of_scope_tier_0
        if tier == 1:
            return self.out_of_scope_tier_1
        return None

    def catalogue(self, tier: int, *, denied: bool) -> Severity:
        base = self.tier_severity.get(tier, Severity.INFO)
        return _lower(base) if denied else base

    def sequence(
        self, pattern: str, *, agent: bool, in_scope: bool, ends_in_destroy: bool
    ) -> Severity:
        """Severity of a suspicious sequence. An agent's sequence that stays inside its task
        scope is what the task allowed (`in_scope_risky`); one that ends in a destroy is
        `agent_sequence_destroy` unless its pattern is rated higher."""
        person, for_agent = {
            "delete-recreate": (self.sequence_recreate, self.agent_sequence_recreate),
            "privilege-use": (self.sequence_privilege_use, self.agent_sequence_privilege_use),
            "recon-write": (self.sequence_recon_write, self.agent_sequence_recon_write),
            "logging-off-write": (
                self.sequence_logging_off_write,
                self.agent_sequence_logging_off_write,
            ),
        }[pattern]
        if not agent:
            return person
        if in_scope:
            return self.in_scope_risky
        return max(for_agent, self.agent_sequence_destroy) if ends_in_destroy else for_agent


def _lower(severity: Severity) -> Severity:
    return Severity(max(Severity.LOW, severity - 1))


def worst(classifications: Sequence[Classification]) -> Classification | None:
    """The riskiest of an event's actions, in the order of the agent policy: tiers 0 and 1,
    then dangerous categories, then writes, then the lowest tier."""
    if not classifications:
        return None
    return min(classifications, key=_risk_order)


def _risk_order(item: Classification) -> tuple[int, int, int, int]:
    category = item.category
    return (
        min(item.tier, 2),
        0 if category.dangerous else 1,
        0 if category.mutating else 1,
        item.tier,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class EventContext:
    """Everything the policy looks at for one event, already resolved by the pipeline."""

    event: CloudTrailEvent
    session: SessionView
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    classifications: tuple[Classification, ...]
    scope: str | None
    verdict: ScopeVerdict | None


def judge(ctx: EventContext, policy: SeverityPolicy) -> list[Finding]:
    """Findings for one event (session-level findings such as bursts are the pipeline's)."""
    if ctx.session.kind is SessionKind.AGENT:
        return _judge_agent(ctx, policy)
    return _judge_by_catalogue(ctx, policy)


def _judge_agent(ctx: EventContext, policy: SeverityPolicy) -> list[Finding]:
    denied = ctx.event.denied
    by_action = {c.action.lower(): c for c in ctx.classifications}
    riskiest = worst(ctx.classifications)
    findings: list[Finding] = []
    out_of_scope = False
    if ctx.verdict is None:
        if ctx.actions:
            out_of_scope = True
            category = riskiest.category if riskiest else None
            findings.append(
                make_finding(
                    ctx,
                    kind="unscoped-agent",
                    severity=policy.out_of_scope(
                        category, riskiest.tier if riskiest else None, denied=denied
                    ),
                    classification=riskiest,
                    reason=_unscoped_reason(ctx, riskiest),
                )
            )
    else:
        for violation in ctx.verdict.violations:
            out_of_scope = True
            classification = by_action.get(violation.subject.lower(), riskiest)
            category = classification.category if classification else None
            tier = classification.tier if classification else None
            findings.append(
                make_finding(
                    ctx,
                    kind=violation.kind,
                    severity=policy.out_of_scope(category, tier, denied=denied),
                    classification=classification,
                    reason=_violation_reason(ctx, violation, denied),
                )
            )
    for classification in ctx.classifications:
        kind = CATEGORY_KINDS.get(classification.category)
        if kind is None:
            continue
        if out_of_scope:
            severity = policy.out_of_scope(
                classification.category, classification.tier, denied=denied
            )
        else:
            severity = policy.in_scope_risky
        findings.append(
            make_finding(
                ctx,
                kind=kind,
                severity=severity,
                classification=classification,
                reason=_category_reason(ctx, classification, in_scope=not out_of_scope),
            )
        )
    return findings


def _judge_by_catalogue(ctx: EventContext, policy: SeverityPolicy) -> list[Finding]:
    findings = []
    for classification in ctx.classifications:
        kind = CATEGORY_KINDS.get(classification.category)
        if kind is None:
            continue
        severity = policy.catalogue(classification.tier, denied=ctx.event.denied)
        if severity is Severity.INFO:
            continue
        findings.append(
            make_finding(
                ctx,
                kind=kind,
                severity=severity,
                classification=classification,
                reason=_category_reason(ctx, classification, in_scope=None),
            )
        )
    return findings


def make_finding(
    ctx: EventContext,
    *,
    kind: str,
    severity: Severity,
    classification: Classification | None,
    reason: str,
) -> Finding:
    event = ctx.event
    session = ctx.session
    evidence = list(session.evidence)
    if classification is not None:
        evidence.extend(classification.reasons)
        evidence.append(f"catalogue: {classification.entry.source}")
    return Finding(
        kind=kind,
        severity=severity,
        event_id=event.event_id,
        event_time=event.event_time,
        session_id=session.session_id,
        session_kind=session.kind,
        agent=session.agent,
        principal=session.principal_arn,
        human=session.human,
        action=classification.action
        if classification
        else (ctx.actions[0] if ctx.actions else None),
        resources=ctx.resources,
        category=classification.category if classification else None,
        scope=ctx.scope,
        reason=reason,
        region=event.aws_region,
        account=event.account_id,
        error_code=event.error_code,
        evidence=tuple(evidence),
        credentials=session.credentials,
        delegated_by=session.delegated_by,
    )


def describe_session(session: SessionView) -> str:
    """Who made a session's calls, as the reasons name them: "agent kiro (on alice's ...)"."""
    return _who(session)


def _who(session: SessionView) -> str:
    name = session.agent or session.kind.value
    if session.kind is SessionKind.AGENT and session.on_human_credentials and session.human:
        return f"agent {name} (on {session.human}'s credentials)"
    if session.kind is SessionKind.AGENT and session.credentials is CredentialRelation.DELEGATED:
        return f"agent {name} (delegated by {session.delegated_by or 'a person'})"
    if session.kind is SessionKind.AGENT:
        return f"agent {name}"
    return session.principal_arn or session.session_id


def _outcome(ctx: EventContext) -> str:
    if ctx.event.denied:
        return f" (denied: {ctx.event.error_code})"
    if ctx.event.error_code:
        return f" (failed: {ctx.event.error_code})"
    return ""


def _violation_reason(ctx: EventContext, violation: Violation, denied: bool) -> str:
    return f"{_who(ctx.session)}: {violation.reason}{_outcome(ctx)}."


def _unscoped_reason(ctx: EventContext, classification: Classification | None) -> str:
    action = classification.action if classification else ctx.actions[0]
    return (
        f"{_who(ctx.session)} called {action} with no task scope bound to its session"
        f"{_outcome(ctx)}; declare a scope or stop the session."
    )


def _category_reason(
    ctx: EventContext, classification: Classification, *, in_scope: bool | None
) -> str:
    target = f" on {ctx.resources[0]}" if ctx.resources else ""
    why = f" ({'; '.join(classification.reasons)})" if classification.reasons else ""
    text = (
        f"{_who(ctx.session)} called {classification.action}{target}: "
        f"{classification.category.value}, tier {classification.tier}{why}{_outcome(ctx)}"
    )
    if in_scope is True:
        text += f", inside scope {ctx.scope}"
    return text + "."
