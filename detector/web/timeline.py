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
        self._summaries: dict[str, SessionSummary] = {}

    async def open(self) -> None:
        return None

    async def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        for record in records:
            entry = timeline_entry(record)
            if entry is None:
                continue
            self._entries[(entry.session_id, entry.entry_key)] = entry
            self._summaries[entry.session_id] = _merge(
                self._summaries.get(entry.session_id), summary_of(record, entry.at)
            )

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
                list(summaries.values()),
                cap=self.cap,
            )
        except BaseException:
            # Kept for the retried flush, merged with what came in since (newer on top).
            entries.update(self._entries)
            for session_id, newer in self._summaries.items():
                summaries[session_id] = _merge(summaries.get(session_id), newer)
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


def summary_of(record: Mapping[str, Any], at: datetime) -> SessionSummary:
    target = record.get("target") or {}
    on_human = bool(target.get("on_human_credentials")) or (
        record.get("kind") == "agent-on-human-credentials"
    )
    return SessionSummary(
        session_id=record["session_id"],
        agent=record.get("agent") or target.get("agent"),
        human=record.get("human") or target.get("human"),
        principal=record.get("principal") or target.get("principal"),
        scope=record.get("scope"),
        on_human_credentials=on_human,
        last_at=at,
    )


def _merge(old: SessionSummary | None, new: SessionSummary) -> SessionSummary:
    if old is None:
        return new
    return SessionSummary(
        session_id=new.session_id,
        agent=new.agent or old.agent,
        human=new.human or old.human,
        principal=new.principal or old.principal,
        scope=new.scope or old.scope,
        on_human_credentials=old.on_human_credentials or new.on_human_credentials,
        last_at=max(old.last_at, new.last_at),
    )
