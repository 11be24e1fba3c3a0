"""The IAM-action risk catalogue: what each action does (category) and how bad it can be (tier).

An action's entry is decided in layers, later layers winning:
  1. its access level in the service authorisation reference ("access-level:<level>");
  2. verb rules for destructive verbs, and for actions the reference does not know ("verb:<Verb>");
  3. taxonomy and override patterns ("taxonomy:<file>:<pattern>", "override:<file>:<pattern>"),
     where an exact action beats a glob and, between equals, the later rule wins.
`classify` then lets parameter rules raise the risk of one event above its action's entry.

Tiers: 0 irreversible or wide blast radius, 1 dangerous, 2 ordinary mutation, 3 read or list.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from detector.core.actions import action_verb
from detector.core.events import CloudTrailEvent
from detector.core.param_rules import Hit, ParamRule, ParamRuleRegistry
from detector.core.taxonomy import Category

TIERS = range(4)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionInfo:
    """One IAM action as the service authorisation reference publishes it."""

    name: str  # canonical casing, without the service prefix
    access_level: str  # as published: "Write", "Tagging, Write", "Permissions management, Write"
    description: str | None = None
    resource_types: tuple[str, ...] = ()


AccessLevels = Callable[[str], Mapping[str, ActionInfo]]
"""Service prefix → {lower-case action name: ActionInfo}; {} for an unknown service."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaxonomyRule:
    """One pattern of a taxonomy or override file; a partial rule sets only category or tier."""

    pattern: str  # "service:Action"; * ? [] globs allowed in either part
    origin: str  # "taxonomy:<file>" or "override:<file>"
    category: Category | None = None
    tier: int | None = None
    # A service-level rule ("every Write action of guardduty") names the primary access levels
    # it applies to; () means any. `excluded` lists lower-case actions the rule leaves alone.
    access_levels: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()

    @property
    def exact(self) -> bool:
        return not any(ch in self.pattern for ch in "*?[")

    @property
    def source(self) -> str:
        if self.access_levels:
            return f"{self.origin}:{self.pattern}[{', '.join(sorted(self.access_levels))}]"
        return f"{self.origin}:{self.pattern}"

    def applies(self, action: str, level: str | None) -> bool:
        """Whether the access-level filter and the exceptions let the rule apply to `action`."""
        if self.access_levels and level not in self.access_levels:
            return False
        return action.lower() not in self.excluded


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogEntry:
    """What the catalogue says about one IAM action, and which rule said it."""

    action: str
    access_level: str | None
    category: Category
    tier: int
    known: bool
    source: str
    description: str | None = None
    resource_types: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "access_level": self.access_level,
            "category": self.category.value,
            "tier": self.tier,
            "known": self.known,
            "source": self.source,
            "description": self.description,
            "resource_types": list(self.resource_types),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    """The risk of one action as used by one event: the entry, raised by parameter rules."""

    action: str
    category: Category
    tier: int
    reasons: tuple[str, ...]  # from parameter rules that fired; () when the entry alone decided
    entry: CatalogEntry


# Access level → (category, tier) before any rule applies.
ACCESS_LEVEL_BASE: Mapping[str, tuple[Category, int]] = {
    "Read": (Category.READ, 3),
    "List": (Category.LIST, 3),
    "Write": (Category.WRITE, 2),
    "Tagging": (Category.WRITE, 2),
    "Permissions management": (Category.PERMISSIONS, 1),
}

# The tier a rule gets when it names a category but no tier.
DEFAULT_TIER: Mapping[Category, int] = {
    Category.READ: 3,
    Category.LIST: 3,
    Category.WRITE: 2,
    Category.PERSISTENCE: 2,
    Category.DESTROY: 1,
    Category.PERMISSIONS: 1,
    Category.DEFENSE_EVASION: 1,
    Category.DATA_EXPOSURE: 1,
    Category.CREDENTIAL_ACCESS: 1,
}

# Verbs that remove something. They override Write and Permissions management (deleting a
# policy destroys it) but not Tagging: removing a tag is an ordinary write.
DESTROY_VERBS = frozenset(
    {"Delete", "Terminate", "Purge", "Destroy", "Deregister", "Drop", "Erase", "Wipe", "Expunge"}
)
# For actions the reference does not know, the verb is all there is to go on.
READ_VERBS = frozenset(
    {"Get", "Describe", "Head", "Lookup", "Search", "Query", "Scan", "Select", "Check",
     "Validate", "Estimate", "Preview", "View", "Read", "Retrieve", "Download", "Verify"}
)  # fmt: skip
LIST_VERBS = frozenset({"List"})
_TAG_ACTION = re.compile(r"^(?:Untag|Tag|(?:Delete|Remove|Add|Create)\w*Tag(?:s|ging)?$)")


def primary_access_level(level: str) -> str:
    """ "Tagging, Write" → "Tagging"; "Permissions management, Write" → "Permissions management"."""
    return level.split(",", 1)[0].strip()


