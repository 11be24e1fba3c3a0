"""`trailguard gate`: check an agent's intended AWS call against its task scope, before it runs.

This module is the edge: it reads stdin, the environment, the scope (a scope file, or the
task the agent runs under: `detector.gate.scope_source`), the clock and the operation index,
calls the pure decision (`detector.gate.decide`), sends the verdict to the service when one
is configured, journals it and answers in the agent's hook protocol. It runs before every
tool call, so it imports only what the gate path needs. Any error of its own becomes a
block (exit 2), because a hook that fails any other way lets the call run in Claude Code;
`--fail-open` turns internal errors (never out-of-scope calls or unreadable command lines)
into an allow.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from detector.gate import report
from detector.gate.decide import Verdict, allow, block, decide
from detector.gate.hooks import (
    MAX_INPUT_BYTES,
    PROTOCOLS,
    ToolCall,
    block_message,
    exit_code,
    read_event,
)
from detector.gate.report import Who
from detector.gate.service import Service, ServiceError, configured, dumps

if TYPE_CHECKING:
    from detector.gate.aws_config import AwsProfile
    from detector.gate.awscli import Lookup
    from detector.gate.cli_index import ServiceOperations
    from detector.gate.task import GateTask

# Imported when a line holds an AWS call (see `_decide`): the scope file, the task registry,
# the service and the operation index matter only then, and most lines hold none.

JOURNAL_NAME = "gate.jsonl"
# The process environment the decision sees: only what says where and as whom a call goes.
AWS_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE")


class _Formatter(argparse.HelpFormatter):
    """argparse's help layout, with the terminal measured by `os`: argparse asks shutil,
    whose import loads the compression modules, on every start-up for a width only --help
    uses."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            try:
                width = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                width = 80
        super().__init__(prog, width=max(width - 2, 20))


