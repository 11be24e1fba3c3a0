"""Subcommands of `trailguard`, one module each; `detector.cli` builds the parser from them.

Each module has `add_parser(commands)`, which adds its subcommand to the top-level
subparsers and sets `handler`, the function `detector.cli.main` calls with the parsed
arguments. Every subcommand lists its exit codes in its help epilog (`exit_codes`).
"""

from __future__ import annotations

import argparse

# The exit codes themselves are `detector.cli.EXIT_*`, the same for every command.
CONFIG_ERROR_LINE = "2  usage or configuration error (bad flag, file, setting or input)"


def exit_codes(*lines: str) -> str:
    """The help epilog that lists a command's exit codes, one `code  meaning` per line."""
    return "exit codes:\n" + "\n".join(f"  {line}" for line in lines)


def subcommand(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help: str,
    epilog: str,
) -> argparse.ArgumentParser:
    """A subcommand whose epilog keeps its line breaks (argparse rewraps text otherwise)."""
    return commands.add_parser(
        name,
        help=help,
        description=help[:1].upper() + help[1:] + ".",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_exit_codes(parser: argparse.ArgumentParser, *lines: str) -> None:
    """Give a parser built elsewhere the same exit-code epilog."""
    parser.epilog = exit_codes(*lines)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
