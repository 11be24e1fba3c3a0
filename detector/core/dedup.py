"""The eventID window: CloudTrail may deliver one event more than once (same eventID)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class EventIdWindow:
    """Remembers the most recent `capacity` event ids; older ones are forgotten.

    Duplicates arrive close together (the same log file delivered twice, a retried batch),
    so a bounded window catches them while keeping memory flat on endless streams.
    """

    def __init__(self, capacity: int = 250_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def seen(self, event_id: str) -> bool:
        """True if the id was seen before; otherwise remember it and return False."""
        if event_id in self._seen:
            return True
        self._seen[event_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._seen)

    def snapshot(self) -> list[str]:
        return list(self._seen)

    def restore(self, ids: Iterable[str]) -> None:
        self._seen = OrderedDict.fromkeys(ids)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
