"""`trailguard gate`: check an agent's intended AWS call against its task scope, before it runs.

This module is the edge: it reads stdin, the environment, the scope file, the clock and the
operation index, calls the pure decision (`detector.gate.decide`), journals the verdict
and answers in the agent's hook protocol. It runs before every tool call, so it imports
only what the gate path needs. Any error of its own becomes a block (exit 2), because a
hook that fails any other way lets the call run in Claude Code; `--fail-open` turns
internal errors (never out-of-scope calls or unreadable command lines) into an allow.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from detector.gate.aws_config import AwsProfile, parse_config
from detector.gate.cli_index import IndexLookup
from detector.gate.decide import Verdict, allow, block, decide
from detector.gate.hooks import (
    MAX_INPUT_BYTES,
    PROTOCOLS,
    ToolCall,
    block_message,
    exit_code,
    read_event,
)

if TYPE_CHECKING:
    from detector.core.scope import Scope

JOURNAL_NAME = "gate.jsonl"
# The process environment the decision sees: only what says where and as whom a call goes.
AWS_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE")


def add_parser(commands: Any) -> None:
    """Register `trailguard gate` on the top-level subcommands."""
    gate = commands.add_parser(
        "gate",
        help="check an agent's AWS call against its task scope before it runs (exit 0/2)",
        description="Reads a PreToolUse hook event on stdin (claude-code, kiro) or takes the "
        "command line after -- (generic); exit 0 allows, exit 2 blocks with the reason on "
        "stderr.",
    )
    gate.add_argument("--hook", choices=PROTOCOLS, default="generic", help="hook protocol")
    gate.add_argument("--scopes", type=Path, help="task scope file (else $TRAILGUARD_SCOPES)")
    gate.add_argument("--scope", help="scope name in the file (else $TRAILGUARD_SCOPE)")
    gate.add_argument(
        "--account", help="account the agent's credentials act in (else $TRAILGUARD_ACCOUNT)"
    )
    gate.add_argument(
        "--journal", type=Path, help=f"JSON Lines journal (default: the state dir's {JOURNAL_NAME})"
    )
    gate.add_argument("--no-journal", action="store_true", help="do not journal verdicts")
    gate.add_argument(
        "--fail-open",
        action="store_true",
        help="allow the call when the gate itself fails (default: block)",
    )
    gate.add_argument(
        "--service", help="TrailGuard service URL to ask for approvals (else $TRAILGUARD_URL)"
    )
    gate.add_argument(
        "--token-file", type=Path, help="bearer token for the service (else $TRAILGUARD_TOKEN_FILE)"
    )
    gate.add_argument("--agent", help="the agent's name (else $TRAILGUARD_AGENT, else the hook)")
    gate.add_argument("--owner", help="the person the agent acts for (else $TRAILGUARD_OWNER)")
    gate.add_argument(
        "--session", help="the agent's session (else $TRAILGUARD_SESSION or $TRAILGUARD_TASK)"
    )
    gate.add_argument("command", nargs=argparse.REMAINDER, help="generic: -- aws ...")
    gate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return gate(
        args,
        stdin=sys.stdin.buffer,
        stdout=sys.stdout,
        stderr=sys.stderr,
        environ=os.environ,
        now=datetime.now(UTC),
    )


def gate(
    args: argparse.Namespace,
    *,
    stdin: IO[bytes],
    stdout: IO[str],
    stderr: IO[str],
    environ: Mapping[str, str],
    now: datetime,
) -> int:
    """One gate decision with its I/O passed in; returns the exit code (0 or 2)."""
    tool_name: str | None = None
    line: str | None = None
    try:
        verdict, tool_name, line = _decide(args, stdin, environ, now)
    except Exception as exc:  # noqa: BLE001 - any failure must still answer 0 or 2
        reason = f"the gate failed: {type(exc).__name__}: {exc}"
        if args.fail_open:
            stderr.write(f"trailguard gate: {reason}; allowed (--fail-open)\n")
            verdict = allow(f"{reason}; allowed because of --fail-open")
        else:
            verdict = block(reason)
    if not args.no_journal:
        _journal(args, environ, now, verdict, tool_name, line, stderr)
    if args.hook == "generic":
        stdout.write(_dumps(verdict.to_dict()).decode() + "\n")
    if verdict.blocked:
        stderr.write(block_message(verdict))
    return exit_code(verdict)


def _decide(
    args: argparse.Namespace, stdin: IO[bytes], environ: Mapping[str, str], now: datetime
) -> tuple[Verdict, str | None, str | None]:
    if args.hook == "generic":
        words = list(args.command)
        if words[:1] == ["--"]:
            words = words[1:]
        if len(words) == 1:
            line = words[0]
        elif words:
            line = shlex.join(words)
        else:
            line = stdin.read().decode("utf-8", errors="replace")
        tool_name = None
    else:
        event = read_event(args.hook, stdin.read(MAX_INPUT_BYTES + 1))
        if isinstance(event, Verdict):
            return event, None, None
        call: ToolCall = event
        line, tool_name = call.line, call.tool_name
    scope, problem = _scope(args, environ)
    if problem is not None:
        # Only AWS calls need a scope: a line without any still passes.
        verdict = decide(line, scope=None, env=_aws_env(environ), at=now, lookup=IndexLookup())
        if verdict.calls and any(c.kind in ("aws", "tool") for c in verdict.calls):
            return block(problem), tool_name, line
        return verdict, tool_name, line
    account = args.account or environ.get("TRAILGUARD_ACCOUNT")
    verdict = decide(
        line,
        scope=scope,
        env=_aws_env(environ),
        at=now,
        lookup=IndexLookup(),
        account=account,
        profiles=_aws_profiles(environ),
    )
    if verdict.blocked and scope is not None and scope.on_violation == "approve":
        verdict = _ask_approval(args, environ, verdict, line)
    return verdict, tool_name, line


APPROVAL_TIMEOUT_SECONDS = 2.0


def _ask_approval(
    args: argparse.Namespace, environ: Mapping[str, str], verdict: Verdict, line: str
) -> Verdict:
    """Ask the service for (or about) a second person's approval of the blocked line."""
    from detector.gate import approval

    if not approval.askable(verdict):
        return approval.unavailable(verdict, "the gate cannot say which IAM actions it needs")
    url = args.service or environ.get("TRAILGUARD_URL")
    token_path = args.token_file or (
        Path(p) if (p := environ.get("TRAILGUARD_TOKEN_FILE")) else None
    )
    if not url or token_path is None:
        return approval.unavailable(
            verdict, "no service is configured (--service URL and --token-file FILE)"
        )
    owner = args.owner or environ.get("TRAILGUARD_OWNER")
    if not owner:
        return approval.unavailable(
            verdict, "nobody is known to act for the agent (--owner or TRAILGUARD_OWNER)"
        )
    agent = args.agent or environ.get("TRAILGUARD_AGENT") or args.hook
    session = (
        args.session
        or environ.get("TRAILGUARD_SESSION")
        or environ.get("TRAILGUARD_TASK")
        or f"gate-{agent}"
    )
    body = approval.request_body(verdict, line=line, session_id=session, agent=agent,
                                 human=owner)  # fmt: skip
    try:
        token = token_path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
    except (OSError, UnicodeDecodeError, IndexError) as exc:
        return approval.unavailable(verdict, f"the token file {token_path} cannot be read ({exc})")
    try:
        record = _post_json(url.rstrip("/") + "/v1/approvals", body, token)
    except _ServiceError as exc:
        return approval.unavailable(verdict, f"the service at {url} did not answer ({exc})")
    return approval.with_approval(verdict, record)


