"""`trailguard baseline ...`: learned baselines from CloudTrail history."""

from __future__ import annotations

import argparse

from detector.commands import baseline_evaluate


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("baseline", help="train and inspect learned baselines")
    actions = group.add_subparsers(title="baseline commands", metavar="COMMAND")
    baseline_evaluate.add_parsers(actions)
