"""The rules that turn a session's accumulated facts into its SessionView.

`build_view` is a pure function of a `SessionRecord` and of what the session that minted its
credentials passed down (`Inherited`). Kind is decided in two steps: whether an agent is
involved (a marker on the session, an agent up the chain, or a scope binding; sticky), and
what the credentials are without the agent (human, service or unknown). An agent on human
credentials is the case TrailGuard exists for: an engineer's IAM user, root, console or
Identity Center session, `aws login` credentials, or a role session a person minted and
handed over as it is.

Where the agent's permissions come from is the credential relation. A role session a person
minted into a role other than their own is *delegated* when the session is marked for an
agent (an agent role, an agent SourceIdentity or session tag: `AgentCredentialRules`) or a
task scope names it: its permissions are the role's, not the person's. Without any of that,
a person's elevated role handed to an agent is still *inherited*, the incident's failure mode.
"""

from __future__ import annotations

import re
from functools import lru_cache
from types import MappingProxyType

from detector.core.delegation import DEFAULT_RULES, AgentCredentialRules
from detector.core.session_state import Inherited, SessionRecord, last_segment
from detector.core.session_view import NO_TAGS, SessionView
from detector.core.shared_values import SharedValues
from detector.core.taxonomy import CredentialRelation, SessionKind

_INSTANCE_ID = re.compile(r"^i-[0-9a-fA-F]{8,17}$")
# Console front ends: signin/console.*.amazonaws.com, "S3Console/0.4", "RDS Console", ...
_CONSOLE_UA = re.compile(
    r"^\[?(?:signin\.amazonaws\.com|console\.(?:[a-z0-9-]+\.)*amazonaws\.com)|Console"
)
_LAMBDA_UA = re.compile(r"(?:^|[\s\[])exec-env/AWS_Lambda_")
_CI_UA = re.compile(r"(?:^|[\s\[])exec-env/GitHubActions")
_WORKLOAD_IDP = re.compile(r"token\.actions\.githubusercontent\.com|(?:^|[/.])oidc\.eks\.")

UA_CONSOLE = 1
UA_LAMBDA = 2
UA_CI = 4

# Identity types that are a principal of their own rather than credentials derived from one.
_SELF_ROOTED = frozenset({"IAMUser", "Root", "SAMLUser", "WebIdentityUser", "IdentityCenterUser"})
MINT_TIME = "mint-time"


@lru_cache(maxsize=8192)
def ua_hints(user_agent: str) -> int:
    """Bit set of UA_CONSOLE, UA_LAMBDA and UA_CI for one user-agent string."""
    hints = 0
    if _CONSOLE_UA.search(user_agent):
        hints |= UA_CONSOLE
    if _LAMBDA_UA.search(user_agent):
        hints |= UA_LAMBDA
    if _CI_UA.search(user_agent):
        hints |= UA_CI
    return hints


