"""The parameter-rule types: a rule, what it found, the registry, and a per-module rule set."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from detector.core.events import CloudTrailEvent
from detector.core.taxonomy import Category


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """What a rule found. `tier` is set only when this shape is worse than the rule's usual."""

    reason: str
    tier: int | None = None


Check = Callable[[CloudTrailEvent], "Hit | None"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamRule:
    """One parameter-aware rule: the actions it reads and the risk it assigns when it fires."""

    name: str
    actions: frozenset[str]  # lower-case "service:action", matched against the catalogue entry
    category: Category
    tier: int
    summary: str
    check: Check = field(compare=False, repr=False)


class ParamRuleRegistry:
    """Parameter rules keyed by kebab-case name; a duplicate name raises ValueError."""

    __slots__ = ("_by_action", "_rules")

    def __init__(self, rules: Iterable[ParamRule] = ()) -> None:
        self._rules: dict[str, ParamRule] = {}
        self._by_action: dict[str, tuple[ParamRule, ...]] = {}
        for rule in rules:
            self.register(rule)

    def register(self, rule: ParamRule) -> None:
        if rule.name in self._rules:
            raise ValueError(f"parameter rule {rule.name!r} is already registered")
        if not _KEBAB.match(rule.name):
            raise ValueError(f"parameter rule name {rule.name!r} is not kebab-case")
        self._rules[rule.name] = rule
        for action in rule.actions:
            self._by_action[action] = (*self._by_action.get(action, ()), rule)

    def __iter__(self) -> Iterator[ParamRule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def __getitem__(self, name: str) -> ParamRule:
        return self._rules[name]

    def rules_for(self, action: str) -> tuple[ParamRule, ...]:
        return self._by_action.get(action.lower(), ())

    def evaluate(self, event: CloudTrailEvent, action: str) -> tuple[tuple[ParamRule, Hit], ...]:
        """The rules for `action` that fire on `event`, in registration order."""
        hits = []
        for rule in self.rules_for(action):
            hit = rule.check(event)
            if hit is not None:
                hits.append((rule, hit))
        return tuple(hits)


_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class RuleSet:
    """The rules one family module defines, in definition order (which is evaluation order)."""

    __slots__ = ("_rules",)

    def __init__(self) -> None:
        self._rules: list[ParamRule] = []

    def __iter__(self) -> Iterator[ParamRule]:
        return iter(self._rules)

    def rule(
        self, name: str, actions: str, category: Category, tier: int, summary: str
    ) -> Callable[[Check], Check]:
        """Register the decorated check under `name` for the space-separated `actions`."""

        def register(check: Check) -> Check:
            self._rules.append(
                ParamRule(
                    name=name,
                    actions=frozenset(actions.lower().split()),
                    category=category,
                    tier=tier,
                    summary=summary,
                    check=check,
                )
            )
            return check

        return register
