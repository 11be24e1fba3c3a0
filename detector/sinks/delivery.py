"""HTTP delivery for the paging sinks: one POST, retried with bounded, jittered backoff.

Which failures are worth retrying is decided here once for every sink: connection errors,
timeouts, 408, 429 and 5xx are (`DeliveryError.retriable`); any other 4xx means the request
itself is wrong (a bad routing key, a malformed body) and trying again cannot help.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from detector.errors import DetectorError
from detector.sinks import DeliveryMetrics

logger = logging.getLogger(__name__)

RETRIABLE_STATUS = frozenset({408, 425, 429})
# Longest Retry-After honoured: a receiver asking for more is treated as down for now.
MAX_RETRY_AFTER_SECONDS = 60.0


class DeliveryError(DetectorError):
    """A notification was not accepted. `retriable` says whether sending it again may work."""

    def __init__(
        self,
        message: str,
        *,
        retriable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """At most `attempts` tries; the n-th pause is uniform in [0, min(max, first * 2**n)]
    ("full jitter"), so many instances retrying one receiver do not hammer it in step."""

    attempts: int = 5
    first_seconds: float = 0.5
    max_seconds: float = 10.0

    def pause(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.max_seconds, self.first_seconds * (2**attempt))
        return rng.uniform(0.0, ceiling)


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False


def ssl_context(tls: TlsSettings) -> ssl.SSLContext | None:
    """None (aiohttp's default verification) unless something was configured."""
    if tls.ca_file is None and tls.cert_file is None and not tls.insecure_skip_verify:
        return None
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file is not None:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class HttpDelivery:
    """POSTs bodies to one receiver for one sink, counting every attempt's outcome."""

    def __init__(
        self,
        sink: str,
        *,
        timeout_seconds: float,
        retry: RetryPolicy,
        metrics: DeliveryMetrics | None,
        tls: TlsSettings | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.sink = sink
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._retry = retry
        self._metrics = metrics
        self._tls = tls or TlsSettings()
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self.sent = 0
        self.failed = 0

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(ssl=ssl_context(self._tls) or True)
        self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None

    async def post(
        self, url: str, body: bytes, *, headers: Mapping[str, str] | None = None
    ) -> bytes:
        """Deliver `body`; the response body on success. Raises DeliveryError after the
        last attempt (or at once when the failure is not retriable)."""
        merged = {"Content-Type": "application/json", **self._headers, **(headers or {})}
        attempt = 0
        while True:
            try:
                return await self._post_once(url, body, merged)
            except DeliveryError as exc:
                self.failed += 1
                if self._metrics is not None:
                    self._metrics.failed(self.sink, retriable=exc.retriable)
                attempt += 1
                if not exc.retriable or attempt >= self._retry.attempts:
                    raise
                pause = exc.retry_after or self._retry.pause(attempt, self._rng)
                logger.warning(
                    "sink %s: delivery failed (attempt %d of %d), retrying in %.2fs: %s",
                    self.sink,
                    attempt,
                    self._retry.attempts,
                    pause,
                    exc,
                )
                await asyncio.sleep(pause)

    async def _post_once(self, url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        if self._session is None:
            raise RuntimeError(f"sink {self.sink} is not open")
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                text = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            raise DeliveryError(f"{url}: no answer within the timeout", retriable=True) from None
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"{url}: {exc}", retriable=True) from None
        if 200 <= status < 300:
            self.sent += 1
            if self._metrics is not None:
                self._metrics.sent(self.sink)
            return text
        retriable = status in RETRIABLE_STATUS or status >= 500
        raise DeliveryError(
            f"{url}: HTTP {status}: {text[:300].decode('utf-8', 'replace')}",
            retriable=retriable,
            status=status,
            retry_after=_retry_after(retry_after),
        )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form), bounded."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
