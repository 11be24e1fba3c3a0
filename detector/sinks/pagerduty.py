"""`pagerduty`: one PagerDuty incident per session through the Events API v2.

Every event for a session carries `dedup_key` `trailguard/<session_id>`: the first paging
alert triggers, later ones (a new kind, a higher severity; severity only rises) update the
same alert, and PagerDuty itself folds a repeated trigger into the open alert, so even an
event sent twice around a crash pages once. It resolves when the session was revoked and no
new alert came for `resolve_quiet_seconds`; an unrevoked session stays open for a person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from detector.core.taxonomy import Severity
from detector.sinks import DEFAULT_CONTEXT, SINKS, SinkContext
from detector.sinks.delivery import HttpDelivery
from detector.sinks.incident import RESOLVED, Incident
from detector.sinks.paging import (
    IncidentSink,
    PagingSettings,
    check_url,
    load_secret,
    require_one,
    settings_of,
)
from detector.sinks.wording import details, session_url, summary

EVENTS_API = "https://events.pagerduty.com/v2/enqueue"
# PagerDuty truncates summaries at 1024 characters; cut first so the end stays readable.
MAX_SUMMARY = 1024

PAGERDUTY_SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "info",
    Severity.INFO: "info",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PagerDutySettings(PagingSettings):
    routing_key: str | None = None
    routing_key_file: str | None = None
    url: str = EVENTS_API


def dedup_key(session_id: str) -> str:
    return f"trailguard/{session_id}"


class PagerDutyNotifier:
    refresh_seconds: float | None = None

    def __init__(
        self, settings: PagerDutySettings, delivery: HttpDelivery, public_url: str | None
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.public_url = public_url
        self._routing_key: str | None = None

    @property
    def routing_key(self) -> str:
        if self._routing_key is None:
            self._routing_key = load_secret(
                self.settings.routing_key, self.settings.routing_key_file
            )
        return self._routing_key

    def event(self, incident: Incident, now: float) -> dict[str, Any] | None:
        """The Events API v2 body for the incident's current state, or None to send nothing."""
        key = dedup_key(incident.session_id)
        if incident.status == RESOLVED:
            if not incident.sent.get("triggered") or incident.resolve_reason != "revoked":
                # Never paged, or merely idle: an unrevoked session's page is for a person
                # to resolve, not for TrailGuard to close because nothing new arrived.
                return None
            return {"routing_key": self.routing_key, "event_action": "resolve", "dedup_key": key}
        top = incident.headline()
        link = session_url(self.public_url, incident.session_id)
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": key,
            "client": "TrailGuard",
            "payload": {
                "summary": summary(incident)[:MAX_SUMMARY],
                "source": incident.principal or incident.session_id,
                "severity": PAGERDUTY_SEVERITY[incident.severity],
                "timestamp": datetime.fromtimestamp(now, UTC).isoformat(),
                "component": incident.agent or incident.session_kind,
                "group": incident.account or "unknown",
                "class": next(k for k, v in incident.kinds.items() if v is top),
                "custom_details": details(incident, self.public_url),
            },
        }
        if link:
            body["client_url"] = link
            body["links"] = [{"href": link, "text": "TrailGuard session page"}]
        return body

    async def notify(self, incident: Incident, now: float) -> dict[str, Any]:
        body = self.event(incident, now)
        if body is not None:
            await self.delivery.post(self.settings.url, orjson.dumps(body))
        return {"triggered": bool(body) or bool(incident.sent.get("triggered"))}

    async def refresh(self, incidents: Sequence[Incident], now: float) -> None:
        return None


def pagerduty_sink(
    name: str, settings: Mapping[str, Any], context: SinkContext = DEFAULT_CONTEXT
) -> IncidentSink:
    own: PagerDutySettings = settings_of(PagerDutySettings, settings, context)
    check_url(own.url, source=context.source, key=f"{context.key}.url")
    key = f"{context.key}.routing_key"
    require_one(own.routing_key, own.routing_key_file, source=context.source, key=key)
    delivery = HttpDelivery(
        name, timeout_seconds=own.timeout_seconds, retry=own.retry(), metrics=context.metrics
    )
    notifier = PagerDutyNotifier(own, delivery, context.public_url)
    return IncidentSink(name, notifier=notifier, delivery=delivery, settings=own, context=context)


SINKS.register("pagerduty", pagerduty_sink)
