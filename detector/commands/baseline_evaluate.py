"""`trailguard baseline evaluate` and `trailguard baseline bench-batch`.

`evaluate` reports how well a baseline separates labelled attacks from the rest of a
capture: an artifact as saved (`--baseline DIR`), or a holdout (`--train-until TIME`: fresh
models fitted on the benign-labelled events before TIME, scored on the rest).
`bench-batch` measures the session model's scoring cost per row in one batch against one
row at a time.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from detector.commands import CONFIG_ERROR_LINE, exit_codes, subcommand

EVALUATE_EPILOG = exit_codes(
    "0  evaluated",
    "1  the artifact is refused (changed file, unknown schema or version)",
    CONFIG_ERROR_LINE + "; unreadable labels; no labelled event; both or neither of "
    "--baseline and --train-until",
)


def add_parsers(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `evaluate` and `bench-batch` to the `baseline` command's subcommands."""
    evaluate = subcommand(
        actions,
        "evaluate",
        help="ROC AUC, precision, recall and benign alert rates on labelled CloudTrail",
        epilog=EVALUATE_EPILOG,
    )
    evaluate.add_argument("--baseline", type=Path, metavar="DIR", help="artifact to evaluate")
    evaluate.add_argument(
        "--train-until",
        type=_time,
        metavar="TIME",
        help="holdout: fit on benign-labelled events before TIME, score from TIME on",
    )
    evaluate.add_argument(
        "--labels", type=Path, required=True, metavar="FILE", help="labels.jsonl (eventID, label)"
    )
    evaluate.add_argument("--since", type=_time, metavar="TIME", help="score events from TIME on")
    evaluate.add_argument(
        "--models", type=_names, metavar="NAME[,NAME]", help="models to evaluate (default: all)"
    )
    evaluate.add_argument("--config", type=Path, help="configuration file (severity, baseline:)")
    evaluate.add_argument("--scopes", type=Path, help="task scope file (overrides the config)")
    evaluate.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    evaluate.add_argument("paths", nargs="+", metavar="PATH", help="CloudTrail file or directory")
    evaluate.set_defaults(handler=run_evaluate)
    bench = subcommand(
        actions,
        "bench-batch",
        help="session model scoring cost: one batch against one row at a time",
        epilog=exit_codes("0  measured"),
    )
    bench.add_argument("--rows", type=int, default=2000, metavar="N", help="rows to score")
    bench.set_defaults(handler=run_bench_batch)
    techniques = subcommand(
        actions,
        "techniques",
        help="which baseline kinds fire on Stratus techniques injected into a benign session",
        epilog=exit_codes("0  measured"),
    )
    techniques.add_argument("--config", type=Path, help="configuration file")
    techniques.add_argument("--json", action="store_true", help="one JSON object per technique")
    techniques.set_defaults(handler=run_techniques)


def run_techniques(args: argparse.Namespace) -> int:
    import orjson

    from detector.baseline.injection import format_injection, injection_report
    from detector.cli import EXIT_OK, _settings

    report = injection_report(_settings(args.config))
    if args.json:
        for technique in report.techniques:
            sys.stdout.write(orjson.dumps(technique.to_record()).decode() + "\n")
    else:
        sys.stdout.write(format_injection(report))
    return EXIT_OK


def run_evaluate(args: argparse.Namespace) -> int:
    import orjson

    from detector.baseline.evaluate import format_report
    from detector.baseline.evaluate_inputs import evaluate_inputs
    from detector.cli import EXIT_OK, _settings

    settings = _settings(args.config)
    evaluation = evaluate_inputs(
        args.paths,
        args.labels,
        settings=settings,
        baseline=args.baseline,
        train_until=args.train_until,
        since=args.since,
        model_names=args.models,
        scopes_path=args.scopes or settings.scopes,
    )
    if args.json:
        sys.stdout.write(orjson.dumps(evaluation.to_record()).decode() + "\n")
    else:
        sys.stdout.write(format_report(evaluation))
    return EXIT_OK


def run_bench_batch(args: argparse.Namespace) -> int:
    from detector.baseline.scoring_bench import format_bench, measure
    from detector.cli import EXIT_OK

    sys.stdout.write(format_bench(measure(rows=args.rows)))
    return EXIT_OK


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]
