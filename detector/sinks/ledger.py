"""What a paging sink delivered, kept in the state store so a restart does not page twice.

At-least-once delivery means that after a crash the last unacknowledged batches come again,
from state older than what was already sent. The incidents (with what was last delivered
for each) are therefore written through to the state store right after each delivery, not
at the next state flush: a redelivered alert then finds its incident already sent.

Stored in the store's named checkpoints, one row per sink and session
(`sink/<sink>/session/<id>`), so instances sharing a PostgreSQL store never overwrite each
other's incidents, plus one index of the sink's active sessions (`sink/<sink>/active`) read at
start to resume re-sending and resolving. The index is read, merged and written back; two
instances changing it at the same instant can lose an entry, which costs only a missed
refresh after the next restart, never a duplicate page.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable

import orjson

from detector.errors import StateError
from detector.sinks.incident import ACTIVE, Incident
from detector.state.store import StateStore

# Resolved incidents kept in memory for quick redelivery checks; older ones are re-read.
RESOLVED_IN_MEMORY = 10_000


class IncidentLedger:
    """A sink's incidents: active ones in memory, every one in the store (when there is one)."""

    def __init__(self, sink: str, store: StateStore | None) -> None:
        self.sink = sink
        self._store = store
        self.active: dict[str, Incident] = {}
        self._resolved: OrderedDict[str, Incident] = OrderedDict()
        self._unsaved: dict[str, Incident] = {}

    def _row(self, session_id: str) -> str:
        return f"sink/{self.sink}/session/{session_id}"

    @property
    def _index(self) -> str:
        return f"sink/{self.sink}/active"

    async def load(self) -> None:
        """Read back the active incidents (at open)."""
        if self._store is None:
            return
        for session_id in await asyncio.to_thread(self._read_index):
            incident = await self._read(session_id)
            if incident is not None and incident.status == ACTIVE:
                self.active[session_id] = incident

    async def get(self, session_id: str) -> Incident | None:
        found = self.active.get(session_id) or self._resolved.get(session_id)
        if found is not None:
            return found
        incident = await self._read(session_id)
        if incident is not None:
            self._keep(incident)
        return incident

    def keep(self, incident: Incident) -> None:
        """Hold a new or changed incident in memory (before it is delivered and saved)."""
        self._keep(incident)

    async def save(self, incident: Incident) -> None:
        """Write the incident through. If the store fails, the incident stays unsaved and
        `save_unsaved` writes it before anything else is delivered."""
        self._keep(incident)
        if self._store is None:
            return
        self._unsaved[incident.session_id] = incident
        body = orjson.dumps(incident.to_json()).decode()
        await asyncio.to_thread(self._store.save_checkpoint, self._row(incident.session_id), body)
        await asyncio.to_thread(self._update_index, incident)
        if self._unsaved.get(incident.session_id) is incident:
            del self._unsaved[incident.session_id]

    async def save_unsaved(self) -> None:
        for incident in list(self._unsaved.values()):
            await self.save(incident)

    def pending(self) -> Iterable[Incident]:
        return [i for i in (*self.active.values(), *self._resolved.values()) if i.pending]

    def _keep(self, incident: Incident) -> None:
        session_id = incident.session_id
        if incident.status == ACTIVE:
            self._resolved.pop(session_id, None)
            self.active[session_id] = incident
            return
        self.active.pop(session_id, None)
        self._resolved[session_id] = incident
        self._resolved.move_to_end(session_id)
        while len(self._resolved) > RESOLVED_IN_MEMORY:
            _, oldest = next(iter(self._resolved.items()))
            if oldest.pending:
                break
            self._resolved.popitem(last=False)

    async def _read(self, session_id: str) -> Incident | None:
        if self._store is None:
            return None
        raw = await asyncio.to_thread(self._store.checkpoint, self._row(session_id))
        if raw is None:
            return None
        try:
            return Incident.from_json(orjson.loads(raw))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StateError(f"{self._row(session_id)}: stored incident is damaged: {exc}") from exc

    def _read_index(self) -> list[str]:
        assert self._store is not None
        raw = self._store.checkpoint(self._index)
        if raw is None:
            return []
        try:
            ids = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise StateError(f"{self._index}: stored index is damaged: {exc}") from exc
        return [str(i) for i in ids]

    def _update_index(self, incident: Incident) -> None:
        assert self._store is not None
        ids = set(self._read_index())
        before = set(ids)
        if incident.status == ACTIVE:
            ids.add(incident.session_id)
        else:
            ids.discard(incident.session_id)
        if ids != before:
            self._store.save_checkpoint(self._index, orjson.dumps(sorted(ids)).decode())
