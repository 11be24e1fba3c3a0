"""Agent credential markers: what says a role session was minted for an agent.

The line between an agent on a person's credentials and an agent a person delegated to is
where the permissions are (see `session_rules`). A role session a person minted carries the
permissions of its role, not the person's, when the role is reserved for agents or when the
session was stamped for one at mint time: a `SourceIdentity` such as `agent-kiro-<task>`
(immutable, persists along role chains) or session tags such as `agent_session`. Both can
only be set by whoever calls `AssumeRole`, never changed by the agent afterwards (identity
notes §2.7, §7). Which roles, identities and tags count is data: `agents.roles`,
`agents.source_identities` and `agents.session_tags` in the config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from detector.core.agent_names import canonical_agent
from detector.core.scope import glob_regex
from detector.errors import ConfigError

# The broker conventions of the identity notes (§7 A): SourceIdentity "agent-<id>", tags
# agent_session and agent_kind. No role is an agent role until the config names it.
DEFAULT_SOURCE_IDENTITIES: tuple[str, ...] = ("agent-*",)
DEFAULT_SESSION_TAGS: Mapping[str, str] = MappingProxyType(
    {"agent_session": "*", "agent_kind": "*"}
)


_IDENTITY_CENTER = "/aws-reserved/sso.amazonaws.com/"


def _alternation(patterns: Iterable[str], *, ignore_case: bool = False) -> re.Pattern[str] | None:
    sources = [glob_regex(p) for p in patterns]
    if not sources:
        return None
    return re.compile("|".join(f"(?:{s})" for s in sources), re.IGNORECASE if ignore_case else 0)


class AgentCredentialRules:
    """Compiled `agents.roles`, `agents.source_identities` and `agents.session_tags`.

    roles              globs on the role name, or on the role ARN when the glob has a ':';
                       case-insensitive, as IAM role names are
    source_identities  globs on the session's SourceIdentity (case-sensitive, like scopes)
    session_tags       tag key -> glob on its value; any one matching tag marks the session
    """

    __slots__ = (
        "_arn_roles",
        "_identities",
        "_named_roles",
        "_tags",
        "roles",
        "session_tags",
        "source_identities",
    )

    def __init__(
        self,
        *,
        roles: Iterable[str] = (),
        source_identities: Iterable[str] = DEFAULT_SOURCE_IDENTITIES,
        session_tags: Mapping[str, str] = DEFAULT_SESSION_TAGS,
    ) -> None:
        self.roles = tuple(roles)
        self.source_identities = tuple(source_identities)
        self.session_tags: Mapping[str, str] = MappingProxyType(dict(session_tags))
        self._arn_roles = _alternation((r for r in self.roles if ":" in r), ignore_case=True)
        self._named_roles = _alternation((r for r in self.roles if ":" not in r), ignore_case=True)
        self._identities = _alternation(self.source_identities)
        self._tags = tuple(
            (key, pattern, re.compile(glob_regex(pattern)))
            for key, pattern in self.session_tags.items()
        )

    def is_agent_role(self, role_arn: str | None) -> bool:
        """Whether the role is reserved for agents. Identity Center permission-set roles
        (`AWSReservedSSO_*`) are a person's by construction and never count."""
        if not role_arn or _IDENTITY_CENTER in role_arn or "/AWSReservedSSO_" in role_arn:
            return False
        if self._arn_roles is not None and self._arn_roles.fullmatch(role_arn):
            return True
        name = role_arn.rsplit("/", 1)[-1]
        return self._named_roles is not None and self._named_roles.fullmatch(name) is not None

    def marks(
        self, *, role_arn: str | None, source_identity: str | None, tags: Mapping[str, str]
    ) -> tuple[str, ...]:
        """One line of evidence per marker the session carries; () when it carries none."""
        found: list[str] = []
        if self.is_agent_role(role_arn):
            found.append(f"role {role_arn} is an agent role (agents.roles)")
        if (
            source_identity
            and self._identities is not None
            and self._identities.fullmatch(source_identity)
        ):
            found.append(f"SourceIdentity {source_identity} marks an agent")
        for key, _, regex in self._tags:
            value = tags.get(key)
            if value is not None and regex.fullmatch(value):
                found.append(f"session tag {key}={value} marks an agent")
        return tuple(found)

    def agent_name(self, source_identity: str | None, tags: Mapping[str, str]) -> str | None:
        """The known agent the marking tags or the SourceIdentity name ("agent-kiro-42")."""
        for key in self.session_tags:
            value = tags.get(key)
            if value:
                name = canonical_agent(value)
                if name is not None:
                    return name
        return canonical_agent(source_identity) if source_identity else None


DEFAULT_RULES = AgentCredentialRules()


def parse_credential_rules(
    *, roles: Any, source_identities: Any, session_tags: Any, source: str
) -> AgentCredentialRules:
    """Rules from configuration; errors name the key as written (`agents.roles[1]`)."""
    for key, values in (("roles", roles), ("source_identities", source_identities)):
        if isinstance(values, str) or not isinstance(values, list | tuple):
            raise ConfigError(f"{source}: 'agents.{key}' must be a list of globs")
        for index, value in enumerate(values):
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{source}: 'agents.{key}[{index}]' must be a non-empty glob")
    if not isinstance(session_tags, Mapping):
        raise ConfigError(f"{source}: 'agents.session_tags' must be a mapping of tag key to glob")
    for tag, pattern in session_tags.items():
        if not isinstance(tag, str) or not tag:
            raise ConfigError(f"{source}: 'agents.session_tags' has an empty or non-string key")
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"{source}: 'agents.session_tags.{tag}' must be a non-empty glob")
    return AgentCredentialRules(
        roles=roles, source_identities=source_identities, session_tags=session_tags
    )
