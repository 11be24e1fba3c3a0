"""Composition root: builds the pipeline from settings. The only place adapters meet the core."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from detector.catalog_loader import load_catalog
from detector.config import Settings
from detector.core.agents import DEFAULT_MARKERS, AgentMarkerTable, parse_markers
from detector.core.delegation import AgentCredentialRules, parse_credential_rules
from detector.core.pipeline import Pipeline, PipelineFactory
from detector.core.policy import SeverityPolicy
from detector.core.scope import ScopeSet, parse_scopes
from detector.core.sessions import SessionTracker
from detector.scope_file import load_scopes


def severity_policy(settings: Settings) -> SeverityPolicy:
    s = settings.severity
    return SeverityPolicy(
        out_of_scope_tier_0=s.out_of_scope_tier_0,
        out_of_scope_tier_1=s.out_of_scope_tier_1,
        out_of_scope_read=s.out_of_scope_read,
        out_of_scope_mutating=s.out_of_scope_mutating,
        out_of_scope_dangerous=s.out_of_scope_dangerous,
        denied_dangerous=s.denied_dangerous,
        in_scope_risky=s.in_scope_risky,
        agent_on_human_credentials=s.agent_on_human_credentials,
        access_denied_burst=s.access_denied_burst,
        agent_access_denied_burst=s.agent_access_denied_burst,
        tier_severity=MappingProxyType({0: s.tier_0, 1: s.tier_1, 2: s.tier_2}),
        alert_min=s.alert_min,
        revoke_min=s.revoke_min,
        burst_threshold=s.burst_threshold,
        burst_window_seconds=s.burst_window_seconds,
        learn_below=s.learn_below,
        sequence_recreate=s.sequence_recreate,
        agent_sequence_recreate=s.agent_sequence_recreate,
        sequence_privilege_use=s.sequence_privilege_use,
        agent_sequence_privilege_use=s.agent_sequence_privilege_use,
        sequence_recon_write=s.sequence_recon_write,
        agent_sequence_recon_write=s.agent_sequence_recon_write,
        sequence_logging_off_write=s.sequence_logging_off_write,
        agent_sequence_logging_off_write=s.agent_sequence_logging_off_write,
        agent_sequence_destroy=s.agent_sequence_destroy,
        sequence_window_seconds=s.sequence_window_seconds,
        sequence_lateness_seconds=s.sequence_lateness_seconds,
        recon_distinct_reads=s.recon_distinct_reads,
        recon_denied_calls=s.recon_denied_calls,
        recon_window_seconds=s.recon_window_seconds,
    )


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


def pipeline_factory(settings: Settings, *, scopes_path: Path | None = None) -> PipelineFactory:
    """Reads the catalogue, the scope file and the marker table once; every call of the
    returned function builds a pipeline with fresh state (one per shard in the service), so
    all shards judge with the same scopes even if the file changes while the service runs."""
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
        )

    return build


def build_pipeline(settings: Settings, *, scopes_path: Path | None = None) -> Pipeline:
    return pipeline_factory(settings, scopes_path=scopes_path)()
