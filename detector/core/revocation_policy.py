"""The inline deny policy that revokes single sessions of a role (or an IAM user), as data.

Temporary credentials cannot be revoked; a deny evaluated on every request can. The policy
denies everything (`Action: *`) to requests whose `aws:userid` is the revoked session's
principalId (`role-id:session-name`), narrowed further where the session allows:

- `aws:SourceIdentity` equal to the session's source identity, when it has one;
- an `aws:TokenIssueTime` window around the session's issue time when its session name is
  shared with others (a person's own sessions, CI runners reusing one name), so the person's
  other credential sets, issued at other times, are not denied.

Keys in one `Condition` are ANDed, so each narrowed entry is a statement of its own. Entries
keyed on `aws:userid` alone share one statement per expiry hour, a list of ids (about 65
characters each), which is what lets one role hold ~140 of them in its 10,240-character inline
budget. Every statement's Sid carries the time after which its sessions have expired, so
pruning needs nothing but the document itself. Statements TrailGuard did not write are kept
as they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

POLICY_NAME = "TrailGuardSessionRevocations"
# Aggregate inline policy size: per role, per IAM user (IAM quotas, characters).
ROLE_INLINE_BUDGET = 10_240
USER_INLINE_BUDGET = 2_048

_GROUP = "TrailGuardU"  # + YYYYmmddHH: ids keyed on aws:userid alone, expiring before that hour
_SINGLE = "TrailGuardS"  # + YYYYmmddHHMM + 10 hex: one narrowed entry
_STAMP_HOUR = "%Y%m%d%H"
_STAMP_MINUTE = "%Y%m%d%H%M"


@dataclass(frozen=True, slots=True, kw_only=True)
class DenyKey:
    """The request-context values that single out one session."""

    user_id: str
    source_identity: str | None = None
    issued_from: datetime | None = None  # aws:TokenIssueTime >= this
    issued_until: datetime | None = None  # aws:TokenIssueTime < this

    @property
    def grouped(self) -> bool:
        return (
            self.source_identity is None and self.issued_from is None and self.issued_until is None
        )

    def describe(self) -> str:
        parts = [f"aws:userid={self.user_id}"]
        if self.source_identity is not None:
            parts.append(f"aws:SourceIdentity={self.source_identity}")
        if self.issued_from is not None and self.issued_until is not None:
            parts.append(
                f"aws:TokenIssueTime in [{iso(self.issued_from)}, {iso(self.issued_until)})"
            )
        return " and ".join(parts)

    def condition(self) -> dict[str, Any]:
        equals: dict[str, Any] = {"aws:userid": self.user_id}
        if self.source_identity is not None:
            equals["aws:SourceIdentity"] = self.source_identity
        condition: dict[str, Any] = {"StringEquals": equals}
        if self.issued_from is not None:
            condition["DateGreaterThanEquals"] = {"aws:TokenIssueTime": iso(self.issued_from)}
        if self.issued_until is not None:
            condition["DateLessThan"] = {"aws:TokenIssueTime": iso(self.issued_until)}
        return condition


@dataclass(frozen=True, slots=True, kw_only=True)
class DenyEntry:
    """One revoked session: its key, and when its credentials have surely expired."""

    key: DenyKey
    expires: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationDocument:
    entries: tuple[DenyEntry, ...] = ()
    foreign: tuple[Mapping[str, Any], ...] = ()  # statements someone else wrote: kept verbatim

    def covers(self, key: DenyKey) -> bool:
        """True when a request matching `key` is already denied by an entry."""
        for entry in self.entries:
            held = entry.key
            if held.user_id != key.user_id:
                continue
            if held.grouped or held == key:
                return True
        return False

    def pruned(self, now: datetime) -> RevocationDocument:
        kept = tuple(e for e in self.entries if e.expires > now)
        return RevocationDocument(entries=kept, foreign=self.foreign)

    def with_entry(self, entry: DenyEntry) -> RevocationDocument:
        return RevocationDocument(entries=(*self.entries, entry), foreign=self.foreign)

    def render(self) -> dict[str, Any]:
        statements: list[Mapping[str, Any]] = list(self.foreign)
        groups: dict[str, list[str]] = {}
        for entry in sorted(self.entries, key=lambda e: (e.expires, e.key.user_id)):
            if entry.key.grouped:
                ids = groups.setdefault(_GROUP + _hour_ceiling(entry.expires), [])
                if entry.key.user_id not in ids:
                    ids.append(entry.key.user_id)
            else:
                statements.append(_statement(_single_sid(entry), entry.key.condition()))
        for sid, ids in sorted(groups.items()):
            value: str | list[str] = ids[0] if len(ids) == 1 else ids
            statements.append(_statement(sid, {"StringEquals": {"aws:userid": value}}))
        return {"Version": "2012-10-17", "Statement": statements}

    def size(self) -> int:
        return policy_size(self.render())


def policy_size(document: Mapping[str, Any]) -> int:
    """Characters IAM counts against the inline budget. IAM leaves out white space; compact
    JSON still counts any inside values, so this errs on the large side."""
    return len(json.dumps(document, separators=(",", ":")))


def parse_document(document: Mapping[str, Any] | None) -> RevocationDocument:
    """Read back a policy this module rendered (plus anything added by hand)."""
    if not document:
        return RevocationDocument()
    raw = document.get("Statement") or []
    statements = [raw] if isinstance(raw, Mapping) else list(raw)
    entries: list[DenyEntry] = []
    foreign: list[Mapping[str, Any]] = []
    for statement in statements:
        parsed = _parse_statement(statement) if isinstance(statement, Mapping) else None
        if parsed is None:
            foreign.append(statement)
        else:
            entries.extend(parsed)
    return RevocationDocument(entries=tuple(entries), foreign=tuple(foreign))


@dataclass(frozen=True, slots=True, kw_only=True)
class MergePlan:
    """What to write: `document` is None when nothing needs writing."""

    document: RevocationDocument
    key: DenyKey | None  # the key used; None when already covered
    already_applied: bool
    pruned: int
    fallback: bool  # a less narrow key than the first choice was used to fit the budget
    size: int


class BudgetFull(Exception):
    """No candidate key fits in the budget, even after pruning."""

    def __init__(self, size: int, budget: int) -> None:
        super().__init__(f"policy would be {size} characters, over the budget of {budget}")
        self.size = size
        self.budget = budget


def merge(
    current: RevocationDocument,
    candidates: Sequence[DenyKey],
    *,
    expires: datetime,
    now: datetime,
    budget: int,
) -> MergePlan:
    """Add the first candidate key (narrowest first) that fits, after pruning expired ones.

    Never widens past the candidates: when none fits, BudgetFull, and the caller reports the
    revocation as failed instead of falling back to a deny that would hit the whole role.
    """
    if not candidates:
        raise ValueError("no candidate key")
    live = current.pruned(now)
    pruned = len(current.entries) - len(live.entries)
    if any(live.covers(key) for key in candidates):
        return MergePlan(
            document=live,
            key=None,
            already_applied=True,
            pruned=pruned,
            fallback=False,
            size=live.size(),
        )
    smallest = 0
    for index, key in enumerate(candidates):
        document = live.with_entry(DenyEntry(key=key, expires=expires))
        size = document.size()
        if size <= budget:
            return MergePlan(
                document=document,
                key=key,
                already_applied=False,
                pruned=pruned,
                fallback=index > 0,
                size=size,
            )
        smallest = size if not smallest else min(smallest, size)
    raise BudgetFull(smallest, budget)


def role_wide(issued_before: datetime) -> dict[str, Any]:
    """AWS's own "revoke active sessions" shape: every session issued before the time."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement(
                "TrailGuardRevokeOlderSessions",
                {"DateLessThan": {"aws:TokenIssueTime": iso(issued_before)}},
            )
        ],
    }


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- statements ---------------------------------------------------------------------------


