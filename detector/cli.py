"""The `trailguard` command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from detector import __version__
from detector.config import Settings, load_settings
from detector.core.taxonomy import Severity
from detector.errors import ConfigError, DetectorError

logger = logging.getLogger("trailguard")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3
# A progress bar is worth drawing only on inputs that take a while.
PROGRESS_ABOVE_BYTES = 16 * 1024 * 1024


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="trailguard: %(levelname)s: %(message)s", level=logging.INFO)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"trailguard: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as exc:
        print(f"trailguard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DetectorError as exc:
        print(f"trailguard: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # `trailguard replay ... | head` closing the pipe early is not an error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trailguard",
        description="Watches CloudTrail for AI agents acting outside their task.",
        epilog="Every command lists its exit codes in its own --help.",
    )
    parser.add_argument("--version", action="version", version=f"trailguard {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    replay = commands.add_parser(
        "replay",
        help="run the pipeline over CloudTrail files",
        epilog=REPLAY_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _replay_options(replay)
    replay.add_argument("paths", nargs="+", metavar="PATH", help="file, directory, or - for stdin")
    replay.set_defaults(handler=_cmd_replay)

    # Subcommands that live in detector/commands/, one module each.
    from detector.commands import (
        CONFIG_ERROR_LINE,
        add_exit_codes,
        baseline,
        catalog,
        config,
        demo,
        scope,
        sessions,
    )

    for command in (demo, catalog, scope, sessions, baseline):
        command.add_parser(commands)

    bench = commands.add_parser("bench", help="measure replay throughput and peak memory")
    bench.add_argument(
        "--events",
        type=int,
        nargs="+",
        default=[100_000, 1_000_000],
        metavar="N",
        help="input sizes to measure (default: 100000 1000000)",
    )
    bench.set_defaults(handler=_cmd_bench)
    bench_modes = bench.add_subparsers(metavar="MODE")
    from detector.commands import bench_baseline

    bench_baseline.add_mode(bench_modes)
    detection = bench_modes.add_parser(
        "detection", help="per-technique results of attack captures injected as agent sessions"
    )
    _bench_detection_options(detection)
    detection.set_defaults(handler=_cmd_bench_detection)
    bench_gate = bench_modes.add_parser("gate", help="start-up and decision time of the gate")
    bench_gate.add_argument("--runs", type=int, default=15, help="fresh processes per figure")
    bench_gate.add_argument(
        "--against",
        type=Path,
        metavar="DIR",
        help="also time the gate of another checkout (DIR holds its detector package), "
        "interleaved run by run",
    )
    bench_gate.set_defaults(handler=_cmd_bench_gate)
    from detector.commands import bench as bench_command

    bench_command.add_modes(bench_modes)

    run = commands.add_parser("run", help="run the always-on service (sources from the config)")
    run.add_argument("--config", type=Path, required=True, help="configuration file")
    run.add_argument("--scopes", type=Path, help="task scope file (overrides the config)")
    run.set_defaults(handler=_cmd_run)

    route = commands.add_parser("route", help="republish raw topics keyed by credential chain")
    route.add_argument("--config", type=Path, required=True, help="configuration file")
    route.set_defaults(handler=_cmd_route)

    config.add_parser(commands)
    add_exit_codes(bench, "0  measured", "1  an unexpected error", CONFIG_ERROR_LINE)
    add_exit_codes(
        run,
        "0  stopped cleanly on SIGTERM or SIGINT",
        "1  a source, sink or the state store failed (restart the service)",
        CONFIG_ERROR_LINE + "; a watched path that is missing; the HTTP port in use",
    )
    add_exit_codes(route, "0  stopped cleanly", "1  an unexpected error", CONFIG_ERROR_LINE)

    from detector.commands import responses as responses_command

    responses_command.register(commands)

    from detector.commands import approvals

    approvals.register(commands)

    from detector.commands import gate

    gate.add_parser(commands)

    from detector.commands import tasks

    tasks.add_parser(commands)
    return parser


def _replay_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scopes", type=Path, help="task scope file (YAML or JSON)")
    parser.add_argument("--config", type=Path, help="configuration file (YAML or TOML)")
    parser.add_argument("--output", default="-", help="where to write (default: stdout)")
    parser.add_argument(
        "--format",
        choices=("table", "jsonl"),
        help="table: a readable summary; jsonl: the output contract "
        "(default: table on a terminal, jsonl otherwise)",
    )
    parser.add_argument("--dead-letter", type=Path, help="write rejected records here (JSONL)")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="learned baseline artifact to score with (overrides baseline.path in --config)",
    )
    parser.add_argument(
        "--fail-on",
        type=_severity,
        metavar="SEVERITY",
        help="exit 3 when any finding reaches this severity (info|low|medium|high|critical)",
    )
    parser.add_argument(
        "--fail-on-rejects",
        action="store_true",
        help="exit 4 when any record (or whole file) was rejected",
    )


# Exit codes of replay and demo beyond the common 0, 1 and 2.
EXIT_REJECTS = 4
EXIT_NO_EVENTS = 5
REPLAY_EXIT_CODES = """exit codes:
  0  done
  1  an unexpected error
  2  bad usage or configuration (a path that does not exist, an invalid scope file,
     a baseline artifact that does not load)
  3  --fail-on: a finding reached the severity
  4  --fail-on-rejects: a record or a whole file was rejected
  5  the inputs held no CloudTrail event at all (everything skipped, empty or rejected)
