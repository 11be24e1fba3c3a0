"""`trailguard scope suggest`: a task scope proposed from CloudTrail history.

The inputs are replayed through the pipeline (as `trailguard replay` reads them), so
`--session` takes the ids `trailguard sessions` prints and each event is attributed the
same way the service would attribute it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from detector.commands import CONFIG_ERROR_LINE, exit_codes, subcommand

if TYPE_CHECKING:
    from detector.config import Settings
    from detector.core.pipeline import StepResult
    from detector.core.session_view import SessionView
    from detector.core.suggest import Observation

EPILOG = exit_codes(
    "0  a scope was suggested (printed on stdout)",
    CONFIG_ERROR_LINE + "; no such --session or --principal; several sessions and no choice",
)


def add_parser(scope_cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    suggest = subcommand(
        scope_cmds,
        "suggest",
        help="propose a scope from the actions a session was seen taking",
        epilog=EPILOG,
    )
    suggest.add_argument(
        "--from",
        dest="paths",
        nargs="+",
        required=True,
        metavar="PATH",
        help="CloudTrail file, directory, or - for stdin",
    )
    chosen = suggest.add_mutually_exclusive_group()
    chosen.add_argument("--session", metavar="ID", help="a session id from `trailguard sessions`")
    chosen.add_argument(
        "--principal",
        metavar="ARN",
        help="every session of this principal (its ARN, or the role ARN of role sessions)",
    )
    suggest.add_argument("--name", help="the scope's name (default: derived from the session)")
    suggest.add_argument("--config", type=Path, help="configuration file")
    suggest.set_defaults(handler=run)


@dataclass(slots=True)
class _Collected:
    """Observations per session, and the latest view of each."""

    views: dict[str, SessionView] = field(default_factory=dict)
    seen: dict[str, list[Observation]] = field(default_factory=dict)

    def add(self, result: StepResult) -> None:
        from detector.core.suggest import Observation

        if result.duplicate or result.session is None:
            return
        session_id = result.session.session_id
        self.views[session_id] = result.session
        self.seen.setdefault(session_id, []).append(Observation.of(result.event))


def run(args: argparse.Namespace) -> int:
    from detector.cli import EXIT_OK, _settings
    from detector.core.suggest import match_for, propose
    from detector.core.suggest_yaml import render
    from detector.errors import ConfigError

    collected = _collect(_settings(args.config), args.paths)
    if args.principal is not None:
        ids = [
            sid
            for sid, view in collected.views.items()
            if args.principal in (view.principal_arn, view.role_arn)
        ]
        if not ids:
            raise ConfigError(f"scope suggest: no session of principal {args.principal!r}")
        view = collected.views[ids[0]]
        field_name = "role_arn" if view.role_arn == args.principal else "principal_arn"
        match: tuple[tuple[str, str], ...] = ((field_name, args.principal),)
        origin = f"principal {args.principal} ({len(ids)} session(s))"
        default_name = args.principal.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    else:
        session_id = args.session if args.session is not None else _only(collected)
        if session_id not in collected.views:
            raise ConfigError(f"scope suggest: no session {session_id!r} {_near(collected)}")
        ids = [session_id]
        view = collected.views[session_id]
        match = match_for(view)
        origin = f"session {session_id} ({view.principal_arn})"
        default_name = session_id
    observations = [seen for sid in ids for seen in collected.seen[sid]]
    name = args.name or f"suggested-{default_name}"
    proposal = propose(observations, name=name, description=f"suggested from {origin}", match=match)
    sys.stdout.write(render(proposal, origin=origin))
    return EXIT_OK


def _collect(settings: Settings, paths: Sequence[str]) -> _Collected:
    from detector.replay import replay
    from detector.sources.files import expand
    from detector.wiring import build_pipeline

    pipeline = build_pipeline(settings)
    files, skipped = expand(paths)
    collected = _Collected()
    stats = replay(
        pipeline, files, on_result=collected.add, on_reject=lambda *_: None, skipped=skipped
    )
    if stats.rejected:
        print(f"trailguard: {stats.rejected} record(s) rejected and ignored", file=sys.stderr)
    return collected


def _only(collected: _Collected) -> str:
    from detector.errors import ConfigError

    if len(collected.views) == 1:
        return next(iter(collected.views))
    raise ConfigError(
        f"scope suggest: the input holds {len(collected.views)} sessions: choose one with "
        f"--session ID or --principal ARN {_near(collected)}"
    )


def _near(collected: _Collected) -> str:
    busiest = sorted(collected.seen, key=lambda sid: -len(collected.seen[sid]))[:5]
    listed = ", ".join(f"{sid} ({len(collected.seen[sid])} events)" for sid in busiest)
    more = ", ..." if len(collected.seen) > 5 else ""
    return f"(busiest: {listed or 'none'}{more})"
