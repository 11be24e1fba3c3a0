"""`trailguard bench baseline`: replay with a learned baseline against without it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detector.commands import CONFIG_ERROR_LINE, exit_codes, subcommand
from detector.errors import ConfigError

EPILOG = exit_codes(
    "0  measured",
    "1  a replay failed (its error is printed)",
    CONFIG_ERROR_LINE + "; no artifact at --baseline",
)


def add_mode(modes: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from detector.bench_baseline import DEFAULT_ARTIFACT

    mode = subcommand(
        modes,
        "baseline",
        help="replay throughput with a learned baseline against without it, same run",
        epilog=EPILOG,
    )
    mode.add_argument(
        "--baseline",
        type=Path,
        default=DEFAULT_ARTIFACT,
        metavar="DIR",
        help="artifact to score with (default: models/default of this checkout)",
    )
    mode.add_argument(
        "--events",
        type=int,
        nargs="+",
        default=[100_000],
        metavar="N",
        help="input sizes to measure (default: 100000)",
    )
    mode.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    from detector.bench_baseline import run

    if not (args.baseline / "manifest.json").is_file():
        raise ConfigError(f"--baseline: no baseline artifact at {args.baseline}")
    if any(n < 1 for n in args.events):
        raise ConfigError("--events: every size must be at least 1")
    run(args.events, args.baseline, sys.stdout)
    return 0
