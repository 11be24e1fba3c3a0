"""Inherited versus delegated credentials: where an agent's permissions come from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detector.config import AgentSettings, Settings, load_settings
from detector.core.delegation import AgentCredentialRules
from detector.core.pipeline import Pipeline
from detector.core.session_view import SessionView
from detector.core.sessions import SessionTracker
from detector.core.taxonomy import CredentialRelation, SessionKind, Severity
from detector.errors import ConfigError
from detector.wiring import build_pipeline
from tests.unit.test_sessions import (
    ALICE,
    CLI,
    SSO,
    TABLE,
    assume_role,
    iam_user,
    record,
    role_session,
)

KIRO_UA = CLI.format(flags="AQ,E,Z")
SSO_ARN = SSO["arn"]
AGENT_KEY = "ASIAEXAMPLEDELEGATE1"
RULES = AgentCredentialRules(roles=["Agent*", "arn:aws:iam::*:role/bots/*"])


def _mint(
    tracker: SessionTracker,
    caller: dict[str, Any],
    *,
    role: str,
    session: str = "task-17",
    source_identity: str | None = None,
    tags: dict[str, str] | None = None,
    caller_ua: str = CLI.format(flags="E,Z"),
    child_ua: str = KIRO_UA,
) -> SessionView:
    """`caller` assumes `role`; the minted credentials then make one call."""
    tracker.observe(record(caller, userAgent=caller_ua))
    tracker.observe(
        assume_role(
            caller,
            role=role,
            session=session,
            new_key=AGENT_KEY,
            role_id="AROAEXAMPLEDELEGATE1",
            source_identity=source_identity,
            tags=tags,
            minute=1,
            user_agent=caller_ua,
        )
    )
    child = role_session(
        role.rsplit("/", 1)[-1],
        session,
        AGENT_KEY,
        role_id="AROAEXAMPLEDELEGATE1",
        source_identity=source_identity,
        path=role.rpartition("/")[0] + "/" if "/" in role else "",
    )
    return tracker.observe(record(child, minute=2, userAgent=child_ua))


def _delegated(view: SessionView, by: str) -> None:
    assert view.kind is SessionKind.AGENT
    assert view.credentials is CredentialRelation.DELEGATED
    assert not view.on_human_credentials
    assert view.delegated_by == by
    # On whose behalf, and the chain, stay as evidence.
    assert view.human == by
    assert view.parent_session_id is not None
    assert any(e.startswith(f"delegated by {by}") for e in view.evidence)
    assert any("credentials minted by AssumeRole" in e for e in view.evidence)


def _inherited(view: SessionView, human: str) -> None:
    assert view.kind is SessionKind.AGENT
    assert view.credentials is CredentialRelation.INHERITED
    assert view.on_human_credentials
    assert view.delegated_by is None
    assert view.human == human


# --- the person's own credential set: always inherited -----------------------------------


@pytest.mark.parametrize(
    ("identity", "fields", "human"),
    [
        (SSO, {}, "alice@example.com"),
        (ALICE, {}, "alice"),
        (
            role_session("Developer", "alice", "ASIAEXAMPLECONSOLE09"),
            {"sessionCredentialFromConsole": "true"},
            "alice",
        ),
        (role_session("Developer", "alice", "ASIAEXAMPLELOGIN0009"), {"login": True}, "alice"),
        (
            {
                "type": "Root",
                "principalId": "111122223333",
                "arn": "arn:aws:iam::111122223333:root",
                "accountId": "111122223333",
                "accessKeyId": "ASIAEXAMPLEROOT00001",
            },
            {},
            "root",
        ),
    ],
    ids=["identity-center", "iam-user-keys", "console", "aws-login", "root"],
)
def test_an_agent_on_a_persons_own_credentials_is_inherited(
    identity: dict[str, Any], fields: dict[str, Any], human: str
) -> None:
    flags = "AD,AQ" if fields.pop("login", False) else "AQ,E"
    # Even with every agent marker the config knows: the credential set is the person's.
    identity = {**identity}
    view = SessionTracker(TABLE, credential_rules=RULES).observe(
        record(identity, userAgent=CLI.format(flags=flags), **fields)
    )
    _inherited(view, human)
    assert view.credentials.value == "inherited"


def test_a_persons_elevated_role_handed_to_an_agent_is_inherited() -> None:
    tracker = SessionTracker(TABLE, credential_rules=RULES)
    view = _mint(tracker, SSO, role="ProdAdmin", session="alice-elevated")
    _inherited(view, "alice@example.com")
    assert any("not marked for agents" in e for e in view.evidence)


def test_an_agent_role_reassumed_into_the_persons_own_role_is_inherited() -> None:
    tracker = SessionTracker(TABLE, credential_rules=RULES)
    own = role_session("AgentOps", "alice", "ASIAEXAMPLEOWNROLE01")
    # Alice works in AgentOps herself (a console session) and re-assumes the same role.
    tracker.observe(record(own, sessionCredentialFromConsole="true"))
    view = _mint(tracker, own, role="AgentOps", source_identity="agent-kiro-1")
    _inherited(view, "alice")


def test_an_identity_center_role_is_never_an_agent_role() -> None:
    rules = AgentCredentialRules(roles=["AWSReservedSSO_*", "*"])
    tracker = SessionTracker(TABLE, credential_rules=rules)
    person = tracker.observe(record(SSO))
    assert person.kind is SessionKind.HUMAN
    view = tracker.observe(record(SSO, minute=1, userAgent=KIRO_UA))
    _inherited(view, "alice@example.com")


# --- role sessions a person minted for the agent: delegated ------------------------------


def test_agent_role_name_glob_marks_the_session_delegated() -> None:
    tracker = SessionTracker(TABLE, credential_rules=RULES)
    view = _mint(tracker, SSO, role="AgentKiroRole")
    _delegated(view, "alice@example.com")
    assert any("is an agent role" in e for e in view.evidence)


def test_agent_role_arn_glob_marks_the_session_delegated() -> None:
    tracker = SessionTracker(TABLE, credential_rules=RULES)
    view = _mint(tracker, ALICE, role="bots/deployer")
    _delegated(view, "alice")
    assert view.role_arn == "arn:aws:iam::111122223333:role/bots/deployer"


def test_agent_source_identity_marks_the_session_delegated() -> None:
    tracker = SessionTracker(TABLE)
    view = _mint(tracker, SSO, role="ForecastFixRole", source_identity="agent-kiro-ce-4833")
    _delegated(view, "alice@example.com")
    assert "SourceIdentity agent-kiro-ce-4833 marks an agent" in view.evidence


def test_agent_session_tag_marks_the_session_delegated() -> None:
    tracker = SessionTracker(TABLE)
    view = _mint(
        tracker, ALICE, role="ForecastFixRole", tags={"agent_session": "4833", "team": "ce"}
    )
    _delegated(view, "alice")
    assert "session tag agent_session=4833 marks an agent" in view.evidence


def test_markers_alone_make_the_session_an_agent_and_name_it() -> None:
    tracker = SessionTracker(TABLE)
    view = _mint(
        tracker,
        SSO,
        role="ForecastFixRole",
        source_identity="agent-7f3e",
        tags={"agent_kind": "claude-code"},
        child_ua=CLI.format(flags="E,Z"),
    )
    _delegated(view, "alice@example.com")
    assert view.agent == "claude-code"
    assert view.agent_confidence == "mint-time"


def test_a_marker_the_config_does_not_know_does_not_delegate() -> None:
    rules = AgentCredentialRules(source_identities=["bot-*"], session_tags={})
    tracker = SessionTracker(TABLE, credential_rules=rules)
    view = _mint(tracker, SSO, role="ForecastFixRole", source_identity="agent-kiro-ce-4833")
    _inherited(view, "alice@example.com")


def test_sessions_minted_by_a_delegated_agent_stay_delegated() -> None:
    tracker = SessionTracker(TABLE)
    first = _mint(tracker, SSO, role="ForecastFixRole", source_identity="agent-kiro-ce-4833")
    hop = role_session(
        "ForecastFixRole",
        "task-17",
        AGENT_KEY,
        role_id="AROAEXAMPLEDELEGATE1",
        source_identity="agent-kiro-ce-4833",
    )
    tracker.observe(
        assume_role(hop, role="DeployRole", session="deploy", new_key="ASIAEXAMPLEDEPLOYHOP1")
    )
    child = tracker.observe(
        record(role_session("DeployRole", "deploy", "ASIAEXAMPLEDEPLOYHOP1"), minute=3)
    )
    _delegated(child, "alice@example.com")
    assert any(f"through session {first.session_id}" in e for e in child.evidence)


def test_the_assume_role_call_itself_stays_on_the_persons_credentials() -> None:
    tracker = SessionTracker(TABLE)
    # Kiro, on Alice's Identity Center session, mints its own delegated session.
    view = _mint(
        tracker,
        SSO,
        role="ForecastFixRole",
        source_identity="agent-kiro-ce-4833",
        caller_ua=KIRO_UA,
    )
    _delegated(view, "alice@example.com")
    parent = tracker.get(view.parent_session_id or "")
    assert parent is not None
    _inherited(parent, "alice@example.com")


def test_a_brokered_session_is_the_agents_own() -> None:
    broker = role_session("AgentBroker", "agent-broker", "ASIAEXAMPLEBROKER001")
    tracker = SessionTracker(TABLE)
    view = _mint(tracker, broker, role="AgentDocsRole", source_identity="agent-claude-1")
    assert view.kind is SessionKind.AGENT
    assert view.credentials is CredentialRelation.OWN
    assert view.delegated_by is None
    assert not view.on_human_credentials


def test_people_and_services_are_on_their_own_credentials() -> None:
    tracker = SessionTracker(TABLE)
    assert tracker.observe(record(SSO)).credentials is CredentialRelation.OWN
    service = tracker.observe(
        record(role_session("web", "i-0dbc91f429e48eeed", "ASIAEXAMPLEWEB00001"))
    )
    assert service.kind is SessionKind.SERVICE
    assert service.credentials is CredentialRelation.OWN


def test_the_relation_survives_a_snapshot() -> None:
    tracker = SessionTracker(TABLE, credential_rules=RULES)
    view = _mint(tracker, SSO, role="AgentKiroRole")
    data = json.loads(json.dumps(tracker.snapshot()))
    restored = SessionTracker.restore(data, TABLE, credential_rules=RULES)
    again = restored.get(view.session_id)
    assert again == view
    assert again is not None and again.credentials is CredentialRelation.DELEGATED


# --- task scopes and the pipeline -----------------------------------------------------------

SCOPES = """
scopes:
  - name: by-session-name
    match: {session_name: "ce-4833-*"}
    allow: {actions: ["ce:Get*", "lambda:UpdateFunctionCode"]}
  - name: by-agent-only
    match: {agent: kiro}
    allow: {actions: ["ce:Get*"]}