def add_parser(commands: Any) -> None:
    """Register `trailguard gate` on the top-level subcommands."""
    gate = commands.add_parser(
        "gate",
        formatter_class=_Formatter,
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
        "--state",
        type=Path,
        help="the embedded state store (SQLite file) whose task registry holds "
        "$TRAILGUARD_TASK (else $TRAILGUARD_STATE)",
    )
    gate.add_argument(
        "--service",
        help="TrailGuard service URL: verdicts go there, tasks and approvals come from it "
        "(else $TRAILGUARD_URL)",
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Answer:
    """A verdict and what the gate knew when it reached it (for the journal and service)."""

    verdict: Verdict
    tool_name: str | None = None
    line: str | None = None
    task: GateTask | None = None


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
    service, service_problem = configured(
        args.service or environ.get("TRAILGUARD_URL"),
        args.token_file or _path(environ.get("TRAILGUARD_TOKEN_FILE")),
    )
    try:
        answer = _decide(args, stdin, environ, now, service, service_problem)
    except Exception as exc:  # noqa: BLE001 - any failure must still answer 0 or 2
        reason = f"the gate failed: {type(exc).__name__}: {exc}"
        if args.fail_open:
            stderr.write(f"trailguard gate: {reason}; allowed (--fail-open)\n")
            answer = _Answer(verdict=allow(f"{reason}; allowed because of --fail-open"))
        else:
            answer = _Answer(verdict=block(reason))
    record = report.verdict_record(
        answer.verdict,
        verdict_id=report.new_verdict_id(),
        at=now,
        hook=args.hook,
        tool_name=answer.tool_name,
        line=answer.line,
        who=_who(args, environ, answer.task),
    )
    if service is not None:
        # Never changes the verdict: a verdict the service did not get is noted, not retried.
        problem = report.send(service, record)
        record["sent"] = problem is None
        if problem is not None:
            record["send_error"] = problem
            stderr.write(f"trailguard gate: the verdict was not sent to {service.url}: {problem}\n")
    if not args.no_journal:
        _journal(args, environ, record, stderr)
    verdict = answer.verdict
    if args.hook == "generic":
        stdout.write(dumps(verdict.to_dict()).decode() + "\n")
    if verdict.blocked:
        stderr.write(block_message(verdict))
    return exit_code(verdict)


def _decide(
    args: argparse.Namespace,
    stdin: IO[bytes],
    environ: Mapping[str, str],
    now: datetime,
    service: Service | None,
    service_problem: str | None,
) -> _Answer:
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
            return _Answer(verdict=event)
        call: ToolCall = event
        line, tool_name = call.line, call.tool_name
    # Only AWS calls need a scope: a line without any is decided without finding one, so
    # the scope file, the registry and the service are read only for the calls that matter.
    lookup = _index()
    unscoped = decide(line, scope=None, env=_aws_env(environ), at=now, lookup=lookup)
    if not any(c.kind in ("aws", "tool") for c in unscoped.calls):
        return _Answer(verdict=unscoped, tool_name=tool_name, line=line)
    from detector.gate.scope_source import ScopePlaces, resolve

    places = ScopePlaces(
        scopes_path=args.scopes or _path(environ.get("TRAILGUARD_SCOPES")),
        scope_name=args.scope or environ.get("TRAILGUARD_SCOPE"),
        task_id=environ.get("TRAILGUARD_TASK") or None,
        state_path=args.state or _path(environ.get("TRAILGUARD_STATE")),
        service=service,
        service_problem=service_problem,
    )
    resolved = resolve(places, environ=environ, at=now)
    if resolved.scope is None:
        verdict = block(resolved.problem or "no task scope", scope=places.scope_name)
        return _Answer(verdict=verdict, tool_name=tool_name, line=line, task=resolved.task)
    scope = resolved.scope
    account = args.account or environ.get("TRAILGUARD_ACCOUNT")
    verdict = decide(
        line,
        scope=scope,
        env=_aws_env(environ),
        at=now,
        lookup=lookup,
        account=account,
        profiles=_aws_profiles(environ),
    )
    if resolved.notes:
        verdict = replace(verdict, notes=(*verdict.notes, *resolved.notes))
    if verdict.blocked and scope.on_violation == "approve":
        who = _who(args, environ, resolved.task)
        verdict = _ask_approval(verdict, line, service, service_problem, who)
    return _Answer(verdict=verdict, tool_name=tool_name, line=line, task=resolved.task)


def _who(args: argparse.Namespace, environ: Mapping[str, str], task: GateTask | None) -> Who:
    """Who acts, for whom, in which session: the options, else the environment (which
    `trailguard task exec` sets), else the task looked up, else the hook's name."""
    agent = args.agent or environ.get("TRAILGUARD_AGENT") or (task.agent if task else None)
    agent = agent or args.hook
    owner = args.owner or environ.get("TRAILGUARD_OWNER") or (task.owner if task else None)
    task_id = environ.get("TRAILGUARD_TASK") or None
    session = args.session or environ.get("TRAILGUARD_SESSION") or task_id or f"gate-{agent}"
    key = environ.get("AWS_ACCESS_KEY_ID")
    return Who(agent=agent, owner=owner, session_id=session, task_id=task_id,
               access_key_id=key if key and report.looks_like_key_id(key) else None)  # fmt: skip


APPROVAL_TIMEOUT_SECONDS = 2.0


def _ask_approval(
    verdict: Verdict,
    line: str,
    service: Service | None,
    service_problem: str | None,
    who: Who,
) -> Verdict:
    """Ask the service for (or about) a second person's approval of the blocked line."""
    from detector.gate import approval

    if not approval.askable(verdict):
        return approval.unavailable(verdict, "the gate cannot say which IAM actions it needs")
    if service is None:
        return approval.unavailable(
            verdict,
            service_problem or "no service is configured (--service URL and --token-file FILE)",
        )
    if not who.owner:
        return approval.unavailable(
            verdict, "nobody is known to act for the agent (--owner or TRAILGUARD_OWNER)"
        )
    body = approval.request_body(verdict, line=line, session_id=who.session_id,
                                 agent=who.agent, human=who.owner)  # fmt: skip
    try:
        record = service.call("POST", "/v1/approvals", body, timeout=APPROVAL_TIMEOUT_SECONDS)
    except ServiceError as exc:
        return approval.unavailable(verdict, f"the service at {service.url} did not answer ({exc})")
    if not isinstance(record, dict) or "status" not in record or "id" not in record:
        why = "the answer is not an approval"
        return approval.unavailable(verdict, f"the service at {service.url} did not answer ({why})")
    return approval.with_approval(verdict, record)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _index() -> Lookup:
    """The operation index, read when a line first names an AWS service."""
    loaded: list[Lookup] = []

    def look(service: str) -> ServiceOperations | None:
        if not loaded:
            from detector.gate.cli_index import IndexLookup

            loaded.append(IndexLookup())
        return loaded[0](service)

    return look


def _aws_profiles(environ: Mapping[str, str]) -> dict[str, AwsProfile]:
    """The AWS CLI config's profiles (regions, accounts); none when it cannot be read."""
    from detector.gate.aws_config import parse_config

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
    args: argparse.Namespace, environ: Mapping[str, str], record: dict[str, Any], stderr: IO[str]
) -> None:
    """Append the verdict; a failure is reported and changes nothing about the verdict."""
    try:
        path = args.journal or default_journal(environ)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one line with O_APPEND: concurrent hooks never interleave lines.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, dumps(record) + b"\n")
        finally:
            os.close(fd)
    except OSError as exc:
        stderr.write(f"trailguard gate: could not journal the verdict: {exc}\n")


def main(argv: list[str] | None = None) -> int:
    """`trailguard-gate ...`, the same as `trailguard gate ...` without loading the rest of
    the command line: it starts in about half the time, and it runs before every tool call."""
    parser = argparse.ArgumentParser(prog="trailguard-gate", formatter_class=_Formatter)
    commands = parser.add_subparsers()
    add_parser(commands)
    args = parser.parse_args(["gate", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
