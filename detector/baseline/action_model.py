"""The action model: how often each group uses each action, service, resource type, region,
hour, network, error code and client, and how surprising a new event is against that history.

Groups come from `groups.group_chain` (role or user, agent kind, scope, account, global;
the session is added at run time) and back off from specific to general (`surprisal`), so a
session seen for the first time inherits its role's and its kind's history. An event is
unusual when, for some feature, its surprisal exceeds that feature's threshold, calibrated
on the training events themselves (each scored leave-one-out, as if unseen). Counts decay
exponentially in event time; the run-time view (`action_runtime`) keeps learning online.

Saved as plain numpy (`counts.npz`, no pickle) and JSON (`params.json`).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from detector.baseline.counts import Cell, CountTable
from detector.baseline.features import (
    FEATURES,
    FeatureConfig,
    FeatureExtractor,
    parse_feature_config,
)
from detector.baseline.groups import group_chain, level
from detector.baseline.protocol import ModelEntry, TrainingEvent
from detector.baseline.registry import MODELS
from detector.baseline.surprisal import surprisals
from detector.core.learned import Baseline
from detector.core.policy import SeverityPolicy
from detector.errors import ConfigError

NAME = "action-frequency"
# 2: the client feature (a version-1 artifact counts one feature fewer).
SCHEMA_VERSION = 2
DAY = 86400.0
DEFAULT_HALF_LIFE_DAYS = 30.0
COUNTS_FILE = "counts.npz"
PARAMS_FILE = "params.json"
# A shipped prior keeps what generalises beyond the accounts it was trained on.
PRIOR_LEVELS = frozenset({"agent", "global"})
# Hyper-parameters `from_settings` reads from the `baseline:` section; the rest is not ours.
SETTINGS_KEYS = frozenset(
    {"half_life_days", "quantile", "min_threshold_bits", "prior_only", "default_time_zone",
     "time_zones", "networks"}
)  # fmt: skip


class ActionFrequencyModel:
    """Decayed counts per (group, feature, value) with back-off, and per-feature thresholds.

    half_life_days      counts halve every this many days of event time
    quantile            share of training events (scored leave-one-out) below a threshold
    min_threshold_bits  no threshold is lower: an event is never flagged for a value with
                        a chance better than 2**-min_threshold_bits
    session_prior       weight of the role's history against a session's own counts
    prior_only          keep only the agent-kind and global counts (a prior to ship, not a
                        baseline of the training accounts' principals)
    calibration_events  at most this many training events are scored for the thresholds
    features            time zones and named networks (see `features.FeatureConfig`)
    """

    name = NAME
    schema_version = SCHEMA_VERSION

    def __init__(
        self,
        *,
        half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
        quantile: float = 0.999,
        min_threshold_bits: float = 8.0,
        session_prior: float = 20.0,
        prior_only: bool = False,
        calibration_events: int = 200_000,
        features: FeatureConfig | None = None,
    ) -> None:
        self.half_life_days = half_life_days
        self.quantile = quantile
        self.min_threshold_bits = min_threshold_bits
        self.session_prior = session_prior
        self.prior_only = prior_only
        self.calibration_events = calibration_events
        self.features = features

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, source: str = "<settings>") -> Self:
        """Hyper-parameters from the `baseline:` section (keys in SETTINGS_KEYS; others are
        ignored here and checked by the section's own parser)."""
        kwargs: dict[str, Any] = {}
        for key, low, high in (
            ("half_life_days", 0.0, None),
            ("quantile", 0.5, 1.0),
            ("min_threshold_bits", 0.0, None),
        ):
            if settings.get(key) is not None:
                kwargs[key] = number_setting(settings[key], low, high, source, f"baseline.{key}")
        if settings.get("prior_only") is not None:
            if not isinstance(settings["prior_only"], bool):
                raise ConfigError(f"{source}: 'baseline.prior_only' must be true or false")
            kwargs["prior_only"] = settings["prior_only"]
        return cls(features=parse_feature_config(settings, source=source, key="baseline"), **kwargs)

    # --- fitting --------------------------------------------------------------------------

    def fit(self, events: Sequence[TrainingEvent]) -> Self:
        extractor = FeatureExtractor(self.features or FeatureConfig())
        # In event time, so which call was a value's first use does not depend on the order
        # the history was read in.
        rows = sorted(
            ((_stamp(e), self._chain(group_chain(e.ctx)), extractor.values(e.ctx)) for e in events),
            key=lambda row: row[0],
        )
        start = min((t for t, _, _ in rows), default=0.0)
        end = max((t for t, _, _ in rows), default=0.0)
        # Weights are relative to the end of the window: the latest call weighs 1.
        table = CountTable(self.half_life_days * DAY, reference=end)
        weights = []
        for at, chain, values in rows:
            weight = table.weight(at)
            weights.append(weight)
            for group in chain:
                table.add_call(group, at)
                for feature, value in enumerate(values):
                    table.add(group, feature, value, weight)
        self.counts_ = table
        self.window_ = (start, end)
        self.events_ = len(rows)
        self.thresholds_ = self._calibrate(table, rows, weights, end)
        return self

    def _chain(self, chain: tuple[str, ...]) -> tuple[str, ...]:
        # The session is left out: sessions end, and a saved baseline holds what lasts.
        kept = chain[1:]
        if self.prior_only:
            kept = tuple(g for g in kept if level(g) in PRIOR_LEVELS)
        return kept

    def _calibrate(
        self,
        table: CountTable,
        rows: Sequence[tuple[float, tuple[str, ...], tuple[str, ...]]],
        weights: Sequence[float],
        end: float,
    ) -> npt.NDArray[np.float64]:
        """Per feature, the surprisal that `quantile` of training events stay under, each
        event scored as if it had not been seen (its own weight taken out)."""
        floor = np.full(len(FEATURES), self.min_threshold_bits)
        if not rows:
            return floor
        stride = max(1, -(-len(rows) // self.calibration_events))
        scores = np.array(
            [
                surprisals(table, None, rows[i][1], rows[i][2], end, own=weights[i])
                for i in range(0, len(rows), stride)
            ]
        )
        thresholds: npt.NDArray[np.float64] = np.maximum(
            floor, np.quantile(scores, self.quantile, axis=0)
        )
        return thresholds

    # --- scoring --------------------------------------------------------------------------

    def surprisals(self, events: Sequence[TrainingEvent]) -> npt.NDArray[np.float64]:
        """Surprisal in bits of every feature of every event (rows) against the fitted
        counts alone (no session history, nothing learned)."""
        extractor = FeatureExtractor(self.features or FeatureConfig())
        rows = [
            surprisals(
                self.counts_, None, self._chain(group_chain(e.ctx)), extractor.values(e.ctx),
                _stamp(e)
            )
            for e in events
        ]  # fmt: skip
        return np.array(rows, dtype=np.float64).reshape(len(events), len(FEATURES))

    def score(self, events: Sequence[TrainingEvent]) -> npt.NDArray[np.float64]:
        """Higher is more unusual: the largest excess of a feature's surprisal over its
        threshold, in bits. Above 0, the run-time raises `novel-action`."""
        excess = self.surprisals(events) - self.thresholds_
        best: npt.NDArray[np.float64] = excess.max(axis=1, initial=-np.inf)
        return best

    def runtime(self, policy: SeverityPolicy, settings: Mapping[str, Any]) -> Baseline:
        from detector.baseline.action_runtime import ActionFrequencyRuntime

        return ActionFrequencyRuntime(self, policy, settings)

    # --- persistence ----------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {
            "half_life_days": self.half_life_days,
            "quantile": self.quantile,
            "min_threshold_bits": self.min_threshold_bits,
            "session_prior": self.session_prior,
            "prior_only": self.prior_only,
            "calibration_events": self.calibration_events,
            "features": (self.features or FeatureConfig()).to_dict(),
        }

    def save(self, directory: Path) -> ModelEntry:
        directory.mkdir(parents=True, exist_ok=True)
        _write_npz(directory / COUNTS_FILE, _table_arrays(self.counts_))
        thresholds = {f: float(t) for f, t in zip(FEATURES, self.thresholds_, strict=True)}
        saved = {
            "schema_version": SCHEMA_VERSION,
            "params": self.params(),
            "features": list(FEATURES),
            "thresholds": thresholds,
            "window": list(self.window_),
            "reference": self.counts_.reference,
            "events": self.events_,
        }
        text = json.dumps(saved, indent=2, sort_keys=True) + "\n"
        (directory / PARAMS_FILE).write_text(text, encoding="utf-8")
        return ModelEntry(
            name=self.name,
            schema_version=SCHEMA_VERSION,
            features=FEATURES,
            files=(COUNTS_FILE, PARAMS_FILE),
            thresholds=thresholds,
            counts={g: int(e[0]) for g, e in self.counts_.groups.items()},
            params=self.params(),
        )

    @classmethod
    def load(cls, directory: Path, entry: ModelEntry) -> Self:
        saved = json.loads((directory / PARAMS_FILE).read_text(encoding="utf-8"))
        if saved.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"schema version {saved.get('schema_version')!r} in {PARAMS_FILE}")
        if tuple(saved["features"]) != FEATURES:
            raise ValueError(f"{PARAMS_FILE} lists features {saved['features']}, not {FEATURES}")
        params = dict(saved["params"])
        features = parse_feature_config(params.pop("features"), source=PARAMS_FILE, key="features")
        model = cls(features=features, **params)
        with np.load(directory / COUNTS_FILE, allow_pickle=False) as arrays:
            model.counts_ = _table_from_arrays(
                arrays, model.half_life_days * DAY, reference=float(saved["reference"])
            )
        model.thresholds_ = np.array([saved["thresholds"][f] for f in FEATURES], dtype=np.float64)
        start, end = saved["window"]
        model.window_ = (float(start), float(end))
        model.events_ = int(saved["events"])
        return model


def _stamp(event: TrainingEvent) -> float:
    return event.ctx.event.event_time.timestamp()


def number_setting(value: Any, low: float, high: float | None, source: str, key: str) -> float:
    """A number strictly between `low` and `high` (None: no upper bound), or a ConfigError."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or value <= low or (high is not None and value >= high):
        bounds = f"above {low:g}" + (f" and below {high:g}" if high is not None else "")
        raise ConfigError(f"{source}: '{key}' must be a number {bounds}, got {value!r}")
    return float(value)


def _table_arrays(table: CountTable) -> dict[str, npt.NDArray[Any]]:
    groups = list(table.groups)
    index = {g: i for i, g in enumerate(groups)}
    for group, _ in table.cells:
        index.setdefault(group, len(index))
    groups = list(index)
    vocabulary = sorted({v for c in table.cells.values() for v in c.values})
    value_index = {v: i for i, v in enumerate(vocabulary)}
    cells = list(table.cells.items())
    value_keys = [(n, value_index[v]) for n, (_, c) in enumerate(cells) for v in c.values]
    value_entries = [e for _, c in cells for e in c.values.values()]
    return {
        "groups": np.array(groups, dtype=np.str_),
        "group_stats": np.array(
            [table.groups.get(g, [0.0, 0.0, 0.0]) for g in groups], dtype=np.float64
        ).reshape(-1, 3),
        "cell_keys": np.array([(index[g], f) for (g, f), _ in cells], dtype=np.int64).reshape(
            -1, 2
        ),
        "cell_stats": np.array(
            [(c.weight, c.calls, c.distinct, c.novel) for _, c in cells], dtype=np.float64
        ).reshape(-1, 4),
        "vocabulary": np.array(vocabulary, dtype=np.str_),
        "value_keys": np.array(value_keys, dtype=np.int64).reshape(-1, 2),
        "value_entries": np.array(value_entries, dtype=np.float64).reshape(-1, 2),
    }


def _table_from_arrays(
    arrays: Mapping[str, npt.NDArray[Any]], half_life: float, reference: float
) -> CountTable:
    table = CountTable(half_life, reference)
    groups = [str(g) for g in arrays["groups"]]
    vocabulary = [str(v) for v in arrays["vocabulary"]]
    for name, stats in zip(groups, arrays["group_stats"].tolist(), strict=True):
        if stats[0]:
            table.groups[name] = stats
    cells: list[Cell] = []
    for (g, f), (weight, calls, distinct, novel) in zip(
        arrays["cell_keys"].tolist(), arrays["cell_stats"].tolist(), strict=True
    ):
        cell = table.cells[(groups[g], f)] = Cell()
        cell.weight, cell.calls, cell.distinct, cell.novel = (
            weight,
            int(calls),
            int(distinct),
            novel,
        )
        cells.append(cell)
    for (n, v), entry in zip(
        arrays["value_keys"].tolist(), arrays["value_entries"].tolist(), strict=True
    ):
        cells[n].values[vocabulary[v]] = entry
    return table


def _write_npz(path: Path, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    """np.savez without the write time in the archive, so the same fit gives the same bytes
    (and the same sha256 in the manifest)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


MODELS.register(NAME, ActionFrequencyModel)
