"""The agent-marker table: every built-in row, the negatives, precedence and configuration."""

from __future__ import annotations

import pytest

from detector.core.agent_names import canonical_agent
from detector.core.agents import (
    DEFAULT_MARKERS,
    AgentMarker,
    AgentMarkerTable,
    parse_markers,
)
from detector.errors import ConfigError

CLI = (
    "aws-cli/2.35.24 md/awscrt#0.27.6 ua/2.1 os/linux#6.8 md/arch#x86_64 lang/python#3.13.7 "
    "md/pyimpl#CPython m/{flags} cfg/retry-mode#standard md/installer#exe md/distrib#debian.12 "
    "md/prompt#off md/command#cloudformation.delete-stack"
)
BOTOCORE_Q = (
    "Botocore/1.43.11 ua/2.1 os/linux#6.18.44-fc-v669 md/arch#x86_64 lang/python#3.11.7 "
    "md/pyimpl#CPython exec-env/AmazonQ-For-CLI-Version-1.19.3 m/D,Z,b,e cfg/retry-mode#legacy "
    "app/kiro-session-abc123"
)
API_MCP = (
    "Boto3/1.40.1 md/Botocore#1.40.1 ua/2.1 os/macos#24.6.0 md/arch#arm64 lang/python#3.12.11 "
    "md/pyimpl#CPython m/D,b,Z cfg/retry-mode#legacy Botocore/1.40.1 "
    "md/awslabs#mcp#aws-api-mcp-server#1.1.4 md/via/AWS-API-MCP{client} cfg/ro#0 cfg/consent#0 "
    "cfg/scripts#0"
)
BOTO3 = "Boto3/1.26.165 Python/3.10.6 Linux/5.19.0-46-generic Botocore/1.29.165"
TERRAFORM = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.1.2 (+https://www.terraform.io) "
    "terraform-provider-aws/3.76.1 (+https://registry.terraform.io/providers/hashicorp/aws) "
    "aws-sdk-go/1.44.157 (go1.19.3; linux; amd64)"
)

TABLE = AgentMarkerTable(DEFAULT_MARKERS)

# (user agent, invokedBy, expected agent). Together the cases hit every agent row of
# DEFAULT_MARKERS; test_every_row_is_covered checks that.
POSITIVE = [
    ("AWS Internal", "aws-mcp.amazonaws.com", "mcp:aws-mcp"),
    ("eks.amazonaws.com", "eks-mcp.amazonaws.com", "mcp:eks-mcp"),
    (API_MCP.format(client=" MCPClient/Claude-Code#2.0.14"), None, "claude-code"),
    (API_MCP.format(client=" MCPClient/Claude Code#2.0.14"), None, "claude-code"),
    (API_MCP.format(client=" MCPClient/Kiro#0.3.1"), None, "kiro"),
    (API_MCP.format(client=" MCPClient/cursor-vscode#1.0.0"), None, "cursor"),
    (API_MCP.format(client=" MCPClient/claude-ai#0.1.0"), None, "claude-desktop"),
    ("python-httpx/0.28.1 mcp-proxy-for-aws/1.1.0 claude-code/2.0.14", None, "claude-code"),
    (CLI.format(flags="AN,E,G,Z"), None, "claude-code"),
    (CLI.format(flags="AO"), None, "gemini-cli"),
    (CLI.format(flags="E,AP"), None, "codex"),
    (CLI.format(flags="AQ,E,G,Z"), None, "kiro"),
    (CLI.format(flags="b,AR,Z"), None, "opencode"),
    (CLI.format(flags="AS"), None, "antigravity"),
    (CLI.format(flags="AT,b"), None, "amp"),
    (CLI.format(flags="Z,AU"), None, "pi"),
    (CLI.format(flags="AV,E"), None, "copilot"),
    (CLI.format(flags="E,AW"), None, "cursor"),
    (BOTOCORE_Q, None, "q-developer"),
    (
        "aws-cli/2.31.0 exec-env/AWS_ECS_FARGATE-AmazonQ-For-CLI-Version-1.2 m/E",
        None,
        "q-developer",
    ),
    ("aws-cli/2.31.0 ua/2.1 os/linux exec-env/Kiro-IDE-0.5.9 m/E,b", None, "kiro"),
    ("aws-sdk-js/3.700.0 ua/2.1 os/darwin exec-env/KIRO m/E", None, "kiro"),
    ("aws-sdk-js/3.700.0 ua/2.1 os/linux lang/js#node app/claude-code", None, "claude-code"),
    ("Botocore/1.43.11 ua/2.1 os/linux app/kiro-session-abc123", None, "kiro"),
    ("Botocore/1.43.11 ua/2.1 os/linux app/codex-cli-7", None, "codex"),
    (
        "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux lang/python#3.12 strands-agents",
        None,
        "strands-agents",
    ),
    (API_MCP.format(client=""), None, "mcp:aws-api-mcp-server"),
    (API_MCP.format(client=" MCPClient/in-house-tool#1.0.0"), None, "mcp:aws-api-mcp-server"),
    (
        "Boto3/1.34.0 md/Botocore#1.34.0 awslabs/mcp/cloudwatch-mcp-server/0.0.4",
        None,
        "mcp:cloudwatch-mcp-server",
    ),
    ("python-httpx/0.28.1 mcp-proxy-for-aws/1.1.0 in-house-client/3.1", None, "mcp:proxy-for-aws"),
    (
        "Boto3/1.40.1 ua/2.1 MCPClient/in-house-tool#1.0.0 cfg/ro#1",
        None,
        "mcp-client:in-house-tool",
    ),
]

