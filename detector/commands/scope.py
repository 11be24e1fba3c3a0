"""`trailguard scope check FILE` and `trailguard scope explain FILE EVENTS`."""

from __future__ import annotations

import argparse
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
