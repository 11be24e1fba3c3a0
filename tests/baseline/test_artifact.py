"""Artifacts: what the manifest records, and every way loading refuses a bad one."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import pytest
import sklearn  # type: ignore[import-untyped]

from detector.baseline.action_model import ActionFrequencyModel
from detector.baseline.artifact import (
    ArtifactError,
    ArtifactSchemaError,
    ArtifactTamperedError,
    ArtifactVersionError,
    TrainingWindow,
    load_artifact,
    manifest_sha256,
    save_artifact,
)
from detector.baseline.protocol import ModelEntry, TrainableModel, TrainingEvent
from detector.core.learned import Baseline
from detector.core.policy import SeverityPolicy
from detector.registry import Registry
from tests.baseline.history import history, training_events


@pytest.fixture(scope="module")
def model() -> ActionFrequencyModel:
    return ActionFrequencyModel().fit(training_events(history(days=3)))


@pytest.fixture
def artifact(tmp_path: Path, model: ActionFrequencyModel) -> Path:
    directory = tmp_path / "artifact"
    save_artifact(directory, [model], window=TrainingWindow(events=7), source_note="history")
    return directory


def _manifest(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    return loaded


def _write_manifest(directory: Path, data: dict[str, Any]) -> None:
    (directory / "manifest.json").write_text(json.dumps(data))


def test_the_manifest_records_versions_window_entries_and_every_files_hash(
    artifact: Path, model: ActionFrequencyModel
) -> None:
    manifest = _manifest(artifact)
    assert manifest["format"] == "trailguard-baseline" and manifest["format_version"] == 1
    assert set(manifest["libraries"]) == {"python", "numpy", "scikit-learn"}
    assert manifest["window"]["events"] == 7 and manifest["source"] == "history"
    [entry] = manifest["models"]
    assert entry["name"] == "action-frequency" and entry["schema_version"] == 2
    assert entry["features"][0] == "action" and set(entry["thresholds"]) == set(entry["features"])
    assert entry["counts"]["global"] == model.counts_.groups["global"][0]
    assert sorted(manifest["sha256"]) == [
        "action-frequency/counts.npz",
        "action-frequency/params.json",
    ]
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((artifact / name).read_bytes()).hexdigest() == digest
    loaded = load_artifact(artifact, expected_sha256=manifest_sha256(artifact))
    assert loaded.manifest.window.events == 7
    with np.load(artifact / "action-frequency" / "counts.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)


def test_a_changed_file_is_refused_naming_it(artifact: Path) -> None:
    counts = artifact / "action-frequency" / "counts.npz"
    counts.write_bytes(counts.read_bytes()[:-1] + b"x")
    with pytest.raises(ArtifactTamperedError, match="the file changed since training") as caught:
        load_artifact(artifact)
    assert caught.value.path == counts and str(counts) in str(caught.value)
    assert caught.value.retriable is False


def test_a_missing_file_and_a_missing_manifest_are_refused(artifact: Path) -> None:
    (artifact / "action-frequency" / "params.json").unlink()
    with pytest.raises(ArtifactTamperedError, match="missing: the manifest lists it"):
        load_artifact(artifact)
    (artifact / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match=r"not a baseline artifact: no manifest\.json"):
        load_artifact(artifact)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format_version=2), "format version 2 is not one this trailguard reads"),
        (lambda m: m.update(format="something-else"), "not a trailguard-baseline manifest"),
        (lambda m: m["models"][0].update(schema_version=9), "has schema version 9; this trail"),
        # Version 1 had no client feature: its counts cannot be read as version 2's.
        (lambda m: m["models"][0].update(schema_version=1),
         r"schema version 1; this trailguard reads 2: retrain it with `trailguard baseline tr"),
        (lambda m: m["models"][0].update(name="deep-thought"), "unknown model 'deep-thought'"),
        (lambda m: m.update(sha256={}), r"lists action-frequency/counts\.npz without its sha"),
        (lambda m: m.update(sha256={"../outside": "0"}), "lists a path outside the artifact"),
        (lambda m: m.pop("libraries"), "malformed manifest"),
    ],
)  # fmt: skip
def test_an_unknown_format_schema_or_model_is_refused(
    artifact: Path, edit: Any, message: str
) -> None:
    data = _manifest(artifact)
    edit(data)
    _write_manifest(artifact, data)
    with pytest.raises(ArtifactSchemaError, match=message):
        load_artifact(artifact)


def test_a_manifest_that_is_not_json_or_not_the_pinned_one_is_refused(artifact: Path) -> None:
    pinned = manifest_sha256(artifact)
    data = _manifest(artifact)
    data["source"] = "rewritten"
    _write_manifest(artifact, data)
    with pytest.raises(ArtifactTamperedError, match=f"is not the pinned {pinned}"):
        load_artifact(artifact, expected_sha256=pinned)
    (artifact / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactSchemaError, match="not valid JSON"):
        load_artifact(artifact)


def test_a_file_whose_hash_holds_but_that_the_model_cannot_read_is_refused(artifact: Path) -> None:
    counts = artifact / "action-frequency" / "counts.npz"
    counts.write_bytes(b"not a zip archive")
    data = _manifest(artifact)
    data["sha256"]["action-frequency/counts.npz"] = hashlib.sha256(counts.read_bytes()).hexdigest()
    _write_manifest(artifact, data)
    with pytest.raises(ArtifactError, match="model 'action-frequency' cannot be read"):
        load_artifact(artifact)


class _Pickled:
    """Stands in for a model scikit-learn can only store pickled: writes `model.joblib`."""

    name = "pickled-model"
    schema_version = 1
    loads: ClassVar[list[Path]] = []

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, source: str = "") -> Self:
        return cls()

    def fit(self, events: Sequence[TrainingEvent]) -> Self:
        return self

    def score(self, events: Sequence[TrainingEvent]) -> npt.NDArray[np.float64]:
        return np.zeros(len(events))

    def save(self, directory: Path) -> ModelEntry:
        directory.mkdir(parents=True)
        (directory / "model.joblib").write_bytes(b"pretend pickle")
        return ModelEntry(name=self.name, schema_version=1, features=("x",),
                          files=("model.joblib",), thresholds={}, counts={}, params={})  # fmt: skip

    @classmethod
    def load(cls, directory: Path, entry: ModelEntry) -> Self:
        cls.loads.append(directory)
        return cls()

    def runtime(self, policy: SeverityPolicy, settings: Mapping[str, Any]) -> Baseline:
        raise NotImplementedError


def test_a_pickled_model_loads_only_with_the_scikit_learn_that_wrote_it(tmp_path: Path) -> None:
    registry: Registry[type[TrainableModel]] = Registry("baseline model")
    registry.register("pickled-model", _Pickled)
    directory = tmp_path / "pickled"
    save_artifact(directory, [_Pickled()], window=TrainingWindow(), source_note="")
    load_artifact(directory, registry=registry)
    assert len(_Pickled.loads) == 1
    data = _manifest(directory)
    data["libraries"]["scikit-learn"] = "0.24.2"
    _write_manifest(directory, data)
    installed = re.escape(f"scikit-learn 0.24.2; scikit-learn {sklearn.__version__} is installed")
    with pytest.raises(ArtifactVersionError, match=installed) as caught:
        load_artifact(directory, registry=registry)
    assert caught.value.path == directory / "pickled-model" / "model.joblib"
    assert len(_Pickled.loads) == 1, "the model's files were read before the version check"


def test_saving_refuses_to_overwrite_anything_but_an_artifact_and_replaces_one_atomically(
    tmp_path: Path, artifact: Path, model: ActionFrequencyModel
) -> None:
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(ArtifactError, match="is not a baseline artifact: not replacing it"):
        save_artifact(other, [model], window=TrainingWindow(), source_note="")
    assert (other / "cat.jpg").read_bytes() == b"meow"
    with pytest.raises(ArtifactError, match="replace it with --force"):
        save_artifact(artifact, [model], window=TrainingWindow(), source_note="again")
    (artifact / "MODEL_CARD.md").write_text("# card\n")
    (artifact / "action-frequency" / "stale.npz").write_bytes(b"old")
    save_artifact(artifact, [model], window=TrainingWindow(), source_note="again", replace=True)
    assert _manifest(artifact)["source"] == "again"
    assert (artifact / "MODEL_CARD.md").read_text() == "# card\n", "the card beside it is kept"
    assert not (artifact / "action-frequency" / "stale.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact", "photos"]


def test_a_save_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    class Failing(_Pickled):
        def save(self, directory: Path) -> ModelEntry:
            directory.mkdir(parents=True)
            (directory / "half.npz").write_bytes(b"half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_artifact(tmp_path / "out", [Failing()], window=TrainingWindow(), source_note="")
    assert list(tmp_path.iterdir()) == []
