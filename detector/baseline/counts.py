"""Decayed counts per (group, feature, value): what the action model learns and updates.

Every count is an exponentially decayed weight in event time: a call `half_life` seconds
ago weighs half as much as one now. Decay is applied lazily: each entry keeps its weight at
the time it was last changed and is decayed when read, which is exact because decay is the
same factor for every entry. Each entry also keeps its raw count (never decayed), which is
what evidence text quotes ("called it twice").

`LayeredCounts` reads a fitted table (never changed once loaded, shared by every shard) and
adds online updates to a small table of its own, which is all a snapshot needs to hold.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Entries: [weight at t, t (epoch seconds), raw count]. Totals add the number of distinct
# values seen and the decayed weight of the calls that used a value for the first time:
# the novelty rate the back-off uses, on the same decayed scale as the counts.
W, T, RAW, DISTINCT, NOVEL = 0, 1, 2, 3, 4
# Far beyond any real span of history; keeps 0.5**x within floating point.
MAX_HALVINGS = 900.0


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """How much history a group has: calls (raw), first and last event time."""

    calls: int
    first: float
    last: float


def decayed(weight: float, since: float, at: float, half_life: float) -> float:
    """`weight` set at `since`, as of `at`. Reading before `since` (a late event, or history
    replayed against a baseline fitted later) scales it up by the same law, so every count
    read at one time is on one scale."""
    exponent = min(MAX_HALVINGS, max(-MAX_HALVINGS, (at - since) / half_life))
    return float(weight * 0.5**exponent)


class CountTable:
    """Counts with decay, keyed by group name, feature index and value string."""

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self.values: dict[tuple[str, int, str], list[float]] = {}
        self.totals: dict[tuple[str, int], list[float]] = {}
        self.groups: dict[str, list[float]] = {}

    # --- reading --------------------------------------------------------------------------

    def value(self, group: str, feature: int, value: str, at: float) -> tuple[float, int]:
        """(decayed weight, raw count) of `value` in `group`."""
        entry = self.values.get((group, feature, value))
        if entry is None:
            return 0.0, 0
        return decayed(entry[W], entry[T], at, self.half_life), int(entry[RAW])

    def total(self, group: str, feature: int, at: float) -> tuple[float, int, float]:
        """(decayed weight of all values, number of distinct values, decayed weight of first
        uses) of `feature` in `group`."""
        entry = self.totals.get((group, feature))
        if entry is None:
            return 0.0, 0, 0.0
        factor = decayed(1.0, entry[T], at, self.half_life)
        return entry[W] * factor, int(entry[DISTINCT]), entry[NOVEL] * factor

    def group(self, group: str) -> GroupInfo | None:
        entry = self.groups.get(group)
        if entry is None:
            return None
        return GroupInfo(calls=int(entry[0]), first=entry[1], last=entry[2])

    def has(self, group: str, feature: int, value: str) -> bool:
        return (group, feature, value) in self.values

    # --- changing -------------------------------------------------------------------------

    def add(self, group: str, feature: int, value: str, at: float, weight: float = 1.0) -> bool:
        """Count one use of `value`; True when the value is new to this table and group."""
        key = (group, feature, value)
        entry = self.values.get(key)
        new = entry is None
        if entry is None:
            self.values[key] = [weight, at, 1.0]
        else:
            self._bump(entry, at, weight)
        self.add_total(group, feature, at, weight, new_value=new)
        return new

    def add_total(
        self, group: str, feature: int, at: float, weight: float, *, new_value: bool
    ) -> None:
        novel = weight if new_value else 0.0
        entry = self.totals.get((group, feature))
        if entry is None:
            self.totals[(group, feature)] = [weight, at, 1.0, float(new_value), novel]
            return
        if at > entry[T]:
            entry[NOVEL] = decayed(entry[NOVEL], entry[T], at, self.half_life) + novel
        else:
            entry[NOVEL] += decayed(novel, at, entry[T], self.half_life)
        self._bump(entry, at, weight)
        entry[DISTINCT] += new_value

    def add_call(self, group: str, at: float) -> None:
        entry = self.groups.get(group)
        if entry is None:
            self.groups[group] = [1.0, at, at]
            return
        entry[0] += 1
        entry[1] = min(entry[1], at)
        entry[2] = max(entry[2], at)

    def _bump(self, entry: list[float], at: float, weight: float) -> None:
        if at > entry[T]:
            entry[W] = decayed(entry[W], entry[T], at, self.half_life) + weight
            entry[T] = at
        else:
            # A late event: credit it as of its own time, relative to the entry's.
            entry[W] += decayed(weight, at, entry[T], self.half_life)
        entry[RAW] += 1

    # --- plain data -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able lists (for a shard snapshot); `from_json` restores them exactly."""
        return {
            "values": [[g, f, v, *e] for (g, f, v), e in self.values.items()],
            "totals": [[g, f, *e] for (g, f), e in self.totals.items()],
            "groups": [[g, *e] for g, e in self.groups.items()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], half_life: float) -> CountTable:
        table = cls(half_life)
        for g, f, v, *e in data["values"]:
            table.values[(str(g), int(f), str(v))] = [float(x) for x in e]
        for g, f, *e in data["totals"]:
            table.totals[(str(g), int(f))] = [float(x) for x in e]
        for g, *e in data["groups"]:
            table.groups[str(g)] = [float(x) for x in e]
        return table

    def __len__(self) -> int:
        return len(self.values)


class LayeredCounts:
    """A fitted table read as is, plus online updates kept apart (`top`)."""

    def __init__(self, base: CountTable, top: CountTable) -> None:
        self.base = base
        self.top = top

    def value(self, group: str, feature: int, value: str, at: float) -> tuple[float, int]:
        w1, r1 = self.base.value(group, feature, value, at)
        w2, r2 = self.top.value(group, feature, value, at)
        return w1 + w2, r1 + r2

    def total(self, group: str, feature: int, at: float) -> tuple[float, int, float]:
        w1, d1, n1 = self.base.total(group, feature, at)
        w2, d2, n2 = self.top.total(group, feature, at)
        return w1 + w2, d1 + d2, n1 + n2

    def group(self, group: str) -> GroupInfo | None:
        one, two = self.base.group(group), self.top.group(group)
        if one is None or two is None:
            return one or two
        return GroupInfo(
            calls=one.calls + two.calls,
            first=min(one.first, two.first),
            last=max(one.last, two.last),
        )

    def add(self, group: str, feature: int, value: str, at: float) -> None:
        key = (group, feature, value)
        entry = self.top.values.get(key)
        if entry is None:
            self.top.values[key] = [1.0, at, 1.0]
        else:
            self.top._bump(entry, at, 1.0)
        # Distinct values are counted across both layers: a value the fitted table knows is
        # not new, whichever layer it is first counted in here.
        new = entry is None and not self.base.has(group, feature, value)
        self.top.add_total(group, feature, at, 1.0, new_value=new)

    def add_call(self, group: str, at: float) -> None:
        self.top.add_call(group, at)


def iter_groups(table: CountTable) -> Iterator[tuple[str, GroupInfo]]:
    for name in table.groups:
        info = table.group(name)
        if info is not None:
            yield name, info
