"""Configuration: one YAML or TOML file plus environment overrides, validated at start.

Every setting lives in a frozen dataclass below; the loader walks the file against those
dataclasses, so an unknown or mistyped key fails at start with an error naming the key.
Environment variables `TRAILGUARD__SECTION__KEY=value` override the file (values are read
as YAML scalars: `true`, `5`, `high`). Nothing else in TrailGuard reads the environment.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from detector.core.taxonomy import Severity
from detector.errors import ConfigError

ENV_PREFIX = "TRAILGUARD__"

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogSettings:
    overrides: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSettings:
    # Extra rows for the agent-marker table, same fields as the built-in rows.
    markers: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SeveritySettings:
    out_of_scope_read: Severity = Severity.MEDIUM
    out_of_scope_mutating: Severity = Severity.HIGH
    out_of_scope_dangerous: Severity = Severity.CRITICAL
    denied_dangerous: Severity = Severity.HIGH
    in_scope_risky: Severity = Severity.LOW
    agent_on_human_credentials: Severity = Severity.HIGH
    access_denied_burst: Severity = Severity.MEDIUM
    agent_access_denied_burst: Severity = Severity.HIGH
    tier_0: Severity = Severity.HIGH
    tier_1: Severity = Severity.MEDIUM
    tier_2: Severity = Severity.LOW
    alert_min: Severity = Severity.MEDIUM
    revoke_min: Severity = Severity.CRITICAL
    burst_threshold: int = 5
    burst_window_seconds: int = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseSettings:
    # Off by default in every new environment: decisions are recorded with dry_run=true.
    enabled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StateSettings:
    dedup_capacity: int = 250_000
    max_sessions: int = 1_000_000
    # Where `trailguard run` keeps sessions, alert dedup and checkpoints: "sqlite" (one file,
    # the embedded default) or "postgres" (shared by several instances).
    store: str = "sqlite"
    path: Path = Path("trailguard-state.db")
    dsn: str | None = None
    schema: str = "trailguard"
    # Sessions with no event for this long (event time) are evicted with their state.
    session_idle_seconds: int = 7 * 24 * 3600
    # State is flushed and sources acknowledged at most this often (and at shutdown); a crash
    # redelivers at most this much, which idempotent sinks absorb.
    flush_interval_seconds: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    level: str = "info"
    format: str = "json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSettings:
    # Bounded queue between sources and the pipeline: slow sinks slow the sources down.
    queue_batches: int = 16
    # Events run through the pipeline between two turns of the event loop: a large batch (one
    # 200k-event file) is worked through in pieces so /healthz and /metrics keep answering.
    chunk_events: int = 100
    # Instance name used to claim state shards; defaults to the host name.
    instance: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    scopes: Path | None = None
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    agents: AgentSettings = field(default_factory=AgentSettings)
    severity: SeveritySettings = field(default_factory=SeveritySettings)
    responses: ResponseSettings = field(default_factory=ResponseSettings)
    state: StateSettings = field(default_factory=StateSettings)
    # Streaming sources and output sinks of `trailguard run`; each mapping has a `type` naming
    # a registered adapter, an optional `name`, and the adapter's own settings.
    sources: tuple[Mapping[str, Any], ...] = ()
    sinks: tuple[Mapping[str, Any], ...] = ()
    http: HttpSettings = field(default_factory=HttpSettings)
    log: LogSettings = field(default_factory=LogSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    # `trailguard route`: raw topics in, the keyed topic out (see detector/route.py).
    route: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the file (if any), apply environment overrides, validate, return Settings."""
    document: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        document = _read(path)
    for key, value in (environ or {}).items():
        if key.startswith(ENV_PREFIX):
            _apply_override(document, key, value)
            source = source if source != "<defaults>" else "<environment>"
    settings: Settings = _build(Settings, document, source, "")
    base = path.parent if path is not None else Path.cwd()
    return dataclasses.replace(settings, source=source, **_resolve_paths(settings, base))


def parse_section(cls: type[T], data: Any, *, source: str, key: str) -> T:
    """Validate one adapter's own settings (a source's, a sink's, a responder's) against its
    frozen dataclass, with the same checks and wording as the rest of the file. Errors name
    the key as the user wrote it: `key` is where the mapping sits (`sinks[1]`), so a bad
    field reads `sinks[1].url`."""
    built: T = _build(cls, data, source, f"{key}.")
    return built


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        loaded = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}"
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return loaded


def _apply_override(document: dict[str, Any], key: str, value: str) -> None:
    parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
    if not parts:
        return
    target = document
    for part in parts[:-1]:
        nested = target.setdefault(part, {})
        if not isinstance(nested, dict):
            raise ConfigError(f"environment {key}: '{part}' is not a section")
        target = nested
    try:
        target[parts[-1]] = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        target[parts[-1]] = value


def _build(cls: type[Any], data: Any, source: str, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        raise ConfigError(f"{source}: unknown key '{prefix}{key}'{hint}")
    values = {}
    for name in names:
        if name in data:
            values[name] = _coerce(hints[name], data[name], source, f"{prefix}{name}")
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(options[0], value, source, key)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, source, f"{key}.")
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: '{key}' must be a list")
        return tuple(_coerce(item_type, v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is Severity:
        try:
            return Severity.parse(str(value))
        except ValueError as exc:
            raise ConfigError(f"{source}: '{key}': {exc}") from None
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{source}: '{key}' must be a file path")
        return Path(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{source}: '{key}' must be a non-negative integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{source}: '{key}' must be a non-negative number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a string, got {value!r}")
        return value
    if origin is Mapping or hint is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a mapping")
        return types.MappingProxyType(dict(value))
    raise ConfigError(f"{source}: '{key}' has an unsupported type")  # pragma: no cover


def _resolve_paths(settings: Settings, base: Path) -> dict[str, Any]:
    """Relative paths in a config file are relative to that file, not to the cwd."""

    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    return {
        "scopes": resolve(settings.scopes) if settings.scopes else None,
        "catalog": CatalogSettings(overrides=tuple(resolve(p) for p in settings.catalog.overrides)),
        "state": dataclasses.replace(settings.state, path=resolve(settings.state.path)),
    }
