"""Validation of a decoded scope document into plain, checked values.

Nothing here compiles a pattern or knows about sessions: `detector.core.scope` turns each
`ScopeSpec` into a `Scope`. Every error is a ConfigError naming the file, the scope (by
name, or by index when the name is unusable) and the field path, and the first problem
found is the one reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, TypeAlias

from detector.errors import ConfigError

TOP_KEYS = ("scopes",)
SCOPE_KEYS = ("name", "description", "match", "allow", "deny", "expires", "on_violation")
MATCH_KEYS = (
    "source_identity",
    "role_arn",
    "session_name",
    "principal_arn",
    "agent",
    "account",
    "tags",
)
ALLOW_KEYS = ("actions", "resources", "regions", "accounts")
DENY_KEYS = ("actions", "resources")
ON_VIOLATION = ("alert", "revoke", "approve")

# "*" alone, or service:Action where either side may hold * and ? wildcards.
ACTION_PATTERN = re.compile(r"\*|[a-z0-9*?-]+:[a-z0-9*?]+", re.IGNORECASE)
# Region globs: lowercase letters, digits, dashes and wildcards. A pattern without any
# wildcard must be a whole region name such as us-east-1 or us-gov-west-1.
REGION_CHARS = re.compile(r"[a-z0-9*?-]+")
REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
ZONE_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+[a-z]")
ACCOUNT_GLOB = re.compile(r"[0-9*?]+")
ACCOUNT_ID = re.compile(r"\d{12}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeSpec:
    """One scope as written in the file, checked but not compiled.

    match    (field, glob) pairs in file order, field being a MATCH_KEYS name other than tags
    tags     (tag key, glob) pairs
    allow_*  None when the key is absent (no restriction), else a non-empty tuple of globs
    """

    index: int
    name: str
    description: str | None
    match: tuple[tuple[str, str], ...]
    tags: tuple[tuple[str, str], ...]
    allow_actions: tuple[str, ...]
    allow_resources: tuple[str, ...] | None
    allow_regions: tuple[str, ...] | None
    allow_accounts: tuple[str, ...] | None
    deny_actions: tuple[str, ...]
    deny_resources: tuple[str, ...]
    expires: datetime | None
    on_violation: str


class _Where:
    """Builds error messages that point at one place in the file."""

    __slots__ = ("scope", "source")

    def __init__(self, source: str, scope: str = "") -> None:
        self.source = source
        self.scope = scope

    def error(self, path: str, message: str) -> ConfigError:
        parts = [self.source]
        if self.scope:
            parts.append(self.scope)
        if path:
            parts.append(path)
        return ConfigError(": ".join(parts) + ": " + message)


# Checks one list item and returns it as a string, or raises a ConfigError at its path.
Checker: TypeAlias = Callable[[Any, _Where, str], str]


def read_document(document: Any, *, source: str) -> tuple[ScopeSpec, ...]:
    """Check a decoded scope document and return its scopes in file order."""
    scopes = _scope_list(document, source)
    seen: dict[str, int] = {}
    specs = []
    for index, raw in enumerate(scopes):
        spec = _read_scope(raw, index, source)
        if spec.name in seen:
            raise _Where(source, f"scopes[{index}]").error(
                "name", f"duplicate name {spec.name!r} (already used by scopes[{seen[spec.name]}])"
            )
        seen[spec.name] = index
        specs.append(spec)
    return tuple(specs)


def _scope_list(document: Any, source: str) -> list[Any]:
    """The document's `scopes` list, after checking the top level around it."""
    where = _Where(source)
    if document is None:
        raise where.error("", "the file is empty (expected a mapping with a 'scopes' list)")
    if not isinstance(document, Mapping):
        raise where.error(
            "",
            f"expected a mapping with a 'scopes' list at the top level, got {describe(document)}",
        )
    _check_keys(document, TOP_KEYS, where, "")
    if "scopes" not in document:
        raise where.error("", "missing 'scopes' (a list of scopes; it may be empty)")
    scopes = document["scopes"]
    if scopes is None:
        return []
    if not isinstance(scopes, list):
        raise where.error("scopes", f"expected a list of scopes, got {describe(scopes)}")
    return scopes