def _statement(sid: str, condition: Mapping[str, Any]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition}


def _hour_ceiling(value: datetime) -> str:
    value = value.astimezone(UTC)
    floor = value.replace(minute=0, second=0, microsecond=0)
    ceiling = floor if floor == value else floor + timedelta(hours=1)
    return ceiling.strftime(_STAMP_HOUR)


def _single_sid(entry: DenyEntry) -> str:
    # Whole minutes, rounded up, so the entry is never pruned before it expires.
    value = entry.expires.astimezone(UTC)
    floor = value.replace(second=0, microsecond=0)
    ceiling = floor if floor == value else floor + timedelta(minutes=1)
    condition = json.dumps(entry.key.condition(), sort_keys=True)
    digest = hashlib.sha256(condition.encode()).hexdigest()[:10]
    return _SINGLE + ceiling.strftime(_STAMP_MINUTE) + digest


def _parse_statement(statement: Mapping[str, Any]) -> list[DenyEntry] | None:
    sid = statement.get("Sid")
    if not isinstance(sid, str) or statement.get("Effect") != "Deny":
        return None
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return None
    try:
        if sid.startswith(_GROUP):
            expires = datetime.strptime(sid[len(_GROUP) :], _STAMP_HOUR).replace(tzinfo=UTC)
            ids = condition["StringEquals"]["aws:userid"]
            ids = [ids] if isinstance(ids, str) else list(ids)
            return [DenyEntry(key=DenyKey(user_id=str(i)), expires=expires) for i in ids]
        if sid.startswith(_SINGLE):
            stamp = sid[len(_SINGLE) : len(_SINGLE) + 12]
            expires = datetime.strptime(stamp, _STAMP_MINUTE).replace(tzinfo=UTC)
            equals = condition["StringEquals"]
            since = condition.get("DateGreaterThanEquals", {}).get("aws:TokenIssueTime")
            until = condition.get("DateLessThan", {}).get("aws:TokenIssueTime")
            key = DenyKey(
                user_id=str(equals["aws:userid"]),
                source_identity=equals.get("aws:SourceIdentity"),
                issued_from=parse_iso(since) if since else None,
                issued_until=parse_iso(until) if until else None,
            )
            return [DenyEntry(key=key, expires=expires)]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return None
