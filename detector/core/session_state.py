"""What the tracker knows about one session.

A `SessionRecord` accumulates facts as events arrive (identity, markers seen, console use,
the link to the credentials' minter); `session_rules.build_view` turns it into a view, and
the tracker calls that only when a fact changed. `Inherited` is what a session passes down
to the sessions its STS calls minted.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from detector.core.credentials import CredentialLink
from detector.core.events import Actor
from detector.core.session_view import NO_TAGS, SessionView
from detector.core.shared_values import SharedValues
from detector.core.taxonomy import CredentialRelation, SessionKind
from detector.core.timestamps import iso_instant

SessionKey = tuple[str, str, str, str]

_MAX_FAS = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Inherited:
    """What a session passes to the sessions its STS calls minted."""

    session_id: str
    is_agent: bool = False
    agent: str | None = None
    agent_confidence: str | None = None
    base_kind: SessionKind = SessionKind.UNKNOWN
    human: str | None = None
    root_arn: str | None = None
    source_identity: str | None = None
    transitive_tags: Mapping[str, str] = field(default_factory=lambda: NO_TAGS)
    # The minting session's own role (None for IAM users and root), so a child can tell
    # "a role other than the person's own" from the person re-assuming their own role.
    role_arn: str | None = None
    credentials: CredentialRelation = CredentialRelation.OWN
    delegated_by: str | None = None

    @classmethod
    def from_link(cls, link: CredentialLink) -> Inherited:
        """A stand-in when the minting session is gone: only the link's own record of it."""
        kind = SessionKind.UNKNOWN
        human = None
        if link.parent_type in ("IAMUser", "Root", "SAMLUser"):
            kind = SessionKind.HUMAN
            human = "root" if link.parent_type == "Root" else last_segment(link.parent_arn)
        elif link.parent_type == "AWSService":
            kind = SessionKind.SERVICE
        return cls(
            session_id=link.parent_session_id,
            base_kind=kind,
            human=human,
            root_arn=link.parent_arn,
            transitive_tags=link.incoming_transitive,
        )


# The identity the session's first event gave (`take_identity`, and the key's parts), in
# snapshot order.
_IDENTITY_FIELDS = (
    "principal_type",
    "principal_arn",
    "principal_id",
    "account_id",
    "access_key_id",
    "issued_at",
    "user_name",
    "issuer_arn",
    "issuer_type",
    "session_name",
    "source_identity",
    "on_behalf_of",
    "identity_provider",
    "credentials_issued_to",
    "invoked_by",
)
# Read from the key (see `SessionRecord.account_id`), never set.
_KEY_FIELDS = ("account_id", "access_key_id", "issued_at")
# Those many sessions share: of one role, user or issuer (the account is the key's).
_SHARED_FIELDS = tuple(f for f in _IDENTITY_FIELDS if f not in _KEY_FIELDS)


class SessionMarks:
    """What marked a session for an agent: a marker in its user agent, a task scope that
    bound it, `aws login` flags.

    Most sessions have none of it and share NO_MARKS, which is never written: a record
    takes one of its own (`SessionRecord.marking`) when its first mark arrives.
    """

    __slots__ = (
        "agent",
        "agent_confidence",
        "agent_evidence",
        "agent_rank",
        "login_evidence",
        "promoted",
        "promoted_agent",
        "promoted_evidence",
        "scope_binding",
    )

    def __init__(self) -> None:
        self.agent: str | None = None
        self.agent_confidence: str | None = None
        self.agent_evidence: str | None = None
        # The marker's rank: a better-ranked marker seen later replaces the agent's name.
        self.agent_rank = 1 << 30
        self.login_evidence: str | None = None
        self.promoted = False
        self.promoted_agent: str | None = None
        self.promoted_evidence: str | None = None
        # A task scope whose match names this credential set (role, SourceIdentity, session
        # name, principal or tags): the binding marks the credentials as minted for the task.
        self.scope_binding: str | None = None


# Persisted with the record's own fields, in snapshot order; the scope binding, added to
# the snapshot later, on its own.
_MARK_FIELDS = tuple(name for name in SessionMarks.__slots__ if name != "scope_binding")
NO_MARKS = SessionMarks()


