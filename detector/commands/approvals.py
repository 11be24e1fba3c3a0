"""`trailguard approvals list | approve ID | deny ID | token PERSON`.

The commands work on the state store the service uses (same `--config`), so they work
whether or not the service is up; a running service hands a decision made here to its
responders at its next sweep. Deciding needs a token, like the HTTP API: `--token-file`
names a file holding it (or `-` for standard input), and the token file of the config says
whose it is. `token` makes a new token and prints the line for the token file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from detector.approvals.decisions import ApprovalError
from detector.approvals.gate import StoreApprovalGate
from detector.approvals.settings import api_settings, approval_settings
from detector.approvals.tokens import hash_token, load_tokens, new_token, read_token_file
from detector.config import Settings, load_settings
from detector.state.approvals import STATUSES, ApprovalRow, iso

STDIN = "-"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_UNAUTHENTICATED = 4
EXIT_REFUSED = 5

EPILOG = (
    "exit codes: 0 done, 1 error (unknown approval, store down), 2 usage or configuration, "
    "4 no valid token, 5 refused by the two-person rule (your own session, already decided "
    "otherwise, expired)"
)


def register(commands: Any) -> None:
    """Add `approvals` to the CLI's subcommands."""
    parser = commands.add_parser(
        "approvals", help="list, approve or deny responses held for a second person"
    )
    sub = parser.add_subparsers(metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="list approval requests", epilog=EPILOG)
    _common(listing)
    listing.add_argument("--status", choices=(*STATUSES, "all"), default="pending")
    listing.add_argument("--session", help="only this session's requests")
    listing.add_argument("--format", choices=("table", "jsonl"), default="table")
    listing.set_defaults(handler=_list)
    for name, approve in (("approve", True), ("deny", False)):
        cmd = sub.add_parser(name, help=f"{name} a held request", epilog=EPILOG)
        _common(cmd)
        cmd.add_argument("approval_id", metavar="ID")
        cmd.add_argument("--note", help="why, for the journal")
        cmd.set_defaults(handler=_decide, approve=approve)
    token = sub.add_parser("token", help="make a token for a person; print the token-file line")
    token.add_argument("person", metavar="PERSON", help="who the token stands for")
    token.set_defaults(handler=_token)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="the service's config file")
    parser.add_argument(
        "--token-file",
        required=True,
        help="file holding your token (first line), or - to read it from standard input",
    )


def _person(args: argparse.Namespace, settings: Settings) -> str | None:
    if args.token_file == STDIN:
        token = sys.stdin.readline().strip()
    else:
        token = read_token_file(Path(args.token_file))
    tokens = load_tokens(api_settings(settings), source=settings.source)
    return tokens.person(token)


def _open(args: argparse.Namespace) -> tuple[Settings, str | None]:
    settings = load_settings(args.config, os.environ)
    return settings, _person(args, settings)


def _list(args: argparse.Namespace) -> int:
    from detector.run import open_store

    settings, person = _open(args)
    if person is None:
        return _unauthenticated()
    store = open_store(settings)
    try:
        status = None if args.status == "all" else args.status
        rows = store.approvals(status=status, session_id=args.session, limit=1000)
    finally:
        store.close()
    if args.format == "jsonl":
        for row in rows:
            sys.stdout.buffer.write(orjson.dumps(row.to_record()) + b"\n")
        return EXIT_OK
    _table(rows)
    return EXIT_OK


def _decide(args: argparse.Namespace) -> int:
    from detector.run import open_store

    settings, person = _open(args)
    if person is None:
        return _unauthenticated()
    store = open_store(settings)
    gate = StoreApprovalGate(
        store, approval_settings(settings), required=settings.responses.approval == "required"
    )
    try:
        row = asyncio.run(
            gate.decide(args.approval_id, approve=args.approve, person=person, note=args.note)
        )
    except ApprovalError as exc:
        print(f"trailguard: {exc}", file=sys.stderr)
        return EXIT_ERROR if exc.status == 404 else EXIT_REFUSED
    finally:
        store.close()
    print(f"{row.approval_id}: {row.status} by {row.decided_by} at {_when(row)}")
    return EXIT_OK


def _token(args: argparse.Namespace) -> int:
    token = new_token()
    print(f"token (give it to {args.person}; it is not stored anywhere): {token}")
    print("line for the token file (api.tokens_file):")
    print(f'"{hash_token(token)}": {orjson.dumps(args.person).decode()}')
    return EXIT_OK


def _unauthenticated() -> int:
    print("trailguard: that token is not valid for this service", file=sys.stderr)
    return EXIT_UNAUTHENTICATED


def _when(row: ApprovalRow) -> str:
    return iso(row.decided_at) if row.decided_at else "-"


def _table(rows: list[ApprovalRow]) -> None:
    header = ("ID", "STATUS", "ACTION", "AGENT", "FOR", "SESSION", "REQUESTED", "DECIDED")
    lines = [header]
    for r in rows:
        decided = f"{r.decided_by} {_when(r)}" if r.decided_by else f"expires {iso(r.expires_at)}"
        lines.append(
            (
                r.approval_id,
                r.status,
                r.action,
                r.agent or "-",
                r.human or "-",
                r.session_id,
                iso(r.requested_at),
                decided,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