def _read_scope(raw: Any, index: int, source: str) -> ScopeSpec:
    where = _Where(source, f"scopes[{index}]")
    if not isinstance(raw, Mapping):
        raise where.error("", f"expected a mapping, got {describe(raw)}")
    if "name" not in raw:
        raise where.error("name", "missing (every scope needs a name)")
    name = raw["name"]
    if not isinstance(name, str):
        raise where.error("name", f"expected a string, got {describe(name)}")
    if not name.strip():
        raise where.error("name", "is empty")
    if name != name.strip():
        raise where.error("name", f"{name!r} has leading or trailing whitespace")
    where = _Where(source, f"scope {name!r}")
    _check_keys(raw, SCOPE_KEYS, where, "")

    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise where.error("description", f"expected a string, got {describe(description)}")

    if "match" not in raw:
        raise where.error("match", "missing (a scope must say which sessions it binds to)")
    match, tags = _read_match(raw["match"], where)

    if "allow" not in raw:
        raise where.error(
            "allow", "missing (list the actions the task may take; actions: ['*'] allows all)"
        )
    allow = _mapping(raw["allow"], where, "allow")
    _check_keys(allow, ALLOW_KEYS, where, "allow")
    if "actions" not in allow:
        raise where.error("allow.actions", "missing (use ['*'] to allow every action)")
    allow_actions = _globs(allow["actions"], where, "allow.actions", _check_action)
    if not allow_actions:
        raise where.error("allow.actions", "is empty (use ['*'] to allow every action)")
    allow_resources = _optional(allow, "resources", where, "allow", _check_resource)
    allow_regions = _optional(allow, "regions", where, "allow", _check_region)
    allow_accounts = _optional(allow, "accounts", where, "allow", _check_account)

    deny = _mapping(raw.get("deny", {}), where, "deny")
    _check_keys(deny, DENY_KEYS, where, "deny")
    deny_actions = _globs(deny.get("actions", []), where, "deny.actions", _check_action)
    deny_resources = _globs(deny.get("resources", []), where, "deny.resources", _check_resource)

    on_violation = raw.get("on_violation", "alert")
    if on_violation not in ON_VIOLATION:
        raise where.error(
            "on_violation", f"{on_violation!r} is not one of {', '.join(ON_VIOLATION)}"
        )

    return ScopeSpec(
        index=index,
        name=name,
        description=description,
        match=match,
        tags=tags,
        allow_actions=allow_actions,
        allow_resources=allow_resources,
        allow_regions=allow_regions,
        allow_accounts=allow_accounts,
        deny_actions=deny_actions,
        deny_resources=deny_resources,
        expires=_read_expires(raw.get("expires"), where),
        on_violation=on_violation,
    )


def _read_match(
    raw: Any, where: _Where
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    match = _mapping(raw, where, "match")
    _check_keys(match, MATCH_KEYS, where, "match")
    if not match:
        raise where.error(
            "match", "is empty (a scope without match fields would bind every session)"
        )
    fields: list[tuple[str, str]] = []
    tags: list[tuple[str, str]] = []
    for key, value in match.items():
        path = f"match.{key}"
        if key == "tags":
            mapping = _mapping(value, where, path)
            if not mapping:
                raise where.error(path, "is empty (give at least one tag key)")
            for tag, pattern in mapping.items():
                if not isinstance(tag, str) or not tag:
                    raise where.error(path, f"tag key {tag!r} is not a non-empty string")
                tags.append((tag, _pattern(pattern, where, f"{path}.{tag}")))
        elif key == "account":
            fields.append((key, _check_account(value, where, path)))
        else:
            fields.append((key, _pattern(value, where, path)))
    return tuple(fields), tuple(tags)


def _read_expires(value: Any, where: _Where) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        # A bare date means the start of that day in UTC.
        moment = datetime.combine(value, time(0, 0))
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise where.error(
                "expires", f"{value!r} is not an ISO 8601 time (e.g. 2026-12-01T00:00:00Z)"
            ) from None
    else:
        raise where.error("expires", f"expected a timestamp, got {describe(value)}")
    # Naive times are taken as UTC, as CloudTrail times are.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _check_keys(
    mapping: Mapping[Any, Any], valid: tuple[str, ...], where: _Where, path: str
) -> None:
    for key in mapping:
        if key in valid:
            continue
        import difflib  # only for the message: the gate reads valid scopes on every start-up

        close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(valid)}"
        raise where.error(path, f"unknown key {key!r} ({hint})")


