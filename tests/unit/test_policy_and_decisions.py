"""Severity policy (every finding kind, agents vs people) and alert/response decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from detector.core.catalog import CatalogEntry, Classification
from detector.core.decide import Decider
from detector.core.findings import CATEGORY_KINDS, FINDING_KINDS, Finding
from detector.core.parse import parse_record
from detector.core.policy import EventContext, SeverityPolicy, judge
from detector.core.scope import ScopeVerdict, Violation
from detector.core.session_view import SessionView
from detector.core.taxonomy import Category, SessionKind, Severity
from tests.conftest import make_event

POLICY = SeverityPolicy()
AGENT = SessionView(
    session_id="ses-agent",
    kind=SessionKind.AGENT,
    agent="kiro",
    principal_arn="arn:aws:sts::1:assumed-role/r/s",
)
HUMAN = SessionView(
    session_id="ses-human",
    kind=SessionKind.HUMAN,
    principal_arn="arn:aws:iam::1:user/dana",
    human="dana",
)


def classified(
    action: str, category: Category, tier: int, reasons: tuple[str, ...] = ()
) -> Classification:
    entry = CatalogEntry(
        action=action, access_level="Write", category=category, tier=tier, known=True, source="test"
    )
    return Classification(action=action, category=category, tier=tier, reasons=reasons, entry=entry)


def context(
    session: SessionView,
    classification: Classification,
    *,
    violations: tuple[Violation, ...] | None = (),
    error: str | None = None,
) -> EventContext:
    overrides = {"errorCode": error} if error else {}
    event = parse_record(make_event(eventID="e-1", **overrides))
    verdict = None if violations is None else ScopeVerdict(scope="task", violations=violations)
    return EventContext(
        event=event,
        session=session,
        actions=(classification.action,),
        resources=("arn:aws:cloudformation:us-east-1:1:stack/prod/*",),
        classifications=(classification,),
        scope="task" if violations is not None else None,
        verdict=verdict,
    )


def out_of_scope(action: str) -> tuple[Violation, ...]:
    return (
        Violation(kind="out-of-scope-action", reason=f"{action} is not allowed", subject=action),
    )


def kinds(findings: list[Finding]) -> dict[str, Severity]:
    return {f.kind: f.severity for f in findings}


# Every (category, tier) pair an out-of-scope agent action can have, and its severity:
# tiers 0 and 1 are critical whatever the category; below them dangerous categories stay
# critical, other writes are high and reads and lists medium.
_EXPECTED_AGENT = {
    **{(category, tier): Severity.CRITICAL for category in Category for tier in (0, 1)},
    **{
        (category, tier): Severity.CRITICAL
        for category in Category
        if category.dangerous
        for tier in (2, 3)
    },
    **{
        (category, tier): Severity.HIGH
        for category in (Category.WRITE, Category.PERSISTENCE, Category.CREDENTIAL_ACCESS)
        for tier in (2, 3)
    },
    **{
        (category, tier): Severity.MEDIUM
        for category in (Category.READ, Category.LIST)
        for tier in (2, 3)
    },
}


def test_the_expected_table_covers_every_category_and_tier() -> None:
    assert set(_EXPECTED_AGENT) == {(c, t) for c in Category for t in range(4)}


@pytest.mark.parametrize(
    ("category", "tier", "expected"),
    [(c, t, sev) for (c, t), sev in sorted(_EXPECTED_AGENT.items(), key=str)],
)
def test_agent_out_of_scope_severity_follows_the_tier(
    category: Category, tier: int, expected: Severity
) -> None:
    c = classified("svc:Act", category, tier)
    found = kinds(judge(context(AGENT, c, violations=out_of_scope("svc:Act")), POLICY))
    assert found["out-of-scope-action"] is expected
    unscoped = kinds(judge(context(AGENT, c, violations=None), POLICY))
    assert unscoped["unscoped-agent"] is expected
    kind = CATEGORY_KINDS.get(category)
    if kind is not None:
        # The category finding of an out-of-scope action carries the same severity.
        assert found[kind] is expected
        assert unscoped[kind] is expected


@pytest.mark.parametrize(
    ("action", "category", "tier"),
    [
        ("iam:CreateAccessKey", Category.PERSISTENCE, 1),
        ("iam:UpdateAssumeRolePolicy", Category.PERSISTENCE, 1),
        ("lambda:AddPermission", Category.PERSISTENCE, 1),
        ("lambda:UpdateFunctionCode", Category.PERSISTENCE, 1),
        ("iam:CreateLoginProfile", Category.PERSISTENCE, 1),
        ("secretsmanager:GetSecretValue", Category.CREDENTIAL_ACCESS, 1),
        ("ssm:SendCommand", Category.WRITE, 1),
    ],
)
def test_ways_access_outlives_the_session_are_critical_for_an_out_of_scope_agent(
    action: str, category: Category, tier: int
) -> None:
    c = classified(action, category, tier)
    found = kinds(judge(context(AGENT, c, violations=out_of_scope(action)), POLICY))
    assert found["out-of-scope-action"] is Severity.CRITICAL


@pytest.mark.parametrize(
    ("tier", "expected"),
    [(0, Severity.HIGH), (1, Severity.MEDIUM), (2, Severity.LOW), (3, None)],
)
@pytest.mark.parametrize("category", [c for c in Category if c in CATEGORY_KINDS])
def test_people_stay_on_the_catalogue_tier_alone(
    category: Category, tier: int, expected: Severity | None
) -> None:
    found = kinds(judge(context(HUMAN, classified("svc:Act", category, tier)), POLICY))
    assert found == ({} if expected is None else {CATEGORY_KINDS[category]: expected})


@pytest.mark.parametrize(
    ("key", "tier", "category"),
    [
        ("out_of_scope_tier_0", 0, Category.PERSISTENCE),
        ("out_of_scope_tier_1", 1, Category.CREDENTIAL_ACCESS),
        ("out_of_scope_dangerous", 2, Category.DESTROY),
        ("out_of_scope_mutating", 2, Category.WRITE),
        ("out_of_scope_read", 3, Category.READ),
    ],
)
def test_every_agent_threshold_is_its_own_setting(key: str, tier: int, category: Category) -> None:
    policy = SeverityPolicy(**{key: Severity.INFO})  # type: ignore[arg-type]
    c = classified("svc:Act", category, tier)
    found = kinds(judge(context(AGENT, c, violations=out_of_scope("svc:Act")), policy))
    assert found["out-of-scope-action"] is Severity.INFO
    assert (
        kinds(judge(context(AGENT, c, violations=out_of_scope("svc:Act")), POLICY))[
            "out-of-scope-action"
        ]
        is not Severity.INFO
    )


def test_denied_attempt_at_a_tier_1_persistence_action_is_high() -> None:
    c = classified("iam:CreateAccessKey", Category.PERSISTENCE, 1)
    found = kinds(
        judge(context(AGENT, c, violations=out_of_scope(c.action), error="AccessDenied"), POLICY)
    )
    assert found == {"out-of-scope-action": Severity.HIGH, "persistence": Severity.HIGH}


def test_unscoped_finding_names_the_riskiest_action_by_tier() -> None:
    read_secret = classified("secretsmanager:GetSecretValue", Category.CREDENTIAL_ACCESS, 1)
    write = classified("s3:PutObject", Category.WRITE, 2)
    event = parse_record(make_event(eventID="e-2"))
    ctx = EventContext(
        event=event,
        session=AGENT,
        actions=(write.action, read_secret.action),
        resources=(),
        classifications=(write, read_secret),
        scope=None,
        verdict=None,
    )
    (unscoped,) = [f for f in judge(ctx, POLICY) if f.kind == "unscoped-agent"]
    assert unscoped.action == "secretsmanager:GetSecretValue"
    assert unscoped.severity is Severity.CRITICAL


def test_agent_denied_attempt_at_dangerous_action_is_high() -> None:
    c = classified("cloudformation:DeleteStack", Category.DESTROY, 0)
    found = kinds(
        judge(context(AGENT, c, violations=out_of_scope(c.action), error="AccessDenied"), POLICY)
    )
    assert found == {"out-of-scope-action": Severity.HIGH, "destructive-action": Severity.HIGH}


def test_agent_denied_ordinary_write_is_one_step_lower() -> None:
    c = classified("lambda:CreateFunction", Category.WRITE, 2)
    found = kinds(
        judge(context(AGENT, c, violations=out_of_scope(c.action), error="AccessDenied"), POLICY)
    )
    assert found == {"out-of-scope-action": Severity.MEDIUM}


def test_agent_in_scope_dangerous_action_is_low() -> None:
    c = classified("s3:DeleteObject", Category.DESTROY, 1)
    found = judge(context(AGENT, c, violations=()), POLICY)
    assert kinds(found) == {"destructive-action": Severity.LOW}
    assert "inside scope task" in found[0].reason


def test_agent_in_scope_read_raises_nothing() -> None:
    assert (
        judge(
            context(AGENT, classified("ce:GetCostAndUsage", Category.READ, 3), violations=()),
            POLICY,
        )
        == []
    )


@pytest.mark.parametrize(
    ("category", "kind"),
    [
        (Category.DESTROY, "destructive-action"),
        (Category.PERMISSIONS, "privilege-escalation"),
        (Category.DEFENSE_EVASION, "defense-evasion"),
        (Category.DATA_EXPOSURE, "data-exposure"),
        (Category.CREDENTIAL_ACCESS, "credential-access"),
        (Category.PERSISTENCE, "persistence"),
    ],
)
def test_unscoped_agent_raises_unscoped_and_category_kind(category: Category, kind: str) -> None:
    c = classified("svc:Act", category, 0)
    found = kinds(judge(context(AGENT, c, violations=None), POLICY))
    assert found == {"unscoped-agent": Severity.CRITICAL, kind: Severity.CRITICAL}


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        ("out-of-scope-resource", "arn:aws:s3:::other"),
        ("out-of-scope-region", "eu-west-1"),
        ("out-of-scope-account", "999999999999"),
        ("scope-expired", "2025-12-01T00:00:00Z"),
    ],
)
def test_other_violation_kinds_take_the_event_category(kind: str, subject: str) -> None:
    c = classified("s3:PutObject", Category.WRITE, 2)
    violation = Violation(kind=kind, reason="outside", subject=subject)
    found = judge(context(AGENT, c, violations=(violation,)), POLICY)
    assert kinds(found) == {kind: Severity.HIGH}
    assert found[0].action == "s3:PutObject"


@pytest.mark.parametrize(
    ("tier", "expected"), [(0, Severity.HIGH), (1, Severity.MEDIUM), (2, Severity.LOW)]
)
def test_people_are_judged_by_catalogue_tier(tier: int, expected: Severity) -> None:
    c = classified("logs:DeleteLogGroup", Category.DESTROY, tier)
    assert kinds(judge(context(HUMAN, c, violations=None), POLICY)) == {
        "destructive-action": expected
    }


def test_people_reads_and_writes_raise_nothing() -> None:
    assert (
        judge(
            context(HUMAN, classified("s3:PutObject", Category.WRITE, 2), violations=None), POLICY
        )
        == []
    )


def test_finding_carries_evidence_and_contract_fields() -> None:
    c = classified(
        "s3:PutBucketPolicy",
        Category.DATA_EXPOSURE,
        0,
        reasons=("bucket policy grants Principal '*'",),
    )
    (finding,) = judge(context(HUMAN, c, violations=None), POLICY)
    record = finding.to_record()
    assert set(record) >= {
        "type",
        "event_id",
        "event_time",
        "session_id",
        "session_kind",
        "agent",
        "principal",
        "action",
        "resources",
        "kind",
        "category",
        "severity",
        "scope",
        "reason",
    }
    assert record["type"] == "finding"
    assert record["category"] == "data-exposure"
    assert record["event_time"] == "2025-12-08T10:00:00Z"
    assert "bucket policy grants Principal '*'" in record["evidence"]
    assert "Principal '*'" in record["reason"]


def test_every_finding_kind_is_registered_with_a_summary() -> None:
    issue_kinds = {
        "out-of-scope-action",
        "out-of-scope-resource",
        "out-of-scope-region",
        "out-of-scope-account",
        "scope-expired",
        "unscoped-agent",
        "agent-on-human-credentials",
        "destructive-action",
        "privilege-escalation",
        "defense-evasion",
        "data-exposure",
        "credential-access",
        "access-denied-burst",
    }
    assert issue_kinds <= set(FINDING_KINDS)
    assert all(FINDING_KINDS.get(k).summary for k in FINDING_KINDS)


def _finding(kind: str, severity: Severity, event_id: str, session: SessionView = AGENT) -> Finding:
    return Finding(
        kind=kind,
        severity=severity,
        event_id=event_id,
        event_time=datetime(2025, 12, 8, tzinfo=UTC),
        session_id=session.session_id,
        session_kind=session.kind,
        agent=session.agent,
        principal=session.principal_arn,
        human=session.human,
        action="svc:Act",
        resources=(),
        category=None,
        scope="task",
        reason="r",
    )


def test_alerts_one_per_session_and_kind_and_escalate() -> None:
    decider = Decider(POLICY, responses_enabled=False)
    first, _ = decider.decide(
        [_finding("out-of-scope-action", Severity.MEDIUM, "e1")], AGENT, on_violation="alert"
    )
    again, _ = decider.decide(
        [_finding("out-of-scope-action", Severity.MEDIUM, "e2")], AGENT, on_violation="alert"
    )
    worse, _ = decider.decide(
        [_finding("out-of-scope-action", Severity.CRITICAL, "e3")], AGENT, on_violation="alert"
    )
    other, _ = decider.decide(
        [_finding("destructive-action", Severity.CRITICAL, "e3")], AGENT, on_violation="alert"
    )
    assert len(first) == 1 and again == [] and len(worse) == 1 and len(other) == 1
    assert first[0].dedup_key == worse[0].dedup_key != other[0].dedup_key
    assert worse[0].severity is Severity.CRITICAL
    assert worse[0].finding_event_ids == ("e1", "e2", "e3")


def test_low_findings_page_no_one() -> None:
    alerts, responses = Decider(POLICY, responses_enabled=True).decide(
        [_finding("destructive-action", Severity.LOW, "e1")], AGENT, on_violation="revoke"
    )
    assert alerts == [] and responses == []


def test_revoke_once_per_agent_session_and_dry_run_travels_with_it() -> None:
    decider = Decider(POLICY, responses_enabled=False)
    crit = [_finding("out-of-scope-action", Severity.CRITICAL, "e1")]
    _, responses = decider.decide(crit, AGENT, on_violation="revoke")
    assert [(r.action, r.event_id, r.dry_run) for r in responses] == [
        ("revoke-session", "e1", True)
    ]
    _, again = decider.decide(
        [_finding("destructive-action", Severity.CRITICAL, "e2")], AGENT, on_violation="revoke"
    )
    assert again == []
    _, live = Decider(POLICY, responses_enabled=True).decide(crit, AGENT, on_violation="revoke")
    assert live[0].dry_run is False


@pytest.mark.parametrize(
    ("session", "on_violation", "severity"),
    [
        (HUMAN, "revoke", Severity.CRITICAL),
        (AGENT, "alert", Severity.CRITICAL),
        (AGENT, None, Severity.CRITICAL),
        (AGENT, "revoke", Severity.HIGH),
    ],
)
def test_no_revoke_for_people_alert_scopes_or_below_threshold(
    session: SessionView, on_violation: str | None, severity: Severity
) -> None:
    _, responses = Decider(POLICY, responses_enabled=True).decide(
        [_finding("out-of-scope-action", severity, "e1", session)],
        session,
        on_violation=on_violation,
    )
    assert responses == []


def test_decider_snapshot_restores_dedup() -> None:
    decider = Decider(POLICY, responses_enabled=False)
    decider.decide(
        [_finding("out-of-scope-action", Severity.CRITICAL, "e1")], AGENT, on_violation="revoke"
    )
    restored = Decider(POLICY, responses_enabled=False)
    restored.restore(decider.snapshot())
    alerts, responses = restored.decide(
        [_finding("out-of-scope-action", Severity.CRITICAL, "e2")], AGENT, on_violation="revoke"
    )
    assert alerts == [] and responses == []


def test_open_alerts_of_one_or_many_kinds_and_ids_survive_a_restore_and_go_on() -> None:
    """A session's alerts are held compactly (one alert bare, one id as a string): each
    shape snapshots, restores and keeps escalating and collecting ids as before."""
    other = SessionView(session_id="ses-other", kind=SessionKind.AGENT, agent="kiro")
    decider = Decider(POLICY, responses_enabled=False)
    for finding, session in [
        (_finding("out-of-scope-action", Severity.MEDIUM, "e1"), AGENT),
        (_finding("out-of-scope-action", Severity.MEDIUM, "e1"), AGENT),  # the same id twice
        (_finding("destructive-action", Severity.HIGH, "e2"), AGENT),
        (_finding("destructive-action", Severity.HIGH, "e3"), AGENT),
        (_finding("out-of-scope-action", Severity.MEDIUM, "o1", other), other),
    ]:
        decider.decide([finding], session, on_violation="alert")
    saved = decider.snapshot()
    assert saved["alerts"][AGENT.session_id] == {
        "out-of-scope-action": ["medium", ["e1"], "2025-12-08T00:00:00Z", "2025-12-08T00:00:00Z"],
        "destructive-action": [
            "high",
            ["e2", "e3"],
            "2025-12-08T00:00:00Z",
            "2025-12-08T00:00:00Z",
        ],
    }
    restored = Decider(POLICY, responses_enabled=False)
    restored.restore(saved)
    assert restored.snapshot() == saved
    assert restored.worst_severities() == {
        AGENT.session_id: Severity.HIGH,
        "ses-other": Severity.MEDIUM,
    }
    # The one-kind session gains a second kind; both escalate with every id they saw.
    new_kind, _ = restored.decide(
        [_finding("unscoped-agent", Severity.HIGH, "o2", other)], other, on_violation="alert"
    )
    worse, _ = restored.decide(
        [_finding("out-of-scope-action", Severity.CRITICAL, "o3", other)],
        other,
        on_violation="alert",
    )
    assert [a.finding_event_ids for a in new_kind] == [("o2",)]
    assert [a.finding_event_ids for a in worse] == [("o1", "o3")]
    escalated, _ = restored.decide(
        [_finding("destructive-action", Severity.CRITICAL, "e4")], AGENT, on_violation="alert"
    )
    assert [a.finding_event_ids for a in escalated] == [("e2", "e3", "e4")]
    restored.forget("ses-other")
    assert "ses-other" not in restored.snapshot()["alerts"]


def test_a_long_term_user_key_is_disabled_and_a_session_revoked() -> None:
    from detector.core.decide import response_action
    from detector.core.session_view import SessionView
    from detector.core.taxonomy import SessionKind

    user_key = SessionView(
        session_id="s1",
        kind=SessionKind.AGENT,
        principal_type="IAMUser",
        access_key_id="AKIAEXAMPLEUSER00001",
    )
    user_session = SessionView(
        session_id="s2",
        kind=SessionKind.AGENT,
        principal_type="IAMUser",
        access_key_id="ASIAEXAMPLEUSER00001",
    )
    role_session = SessionView(
        session_id="s3", kind=SessionKind.AGENT, principal_type="AssumedRole"
    )
    assert response_action(user_key) == "disable-access-key"
    assert response_action(user_session) == "revoke-session"
    assert response_action(role_session) == "revoke-session"
