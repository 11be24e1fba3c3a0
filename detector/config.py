"""Configuration: one YAML or TOML file plus environment overrides, validated at start.

Every setting lives in a frozen dataclass below; the loader walks the file against those
dataclasses, so an unknown or mistyped key fails at start with an error naming the key.
Environment variables `TRAILGUARD__SECTION__KEY=value` override the file (values are read
as YAML scalars: `true`, `5`, `high`). Nothing else in TrailGuard reads the environment.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml

from detector.core.delegation import DEFAULT_SESSION_TAGS, DEFAULT_SOURCE_IDENTITIES
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
    # What marks a role session a person minted as delegated to an agent rather than the
    # person's credentials handed over: roles reserved for agents (name or ARN globs), and
    # SourceIdentity and session-tag globs set at mint time (see detector/core/delegation.py).
    roles: tuple[str, ...] = ()
    source_identities: tuple[str, ...] = DEFAULT_SOURCE_IDENTITIES
    session_tags: Mapping[str, str] = field(default_factory=lambda: DEFAULT_SESSION_TAGS)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeveritySettings:
    out_of_scope_tier_0: Severity = Severity.CRITICAL
    out_of_scope_tier_1: Severity = Severity.CRITICAL
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
    learn_below: Severity = Severity.MEDIUM
    novel_action: Severity = Severity.LOW
    anomalous_session: Severity = Severity.MEDIUM
    baseline_with_scope: Severity = Severity.CRITICAL
    baseline_with_sequence: Severity = Severity.CRITICAL
    baseline_unscoped_agent: Severity = Severity.CRITICAL
    habitual_step_down: bool = False
    sequence_recreate: Severity = Severity.LOW
    agent_sequence_recreate: Severity = Severity.CRITICAL
    sequence_privilege_use: Severity = Severity.MEDIUM
    agent_sequence_privilege_use: Severity = Severity.HIGH
    sequence_recon_write: Severity = Severity.LOW
    agent_sequence_recon_write: Severity = Severity.HIGH
    sequence_logging_off_write: Severity = Severity.MEDIUM
    agent_sequence_logging_off_write: Severity = Severity.CRITICAL
    agent_sequence_destroy: Severity = Severity.CRITICAL
    sequence_window_seconds: Annotated[int, POSITIVE] = 3600
    sequence_lateness_seconds: int = 900
    recon_distinct_reads: Annotated[int, AT_LEAST_ONE] = 10
    recon_denied_calls: Annotated[int, AT_LEAST_ONE] = 5
    recon_window_seconds: Annotated[int, POSITIVE] = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseSettings:
    # Off by default in every new environment: decisions are recorded with dry_run=true.
    enabled: bool = False
    # Responders carrying out the responses (see detector/responders/): each mapping has a
    # `type` naming a registered responder, an optional `name`, and the responder's settings.
    responders: tuple[Mapping[str, Any], ...] = ()
    # "required": every revocation waits for a second person (see `approvals:`); "none": only
    # scopes with `on_violation: approve` wait.
    approval: str = "none"


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
    # Where people reach this service (behind its ingress): alerts link to
    # `<public_url>/sessions/<session_id>`. None: alerts carry no link.
    public_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    level: str = "info"
    format: Literal["json", "text"] = "json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSettings:
    # Bounded queue between sources and the pipeline: slow sinks slow the sources down.
    queue_batches: int = 16
    # Events run through the pipeline between two turns of the event loop: a large batch (one
    # 200k-event file) is worked through in pieces so /healthz and /metrics keep answering.
    chunk_events: int = 20
    # Move what survives each batch out of the garbage collector's view, so its full passes
    # walk only new objects instead of every live session (see detector/heap.py).
    gc_freeze: bool = True
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
    # The approval API and session pages (detector/web) and the two-person rule
    # (detector/approvals); validated there with parse_section.
    api: Mapping[str, Any] = field(default_factory=dict)
    approvals: Mapping[str, Any] = field(default_factory=dict)
    # `trailguard task ...`: where STS is and the default role and duration of agent tasks;
    # validated in detector/tasks/settings.py with parse_section.
    tasks: Mapping[str, Any] = field(default_factory=dict)
    # Learned baselines: the artifact, how its models see events and their hyper-parameters;
    # validated in detector/baseline/settings.py, each model reading its own keys.
    baseline: Mapping[str, Any] = field(default_factory=dict)
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


@dataclass(frozen=True, slots=True)
class Check:
    """What a setting must be beyond its type, attached with `typing.Annotated`:
    `max_messages: Annotated[int, Check(low=1, high=10)] = 10`.

    low, high  inclusive bounds of a number
    positive   a number above zero (for durations where zero would spin)
    non_empty  a string of more than spaces, or a list with at least one item
    unique     no list item twice
    url        an http(s) URL
    """

    low: float | None = None
    high: float | None = None
    positive: bool = False
    non_empty: bool = False
    unique: bool = False
    url: bool = False


NON_EMPTY = Check(non_empty=True)
POSITIVE = Check(positive=True)
AT_LEAST_ONE = Check(low=1)
URL = Check(non_empty=True, url=True)
DISTINCT = Check(non_empty=True, unique=True)


@dataclass(frozen=True, slots=True)
class Where:
    """Where an adapter's settings sit: the configuration file and the key as the user
    writes it (`sources[0]`). Adapters built without one (in tests) name `sources.<name>`."""

    source: str = "<settings>"
    key: str = ""


# Keys of a `sources` or `sinks` entry that belong to the runtime (which adapter, which name).
ENTRY_KEYS = frozenset({"type", "name"})


def parse_adapter(
    cls: type[T], name: str, settings: Any, where: Where | None, *, section: str
) -> T:
    """An adapter's own settings from its `sources` or `sinks` entry, via parse_section."""
    where = where or Where(key=f"{section}.{name}")
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{where.source}: '{where.key}' must be a mapping")
    own = {k: v for k, v in settings.items() if k not in ENTRY_KEYS}
    return parse_section(cls, own, source=where.source, key=where.key)


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
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {where} must be a mapping")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = [f for f in dataclasses.fields(cls) if f.name != "source" and f.init]
    names = [f.name for f in fields]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        raise ConfigError(f"{source}: unknown key '{prefix}{key}'{hint}")
    values = {}
    for f in fields:
        # A key given as null counts as not given: the default applies.
        if data.get(f.name) is not None:
            values[f.name] = _coerce(hints[f.name], data[f.name], source, f"{prefix}{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: '{prefix}{f.name}' is required")
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str, check: Check | None = None) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(hint)
        found = next((e for e in extras if isinstance(e, Check)), None)
        return _coerce(base, value, source, key, found)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(options[0], value, source, key, check)
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise ConfigError(f"{source}: '{key}' must be one of {listed}, got {value!r}")
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, source, f"{key}.")
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}")
        if check is not None and check.non_empty and not value:
            raise ConfigError(f"{source}: '{key}' must be a non-empty list")
        items = tuple(
            _coerce(item_type, v, source, f"{key}[{i}]", NON_EMPTY if check else None)
            for i, v in enumerate(value)
        )
        if check is not None and check.unique and len(set(items)) != len(items):
            twice = next(item for i, item in enumerate(items) if item in items[:i])
            raise ConfigError(f"{source}: '{key}' lists {twice!r} twice")
        return items
    if check is not None and hint in (int, float):
        return _number(hint, value, source, key, check)
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
        if check is not None and check.non_empty and not (isinstance(value, str) and value.strip()):
            raise ConfigError(f"{source}: '{key}' must be a non-empty string, got {value!r}")
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a string, got {value!r}")
        if check is not None and check.url and not value.startswith(("https://", "http://")):
            raise ConfigError(f"{source}: '{key}' must be an http(s) URL, got {value!r}")
        return value
    if origin is Mapping or hint is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a mapping")
        return types.MappingProxyType(dict(value))
    raise ConfigError(f"{source}: '{key}' has an unsupported type")  # pragma: no cover


