"""CloudTrail LookupEvents poller: management events without a trail, for small setups.

Each poll asks every configured region for the events since the last position and hands the
runtime one batch per region, oldest first. Three properties of LookupEvents shape the code:

- Events reach LookupEvents minutes after they happen, so every poll re-reads from the
  position minus `overlap_seconds`; an eventID set (bounded to that window) drops repeats.
- Results come newest-first, page by page. A poll's window is fixed (StartTime, EndTime)
  so pages stay consistent; a window is delivered only once all its pages are in, because
  sessions must see events oldest-first. `max_pages_per_poll` bounds the calls made to one
  region per round; a larger window carries on in the next round.
- The API allows 2 requests/s per account per region: calls to one region are spaced, and
  ThrottlingException backs off and retries.

LookupEvents returns management events only (no S3 or Lambda data events); use a trail
source for those.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import boto3  # type: ignore[import-untyped, unused-ignore]
import orjson
from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]
from botocore.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    BotoCoreError,
    ClientError,
)

from detector.config import AT_LEAST_ONE, DISTINCT, NON_EMPTY, POSITIVE, Check, Where, parse_adapter
from detector.errors import StateError
from detector.records import BadInput, Record
from detector.sources.base import SOURCES, Batch, CheckpointStore, SourceBase
from detector.sources.polling import (
    Sleep,
    redeliverable_batch,
    sleep_until_stopped,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 50  # the largest MaxResults LookupEvents accepts
# LookupEvents allows 2 requests per second per account per region.
CALL_SPACING_SECONDS = 0.5
THROTTLE_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
THROTTLE_ATTEMPTS = 6
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# Hard bound on remembered eventIDs per region, in case a busy region fills the overlap window.
MAX_SEEN_IDS = 100_000
ClientFactory = Callable[[str], Any]
"""Region name → a boto3 CloudTrail client (or anything with the same `lookup_events`)."""


class _RestartWindow(Exception):
    """The NextToken was refused; the window is read again from its first page."""


@dataclass(slots=True)
class _Window:
    start: datetime
    end: datetime
    token: str | None = None
    events: list[Mapping[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Region:
    name: str
    client: Any = None
    start_from: datetime | None = None  # StartTime of the next window
    acked: datetime | None = None  # the last checkpoint saved
    done_up_to: datetime | None = None  # the newest event of any acked batch
    # Oldest event time of each batch handed out and not acked yet (nacked ones included):
    # the checkpoint never passes them, so a restart reads them again.
    unsettled: dict[int, datetime] = field(default_factory=dict)
    seen: dict[str, datetime] = field(default_factory=dict)  # eventID → eventTime
    window: _Window | None = None  # a window whose pages are not all read yet
    last_call: float = -math.inf


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupSettings:
    regions: Annotated[tuple[str, ...], DISTINCT]
    poll_interval_seconds: Annotated[float, POSITIVE] = 60
    overlap_seconds: Annotated[float, Check(low=0)] = 900
    # How far back to start when no checkpoint exists.
    lookback_seconds: Annotated[float, Check(low=0)] = 3600
    endpoint_url: Annotated[str, NON_EMPTY] | None = None
    max_pages_per_poll: Annotated[int, AT_LEAST_ONE] = 20


class LookupSource(SourceBase):
    """Polls CloudTrail LookupEvents in each configured region. Settings:

    `regions` (required list), `poll_interval_seconds` (60), `overlap_seconds` (900),
    `lookback_seconds` (3600, used when no checkpoint exists), `endpoint_url` (optional),
    `max_pages_per_poll` (20).
    """

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        *,
        where: Where | None = None,
        client_factory: ClientFactory | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        own = parse_adapter(LookupSettings, name, settings, where, section="sources")
        self.name = name
        self.regions = list(own.regions)
        self.poll_interval = own.poll_interval_seconds
        self.overlap = timedelta(seconds=own.overlap_seconds)
        self.lookback = timedelta(seconds=own.lookback_seconds)
        self.endpoint_url = own.endpoint_url
        self.max_pages = own.max_pages_per_poll
        self._client_factory = client_factory or self._boto3_client
        self._now = now or _utc_now
        self._sleep = sleep or self._wait
        self._store: CheckpointStore | None = None
        self._session: Any = None
        self._regions = {region: _Region(region) for region in self.regions}
        self._redeliver: deque[Batch] = deque()
        self._tokens = itertools.count()
        self._stopping = asyncio.Event()
        self._ready = False

    def attach(self, store: CheckpointStore) -> None:
        """Use `store` for positions. Call before `start`, which reads them."""
        self._store = store

    def checkpoint_name(self, region: str) -> str:
        return f"lookup:{self.name}:{region}"

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        for region in self._regions.values():
            # One at a time: creating boto3 clients concurrently is not thread-safe.
            region.client = await asyncio.to_thread(self._client_factory, region.name)
            region.acked = self._load_checkpoint(region.name)
            if region.acked is not None:
                region.start_from = region.acked - self.overlap
            else:
                region.start_from = self._now() - self.lookback

    async def stop(self) -> None:
        # Clients are left to the garbage collector: closing one under a call still running
        # in a worker thread would turn a clean stop into a failed request.
        self._stopping.set()

    async def batches(self) -> AsyncIterator[Batch]:
        while not self._stopping.is_set():
            async for batch in self.poll():
                yield batch
            if self._stopping.is_set():
                break
            # A nacked batch or an unfinished window goes on at once; otherwise wait.
            unfinished = any(r.window is not None for r in self._regions.values())
            if not self._redeliver and not unfinished:
                await self._sleep(self.poll_interval)

    async def poll(self) -> AsyncIterator[Batch]:
        """One round: batches to deliver again first, then at most one batch per region."""
        while self._redeliver:
            yield self._redeliver.popleft()
        for region in self._regions.values():
            if self._stopping.is_set():
                return
            batch = await self._poll_region(region)
            if batch is not None:
                yield batch

    async def _poll_region(self, region: _Region) -> Batch | None:
        if region.window is None:
            end = self._now()
            start = region.start_from if region.start_from is not None else end - self.lookback
            region.window = _Window(start=min(start, end), end=end)
        window = region.window
        for _ in range(self.max_pages):
            params: dict[str, Any] = {
                "StartTime": window.start,
                "EndTime": window.end,
                "MaxResults": PAGE_SIZE,
            }
            if window.token is not None:
                params["NextToken"] = window.token
            try:
                response = await self._call(region, params)
            except _RestartWindow:
                region.window = None
                return None
            if response is None:
                return None  # logged; the window carries on next round
            window.events.extend(response.get("Events") or ())
            window.token = response.get("NextToken") or None
            if window.token is None:
                region.window = None
                return self._finish(region, window)
        return None

    async def _call(self, region: _Region, params: dict[str, Any]) -> Mapping[str, Any] | None:
        """One LookupEvents request, spaced and retried on throttling; None when it failed."""
        delay = BACKOFF_FIRST_SECONDS
        for attempt in range(1, THROTTLE_ATTEMPTS + 1):
            wait = region.last_call + CALL_SPACING_SECONDS - time.monotonic()
            if wait > 0:
                await self._sleep(wait)
            if self._stopping.is_set():
                return None
            region.last_call = time.monotonic()
            try:
                # boto3 blocks; keep the event loop free for the runtime.
                response: Mapping[str, Any] = await asyncio.to_thread(
                    region.client.lookup_events, **params
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in THROTTLE_CODES:
                    if attempt < THROTTLE_ATTEMPTS:
                        logger.info(
                            "%s: LookupEvents throttled in %s; retrying in %.1fs",
                            self.name,
                            region.name,
                            delay,
                        )
                        await self._sleep(delay)
                        delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                    continue
                if code == "InvalidNextTokenException":
                    logger.warning(
                        "%s: LookupEvents in %s refused the page token; reading the window again",
                        self.name,
                        region.name,
                    )
                    raise _RestartWindow from exc
                logger.warning("%s: LookupEvents in %s failed: %s", self.name, region.name, exc)
                return None
            except BotoCoreError as exc:
                logger.warning("%s: LookupEvents in %s failed: %s", self.name, region.name, exc)
                return None
            self._ready = True
            return response
        logger.warning(
            "%s: LookupEvents in %s still throttled after %d attempts; trying next round",
            self.name,
            region.name,
            THROTTLE_ATTEMPTS,
        )
        return None

    def _finish(self, region: _Region, window: _Window) -> Batch | None:
        """The window's new events, oldest first, as one batch; remembers their ids."""
        fresh: list[tuple[datetime, Mapping[str, Any]]] = []
        newest: datetime | None = None
        # Pages are newest-first; reversed, a stable sort keeps equal times in arrival order.
        for event in reversed(window.events):
            when = _event_time(event) or window.start
            newest = when if newest is None or when > newest else newest
            event_id = event.get("EventId")
            if isinstance(event_id, str):
                if event_id in region.seen:
                    continue
                region.seen[event_id] = when
            fresh.append((when, event))
        if newest is not None:
            cursor = newest - self.overlap
            if region.start_from is None or cursor > region.start_from:
                region.start_from = cursor
        self._forget_old_ids(region)
        if not fresh:
            return None
        fresh.sort(key=lambda pair: pair[0])
        items = [self._decode(region.name, event) for _, event in fresh]
        low, high = fresh[0][0], fresh[-1][0]
        token = next(self._tokens)
        region.unsettled[token] = low
        return redeliverable_batch(
            self.name,
            items,
            on_ack=lambda: self._advance(region, token, high),
            requeue=self._redeliver.append,
        )

    def _forget_old_ids(self, region: _Region) -> None:
        """Ids older than the next StartTime cannot come back; past the hard bound, oldest go."""
        floor = region.start_from
        if floor is not None:
            region.seen = {i: t for i, t in region.seen.items() if t >= floor}
        if len(region.seen) > MAX_SEEN_IDS:
            newest = sorted(region.seen.items(), key=lambda pair: pair[1])[-MAX_SEEN_IDS:]
            region.seen = dict(newest)

    def _decode(self, region: str, event: Mapping[str, Any]) -> Record | BadInput:
        origin = f"{self.name}:{region}:{event.get('EventId', '?')}"
        raw = event.get("CloudTrailEvent")
        if not isinstance(raw, str):
            return BadInput(origin, "LookupEvents result has no CloudTrailEvent", dict(event))
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return BadInput(origin, f"CloudTrailEvent is not valid JSON: {exc}", raw)
        if not isinstance(value, dict):
            return BadInput(origin, "CloudTrailEvent is not a JSON object", raw)
        return Record(origin, value)

    def _advance(self, region: _Region, token: int, high: datetime) -> None:
        region.unsettled.pop(token, None)
        if region.done_up_to is None or high > region.done_up_to:
            region.done_up_to = high
        # Not past an older batch still out (a nacked one waiting to come again).
        position = min([region.done_up_to, *region.unsettled.values()])
        # Acks may arrive out of order; the position never moves back.
        if region.acked is not None and position <= region.acked:
            return
        region.acked = position
        if self._store is not None:
            self._store.save_checkpoint(self.checkpoint_name(region.name), _iso(position))

    def _load_checkpoint(self, region: str) -> datetime | None:
        if self._store is None:
            return None
        name = self.checkpoint_name(region)
        value = self._store.checkpoint(name)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise StateError(f"checkpoint {name!r} is not an ISO time: {value!r}") from None
        return _as_utc(parsed)

    def _boto3_client(self, region: str) -> Any:
        if self._session is None:
            self._session = boto3.session.Session()
        return self._session.client(
            "cloudtrail",
            region_name=region,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"mode": "standard"}),
        )

    async def _wait(self, seconds: float) -> None:
        await sleep_until_stopped(self._stopping, seconds)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    # CloudTrail times are UTC; a naive time can only mean UTC here.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _event_time(event: Mapping[str, Any]) -> datetime | None:
    value = event.get("EventTime")
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, str):
        try:
            return _as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _iso(moment: datetime) -> str:
    return _as_utc(moment).isoformat().replace("+00:00", "Z")


SOURCES.register("lookup", LookupSource)
