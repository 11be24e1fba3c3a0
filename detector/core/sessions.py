"""Session attribution: which credential set made each call, and who or what is behind it.

One session per credential set, keyed on (account, principalId, accessKeyId, creationDate)
as the identity notes recommend (§6): ASIA keys are unique only together with their secret
and token, and principalId is what IAM conditions see as aws:userid. Events without a key
(sign-in events, AWS service events) key on the principal, ARN or invoking service.

STS calls that mint credentials are remembered as links from the new key to the caller's
session, so a role session can be walked back to the person or agent that created it.
CloudTrail delivers out of order: a child may be seen before the AssumeRole that minted it,
and when the link arrives the child's view is updated for its later events.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from detector.core.agents import AgentMarkerTable
from detector.core.credentials import CredentialLink, is_minting, link_from_event
from detector.core.delegation import DEFAULT_RULES, AgentCredentialRules
from detector.core.events import CloudTrailEvent
from detector.core.session_rules import build_view, ua_hints
from detector.core.session_state import Inherited, RecordRow, SessionKey, SessionRecord
from detector.core.session_view import SessionView
from detector.core.shared_values import SharedValues
from detector.core.taxonomy import SessionKind
from detector.errors import StateError

# 2: sessions and links keyed by id (so each is a row of its own), each record with its order.
SNAPSHOT_VERSION = 2
# Role chaining is rarely more than a few hops; the bound only guards against bad data.
_MAX_CHAIN = 32
# Distinct (user agent, invokedBy, console) combinations remembered per session, so a
# session that alternates between a few clients is not re-examined on every event.
_MAX_SIGS = 4


def session_id_for(key: SessionKey) -> str:
    """Stable across restarts: the same credentials always give the same id."""
    digest = hashlib.sha256("\x1f".join(key).encode()).hexdigest()
    return f"ses-{digest[:16]}"


def session_key(event: CloudTrailEvent) -> SessionKey:
    actor = event.actor
    return (
        actor.account_id or event.recipient_account_id or "",
        actor.principal_id or actor.arn or actor.invoked_by or actor.user_name or "",
        actor.access_key_id or "",
        actor.session_created_at or "",
    )


class SessionTracker:
    """Attributes each event to a session; learns credential links from STS events."""

    def __init__(
        self,
        markers: AgentMarkerTable,
        *,
        max_sessions: int = 1_000_000,
        credential_rules: AgentCredentialRules = DEFAULT_RULES,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.markers = markers
        self.credential_rules = credential_rules
        self.max_sessions = max_sessions
        # Least recently seen first, so the oldest is dropped when over max_sessions.
        self._sessions: OrderedDict[SessionKey, SessionRecord] = OrderedDict()
        self._by_id: dict[str, SessionRecord] = {}
        self._by_access_key: dict[str, SessionRecord] = {}
        self._links: dict[str, CredentialLink] = {}
        # Ids of sessions dropped since the last drain, so per-session state kept elsewhere
        # (alerts, bindings, bursts) is dropped with them and memory stays bounded.
        self._dropped: list[str] = []
        self._tick = 0  # events observed, for each record's `order`
        self._unlinked = False  # a link was dropped since evict_idle last pruned children
        # Sessions and links changed since `saved`, when the owner saves changes only
        # (`track_changes`); None in replay, which saves nothing and would only grow them.
        self._changed: set[str] | None = None
        self._changed_links: set[str] | None = None
        self._shared = SharedValues()

    def __len__(self) -> int:
        return len(self._sessions)

    def kind_counts(self) -> Counter[SessionKind]:
        """Live sessions by kind, for the active-sessions gauge."""
        return Counter(record.view.kind for record in self._sessions.values())

    def live(self) -> list[tuple[SessionView, datetime]]:
        """Every live session's view and its newest event time, least recently seen first."""
        return [(record.view, record.last_seen) for record in self._sessions.values()]

    def get(self, session_id: str) -> SessionView | None:
        record = self._by_id.get(session_id)
        return record.view if record is not None else None

    def link(self, access_key_id: str) -> CredentialLink | None:
        """The STS link that minted this access key, if one was seen."""
        return self._links.get(access_key_id)

    def observe(self, event: CloudTrailEvent) -> SessionView:
        """Attribute the event, update state, return the (possibly updated) view.

        The same view object comes back for as long as nothing about the session changes.
        """
        key = session_key(event)
        record = self._sessions.get(key)
        changed = False
        if record is None:
            record = self._create(key, event)
            changed = True
        else:
            self._sessions.move_to_end(key)
            if event.event_time > record.last_seen:
                record.last_seen = event.event_time
        record.order = self._tick
        self._tick += 1
        if self._changed is not None:
            self._changed.add(record.session_id)
        actor = event.actor
        signature = (event.user_agent, actor.invoked_by, event.console_session)
        if signature not in record.sigs:
            # Shared: the user agent is one of a few strings, the same in many sessions.
            shared = self._shared
            record.sigs = shared((*record.sigs[-(_MAX_SIGS - 1) :], shared(signature)))
            changed = self._absorb(record, event) or changed
        if record.principal_arn is None and actor.arn:
            record.principal_arn = actor.arn
            changed = True
        if changed:
            self._refresh(record)
        if is_minting(event):
            self._learn(event, record)
        return record.view

    def promote(
        self,
        session_id: str,
        *,
        agent: str | None,
        evidence: str,
        scope_binding: str | None = None,
    ) -> SessionView:
        """Make the session an agent session (sticky): a task scope has bound it.

        A known agent name is kept; `agent` names it otherwise. `scope_binding` names the
        scope when its match names the credential set itself (role, SourceIdentity, session
        name, principal or tags), which marks the credentials as minted for that task.
        Raises KeyError if the session is unknown.
        """
        record = self._by_id[session_id]
        held = record.marks
        if (
            held.promoted
            and held.promoted_evidence == evidence
            and (scope_binding is None or held.scope_binding == scope_binding)
        ):
            return record.view
        marks = record.marking()
        marks.promoted = True
        self._mark(record.session_id)
        marks.promoted_agent = marks.promoted_agent or agent
        marks.promoted_evidence = evidence
        if scope_binding is not None:
            marks.scope_binding = scope_binding
        self._refresh(record)
        return record.view

    def evict_idle(self, before: datetime) -> int:
        """Drop sessions whose last event is older than `before`, and their stale links."""
        idle = [key for key, record in self._sessions.items() if record.last_seen < before]
        for key in idle:
            self._drop(key)
        stale = [
            access_key
            for access_key, link in self._links.items()
            if link.minted_at < before and access_key not in self._by_access_key
        ]
        for access_key in stale:
            self._unlink(access_key)
        if self._unlinked:
            # A record's children name links; only a dropped link can leave one dangling.
            self._unlinked = False
            for record in self._sessions.values():
                if record.children and not record.children.issubset(self._links):
                    record.children = record.children.intersection(self._links)
                    self._mark(record.session_id)
        return len(idle)

    def snapshot(self) -> dict[str, Any]:
        """The full state as JSON-serialisable data; `order` says which was seen last."""
        return {
            "version": SNAPSHOT_VERSION,
            "sessions": {sid: record.to_json() for sid, record in self._by_id.items()},
            "links": {key: link.to_json() for key, link in self._links.items()},
        }

    def shared_snapshot(self) -> dict[str, Any]:
        """`snapshot` without its entries, which `changes` hands out one by one."""
        return {"version": SNAPSHOT_VERSION, "sessions": {}, "links": {}}

    def track_changes(self) -> None:
        """Remember what changes from now on, for `changes`."""
        self._changed = set()
        self._changed_links = set()

    def changes(self) -> tuple[dict[str, RecordRow | None], dict[str, Any | None]]:
        """Sessions and links changed since `track_changes` or `saved`, by id: a session as
        its state row (`SessionRecord.row`, plain when encoded), a link as its `snapshot`
        entry; None for one that is gone."""
        if self._changed is None or self._changed_links is None:
            raise StateError("the session tracker is not tracking its changes")
        by_id, links = self._by_id, self._links
        sessions = {
            sid: record.row() if (record := by_id.get(sid)) is not None else None
            for sid in self._changed
        }
        linked = {
            key: link.to_json() if (link := links.get(key)) is not None else None
            for key in self._changed_links
        }
        return sessions, linked

    def saved(self) -> None:
        if self._changed is not None and self._changed_links is not None:
            self._changed.clear()
            self._changed_links.clear()

    @classmethod
    def restore(
        cls,
        data: Mapping[str, Any],
        markers: AgentMarkerTable,
        *,
        max_sessions: int = 1_000_000,
        credential_rules: AgentCredentialRules = DEFAULT_RULES,
    ) -> SessionTracker:
        version = data.get("version")
        if version not in (1, SNAPSHOT_VERSION):
            raise StateError(f"session snapshot version {version!r} is not supported")
        tracker = cls(markers, max_sessions=max_sessions, credential_rules=credential_rules)
        try:
            stored_links = data["links"]
            links = [
                CredentialLink.from_json(item)
                for item in (
                    stored_links.values() if isinstance(stored_links, Mapping) else stored_links
                )
            ]
            if version != 1:  # keyed, in no order: the oldest minted is the first to go
                links.sort(key=lambda link: link.minted_at)
            for link in links:
                tracker._links[link.access_key_id] = link
            stored = data["sessions"]
            records = [
                SessionRecord.from_json(item)
                for item in (stored.values() if isinstance(stored, Mapping) else stored)
            ]
            if version == 1:  # a list, least recently seen first
                for order, record in enumerate(records):
                    record.order = order
            else:
                records.sort(key=lambda record: record.order)
            for record in records:
                record.share(tracker._shared)
                record.view, export = build_view(record, credential_rules, tracker._shared)
                record.export = export if record.children else None
                tracker._index(record)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"session snapshot is malformed: {exc!r}") from exc
        tracker._tick = records[-1].order + 1 if records else 0
        tracker._unlinked = True  # prune children once: older snapshots may hold dangling ones
        return tracker

    # --- internals -------------------------------------------------------------------

    def _create(self, key: SessionKey, event: CloudTrailEvent) -> SessionRecord:
        record = SessionRecord(session_id_for(key), key, event.event_time)
        record.take_identity(event.actor)
        record.share(self._shared)
        access_key = record.access_key_id
        if access_key is not None:
            link = self._links.get(access_key)
            if link is not None and link.fits(record.principal_id):
                self._bind(record, link)
        self._index(record)
        while len(self._sessions) > self.max_sessions:
            self._drop(next(iter(self._sessions)))
        return record

    def _index(self, record: SessionRecord) -> None:
        self._sessions[record.key] = record
        self._by_id[record.session_id] = record
        if record.access_key_id is not None:
            self._by_access_key[record.access_key_id] = record

    def drain_dropped(self) -> tuple[str, ...]:
        """Session ids evicted since the last call."""
        # Called once per event; the common path, nothing evicted, allocates nothing.
        if not self._dropped:
            return ()
        dropped = tuple(self._dropped)
        self._dropped.clear()
        return dropped

    def _mark(self, session_id: str) -> None:
        if self._changed is not None:
            self._changed.add(session_id)

    def _unlink(self, access_key: str) -> None:
        del self._links[access_key]
        self._unlinked = True
        self._mark_link(access_key)

    def _mark_link(self, access_key: str) -> None:
        if self._changed_links is not None:
            self._changed_links.add(access_key)

    def _drop(self, key: SessionKey) -> None:
        record = self._sessions.pop(key)
        self._dropped.append(record.session_id)
        self._mark(record.session_id)
        self._by_id.pop(record.session_id, None)
        access_key = record.access_key_id
        if access_key is not None and self._by_access_key.get(access_key) is record:
            del self._by_access_key[access_key]

    def _absorb(self, record: SessionRecord, event: CloudTrailEvent) -> bool:
        """Take what one new (user agent, invokedBy, console) combination says; True if new."""
        actor = event.actor
        changed = False
        facts = self.markers.scan(event.user_agent, actor.invoked_by)
        found = facts.agent
        if found is not None and found.rank < record.marks.agent_rank:
            marks = record.marking()
            marks.agent = found.agent
            marks.agent_confidence = found.marker.confidence
            marks.agent_evidence = found.evidence
            marks.agent_rank = found.rank
            changed = True
        if facts.console_credentials is not None and record.marks.login_evidence is None:
            record.marking().login_evidence = facts.console_credentials
            changed = True
        if event.console_session and not record.console:
            record.console = True
            changed = True
        service = actor.invoked_by
        if service is not None and (actor.arn or actor.principal_id) and actor.type != "AWSService":
            # A service calling with the caller's identity: its user agent is the service's
            # ("AWS Internal", "secretsmanager.amazonaws.com") and says nothing about who
            # the caller is, so only the invokedBy markers above may count.
            changed = record.add_fas(service) or changed
        else:
            hints = ua_hints(event.user_agent) | record.hints
            if hints != record.hints:
                record.hints = hints
                changed = True
        return changed

    def _learn(self, event: CloudTrailEvent, parent: SessionRecord) -> None:
        link = link_from_event(event, parent.session_id)
        if link is None:
            return
        existing = self._links.get(link.access_key_id)
        if existing is not None and not link.better_than(existing):
            return
        self._links[link.access_key_id] = link
        self._mark_link(link.access_key_id)
        while len(self._links) > self.max_sessions:
            self._unlink(next(iter(self._links)))
        if not isinstance(parent.children, set):
            parent.children = set()  # its first: until now it shared the empty NO_CHILDREN
        parent.children.add(link.access_key_id)
        self._mark(parent.session_id)
        child = self._by_access_key.get(link.access_key_id)
        if child is not None and child is not parent and link.fits(child.principal_id):
            # The minted credentials were used before their AssumeRole reached us.
            self._bind(child, link)
            self._refresh(child)

    def _bind(self, child: SessionRecord, link: CredentialLink) -> None:
        child.link = link
        parent = self._by_id.get(link.parent_session_id)
        child.inherited = self._export(parent) if parent is not None else None

    def _export(self, parent: SessionRecord) -> Inherited:
        """What the parent passes on to the credentials it minted."""
        if parent.export is None:
            # The view stays the object it was: the pipeline rebinds a session whose view changed.
            _, parent.export = build_view(parent, self.credential_rules, self._shared)
        return parent.export

    def _refresh(self, record: SessionRecord, depth: int = 0) -> None:
        """Rebuild the view; hand any change on to the sessions this one minted."""
        previous = record.export
        self._mark(record.session_id)
        record.view, export = build_view(record, self.credential_rules, self._shared)
        if not record.children:
            # Kept only by sessions that minted credentials; built when a first child binds.
            record.export = None
            return
        record.export = export
        if export == previous or depth >= _MAX_CHAIN:
            return
        for access_key in record.children:
            child = self._by_access_key.get(access_key)
            if (
                child is not None
                and child.link is not None
                and child.link.parent_session_id == record.session_id
                and child is not record
            ):
                child.inherited = record.export
                self._refresh(child, depth + 1)
