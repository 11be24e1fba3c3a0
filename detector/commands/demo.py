"""`trailguard demo`: replay the bundled incident scenario."""

from __future__ import annotations

import argparse
import importlib.resources

from detector.commands import CONFIG_ERROR_LINE, exit_codes, subcommand

EPILOG = exit_codes(
    "0  the scenario was replayed",
    "1  an unexpected error",
    CONFIG_ERROR_LINE,
    "3  a finding reached the --fail-on severity",
    "4  a record was rejected and --fail-on-rejects was given",
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from detector.cli import _replay_options

    demo = subcommand(commands, "demo", help="replay the bundled incident scenario", epilog=EPILOG)
    _replay_options(demo)
    # Same default as replay: a table on a terminal, the JSON Lines contract off one.
    demo.set_defaults(handler=run, paths=None)


def run(args: argparse.Namespace) -> int:
    from detector.cli import _run_replay
    from detector.sources.files import InputFile

    demo = importlib.resources.files("detector") / "data" / "demo"
    with importlib.resources.as_file(demo) as folder:
        events = folder / "incident.jsonl"
        files = [InputFile(str(events), events, events.stat().st_size)]
        return _run_replay(
            args, files, skipped=(), scopes_path=args.scopes or folder / "scopes.yaml"
        )
