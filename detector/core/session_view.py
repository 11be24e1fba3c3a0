"""What attribution says about the session an event belongs to.

Produced by `detector.core.sessions.SessionTracker.observe` and read by scope binding,
the severity policy and the outputs. Frozen: a new view is made when something is learned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from detector.core.taxonomy import CredentialRelation, SessionKind

NO_TAGS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionView:
    """One credential set's identity, as far as the events seen so far tell.

    session_id      stable id of the credential set (from account, principal, key, issue time)
    kind            agent, human, service or unknown
    agent           agent name ("kiro", "claude-code", "mcp:<server>", ...) or None
    principal_arn   the caller's ARN as CloudTrail reports it (assumed-role ARN for role sessions)
    role_arn        the IAM role ARN for role sessions, else None
    session_name    the role session name, else None
    source_identity SourceIdentity set at AssumeRole (persists along role chains)
    tags            session tags from the AssumeRole event that minted the credentials
    account_id      the caller's account
    human           the person behind the session when known (SSO user, IAM user, chain root)
    on_human_credentials  an agent found running on a person's credentials
    root_principal_arn    the principal at the root of the AssumeRole chain
    access_key_id   the access key that signed the session's calls (None without one)
    issued_at       sessionContext.attributes.creationDate, when the credentials were issued
    evidence        short strings saying how kind and agent were decided
    principal_type  userIdentity.type ("IAMUser", "AssumedRole", "Root", "AWSService", ...)
    parent_session_id  the session whose STS call minted these credentials, when seen
    agent_confidence   how the agent is known: "aws-asserted" or "client-declared" (a marker
                    on this session or inherited from the parent chain), "mint-time" (an
                    agent role, SourceIdentity or session tag) or "scope-binding"
    credentials     whose permissions the credentials carry: inherited (an agent on a
                    person's), delegated (a role session a person minted for an agent) or own
    delegated_by    the person who minted a delegated session (also in `human`)
    principal_id    userIdentity.principalId: the value of `aws:userid` in this session's
                    requests (role-id:session-name for role sessions), which responders deny on
    """

    session_id: str
    kind: SessionKind
    agent: str | None = None
    principal_arn: str | None = None
    role_arn: str | None = None
    session_name: str | None = None
    source_identity: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: NO_TAGS, compare=False)
    account_id: str | None = None
    human: str | None = None
    on_human_credentials: bool = False
    root_principal_arn: str | None = None
    access_key_id: str | None = None
    issued_at: str | None = None
    evidence: tuple[str, ...] = ()
    principal_type: str | None = None
    parent_session_id: str | None = None
    agent_confidence: str | None = None
    credentials: CredentialRelation = CredentialRelation.OWN
    delegated_by: str | None = None
    principal_id: str | None = None
