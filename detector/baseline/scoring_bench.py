"""What batching buys the session model: scoring cost per row, one batch against one row at
a time, for the packed forest the run time uses and for scikit-learn's own.

A forest of the default size (100 trees, 256 rows each) is fitted on synthetic session
rows; then `rows` rows are scored in one call, and a sample of them one call per row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detector.baseline.iforest import PackedForest
from detector.baseline.session_features import FEATURE_NAMES

# Scoring one row at a time is slow; this many single calls give a stable figure.
SINGLE_CALLS = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchFigures:
    rows: int
    packed_batch_us: float  # per row, all rows in one call
    packed_single_us: float  # per row, one call per row
    sklearn_batch_us: float
    sklearn_single_us: float


def measure(*, rows: int = 2000, seed: int = 0) -> BatchFigures:
    from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

    rng = np.random.default_rng(seed)
    train = rng.lognormal(size=(2000, len(FEATURE_NAMES)))
    probe = rng.lognormal(size=(rows, len(FEATURE_NAMES)))
    forest = IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(train)
    packed = PackedForest.from_sklearn(forest)
    singles = probe[: min(SINGLE_CALLS, rows)]
    return BatchFigures(
        rows=rows,
        packed_batch_us=_per_row(packed.score, [probe]),
        packed_single_us=_per_row(packed.score, [singles[i : i + 1] for i in range(len(singles))]),
        sklearn_batch_us=_per_row(forest.score_samples, [probe]),
        sklearn_single_us=_per_row(
            forest.score_samples, [singles[i : i + 1] for i in range(len(singles))]
        ),
    )


def format_bench(figures: BatchFigures) -> str:
    lines = [
        f"session model scoring, {figures.rows:,} rows of {len(FEATURE_NAMES)} features, "
        "100 trees (microseconds per row)",
        f"{'forest':<22} {'one batch':>10} {'row by row':>11} {'ratio':>7}",
    ]
    for name, batch, single in (
        ("packed (run time)", figures.packed_batch_us, figures.packed_single_us),
        ("scikit-learn", figures.sklearn_batch_us, figures.sklearn_single_us),
    ):
        lines.append(f"{name:<22} {batch:>10.1f} {single:>11.1f} {single / batch:>6.0f}x")
    lines.append(
        f"row by row with scikit-learn against the packed batch: "
        f"{figures.sklearn_single_us / figures.packed_batch_us:,.0f}x"
    )
    return "\n".join(lines) + "\n"


def _per_row(
    score: Callable[[NDArray[np.float64]], object], calls: list[NDArray[np.float64]]
) -> float:
    score(calls[0])  # warm up
    start = time.perf_counter()
    for batch in calls:
        score(batch)
    elapsed = time.perf_counter() - start
    return elapsed / sum(len(b) for b in calls) * 1e6
