"""Baseline artifacts: a directory with `manifest.json` and one sub-directory per model.

The manifest names the format version, the trailguard, Python, numpy and scikit-learn
versions that trained it, the training window, each model's entry (schema version,
features, thresholds, training rows per group, hyper-parameters) and the sha256 of every
file. Loading checks all of it before a model reads a byte of its own files: a changed or
missing file, a format or model schema this version does not know, or a scikit-learn that
cannot read a pickled model is refused with an error naming the file. Models store plain
numpy (`.npz`, read with allow_pickle=False) and JSON; a pickled file (`.joblib`, `.pkl`)
is read only after its hash is checked, and only by the scikit-learn version that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from detector import __version__
from detector.baseline.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    Manifest,
    TrainingWindow,
)
from detector.baseline.protocol import ModelEntry, TrainableModel
from detector.baseline.registry import load_models
from detector.core.learned import Baseline
from detector.core.policy import SeverityPolicy
from detector.errors import DetectorError
from detector.registry import Registry

__all__ = [
    "MANIFEST",
    "PICKLED",
    "ArtifactError",
    "ArtifactSchemaError",
    "ArtifactTamperedError",
    "ArtifactVersionError",
    "LoadedBaseline",
    "Manifest",
    "TrainingWindow",
    "check_output",
    "library_versions",
    "load_artifact",
    "manifest_sha256",
    "save_artifact",
    "sha256_file",
]

PICKLED = (".joblib", ".pkl", ".pickle")


class ArtifactError(DetectorError):
    """An artifact cannot be used; `path` names the file or directory at fault."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class ArtifactTamperedError(ArtifactError):
    """A file changed, vanished or was never written since the manifest was: retrain or
    restore the artifact from where it was published."""


class ArtifactSchemaError(ArtifactError):
    """The manifest or a model is of a format or schema version this version cannot read."""