class SessionRecord:
    """Mutable facts about one credential set. Owned by the tracker; never handed out."""

    __slots__ = (
        "children",
        "console",
        "credentials_issued_to",
        "export",
        "fas",
        "hints",
        "identity_provider",
        "inherited",
        "invoked_by",
        "issuer_arn",
        "issuer_type",
        "key",
        "last_seen",
        "link",
        "marks",
        "on_behalf_of",
        "order",
        "principal_arn",
        "principal_id",
        "principal_type",
        "session_id",
        "session_name",
        "sigs",
        "source_identity",
        "user_name",
        "view",
    )

    def __init__(self, session_id: str, key: SessionKey, last_seen: datetime) -> None:
        self.session_id = session_id
        self.key = key
        self.last_seen = last_seen
        # When the tracker last saw it, in its own count of events: restores the order in
        # which sessions were last seen, which decides which one is dropped first.
        self.order = 0
        self.principal_type = "Unknown"
        self.principal_arn: str | None = None
        self.principal_id: str | None = None
        self.user_name: str | None = None
        self.issuer_arn: str | None = None
        self.issuer_type: str | None = None
        self.session_name: str | None = None
        self.source_identity: str | None = None
        self.on_behalf_of: str | None = None
        self.identity_provider: str | None = None
        self.credentials_issued_to: str | None = None
        self.invoked_by: str | None = None
        self.console = False
        self.hints = 0
        self.fas: tuple[str, ...] = ()
        self.marks = NO_MARKS
        self.link: CredentialLink | None = None
        self.inherited: Inherited | None = None
        self.children: set[str] | frozenset[str] = NO_CHILDREN
        self.sigs: tuple[tuple[str, str | None, bool], ...] = ()
        # Built by the tracker before the record is used (`build_view`).
        self.view: SessionView = _UNBUILT
        # What it passes on to the sessions it minted; None while it has minted none.
        self.export: Inherited | None = None

    # The account, the access key and the issue time are parts of the key (`session_key`):
    # read from it rather than held twice, a million sessions over.
    @property
    def account_id(self) -> str | None:
        return self.key[0] or None

    @property
    def access_key_id(self) -> str | None:
        return self.key[2] or None

    @property
    def issued_at(self) -> str | None:
        return self.key[3] or None

    def take_identity(self, actor: Actor) -> None:
        """Identity fields, constant for one credential set, from the session's first event
        (the account, access key and issue time are the key's)."""
        self.principal_type = actor.type
        self.principal_arn = actor.arn or None
        self.principal_id = actor.principal_id
        self.user_name = actor.user_name
        self.issuer_arn = actor.session_issuer_arn
        self.issuer_type = actor.session_issuer_type
        self.session_name = actor.session_name
        self.source_identity = actor.source_identity
        self.on_behalf_of = actor.on_behalf_of
        self.identity_provider = actor.identity_provider
        self.credentials_issued_to = actor.credentials_issued_to
        if not (actor.arn or actor.principal_id):
            self.invoked_by = actor.invoked_by

    def share(self, shared: SharedValues) -> None:
        """Hold the identity strings that many sessions have in common (account, role, user,
        issuer) as one object each, not as the copies each session's records brought."""
        for name in _SHARED_FIELDS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, shared(value))
        # The key brought copies of its own of the account and the principal; the access key
        # and the issue time are this session's alone.
        account, principal, access_key, issued = self.key
        self.key = (shared(account), shared(principal), access_key, issued)

    def add_fas(self, service: str) -> bool:
        """Record a service calling on this session's behalf; True when new."""
        if service in self.fas or len(self.fas) >= _MAX_FAS:
            return False
        self.fas = (*self.fas, service)
        return True

    def marking(self) -> SessionMarks:
        """The record's own marks, to write to (the first mark replaces the shared empty)."""
        if self.marks is NO_MARKS:
            self.marks = SessionMarks()
        return self.marks

    # Persisted fields, in snapshot order. Derived fields (view, export, sigs) are rebuilt.
    _PERSISTED = (*_IDENTITY_FIELDS, "console", "hints")

    def to_json(self) -> dict[str, Any]:
        return self.row().to_plain()

    def row(self) -> RecordRow:
        """The record as its state row holds it, taken now (a cut takes every changed
        session's); made plain JSON when the row is encoded."""
        children = self.children
        return RecordRow(
            (
                # One C call each for the plain fields.
                _read_persisted(self),
                _read_marks(self.marks),
                self.session_id,
                self.key,
                self.last_seen,
                self.order,
                self.marks.scope_binding,
                self.fas,
                children if isinstance(children, frozenset) else frozenset(children),
                self.link,
                self.inherited,
            )
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionRecord:
        a, b, c, d = data["key"]
        record = cls(data["session_id"], (a, b, c, d), datetime.fromisoformat(data["last_seen"]))
        for name in _RESTORED:
            setattr(record, name, data[name])
        # scope_binding was added after the first snapshot format; older snapshots have none.
        scope_binding = data.get("scope_binding")
        marks = [data[name] for name in _MARK_FIELDS]
        if scope_binding is not None or marks != _NO_MARK_VALUES:
            own = record.marking()
            for name, value in zip(_MARK_FIELDS, marks, strict=True):
                setattr(own, name, value)
            own.scope_binding = scope_binding
        record.fas = tuple(data["fas"])
        record.order = int(data.get("order", 0))
        record.children = set(data["children"]) if data["children"] else NO_CHILDREN
        record.link = CredentialLink.from_json(data["link"]) if data["link"] else None
        record.inherited = _inherited_from_json(data["inherited"]) if data["inherited"] else None
        return record


class RecordRow:
    """A session record's state row: its values as they were when the row was taken, all
    immutable, given their plain JSON form (`to_json`'s) only when the row is encoded, off
    the event loop (see `detector.core.state_delta.Late`)."""

    __slots__ = ("_values",)

    def __init__(self, values: tuple[Any, ...]) -> None:
        self._values = values

    def to_plain(self) -> dict[str, Any]:
        (persisted, marks, session_id, key, last_seen, order, scope_binding, fas, children,
         link, inherited) = self._values  # fmt: skip
        data: dict[str, Any] = dict(zip(SessionRecord._PERSISTED, persisted, strict=True))
        data.update(zip(_MARK_FIELDS, marks, strict=True))
        data["session_id"] = session_id
        data["key"] = list(key)
        data["last_seen"] = iso_instant(last_seen)
        data["order"] = order
        data["scope_binding"] = scope_binding
        data["fas"] = list(fas)
        data["children"] = sorted(children)
        data["link"] = link.to_json() if link else None
        data["inherited"] = _inherited_json(inherited) if inherited else None
        return data


_read_persisted = operator.attrgetter(*SessionRecord._PERSISTED)
# What a restore sets; the rest of the persisted fields are the key's.
_RESTORED = tuple(name for name in SessionRecord._PERSISTED if name not in _KEY_FIELDS)
_read_marks = operator.attrgetter(*_MARK_FIELDS)
_NO_MARK_VALUES = list(_read_marks(NO_MARKS))
_UNBUILT = SessionView(session_id="", kind=SessionKind.UNKNOWN)
# Most sessions mint nothing: one empty set for all of them, replaced by a set of their own
# when they do (an empty set is 216 bytes).
NO_CHILDREN: frozenset[str] = frozenset()


def last_segment(arn: str | None) -> str | None:
    """The name at the end of an ARN ("role/path/Name" gives "Name")."""
    return arn.rsplit("/", 1)[-1] if arn else None


def _inherited_json(inherited: Inherited) -> dict[str, Any]:
    return {
        "session_id": inherited.session_id,
        "is_agent": inherited.is_agent,
        "agent": inherited.agent,
        "agent_confidence": inherited.agent_confidence,
        "base_kind": inherited.base_kind.value,
        "human": inherited.human,
        "root_arn": inherited.root_arn,
        "source_identity": inherited.source_identity,
        "transitive_tags": dict(inherited.transitive_tags),
        "role_arn": inherited.role_arn,
        "credentials": inherited.credentials.value,
        "delegated_by": inherited.delegated_by,
    }


def _inherited_from_json(data: Mapping[str, Any]) -> Inherited:
    tags = data.get("transitive_tags") or {}
    return Inherited(
        session_id=data["session_id"],
        is_agent=data["is_agent"],
        agent=data["agent"],
        agent_confidence=data["agent_confidence"],
        base_kind=SessionKind(data["base_kind"]),
        human=data["human"],
        root_arn=data["root_arn"],
        source_identity=data["source_identity"],
        transitive_tags=MappingProxyType(dict(tags)) if tags else NO_TAGS,
        role_arn=data.get("role_arn"),
        credentials=CredentialRelation(data.get("credentials", CredentialRelation.OWN.value)),
        delegated_by=data.get("delegated_by"),
    )
