"""One object per distinct value, for what many sessions hold the same of.

Each decoded record brings its own string objects, so a million sessions of one role in one
account held a million copies of the account id, the role's ARN, the user agent and the
evidence lines built from them (about 2 KB of each session's 3.9 KB). Values passed through
a `SharedValues` table are the first object seen with that value. The table is bounded:
when it is full it starts again, and values already shared stay shared.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

_V = TypeVar("_V", bound=Hashable)

# Distinct values kept; past this the table starts again.
CAPACITY = 1 << 16


class SharedValues:
    __slots__ = ("_values", "capacity")

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._values: dict[Hashable, Hashable] = {}

    def __call__(self, value: _V) -> _V:
        """The shared object equal to `value` (which becomes it if there was none)."""
        found = self._values.get(value)
        if found is not None:
            return found  # type: ignore[return-value]  # equal, hence of value's type
        if len(self._values) >= self.capacity:
            self._values.clear()
        self._values[value] = value
        return value

    def __len__(self) -> int:
        return len(self._values)
