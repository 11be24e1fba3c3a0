"""Known AI agents, and how free-form client names and app ids are read as one of them."""

from __future__ import annotations

import re
from functools import lru_cache

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")

# Known agents and the spellings that name them in app ids and MCP client names. Spellings
# are compared as whole hyphen-separated words of the lower-cased value ("Claude Code",
# "claude_code" and "kiro-session-abc" all qualify); the longer spellings come first so that
# "claude-desktop" is not read as Claude Code.
KNOWN_AGENTS: tuple[tuple[str, str], ...] = (
    ("claude-desktop", "claude-desktop"),
    ("claude-ai", "claude-desktop"),
    ("claude-code", "claude-code"),
    ("claudecode", "claude-code"),
    ("claude", "claude-code"),
    ("amazon-q", "q-developer"),
    ("amazonq", "q-developer"),
    ("q-developer", "q-developer"),
    ("kiro", "kiro"),
    ("codex", "codex"),
    ("cursor", "cursor"),
    ("github-copilot", "copilot"),
    ("copilot", "copilot"),
    ("gemini-cli", "gemini-cli"),
    ("gemini", "gemini-cli"),
    ("opencode", "opencode"),
    ("antigravity", "antigravity"),
    ("ampcode", "amp"),
    ("amp", "amp"),
    ("pi-coding-agent", "pi"),
    ("strands-agents", "strands-agents"),
    ("cline", "cline"),
    ("roo-code", "roo-code"),
    ("windsurf", "windsurf"),
    ("goose", "goose"),
    ("aider", "aider"),
)


# Spellings also recognised glued to a following word ("KiroIDE", "cursorvscode"). The others
# stay whole-word only, or "amplify" would read as Amp and "amazonquicksight" as Q.
GLUED = frozenset(
    ("kiro", "cursor", "claude", "codex", "copilot", "gemini", "opencode", "antigravity")
)


@lru_cache(maxsize=1024)
def canonical_agent(value: str) -> str | None:
    """The known agent a free-form client name or app id names, or None."""
    words = f"-{_NOT_ALNUM.sub('-', value.lower()).strip('-')}-"
    for spelling, agent in KNOWN_AGENTS:
        if f"-{spelling}-" in words:
            return agent
        if spelling in GLUED and f"-{spelling}" in words:
            return agent
    return None
