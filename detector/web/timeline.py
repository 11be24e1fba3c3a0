"""The per-session history the session page shows, recorded by the service.

The pipeline keeps no history, only what it needs to decide. `TimelineRecorder` is a sink:
it keeps the findings, alerts and responses of agent sessions from each batch and writes
them to the state store when the service flushes its sinks, which is before state is saved
and sources are acknowledged. Entries are keyed within their session, so a batch delivered
twice records nothing new, and each session keeps its newest `cap` entries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from detector.core.parse import parse_time
from detector.state.approvals import SessionSummary, TimelineEntry
from detector.state.store import StateStore


class TimelineRecorder:
    name = "session-timeline"

    def __init__(self, store: StateStore, *, cap: int) -> None:
        self.store = store
        self.cap = cap
        self._entries: dict[tuple[str, str], TimelineEntry] = {}
        # Built up in place, record by record: a frozen summary per record cost more than
        # the entry itself on a stream where most agent events raise a finding.
        self._summaries: dict[str, _Summary] = {}

    async def open(self) -> None:
        return None

    async def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        for record in records:
            entry = timeline_entry(record)
            if entry is None:
                continue
            self._entries[(entry.session_id, entry.entry_key)] = entry
            summary = self._summaries.get(entry.session_id)
            if summary is None:
                self._summaries[entry.session_id] = _Summary(record, entry.at)
            else:
                summary.add(record, entry.at)

    async def flush(self) -> None:
        """Write what was kept before the call; what batches write meanwhile waits for the
        next flush (the service flushes while later batches go on)."""
        if not self._entries and not self._summaries:
            return
        entries, self._entries = self._entries, {}
        summaries, self._summaries = self._summaries, {}
        try:
            await asyncio.to_thread(
                self.store.record_timeline,
                list(entries.values()),
                [summary.frozen(session_id) for session_id, summary in summaries.items()],
                cap=self.cap,
            )
        except BaseException:
            # Kept for the retried flush, merged with what came in since (newer on top).
            entries.update(self._entries)
            for session_id, newer in self._summaries.items():
                older = summaries.get(session_id)
                if older is None:
                    summaries[session_id] = newer
                else:
                    older.merge(newer)
            self._entries, self._summaries = entries, summaries
            raise

    async def close(self) -> None:
        return None


def timeline_entry(record: Mapping[str, Any]) -> TimelineEntry | None:
    """The timeline line for a contract record of an agent session, else None."""
    kind = record.get("type")
    if kind == "finding" and record.get("session_kind") == "agent":
        return TimelineEntry(
            session_id=record["session_id"],
            entry_key=f"finding/{record['event_id']}/{record['kind']}",
            at=parse_time(record["event_time"]),
            kind="finding",
            severity=record.get("severity"),
            title=f"{record.get('action') or record['kind']}: {record['reason']}",
            record=record,
        )
    if kind == "alert" and record.get("session_kind") == "agent":
        return TimelineEntry(
            session_id=record["session_id"],
            entry_key=f"alert/{record['dedup_key']}/{record['severity']}",
            at=parse_time(record["last_seen"]),
            kind="alert",
            severity=record.get("severity"),
            title=record["title"],
            record=record,
        )
    if kind == "response":
        # Responses are only ever decided for agent sessions.
        dry = " (dry run: recorded, not carried out)" if record.get("dry_run") else ""
        return TimelineEntry(
            session_id=record["session_id"],
            entry_key=f"response/{record['action']}/{record['event_id']}",
            at=parse_time(record["event_time"]),
            kind="response",
            severity=None,
            title=f"{record['action']}{dry}: {record['reason']}",
            record=record,
        )
    return None


class _Summary:
    """A session's summary over the records kept since the last flush: the newest record
    that names a field wins it, on-human-credentials once seen stays, the latest time."""

    __slots__ = ("agent", "human", "last_at", "on_human_credentials", "principal", "scope")

    def __init__(self, record: Mapping[str, Any], at: datetime) -> None:
        self.agent: str | None = None
        self.human: str | None = None
        self.principal: str | None = None
        self.scope: str | None = None
        self.on_human_credentials = False
        self.last_at = at
        self.add(record, at)

    def add(self, record: Mapping[str, Any], at: datetime) -> None:
        get = record.get
        target = get("target") or {}
        agent = get("agent") or target.get("agent")
        if agent:
            self.agent = agent
        human = get("human") or target.get("human")
        if human:
            self.human = human
        principal = get("principal") or target.get("principal")
        if principal:
            self.principal = principal
        scope = get("scope")
        if scope:
            self.scope = scope
        if not self.on_human_credentials and (
            target.get("on_human_credentials") or get("kind") == "agent-on-human-credentials"
        ):
            self.on_human_credentials = True
        if at > self.last_at:
            self.last_at = at

    def merge(self, newer: _Summary) -> None:
        """Fold in a summary of records that came after this one's."""
        self.agent = newer.agent or self.agent
        self.human = newer.human or self.human
        self.principal = newer.principal or self.principal
        self.scope = newer.scope or self.scope
        self.on_human_credentials = self.on_human_credentials or newer.on_human_credentials
        self.last_at = max(self.last_at, newer.last_at)

    def frozen(self, session_id: str) -> SessionSummary:
        return SessionSummary(
            session_id=session_id,
            agent=self.agent,
            human=self.human,
            principal=self.principal,
            scope=self.scope,
            on_human_credentials=self.on_human_credentials,
            last_at=self.last_at,
        )