class RiskCatalog:
    """Looks up catalogue entries (cached, case-insensitive) and classifies events.

    Pure: the reference data, rules and parameter rules are passed in by the loader.
    """

    __slots__ = (
        "_access_levels",
        "_entry",
        "_exact",
        "_globs",
        "_param_rules",
        "_plain",
        "version",
    )

    def __init__(
        self,
        *,
        access_levels: AccessLevels,
        rules: Sequence[TaxonomyRule],
        param_rules: ParamRuleRegistry,
        version: str,
    ) -> None:
        self.version = version
        self._access_levels = access_levels
        self._param_rules = param_rules
        exact: dict[str, list[TaxonomyRule]] = {}
        globs: list[tuple[re.Pattern[str], TaxonomyRule]] = []
        for rule in rules:
            if rule.exact:
                exact.setdefault(rule.pattern.lower(), []).append(rule)
            else:
                globs.append((re.compile(fnmatch.translate(rule.pattern), re.IGNORECASE), rule))
        self._exact = {key: tuple(value) for key, value in exact.items()}
        self._globs = tuple(globs)
        self._entry = lru_cache(maxsize=65536)(self._build_entry)
        self._plain: dict[str, Classification] = {}

    @property
    def param_rules(self) -> ParamRuleRegistry:
        return self._param_rules

    def entry(self, action: str) -> CatalogEntry:
        """The entry for "service:Action"; unknown actions get one too (known=False)."""
        return self._entry(action)

    def classify(self, event: CloudTrailEvent, action: str) -> Classification:
        """The entry for `action`, raised (never lowered) by parameter rules that fire."""
        plain = self._plain.get(action)
        if plain is not None:
            return plain
        entry = self._entry(action)
        if not self._param_rules.rules_for(entry.action):
            plain = Classification(
                action=entry.action,
                category=entry.category,
                tier=entry.tier,
                reasons=(),
                entry=entry,
            )
            if len(self._plain) < 65536:
                self._plain[action] = plain
            return plain
        hits = self._param_rules.evaluate(event, entry.action)
        category, tier = entry.category, entry.tier
        if hits:
            rule, hit = min(hits, key=lambda pair: _hit_tier(*pair))
            if _hit_tier(rule, hit) <= entry.tier:
                category, tier = rule.category, _hit_tier(rule, hit)
        return Classification(
            action=entry.action,
            category=category,
            tier=tier,
            reasons=tuple(hit.reason for _, hit in hits),
            entry=entry,
        )

    def _build_entry(self, action: str) -> CatalogEntry:
        service, _, name = action.strip().partition(":")
        service = service.lower()
        info = self._access_levels(service).get(name.lower()) if service and name else None
        canonical = f"{service}:{info.name}" if info else f"{service}:{name}" if name else action
        level = primary_access_level(info.access_level) if info else None
        category, tier, source = _base(canonical, level)
        category_rule = self._deciding(canonical, level, lambda rule: rule.category is not None)
        tier_rule = self._deciding(canonical, level, lambda rule: rule.tier is not None)
        sources = []
        if category_rule is not None and category_rule.category is not None:
            category, tier = category_rule.category, DEFAULT_TIER[category_rule.category]
            sources.append(category_rule.source)
        if tier_rule is not None and tier_rule.tier is not None:
            tier = tier_rule.tier
            if tier_rule is not category_rule:
                sources.append(tier_rule.source)
        if category_rule is None:
            sources.append(source)
        return CatalogEntry(
            action=canonical,
            access_level=level,
            category=category,
            tier=tier,
            known=info is not None,
            source=" + ".join(sources),
            description=info.description if info else None,
            resource_types=info.resource_types if info else (),
        )

    def _deciding(
        self, action: str, level: str | None, sets_field: Callable[[TaxonomyRule], bool]
    ) -> TaxonomyRule | None:
        """The rule that decides a field: the last exact rule setting it, else the last glob."""
        for rule in reversed(self._exact.get(action.lower(), ())):
            if sets_field(rule) and rule.applies(action, level):
                return rule
        for pattern, rule in reversed(self._globs):
            if sets_field(rule) and pattern.match(action) and rule.applies(action, level):
                return rule
        return None


def _base(action: str, level: str | None) -> tuple[Category, int, str]:
    """Category, tier and source from the access level and verb, before any pattern rule."""
    verb = action_verb(action)
    if level in ("Read", "List", "Tagging"):
        category, tier = ACCESS_LEVEL_BASE[level]
        return category, tier, f"access-level:{level}"
    if verb.capitalize() in DESTROY_VERBS and not _TAG_ACTION.match(action.partition(":")[2]):
        return Category.DESTROY, 1, f"verb:{verb}"
    if level is not None:
        category, tier = ACCESS_LEVEL_BASE.get(level, (Category.WRITE, 2))
        return category, tier, f"access-level:{level}"
    if verb in READ_VERBS:
        return Category.READ, 3, f"verb:{verb}"
    if verb in LIST_VERBS:
        return Category.LIST, 3, f"verb:{verb}"
    return Category.WRITE, 2, f"verb:{verb}"


def _hit_tier(rule: ParamRule, hit: Hit) -> int:
    return rule.tier if hit.tier is None else hit.tier
