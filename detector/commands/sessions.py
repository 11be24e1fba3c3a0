"""`trailguard sessions`: list sessions from replay's inputs or the service's state store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from detector.commands import CONFIG_ERROR_LINE, exit_codes, subcommand

if TYPE_CHECKING:
    from detector.config import Settings
    from detector.session_list import SessionSummary
    from detector.state.gate_verdicts import GateVerdictRow

EPILOG = exit_codes(
    "0  sessions listed (or the one --session shown)",
    "1  the state store could not be read",
    CONFIG_ERROR_LINE + "; no such --session",
)
DESCRIPTION_NOTE = (
    "With PATHs, the inputs are replayed (as `trailguard replay` reads them) and every\n"
    "count is exact. Without, the state store of --config is read: it keeps who each live\n"
    "session is and when it was last seen, not its events, so counts, first seen and the\n"
    "timeline are unknown (-) there, and the worst severity is that of its open alerts.\n"
    "With --config and --session, the pre-flight gate's verdicts on the session (or on the\n"
    "task it is) follow; a task id the gate reported under is a session there too."
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sessions = subcommand(
        commands,
        "sessions",
        help="list sessions, or show one session's timeline",
        epilog=DESCRIPTION_NOTE + "\n\n" + EPILOG,
    )
    sessions.add_argument(
        "paths", nargs="*", metavar="PATH", help="CloudTrail file, directory, or - for stdin"
    )
    sessions.add_argument(
        "--config", type=Path, help="configuration file (its state store, without PATHs)"
    )
    sessions.add_argument("--scopes", type=Path, help="task scope file (overrides the config)")
    sessions.add_argument("--session", metavar="ID", help="show this session's timeline")
    sessions.add_argument(
        "--format",
        choices=("table", "jsonl"),
        help="default: table on a terminal, jsonl otherwise",
    )
    sessions.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from detector.cli import EXIT_OK, EXIT_USAGE, _settings
    from detector.errors import ConfigError

    if not args.paths and args.config is None:
        raise ConfigError("sessions: give CloudTrail PATHs, or --config for the state store")
    settings = _settings(args.config)
    scopes_path = args.scopes or settings.scopes
    if args.paths:
        summaries = _from_inputs(settings, args.paths, scopes_path, args.session)
    else:
        summaries = _from_store(settings, scopes_path)
    out = sys.stdout
    fmt = args.format or ("table" if out.isatty() else "jsonl")
    verdicts: list[GateVerdictRow] = []
    if args.session is not None:
        found = [s for s in summaries if s.view.session_id == args.session]
        if not args.paths:
            verdicts = _gate_verdicts(settings, args.session, found)
        if not found and not verdicts:
            near = ", ".join(s.view.session_id for s in summaries[:5]) or "none"
            print(
                f"trailguard: no session {args.session!r} ({len(summaries)} found: {near}"
                f"{', ...' if len(summaries) > 5 else ''})",
                file=sys.stderr,
            )
            return EXIT_USAGE
        summaries = found
    if fmt == "jsonl":
        for summary in summaries:
            _jsonl(out, summary.to_record())
            if args.session is not None:
                for entry in summary.timeline:
                    _jsonl(out, entry.to_record(summary.view.session_id))
        for verdict in reversed(verdicts):
            _jsonl(out, verdict.to_record())
        return EXIT_OK
    if summaries or args.session is None:
        _table(out, summaries)
    if args.session is not None and summaries:
        _timeline(out, summaries[0], from_store=not args.paths)
    if verdicts:
        _verdicts(out, args.session, verdicts)
    return EXIT_OK


def _from_inputs(
    settings: Settings, paths: Sequence[str], scopes_path: Path | None, timeline_of: str | None
) -> list[SessionSummary]:
    from detector.replay import replay
    from detector.session_list import SessionCollector
    from detector.sources.files import expand
    from detector.wiring import build_pipeline

    pipeline = build_pipeline(settings, scopes_path=scopes_path)
    files, _ = expand(paths)
    collector = SessionCollector(timeline_of=timeline_of)
    replay(pipeline, files, on_result=collector.add, on_reject=lambda *_: None)
    return collector.finish(pipeline.scopes)


def _from_store(settings: Settings, scopes_path: Path | None) -> list[SessionSummary]:
    from detector.run import open_store
    from detector.session_list import from_snapshot
    from detector.wiring import build_pipeline

    pipeline = build_pipeline(settings, scopes_path=scopes_path)
    store = open_store(settings)
    summaries = []
    try:
        for shard in store.shards():
            snapshot = store.load(shard)
            if snapshot is None:
                continue
            pipeline.restore(snapshot)
            worst = pipeline.decider.worst_severities()
            views = pipeline.tracker.live()
            summaries.extend(from_snapshot(views, pipeline.scopes, worst))
    finally:
        store.close()
    return summaries


def _gate_verdicts(
    settings: Settings, session_id: str, found: Sequence[SessionSummary]
) -> list[GateVerdictRow]:
    """The gate's verdicts on the session and its task, newest first."""
    from detector.run import open_store
    from detector.web.session_gate import linked_task, session_verdicts

    store = open_store(settings)
    try:
        task = linked_task(store, session_id, None, found[0].view if found else None)
        return session_verdicts(store, session_id, task, limit=1000)
    finally:
        store.close()


def _verdicts(out: IO[str], session_id: str, verdicts: Sequence[GateVerdictRow]) -> None:
    out.write(f"\nPre-flight gate on {session_id} (oldest first):\n")
    for v in reversed(verdicts):
        what = "blocked before it ran" if v.blocked else "allowed"
        out.write(f"  {_when(v.decided_at)}  {what}: {v.command or '(no command line)'}\n")
        if v.blocked:
            for line in v.reason.splitlines():
                out.write(f"      {line}\n")


def _jsonl(out: IO[str], record: dict[str, Any]) -> None:
    out.write(orjson.dumps(record).decode() + "\n")


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def _table(out: IO[str], summaries: Sequence[SessionSummary]) -> None:
    header = (
        "session", "kind", "agent", "person", "credentials", "scope",
        "first seen", "last seen", "events", "findings", "worst",
    )  # fmt: skip
    rows = [header] + [
        (
            s.view.session_id,
            s.view.kind.value,
            _dash(s.view.agent),
            _dash(s.view.human),
            _dash(s.credentials),
            _dash(s.scope),
            _when(s.first_seen),
            _when(s.last_seen),
            _dash(s.events),
            _dash(s.findings),
            _dash(s.worst.label if s.worst is not None else None),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    out.write(f"{len(summaries)} session(s)\n")


def _timeline(out: IO[str], summary: SessionSummary, *, from_store: bool) -> None:
    out.write(f"\nTimeline of {summary.view.session_id} ({summary.view.principal_arn}):\n")
    if from_store:
        out.write("  the state store keeps no events; replay the session's CloudTrail files\n")
        return
    for entry in summary.timeline:
        error = f" [{entry.error_code}]" if entry.error_code else ""
        out.write(f"  {_when(entry.event_time)}  {entry.action}  {entry.region or '-'}{error}\n")
        for finding in entry.findings:
            out.write(f"      {finding.severity.label}: {finding.kind}: {finding.reason}\n")
