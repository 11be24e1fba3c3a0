"""`webhook`: the incident as JSON to any HTTP endpoint, signed with HMAC-SHA256.

Each change of a session's incident is POSTed once: `event` is `trigger` (first), `update`
(new kind, higher severity, a revocation) or `resolve`. The body is signed with the shared
`secret`: `X-TrailGuard-Signature-256: sha256=<hex of HMAC-SHA256(secret, raw body)>`.
`X-TrailGuard-Delivery` (also `delivery_id` in the body) is the same for a delivery sent again
after a crash, so a receiver that remembers it can drop the repeat.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

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
from detector.sinks.wording import details, summary

SIGNATURE_HEADER = "X-TrailGuard-Signature-256"
DELIVERY_HEADER = "X-TrailGuard-Delivery"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings(PagingSettings):
    url: str = ""  # required; checked by check_url
    secret: str | None = None
    secret_file: str | None = None


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute over the raw body and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header)


class WebhookNotifier:
    refresh_seconds: float | None = None

    def __init__(
        self, settings: WebhookSettings, delivery: HttpDelivery, public_url: str | None
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.public_url = public_url
        self._secret: str | None = None

    def body(self, incident: Incident, now: float) -> dict[str, Any]:
        if incident.status == RESOLVED:
            event = "resolve"
        elif incident.sent.get("delivered"):
            event = "update"
        else:
            event = "trigger"
        return {
            "type": "trailguard.incident",
            "delivery_id": f"trailguard/{incident.session_id}/{incident.version}",
            "event": event,
            "sent_at": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "summary": summary(incident),
            **details(incident, self.public_url),
        }

    async def notify(self, incident: Incident, now: float) -> dict[str, Any]:
        if incident.status == RESOLVED and not incident.sent.get("delivered"):
            return incident.sent
        if self._secret is None:
            self._secret = load_secret(self.settings.secret, self.settings.secret_file)
        document = self.body(incident, now)
        raw = orjson.dumps(document)
        headers = {
            SIGNATURE_HEADER: sign(self._secret, raw),
            DELIVERY_HEADER: document["delivery_id"],
        }
        await self.delivery.post(self.settings.url, raw, headers=headers)
        return {"delivered": True}

    async def refresh(self, incidents: Sequence[Incident], now: float) -> None:
        return None


def webhook_sink(
    name: str, settings: Mapping[str, Any], context: SinkContext = DEFAULT_CONTEXT
) -> IncidentSink:
    own: WebhookSettings = settings_of(WebhookSettings, settings, context)
    check_url(own.url, source=context.source, key=f"{context.key}.url")
    require_one(own.secret, own.secret_file, source=context.source, key=f"{context.key}.secret")
    delivery = HttpDelivery(
        name, timeout_seconds=own.timeout_seconds, retry=own.retry(), metrics=context.metrics
    )
    notifier = WebhookNotifier(own, delivery, context.public_url)
    return IncidentSink(name, notifier=notifier, delivery=delivery, settings=own, context=context)


SINKS.register("webhook", webhook_sink)
