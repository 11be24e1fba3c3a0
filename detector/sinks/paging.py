"""The machinery the paging sinks share: fold records into incidents, deliver, remember.

`IncidentSink` is the Sink the service sees. Each batch's records are folded into one
incident per session (detector/sinks/incident.py); every incident that changed is handed to
the sink's `Notifier` (Alertmanager, PagerDuty, Slack, webhook), which decides what its
receiver needs to hear and delivers it; the incident is then written through to the state
store with what was delivered. `write` returns only once every change is delivered, so
`flush` before acknowledging sources has nothing left to do but report a background failure.

A periodic task, started in `open` and stopped in `close`, resolves incidents that are due
(revoked and quiet, or idle) and lets the notifier refresh what its receiver forgets
(Alertmanager drops alerts whose `endsAt` lapses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from detector.config import parse_section
from detector.core.taxonomy import Severity
from detector.errors import ConfigError, DetectorError
from detector.sinks import DEFAULT_CONTEXT, SinkContext
from detector.sinks.delivery import HttpDelivery, RetryPolicy
from detector.sinks.incident import Incident, session_updates
from detector.sinks.ledger import IncidentLedger

logger = logging.getLogger(__name__)

# Longest pause of the periodic task: how late a due resolution can be.
TICK_SECONDS = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PagingSettings:
    """Settings every paging sink takes, besides its receiver's."""

    # Alerts below this are not sent to this sink (default: every alert record).
    min_severity: Severity | None = None
    # Resolve a revoked session once no new alert came for this long after the revocation;
    # long enough for the page to go out and for calls made before the revocation to arrive.
    resolve_quiet_seconds: float = 300.0
    # A session with no new alert this long has ended: 12 hours outlasts any assumed-role
    # session. Alertmanager alerts resolve; a PagerDuty incident is left to people. Either
    # way the sink stops tracking it, which bounds what it holds.
    idle_seconds: float = 43_200.0
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    retry_first_seconds: float = 0.5
    retry_max_seconds: float = 10.0

    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=max(1, self.max_attempts),
            first_seconds=self.retry_first_seconds,
            max_seconds=self.retry_max_seconds,
        )


class Notifier(Protocol):
    """One receiver's way of hearing about incidents."""

    # How often `refresh` runs; None: never.
    refresh_seconds: float | None

    async def notify(self, incident: Incident, now: float) -> dict[str, Any]:
        """Deliver the incident's current state; return what was delivered (`Incident.sent`)."""
        ...

    async def refresh(self, incidents: Sequence[Incident], now: float) -> None: ...


def check_url(value: str, *, source: str, key: str) -> str:
    if not value:
        raise ConfigError(f"{source}: '{key}' is required")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{source}: '{key}' must be an http(s) URL, got {value!r}")
    return value


def require_one(value: str | None, file: str | None, *, source: str, key: str) -> None:
    """A secret is given inline or as a file (mounted from a secret store), never both; the
    file is read when the sink first needs it, so `config check` does not need it present."""
    if (value is None) == (file is None):
        raise ConfigError(f"{source}: '{key}' or '{key}_file': exactly one is required")


def load_secret(value: str | None, file: str | None) -> str:
    if value is not None:
        return value
    assert file is not None
    with open(file, encoding="utf-8") as handle:
        return handle.read().strip()


def settings_of(cls: type[Any], settings: Mapping[str, Any], context: SinkContext) -> Any:
    return parse_section(cls, dict(settings), source=context.source, key=context.key)


class IncidentSink:
    """A paging sink: the Sink protocol around one notifier and its delivered-incident ledger."""

    def __init__(
        self,
        name: str,
        *,
        notifier: Notifier,
        delivery: HttpDelivery,
        settings: PagingSettings,
        context: SinkContext = DEFAULT_CONTEXT,
    ) -> None:
        self.name = name
        self.notifier = notifier
        self.delivery = delivery
        self.settings = settings
        self._context = context
        self.ledger = IncidentLedger(name, context.store)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._last_refresh = 0.0

    def _now(self) -> float:
        return self._context.clock().timestamp()

    async def open(self) -> None:
        await self.delivery.open()
        await self.ledger.load()
        self._report_active()
        self._task = asyncio.create_task(self._periodic(), name=f"sink {self.name}")

    async def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        self._raise_failure()
        updates = session_updates(records, min_severity=self.settings.min_severity)
        async with self._lock:
            now = self._now()
            for session_id, update in updates.items():
                incident = await self.ledger.get(session_id) or Incident(session_id=session_id)
                # A revocation with no alert behind it (all below min_severity) is not tracked.
                if incident.apply(update, now) and incident.kinds:
                    self.ledger.keep(incident)
            await self._deliver_pending(now)

    async def flush(self) -> None:
        self._raise_failure()
        async with self._lock:
            await self._deliver_pending(self._now())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.delivery.close()

    async def tick(self) -> None:
        """One round of the periodic work: resolve what is due, refresh, retry what is pending."""
        async with self._lock:
            now = self._now()
            for incident in list(self.ledger.active.values()):
                reason = incident.due(
                    now,
                    quiet_seconds=self.settings.resolve_quiet_seconds,
                    idle_seconds=self.settings.idle_seconds,
                )
                if reason is not None:
                    incident.resolve(now, reason)
                    self.ledger.keep(incident)
            await self._deliver_pending(now)
            every = self.notifier.refresh_seconds
            if every is not None and now - self._last_refresh >= every:
                active = [i for i in self.ledger.active.values() if not i.pending]
                if active:
                    await self.notifier.refresh(active, now)
                self._last_refresh = now

    async def _deliver_pending(self, now: float) -> None:
        # What was delivered but not yet recorded (the store failed) is recorded first.
        await self.ledger.save_unsaved()
        for incident in sorted(self.ledger.pending(), key=lambda i: i.opened_at):
            version = incident.version
            try:
                incident.sent = await self.notifier.notify(incident, now)
            except DetectorError as exc:
                if not exc.retriable:
                    # The receiver refused the request itself: sending it again (at the
                    # shutdown flush, say) cannot help; the sink stays failed until restarted.
                    self._failure = exc
                raise
            incident.sent_version = version
            await self.ledger.save(incident)
            logger.info(
                "sink %s delivered incident",
                self.name,
                extra={
                    "session_id": incident.session_id,
                    "severity": incident.severity.label,
                    "status": incident.status,
                },
            )
        self._report_active()

    def _report_active(self) -> None:
        if self._context.metrics is not None:
            self._context.metrics.active(self.name, len(self.ledger.active))

    async def _periodic(self) -> None:
        pause = min(
            TICK_SECONDS,
            max(0.2, self.settings.resolve_quiet_seconds / 4),
            self.notifier.refresh_seconds or TICK_SECONDS,
        )
        while True:
            await asyncio.sleep(pause)
            try:
                await self.tick()
            except DetectorError as exc:
                if not exc.retriable:
                    # Surfaced by the next write or flush, which stops the service.
                    self._failure = exc
                    return
                logger.warning(
                    "sink %s: periodic delivery failed, next round retries: %s", self.name, exc
                )
            except Exception as exc:  # noqa: BLE001 - kept and raised by the next write
                self._failure = exc
                return

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure
