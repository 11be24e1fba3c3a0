"""`alertmanager`: alerts to Prometheus Alertmanager's API v2 (`POST /api/v2/alerts`).

One Alertmanager alert per session and finding kind (`alertname` is the kind), each carrying
a `session` label, so a route with `group_by: [session]` turns a session into one
notification; Alertmanager's own deduplication by label set and its notification log make a
re-sent alert page no one twice. Active alerts are re-sent every `resend_seconds` with
`endsAt` `alert_ttl_seconds` ahead: if TrailGuard stops, they lapse and resolve on their own.
A session's alerts resolve (`endsAt` now) when it was revoked and stayed quiet, or went idle.
When a kind's severity rises the alert with the old `severity` label is resolved in the same
request, so a session never shows the same kind twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from detector.errors import ConfigError
from detector.sinks import DEFAULT_CONTEXT, SINKS, SinkContext
from detector.sinks.delivery import HttpDelivery, TlsSettings
from detector.sinks.incident import RESOLVED, Incident
from detector.sinks.paging import IncidentSink, PagingSettings, check_url, settings_of
from detector.sinks.wording import description, session_url

# Alerts per re-send request: keeps each body well under Alertmanager's request limits.
REFRESH_CHUNK = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertmanagerSettings(PagingSettings):
    url: str = ""  # required; checked by check_url
    headers: Mapping[str, Any] = field(default_factory=dict)
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_insecure_skip_verify: bool = False
    resend_seconds: float = 60.0
    alert_ttl_seconds: float = 300.0
    # `{kind}` is replaced by the finding kind.
    runbook_url: str | None = None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AlertmanagerNotifier:
    def __init__(
        self, settings: AlertmanagerSettings, delivery: HttpDelivery, public_url: str | None
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.public_url = public_url
        self.refresh_seconds: float | None = settings.resend_seconds
        self.endpoint = settings.url.rstrip("/") + "/api/v2/alerts"

    def alerts(self, incident: Incident, now: float) -> list[dict[str, Any]]:
        """The session's alerts as Alertmanager reads them, superseded severities resolved."""
        link = session_url(self.public_url, incident.session_id)
        resolved = incident.status == RESOLVED
        ends = incident.resolved_at if resolved and incident.resolved_at else now
        if not resolved:
            ends = now + self.settings.alert_ttl_seconds
        text = description(incident)
        sent: Mapping[str, str] = incident.sent.get("severities", {})
        body = []
        # When TrailGuard raised it, not when the event happened: Alertmanager sends a new
        # group at once, without its group_wait, when an alert's startsAt is older than that
        # wait, and the first page then holds whichever of the session's kinds it had taken
        # in by then (often one of five), the rest following a group_interval later.
        starts = min(incident.opened_at or now, now)
        for kind, evidence in sorted(incident.kinds.items()):
            annotations = {
                "summary": f"{evidence.title}",
                "description": text,
            }
            if evidence.first_seen:
                annotations["first_seen"] = evidence.first_seen
            if link:
                annotations["session_url"] = link
            if self.settings.runbook_url:
                annotations["runbook_url"] = self.settings.runbook_url.replace("{kind}", kind)
            # Labels stay as first sent: a label set that changed (an agent named later)
            # would be a second alert beside the first in Alertmanager.
            base = dict(incident.sent.get("labels", {}).get(kind) or self._labels(incident, kind))
            alert: dict[str, Any] = {
                "labels": {**base, "severity": evidence.severity.label},
                "annotations": annotations,
                "startsAt": _iso(starts),
                "endsAt": _iso(ends),
            }
            if link:
                alert["generatorURL"] = link
            body.append(alert)
            previous = sent.get(kind)
            if previous and previous != evidence.severity.label:
                body.append(
                    {
                        **alert,
                        "labels": {**base, "severity": previous},
                        "endsAt": _iso(now),
                    }
                )
        return body

    def _labels(self, incident: Incident, kind: str) -> dict[str, str]:
        labels = {
            "alertname": kind,
            "account": incident.account,
            "agent": incident.agent,
            "session_kind": incident.session_kind,
            "scope": incident.scope,
            "session": incident.session_id,
        }
        # Alertmanager treats an empty label as absent; leave it out rather than send "".
        return {k: v for k, v in labels.items() if v}

    async def notify(self, incident: Incident, now: float) -> dict[str, Any]:
        alerts = self.alerts(incident, now)
        await self._post(alerts)
        labels = {a["labels"]["alertname"]: a["labels"] for a in alerts}
        return {
            "severities": {k: ev.severity.label for k, ev in incident.kinds.items()},
            "labels": {
                kind: {k: v for k, v in values.items() if k != "severity"}
                for kind, values in labels.items()
            },
        }

    async def refresh(self, incidents: Sequence[Incident], now: float) -> None:
        body = [alert for incident in incidents for alert in self.alerts(incident, now)]
        for start in range(0, len(body), REFRESH_CHUNK):
            await self._post(body[start : start + REFRESH_CHUNK])

    async def _post(self, alerts: list[dict[str, Any]]) -> None:
        if alerts:
            await self.delivery.post(self.endpoint, orjson.dumps(alerts))


def alertmanager_sink(
    name: str, settings: Mapping[str, Any], context: SinkContext = DEFAULT_CONTEXT
) -> IncidentSink:
    own: AlertmanagerSettings = settings_of(AlertmanagerSettings, settings, context)
    check_url(own.url, source=context.source, key=f"{context.key}.url")
    if own.resend_seconds <= 0 or own.resend_seconds >= own.alert_ttl_seconds:
        raise ConfigError(
            f"{context.source}: '{context.key}.resend_seconds' must be above 0 and below "
            f"alert_ttl_seconds ({own.alert_ttl_seconds:g}), or alerts lapse between re-sends"
        )
    headers = {str(k): str(v) for k, v in own.headers.items()}
    tls = TlsSettings(
        ca_file=own.tls_ca_file,
        cert_file=own.tls_cert_file,
        key_file=own.tls_key_file,
        insecure_skip_verify=own.tls_insecure_skip_verify,
    )
    delivery = HttpDelivery(
        name,
        timeout_seconds=own.timeout_seconds,
        retry=own.retry(),
        metrics=context.metrics,
        tls=tls,
        headers=headers,
    )
    notifier = AlertmanagerNotifier(own, delivery, context.public_url)
    return IncidentSink(name, notifier=notifier, delivery=delivery, settings=own, context=context)


SINKS.register("alertmanager", alertmanager_sink)
