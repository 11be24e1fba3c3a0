"""`trailguard responses`: the response journal, and the IAM policy responders need.

trailguard responses list [--config FILE] [--session ID] [--limit N] [--format table|jsonl]
trailguard responses policy      # the IAM policy for the responders' declared permissions
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import orjson

from detector.config import load_settings
from detector.state.store import JournalEntry

DEFAULT_LIMIT = 200


def register(commands: Any) -> None:
    """Add the `responses` command to the CLI's subcommands."""
    responses = commands.add_parser("responses", help="the response journal and IAM policy")
    sub = responses.add_subparsers(metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="show decided responses and what became of them")
    listing.add_argument("--config", help="configuration file")
    listing.add_argument("--session", metavar="ID", help="only this session's responses")
    listing.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"newest N lines (default {DEFAULT_LIMIT})"
    )
    listing.add_argument(
        "--format",
        choices=("table", "jsonl"),
        help="table (default on a terminal) or one JSON object per journal line",
    )
    listing.set_defaults(handler=list_responses)
    policy = sub.add_parser("policy", help="print the IAM policy the responders need")
    policy.set_defaults(handler=print_policy)


def list_responses(args: argparse.Namespace) -> int:
    from pathlib import Path

    from detector.run import open_store

    settings = load_settings(Path(args.config) if args.config else None, os.environ)
    store = open_store(settings)
    try:
        entries = store.journal_entries(session_id=args.session, limit=max(1, args.limit))
    finally:
        store.close()
    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    if fmt == "jsonl":
        for entry in entries:
            sys.stdout.write(orjson.dumps(as_record(entry)).decode() + "\n")
    else:
        sys.stdout.write(table(entries))
    return 0


def as_record(entry: JournalEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "recorded_at": entry.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "session_id": entry.session_id,
        "action": entry.action,
        "responder": entry.responder,
        "outcome": entry.outcome,
        "dry_run": entry.dry_run,
        "reason": entry.reason,
        "detail": dict(entry.detail),
    }


def table(entries: list[JournalEntry]) -> str:
    if not entries:
        return "no responses journaled\n"
    header = ("RECORDED", "SESSION", "ACTION", "OUTCOME", "DRY RUN", "RESPONDER", "REASON")
    rows = [header]
    rows.extend(
        (
            e.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.session_id,
            e.action,
            e.outcome,
            "yes" if e.dry_run else "no",
            e.responder or "-",
            _timed(e),
        )
        for e in entries
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def _timed(entry: JournalEntry) -> str:
    seconds = entry.detail.get("seconds_from_event")
    if isinstance(seconds, int | float):
        return f"{entry.reason} ({seconds:.1f}s after the event)"
    return entry.reason


def print_policy(args: argparse.Namespace) -> int:
    sys.stdout.write(orjson.dumps(responder_policy(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def responder_policy() -> dict[str, Any]:
    """The IAM policy for every registered responder's `required_permissions`.

    Resource `*`: the guardrails (allow_accounts, allow_roles) decide which roles are
    touched; narrow the resources to the agent roles' ARNs where they follow a pattern.
    """
    from detector.responders.build import required_permissions

    actions = sorted(required_permissions())
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TrailGuardResponders",
                "Effect": "Allow",
                "Action": actions,
                "Resource": "*",
            }
        ],
    }
