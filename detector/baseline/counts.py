"""Decayed counts per (group, feature, value): what the action model learns and updates.

Counts decay exponentially in event time: a call `half_life` seconds ago weighs half as
much as one now. Rather than decaying every entry as time passes, each call is added with
weight 2**((t - reference) / half_life), for one reference time per model (the end of the
training window). Every weight read at one moment is then off by the same factor, which
cancels in every ratio the back-off uses; `scale(at)` gives that factor where an absolute
amount matters. The order events arrive in does not change the counts at all.

Each (group, feature) is a `Cell`: its total weight, raw call count, number of distinct
values, the weight of the calls that were a value's first use (how often the group meets
new values), and per value [weight, raw count]. Raw counts are never decayed: evidence text
quotes them ("called it twice").

`OverlayCounts` reads a fitted table (never changed once loaded, shared by every shard) and
keeps the cells changed online apart, which is all a snapshot needs to hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Far beyond any real span of history; keeps 2**x within floating point.
MAX_HALVINGS = 900.0


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """How much history a group has: calls (raw), first and last event time."""

    calls: int
    first: float
    last: float


class Cell:
    """The counts of one feature in one group."""

    __slots__ = ("calls", "distinct", "novel", "values", "weight")

    def __init__(self) -> None:
        self.weight = 0.0
        self.calls = 0
        self.distinct = 0
        self.novel = 0.0
        self.values: dict[str, list[float]] = {}  # value -> [weight, raw count]

    def copy(self) -> Cell:
        twin = Cell()
        twin.weight, twin.calls, twin.distinct, twin.novel = (
            self.weight, self.calls, self.distinct, self.novel
        )  # fmt: skip
        twin.values = {value: list(entry) for value, entry in self.values.items()}
        return twin


class CountTable:
    """Cells keyed by (group name, feature index), and call counts per group."""

    def __init__(self, half_life: float, reference: float) -> None:
        self.half_life = half_life
        self.reference = reference
        self.cells: dict[tuple[str, int], Cell] = {}
        self.groups: dict[str, list[float]] = {}  # name -> [calls, first, last]

    def weight(self, at: float) -> float:
        """The weight of one call at `at`."""
        exponent = (at - self.reference) / self.half_life
        return float(2.0 ** min(MAX_HALVINGS, max(-MAX_HALVINGS, exponent)))

    def scale(self, at: float) -> float:
        """Multiply a stored weight by this to read it as of `at` (in calls)."""
        return 1.0 / self.weight(at)

    def add(self, group: str, feature: int, value: str, weight: float) -> None:
        """Count one use of `value` in `group`, `weight` from `weight(at)`."""
        key = (group, feature)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell()
        _count(cell, value, weight)

    def add_call(self, group: str, at: float) -> None:
        entry = self.groups.get(group)
        if entry is None:
            self.groups[group] = [1.0, at, at]
            return
        entry[0] += 1
        entry[1] = min(entry[1], at)
        entry[2] = max(entry[2], at)

    def raw(self, group: str, feature: int, value: str) -> int:
        cell = self.cells.get((group, feature))
        entry = cell.values.get(value) if cell is not None else None
        return int(entry[1]) if entry is not None else 0

    def group(self, group: str) -> GroupInfo | None:
        entry = self.groups.get(group)
        if entry is None:
            return None
        return GroupInfo(calls=int(entry[0]), first=entry[1], last=entry[2])

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able lists (for a shard snapshot); `from_json` restores them exactly."""
        cells = [
            [g, f, c.weight, c.calls, c.distinct, c.novel, [[v, *e] for v, e in c.values.items()]]
            for (g, f), c in self.cells.items()
        ]
        groups = [[g, *e] for g, e in self.groups.items()]
        return {"reference": self.reference, "cells": cells, "groups": groups}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], half_life: float) -> CountTable:
        table = cls(half_life, float(data["reference"]))
        for group, feature, weight, calls, distinct, novel, values in data["cells"]:
            cell = table.cells[(str(group), int(feature))] = Cell()
            cell.weight, cell.calls = float(weight), int(calls)
            cell.distinct, cell.novel = int(distinct), float(novel)
            cell.values = {str(v): [float(w), float(r)] for v, w, r in values}
        for group, *entry in data["groups"]:
            table.groups[str(group)] = [float(x) for x in entry]
        return table

    def __len__(self) -> int:
        return sum(len(c.values) for c in self.cells.values())


class OverlayCounts:
    """A fitted table read as is (shared by every shard, never changed once loaded), and the
    cells and groups changed online, each copied from the fitted table on its first change
    (`touched`): a lookup finds a changed cell first, and a snapshot holds only those."""

    def __init__(self, base: CountTable, touched: CountTable | None = None) -> None:
        self.base = base
        self.touched = touched or CountTable(base.half_life, base.reference)

    def add(self, group: str, feature: int, value: str, weight: float) -> None:
        key = (group, feature)
        cell = self.touched.cells.get(key)
        if cell is None:
            fitted = self.base.cells.get(key)
            cell = self.touched.cells[key] = fitted.copy() if fitted is not None else Cell()
        _count(cell, value, weight)

    def learn(self, chain: Sequence[str], values: Sequence[str], weight: float, at: float) -> None:
        """Count one call with `values` in every group of `chain` (`add` for each, inlined:
        this runs for every event the model learns from)."""
        cells, fitted = self.touched.cells, self.base.cells
        for group in chain:
            self.add_call(group, at)
            for feature, value in enumerate(values):
                key = (group, feature)
                cell = cells.get(key)
                if cell is None:
                    original = fitted.get(key)
                    cell = cells[key] = original.copy() if original is not None else Cell()
                entry = cell.values.get(value)
                if entry is None:
                    cell.values[value] = [weight, 1.0]
                    cell.distinct += 1
                    cell.novel += weight
                else:
                    entry[0] += weight
                    entry[1] += 1.0
                cell.weight += weight
                cell.calls += 1

    def add_call(self, group: str, at: float) -> None:
        if group not in self.touched.groups and group in self.base.groups:
            self.touched.groups[group] = list(self.base.groups[group])
        self.touched.add_call(group, at)

    def raw(self, group: str, feature: int, value: str) -> int:
        if (group, feature) in self.touched.cells:
            return self.touched.raw(group, feature, value)
        return self.base.raw(group, feature, value)

    def group(self, group: str) -> GroupInfo | None:
        return self.touched.group(group) or self.base.group(group)


def _count(cell: Cell, value: str, weight: float) -> None:
    entry = cell.values.get(value)
    if entry is None:
        cell.values[value] = [weight, 1.0]
        cell.distinct += 1
        cell.novel += weight
    else:
        entry[0] += weight
        entry[1] += 1.0
    cell.weight += weight
    cell.calls += 1