class ArtifactVersionError(ArtifactError):
    """A pickled model needs the scikit-learn version that wrote it, and another is installed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedBaseline:
    """A checked artifact: its manifest and its fitted models by name."""

    directory: Path
    manifest: Manifest
    manifest_sha256: str
    models: Mapping[str, TrainableModel]

    def runtimes(
        self,
        policy: SeverityPolicy,
        settings: Mapping[str, Any],
        names: Sequence[str] | None = None,
    ) -> tuple[Baseline, ...]:
        """Fresh run-time views of the models (all, or `names` in that order) for one shard."""
        chosen = list(self.models) if names is None else list(names)
        missing = [n for n in chosen if n not in self.models]
        if missing:
            raise ArtifactSchemaError(
                f"holds no model {missing[0]!r} (it holds {', '.join(self.models) or 'none'})",
                path=self.directory / MANIFEST,
            )
        return tuple(self.models[n].runtime(policy, settings) for n in chosen)


def library_versions() -> dict[str, str]:
    import numpy
    import sklearn  # type: ignore[import-untyped]

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def save_artifact(
    directory: Path,
    models: Sequence[TrainableModel],
    *,
    window: TrainingWindow,
    source_note: str,
    replace: bool = False,
) -> Manifest:
    """Write fitted `models` as an artifact at `directory`, all at once: the files are
    written beside it and moved in place when complete, so a reader never sees half of one.

    An existing artifact there is replaced only with `replace`; any other non-empty
    directory is refused, so a mistyped --output cannot wipe someone's files.
    """
    directory = Path(directory)
    check_output(directory, replace=replace)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        # mkdtemp makes it private; an artifact is read by the service's user as well.
        staging.chmod(0o755)
        manifest = _write(staging, models, window=window, source_note=source_note)
        _swap(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def check_output(directory: Path, *, replace: bool) -> None:
    """Refuse to write over anything but an artifact, and over one without `replace`."""
    if directory.exists() and not directory.is_dir():
        raise ArtifactError("exists and is not a directory", path=directory)
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MANIFEST).is_file():
            raise ArtifactError(
                "exists and is not a baseline artifact: not replacing it", path=directory
            )
        if not replace:
            raise ArtifactError(
                "an artifact is already there (replace it with --force)", path=directory
            )


def manifest_sha256(directory: Path) -> str:
    """The hash to pin an artifact by (`load_artifact(..., expected_sha256=)`)."""
    return sha256_file(Path(directory) / MANIFEST)


def _write(
    staging: Path, models: Sequence[TrainableModel], *, window: TrainingWindow, source_note: str
) -> Manifest:
    entries: list[ModelEntry] = []
    hashes: dict[str, str] = {}
    for model in models:
        entry = model.save(staging / model.name)
        if entry.name != model.name or entry.schema_version != model.schema_version:
            raise ValueError(f"model {model.name!r} saved an entry for {entry.name!r}")
        for name in entry.files:
            relative = _relative(f"{model.name}/{name}", staging)
            hashes[relative] = sha256_file(staging / relative)
        entries.append(entry)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        trailguard=__version__,
        libraries=library_versions(),
        window=window,
        source=source_note,
        models=tuple(entries),
        sha256=hashes,
    )
    text = json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n"
    (staging / MANIFEST).write_text(text, encoding="utf-8")
    return manifest


def _swap(staging: Path, directory: Path) -> None:
    if not directory.exists():
        staging.rename(directory)
        return
    # Documents kept beside an artifact (its model card) are not the artifact: keep them.
    for kept in directory.iterdir():
        if kept.is_file() and kept.name != MANIFEST and not (staging / kept.name).exists():
            shutil.copy2(kept, staging / kept.name)
    old = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    directory.rename(old)
    staging.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def load_artifact(
    directory: Path,
    *,
    expected_sha256: str | None = None,
    registry: Registry[type[TrainableModel]] | None = None,
) -> LoadedBaseline:
    """Check an artifact and load its models. `expected_sha256` pins the manifest itself
    (the hash `trailguard baseline train` prints), so a manifest rewritten along with the
    files it lists is refused too."""
    directory = Path(directory)
    models = registry if registry is not None else load_models()
    path = directory / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"not a baseline artifact: no {MANIFEST}", path=directory) from None
    except OSError as exc:
        raise ArtifactError(f"cannot read: {exc.strerror}", path=path) from None
    digest = hashlib.sha256(raw).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise ArtifactTamperedError(
            f"sha256 {digest} is not the pinned {expected_sha256}", path=path
        )
    manifest = _parse_manifest(raw, path)
    for relative, expected in manifest.sha256.items():
        _check_file(directory, relative, expected)
    loaded: dict[str, TrainableModel] = {}
    for entry in manifest.models:
        cls = _model_class(models, entry, path)
        for name in entry.files:
            relative = _relative(f"{entry.name}/{name}", directory)
            if relative not in manifest.sha256:
                raise ArtifactSchemaError(f"lists {relative} without its sha256", path=path)
            if relative.endswith(PICKLED):
                _check_scikit_learn(manifest, directory / relative)
        try:
            loaded[entry.name] = cls.load(directory / entry.name, entry)
        except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as exc:
            raise ArtifactError(
                f"model {entry.name!r} cannot be read: {exc}", path=directory / entry.name
            ) from None
    return LoadedBaseline(
        directory=directory, manifest=manifest, manifest_sha256=digest, models=loaded
    )


def _parse_manifest(raw: bytes, path: Path) -> Manifest:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactSchemaError(f"not valid JSON: {exc}", path=path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArtifactSchemaError(f"not a {FORMAT} manifest", path=path)
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactSchemaError(
            f"format version {version!r} is not one this trailguard reads ({FORMAT_VERSION}); "
            "use the trailguard that trained it or retrain",
            path=path,
        )
    try:
        return Manifest.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactSchemaError(f"malformed manifest: {exc!r}", path=path) from None


def _check_file(directory: Path, relative: str, expected: str) -> None:
    path = directory / _relative(relative, directory)
    try:
        actual = sha256_file(path)
    except FileNotFoundError:
        raise ArtifactTamperedError("missing: the manifest lists it", path=path) from None
    except OSError as exc:
        raise ArtifactTamperedError(f"cannot read: {exc.strerror}", path=path) from None
    if actual != expected:
        raise ArtifactTamperedError(
            f"sha256 {actual} does not match the manifest's {expected}: the file changed "
            "since training",
            path=path,
        )


def _model_class(
    models: Registry[type[TrainableModel]], entry: ModelEntry, path: Path
) -> type[TrainableModel]:
    if entry.name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise ArtifactSchemaError(f"unknown model {entry.name!r} (known: {known})", path=path)
    cls = models.get(entry.name)
    if entry.schema_version != cls.schema_version:
        raise ArtifactSchemaError(
            f"model {entry.name!r} has schema version {entry.schema_version}; this trailguard "
            f"reads {cls.schema_version}: retrain it with `trailguard baseline train`",
            path=path,
        )
    return cls


def _check_scikit_learn(manifest: Manifest, path: Path) -> None:
    """Pickled scikit-learn objects are only readable by the version that wrote them."""
    import sklearn

    wrote = manifest.libraries.get("scikit-learn", "unknown")
    if _minor(wrote) != _minor(sklearn.__version__):
        raise ArtifactVersionError(
            f"was written by scikit-learn {wrote}; scikit-learn {sklearn.__version__} is "
            f"installed and cannot read it: install scikit-learn {wrote} or retrain",
            path=path,
        )


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _relative(name: str, directory: Path) -> str:
    """A manifest path, which must stay inside the artifact directory."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise ArtifactSchemaError(f"lists a path outside the artifact: {name!r}", path=directory)
    return pure.as_posix()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