def build_view(
    record: SessionRecord,
    rules: AgentCredentialRules = DEFAULT_RULES,
    shared: SharedValues | None = None,
) -> tuple[SessionView, Inherited]:
    """The record's view, and what it passes on to sessions it mints. With `shared`, the
    evidence lines are held once for all the sessions that have the same ones."""
    link = record.link
    inherited = record.inherited
    if inherited is None and link is not None:
        inherited = Inherited.from_link(link)

    inherited_tags = dict(inherited.transitive_tags) if inherited is not None else {}
    tags = dict(inherited_tags)
    transitive = dict(inherited_tags)
    if link is not None:
        tags.update(link.incoming_transitive)
        transitive.update(link.incoming_transitive)
        tags.update(link.tags)
        transitive.update((k, v) for k, v in link.tags.items() if k in link.transitive_keys)
    source_identity = (
        record.source_identity
        or (link.source_identity if link else None)
        or (inherited.source_identity if inherited else None)
    )
    role_arn = _role_arn(record)
    marks = rules.marks(role_arn=role_arn, source_identity=source_identity, tags=tags)

    inherited_agent = bool(inherited and inherited.is_agent)
    own = record.marks
    is_agent = own.agent is not None or own.promoted or inherited_agent or bool(marks)
    agent = own.agent
    confidence = own.agent_confidence
    if agent is None and inherited is not None and inherited.is_agent:
        agent, confidence = inherited.agent, inherited.agent_confidence
    if marks and confidence is None:
        agent, confidence = rules.agent_name(source_identity, tags), MINT_TIME
    if is_agent and confidence is None:
        agent, confidence = agent or own.promoted_agent, "scope-binding"
    agent = agent or (own.promoted_agent if is_agent else None)

    base_kind, base_evidence, human, through_chain = _base(record, inherited)
    relation, delegated_by, relation_evidence = CredentialRelation.OWN, None, ""
    if is_agent and base_kind is SessionKind.HUMAN:
        relation, delegated_by, relation_evidence = _relation(
            record, inherited, role_arn, human, marks, through_chain=through_chain
        )
    evidence: list[str] = []
    if is_agent:
        if own.agent_evidence:
            evidence.append(own.agent_evidence)
        if inherited is not None and inherited.is_agent:
            evidence.append(
                f"agent {inherited.agent or 'unidentified'} inherited from session "
                f"{inherited.session_id}"
            )
        evidence.extend(marks)
        if own.promoted and own.promoted_evidence:
            evidence.append(own.promoted_evidence)
    if base_evidence:
        evidence.append(base_evidence)
    if relation_evidence:
        evidence.append(relation_evidence)
    if link is not None:
        evidence.append(
            f"credentials minted by {link.minted_by} in session {link.parent_session_id}"
        )
    if own.login_evidence:
        evidence.append(f"aws login credentials: {own.login_evidence}")
    evidence.extend(f"calls made on its behalf by {service}" for service in record.fas)

    principal_arn = record.principal_arn or (link.arn if link else None)
    lines = tuple(dict.fromkeys(evidence))
    view = SessionView(
        session_id=record.session_id,
        kind=SessionKind.AGENT if is_agent else base_kind,
        agent=agent,
        principal_arn=principal_arn,
        role_arn=role_arn,
        session_name=record.session_name or (link.session_name if link else None),
        source_identity=source_identity,
        tags=MappingProxyType(tags) if tags else NO_TAGS,
        account_id=record.account_id,
        human=human,
        on_human_credentials=relation is CredentialRelation.INHERITED,
        root_principal_arn=_root_arn(record, inherited),
        access_key_id=record.access_key_id,
        issued_at=record.issued_at,
        evidence=lines if shared is None else shared(lines),
        principal_type=record.principal_type,
        parent_session_id=link.parent_session_id if link else None,
        agent_confidence=confidence if is_agent else None,
        credentials=relation,
        delegated_by=delegated_by,
        principal_id=record.principal_id,
    )
    export = Inherited(
        session_id=record.session_id,
        is_agent=is_agent,
        agent=agent,
        agent_confidence=view.agent_confidence,
        base_kind=base_kind,
        human=human,
        root_arn=view.root_principal_arn or principal_arn,
        source_identity=source_identity,
        transitive_tags=MappingProxyType(transitive) if transitive else NO_TAGS,
        role_arn=role_arn,
        credentials=relation,
        delegated_by=delegated_by,
    )
    return view, export


def _relation(
    record: SessionRecord,
    inherited: Inherited | None,
    role_arn: str | None,
    human: str | None,
    marks: tuple[str, ...],
    *,
    through_chain: bool,
) -> tuple[CredentialRelation, str | None, str]:
    """Inherited or delegated, for an agent whose credentials lead back to a person.

    Returns (relation, delegating person, one line of evidence).
    """
    person = human or "a person"
    if not through_chain or inherited is None:
        # The person's own credential set: IAM user keys, root, an Identity Center or console
        # session, `aws login` credentials.
        return CredentialRelation.INHERITED, None, f"on {person}'s own credentials"
    if inherited.credentials is CredentialRelation.DELEGATED:
        # Minted by an agent that was itself delegated to: the permissions came through the
        # delegated role, never through the person's own credentials.
        by = inherited.delegated_by
        return (
            CredentialRelation.DELEGATED,
            by,
            f"delegated by {by or 'a person'} through session {inherited.session_id}",
        )
    if role_arn is None:
        # GetSessionToken, GetFederationToken: the person's own permissions, no role between.
        return CredentialRelation.INHERITED, None, f"on credentials derived from {person}'s own"
    if role_arn == inherited.role_arn or _is_sso(role_arn):
        return CredentialRelation.INHERITED, None, f"on {person}'s own role"
    scope_binding = record.marks.scope_binding
    if not marks and not scope_binding:
        return (
            CredentialRelation.INHERITED,
            None,
            f"role {last_segment(role_arn)} minted by {person} is not marked for agents and no "
            "task scope names the session: the person's role handed to an agent",
        )
    scoped = f"; task scope {scope_binding} names these credentials" if scope_binding else ""
    return CredentialRelation.DELEGATED, human, f"delegated by {person} into {role_arn}{scoped}"