The first that applies wins, in the order 3, 4, 5."""


def _replay_exit(args: argparse.Namespace, stats: Any) -> int:
    """A CI gate must not pass having checked nothing: no event at all is a failure."""
    if (
        args.fail_on is not None
        and stats.max_severity is not None
        and stats.max_severity >= args.fail_on
    ):
        return EXIT_FINDINGS
    if args.fail_on_rejects and stats.rejected:
        return EXIT_REJECTS
    if stats.events == 0:
        return EXIT_NO_EVENTS
    return EXIT_OK


def _severity(value: str) -> Severity:
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _settings(path: Path | None) -> Settings:
    return load_settings(path, os.environ)


def _cmd_replay(args: argparse.Namespace) -> int:
    from detector.sources.files import expand

    files, skipped = expand(args.paths)
    return _run_replay(args, files, skipped=skipped, scopes_path=args.scopes)


def _run_replay(
    args: argparse.Namespace, files: list[Any], *, skipped: Sequence[Any], scopes_path: Path | None
) -> int:
    from detector import report
    from detector.dead_letter import DeadLetterFile
    from detector.replay import replay
    from detector.sinks.jsonl import JsonlWriter
    from detector.wiring import build_pipeline, load_baselines

    settings = _settings(args.config)
    baselines = load_baselines(settings, path=getattr(args, "baseline", None))
    pipeline = build_pipeline(
        settings,
        scopes_path=scopes_path,
        baselines=baselines.factory(settings) if baselines is not None else None,
    )
    if getattr(args, "config", None) is not None:
        from detector.tasks.index import replay_task_index

        # Events from a registered task's credentials bind to its scope, as in the service.
        pipeline.set_tasks(replay_task_index(settings))
    with _open_output(args.output) as out, _open_dead_letter(args.dead_letter) as dead:
        fmt = args.format or ("table" if out.isatty() else "jsonl")
        writer = JsonlWriter(out)
        dead_letter = DeadLetterFile(dead) if dead is not None else None

        def on_result(result: Any) -> None:
            if fmt == "jsonl":
                writer.write(result)

        def on_drained(drained: Any) -> None:
            if fmt == "jsonl":
                writer.write(drained)

        def on_reject(origin: str, reason: str, raw: object) -> None:
            if dead_letter is not None:
                dead_letter.add(origin=origin, error=reason, raw=raw)

        with _progress(files) as progress:
            stats = replay(
                pipeline,
                files,
                on_result=on_result,
                on_reject=on_reject,
                progress=progress,
                skipped=skipped,
                drain_every=baselines.settings.drain_every if baselines else 10_000,
                on_drained=on_drained,
            )
        if fmt == "table":
            text = _TextOut(out)
            report.render(stats, text, color=out.isatty() and "NO_COLOR" not in os.environ)
        else:
            # The output is the contract; what was read, skipped and rejected goes to stderr.
            for line in report.input_summary(stats):
                logger.info("%s", line)
        writer.flush()
    return _replay_exit(args, stats)


class _TextOut:
    """Text facade over the binary output stream, so table and JSONL share one destination."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(text.encode("utf-8"))
        return len(text)


@contextlib.contextmanager
def _open_output(target: str) -> Iterator[IO[bytes]]:
    if target == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with open(target, "wb") as handle:
        yield handle


@contextlib.contextmanager
def _open_dead_letter(path: Path | None) -> Iterator[IO[bytes] | None]:
    if path is None:
        yield None
        return
    with path.open("wb") as handle:
        yield handle


@contextlib.contextmanager
def _progress(files: list[Any]) -> Iterator[Any]:
    total = sum(f.size for f in files)
    if not sys.stderr.isatty() or total < PROGRESS_ABOVE_BYTES:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, desc="replay", file=sys.stderr) as bar:
        yield bar.update


def _cmd_bench(args: argparse.Namespace) -> int:
    from detector.bench import run

    run(args.events, sys.stdout)
    return EXIT_OK


def _bench_detection_options(parser: argparse.ArgumentParser) -> None:
    where = "(default: the copy under tests/data/cloudtrail/)"
    parser.add_argument("--attacks", type=Path, metavar="DIR", help=f"labelled attacks {where}")
    parser.add_argument("--background", type=Path, metavar="DIR", help=f"benign capture {where}")
    parser.add_argument("--config", type=Path, help="configuration file (severity, catalogue)")
    parser.add_argument("--json", action="store_true", help="one JSON object per technique")


def _cmd_bench_detection(args: argparse.Namespace) -> int:
    from detector.bench_detection import ATTACKS, BACKGROUND, run

    run(
        sys.stdout,
        attacks=args.attacks or ATTACKS,
        background=args.background or BACKGROUND,
        settings=_settings(args.config),
        as_json=args.json,
    )
    return EXIT_OK


def _cmd_bench_gate(args: argparse.Namespace) -> int:
    from detector.gate.bench import run as run_gate_bench

    if args.runs < 1:
        raise ConfigError("bench gate: --runs must be at least 1")
    if args.against is not None and not (args.against / "detector" / "__init__.py").is_file():
        raise ConfigError(f"bench gate: --against {args.against}: no detector package there")
    run_gate_bench(sys.stdout, runs=args.runs, against=args.against)
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from detector.run import run_service

    settings = _settings(args.config)
    _service_logging(settings)
    return run_service(settings, scopes_path=args.scopes)


def _cmd_route(args: argparse.Namespace) -> int:
    from detector.run import run_router

    settings = _settings(args.config)
    _service_logging(settings)
    return run_router(settings)


def _service_logging(settings: Settings) -> None:
    from detector.logs import configure

    # The service logs structured lines only: drop the plain handler set up for the CLI.
    logging.getLogger().handlers.clear()
    configure(settings.log.level, _log_format(settings.log.format))
    # kafka-python narrates every connection and rebalance at INFO; keep its warnings.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))


def _log_format(value: str) -> Literal["json", "text"]:
    if value not in ("json", "text"):
        raise ConfigError(f"log.format: expected 'json' or 'text', got {value!r}")
    return "json" if value == "json" else "text"
