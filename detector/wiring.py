"""Composition root: builds the pipeline from settings. The only place adapters meet the core."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from detector.catalog_loader import load_catalog
from detector.config import Settings
from detector.core.agents import DEFAULT_MARKERS, AgentMarkerTable, parse_markers
from detector.core.delegation import AgentCredentialRules, parse_credential_rules
from detector.core.learned import Baseline
from detector.core.pipeline import Pipeline, PipelineFactory
from detector.core.policy import SeverityPolicy
from detector.core.scope import ScopeSet, parse_scopes
from detector.core.sessions import SessionTracker
from detector.errors import ConfigError
from detector.scope_file import load_scopes

if TYPE_CHECKING:
    from detector.baseline.artifact import LoadedBaseline
    from detector.baseline.settings import BaselineSettings


# The `severity:` keys that are not policy fields of the same name: the catalogue tiers.
_TIER_KEYS = {"tier_0": 0, "tier_1": 1, "tier_2": 2}


def severity_policy(settings: Settings) -> SeverityPolicy:
    """Every `severity:` key is the policy field of the same name, but the tiers, which
    become one mapping (tests/unit/test_config.py holds the two classes to that)."""
    s = settings.severity
    same = {f.name: getattr(s, f.name) for f in fields(s) if f.name not in _TIER_KEYS}
    tiers = {tier: getattr(s, key) for key, tier in _TIER_KEYS.items()}
    return SeverityPolicy(**same, tier_severity=MappingProxyType(tiers))


def marker_table(settings: Settings) -> AgentMarkerTable:
    table = AgentMarkerTable(DEFAULT_MARKERS)
    if settings.agents.markers:
        extra = parse_markers(
            list(settings.agents.markers), source=f"{settings.source}: agents.markers"
        )
        table = table.extended(extra)
    return table


def credential_rules(settings: Settings) -> AgentCredentialRules:
    agents = settings.agents
    return parse_credential_rules(
        roles=agents.roles,
        source_identities=agents.source_identities,
        session_tags=agents.session_tags,
        source=settings.source,
    )


def scope_set(settings: Settings, scopes_path: Path | None) -> ScopeSet:
    path = scopes_path or settings.scopes
    if path is None:
        return parse_scopes({"scopes": []}, source="<no scopes>")
    return load_scopes(path)


BaselineFactory = Callable[[SeverityPolicy], Sequence[Baseline]]
"""Fresh runtimes of the loaded baseline models, one set per pipeline (per shard)."""


@dataclass(frozen=True, slots=True)
class LoadedBaselines:
    """The checked artifact, the models chosen from it and the section that chose them."""

    artifact: LoadedBaseline
    names: tuple[str, ...]
    settings: BaselineSettings

    def factory(self, settings: Settings) -> BaselineFactory:
        from detector.baseline.settings import model_settings

        section = model_settings(settings)
        return lambda policy: self.artifact.runtimes(policy, section, self.names)


def load_baselines(settings: Settings, *, path: Path | None = None) -> LoadedBaselines | None:
    """The artifact of `baseline.path` (or `path`, replay's --baseline), checked and
    loaded once; None when no path is given. Models run in the artifact's order."""
    if path is None and not settings.baseline:
        return None  # nothing to check: start-up imports no model (numpy, scikit-learn)
    from detector.baseline.artifact import ArtifactError, load_artifact
    from detector.baseline.settings import baseline_settings

    chosen = baseline_settings(settings, path=path)
    if chosen.path is None:
        return None
    where = "--baseline" if path is not None else f"{settings.source}: baseline.path"
    if not chosen.path.is_dir():
        raise ConfigError(f"{where}: {chosen.path} is not a directory")
    try:
        artifact = load_artifact(chosen.path)
    except ArtifactError as exc:
        # Restarting cannot fix a changed or unreadable artifact: a configuration error.
        raise ConfigError(f"{where}: {exc}") from exc
    held = tuple(artifact.models)
    missing = [n for n in chosen.models if n not in artifact.models]
    if missing:
        raise ConfigError(
            f"{settings.source}: 'baseline.models': {chosen.path} holds no model "
            f"{missing[0]!r} (it holds {', '.join(held) or 'none'})"
        )
    names = tuple(n for n in held if not chosen.models or n in chosen.models)
    return LoadedBaselines(artifact=artifact, names=names, settings=chosen)


def pipeline_factory(
    settings: Settings,
    *,
    scopes_path: Path | None = None,
    baselines: BaselineFactory | None = None,
) -> PipelineFactory:
    """Reads the catalogue, the scope file and the marker table once; every call of the
    returned function builds a pipeline with fresh state (one per shard in the service), so
    all shards judge with the same scopes even if the file changes while the service runs.
    `baselines` gives each pipeline its own runtimes of models loaded once."""
    catalog = load_catalog(settings.catalog.overrides)
    scopes = scope_set(settings, scopes_path)
    markers = marker_table(settings)
    rules = credential_rules(settings)
    policy = severity_policy(settings)

    def build() -> Pipeline:
        return Pipeline(
            catalog=catalog,
            scopes=scopes,
            tracker=SessionTracker(
                markers, max_sessions=settings.state.max_sessions, credential_rules=rules
            ),
            policy=policy,
            responses_enabled=settings.responses.enabled,
            dedup_capacity=settings.state.dedup_capacity,
            baselines=baselines(policy) if baselines is not None else (),
        )

    return build


def build_pipeline(
    settings: Settings,
    *,
    scopes_path: Path | None = None,
    baselines: BaselineFactory | None = None,
) -> Pipeline:
    return pipeline_factory(settings, scopes_path=scopes_path, baselines=baselines)()
