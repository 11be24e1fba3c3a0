"""CloudTrail records announced on an SQS queue: S3 log-file notifications and EventBridge events.

CloudTrail writes gzipped log files to S3 and the bucket notifies an SQS queue, directly or
through SNS. An EventBridge rule can also send CloudTrail events to the queue one by one. Each
SQS message becomes one Batch: the records of the objects it names, or the record it carries.

Delivery is at least once. A message is deleted when its batch is acked, or when there is
nothing in it to process (an `s3:TestEvent`, a digest file, an object that is not a CloudTrail
log). A batch the runtime nacks is made visible again at once (visibility 0), so this or
another instance processes it again; an object that fails to download comes back after a
short backoff. A poison message (an object that cannot be decoded, or one received more than
`max_receive_count` times) goes to `dead_letter_queue_url` with the error and is then deleted.
Without a dead-letter queue it is left for the queue's own redrive policy. A message naming
several objects is dead-lettered whole if one of them is poison.

Stopping: `stop()` interrupts the long poll. Messages received but not yet handed out are made
visible again at once, so another instance picks them up without waiting for the visibility
timeout. `batches()` then ends. The clients stay open until every batch handed out has been
acked or nacked, so the runtime can settle what it is still processing, and then close by
themselves. `wait_closed()` (after the runtime's final flush), or `stop()` once `batches()`
has ended, closes them at once; a batch settled after that raises TransientError and its
message is simply delivered again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote_plus

import orjson
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import AioSession  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    NoRegionError,
)

from detector.config import AT_LEAST_ONE, NON_EMPTY, URL, Check, Where, parse_adapter
from detector.errors import ConfigError, DetectorError, ParseError, TransientError
from detector.records import BadInput, Record
from detector.sources.aws_errors import (
    NETWORK_ERRORS,
    describe,
    error_code,
    is_transient,
    object_error,
)
from detector.sources.base import SOURCES, Batch, Source, SourceBase
from detector.sources.s3_notifications import (
    CLOUDTRAIL_KEY,
    DIGEST_MARKER,
    SNIFF_BYTES,
    decode_object,
    dig,
    holds_records,
    is_sns,
    s3_records,
    unwrapped,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Retries of one S3 or SQS call before the message is given back to the queue.
CALL_ATTEMPTS = 4
FIRST_RETRY_DELAY = 0.5
# The receive loop never gives up; its pauses grow to this.
MAX_RECEIVE_DELAY = 60.0
# Without long polling an empty queue would be asked again at once.
IDLE_PAUSE = 1.0
# A retriable failure comes back after BASE * 2^(receives - 1) seconds, capped by the timeout.
NACK_BACKOFF_BASE = 5
# SQS message attributes are small; the full error is in the logs.
MAX_ERROR_CHARS = 1024
MAX_RAW_CHARS = 4096

NO_SUCH_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SqsS3Settings:
    queue_url: Annotated[str, URL]
    # Taken from the queue URL when not given (https://sqs.<region>.amazonaws.com/...).
    region: Annotated[str, NON_EMPTY] | None = None
    endpoint_url: Annotated[str, URL] | None = None
    wait_time_seconds: Annotated[int, Check(low=0, high=20)] = 20
    max_messages: Annotated[int, Check(low=1, high=10)] = 10
    visibility_timeout: Annotated[int, Check(low=0, high=43_200)] = 300
    extend_visibility_above_bytes: Annotated[int, Check(low=0)] = 16 * 1024 * 1024
    max_receive_count: Annotated[int, AT_LEAST_ONE] = 5
    dead_letter_queue_url: Annotated[str, URL] | None = None

    @classmethod
    def from_mapping(
        cls, name: str, settings: Mapping[str, Any], *, where: Where | None = None
    ) -> SqsS3Settings:
        """Validate one source entry's settings; errors name the key as the user wrote it."""
        parsed = parse_adapter(cls, name, settings, where, section="sources")
        return replace(parsed, region=parsed.region or _region_of(parsed.queue_url))


