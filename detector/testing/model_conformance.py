"""The behaviour every trainable baseline model must show, checked the same way for each
(in the spirit of scikit-learn's `check_estimator` and river's `check_estimator`).

`check_model(make_model, events)`:

1. the constructor stores hyper-parameters only (no fitted `name_` attribute yet), the model
   is registered under its name, and `fit` returns the model itself;
2. `score` gives one finite number per event, does not change the model, and is the same
   for two models fitted on the same events (no unseeded randomness);
3. saved as an artifact and loaded back, the model scores exactly as before; no pickle is
   written unless scikit-learn needs it;
4. loading refuses every listed file changed or missing, a model schema or artifact format
   this version does not know, and (for a pickled file) another scikit-learn version;
5. the run-time: its snapshot is plain JSON; a runtime restored from it on a freshly loaded
   model continues with the same findings, drains and state as the original; an event seen
   with `learn=False` from a session then forgotten leaves no trace at all.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from detector.baseline.artifact import (
    MANIFEST,
    PICKLED,
    ArtifactSchemaError,
    ArtifactTamperedError,
    ArtifactVersionError,
    TrainingWindow,
    load_artifact,
    save_artifact,
)
from detector.baseline.protocol import TrainableModel, TrainingEvent
from detector.baseline.registry import load_models
from detector.core.learned import Baseline
from detector.core.policy import SeverityPolicy
from detector.core.state_delta import assemble, row_key

UNLEARNED_SESSION = "conformance-unlearned-session"


def check_model(
    make_model: Callable[[], TrainableModel],
    events: Sequence[TrainingEvent],
    *,
    directory: Path | None = None,
    policy: SeverityPolicy | None = None,
    settings: Mapping[str, Any] | None = None,
) -> None:
    """Raise AssertionError naming the first contract `make_model()` breaks on `events`."""
    assert len(events) >= 4, "check_model needs at least four events"
    policy = policy or SeverityPolicy()
    settings = settings or {}
    with tempfile.TemporaryDirectory() as scratch:
        root = directory or Path(scratch)
        model = _check_fit(make_model, events)
        scores = _check_score(make_model, model, events)
        artifact = root / "artifact"
        save_artifact(artifact, [model], window=TrainingWindow(events=len(events)), source_note="")
        loaded = load_artifact(artifact).models[model.name]
        assert type(loaded) is type(model), f"load gave a {type(loaded).__name__}"
        again = loaded.score(events)
        assert np.array_equal(again, scores), f"{model.name}: a loaded model scores otherwise"
        _check_refusals(artifact, model)
        _check_runtime(model, lambda: load_artifact(artifact).models[model.name], events,
                       policy, settings)  # fmt: skip


def _check_fit(make_model: Callable[[], TrainableModel], events: Sequence[TrainingEvent]) -> Any:
    model = make_model()
    fitted_early = [a for a in vars(model) if a.endswith("_") and not a.startswith("_")]
    assert not fitted_early, f"the constructor set fitted attributes {fitted_early}"
    registry = load_models()
    assert model.name in registry, f"model {model.name!r} is not registered"
    assert registry.get(model.name) is type(model), f"{model.name!r} names another class"
    assert isinstance(model.schema_version, int) and model.schema_version >= 1
    assert model.fit(events) is model, "fit must return the model itself"
    assert [a for a in vars(model) if a.endswith("_")], "fit set no fitted attribute (name_)"
    return model


def _check_score(
    make_model: Callable[[], TrainableModel], model: TrainableModel, events: Sequence[TrainingEvent]
) -> Any:
    scores = model.score(events)
    assert scores.shape == (len(events),), f"score gave shape {scores.shape}"
    assert scores.dtype.kind == "f" and bool(np.isfinite(scores).all()), "scores not finite"
    assert np.array_equal(model.score(events), scores), "scoring changed the model"
    twin = make_model().fit(events)
    assert np.array_equal(twin.score(events), scores), "two fits on the same events differ"
    return scores


def _check_refusals(artifact: Path, model: TrainableModel) -> None:
    manifest_path = artifact / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    files = sorted(manifest["sha256"])
    assert files, "the artifact lists no file"
    for name in files:
        path = artifact / name
        original = path.read_bytes()
        path.write_bytes(original + b"\0")
        _refused(artifact, ArtifactTamperedError, path, f"{name} changed")
        path.unlink()
        _refused(artifact, ArtifactTamperedError, path, f"{name} missing")
        path.write_bytes(original)
    original_text = manifest_path.read_text(encoding="utf-8")
    for why in ("schema", "format"):
        edited = json.loads(original_text)
        if why == "schema":
            edited["models"][0]["schema_version"] = model.schema_version + 1
        else:
            edited["format_version"] += 1
        manifest_path.write_text(json.dumps(edited), encoding="utf-8")
        _refused(artifact, ArtifactSchemaError, manifest_path, f"an unknown {why} version")
    pickled = [f for f in files if f.endswith(PICKLED)]
    if pickled:
        edited = json.loads(original_text)
        edited["libraries"]["scikit-learn"] = "0.1.0"
        manifest_path.write_text(json.dumps(edited), encoding="utf-8")
        _refused(artifact, ArtifactVersionError, artifact / pickled[0], "another scikit-learn")
    manifest_path.write_text(original_text, encoding="utf-8")
    load_artifact(artifact)


def _refused(artifact: Path, error: type[Exception], path: Path, why: str) -> None:
    try:
        load_artifact(artifact)
    except error as exc:
        assert getattr(exc, "path", None) == path, f"{why}: the error names {exc}, not {path}"
        return
    raise AssertionError(f"loaded an artifact with {why}")


def _check_runtime(
    model: TrainableModel,
    reload: Callable[[], TrainableModel],
    events: Sequence[TrainingEvent],
    policy: SeverityPolicy,
    settings: Mapping[str, Any],
) -> None:
    half = len(events) // 2
    first, second = events[:half], events[half:]
    original = model.runtime(policy, settings)
    assert original.name == model.name, f"the runtime is named {original.name!r}"
    _feed(original, first)
    saved = json.loads(json.dumps(original.snapshot(), allow_nan=False))
    restored = reload().runtime(policy, settings)
    restored.restore(saved)
    assert _feed(restored, second) == _feed(original, second), "restored runtime differs"
    assert restored.snapshot() == original.snapshot(), "restored state differs"
    _check_rows(original, {e.ctx.session.session_id for e in events})

    seen, skipped = model.runtime(policy, settings), model.runtime(policy, settings)
    _feed(seen, first)
    _feed(skipped, first)
    stranger = replace(
        events[0], ctx=replace(events[0].ctx, session=replace(events[0].ctx.session,
                                                               session_id=UNLEARNED_SESSION))
    )  # fmt: skip
    seen.observe(stranger.ctx, stranger.findings, learn=False)
    seen.drain()
    skipped.drain()
    seen.forget(UNLEARNED_SESSION)
    assert seen.snapshot() == skipped.snapshot(), "learn=False left a trace in the state"
    assert _feed(seen, second) == _feed(skipped, second), "learn=False changed later findings"


def _check_rows(runtime: Baseline, session_ids: set[str]) -> None:
    """The state cut per session (for saving what changed) is the snapshot, no more."""
    rows: list[tuple[str, Any]] = []
    for session_id in sorted(session_ids):
        entries = runtime.session_snapshot(session_id)
        extra = set(entries) - set(runtime.session_collections)
        assert not extra, f"session_snapshot names collections it does not declare: {extra}"
        rows.extend((row_key(name, session_id), value) for name, value in entries.items())
    shared = runtime.shared_snapshot()
    for name in runtime.session_collections:
        assert shared.get(name) == {}, f"shared_snapshot holds entries of {name!r}"
    assert assemble(shared, rows) == runtime.snapshot(), "the rows do not make the snapshot"


def _feed(runtime: Baseline, events: Sequence[TrainingEvent]) -> list[dict[str, Any]]:
    """Findings and drains, as records, of `events` observed in order (learning allowed)."""
    found: list[dict[str, Any]] = []
    for event in events:
        found.extend(f.to_record() for f in runtime.observe(event.ctx, event.findings, learn=True))
    found.extend(f.to_record() for f in runtime.drain())
    return found
