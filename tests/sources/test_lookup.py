"""The LookupEvents poller against a real boto3 CloudTrail client wrapped by botocore's Stubber.

moto does not implement CloudTrail LookupEvents, so each test queues the exact responses (and
the exact request parameters it expects) on `botocore.stub.Stubber`. The CloudTrailEvent
strings are real records from the Stratus Red Team detonation logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3  # type: ignore[import-untyped, unused-ignore]
import orjson
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped, unused-ignore]

from detector.errors import ConfigError
from detector.records import BadInput, Record
from detector.sources.base import SOURCES, Batch
from detector.sources.lookup import BACKOFF_FIRST_SECONDS, LookupSource
from detector.sources.polling import REDELIVERIES
from detector.testing.conformance import MemoryCheckpoints
from tests.conftest import CLOUDTRAIL

REGION = "us-east-1"
NOW = datetime(2024, 7, 30, 22, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
OVERLAP = timedelta(seconds=900)

LINES = (
    (CLOUDTRAIL / "stratus_detonation_logs" / "events.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()[:8]
)
RECORDS = [orjson.loads(line) for line in LINES]  # oldest first, as the file is sorted


def at(index: int) -> datetime:
    return datetime.fromisoformat(RECORDS[index]["eventTime"])


def event_id(index: int) -> str:
    return str(RECORDS[index]["eventID"])


def summary(index: int, *, cloudtrail_event: str | None = None) -> dict[str, Any]:
    """One LookupEvents result for record `index`, shaped as the API returns it."""
    record = RECORDS[index]
    return {
        "EventId": record["eventID"],
        "EventName": record["eventName"],
        "EventSource": record["eventSource"],
        "EventTime": at(index),
        "CloudTrailEvent": LINES[index] if cloudtrail_event is None else cloudtrail_event,
    }


def page(*indexes: int, token: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"Events": [summary(i) for i in indexes]}
    if token is not None:
        response["NextToken"] = token
    return response


def request(start: datetime, end: datetime, token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"StartTime": start, "EndTime": end, "MaxResults": 50}
    if token is not None:
        params["NextToken"] = token
    return params


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Sleeps:
    """Records requested sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def new_client(region: str = REGION) -> Any:
    return boto3.client(
        "cloudtrail", region_name=region, aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = new_client()
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def make_source(
    client: Any,
    *,
    store: MemoryCheckpoints | None = None,
    clock: Clock | None = None,
    sleeps: Sleeps | None = None,
    **settings: Any,
) -> LookupSource:
    source = LookupSource(
        "trail",
        {"regions": [REGION], **settings},
        client_factory=lambda region: client,
        now=clock or Clock(NOW),
        sleep=sleeps or Sleeps(),
    )
    if store is not None:
        source.attach(store)
    return source


async def poll(source: LookupSource) -> list[Batch]:
    return [batch async for batch in source.poll()]


def ids(batch: Batch) -> list[str]:
    return [item.value["eventID"] for item in batch.items if isinstance(item, Record)]


async def test_pages_are_joined_and_delivered_oldest_first(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response("lookup_events", page(7, 6, 5, 4, token="p2"), request(NOW - HOUR, NOW))
    stubber.add_response("lookup_events", page(3, 2, 1, 0), request(NOW - HOUR, NOW, "p2"))
    source = make_source(client)
    await source.start()
    assert not source.ready

    batches = await poll(source)

    assert source.ready
    assert len(batches) == 1
    assert ids(batches[0]) == [event_id(i) for i in range(8)]
    assert [item.origin for item in batches[0].items] == [
        f"trail:{REGION}:{event_id(i)}" for i in range(8)
    ]
    assert batches[0].items[0] == Record(f"trail:{REGION}:{event_id(0)}", RECORDS[0])


async def test_events_read_again_in_the_overlap_are_suppressed(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    clock = Clock(NOW)
    source = make_source(client, clock=clock)
    await source.start()
    stubber.add_response("lookup_events", page(3, 2, 1, 0), request(NOW - HOUR, NOW))
    [first] = await poll(source)
    assert ids(first) == [event_id(i) for i in range(4)]
    await first.ack()

    # Late deliveries: 4 and 5 appeared, 2 and 3 come back because of the overlap.
    clock.now = NOW + timedelta(minutes=1)
    stubber.add_response("lookup_events", page(5, 4, 3, 2), request(at(3) - OVERLAP, clock.now))
    [second] = await poll(source)
    assert ids(second) == [event_id(4), event_id(5)]
    await second.ack()

    # Nothing new at all: no batch.
    clock.now = NOW + timedelta(minutes=2)
    stubber.add_response("lookup_events", page(5, 4), request(at(5) - OVERLAP, clock.now))
    assert await poll(source) == []


async def test_checkpoint_is_saved_on_ack_and_a_new_source_resumes_from_it(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    store = MemoryCheckpoints()
    source = make_source(client, store=store)
    await source.start()
    stubber.add_response("lookup_events", page(3, 2, 1, 0), request(NOW - HOUR, NOW))
    [batch] = await poll(source)
    assert store.values == {}  # delivered is not processed

    await batch.ack()
    assert store.values == {f"lookup:trail:{REGION}": "2024-07-30T21:31:15Z"}
    await source.stop()

    later = NOW + timedelta(minutes=5)
    restarted = make_source(client, store=store, clock=Clock(later))
    await restarted.start()
    stubber.add_response("lookup_events", page(5, 4, 3), request(at(3) - OVERLAP, later))
    [resumed] = await poll(restarted)
    # A new process has no eventID memory: the overlap comes again and the runtime's
    # eventID window drops event 3.
    assert ids(resumed) == [event_id(3), event_id(4), event_id(5)]


async def test_a_nacked_batch_is_delivered_again_and_only_its_ack_saves(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    store = MemoryCheckpoints()
    clock = Clock(NOW)
    source = make_source(client, store=store, clock=clock)
    await source.start()
    stubber.add_response("lookup_events", page(1, 0), request(NOW - HOUR, NOW))
    [batch] = await poll(source)
    await batch.nack(RuntimeError("sink down"))
    assert store.values == {}

    clock.now = NOW + timedelta(minutes=1)
    stubber.add_response("lookup_events", page(1, 0), request(at(1) - OVERLAP, clock.now))
    [again] = await poll(source)
    assert again.items == batch.items
    await again.ack()
    assert store.values == {f"lookup:trail:{REGION}": "2024-07-30T21:31:12Z"}


async def test_the_checkpoint_never_passes_a_nacked_batch(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    store = MemoryCheckpoints()
    clock = Clock(NOW)
    source = make_source(client, store=store, clock=clock)
    await source.start()
    stubber.add_response("lookup_events", page(1, 0), request(NOW - HOUR, NOW))
    [first] = await poll(source)
    await first.nack(RuntimeError("sink down"))

    clock.now = NOW + timedelta(minutes=1)
    stubber.add_response("lookup_events", page(3, 2), request(at(1) - OVERLAP, clock.now))
    again, later = await poll(source)
    assert again.items == first.items
    # The later window is done, the earlier one is not: a restart must read the earlier one.
    await later.ack()
    assert datetime.fromisoformat(store.values[f"lookup:trail:{REGION}"]) == at(0)
    await again.ack()
    assert datetime.fromisoformat(store.values[f"lookup:trail:{REGION}"]) == at(3)


async def test_a_batch_failing_every_redelivery_is_dead_lettered(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    store = MemoryCheckpoints()
    source = make_source(client, store=store)
    await source.start()
    stubber.add_response("lookup_events", page(0), request(NOW - HOUR, NOW))
    [batch] = await poll(source)
    for _ in range(REDELIVERIES):
        await batch.nack(RuntimeError("boom"))
        stubber.add_response("lookup_events", page(), request(at(0) - OVERLAP, NOW))
        [batch] = await poll(source)
        assert all(isinstance(item, Record) for item in batch.items)
    await batch.nack(RuntimeError("boom"))
    stubber.add_response("lookup_events", page(), request(at(0) - OVERLAP, NOW))
    [dead] = await poll(source)
    [item] = dead.items
    assert isinstance(item, BadInput)
    assert item.origin == f"trail:{REGION}:{event_id(0)}"
    assert item.reason == f"batch failed {REDELIVERIES + 1} times: boom"
    assert item.raw == RECORDS[0]
    await dead.ack()
    assert store.values == {f"lookup:trail:{REGION}": "2024-07-30T21:31:10Z"}


async def test_throttling_backs_off_and_retries(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    sleeps = Sleeps()
    source = make_source(client, sleeps=sleeps)
    await source.start()
    stubber.add_client_error(
        "lookup_events",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
        expected_params=request(NOW - HOUR, NOW),
    )
    stubber.add_response("lookup_events", page(1, 0), request(NOW - HOUR, NOW))

    [batch] = await poll(source)

    assert ids(batch) == [event_id(0), event_id(1)]
    assert BACKOFF_FIRST_SECONDS in sleeps.delays


async def test_other_errors_skip_the_round_and_the_window_is_read_next_round(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    clock = Clock(NOW)
    source = make_source(client, clock=clock)
    await source.start()
    stubber.add_client_error(
        "lookup_events",
        service_error_code="AccessDeniedException",
        http_status_code=400,
        expected_params=request(NOW - HOUR, NOW),
    )
    assert await poll(source) == []
    assert not source.ready

    clock.now = NOW + timedelta(minutes=1)
    stubber.add_response("lookup_events", page(0), request(NOW - HOUR, NOW))
    [batch] = await poll(source)
    assert ids(batch) == [event_id(0)]


async def test_a_window_larger_than_max_pages_carries_on_next_round(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    clock = Clock(NOW)
    source = make_source(client, clock=clock, max_pages_per_poll=1)
    await source.start()
    stubber.add_response("lookup_events", page(3, 2, token="p2"), request(NOW - HOUR, NOW))
    assert await poll(source) == []

    clock.now = NOW + timedelta(minutes=1)  # the window stays fixed while it is read
    stubber.add_response("lookup_events", page(1, 0), request(NOW - HOUR, NOW, "p2"))
    [batch] = await poll(source)
    assert ids(batch) == [event_id(i) for i in range(4)]


async def test_a_bad_cloudtrail_event_string_becomes_bad_input(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    truncated = LINES[1][:40]
    response = {
        "Events": [
            summary(2, cloudtrail_event="[1, 2]"),
            summary(1, cloudtrail_event=truncated),
            summary(0),
        ]
    }
    stubber.add_response("lookup_events", response, request(NOW - HOUR, NOW))
    source = make_source(client)
    await source.start()

    [batch] = await poll(source)

    good, broken, not_object = batch.items
    assert isinstance(good, Record)
    assert isinstance(broken, BadInput)
    assert broken.origin == f"trail:{REGION}:{event_id(1)}"
    assert REGION in broken.origin and event_id(1) in broken.origin
    assert "not valid JSON" in broken.reason
    assert broken.raw == truncated
    assert isinstance(not_object, BadInput)
    assert not_object.origin == f"trail:{REGION}:{event_id(2)}"
    assert "not a JSON object" in not_object.reason


async def test_one_batch_and_one_checkpoint_per_region() -> None:
    west = new_client("eu-west-1")
    east = new_client(REGION)
    clients = {"eu-west-1": west, REGION: east}
    store = MemoryCheckpoints()
    source = LookupSource(
        "trail",
        {"regions": [REGION, "eu-west-1"]},
        client_factory=clients.__getitem__,
        now=Clock(NOW),
        sleep=Sleeps(),
    )
    source.attach(store)
    with Stubber(east) as east_stub, Stubber(west) as west_stub:
        east_stub.add_response("lookup_events", page(1, 0), request(NOW - HOUR, NOW))
        west_stub.add_response("lookup_events", page(3, 2), request(NOW - HOUR, NOW))
        await source.start()
        east_batch, west_batch = await poll(source)
        for batch in (east_batch, west_batch):
            await batch.ack()
    assert ids(east_batch) == [event_id(0), event_id(1)]
    assert ids(west_batch) == [event_id(2), event_id(3)]
    assert store.values == {
        f"lookup:trail:{REGION}": "2024-07-30T21:31:12Z",
        "lookup:trail:eu-west-1": "2024-07-30T21:31:15Z",
    }


async def test_batches_ends_after_stop(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("lookup_events", page(0), request(NOW - HOUR, NOW))
    source = make_source(client)
    await source.start()
    delivered = []
    async for batch in source.batches():
        delivered.append(batch)
        await batch.ack()
        await source.stop()
    assert [ids(b) for b in delivered] == [[event_id(0)]]


def test_registered_as_lookup() -> None:
    assert SOURCES.get("lookup") is LookupSource


def test_defaults() -> None:
    source = LookupSource("trail", {"type": "lookup", "name": "trail", "regions": [REGION]})
    assert source.poll_interval == 60
    assert source.overlap == timedelta(seconds=900)
    assert source.lookback == timedelta(seconds=3600)
    assert source.endpoint_url is None
    assert source.max_pages == 20


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({}, "regions"),
        ({"regions": "us-east-1"}, "regions"),
        ({"regions": []}, "regions"),
        ({"regions": ["us-east-1", ""]}, "regions[1]"),
        ({"regions": ["us-east-1", "us-east-1"]}, "regions"),
        ({"regions": [REGION], "poll_interval_seconds": 0}, "poll_interval_seconds"),
        ({"regions": [REGION], "poll_interval_seconds": "60"}, "poll_interval_seconds"),
        ({"regions": [REGION], "overlap_seconds": -1}, "overlap_seconds"),
        ({"regions": [REGION], "lookback_seconds": True}, "lookback_seconds"),
        ({"regions": [REGION], "endpoint_url": 5}, "endpoint_url"),
        ({"regions": [REGION], "max_pages_per_poll": 0}, "max_pages_per_poll"),
        ({"regions": [REGION], "max_pages_per_pol": 3}, "max_pages_per_pol"),
    ],
)
def test_invalid_settings_name_the_key(settings: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"sources.trail.{key}")):
        LookupSource("trail", settings)
