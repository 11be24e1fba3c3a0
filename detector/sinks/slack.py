"""`slack`: one Block Kit message a person can act on, through an incoming webhook.

A message goes out when a session first pages, when its severity rises, and when its
revocation is decided or carried out: each says which agent, on whose behalf, in which task
scope, did what to which resource and why, what was or would be revoked, and links to the
session page. Incoming webhooks cannot edit a message, so each is complete on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from detector.sinks.wording import revocation, session_url, summary, who

# Block Kit limits: section text 3000 characters, header 150.
MAX_TEXT = 2900
MAX_HEADER = 150


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackSettings(PagingSettings):
    webhook_url: str | None = None
    webhook_url_file: str | None = None


def _revocation_state(incident: Incident) -> str:
    if incident.response is None:
        return "none"
    return "dry-run" if incident.response.get("dry_run", True) else "revoked"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _cut(text, MAX_TEXT)}


def message(incident: Incident, public_url: str | None, *, reason: str) -> dict[str, Any]:
    """The Block Kit body for the incident; `reason` says why this message was sent."""
    top = incident.headline()
    link = session_url(public_url, incident.session_id)
    resources = ", ".join(f"`{r}`" for r in top.resources[:5]) or "none named"
    fields = [
        ("Agent", incident.agent or f"{incident.session_kind} session"),
        ("On behalf of", incident.human or "nobody identified"),
        ("Task scope", incident.scope or "none bound"),
        ("Action", f"`{top.action}`" if top.action else top.title),
        ("Resource", resources),
        ("Account", incident.account or "unknown"),
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut(f"TrailGuard {incident.severity.label}: {who(incident)}", MAX_HEADER),
            },
        },
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_cut(v, 900)}"} for k, v in fields],
        },
        {
            "type": "section",
            "text": _mrkdwn(f"*Reason*\n{top.reason or top.title}"),
        },
        {
            "type": "section",
            "text": _mrkdwn(f"*Response*\n{revocation(incident)}"),
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _cut(
                        f"{reason} · session `{incident.session_id}` · findings: "
                        + ", ".join(
                            f"{k} ({v.severity.label})" for k, v in sorted(incident.kinds.items())
                        ),
                        MAX_TEXT,
                    ),
                }
            ],
        },
    ]
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open session page"},
                        "url": link,
                    }
                ],
            }
        )
    return {"text": _cut(summary(incident), MAX_TEXT), "blocks": blocks}


class SlackNotifier:
    refresh_seconds: float | None = None

    def __init__(self, settings: SlackSettings, delivery: HttpDelivery, public_url: str | None):
        self.settings = settings
        self.delivery = delivery
        self.public_url = public_url
        self._url: str | None = None

    def why(self, incident: Incident) -> str | None:
        """Why a message is due now, or None when the last one still says it all."""
        if incident.status == RESOLVED:
            return None
        sent = incident.sent
        if not sent:
            return "new"
        if Severity.parse(sent["severity"]) < incident.severity:
            return f"escalated from {sent['severity']}"
        state = _revocation_state(incident)
        if state != sent.get("revocation"):
            return "revoked" if state == "revoked" else "revocation decided (dry run)"
        return None

    async def notify(self, incident: Incident, now: float) -> dict[str, Any]:
        reason = self.why(incident)
        if reason is None:
            return incident.sent
        if self._url is None:
            self._url = load_secret(self.settings.webhook_url, self.settings.webhook_url_file)
        body = message(incident, self.public_url, reason=reason)
        await self.delivery.post(self._url, orjson.dumps(body))
        return {"severity": incident.severity.label, "revocation": _revocation_state(incident)}

    async def refresh(self, incidents: Sequence[Incident], now: float) -> None:
        return None


def slack_sink(
    name: str, settings: Mapping[str, Any], context: SinkContext = DEFAULT_CONTEXT
) -> IncidentSink:
    own: SlackSettings = settings_of(SlackSettings, settings, context)
    key = f"{context.key}.webhook_url"
    require_one(own.webhook_url, own.webhook_url_file, source=context.source, key=key)
    if own.webhook_url is not None:
        check_url(own.webhook_url, source=context.source, key=key)
    delivery = HttpDelivery(
        name, timeout_seconds=own.timeout_seconds, retry=own.retry(), metrics=context.metrics
    )
    notifier = SlackNotifier(own, delivery, context.public_url)
    return IncidentSink(name, notifier=notifier, delivery=delivery, settings=own, context=context)


SINKS.register("slack", slack_sink)