def _number(hint: type[Any], value: Any, source: str, key: str, check: Check) -> Any:
    """An int or float within the bounds of `check`, with one wording for every setting."""
    kind = "an integer" if hint is int else "a number"
    low = 0 if check.low is None and not check.positive else check.low
    if check.positive:
        wanted = f"{kind} above 0"
    elif check.high is not None:
        wanted = f"{kind} from {low:g} to {check.high:g}"
    else:
        wanted = f"{kind} of at least {low:g}"
    accepted = int if hint is int else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, accepted)
        or not math.isfinite(value)
        or (check.positive and value <= 0)
        or (low is not None and value < low)
        or (check.high is not None and value > check.high)
    ):
        raise ConfigError(f"{source}: '{key}' must be {wanted}, got {value!r}")
    return hint(value)


def _resolve_paths(settings: Settings, base: Path) -> dict[str, Any]:
    """Relative paths in a config file are relative to that file, not to the cwd."""

    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    return {
        "scopes": resolve(settings.scopes) if settings.scopes else None,
        "catalog": CatalogSettings(overrides=tuple(resolve(p) for p in settings.catalog.overrides)),
        "state": dataclasses.replace(settings.state, path=resolve(settings.state.path)),
        "baseline": _resolve_baseline(settings.baseline, resolve),
    }


def _resolve_baseline(
    section: Mapping[str, Any], resolve: Callable[[Path], Path]
) -> Mapping[str, Any]:
    """The artifact directory too is relative to the file; the rest is validated later."""
    path = section.get("path")
    if not isinstance(path, str) or not path:
        return section
    return types.MappingProxyType({**section, "path": str(resolve(Path(path)))})
