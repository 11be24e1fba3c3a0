"""A task scope proposed from what one session (or principal) was seen doing.

Actions are kept exactly as the project resolves them (never widened to `service:*`), so the
proposal is as narrow as the history; resources are generalised by `arn_patterns`; regions
and accounts are the ones seen. Calls IAM refused (AccessDenied and the like) were never
allowed, so they are reported beside the scope, not put in it. Other failed calls
(NoSuchEntity, throttling) were authorised and count as allowed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from detector.core.actions import resolve_actions
from detector.core.arn_patterns import ResourcePattern, generalise
from detector.core.events import CloudTrailEvent
from detector.core.resources import extract_resources
from detector.core.session_view import SessionView


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What one event contributes: its IAM actions, resources, where, and whether refused."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    region: str
    account: str | None
    at: datetime
    denied: bool
    error_code: str | None

    @classmethod
    def of(cls, event: CloudTrailEvent) -> Observation:
        # The same action resolution and resource extraction the pipeline checks scopes with.
        return cls(
            actions=resolve_actions(event.event_source, event.event_name),
            resources=extract_resources(event),
            region=event.aws_region,
            account=event.account_id,
            at=event.event_time,
            denied=event.denied,
            error_code=event.error_code,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SeenAction:
    action: str
    calls: int
    failed: int  # authorised but failed (not found, throttled, ...)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeniedAction:
    action: str
    calls: int
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposedScope:
    """A scope ready to render; counts are for the comments that help a person edit it.

    match    (field, value) pairs in the scope-file schema's `match` terms
    regions  (region, events) pairs; empty when no event recorded one
    """

    name: str
    description: str
    match: tuple[tuple[str, str], ...]
    actions: tuple[SeenAction, ...]
    denied: tuple[DeniedAction, ...]
    resources: tuple[ResourcePattern, ...]
    regions: tuple[tuple[str, int], ...]
    accounts: tuple[str, ...]
    events: int
    first_seen: datetime | None
    last_seen: datetime | None


def match_for(view: SessionView) -> tuple[tuple[str, str], ...]:
    """How the proposed scope binds sessions like this one.

    A SourceIdentity names the task's credentials; else a role binds all of its sessions
    (session names change per run); else the principal itself (an IAM user, root).
    """
    if view.source_identity:
        return (("source_identity", view.source_identity),)
    if view.role_arn:
        return (("role_arn", view.role_arn),)
    if view.principal_arn:
        return (("principal_arn", view.principal_arn),)
    # Nothing names the credentials: bind the session's own account, for a person to narrow.
    return (("account", view.account_id or "*"),)


def propose(
    observations: Iterable[Observation],
    *,
    name: str,
    description: str,
    match: tuple[tuple[str, str], ...],
) -> ProposedScope:
    """The narrowest scope that admits every observed call that was not refused."""
    calls: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    refused_codes: dict[str, set[str]] = {}
    arns: set[str] = set()
    regions: Counter[str] = Counter()
    accounts: set[str] = set()
    events = 0
    first: datetime | None = None
    last: datetime | None = None
    for seen in observations:
        events += 1
        first = seen.at if first is None or seen.at < first else first
        last = seen.at if last is None or seen.at > last else last
        if seen.denied:
            for action in seen.actions:
                refused[action] += 1
                refused_codes.setdefault(action, set()).add(seen.error_code or "denied")
            continue
        for action in seen.actions:
            calls[action] += 1
            if seen.error_code is not None:
                failed[action] += 1
        arns.update(seen.resources)
        if seen.region:
            regions[seen.region] += 1
        if seen.account:
            accounts.add(seen.account)
    return ProposedScope(
        name=name,
        description=description,
        match=match,
        actions=tuple(
            SeenAction(action=a, calls=calls[a], failed=failed[a]) for a in sorted(calls, key=_key)
        ),
        denied=tuple(
            DeniedAction(action=a, calls=refused[a], codes=tuple(sorted(refused_codes[a])))
            for a in sorted(refused, key=_key)
            if a not in calls
        ),
        resources=generalise(arns),
        regions=tuple(sorted(regions.items())),
        accounts=tuple(sorted(accounts)),
        events=events,
        first_seen=first,
        last_seen=last,
    )


def _key(action: str) -> tuple[str, str]:
    service, _, name = action.partition(":")
    return service.lower(), name.lower()
