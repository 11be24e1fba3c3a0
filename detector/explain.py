"""`trailguard scope explain`: why one event is inside or outside its session's scope."""

from __future__ import annotations

from pathlib import Path

import orjson

from detector.config import Settings
from detector.core.actions import resolve_actions
from detector.core.parse import parse_record, unwrap
from detector.core.resources import extract_resources
from detector.errors import ConfigError, ParseError
from detector.wiring import build_pipeline


def explain_event(settings: Settings, scope_path: Path, raw: bytes, *, source: str) -> list[str]:
    # The same composition as replay: catalogue overrides, marker table, scope file.
    pipeline = build_pipeline(settings, scopes_path=scope_path)
    scopes, catalog, tracker = pipeline.scopes, pipeline.catalog, pipeline.tracker
    try:
        document = orjson.loads(raw)
        records = list(unwrap(document))
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON: {exc}") from None
    except ParseError as exc:
        raise ConfigError(f"{source}: {exc.reason}") from None
    lines: list[str] = []
    for position, record in records:
        try:
            event = parse_record(record)
        except ParseError as exc:
            raise ConfigError(
                f"{source}{':' + position if position else ''}: {exc.reason}"
            ) from None
        session = tracker.observe(event)
        actions = resolve_actions(event.event_source, event.event_name)
        resources = extract_resources(event)
        lines.append(
            f"event {event.event_id} at {event.event_time:%Y-%m-%dT%H:%M:%SZ}: "
            f"{event.event_source} {event.event_name} in {event.aws_region or '?'}"
        )
        lines.append(f"  IAM actions: {', '.join(actions) or '(none: not an IAM action)'}")
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
            lines.append(f"  no scope in {scope_path} binds this session: it is not a task session")
            continue
        lines.append(f"  bound to scope {scope.name} ({scope.source})")
        region, account, at = event.aws_region, event.account_id, event.event_time
        lines.extend(
            "    " + line
            for line in scope.explain(
                actions=actions, resources=resources, region=region, account=account, at=at
            )
        )
        verdict = scope.evaluate(
            actions=actions, resources=resources, region=region, account=account, at=at
        )
        if verdict.in_scope:
            lines.append("  verdict: IN SCOPE")
        else:
            lines.append("  verdict: OUT OF SCOPE")
            lines.extend(f"    {v.kind}: {v.reason}" for v in verdict.violations)
    return lines
