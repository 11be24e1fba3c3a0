"""What a session looks like so far, as a fixed row of numbers.

A session is summarised as it evolves: how many calls, how varied (services, actions,
resources, regions), what share of them write, destroy, change permissions or touch
credentials and logging, how many failed, how many the action model found novel, and how
fast and for how long it has been calling. The session model scores these rows; the
evidence it gives names the features that stand out.

Pure: everything comes from the event context and the findings already raised for it. Event
time, not the clock, measures duration and rate, so replay and the service agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detector.core.findings import Finding
from detector.core.policy import EventContext, worst
from detector.core.taxonomy import Category

FEATURE_NAMES: tuple[str, ...] = (
    "event_count",
    "distinct_services",
    "distinct_actions",
    "write_ratio",
    "destroy_ratio",
    "permissions_ratio",
    "sensitive_ratio",
    "error_ratio",
    "novel_action_count",
    "resource_spread",
    "call_rate",
    "duration",
    "region_count",
)
"""The row's columns, in order. Changing them changes the saved model's meaning."""

# Counted features the model sees on a log scale, so that 3 against 30 services weighs like
# 30 against 300 events; ratios stay as they are.
LOG_SCALED = frozenset(
    {
        "event_count",
        "distinct_services",
        "distinct_actions",
        "novel_action_count",
        "resource_spread",
        "call_rate",
        "duration",
        "region_count",
    }
)

# How many distinct values of each kind a session remembers. Past it the count stops rising:
# a session with 256 distinct resources is already far outside what a task needs, and the
# state kept per session stays bounded.
MAX_DISTINCT = 256

# Categories beyond write and destroy that say a session reaches for access or for blindness.
SENSITIVE = frozenset(
    {
        Category.CREDENTIAL_ACCESS,
        Category.DEFENSE_EVASION,
        Category.DATA_EXPOSURE,
        Category.PERSISTENCE,
    }
)

# Rates are per minute of event time; a session shorter than a minute counts as one minute,
# so a session's first few calls do not look like a flood.
MIN_RATE_SECONDS = 60.0


@dataclass(slots=True)
class SessionFeatures:
    """Running counts for one session; `row()` gives FEATURE_NAMES' values now."""

    events: int = 0
    writes: int = 0
    destroys: int = 0
    permissions: int = 0
    sensitive: int = 0
    errors: int = 0
    novel: int = 0
    first: float | None = None  # event time, seconds since the epoch
    last: float | None = None
    services: set[str] = field(default_factory=set)
    actions: set[str] = field(default_factory=set)
    resources: set[str] = field(default_factory=set)
    regions: set[str] = field(default_factory=set)

    def update(self, ctx: EventContext, findings: Sequence[Finding] = ()) -> None:
        """Count one event. `findings` are those raised for it so far (novel-action counts)."""
        event = ctx.event
        self.events += 1
        at = event.event_time.timestamp()
        self.first = at if self.first is None else min(self.first, at)
        self.last = at if self.last is None else max(self.last, at)
        _add(self.services, event.event_source)
        for action in ctx.actions:
            _add(self.actions, action.lower())
        for resource in ctx.resources:
            _add(self.resources, resource)
        if event.aws_region:
            _add(self.regions, event.aws_region)
        if event.error_code is not None:
            self.errors += 1
        riskiest = worst(ctx.classifications)
        if riskiest is not None:
            category = riskiest.category
            self.writes += category.mutating
            self.destroys += category is Category.DESTROY
            self.permissions += category is Category.PERMISSIONS
            self.sensitive += category in SENSITIVE
        self.novel += sum(1 for f in findings if f.kind == "novel-action")

    def row(self) -> tuple[float, ...]:
        """The session as FEATURE_NAMES' values, unscaled (what evidence quotes)."""
        n = max(self.events, 1)
        duration = (self.last or 0.0) - (self.first or 0.0)
        rate = self.events / (max(duration, MIN_RATE_SECONDS) / 60.0)
        return (
            float(self.events),
            float(len(self.services)),
            float(len(self.actions)),
            self.writes / n,
            self.destroys / n,
            self.permissions / n,
            self.sensitive / n,
            self.errors / n,
            float(self.novel),
            float(len(self.resources)),
            rate,
            duration,
            float(len(self.regions)),
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "counts": [
                self.events,
                self.writes,
                self.destroys,
                self.permissions,
                self.sensitive,
                self.errors,
                self.novel,
            ],
            "first": self.first,
            "last": self.last,
            "services": sorted(self.services),
            "actions": sorted(self.actions),
            "resources": sorted(self.resources),
            "regions": sorted(self.regions),
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> SessionFeatures:
        events, writes, destroys, permissions, sensitive, errors, novel = data["counts"]
        return cls(
            events=int(events),
            writes=int(writes),
            destroys=int(destroys),
            permissions=int(permissions),
            sensitive=int(sensitive),
            errors=int(errors),
            novel=int(novel),
            first=data["first"],
            last=data["last"],
            services=set(data["services"]),
            actions=set(data["actions"]),
            resources=set(data["resources"]),
            regions=set(data["regions"]),
        )


def scaled(row: Sequence[float]) -> list[float]:
    """The row as the model sees it: counts on a log scale (log1p), ratios unchanged."""
    return [
        math.log1p(value) if name in LOG_SCALED else value
        for name, value in zip(FEATURE_NAMES, row, strict=True)
    ]


def is_milestone(count: int, every: int) -> bool:
    """Whether a session's `count`-th event is one at which its row is scored.

    Powers of two up to `every`, then every `every` events: a new session is looked at on
    its 1st, 2nd, 4th, ... call, a long one at a steady pace. It depends only on the count,
    so replay and the service score the same rows whenever they drain.
    """
    if count <= 0:
        return False
    if count < every:
        return count & (count - 1) == 0
    return count % every == 0


def _add(values: set[str], value: str) -> None:
    if len(values) < MAX_DISTINCT:
        values.add(value)