NEGATIVE = [
    (CLI.format(flags="ANX,E"), None),  # a longer id that starts with AN
    (CLI.format(flags="E,XAN"), None),  # a longer id that ends with AN
    (CLI.format(flags="A,N,Q"), None),  # single-letter ids next to each other
    (CLI.format(flags="E,G,Z"), None),
    (BOTO3, None),
    (f"[{BOTO3}]", None),
    (TERRAFORM, None),
    ("signin.amazonaws.com", None),
    ("console.amazonaws.com", None),
    ("[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488 Linux/5.10.184]", None),
    ("AWS Internal", "AWS Internal"),
    ("secretsmanager.amazonaws.com", "secretsmanager.amazonaws.com"),
    ("cloudformation.amazonaws.com", "cloudformation.amazonaws.com"),
    ("mcp.amazonaws.com", "mcp.amazonaws.com"),
    ("aws-cli/2.22.0 ua/2.1 exec-env/GitHubActions m/E", None),
    ("aws-sdk-go-v2/1.32.3 os/linux exec-env/grimoire_095724e3 api/sts#1.26.2", None),
    ("aws-sdk-js/3.700.0 app/amplify-console-2", None),  # "amplify" is not Amp
    ("aws-sdk-js/3.700.0 app/amazonquicksight", None),  # nor is QuickSight Q Developer
    ("aws-sdk-js/3.700.0 app/my-service", None),
    ("stratus-red-team_39f95f43-cd2f-4beb-b69e-be60b6fe1f57", None),
    ("", None),
]


@pytest.mark.parametrize(("user_agent", "invoked_by", "agent"), POSITIVE)
def test_marker_names_the_agent(user_agent: str, invoked_by: str | None, agent: str) -> None:
    found = TABLE.detect(user_agent, invoked_by)
    assert found is not None
    assert found.agent == agent
    assert found.evidence


def test_every_row_is_covered() -> None:
    hit = {id(TABLE.detect(ua, ib).marker) for ua, ib, _ in POSITIVE}  # type: ignore[union-attr]
    rows = [m for m in DEFAULT_MARKERS if not m.credential_login]
    assert [m.name for m in rows if id(m) not in hit] == []


@pytest.mark.parametrize(("user_agent", "invoked_by"), NEGATIVE)
def test_no_agent(user_agent: str, invoked_by: str | None) -> None:
    assert TABLE.detect(user_agent, invoked_by) is None


def test_evidence_and_confidence() -> None:
    kiro = TABLE.detect(CLI.format(flags="AQ,E,G,Z"), None)
    assert kiro is not None
    assert kiro.evidence == "user agent m/ flag AQ (KIRO_SESSION_ID)"
    assert kiro.marker.confidence == "client-declared"
    managed = TABLE.detect("AWS Internal", "aws-mcp.amazonaws.com")
    assert managed is not None
    assert managed.marker.confidence == "aws-asserted"
    assert managed.evidence == "invokedBy aws-mcp.amazonaws.com (AWS-managed MCP server)"
    client = TABLE.detect(API_MCP.format(client=" MCPClient/Claude-Code#2.0.14"), None)
    assert client is not None
    assert client.evidence == "user agent MCPClient/Claude-Code (MCP client name)"


@pytest.mark.parametrize(
    ("user_agent", "invoked_by", "agent"),
    [
        # AWS-asserted beats anything the client says about itself.
        (CLI.format(flags="AN"), "aws-mcp.amazonaws.com", "mcp:aws-mcp"),
        # The MCP client name beats the m/ flag of the CLI it happens to drive.
        (API_MCP.format(client=" MCPClient/Kiro#0.3.1").replace("m/D,b,Z", "m/AN"), None, "kiro"),
        # m/ flag beats exec-env.
        (BOTOCORE_Q.replace("m/D,Z,b,e", "m/AQ,Z"), None, "kiro"),
        # exec-env beats app/.
        (BOTOCORE_Q, None, "q-developer"),
        # app/ naming an agent beats the generic MCP server token.
        (API_MCP.format(client=" app/cursor"), None, "cursor"),
        # strands-agents also beats it.
        (API_MCP.format(client=" strands-agents"), None, "strands-agents"),
    ],
)
def test_precedence(user_agent: str, invoked_by: str | None, agent: str) -> None:
    found = TABLE.detect(user_agent, invoked_by)
    assert found is not None
    assert found.agent == agent


