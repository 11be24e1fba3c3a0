"""`trailguard config check FILE`: validate a configuration file without connecting anywhere."""

from __future__ import annotations

import argparse
from pathlib import Path

from detector.commands import exit_codes, subcommand

EPILOG = exit_codes(
    "0  the file is valid",
    "2  the file is invalid (the error names the key, e.g. sources[0].path)",
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = subcommand(commands, "config", help="validate a configuration file", epilog=EPILOG)
    config_cmds = config.add_subparsers(metavar="SUBCOMMAND")
    check = subcommand(config_cmds, "check", help="validate a configuration file", epilog=EPILOG)
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(handler=check_file)


def check_file(args: argparse.Namespace) -> int:
    from detector.cli import EXIT_OK, _settings
    from detector.run import build_sinks, build_sources, check_state

    settings = _settings(args.file)
    check_state(settings)
    sources = build_sources(settings)
    sinks = build_sinks(settings)
    if settings.route:
        from detector.route import RouteSettings

        RouteSettings.parse(settings.route, source=settings.source)
    from detector.web.compose import check as check_approvals

    check_approvals(settings)
    from detector.wiring import load_baselines

    # Local files only: the artifact's hashes and schema are checked as `run` would.
    baselines = load_baselines(settings)
    print(f"{args.file}: valid")
    if sources:
        print(f"  sources: {', '.join(s.name for s in sources)}")
    print(f"  sinks: {', '.join(s.name for s in sinks)}")
    from detector.responders.build import build_responders

    responders = build_responders(settings)
    if responders:
        mode = "enabled" if settings.responses.enabled else "dry run"
        print(f"  responders ({mode}): {', '.join(r.name for r in responders)}")
    print(f"  state: {settings.state.store}")
    if baselines is not None:
        print(
            f"  baseline: {baselines.artifact.directory} ({', '.join(baselines.names)}; "
            f"manifest sha256 {baselines.artifact.manifest_sha256})"
        )
    if settings.route:
        print("  route: valid")
    if settings.scopes is not None:
        from detector.scope_file import load_scopes

        scopes = load_scopes(settings.scopes)
        print(f"  scopes: {settings.scopes} ({len(scopes)} scope(s))")
    return EXIT_OK
