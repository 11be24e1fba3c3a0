"""The eventID window: CloudTrail may deliver one event more than once (same eventID)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

# Ids per stored chunk. A flush rewrites only the chunks that took ids since the last one
# (usually one or two), so the window's 250,000 ids are not saved again on every flush.
CHUNK_IDS = 1000


class EventIdWindow:
    """Remembers the most recent `capacity` event ids; older ones are forgotten.

    Duplicates arrive close together (the same log file delivered twice, a retried batch),
    so a bounded window catches them while keeping memory flat on endless streams.

    Ids are kept in arrival order in numbered chunks of CHUNK_IDS; the oldest chunk may have
    lost its first `head` ids to the capacity.
    """

    def __init__(self, capacity: int = 250_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._ids: set[str] = set()
        self._chunks: deque[list[str]] = deque()
        self._first = 0  # number of the oldest chunk held
        self._head = 0  # ids of the oldest chunk already forgotten
        # Chunk numbers that took ids since the last `saved`, and the oldest number then.
        self._changed: set[int] = set()
        self._saved_first = 0

    def seen(self, event_id: str) -> bool:
        """True if the id was seen before; otherwise remember it and return False."""
        ids = self._ids
        if event_id in ids:
            return True
        ids.add(event_id)
        chunks = self._chunks
        if not chunks or len(chunks[-1]) >= CHUNK_IDS:
            chunks.append([])
        chunks[-1].append(event_id)
        self._changed.add(self._first + len(chunks) - 1)
        if len(ids) > self.capacity:
            self._forget_oldest()
        return False

    def _forget_oldest(self) -> None:
        oldest = self._chunks[0]
        self._ids.discard(oldest[self._head])
        self._head += 1
        if self._head == len(oldest):
            self._chunks.popleft()
            self._first += 1
            self._head = 0

    def __len__(self) -> int:
        return len(self._ids)

    # -- state ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {**self.shared_snapshot(), "chunks": self.chunk_rows(self.chunk_numbers())}

    def shared_snapshot(self) -> dict[str, Any]:
        """Everything but the chunks' ids: where the window starts."""
        return {"first": self._first, "head": self._head, "chunks": {}}

    def chunk_numbers(self) -> range:
        return range(self._first, self._first + len(self._chunks))

    def chunk_rows(self, numbers: Iterable[int]) -> dict[str, list[str]]:
        """The ids of each held chunk among `numbers`, whole (`head` says where it starts)."""
        first, chunks = self._first, self._chunks
        return {
            str(n): list(chunks[n - first]) for n in sorted(numbers) if 0 <= n - first < len(chunks)
        }

    def changes(self) -> tuple[dict[str, list[str]], list[str]]:
        """Chunks written since the last `saved`, and those dropped since (as chunk keys)."""
        gone = [str(n) for n in range(self._saved_first, self._first)]
        return self.chunk_rows(self._changed), gone

    def saved(self) -> None:
        self._changed.clear()
        self._saved_first = self._first

    def restore(self, data: Iterable[str] | Mapping[str, Any]) -> None:
        """From `snapshot`, or from the plain list of ids older snapshots hold."""
        self._ids = set()
        self._chunks = deque()
        self._first = self._head = 0
        if isinstance(data, Mapping):
            stored = data.get("chunks", {})
            first = int(data.get("first", 0))
            numbers = sorted(int(n) for n in stored)
            if numbers != list(range(first, first + len(numbers))):
                raise ValueError(
                    f"eventID window chunks {numbers[:3]}... do not start at {first} "
                    "or are not consecutive"
                )
            self._first = first
            self._head = int(data.get("head", 0)) if numbers else 0
            for n in numbers:
                chunk = list(stored[str(n)])
                self._chunks.append(chunk)
                self._ids.update(chunk[self._head :] if n == first else chunk)
        else:
            for event_id in data:
                self.seen(event_id)
        while len(self._ids) > self.capacity:
            self._forget_oldest()
        self._changed.clear()
        self._saved_first = self._first