@pytest.mark.parametrize("flag", ["AA", "AB", "AC", "AD"])
def test_aws_login_flags(flag: str) -> None:
    user_agent = CLI.format(flags=f"E,{flag},Z")
    assert TABLE.uses_console_credentials(user_agent)
    assert TABLE.detect(user_agent, None) is None  # console credentials are not an agent
    facts = TABLE.scan(user_agent, None)
    assert facts.console_credentials is not None
    assert flag in facts.console_credentials


@pytest.mark.parametrize("flags", ["ADX", "XAD", "A,D", "E,Z", "AN"])
def test_not_aws_login(flags: str) -> None:
    assert not TABLE.uses_console_credentials(CLI.format(flags=flags))


def test_agent_and_login_together() -> None:
    facts = TABLE.scan(CLI.format(flags="AD,AN,E"), None)
    assert facts.agent is not None
    assert facts.agent.agent == "claude-code"
    assert facts.console_credentials == "user agent m/ flag AD (CREDENTIALS_LOGIN)"


def test_detection_is_cached() -> None:
    table = AgentMarkerTable(DEFAULT_MARKERS, cache_size=2)
    user_agent = CLI.format(flags="AQ")
    first = table.detect(user_agent, None)
    assert table.detect(user_agent, None) is first
    info = table.scan.cache_info()  # type: ignore[attr-defined]
    assert info.hits == 1
    assert info.maxsize == 2


@pytest.mark.parametrize(
    ("value", "agent"),
    [
        ("Claude Code", "claude-code"),
        ("claude_code", "claude-code"),
        ("claude-ai", "claude-desktop"),
        ("cursor-vscode", "cursor"),
        ("KiroIDE", "kiro"),
        ("Visual Studio Code", None),
        ("amplify", None),
        ("example", None),
    ],
)
def test_canonical_agent(value: str, agent: str | None) -> None:
    assert canonical_agent(value) == agent


CUSTOM = {
    "name": "corp-agent",
    "field": "user_agent",
    "pattern": r"(?:^|\s)corp-agent/",
    "confidence": "client-declared",
    "description": "our in-house agent sets AWS_SDK_UA_APP_ID and a corp-agent/<v> token",
}


def test_parse_markers_builds_rows() -> None:
    rows = parse_markers(
        [CUSTOM, {**CUSTOM, "name": "tool:{tool}", "pattern": r"tool/(?P<tool>\w+)"}],
        source="settings.toml",
    )
    assert [r.name for r in rows] == ["corp-agent", "tool:{tool}"]
    table = TABLE.extended(rows)
    found = table.detect("Boto3/1.0 tool/deployer", None)
    assert found is not None
    assert found.agent == "tool:deployer"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"name": "x"}, "settings.toml: agent markers must be a list"),
        (["row"], "settings.toml: marker [0]: must be a mapping"),
        ([CUSTOM, {**CUSTOM, "pattern": None}], "marker [1]: field 'pattern'"),
        ([{**CUSTOM, "colour": "red"}], "marker [0]: unknown field 'colour'"),
        ([{**CUSTOM, "field": "source_ip"}], "marker [0]: field 'field'"),
        ([{**CUSTOM, "confidence": "certain"}], "marker [0]: field 'confidence'"),
        ([{**CUSTOM, "confidence": "aws-asserted"}], "marker [0]: field 'confidence'"),
        ([{**CUSTOM, "pattern": "corp-agent/("}], "marker [0]: field 'pattern'"),
        ([{**CUSTOM, "name": "mcp:{server}"}], "marker [0]: field 'name'"),
        ([{**CUSTOM, "credential_login": "yes"}], "marker [0]: field 'credential_login'"),
        ([{**CUSTOM, "description": ""}], "marker [0]: field 'description'"),
    ],
)
def test_parse_markers_errors(document: object, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_markers(document, source="settings.toml")
    assert message in str(raised.value)
    assert str(raised.value).startswith("settings.toml")


def test_regex_error_is_reported() -> None:
    with pytest.raises(ConfigError, match=r"does not compile"):
        parse_markers([{**CUSTOM, "pattern": "(?P<x"}], source="s")


def test_extension_takes_precedence() -> None:
    override = AgentMarker(
        name="corp-claude",
        field="user_agent",
        pattern=r"(?:^|\s)m/(?:[^\s,]*,)*AN(?=[,\s]|$)",
        confidence="client-declared",
        description="our Claude Code wrapper",
    )
    extended = TABLE.extended([override])
    user_agent = CLI.format(flags="AN")
    found = extended.detect(user_agent, None)
    assert found is not None
    assert found.agent == "corp-claude"
    # The original table is untouched.
    original = TABLE.detect(user_agent, None)
    assert original is not None
    assert original.agent == "claude-code"
    # A user row never outranks what AWS itself asserts.
    managed = extended.detect(user_agent, "aws-mcp.amazonaws.com")
    assert managed is not None
    assert managed.agent == "mcp:aws-mcp"
