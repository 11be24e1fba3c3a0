"""`trailguard scope explain`: why an event is inside or outside its session's scope."""

from __future__ import annotations

from pathlib import Path

from detector.config import Settings
from detector.core.actions import resolve_actions
from detector.core.catalog import RiskCatalog
from detector.core.events import CloudTrailEvent
from detector.core.parse import parse_record
from detector.core.resources import extract_resources
from detector.core.scope import ScopeSet
from detector.core.sessions import SessionTracker
from detector.errors import ConfigError, ParseError
from detector.records import BadInput
from detector.sources.files import read_bytes
from detector.wiring import build_pipeline


def explain_event(
    settings: Settings,
    scope_path: Path,
    raw: bytes,
    *,
    source: str,
    event_id: str | None = None,
) -> list[str]:
    """Lines explaining each event in `raw` (one event, a `Records` document or JSON Lines),
    or only the one whose eventID is `event_id`.

    Every event is attributed in order, so a later event's session knows what the earlier
    ones (an AssumeRole, an agent's marker) taught the tracker, as in replay.
    """
    # The same composition as replay: catalogue overrides, marker table, scope file.
    pipeline = build_pipeline(settings, scopes_path=scope_path)
    events = _events(raw, source)
    if not events:
        raise ConfigError(f"{source}: holds no CloudTrail event")
    if event_id is not None and all(e.event_id != event_id for e in events):
        raise ConfigError(f"{source}: no event with eventID {event_id!r} ({len(events)} read)")
    lines: list[str] = []
    for event in events:
        session_lines = _explain(event, pipeline.tracker, pipeline.scopes, pipeline.catalog)
        if event_id is None or event.event_id == event_id:
            if lines:
                lines.append("")
            lines.extend(session_lines)
    return lines


def _events(raw: bytes, source: str) -> list[CloudTrailEvent]:
    events = []
    for item in read_bytes(source, raw):
        if isinstance(item, BadInput):
            raise ConfigError(f"{item.origin}: {item.reason}")
        try:
            events.append(parse_record(item.value))
        except ParseError as exc:
            raise ConfigError(f"{item.origin}: {exc.reason}") from None
    return events


def _explain(
    event: CloudTrailEvent, tracker: SessionTracker, scopes: ScopeSet, catalog: RiskCatalog
) -> list[str]:
    session = tracker.observe(event)
    actions = resolve_actions(event.event_source, event.event_name)
    resources = extract_resources(event)
    lines = [
        f"event {event.event_id} at {event.event_time:%Y-%m-%dT%H:%M:%SZ}: "
        f"{event.event_source} {event.event_name} in {event.aws_region or '?'}",
        f"  IAM actions: {', '.join(actions) or '(none: not an IAM action)'}",
    ]
    for action in actions:
        c = catalog.classify(event, action)
        why = f" ({'; '.join(c.reasons)})" if c.reasons else ""
        lines.append(f"  {action}: {c.category.value}, tier {c.tier}{why}")
    lines.append(f"  resources: {', '.join(resources) or '(none found)'}")
    lines.append(
        f"  session {session.session_id}: {session.kind.value}"
        f"{' ' + session.agent if session.agent else ''}, principal {session.principal_arn}"
        f", source identity {session.source_identity or '-'}"
    )
    scope = scopes.bind(session)
    if scope is None:
        lines.append(f"  no scope in {scopes.source} binds this session: it is not a task session")
        return lines
    region, account, at = event.aws_region, event.account_id, event.event_time
    # The scope's own explanation opens with its name and ends with the verdict; only the
    # reasons for an out-of-scope verdict are added below it.
    lines.extend(
        "  " + line
        for line in scope.explain(
            actions=actions, resources=resources, region=region, account=account, at=at
        )
    )
    verdict = scope.evaluate(
        actions=actions, resources=resources, region=region, account=account, at=at
    )
    lines.extend(f"    {v.kind}: {v.reason}" for v in verdict.violations)
    return lines