"""


def _pipeline(tmp_path: Path, **agents: Any) -> Pipeline:
    path = tmp_path / "scopes.yaml"
    path.write_text(SCOPES)
    return build_pipeline(Settings(agents=AgentSettings(**agents)), scopes_path=path)


def _run(pipeline: Pipeline, session: str, role: str = "ForecastFixRole") -> list[Any]:
    results = [pipeline.process(e) for e in _scope_events(session, role)]
    return [f for r in results for f in r.findings]


def _scope_events(session: str, role: str) -> list[Any]:
    child = role_session(role, session, AGENT_KEY, role_id="AROAEXAMPLEDELEGATE1")
    return [
        record(SSO, userAgent=CLI.format(flags="E,Z"), eventName="ListBuckets"),
        assume_role(
            SSO, role=role, session=session, new_key=AGENT_KEY, role_id="AROAEXAMPLEDELEGATE1"
        ),
        record(
            child,
            minute=2,
            userAgent=KIRO_UA,
            eventSource="lambda.amazonaws.com",
            eventName="UpdateFunctionCode20150331v2",
            readOnly=False,
        ),
    ]


def test_a_scope_naming_the_session_delegates_it(tmp_path: Path) -> None:
    findings = _run(_pipeline(tmp_path), "ce-4833-kiro")
    assert [f.kind for f in findings] == ["persistence"]
    (finding,) = findings
    assert finding.severity is Severity.LOW
    assert finding.scope == "by-session-name"
    assert finding.credentials is CredentialRelation.DELEGATED
    assert finding.delegated_by == "alice@example.com"
    assert "delegated by alice@example.com" in finding.reason
    assert any(
        e.endswith("task scope by-session-name names these credentials") for e in finding.evidence
    )
    record_ = finding.to_record()
    assert record_["credentials"] == "delegated"
    assert record_["delegated_by"] == "alice@example.com"
    assert record_["human"] == "alice@example.com"


def test_a_scope_on_the_agent_name_alone_does_not_delegate(tmp_path: Path) -> None:
    # The agent name comes from the user agent, which the agent writes itself: binding on it
    # says nothing about whose credentials these are.
    findings = _run(_pipeline(tmp_path), "alice-elevated")
    flagged = [f for f in findings if f.kind == "agent-on-human-credentials"]
    assert len(flagged) == 1
    assert flagged[0].credentials is CredentialRelation.INHERITED
    assert flagged[0].scope == "by-agent-only"
    assert "can do anything that person can" in flagged[0].reason


def test_agent_roles_come_from_the_settings(tmp_path: Path) -> None:
    findings = _run(_pipeline(tmp_path, roles=("ForecastFix*",)), "alice-elevated")
    assert not [f for f in findings if f.kind == "agent-on-human-credentials"]
    assert all(f.credentials is CredentialRelation.DELEGATED for f in findings)


def test_agent_settings_are_validated(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("agents:\n  roles: ['']\n")
    with pytest.raises(ConfigError, match=r"agents\.roles\[0\]"):
        build_pipeline(load_settings(config))
    config.write_text("agents:\n  session_tags: {agent_kind: 3}\n")
    with pytest.raises(ConfigError, match=r"agents\.session_tags\.agent_kind"):
        build_pipeline(load_settings(config))
    config.write_text("agents:\n  roles: AgentRole\n")
    with pytest.raises(ConfigError, match=r"agents\.roles"):
        load_settings(config)


def test_iam_user_helper_is_a_person() -> None:
    # Guards the fixtures above: a plain IAM user with no agent marker is a person.
    view = SessionTracker(TABLE).observe(record(iam_user("bob", key="AKIAEXAMPLEBOB000009")))
    assert view.kind is SessionKind.HUMAN
    assert view.credentials is CredentialRelation.OWN


def test_an_agents_own_assume_role_is_flagged_and_its_delegated_child_is_not(
    tmp_path: Path,
) -> None:
    pipeline = _pipeline(tmp_path)
    mint = assume_role(
        SSO,
        role="ForecastFixRole",
        session="agent-kiro-ce-4833",
        new_key=AGENT_KEY,
        role_id="AROAEXAMPLEDELEGATE1",
        source_identity="agent-kiro-ce-4833",
        user_agent=KIRO_UA,
    )
    child = role_session(
        "ForecastFixRole",
        "agent-kiro-ce-4833",
        AGENT_KEY,
        role_id="AROAEXAMPLEDELEGATE1",
        source_identity="agent-kiro-ce-4833",
    )
    first = pipeline.process(mint)
    later = pipeline.process(
        record(
            child,
            minute=2,
            userAgent=KIRO_UA,
            eventSource="ce.amazonaws.com",
            eventName="GetCostAndUsage",
        )
    )
    flagged = [f for f in first.findings if f.kind == "agent-on-human-credentials"]
    assert [f.event_id for f in flagged] == [mint.event_id]
    assert flagged[0].credentials is CredentialRelation.INHERITED
    assert later.session is not None
    assert later.session.credentials is CredentialRelation.DELEGATED
    assert not [f for f in later.findings if f.kind == "agent-on-human-credentials"]


def test_snapshots_from_before_the_relation_still_restore() -> None:
    tracker = SessionTracker(TABLE)
    view = _mint(tracker, SSO, role="ForecastFixRole", source_identity="agent-kiro-ce-4833")
    data = json.loads(json.dumps(tracker.snapshot()))
    for session in data["sessions"].values():
        del session["scope_binding"]
        if session["inherited"]:
            for key in ("role_arn", "credentials", "delegated_by"):
                del session["inherited"][key]
    restored = SessionTracker.restore(data, TABLE).get(view.session_id)
    assert restored is not None
    assert restored.credentials is CredentialRelation.DELEGATED
    assert restored.delegated_by == "alice@example.com"


def test_agent_settings_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "agents:\n"
        "  roles: ['arn:aws:iam::111122223333:role/ForecastFix*']\n"
        "  source_identities: []\n"
        "  session_tags: {}\n"
    )
    settings = load_settings(config)
    (tmp_path / "scopes.yaml").write_text("scopes: []\n")
    pipeline = build_pipeline(settings, scopes_path=tmp_path / "scopes.yaml")
    views = [
        pipeline.process(e).session for e in _scope_events("alice-elevated", "ForecastFixRole")
    ]
    assert views[-1] is not None
    assert views[-1].credentials is CredentialRelation.DELEGATED
    assert pipeline.tracker.credential_rules.source_identities == ()


def test_a_scope_naming_a_persons_own_session_does_not_delegate_it(tmp_path: Path) -> None:
    path = tmp_path / "scopes.yaml"
    path.write_text(
        "scopes:\n"
        "  - name: alice-task\n"
        "    match: {session_name: 'alice@example.com'}\n"
        "    allow: {actions: ['s3:List*']}\n"
    )
    pipeline = build_pipeline(Settings(), scopes_path=path)
    result = pipeline.process(record(SSO, userAgent=KIRO_UA))
    assert result.session is not None
    assert result.session.credentials is CredentialRelation.INHERITED
    assert [f.kind for f in result.findings] == ["agent-on-human-credentials"]


def test_a_federation_token_of_a_person_is_inherited_even_when_stamped() -> None:
    tracker = SessionTracker(TABLE)
    tracker.observe(
        record(
            ALICE,
            userAgent=KIRO_UA,
            eventSource="sts.amazonaws.com",
            eventName="GetFederationToken",
            requestParameters={
                "name": "agent-kiro-1",
                "tags": [{"key": "agent_session", "value": "1"}],
            },
            responseElements={
                "credentials": {"accessKeyId": "ASIAEXAMPLEFEDAGENT1"},
                "federatedUser": {
                    "federatedUserId": "111122223333:agent-kiro-1",
                    "arn": "arn:aws:sts::111122223333:federated-user/agent-kiro-1",
                },
            },
        )
    )
    federated = {
        "type": "FederatedUser",
        "principalId": "111122223333:agent-kiro-1",
        "arn": "arn:aws:sts::111122223333:federated-user/agent-kiro-1",
        "accountId": "111122223333",
        "accessKeyId": "ASIAEXAMPLEFEDAGENT1",
        "sessionContext": {
            "attributes": {"creationDate": "2026-03-02T10:00:00Z"},
            "sessionIssuer": {"type": "IAMUser", "arn": ALICE["arn"], "userName": "alice"},
        },
    }
    view = tracker.observe(record(federated, minute=1, userAgent=KIRO_UA))
    # A federation token carries the user's own permissions: no role stands in between.
    _inherited(view, "alice")
    assert "on credentials derived from alice's own" in view.evidence
