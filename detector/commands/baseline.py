"""`trailguard baseline train | show | bench`: learned baselines from CloudTrail history.

`train` replays history through the pipeline (as `trailguard replay` reads it, plus
`s3://bucket/prefix`), leaves out events that raised findings at or above the cut-off,
fits the models and writes an artifact directory. `show` checks an artifact and prints what
its manifest says; `bench` measures training and scoring on the bundled captures.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detector.commands import CONFIG_ERROR_LINE, exit_codes, subcommand

TRAIN_EPILOG = exit_codes(
    "0  trained: the artifact is written",
    "1  history could not be read (S3 listing or reading failed); nothing is written",
    CONFIG_ERROR_LINE + "; an --output that is not an artifact; an unknown model",
    "5  no event to train on (everything rejected, outside the window or left out)",
)
SHOW_EPILOG = exit_codes(
    "0  the artifact is sound (hashes, schema and versions checked)",
    "1  the artifact is refused: a changed or missing file, an unknown schema or version",
    CONFIG_ERROR_LINE,
)
EXIT_NO_EVENTS = 5


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subcommand(
        commands,
        "baseline",
        help="train and inspect learned baselines",
        epilog=exit_codes("0  done", "1  the command failed (see each one's help)",
                          CONFIG_ERROR_LINE),
    )  # fmt: skip
    actions = group.add_subparsers(title="baseline commands", metavar="COMMAND")
    train = subcommand(
        actions, "train", help="fit baseline models on CloudTrail history", epilog=TRAIN_EPILOG
    )
    train.add_argument("--output", type=Path, required=True, metavar="DIR", help="artifact dir")
    train.add_argument("--config", type=Path, help="configuration file (severity, baseline:)")
    train.add_argument("--scopes", type=Path, help="task scope file (overrides the config)")
    train.add_argument("--since", type=_time, metavar="TIME", help="first event time (ISO 8601)")
    train.add_argument("--until", type=_time, metavar="TIME", help="events before this time")
    train.add_argument(
        "--models", type=_names, metavar="NAME[,NAME]", help="models to fit (default: all)"
    )
    train.add_argument(
        "--exclude-at",
        type=_severity,
        metavar="SEVERITY",
        help="leave out events with a finding at or above this (default: severity.learn_below)",
    )
    train.add_argument(
        "--prior-only",
        action="store_true",
        help="keep only what generalises (agent kinds, global counts): a prior to ship",
    )
    train.add_argument("--force", action="store_true", help="replace an artifact at --output")
    train.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint (tests, private links)")
    train.add_argument(
        "paths", nargs="+", metavar="PATH", help="file, directory or s3://bucket/prefix"
    )
    train.set_defaults(handler=run_train)
    show = subcommand(
        actions, "show", help="check an artifact and print its manifest", epilog=SHOW_EPILOG
    )
    show.add_argument("directory", type=Path, metavar="DIR")
    show.add_argument("--sha256", metavar="HEX", help="refuse unless the manifest has this hash")
    show.set_defaults(handler=run_show)
    bench = subcommand(
        actions,
        "bench",
        help="training time, artifact size and scoring cost per event on the bundled data",
        epilog=exit_codes("0  measured", "1  an unexpected error", CONFIG_ERROR_LINE),
    )
    bench.add_argument("--repeat", type=int, default=5, metavar="N", help="passes over the events")
    bench.set_defaults(handler=run_bench)


def run_train(args: argparse.Namespace) -> int:
    from detector.baseline.artifact import ArtifactError, check_output
    from detector.baseline.inputs import plan, s3_clients
    from detector.baseline.train import CollectStats, collect, fit_and_save, make_models
    from detector.cli import EXIT_OK, _settings

    settings = _settings(args.config)
    if args.since and args.until and args.since >= args.until:
        raise _usage("--since must be before --until")
    model_settings = dict(settings.baseline) | ({"prior_only": True} if args.prior_only else {})
    try:
        models = make_models(args.models, model_settings, source=settings.source)
    except KeyError as exc:
        raise _usage(str(exc.args[0])) from None
    try:
        check_output(args.output, replace=args.force)
    except ArtifactError as exc:
        raise _usage(str(exc)) from None
    client = s3_clients(args.endpoint_url)
    history = plan(args.paths, s3_client=client, since=args.since, until=args.until)
    stats = CollectStats()
    exclude_at = args.exclude_at or settings.severity.learn_below
    with _progress(history.size) as progress:
        events = list(
            collect(
                history,
                settings=settings,
                s3_client=client,
                scopes_path=args.scopes,
                since=args.since,
                until=args.until,
                exclude_at=exclude_at,
                stats=stats,
                progress=progress,
            )
        )
    for rejection in stats.rejections:
        print(f"trailguard: rejected {rejection.origin}: {rejection.reason}", file=sys.stderr)
    if not events:
        print(
            f"trailguard: no event to train on ({stats.events:,} read, {stats.outside_window:,}"
            f" outside the window, {stats.excluded:,} left out, {stats.rejected:,} rejected)",
            file=sys.stderr,
        )
        return EXIT_NO_EVENTS
    window = stats.window()
    note = ", ".join(args.paths)
    manifest = fit_and_save(
        models, events, args.output, window=window, source_note=note, replace=args.force
    )
    _summary(args.output, manifest, stats, exclude_at.label, window)
    return EXIT_OK


def _summary(output: Path, manifest: Any, stats: Any, cut: str, window: Any) -> None:
    from detector.baseline.artifact import manifest_sha256

    size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    names = ", ".join(e.name for e in manifest.models)
    print(
        f"trained {names} on {window.events:,} events "
        f"({stats.excluded:,} left out for findings at or above {cut}, "
        f"{stats.outside_window:,} outside the window, {stats.rejected:,} rejected)"
    )
    print(f"window: {_iso(window.start)} .. {_iso(window.end)}")
    print(f"artifact: {output} ({size:,} bytes)")
    print(f"manifest sha256: {manifest_sha256(output)}")


def run_show(args: argparse.Namespace) -> int:
    from detector.baseline.artifact import ArtifactError, load_artifact
    from detector.cli import EXIT_ERROR, EXIT_OK

    try:
        loaded = load_artifact(args.directory, expected_sha256=args.sha256)
    except ArtifactError as exc:
        print(f"trailguard: refused: {exc}", file=sys.stderr)
        return EXIT_ERROR
    manifest = loaded.manifest
    window = manifest.window
    libraries = ", ".join(f"{k} {v}" for k, v in sorted(manifest.libraries.items()))
    print(f"artifact {loaded.directory} (manifest sha256 {loaded.manifest_sha256})")
    print(f"trained by trailguard {manifest.trailguard} with {libraries}")
    print(f"window: {_iso(window.start)} .. {_iso(window.end)}: {window.events:,} events, "
          f"{window.excluded:,} left out")  # fmt: skip
    print(f"source: {manifest.source}")
    for entry in manifest.models:
        thresholds = ", ".join(f"{k} {v:.1f}" for k, v in entry.thresholds.items())
        busiest = sorted(entry.counts.items(), key=lambda kv: -kv[1])[:5]
        groups = f"{len(entry.counts):,} group{'s' if len(entry.counts) != 1 else ''}"
        print(f"model {entry.name} (schema {entry.schema_version}): {groups}")
        print(f"  features: {', '.join(entry.features)}")
        print(f"  thresholds (bits): {thresholds}")
        print("  busiest groups: " + ", ".join(f"{g} ({n:,})" for g, n in busiest))
    return EXIT_OK


def run_bench(args: argparse.Namespace) -> int:
    from detector.baseline.bench import run
    from detector.cli import EXIT_OK

    run(sys.stdout, repeat=max(1, args.repeat))
    return EXIT_OK


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, desc="history", file=sys.stderr) as bar:

        def advance(count: int) -> None:
            bar.update(count)

        yield advance


def _time(value: str) -> datetime:
    """ISO 8601 date or time; without a zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one model")
    return names


def _severity(value: str) -> Any:
    from detector.core.taxonomy import Severity

    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _usage(message: str) -> Exception:
    from detector.errors import ConfigError

    return ConfigError(f"baseline train: {message}")


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"
