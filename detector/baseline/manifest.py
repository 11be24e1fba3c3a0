"""The manifest of a baseline artifact, as data: what `artifact` writes and checks.

`manifest.json` holds the format version, the versions of trailguard, Python, numpy and
scikit-learn that trained the artifact, the training window, the source, each model's entry
(schema version, features, files, thresholds, training calls per group, hyper-parameters)
and the sha256 of every file, keyed by its path inside the artifact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from detector.baseline.protocol import ModelEntry

FORMAT = "trailguard-baseline"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingWindow:
    """The events the models were fitted on: first and last event time, how many were
    used and how many were left out for raising findings at or above the cut-off."""

    start: datetime | None = None
    end: datetime | None = None
    events: int = 0
    excluded: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "events": self.events,
            "excluded": self.excluded,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingWindow:
        return cls(
            start=_time(data.get("start")),
            end=_time(data.get("end")),
            events=int(data.get("events", 0)),
            excluded=int(data.get("excluded", 0)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    format_version: int
    trailguard: str
    libraries: Mapping[str, str]
    window: TrainingWindow
    source: str
    models: tuple[ModelEntry, ...]
    sha256: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "trailguard": self.trailguard,
            "libraries": dict(self.libraries),
            "window": self.window.to_dict(),
            "source": self.source,
            "models": [_entry_dict(e) for e in self.models],
            "sha256": dict(self.sha256),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Raises KeyError, TypeError or ValueError on a malformed manifest."""
        return cls(
            format_version=int(data["format_version"]),
            trailguard=str(data["trailguard"]),
            libraries=MappingProxyType({str(k): str(v) for k, v in data["libraries"].items()}),
            window=TrainingWindow.from_dict(data["window"]),
            source=str(data.get("source", "")),
            models=tuple(_entry(e) for e in data["models"]),
            sha256=MappingProxyType({str(k): str(v) for k, v in data["sha256"].items()}),
        )


def _entry_dict(entry: ModelEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "schema_version": entry.schema_version,
        "features": list(entry.features),
        "files": list(entry.files),
        "thresholds": dict(entry.thresholds),
        "counts": dict(entry.counts),
        "params": dict(entry.params),
    }


def _entry(data: Mapping[str, Any]) -> ModelEntry:
    return ModelEntry(
        name=str(data["name"]),
        schema_version=int(data["schema_version"]),
        features=tuple(str(f) for f in data["features"]),
        files=tuple(str(f) for f in data["files"]),
        thresholds=MappingProxyType({str(k): float(v) for k, v in data["thresholds"].items()}),
        counts=MappingProxyType({str(k): int(v) for k, v in data["counts"].items()}),
        params=MappingProxyType(dict(data["params"])),
    )


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
