"""No input crashes the gate or makes it answer anything but 0 (allow) or 2 (block)."""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gate.conftest import SCOPES, run_gate

ARGS = ["--scopes", str(SCOPES), "--scope", "ce-fix"]
SHELLISH = st.text(
    alphabet=st.sampled_from(list("aws s3 rb cloudformation delete-stack --x=$()`'\";&|<>\\\n{}#*"))
    | st.characters(),
    max_size=120,
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["tool_name", "tool_input", "command", "cli_command", "hook_event_name"]
            )
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(stdin=st.binary(max_size=200))
def test_any_bytes_on_stdin(stdin: bytes) -> None:
    for hook in ("claude-code", "kiro", "generic"):
        assert run_gate(["--hook", hook, *ARGS], stdin).code in (0, 2)


@FAST
@given(document=JSON)
def test_any_json_on_stdin(document: object) -> None:
    stdin = json.dumps(document).encode()
    for hook in ("claude-code", "kiro"):
        assert run_gate(["--hook", hook, *ARGS], stdin).code in (0, 2)


@FAST
@given(line=SHELLISH, tool=st.sampled_from(["Bash", "execute_bash", "mcp__aws__call_aws"]))
def test_any_command_line_in_a_shell_tool(line: str, tool: str) -> None:
    field = "cli_command" if tool.endswith("call_aws") else "command"
    stdin = json.dumps({"tool_name": tool, "tool_input": {field: line}}).encode()
    for hook in ("claude-code", "kiro"):
        outcome = run_gate(["--hook", hook, *ARGS], stdin)
        assert outcome.code in (0, 2)
        assert "the gate failed" not in outcome.stderr, outcome.stderr


@FAST
@given(line=SHELLISH)
def test_any_generic_command_line(line: str) -> None:
    outcome = run_gate([*ARGS, "--", line])
    assert outcome.code in (0, 2)
    assert "the gate failed" not in outcome.stderr, outcome.stderr
    assert orjson.loads(outcome.stdout)["decision"] in ("allow", "block")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stdin=st.binary(max_size=200) | JSON.map(lambda d: json.dumps(d).encode()))
def test_the_real_process_answers_0_or_2(stdin: bytes) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "detector", "gate", "--hook", "claude-code", "--no-journal",
         *ARGS],
        input=stdin,
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert result.returncode in (0, 2), result.stderr
    assert b"Traceback" not in result.stderr