class _ServiceError(Exception):
    pass


def _post_json(url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    """One POST with the standard library (the gate's start-up stays lean) and a short
    timeout: the gate runs before every tool call and must answer quickly either way."""
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise _ServiceError("the service URL must start with http:// or https://")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=_dumps(body),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=APPROVAL_TIMEOUT_SECONDS) as answer:  # noqa: S310
            record = orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = orjson.loads(exc.read()).get("error", "")
        except (orjson.JSONDecodeError, AttributeError):
            detail = ""
        raise _ServiceError(f"HTTP {exc.code} {detail}".strip()) from None
    except (OSError, ValueError) as exc:
        raise _ServiceError(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(record, dict) or "status" not in record or "id" not in record:
        raise _ServiceError("the answer is not an approval")
    return record


def _scope(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[Scope | None, str | None]:
    from detector.errors import ConfigError
    from detector.scope_file import load_scopes

    path = args.scopes or (Path(p) if (p := environ.get("TRAILGUARD_SCOPES")) else None)
    name = args.scope or environ.get("TRAILGUARD_SCOPE")
    if path is None:
        task = environ.get("TRAILGUARD_TASK")
        if task:
            return None, (
                f"task {task} has no scope the gate can read: the task registry is not "
                "available yet, so pass --scopes FILE --scope NAME or set TRAILGUARD_SCOPES "
                "and TRAILGUARD_SCOPE"
            )
        return None, "no task scope: pass --scopes FILE --scope NAME or set TRAILGUARD_SCOPES"
    try:
        scopes = load_scopes(path)
    except ConfigError as exc:
        return None, f"the scope file cannot be used: {exc}"
    if name is None:
        if len(scopes) == 1:
            return scopes.scopes[0], None
        return None, f"{path} holds {len(scopes)} scopes: name one with --scope"
    scope = scopes.get(name)
    if scope is None:
        return None, f"{path} has no scope named {name!r}"
    return scope, None


def _dumps(record: dict[str, Any]) -> bytes:
    """JSON of a record; text that is not valid Unicode (a lone surrogate from a non-UTF-8
    argument) is escaped by the standard library instead of failing."""
    try:
        return orjson.dumps(record)
    except TypeError:
        import json

        return json.dumps(record).encode("ascii")


def _aws_profiles(environ: Mapping[str, str]) -> dict[str, AwsProfile]:
    """The AWS CLI config's profiles (regions, accounts); none when it cannot be read."""
    home = Path(environ.get("HOME") or Path.home())
    path = Path(environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}  # only a fallback for --region and --account: the CLI would fail too
    return parse_config(text)


def _aws_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: environ[name] for name in AWS_ENV if environ.get(name)}


def default_journal(environ: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/trailguard/gate.jsonl, else ~/.local/state/trailguard/gate.jsonl."""
    state = environ.get("XDG_STATE_HOME") or str(
        Path(environ.get("HOME") or Path.home()) / ".local" / "state"
    )
    return Path(state) / "trailguard" / JOURNAL_NAME


def _journal(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    now: datetime,
    verdict: Verdict,
    tool_name: str | None,
    line: str | None,
    stderr: IO[str],
) -> None:
    """Append the verdict; a failure is reported and changes nothing about the verdict."""
    record = {
        "time": now.isoformat().replace("+00:00", "Z"),
        "hook": args.hook,
        "tool_name": tool_name,
        "command": line,
        "task": environ.get("TRAILGUARD_TASK"),
        **verdict.to_dict(),
    }
    try:
        path = args.journal or default_journal(environ)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one line with O_APPEND: concurrent hooks never interleave lines.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, _dumps(record) + b"\n")
        finally:
            os.close(fd)
    except OSError as exc:
        stderr.write(f"trailguard gate: could not journal the verdict: {exc}\n")


def main(argv: list[str] | None = None) -> int:
    """`trailguard-gate ...`, the same as `trailguard gate ...` without loading the rest of
    the command line: it starts in about half the time, and it runs before every tool call."""
    parser = argparse.ArgumentParser(prog="trailguard-gate")
    commands = parser.add_subparsers()
    add_parser(commands)
    args = parser.parse_args(["gate", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
