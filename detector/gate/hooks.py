"""The agents' hook protocols: what arrives on stdin, and how a verdict is answered.

Claude Code and Kiro CLI both send a PreToolUse event as one JSON object with `tool_name`
and `tool_input`, and both block the tool call when the hook exits 2, showing the agent
what the hook wrote to stderr; exit 0 lets it run. Claude Code treats any other exit as a
hook failure and runs the tool anyway, so the gate never exits with anything but 0 or 2.

The tools the gate reads: a shell tool's `command` (Claude Code's `Bash`, Kiro's
`execute_bash` / `shell`), and the AWS API MCP server's `call_aws` tool's `cli_command`,
under whatever name the agent gives MCP tools (`mcp__<server>__call_aws` in Claude Code,
`@<server>/call_aws` in Kiro). Every other tool is allowed: it is not an AWS CLI call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from detector.gate.decide import Verdict, allow, block

PROTOCOLS = ("claude-code", "kiro", "generic")
EXIT_ALLOW = 0
EXIT_BLOCK = 2
MAX_INPUT_BYTES = 1 << 20
SHELL_TOOLS: Mapping[str, frozenset[str]] = {
    "claude-code": frozenset({"Bash"}),
    "kiro": frozenset({"execute_bash", "executeBash", "shell", "execute_cmd"}),
}
PRE_TOOL_EVENTS = frozenset({"PreToolUse", "preToolUse"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """The command line a tool call would run, and where it came from."""

    tool_name: str
    line: str
    field: str  # "command" or "cli_command"


def read_event(protocol: str, raw: bytes) -> ToolCall | Verdict:
    """The command line in a PreToolUse event, or the verdict when there is none to check."""
    if len(raw) > MAX_INPUT_BYTES:
        return block(f"the hook input is larger than {MAX_INPUT_BYTES} bytes")
    # The standard library's json, not orjson: importing orjson costs more start-up than
    # decoding one small event saves.
    try:
        event: Any = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return block(f"the hook input is not JSON (not UTF-8: {exc.reason} at byte {exc.start})")
    except RecursionError:
        return block("the hook input is not JSON the gate reads (nested too deeply)")
    except ValueError as exc:
        return block(f"the hook input is not JSON ({exc})")
    if not isinstance(event, dict):
        return block("the hook input is not a JSON object")
    tool_name = event.get("tool_name")
    if not isinstance(tool_name, str) or not tool_name:
        return block("the hook input names no tool (tool_name)")
    hook_event = event.get("hook_event_name")
    if isinstance(hook_event, str) and hook_event not in PRE_TOOL_EVENTS:
        return allow(f"{hook_event} is not a pre-tool event; nothing to prevent")
    tool_input = event.get("tool_input")
    if is_call_aws(tool_name):
        field = "cli_command"
    elif tool_name in SHELL_TOOLS.get(protocol, frozenset()):
        field = "command"
    else:
        return allow(f"tool {tool_name} is not a shell or AWS CLI tool")
    if not isinstance(tool_input, dict):
        return block(f"tool {tool_name}: tool_input is not a JSON object")
    line = tool_input.get(field)
    if not isinstance(line, str):
        return block(f"tool {tool_name}: tool_input.{field} is not a string")
    return ToolCall(tool_name=tool_name, line=line, field=field)


def is_call_aws(tool_name: str) -> bool:
    """The AWS API MCP server's call_aws tool, under any server name."""
    return tool_name == "call_aws" or tool_name.endswith(("__call_aws", "/call_aws"))


def block_message(verdict: Verdict) -> str:
    """What the agent reads on stderr when the call is blocked."""
    scope = f" (scope {verdict.scope})" if verdict.scope else ""
    return f"TrailGuard blocked this call before it ran{scope}:\n{verdict.reason}\n"


def exit_code(verdict: Verdict) -> int:
    return EXIT_BLOCK if verdict.blocked else EXIT_ALLOW
