"""Settings of the approval API and the two-person rule, validated with parse_section.

responses:
  approval: required          # or "none" (default): only `on_violation: approve` scopes
approvals:
  expire_seconds: 3600        # a request nobody decides in this time expires ...
  default_outcome: deny       # ... with this outcome (deny or approve)
api:
  tokens_file: tokens.yaml    # "sha256:<hex of the token>": person
  tokens: {}                  # the same mapping, e.g. from TRAILGUARD__API__TOKENS
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from detector.config import Settings, parse_section
from detector.errors import ConfigError

APPROVAL_MODES = ("none", "required")
OUTCOMES = ("deny", "approve")

NO_TOKENS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalSettings:
    expire_seconds: int = 3600
    default_outcome: str = "deny"
    # How often the service expires due requests and hands decisions made elsewhere (the CLI,
    # another instance) to the responders.
    sweep_seconds: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSettings:
    tokens_file: Path | None = None
    tokens: Mapping[str, str] = field(default_factory=lambda: NO_TOKENS)
    # How long a login from the session page's form lasts.
    login_seconds: int = 12 * 3600
    # Timeline entries kept per agent session for its page (the newest).
    timeline_entries: int = 500
    # People who may revoke an agent session from its page without waiting for a request.
    revokers: tuple[str, ...] = ()


def approval_settings(settings: Settings) -> ApprovalSettings:
    parsed = parse_section(
        ApprovalSettings, dict(settings.approvals), source=settings.source, key="approvals"
    )
    if parsed.default_outcome not in OUTCOMES:
        raise ConfigError(
            f"{settings.source}: 'approvals.default_outcome' must be one of "
            f"{', '.join(OUTCOMES)}, got {parsed.default_outcome!r}"
        )
    if parsed.expire_seconds < 1:
        raise ConfigError(f"{settings.source}: 'approvals.expire_seconds' must be at least 1")
    if settings.responses.approval not in APPROVAL_MODES:
        raise ConfigError(
            f"{settings.source}: 'responses.approval' must be one of "
            f"{', '.join(APPROVAL_MODES)}, got {settings.responses.approval!r}"
        )
    return parsed


def api_settings(settings: Settings) -> ApiSettings:
    parsed = parse_section(ApiSettings, dict(settings.api), source=settings.source, key="api")
    if parsed.timeline_entries < 1:
        raise ConfigError(f"{settings.source}: 'api.timeline_entries' must be at least 1")
    path = parsed.tokens_file
    if path is not None and not path.is_absolute() and settings.source.endswith(_FILE_SUFFIXES):
        # Like every other path in the file: relative to the file, not to the cwd.
        path = Path(settings.source).parent / path
        parsed = ApiSettings(
            tokens_file=path,
            tokens=parsed.tokens,
            login_seconds=parsed.login_seconds,
            timeline_entries=parsed.timeline_entries,
            revokers=parsed.revokers,
        )
    return parsed


_FILE_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def required_scopes(scope_modes: Mapping[str, str]) -> frozenset[str]:
    """The scopes whose violations wait for a second person, from {scope: on_violation}."""
    return frozenset(name for name, mode in scope_modes.items() if mode == "approve")