def _is_sso(role_arn: str | None) -> bool:
    role_path = role_arn or ""
    name = last_segment(role_arn) or ""
    return name.startswith("AWSReservedSSO_") or "/aws-reserved/sso.amazonaws.com/" in role_path


def _base(
    record: SessionRecord, inherited: Inherited | None
) -> tuple[SessionKind, str, str | None, bool]:
    """Kind as if no agent were involved: (kind, evidence, human, through the chain).

    The last is True when the kind comes from whoever minted the credentials rather than
    from the credentials' own identity (an IAM user, an Identity Center session, ...).
    """
    kind = record.principal_type
    chain_human = inherited.human if inherited is not None else None
    role_name = last_segment(_role_arn(record)) or ""
    role_path = _role_arn(record) or ""
    sso = _is_sso(_role_arn(record))
    known_chain = inherited is not None and inherited.base_kind is not SessionKind.UNKNOWN

    if kind == "AWSService":
        return SessionKind.SERVICE, f"AWS service {record.invoked_by or 'principal'}", None, False
    if record.invoked_by and not (record.principal_arn or record.principal_id):
        return SessionKind.SERVICE, f"event by AWS service {record.invoked_by}", None, False
    if kind == "IAMUser":
        name = record.user_name or last_segment(record.principal_arn)
        return SessionKind.HUMAN, f"IAM user {name}", name, False
    if kind == "Root":
        return SessionKind.HUMAN, "root user", chain_human or "root", False
    if sso:
        name = record.session_name
        return SessionKind.HUMAN, f"IAM Identity Center session of {name}", name, False
    if kind in ("SAMLUser", "IdentityCenterUser"):
        name = record.user_name or record.principal_id
        return SessionKind.HUMAN, f"{kind} {name}", name, False
    if record.on_behalf_of:
        return SessionKind.HUMAN, "identity-enhanced session", record.on_behalf_of, False
    if record.console or record.hints & UA_CONSOLE:
        human = chain_human or record.session_name or record.user_name
        return SessionKind.HUMAN, "console session", human, False
    if "/aws-service-role/" in role_path or role_name.startswith("AWSServiceRoleFor"):
        return SessionKind.SERVICE, "service-linked role", None, False
    if record.session_name and _INSTANCE_ID.match(record.session_name):
        return SessionKind.SERVICE, f"EC2 instance role session {record.session_name}", None, False
    if record.credentials_issued_to:
        return (
            SessionKind.SERVICE,
            f"credentials issued to {record.credentials_issued_to}",
            None,
            False,
        )
    if record.hints & UA_LAMBDA:
        return SessionKind.SERVICE, "Lambda runtime user agent", None, False
    # On a session minted by an STS call we saw, `aws login` flags in the user agent describe
    # the source credentials the call was made with, not this session: the chain decides.
    if record.marks.login_evidence and not known_chain:
        human = chain_human or record.user_name or record.session_name
        return SessionKind.HUMAN, "console credentials via aws login", human, False
    if inherited is not None and known_chain:
        return inherited.base_kind, "", chain_human, True
    if kind == "FederatedUser" and record.issuer_type in ("IAMUser", "Root"):
        name = last_segment(record.issuer_arn) if record.issuer_type == "IAMUser" else "root"
        return SessionKind.HUMAN, f"federation token of {record.issuer_type} {name}", name, False
    if record.hints & UA_CI:
        return SessionKind.SERVICE, "GitHub Actions execution environment", None, False
    if record.identity_provider and _WORKLOAD_IDP.search(record.identity_provider):
        return (
            SessionKind.SERVICE,
            f"workload identity from {record.identity_provider}",
            None,
            False,
        )
    return SessionKind.UNKNOWN, "", chain_human, False


def _role_arn(record: SessionRecord) -> str | None:
    if record.issuer_type == "Role" and record.issuer_arn:
        return record.issuer_arn
    return record.link.role_arn if record.link else None


def _root_arn(record: SessionRecord, inherited: Inherited | None) -> str | None:
    if record.link is not None and inherited is not None:
        return inherited.root_arn
    if record.principal_type in _SELF_ROOTED:
        return record.principal_arn
    if record.principal_type == "FederatedUser":
        return record.issuer_arn
    role = last_segment(_role_arn(record)) or ""
    if role.startswith("AWSReservedSSO_"):
        return record.principal_arn
    return None
