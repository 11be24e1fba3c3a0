"""`trailguard scope check FILE`, `trailguard scope explain FILE EVENTS` and
`trailguard scope policy NAME`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from detector.commands import CONFIG_ERROR_LINE, exit_codes, scope_suggest, subcommand

CHECK_EPILOG = exit_codes(
    "0  the file is valid (warnings, if any, are printed to stderr)",
    "2  the file is invalid: every error is printed, one per line",
)
EXPLAIN_EPILOG = exit_codes(
    "0  the event(s) were explained, in scope or not",
    CONFIG_ERROR_LINE + "; no such --event-id",
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scope = subcommand(
        commands,
        "scope",
        help="validate and explain task scope files",
        epilog=exit_codes("0  success", CONFIG_ERROR_LINE),
    )
    scope_cmds = scope.add_subparsers(metavar="SUBCOMMAND")
    check = subcommand(scope_cmds, "check", help="validate a scope file", epilog=CHECK_EPILOG)
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(handler=check_file)
    explain = subcommand(
        scope_cmds,
        "explain",
        help="say why events are in or out of scope",
        epilog=EXPLAIN_EPILOG,
    )
    explain.add_argument("file", type=Path, metavar="FILE")
    explain.add_argument(
        "event",
        metavar="EVENTS",
        help="a file holding CloudTrail events (one event, a Records document, JSON Lines, "
        "gzip), or - for stdin",
    )
    explain.add_argument(
        "--event-id",
        metavar="ID",
        help="explain only this event (the others before it still inform attribution)",
    )
    explain.add_argument("--config", type=Path, help="configuration file")
    explain.set_defaults(handler=explain_events)
    scope_suggest.add_parser(scope_cmds)
    _add_policy_parser(scope_cmds)


POLICY_EPILOG = exit_codes(
    "0  the policy was printed",
    CONFIG_ERROR_LINE + "; no such scope; the policy does not fit the session-policy limit",
)


def _add_policy_parser(scope_cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = subcommand(
        scope_cmds,
        "policy",
        help="print the IAM session policy of a scope (or, with --trust, an agent role's trust)",
        epilog=POLICY_EPILOG,
    )
    policy.add_argument("name", metavar="NAME", help="the scope's name")
    policy.add_argument("--scopes", type=Path, help="task scope file (overrides the config)")
    policy.add_argument("--config", type=Path, help="configuration file")
    policy.add_argument(
        "--trust",
        action="store_true",
        help="print a trust-policy snippet for agent roles instead: sts:SourceIdentity and the "
        "session name must match agent-*",
    )
    policy.add_argument(
        "--principal",
        default="arn:aws:iam::ACCOUNT_ID:root",
        metavar="ARN",
        help="with --trust: who may assume the role (default: the account's root, i.e. its "
        "IAM principals with permission)",
    )
    policy.set_defaults(handler=print_policy)


def print_policy(args: argparse.Namespace) -> int:
    from detector.cli import EXIT_OK, EXIT_USAGE, _settings
    from detector.core.scope_policy import PolicyTooLarge, trust_policy
    from detector.wiring import scope_set

    if args.trust:
        document = trust_policy(principal_arn=args.principal)
    else:
        from detector.catalog_loader import load_catalog
        from detector.tasks.policy import scope_session_policy

        settings = _settings(args.config)
        scopes = scope_set(settings, args.scopes)
        target = scopes.get(args.name)
        if target is None:
            names = ", ".join(s.name for s in scopes.scopes) or "none"
            print(f"trailguard: no scope {args.name!r} (scopes: {names})", file=sys.stderr)
            return EXIT_USAGE
        try:
            document = scope_session_policy(target, load_catalog(settings.catalog.overrides))
        except PolicyTooLarge as exc:
            print(f"trailguard: {exc}", file=sys.stderr)
            return EXIT_USAGE
    print(json.dumps(document, indent=2))
    return EXIT_OK


def check_file(args: argparse.Namespace) -> int:
    from detector.cli import EXIT_OK, EXIT_USAGE
    from detector.core.scope_schema import check_document, scope_warnings
    from detector.scope_file import read_scope_document

    source = str(args.file)
    specs, errors = check_document(read_scope_document(args.file), source=source)
    for error in errors:
        print(f"trailguard: {error}", file=sys.stderr)
    for warning in scope_warnings(specs, now=datetime.now(UTC)):
        print(f"trailguard: warning: {source}: {warning}", file=sys.stderr)
    if errors:
        print(f"{source}: {len(errors)} error(s)", file=sys.stderr)
        return EXIT_USAGE
    names = ", ".join(s.name for s in specs) or "none"
    print(f"{source}: {len(specs)} scope(s) valid: {names}")
    return EXIT_OK


def explain_events(args: argparse.Namespace) -> int:
    from detector.cli import EXIT_OK, _settings
    from detector.explain import explain_event

    settings = _settings(args.config)
    raw = sys.stdin.buffer.read() if args.event == "-" else Path(args.event).read_bytes()
    source = "<stdin>" if args.event == "-" else args.event
    for line in explain_event(settings, args.file, raw, source=source, event_id=args.event_id):
        print(line)
    return EXIT_OK