def _region_of(queue_url: str) -> str | None:
    """Queue URLs name their region (https://sqs.eu-west-1.amazonaws.com/...)."""
    match = re.match(r"^https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com", queue_url)
    return match.group(1) if match else None


@dataclass(slots=True)
class _Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    received_at: float  # monotonic
    settled: bool = False

    @property
    def origin(self) -> str:
        return f"sqs:{self.message_id}"


class _Stopped(Exception):
    """stop() was called while waiting on the queue."""


class SqsS3Source(SourceBase):
    """Reads one SQS queue; `counters()` reports its deletes, dead letters and skips."""

    def __init__(self, name: str, settings: SqsS3Settings) -> None:
        self.name = name
        self.settings = settings
        self.received_messages = 0
        self.deleted_messages = 0
        self.dead_lettered_messages = 0
        self.requeued_messages = 0  # given back to the queue after a retriable failure
        self.released_messages = 0  # made visible again unprocessed at stop
        self.skipped_test_events = 0
        self.skipped_digests = 0
        self.skipped_objects = 0
        self.visibility_extensions = 0
        self.failed_calls = 0  # S3 and SQS calls that failed (each is retried or reported)
        self._ready = False
        self._stopping = asyncio.Event()
        self._stack: AsyncExitStack | None = None
        self._closed = False
        self._sqs: Any = None
        self._s3: Any = None
        self._iterating = False
        self._buffer: deque[_Message] = deque()
        self._outstanding: dict[str, _Message] = {}  # by receipt handle

    @property
    def ready(self) -> bool:
        return self._ready

    def counters(self) -> Mapping[str, int]:
        return {
            "received_messages": self.received_messages,
            "deleted_messages": self.deleted_messages,
            "dead_lettered_messages": self.dead_lettered_messages,
            "requeued_messages": self.requeued_messages,
            "released_messages": self.released_messages,
            "skipped_test_events": self.skipped_test_events,
            "skipped_digests": self.skipped_digests,
            "skipped_objects": self.skipped_objects,
            "visibility_extensions": self.visibility_extensions,
            "failed_calls": self.failed_calls,
        }

    async def start(self) -> None:
        if self._stack is not None:
            return
        config = AioConfig(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=10,
            # A long poll holds the connection for up to wait_time_seconds.
            read_timeout=self.settings.wait_time_seconds + 40,
        )
        session = AioSession()
        stack = AsyncExitStack()
        options = {
            "region_name": self.settings.region,
            "endpoint_url": self.settings.endpoint_url,
            "config": config,
        }
        try:
            self._sqs = await stack.enter_async_context(session.create_client("sqs", **options))
            self._s3 = await stack.enter_async_context(session.create_client("s3", **options))
        except NoRegionError:
            await stack.aclose()
            raise ConfigError(
                f"'sources.{self.name}.region' is not set and the queue URL names no region"
            ) from None
        self._stack = stack
        await self._check_queue("queue_url", self.settings.queue_url)
        if self.settings.dead_letter_queue_url:
            await self._check_queue("dead_letter_queue_url", self.settings.dead_letter_queue_url)

    async def _check_queue(self, key: str, url: str) -> None:
        """A queue that does not exist is a configuration error; anything else can wait.

        The receive loop reports access and network problems as they happen: a role may
        lack GetQueueAttributes and still consume the queue.
        """
        try:
            response = await self._sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["RedrivePolicy"]
            )
        except ClientError as exc:
            if error_code(exc) in NO_SUCH_QUEUE:
                await self._close()
                raise ConfigError(f"'sources.{self.name}.{key}': no such queue {url}") from None
            logger.warning("source %s: cannot inspect %s: %s", self.name, url, describe(exc))
            return
        except (BotoCoreError, *NETWORK_ERRORS) as exc:
            logger.warning("source %s: cannot inspect %s: %s", self.name, url, describe(exc))
            return
        attributes = response.get("Attributes", {})
        if (
            key == "queue_url"
            and not self.settings.dead_letter_queue_url
            and "RedrivePolicy" not in attributes
        ):
            logger.warning(
                "source %s: %s has no redrive policy and no dead_letter_queue_url is set; "
                "a poison message will be received again and again",
                self.name,
                url,
            )

    async def stop(self) -> None:
        self._stopping.set()
        if not self._iterating:
            # batches() is not being read (never was, or has ended): close now. A batch still
            # unsettled can no longer be acked; its message simply comes back.
            await self._close()

    async def wait_closed(self) -> None:
        """After the runtime's final flush: close the clients, whatever is still unsettled.

        A batch settled after this raises TransientError; its message comes back to the
        queue when its visibility timeout lapses.
        """
        self._stopping.set()
        await self._close()

    async def batches(self) -> AsyncIterator[Batch]:
        if self._stack is None:
            raise RuntimeError(f"source {self.name}: start() was not called")
        if self._iterating:
            raise RuntimeError(f"source {self.name}: batches() is already being read")
        self._iterating = True
        try:
            while True:
                if self._stopping.is_set():
                    break
                if not self._buffer:
                    self._buffer.extend(await self._receive())
                    continue
                message = self._buffer.popleft()
                batch = await self._batch_for(message)
                if batch is not None:
                    yield batch
        finally:
            self._iterating = False
            await self._release_buffer()
            await self._close_if_drained()

    # --- receiving ---------------------------------------------------------------------

    async def _receive(self) -> list[_Message]:
        """One ReceiveMessage call, repeated with growing pauses until it works or we stop."""
        delay = FIRST_RETRY_DELAY
        while not self._stopping.is_set():
            try:
                response = await self._unless_stopped(
                    self._sqs.receive_message(
                        QueueUrl=self.settings.queue_url,
                        MaxNumberOfMessages=self.settings.max_messages,
                        WaitTimeSeconds=self.settings.wait_time_seconds,
                        VisibilityTimeout=self.settings.visibility_timeout,
                        MessageSystemAttributeNames=["ApproximateReceiveCount"],
                    )
                )
            except _Stopped:
                return []
            except (ClientError, BotoCoreError, *NETWORK_ERRORS) as exc:
                # Never fatal: the queue may be throttling, unreachable or briefly denied.
                self.failed_calls += 1
                level = logging.WARNING if is_transient(exc) else logging.ERROR
                logger.log(level, "source %s: ReceiveMessage: %s", self.name, describe(exc))
                await self._pause(_jittered(delay))
                delay = min(delay * 2, MAX_RECEIVE_DELAY)
                continue
            self._ready = True
            now = time.monotonic()
            messages = [
                _Message(
                    message_id=raw["MessageId"],
                    receipt_handle=raw["ReceiptHandle"],
                    body=raw.get("Body", ""),
                    receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                    received_at=now,
                )
                for raw in response.get("Messages", [])
            ]
            self.received_messages += len(messages)
            if not messages and self.settings.wait_time_seconds == 0:
                await self._pause(IDLE_PAUSE)
            return messages
        return []

    async def _unless_stopped(self, call: Coroutine[Any, Any, T]) -> T:
        """Await `call`, abandoning it if stop() is called first.

        Abandoning a long poll is safe: SQS either had not picked messages yet, or the ones
        it picked reappear after their visibility timeout.
        """
        task = asyncio.ensure_future(call)
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            # Even when stop() came at the same moment, messages already received are kept:
            # they are released at once instead of hiding for the visibility timeout.
            return task.result()
        with suppress(asyncio.CancelledError):
            await task
        raise _Stopped

    async def _pause(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # --- one message -------------------------------------------------------------------

    async def _batch_for(self, message: _Message) -> Batch | None:
        """The batch for one message, or None when the message was settled here."""
        if time.monotonic() - message.received_at > self.settings.visibility_timeout / 2:
            # It waited behind the rest of its receive; keep it ours while it is read.
            await self._extend(message)
        try:
            items = await self._decode(message)
        except (ParseError, TransientError) as exc:
            await self._fail(message, exc)
            return None
        except Exception as exc:
            # A defect must not stop the source; the receive count decides when to give up.
            logger.exception("source %s: %s: unexpected error", self.name, message.origin)
            await self._fail(message, exc)
            return None
        if items is None:
            await self._delete_quietly(message)
            return None
        self._outstanding[message.receipt_handle] = message

        async def ack() -> None:
            await self._ack(message)

        async def nack(exc: BaseException) -> None:
            await self._nack(message, exc)

        return Batch(source=self.name, items=items, ack=ack, nack=nack)

    async def _decode(self, message: _Message) -> list[Record | BadInput] | None:
        """Items for the message; None when it holds nothing to process."""
        origin = message.origin
        try:
            document = orjson.loads(message.body)
        except orjson.JSONDecodeError as exc:
            return [
                BadInput(origin, f"message body is not JSON: {exc}", message.body[:MAX_RAW_CHARS])
            ]
        if is_sns(document):
            try:
                document = orjson.loads(document["Message"])
            except orjson.JSONDecodeError as exc:
                return [BadInput(origin, f"SNS Message is not JSON: {exc}", document)]
        if isinstance(document, dict) and document.get("Event") == "s3:TestEvent":
            self.skipped_test_events += 1
            return None
        notifications = s3_records(document)
        if notifications is None:
            # The message carries CloudTrail itself: an EventBridge event or a record.
            return unwrapped(origin, document)
        items: list[Record | BadInput] = []
        processed = False
        for index, notification in enumerate(notifications):
            result = await self._notification(message, f"{origin}:Records[{index}]", notification)
            if result is not None:
                processed = True
                items.extend(result)
        return items if processed else None

    async def _notification(
        self, message: _Message, origin: str, notification: Mapping[str, Any]
    ) -> list[Record | BadInput] | None:
        """Items of the object one S3 event names; None when the object is skipped."""
        event_name = notification.get("eventName")
        if not isinstance(event_name, str) or not event_name.startswith("ObjectCreated:"):
            self.skipped_objects += 1  # deletions, restores, lifecycle: no new records
            return None
        s3 = notification.get("s3")
        bucket = dig(s3, "bucket", "name")
        raw_key = dig(s3, "object", "key")
        if not isinstance(bucket, str) or not isinstance(raw_key, str) or not bucket:
            return [BadInput(origin, "S3 event without bucket name or object key", notification)]
        key = unquote_plus(raw_key)
        if DIGEST_MARKER in key:
            self.skipped_digests += 1
            return None
        url = f"s3://{bucket}/{key}"
        if CLOUDTRAIL_KEY.search(key):
            data = await self._fetch(message, bucket, key)
        else:
            head, complete = await self._fetch_head(bucket, key)
            if not holds_records(head):
                self.skipped_objects += 1
                return None
            data = head if complete else await self._fetch(message, bucket, key)
        return await asyncio.to_thread(decode_object, url, data)

    # --- S3 ------------------------------------------------------------------------------

    async def _fetch(self, message: _Message, bucket: str, key: str) -> bytes:
        url = f"s3://{bucket}/{key}"
        extended = False

        async def attempt() -> bytes:
            nonlocal extended
            response = await self._s3.get_object(Bucket=bucket, Key=key)
            size = int(response.get("ContentLength") or 0)
            if size > self.settings.extend_visibility_above_bytes and not extended:
                # Reading and decoding a large file may outlast what is left of the timeout.
                extended = True
                await self._extend(message)
            async with response["Body"] as body:
                data: bytes = await body.read()
            return data

        try:
            return await self._retrying(f"GetObject {url}", attempt)
        except (ClientError, BotoCoreError) as exc:
            raise object_error(url, exc) from exc

    async def _fetch_head(self, bucket: str, key: str) -> tuple[bytes, bool]:
        """The first SNIFF_BYTES of an object, and whether that is all of it."""
        url = f"s3://{bucket}/{key}"

        async def attempt() -> tuple[bytes, bool]:
            response = await self._s3.get_object(
                Bucket=bucket, Key=key, Range=f"bytes=0-{SNIFF_BYTES - 1}"
            )
            async with response["Body"] as body:
                data: bytes = await body.read()
            total = str(response.get("ContentRange") or "").rpartition("/")[2]
            complete = not total.isdigit() or len(data) >= int(total)
            return data, complete

        try:
            return await self._retrying(f"GetObject {url}", attempt)
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) == "InvalidRange":  # an empty object has no first byte
                return b"", True
            raise object_error(url, exc) from exc

    # --- settling ----------------------------------------------------------------------

    async def _ack(self, message: _Message) -> None:
        if message.settled:
            return
        message.settled = True
        self._outstanding.pop(message.receipt_handle, None)
        try:
            await self._delete(message)
        finally:
            await self._close_if_drained()

    async def _nack(self, message: _Message, exc: BaseException) -> None:
        if message.settled:
            return
        message.settled = True
        self._outstanding.pop(message.receipt_handle, None)
        try:
            await self._fail(message, exc, nacked=True)
        finally:
            await self._close_if_drained()

    async def _fail(self, message: _Message, exc: BaseException, *, nacked: bool = False) -> None:
        """Give the message back for another try, or dead-letter it if it cannot succeed.

        Reading the message: TrailGuard's own errors say whether they are retriable; any
        other error (a defect) carries no verdict, so it is retried, after a backoff, until
        the message has been received more than max_receive_count times. A runtime nack
        (`nacked`) says the batch could not be finished (a sink down, a shard fenced, a
        stop), not that the message is bad: it comes back at once, and only the receive
        count sends it to the dead-letter queue.
        """
        poison = not nacked and isinstance(exc, DetectorError) and not exc.retriable
        worn_out = message.receive_count > self.settings.max_receive_count
        error = describe(exc)
        if not (poison or worn_out):
            logger.warning("source %s: %s will be retried: %s", self.name, message.origin, error)
            backoff = 0 if nacked else NACK_BACKOFF_BASE * 2 ** min(message.receive_count - 1, 16)
            await self._set_visibility(message, min(self.settings.visibility_timeout, backoff))
            self.requeued_messages += 1
            return
        if not self.settings.dead_letter_queue_url or self._closed:
            logger.error(
                "source %s: %s cannot be processed (%s); left for the queue's redrive policy",
                self.name,
                message.origin,
                error,
            )
            return
        try:
            await self._dead_letter(message, error)
        except (TransientError, ClientError, BotoCoreError):
            # Not in the dead-letter queue, so it must stay on this one.
            logger.exception("source %s: %s: not dead-lettered", self.name, message.origin)
            return
        self.dead_lettered_messages += 1
        logger.warning("source %s: %s dead-lettered: %s", self.name, message.origin, error)
        # If this fails the message returns and is dead-lettered once more: a duplicate
        # in the dead-letter queue, never a loss.
        await self._delete_quietly(message)

    async def _dead_letter(self, message: _Message, error: str) -> None:
        """Send the body unchanged, so the message can be redriven after a fix."""
        url = self.settings.dead_letter_queue_url
        params: dict[str, Any] = {
            "QueueUrl": url,
            "MessageBody": message.body,
            "MessageAttributes": {
                "TrailGuard.Error": _string(error[:MAX_ERROR_CHARS]),
                "TrailGuard.Source": _string(self.name),
                "TrailGuard.Queue": _string(self.settings.queue_url),
                "TrailGuard.MessageId": _string(message.message_id),
                "TrailGuard.ReceiveCount": {
                    "DataType": "Number",
                    "StringValue": str(message.receive_count),
                },
            },
        }
        if url and url.endswith(".fifo"):
            params["MessageGroupId"] = self.name
            params["MessageDeduplicationId"] = message.message_id
        await self._retrying("SendMessage (dead letter)", lambda: self._sqs.send_message(**params))

    async def _delete(self, message: _Message) -> None:
        if self._closed:
            raise TransientError(f"source {self.name} is stopped; {message.origin} will return")
        try:
            await self._retrying(
                "DeleteMessage",
                lambda: self._sqs.delete_message(
                    QueueUrl=self.settings.queue_url, ReceiptHandle=message.receipt_handle
                ),
            )
        except (TransientError, ClientError, BotoCoreError) as exc:
            raise TransientError(f"{message.origin} not deleted: {describe(exc)}") from exc
        self.deleted_messages += 1

    async def _delete_quietly(self, message: _Message) -> None:
        try:
            await self._delete(message)
        except TransientError as exc:
            logger.warning("source %s: %s", self.name, exc)

    async def _extend(self, message: _Message) -> None:
        await self._set_visibility(message, self.settings.visibility_timeout)
        self.visibility_extensions += 1

    async def _set_visibility(self, message: _Message, seconds: int) -> None:
        """Best effort: if it fails the message still returns when its timeout lapses."""
        if self._closed:
            return
        try:
            await self._retrying(
                "ChangeMessageVisibility",
                lambda: self._sqs.change_message_visibility(
                    QueueUrl=self.settings.queue_url,
                    ReceiptHandle=message.receipt_handle,
                    VisibilityTimeout=seconds,
                ),
            )
        except (TransientError, ClientError, BotoCoreError) as exc:
            logger.warning(
                "source %s: %s: visibility not changed: %s", self.name, message.origin, exc
            )

    async def _release_buffer(self) -> None:
        """Received but never handed out: let another consumer have them now."""
        pending = list(self._buffer)
        self._buffer.clear()
        if self._closed:
            return  # they come back when their visibility timeout lapses
        for start in range(0, len(pending), 10):
            chunk = pending[start : start + 10]
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                for i, m in enumerate(chunk)
            ]
            try:
                response = await self._sqs.change_message_visibility_batch(
                    QueueUrl=self.settings.queue_url, Entries=entries
                )
            except (ClientError, BotoCoreError, *NETWORK_ERRORS) as exc:
                logger.warning("source %s: messages not released: %s", self.name, describe(exc))
                continue
            self.released_messages += len(response.get("Successful", []))

    # --- plumbing ----------------------------------------------------------------------

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Retry throttling and network failures; other errors go straight to the caller."""
        delay = FIRST_RETRY_DELAY
        attempt = 1
        while True:
            try:
                return await call()
            except (ClientError, *NETWORK_ERRORS) as exc:
                if not is_transient(exc):
                    raise
                self.failed_calls += 1
                if attempt >= CALL_ATTEMPTS:
                    raise TransientError(f"{what}: {describe(exc)}") from exc
                logger.warning("source %s: %s (will retry): %s", self.name, what, describe(exc))
            await asyncio.sleep(_jittered(delay))
            delay *= 2
            attempt += 1

    async def _close_if_drained(self) -> None:
        if self._stopping.is_set() and not self._iterating and not self._outstanding:
            await self._close()

    async def _close(self) -> None:
        if self._closed or self._stack is None:
            return
        # batches() may not have run its cleanup yet (a reader cancelled while it waited).
        await self._release_buffer()
        self._closed = True
        self._ready = False
        await self._stack.aclose()


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value or "-"}


def _jittered(delay: float) -> float:
    # Jitter spreads the retries of many consumers; it is not used for anything secret.
    return delay * random.uniform(0.5, 1.5)  # noqa: S311


def _create(name: str, settings: Mapping[str, Any], *, where: Where | None = None) -> Source:
    return SqsS3Source(name, SqsS3Settings.from_mapping(name, settings, where=where))


SOURCES.register("sqs-s3", _create)
