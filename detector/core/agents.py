"""Agent markers: what in a CloudTrail record says an AI agent made the call.

Two fields carry markers. `userIdentity.invokedBy` is written by AWS: an AWS-managed MCP
server (`aws-mcp.amazonaws.com`, `eks-mcp.amazonaws.com`, ...) signs with the caller's
credentials and names itself there, so the agent cannot forge it. Everything else comes from
the user agent, which the calling process writes and can set to anything: AWS CLI feature ids
in `m/` (AN..AW since aws-cli 2.35.24), `exec-env/` from AWS_EXECUTION_ENV, `app/` from
AWS_SDK_UA_APP_ID, and the tokens the awslabs MCP servers and mcp-proxy-for-aws append.
Such markers attribute calls; they must never authorise anything.

The table is data. Each row is a regex over one field; the first matching row wins, rows
declared by AWS before rows declared by the client, and inside each group in table order.
Named groups fill `{group}` in the row's name. A group called `agent` is special: its value
must name a known agent (`agent_names.canonical_agent`), otherwise the row does not match and
the next row gets its chance. That is how `MCPClient/Claude-Code#1.0` becomes "claude-code"
while `MCPClient/my-tool#1.0` falls through to the MCP server row, "mcp:<server>".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from detector.core.agent_names import canonical_agent
from detector.errors import ConfigError

USER_AGENT = "user_agent"
INVOKED_BY = "invoked_by"
FIELDS = (USER_AGENT, INVOKED_BY)

AWS_ASSERTED = "aws-asserted"
CLIENT_DECLARED = "client-declared"
CONFIDENCES = (AWS_ASSERTED, CLIENT_DECLARED)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MarkerError(ValueError):
    """An invalid marker row; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentMarker:
    """One row of the marker table.

    name            agent name, or a template whose `{group}` parts come from named groups
    field           "user_agent" or "invoked_by"
    pattern         regular expression searched in that field
    confidence      "aws-asserted" (invokedBy, written by AWS) or "client-declared" (spoofable)
    description     what sets the marker and where that is documented
    credential_login  the row marks `aws login` console-derived credentials, not an agent
    evidence        how a hit is reported; same `{group}` templating; empty for a default
    """

    name: str
    field: str
    pattern: str
    confidence: str
    description: str
    credential_login: bool = False
    evidence: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise MarkerError("name", "is empty")
        if self.field not in FIELDS:
            raise MarkerError("field", f"{self.field!r} is not one of {', '.join(FIELDS)}")
        if self.confidence not in CONFIDENCES:
            raise MarkerError(
                "confidence", f"{self.confidence!r} is not one of {', '.join(CONFIDENCES)}"
            )
        if self.confidence == AWS_ASSERTED and self.field != INVOKED_BY:
            # Only invokedBy is written by AWS; a user agent is whatever the caller sends.
            raise MarkerError("confidence", "only invoked_by markers can be aws-asserted")
        try:
            groups = re.compile(self.pattern).groupindex
        except re.error as exc:
            raise MarkerError("pattern", f"{self.pattern!r} does not compile: {exc}") from None
        for key, template in (("name", self.name), ("evidence", self.evidence)):
            for placeholder in _PLACEHOLDER.findall(template):
                if placeholder not in groups:
                    raise MarkerError(
                        key, f"{{{placeholder}}} has no named group (?P<{placeholder}>...)"
                    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentMatch:
    """The row that matched, the agent name it produced and a short account of why."""

    agent: str
    marker: AgentMarker
    evidence: str
    rank: int = 0  # position in the table: lower is more specific or more trusted


@dataclass(frozen=True, slots=True, kw_only=True)
class UserAgentFacts:
    """Everything the table says about one (user agent, invokedBy) pair."""

    agent: AgentMatch | None = None
    console_credentials: str | None = None  # evidence of `aws login` credentials


NO_FACTS = UserAgentFacts()


def _m_flag(code: str, agent: str, variable: str, *, login: bool = False) -> AgentMarker:
    # A whole id inside the comma-separated `m/` list: "AN" must not match "ANX" or "XAN".
    pattern = rf"(?:^|[\s\[])m/(?:[^\s,\]]*,)*{code}(?=[,\s\]]|$)"
    if login:
        return AgentMarker(
            name="aws-login",
            field=USER_AGENT,
            pattern=pattern,
            confidence=CLIENT_DECLARED,
            description=f"AWS CLI feature id {code} ({variable}): credentials from `aws login`, "
            "aws/aws-cli v2 awscli/botocore/useragent.py",
            credential_login=True,
            evidence=f"user agent m/ flag {code} ({variable})",
        )
    return AgentMarker(
        name=agent,
        field=USER_AGENT,
        pattern=pattern,
        confidence=CLIENT_DECLARED,
        description=f"AWS CLI >= 2.35.24 sets feature id {code} when {variable} is in the "
        "environment (aws/aws-cli v2 awscli/botocore/useragent.py)",
        evidence=f"user agent m/ flag {code} ({variable})",
    )


_MCP_CLIENT = r"(?:^|[\s\[])MCPClient/(?P<{group}>[^#/\s][^#/]{{0,63}}?)#"

DEFAULT_MARKERS: tuple[AgentMarker, ...] = (
    AgentMarker(
        name="mcp:{server}",
        field=INVOKED_BY,
        pattern=r"^(?P<server>[a-z0-9][a-z0-9-]*-mcp)\.amazonaws\.com$",
        confidence=AWS_ASSERTED,
        description="AWS-managed MCP servers call with the caller's credentials and AWS logs "
        "their service principal in invokedBy (Agent Toolkit for AWS user guide, CloudTrail)",
        evidence="invokedBy {server}.amazonaws.com (AWS-managed MCP server)",
    ),
    AgentMarker(
        name="{agent}",
        field=USER_AGENT,
        pattern=_MCP_CLIENT.format(group="agent"),
        confidence=CLIENT_DECLARED,
        description="awslabs aws-api-mcp-server appends MCPClient/<clientInfo.name>#<version> "
        "(core/common/config.py get_user_agent_extra)",
        evidence="user agent MCPClient/{agent} (MCP client name)",
    ),
    AgentMarker(
        name="{agent}",
        field=USER_AGENT,
        pattern=r"(?:^|[\s\[])mcp-proxy-for-aws/\S+\s+(?P<agent>[^/\s]{1,64})/",
        confidence=CLIENT_DECLARED,
        description="mcp-proxy-for-aws sends '<proxy>/<v> <client-name>/<client-version>' "
        "(aws/mcp-proxy-for-aws sigv4_helper.py _build_user_agent)",
        evidence="user agent mcp-proxy-for-aws client {agent}",
    ),
    _m_flag("AN", "claude-code", "CLAUDECODE"),
    _m_flag("AO", "gemini-cli", "GEMINI_CLI"),
    _m_flag("AP", "codex", "CODEX_THREAD_ID"),
    _m_flag("AQ", "kiro", "KIRO_SESSION_ID"),
    _m_flag("AR", "opencode", "OPENCODE"),
    _m_flag("AS", "antigravity", "ANTIGRAVITY_AGENT"),
    _m_flag("AT", "amp", "AMP_CURRENT_THREAD_ID"),
    _m_flag("AU", "pi", "PI_CODING_AGENT"),
    _m_flag("AV", "copilot", "COPILOT_CLI"),
    _m_flag("AW", "cursor", "CURSOR_AGENT"),
    AgentMarker(
        name="q-developer",
        field=USER_AGENT,
        pattern=r"(?:^|[\s\[])exec-env/\S*AmazonQ-For-CLI",
        confidence=CLIENT_DECLARED,
        description="Amazon Q Developer CLI use_aws/execute_bash append 'AmazonQ-For-CLI "
        "Version/<v>' to AWS_EXECUTION_ENV (aws/amazon-q-developer-cli PR #1417)",
        evidence="user agent exec-env AmazonQ-For-CLI",
    ),
    AgentMarker(
        name="kiro",
        field=USER_AGENT,
        pattern=r"(?:^|[\s\[])exec-env/(?i:\S*kiro)",
        confidence=CLIENT_DECLARED,
        description="Kiro sets AWS_EXECUTION_ENV for the commands it runs (closed source; "
        "successor of Amazon Q Developer CLI)",
        evidence="user agent exec-env names Kiro",
    ),
    AgentMarker(
        name="{agent}",
        field=USER_AGENT,
        pattern=r"(?:^|[\s\[])app/(?P<agent>[^\s\]]{1,50})",
        confidence=CLIENT_DECLARED,
        description="AWS_SDK_UA_APP_ID / sdk_ua_app_id naming a known agent (AWS SDKs and "
        "Tools reference guide, Application ID)",
        evidence="user agent app/{agent}",
    ),
    AgentMarker(
        name="strands-agents",
        field=USER_AGENT,
        pattern=r"(?<![\w-])strands-agents(?![\w-])",
        confidence=CLIENT_DECLARED,
        description="Strands Agents adds 'strands-agents' to its AWS user agent "
        "(strands-agents/harness-sdk PR #23)",
        evidence="user agent strands-agents",
    ),
    AgentMarker(
        name="mcp:{server}",
        field=USER_AGENT,
        pattern=r"(?:^|[\s\[])md/awslabs#mcp#(?P<server>[^#\s\]]{1,64})",
        confidence=CLIENT_DECLARED,
        description="awslabs MCP servers append md/awslabs#mcp#<server>#<version> (awslabs/mcp)",
        evidence="user agent md/awslabs#mcp#{server}",
    ),
    AgentMarker(
        name="mcp:{server}",
        field=USER_AGENT,
        pattern=r"(?:^|[\s\[])awslabs/mcp/(?P<server>[^/\s\]]{1,64})",
        confidence=CLIENT_DECLARED,
        description="older awslabs MCP servers use user_agent_extra awslabs/mcp/<server>/<version>",
        evidence="user agent awslabs/mcp/{server}",
    ),
    AgentMarker(
        name="mcp:proxy-for-aws",
        field=USER_AGENT,
        pattern=r"(?:^|[\s\[])mcp-proxy-for-aws/",
        confidence=CLIENT_DECLARED,
        description="mcp-proxy-for-aws, the local SigV4 proxy to AWS-managed MCP servers",
        evidence="user agent mcp-proxy-for-aws",
    ),
    AgentMarker(
        name="mcp-client:{client}",
        field=USER_AGENT,
        pattern=_MCP_CLIENT.format(group="client"),
        confidence=CLIENT_DECLARED,
        description="an MCP client that names no known agent, reported by aws-api-mcp-server",
        evidence="user agent MCPClient/{client}",
    ),
    _m_flag("AA", "", "LOGIN_SAME_DEVICE", login=True),
    _m_flag("AB", "", "LOGIN_CROSS_DEVICE", login=True),
    _m_flag("AC", "", "CREDENTIALS_PROFILE_LOGIN", login=True),
    _m_flag("AD", "", "CREDENTIALS_LOGIN", login=True),
)


@dataclass(frozen=True, slots=True)
class _Row:
    marker: AgentMarker
    regex: re.Pattern[str]
    rank: int
    on_invoked_by: bool
    needs_agent: bool


def _fill(template: str, found: re.Match[str], agent: str | None) -> str:
    def one(placeholder: re.Match[str]) -> str:
        group = placeholder.group(1)
        if group == "agent" and agent is not None:
            return agent
        return (found.group(group) or "").strip()

    return _PLACEHOLDER.sub(one, template)


class AgentMarkerTable:
    """The compiled marker table. Lookups are cached by (user agent, invokedBy).

    A session's user agent rarely changes, so the cache turns almost every lookup into one
    dict probe; `cache_size` bounds it.
    """

    __slots__ = ("_rows", "markers", "scan")

    def __init__(self, markers: Sequence[AgentMarker], *, cache_size: int = 8192) -> None:
        self.markers: tuple[AgentMarker, ...] = tuple(markers)
        # AWS-asserted rows first, then table order (sorted() is stable).
        ordered = sorted(self.markers, key=lambda m: m.confidence != AWS_ASSERTED)
        self._rows = tuple(
            _Row(
                marker=m,
                regex=re.compile(m.pattern),
                rank=rank,
                on_invoked_by=m.field == INVOKED_BY,
                needs_agent="{agent}" in m.name,
            )
            for rank, m in enumerate(ordered)
        )
        self.scan: Callable[[str, str | None], UserAgentFacts] = lru_cache(maxsize=cache_size)(
            self._scan
        )

    def detect(self, user_agent: str, invoked_by: str | None) -> AgentMatch | None:
        """The agent the markers name, or None. The first (most trusted) matching row wins."""
        return self.scan(user_agent, invoked_by).agent

    def uses_console_credentials(self, user_agent: str) -> bool:
        """True when the user agent says the credentials came from `aws login` (m/ AA..AD)."""
        return self.scan(user_agent, None).console_credentials is not None

    def extended(self, extra: Sequence[AgentMarker]) -> AgentMarkerTable:
        """A table with `extra` rows ahead of these ones (AWS-asserted rows still lead)."""
        return AgentMarkerTable((*extra, *self.markers))

    def _scan(self, user_agent: str, invoked_by: str | None) -> UserAgentFacts:
        agent: AgentMatch | None = None
        login: str | None = None
        for row in self._rows:
            if row.marker.credential_login:
                if login is not None:
                    continue
            elif agent is not None:
                continue
            text = invoked_by if row.on_invoked_by else user_agent
            if not text:
                continue
            found = row.regex.search(text)
            if found is None:
                continue
            evidence_template = row.marker.evidence or (
                f"invokedBy {text}" if row.on_invoked_by else f"user agent {found.group(0).strip()}"
            )
            if row.marker.credential_login:
                login = _fill(evidence_template, found, None)
                if agent is not None:
                    break
                continue
            known = None
            if row.needs_agent:
                known = canonical_agent(found.group("agent"))
                if known is None:
                    continue
            agent = AgentMatch(
                agent=_fill(row.marker.name, found, known),
                marker=row.marker,
                evidence=_fill(evidence_template, found, None),
                rank=row.rank,
            )
            if login is not None:
                break
        if agent is None and login is None:
            return NO_FACTS
        return UserAgentFacts(agent=agent, console_credentials=login)


_ROW_KEYS = frozenset(
    {"name", "field", "pattern", "confidence", "description", "credential_login", "evidence"}
)
_REQUIRED = ("name", "field", "pattern", "confidence", "description")


def parse_markers(document: Any, *, source: str) -> tuple[AgentMarker, ...]:
    """Marker rows from configuration: a list of {name, field, pattern, confidence, description}.

    `credential_login` (bool) and `evidence` (str) are optional. Errors name the source, the
    row index and the field.
    """
    if not isinstance(document, list | tuple):
        raise ConfigError(f"{source}: agent markers must be a list, got {type(document).__name__}")
    markers = []
    for index, row in enumerate(document):
        where = f"{source}: marker [{index}]"
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: must be a mapping, got {type(row).__name__}")
        unknown = sorted(set(row) - _ROW_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown field {unknown[0]!r}")
        for key in _REQUIRED:
            value = row.get(key)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: field {key!r} must be a non-empty string")
        if not isinstance(row.get("credential_login", False), bool):
            raise ConfigError(f"{where}: field 'credential_login' must be true or false")
        if not isinstance(row.get("evidence", ""), str):
            raise ConfigError(f"{where}: field 'evidence' must be a string")
        try:
            markers.append(AgentMarker(**row))
        except MarkerError as exc:
            raise ConfigError(f"{where}: field {exc.field!r}: {exc}") from None
    return tuple(markers)
