"""What a trainable baseline model provides, so training, artifacts and the service treat
every model alike.

Models follow scikit-learn's conventions: the constructor only stores hyper-parameters,
`fit` learns from a sequence of training events and returns the model, and what was learned
lives in attributes ending in `_`. A model saves its parameters as plain numpy arrays and
JSON where it can; `detector.baseline.artifact` writes the manifest around them (schema
version, features, thresholds, counts, library versions, sha256 of every file) and checks it
before anything is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np
import numpy.typing as npt

from detector.core.findings import Finding
from detector.core.learned import Baseline
from detector.core.policy import EventContext, SeverityPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingEvent:
    """One event of the training history as the pipeline judged it (baselines off).

    `findings` are what scope and catalogue raised for it; training leaves out events with a
    finding at or above the cut-off, so an attack in the history is not learned as normal.
    """

    ctx: EventContext
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelEntry:
    """A model's part of the manifest: what `save` wrote and what `load` needs back."""

    name: str
    schema_version: int
    features: tuple[str, ...]
    files: tuple[str, ...]  # relative to the model's directory; each one's sha256 is checked
    thresholds: Mapping[str, float]
    counts: Mapping[str, int]  # training rows per group, for the manifest and model card
    params: Mapping[str, Any]  # hyper-parameters and anything else small and JSON-able


class TrainableModel(Protocol):
    """A model `trailguard baseline train` can fit, save and the service can load and run."""

    name: str  # registry name, kebab-case ("action-frequency", "session-isolation")
    schema_version: int  # bumped when saved parameters change meaning; load refuses others

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, source: str = ...) -> Self:
        """A model with hyper-parameters from the `baseline:` section (plain data); the keys
        it does not know are someone else's and are ignored."""
        ...

    def fit(self, events: Sequence[TrainingEvent]) -> Self: ...

    def score(self, events: Sequence[TrainingEvent]) -> npt.NDArray[np.float64]:
        """One finite score per event, higher is more unusual, from the fitted state alone
        (nothing is learned; a loaded copy gives the same scores)."""
        ...

    def save(self, directory: Path) -> ModelEntry:
        """Write the fitted parameters under `directory` (the model's own, empty directory
        inside the artifact); the entry lists the files, relative to it."""
        ...

    @classmethod
    def load(cls, directory: Path, entry: ModelEntry) -> Self:
        """Read parameters saved by `save`; the artifact has already checked hashes."""
        ...

    def runtime(self, policy: SeverityPolicy, settings: Mapping[str, Any]) -> Baseline:
        """The pipeline's stateful view of this fitted model for one shard."""
        ...