def _mapping(value: Any, where: _Where, path: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise where.error(path, f"expected a mapping, got {describe(value)}")
    return value


def _pattern(value: Any, where: _Where, path: str) -> str:
    if not isinstance(value, str):
        raise where.error(path, f"expected a string, got {describe(value)}")
    if not value:
        raise where.error(path, "is an empty string")
    return value


def _globs(value: Any, where: _Where, path: str, check: Checker) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise where.error(path, f"expected a list of strings, got {describe(value)}")
    return tuple(check(item, where, f"{path}[{position}]") for position, item in enumerate(value))


def _optional(
    allow: Mapping[Any, Any], key: str, where: _Where, path: str, check: Checker
) -> tuple[str, ...] | None:
    if key not in allow:
        return None
    full = f"{path}.{key}"
    globs = _globs(allow[key], where, full, check)
    if not globs:
        # An empty list would forbid everything; omitting the key is how to allow everything.
        raise where.error(full, "is empty (omit the key to allow any)")
    return globs


def _check_action(raw: Any, where: _Where, path: str) -> str:
    value = _pattern(raw, where, path)
    if ACTION_PATTERN.fullmatch(value) is None:
        raise where.error(
            path, f"{value!r} is not an IAM action pattern (expected service:Action or *)"
        )
    return value


def _check_resource(raw: Any, where: _Where, path: str) -> str:
    value = _pattern(raw, where, path)
    if value != "*" and (not value.startswith("arn:") or any(c.isspace() for c in value)):
        raise where.error(
            path, f"{value!r} is not an ARN pattern (expected arn:partition:service:... or *)"
        )
    return value


def _check_region(raw: Any, where: _Where, path: str) -> str:
    value = _pattern(raw, where, path)
    if ZONE_NAME.fullmatch(value):
        raise where.error(path, f"{value!r} is an availability zone, not a region")
    wild = "*" in value or "?" in value
    if REGION_CHARS.fullmatch(value) is None or (not wild and REGION_NAME.fullmatch(value) is None):
        hint = " (regions are lowercase)" if value.lower() != value else ""
        raise where.error(
            path, f"{value!r} is not a region pattern (expected e.g. us-east-1 or eu-*){hint}"
        )
    return value


def _check_account(raw: Any, where: _Where, path: str) -> str:
    value = _pattern(_account_text(raw, where, path), where, path)
    wild = "*" in value or "?" in value
    if ACCOUNT_GLOB.fullmatch(value) is None or (not wild and ACCOUNT_ID.fullmatch(value) is None):
        raise where.error(path, f"{value!r} is not an account id (12 digits) or a glob of one")
    return value


def _account_text(value: Any, where: _Where, path: str) -> Any:
    """Accept an unquoted 12-digit YAML number; shorter ones have lost a leading zero."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        if ACCOUNT_ID.fullmatch(text) is None:
            raise where.error(
                path, f"{value} is a number, not a 12-digit account id (quote account ids)"
            )
        return text
    return value


def describe(value: Any) -> str:
    """A type name for error messages, in the file's terms rather than Python's."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime | date):
        return f"a timestamp ({value.isoformat()})"
    return type(value).__name__


def check_document(document: Any, *, source: str) -> tuple[tuple[ScopeSpec, ...], tuple[str, ...]]:
    """Like read_document, but every scope is checked: the valid scopes, and one error per
    invalid scope (or the one error of a document that holds no list of scopes)."""
    try:
        scopes = _scope_list(document, source)
    except ConfigError as exc:
        return (), (str(exc),)
    specs: list[ScopeSpec] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(scopes):
        try:
            spec = _read_scope(raw, index, source)
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        if spec.name in seen:
            already = f"already used by scopes[{seen[spec.name]}]"
            where = _Where(source, f"scopes[{index}]")
            errors.append(str(where.error("name", f"duplicate name {spec.name!r} ({already})")))
            continue
        seen[spec.name] = index
        specs.append(spec)
    return tuple(specs), tuple(errors)


def scope_warnings(specs: Sequence[ScopeSpec], *, now: datetime) -> tuple[str, ...]:
    """What is valid but cannot be meant: a scope already expired at `now`, and a scope
    that never binds because an earlier one has the same match (binding takes the first)."""
    found: list[str] = []
    first: dict[tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]], ScopeSpec] = {}
    for spec in specs:
        if spec.expires is not None and spec.expires <= now:
            found.append(
                f"scope {spec.name!r}: expired at {spec.expires.isoformat()}; "
                "every event it binds is out of scope"
            )
        match = (frozenset(spec.match), frozenset(spec.tags))
        earlier = first.get(match)
        if earlier is None:
            first[match] = spec
        else:
            found.append(
                f"scope {spec.name!r}: never binds a session: scope {earlier.name!r} "
                f"(scopes[{earlier.index}]) has the same match and comes first"
            )
    return tuple(found)
