"""What a group's training sessions look like feature by feature, and how far a row strays.

An IsolationForest cannot see a feature that never varied in training: its trees split
only between the smallest and largest value they were fitted on, so a role whose builds
always ran in one region gives no split on regions, and a session in four regions scores
like any other. Nor does it extrapolate: beyond the largest training value, a row sides with
the most extreme training rows. The profile covers that: it keeps each feature's 1st, 50th
and 99th percentile, and a row whose feature lies beyond that range by more than
`margin` spreads (on the model's scale: counts as log1p) is out of range whatever the forest
says. The same distances name the features that stand out in the evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detector.baseline.session_features import FEATURE_NAMES, LOG_SCALED, scaled

# The smallest spread a feature's range is measured in, on the model's scale: half a log
# unit for counts (a factor of about 1.65), a quarter for ratios. Without a floor, a feature
# that never varied would make any change infinitely far.
COUNT_SPREAD = 0.5
RATIO_SPREAD = 0.25
FLOORS = tuple(COUNT_SPREAD if name in LOG_SCALED else RATIO_SPREAD for name in FEATURE_NAMES)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupProfile:
    """One group's training rows, feature by feature (unscaled values)."""

    sessions: int
    rows: int
    low: tuple[float, ...]  # 1st percentile
    median: tuple[float, ...]
    high: tuple[float, ...]  # 99th percentile

    @classmethod
    def of(cls, values: Sequence[Sequence[float]], sessions: int) -> GroupProfile:
        matrix = np.asarray(values, dtype=np.float64)
        low, median, high = np.quantile(matrix, [0.01, 0.5, 0.99], axis=0)
        return cls(
            sessions=sessions,
            rows=len(matrix),
            low=tuple(float(v) for v in low),
            median=tuple(float(v) for v in median),
            high=tuple(float(v) for v in high),
        )

    def distances(self, values: Sequence[float]) -> list[float]:
        """Per feature, how many spreads the value lies outside [low, high]; 0 inside."""
        row, low, high = scaled(values), scaled(self.low), scaled(self.high)
        out = []
        for i, value in enumerate(row):
            spread = max(high[i] - low[i], FLOORS[i])
            if value > high[i]:
                out.append((value - high[i]) / spread)
            elif value < low[i]:
                out.append((low[i] - value) / spread)
            else:
                out.append(0.0)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "rows": self.rows,
            "low": list(self.low),
            "median": list(self.median),
            "high": list(self.high),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroupProfile:
        profile = cls(
            sessions=int(data["sessions"]),
            rows=int(data["rows"]),
            low=tuple(float(v) for v in data["low"]),
            median=tuple(float(v) for v in data["median"]),
            high=tuple(float(v) for v in data["high"]),
        )
        values = (*profile.low, *profile.median, *profile.high)
        if {len(profile.low), len(profile.median), len(profile.high)} != {len(FEATURE_NAMES)}:
            raise ValueError(f"a profile needs {len(FEATURE_NAMES)} values per percentile")
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError("a profile holds a negative or non-finite value")
        return profile


# A feature is named as standing out from half a spread outside its range.
NOTABLE = 0.5


def standing_out(distances: Sequence[float], limit: int) -> list[int]:
    """Indices of the features at least NOTABLE spreads outside their range, furthest
    first."""
    ranked = sorted((-d, i) for i, d in enumerate(distances) if d >= NOTABLE)
    return [i for _, i in ranked[:limit]]
