"""`trailguard run`: the same pipeline as replay, fed by streaming sources, with durable state.

Order of work, fixed so that nothing is lost and nothing is alerted twice:
  1. process a batch through the shard's pipeline, then drain the baselines' buffered work
     (what it finds belongs to this batch);
  2. hand its findings, alerts and responses to the sinks;
  3. at the flush interval (and at shutdown): flush the sinks, cut what changed in each shard
     since the last cut, save it (with the shard's fencing epoch), and only then acknowledge
     the batches the cut covers to their sources. Batches go on while a cut is saved; they
     belong to the next cut, and cuts are saved one at a time, in order.
A crash anywhere redelivers the unacknowledged batches to a pipeline restored from the last
saved state; the sinks recognise what they already wrote. A batch that fails in steps 1-2
is taken back out of its shard's state and nacked (see `Service._process`), so the state
saved in step 3 never holds a batch that was not handed to every sink.

Sources run as tasks feeding one bounded queue: when sinks or the state store are slow the
queue fills and the sources wait, which is the service's backpressure.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol

from detector.config import Settings
from detector.core.findings import Response
from detector.core.pipeline import Pipeline, PipelineFactory
from detector.core.state_delta import StateDelta
from detector.core.task_index import TaskIndex
from detector.dead_letter import DeadLetterFile
from detector.errors import DetectorError
from detector.heap import heap_for
from detector.metrics import BatchOutcome, Metrics, ParseErrorReason
from detector.records import EncodedMessages, PackedItems, Rejection, parse_items
from detector.sinks import Sink
from detector.sinks.jsonl import step_records
from detector.sources.base import DEFAULT_SHARD, Batch, ShardHooks, Source
from detector.state.store import FencedError, StateStore
from detector.tasks.index import load_task_index

logger = logging.getLogger(__name__)

# Retrying a failing sink or state store: first pause, and the longest.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
WAKE_SECONDS = 0.2


class ResponseHandler(Protocol):
    """Carries out a batch's responses after its sinks wrote (detector/responders/dispatch)."""

    async def handle(self, responses: Sequence[Response], *, arrival: datetime) -> Any: ...


def _ignore(_: Rejection) -> None:
    """Rejections of a batch being re-applied were already counted and dead-lettered."""


@dataclass(slots=True)
class _Output:
    """What one batch made: contract records for the sinks, responses for the responders."""

    arrival: datetime
    records: list[dict[str, Any]] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A batch handed to every sink, waiting for its state to be saved and to be acked."""

    batch: Batch
    started: float  # perf_counter when it was taken, for the batch duration


@dataclass(frozen=True, slots=True)
class _Cut:
    """What one flush saves: each changed shard's delta, and the batches they cover."""

    deltas: list[tuple[str, _Shard, StateDelta]]
    pending: list[_Pending]


@dataclass(slots=True)
class _Shard:
    pipeline: Pipeline
    epoch: int
    watermark: datetime | None = None  # newest event time seen: evictions go by event time
    dirty: bool = False


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        pipeline_factory: PipelineFactory,
        sources: Sequence[Source],
        sinks: Sequence[Sink],
        store: StateStore,
        owner: str,
        metrics: Metrics | None = None,
        dead_letter: IO[bytes] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        responders: ResponseHandler | None = None,
    ) -> None:
        self.settings = settings
        self._new_pipeline = pipeline_factory
        self.sources = list(sources)
        self.sinks = list(sinks)
        self.store = store
        self.owner = owner
        self.metrics = metrics
        self.dead_letter = DeadLetterFile(dead_letter) if dead_letter is not None else None
        self.responders = responders
        self._clock = clock
        self._shards: dict[str, _Shard] = {}
        self._pending: list[_Pending] = []
        self._saving: asyncio.Task[None] | None = None  # the save of the last cut, if running
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(
            maxsize=max(1, settings.service.queue_batches)
        )
        self._flush_now = False
        self._tasks = TaskIndex()
        self._heap = heap_for(settings.service.gc_freeze)
        self._stop_event: asyncio.Event | None = None
        self.restored = False
        self.stopping = False
        self.failed: str | None = None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.restored and all(source.ready for source in self.sources)

    def pipelines(self) -> list[Pipeline]:
        return [shard.pipeline for shard in self._shards.values()]

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then drain, flush, acknowledge and return."""
        for sink in self.sinks:
            await sink.open()
        # Sources other than Kafka's keyed partitions share one shard; claim and restore it
        # before the first batch so /readyz means "state restored".
        await self._shard(DEFAULT_SHARD)
        for source in self.sources:
            source.attach(self.store)
            source.attach_shards(ShardHooks(self.request_flush, self.forget))
            await source.start()
        self.restored = True
        pumps = [asyncio.create_task(self._pump(source)) for source in self.sources]
        self._stop_event = stop
        stopper = asyncio.create_task(self._stop_when(stop))
        try:
            await self._consume(len(pumps))
        finally:
            stopper.cancel()
            if not self.stopping:
                # Ended by a failure: sources must stop too, or wait_closed waits for ever.
                self.stopping = True
                for source in self.sources:
                    await source.stop()
            for task in pumps:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pumps, return_exceptions=True)
            await self._flush()
            await self._settle_saving()
            for source in self.sources:
                await source.wait_closed()
            for sink in self.sinks:
                await sink.close()
            if self.dead_letter is not None:
                self.dead_letter.flush()

    async def _stop_when(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stopping = True
        logger.info("stopping: finishing the current batches")
        for source in self.sources:
            await source.stop()

    async def _pump(self, source: Source) -> None:
        try:
            async for batch in source.batches():
                await self._queue.put(batch)
        except Exception as exc:
            self.failed = f"source {source.name}: {exc}"
            logger.exception("source %s failed; stopping so the service is restarted", source.name)
            # A service that silently lost one of its sources would look healthy while blind.
            if self._stop_event is not None:
                self._stop_event.set()
            raise
        finally:
            await self._queue.put(None)

    def request_flush(self) -> None:
        """Flush as soon as the batch in hand is done (a rebalance is waiting)."""
        self._flush_now = True

    async def forget(self, shards: Sequence[str]) -> None:
        """Drop shards this instance no longer owns; their state was saved by the flush."""
        for name in shards:
            shard = self._shards.pop(name, None)
            if shard is not None:
                self._heap.release()
                if shard.dirty:
                    logger.warning("shard %s forgotten with unsaved changes", name)
            logger.info("shard released", extra={"shard": name})

    async def _consume(self, running_sources: int) -> None:
        interval = max(0.05, float(self.settings.state.flush_interval_seconds))
        deadline = time.monotonic() + interval
        while running_sources:
            self._check_saving()
            # Wake at least every WAKE_SECONDS so a flush request is not left waiting.
            timeout = min(WAKE_SECONDS, max(0.0, deadline - time.monotonic()))
            try:
                batch = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                batch = None
            else:
                if batch is None:
                    running_sources -= 1
                    continue
                await self._process(batch)
            if self._flush_now or time.monotonic() >= deadline:
                self._flush_now = False
                await self._flush()
                deadline = time.monotonic() + interval

    # --- one batch -------------------------------------------------------------------------

    async def _process(self, batch: Batch) -> None:
        """Process one batch and send its results; the batch is acknowledged at the next flush.

        A batch that fails before every sink has taken its results is rolled back out of its
        shard (see `_rollback`) and nacked, so its source delivers it again. A failure that
        may pass (a retriable sink error while stopping) lets the run go on draining; any
        other failure stops the run after the rollback, and the final flush saves only what
        succeeded.
        """
        started = time.perf_counter()
        try:
            shard = await self._shard(batch.shard)
            output = await self._apply(shard, batch)
            # Send and respond: every sink and responder has the batch's results before its
            # state may be saved.
            await self._send(output.records)
            if self.responders is not None and output.responses:
                await self.responders.handle(output.responses, arrival=output.arrival)
            if self.metrics is not None:
                self.metrics.observe_decision(time.monotonic() - batch.arrived)
            # Kept until the flush for a rollback or a nack: packed, its records are not
            # objects the garbage collector walks on every full pass.
            if not isinstance(batch.items, PackedItems | EncodedMessages):
                batch.items = await asyncio.to_thread(PackedItems, batch.items)
        except BaseException as exc:
            await self._fail(batch, exc, started)
            if isinstance(exc, DetectorError) and exc.retriable and self.stopping:
                return
            raise
        shard.dirty = True
        self._pending.append(_Pending(batch, started))
        self._heap.settle()

    async def _apply(self, shard: _Shard, batch: Batch, *, replaying: bool = False) -> _Output:
        """Run the batch's records through the shard's pipeline; the contract records and
        the responses it made.

        The pipeline is synchronous; every `chunk_events` events the loop gets a turn, so a
        batch of any size never holds up the HTTP endpoints for longer than one chunk.
        `replaying` re-applies a batch already handled (after a rollback): no metrics, no
        rejections logged twice, and its records are not returned again.
        """
        metrics = None if replaying else self.metrics
        output = _Output(arrival=self._clock())
        reject = _ignore if replaying else functools.partial(self._reject, batch)
        chunk = max(1, self.settings.service.chunk_events)
        for count, (_, event) in enumerate(parse_items(batch.items, reject), start=1):
            result = shard.pipeline.process(event)
            if metrics is not None:
                metrics.observe_step(batch.source, result, output.arrival)
            if not result.duplicate:
                if shard.watermark is None or event.event_time > shard.watermark:
                    shard.watermark = event.event_time
                if not replaying:
                    output.records.extend(step_records(result))
                    output.responses.extend(result.responses)
            if count % chunk == 0:
                await asyncio.sleep(0)
        if shard.pipeline.baselines:
            # Before the batch's sink write, so drained findings are written, saved and
            # acknowledged with the batch; a rollback re-applies the batch and its drain.
            began = time.perf_counter()
            drained = shard.pipeline.drain()
            if metrics is not None:
                metrics.observe_drain(drained, seconds=time.perf_counter() - began)
            if not replaying:
                output.records.extend(step_records(drained))
                output.responses.extend(drained.responses)
        return output

    async def _send(self, records: list[dict[str, Any]]) -> None:
        metrics = self.metrics
        for sink in self.sinks:
            began = time.perf_counter()
            ok = False
            try:
                await self._retry(f"sink {sink.name}", functools.partial(sink.write, records))
                ok = True
            finally:
                if metrics is not None:
                    metrics.observe_sink_write(
                        sink.name, seconds=time.perf_counter() - began, ok=ok
                    )

    async def _fail(self, batch: Batch, exc: BaseException, started: float) -> None:
        """Leave no trace of a failed batch in its shard, then hand it back to its source."""
        logger.warning("batch from %s failed: %s", batch.source, exc)
        await self._rollback(batch.shard)
        if isinstance(exc, asyncio.CancelledError):
            return  # unsettled: the source delivers it again after the restart
        await self._nack(batch, exc, started)

    async def _rollback(self, name: str) -> None:
        """Put a shard back to its last saved snapshot plus the batches that succeeded since.

        The alternative, keeping uncommitted state apart from committed state, would have to
        be threaded through every part of the pipeline's state (sessions, dedup windows,
        alert dedup). Restoring the snapshot and re-applying the pending batches reuses what
        a restart does anyway; it costs a re-run of at most one flush interval of events,
        and only when a batch fails. Re-applied batches were already handed to every sink,
        so their records are not sent again. If the snapshot cannot be read, the shard is
        dropped and its pending batches are nacked too: the next batch restores it.
        """
        # The save in progress may hold this shard's last cut: restore from it, not before it.
        await self._saved_so_far()
        shard = self._shards.get(name)
        if shard is None:
            return
        fresh = _Shard(pipeline=self._tracking_pipeline(), epoch=shard.epoch)
        fresh.pipeline.set_tasks(self._tasks)
        # Until the rebuild is done, nothing may save the state that includes the failure.
        del self._shards[name]
        self._heap.release()
        try:
            snapshot = await asyncio.to_thread(self.store.load, name)
            if snapshot is not None:
                await asyncio.to_thread(fresh.pipeline.restore, snapshot)
            for pending in self._pending:
                if pending.batch.shard == name:
                    await self._apply(fresh, pending.batch, replaying=True)
                    fresh.dirty = True
        except Exception as exc:
            logger.exception("shard %s could not be rolled back; dropping it", name)
            await self._drop(name, exc)
            return
        self._shards[name] = fresh

    async def _drop(self, name: str, exc: BaseException) -> None:
        """Forget a shard's in-memory pipeline and nack every batch pending in it."""
        if self._shards.pop(name, None) is not None:
            self._heap.release()
        keep: list[_Pending] = []
        for pending in self._pending:
            if pending.batch.shard == name:
                await self._nack(pending.batch, exc, pending.started)
            else:
                keep.append(pending)
        self._pending = keep

    async def _nack(self, batch: Batch, exc: BaseException, started: float) -> None:
        await batch.nack(exc)
        if self.metrics is not None:
            self.metrics.observe_batch(
                batch.source, seconds=time.perf_counter() - started, outcome=BatchOutcome.NACKED
            )

    def _reject(self, batch: Batch, rejection: Rejection) -> None:
        source = batch.source
        logger.warning(
            "rejected record", extra={"origin": rejection.origin, "reason": rejection.reason}
        )
        if self.metrics is not None:
            kind = (
                ParseErrorReason.INVALID_JSON
                if rejection.undecodable
                else ParseErrorReason.INVALID_RECORD
            )
            self.metrics.parse_error(source, kind)
        # A source with a dead letter of its own (the watched directory's) keeps its rejects.
        dead_letter = batch.dead_letter if batch.dead_letter is not None else self.dead_letter
        if dead_letter is not None:
            dead_letter.add(origin=rejection.origin, error=rejection.reason, raw=rejection.raw)
            if self.metrics is not None:
                self.metrics.dead_lettered(source)

    async def _shard(self, name: str) -> _Shard:
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        epoch = await asyncio.to_thread(self.store.claim, name, self.owner)
        pipeline = self._tracking_pipeline()
        snapshot = await asyncio.to_thread(self.store.load, name)
        if snapshot is not None:
            # In a worker thread: a large shard takes seconds to rebuild, and the pipeline is
            # not visible to anything else until it is in `_shards`.
            await asyncio.to_thread(pipeline.restore, snapshot)
            self._heap.settle()
        if not self._shards:
            await self._retry("task registry", self._refresh_tasks)
        pipeline.set_tasks(self._tasks)
        logger.info("shard claimed", extra={"shard": name, "epoch": epoch})
        shard = _Shard(pipeline=pipeline, epoch=epoch)
        self._shards[name] = shard
        return shard

    def _tracking_pipeline(self) -> Pipeline:
        """A new pipeline that remembers what changes, so a flush saves only that."""
        pipeline = self._new_pipeline()
        pipeline.track_changes()
        return pipeline

    # --- flush and acknowledge ------------------------------------------------------------

    async def _flush(self) -> None:
        """Cut each changed shard's delta, then flush the sinks, save the deltas and
        acknowledge the batches they cover while later batches go on (`_save`).

        Only the cut holds the batches up. One save runs at a time; the next flush first
        waits for the one before, so deltas reach the store in the order they were cut.
        """
        await self._settle_saving()
        if not self._pending and not any(s.dirty for s in self._shards.values()):
            return
        started = time.perf_counter()
        try:
            if self.dead_letter is not None:
                self.dead_letter.flush()
            # Read before the cut, while no save holds the store: the next batches bind the
            # tasks started since the last flush and flag use of tasks ended since.
            await self._retry("task registry", self._refresh_tasks)
            cut = await self._cut()
            if self.metrics is not None:
                self.metrics.observe_state_cut(time.perf_counter() - started)
        except BaseException:
            if self.metrics is not None:
                self.metrics.observe_state_flush(seconds=time.perf_counter() - started, ok=False)
            raise
        self._saving = asyncio.create_task(self._save(cut, started))

    async def _cut(self) -> _Cut:
        """Each changed shard's delta and the batches it covers, handed over to one save."""
        idle = timedelta(seconds=self.settings.state.session_idle_seconds)
        deltas: list[tuple[str, _Shard, StateDelta]] = []
        try:
            for name, shard in list(self._shards.items()):
                if not shard.dirty:
                    continue
                if shard.watermark is not None:
                    shard.pipeline.evict_idle(shard.watermark - idle)
                delta = await asyncio.to_thread(self._build_changes, shard)
                # From here on the delta is the save's: the pipeline tracks the next one.
                shard.pipeline.saved()
                deltas.append((name, shard, delta))
                shard.dirty = False
        except BaseException:
            # The deltas taken will not be saved: each of those shards saves whole next time.
            for _, shard, _ in deltas:
                shard.pipeline.unsaved()
                shard.dirty = True
            raise
        pending, self._pending = self._pending, []
        return _Cut(deltas, pending)

    def _build_changes(self, shard: _Shard) -> StateDelta:
        """Run in a worker thread: a large shard's delta takes a while to build. Nothing
        changes the pipeline meanwhile (batches wait for the cut); the HTTP endpoints only
        read it."""
        with self._heap.paused():
            return shard.pipeline.changes()

    async def _save(self, cut: _Cut, started: float) -> None:
        """Flush the sinks, store a cut's deltas, then acknowledge the batches whose state is
        stored. When the sinks cannot be flushed, nothing is saved and the cut's batches are
        nacked with the shards it cut.

        A shard whose delta cannot be stored is dropped with its batches nacked, the cut's
        and the ones after it: its pipeline has handed that delta over, so any later delta
        of it would skip those changes. A fenced shard belongs to another owner now; any
        other failure, once retries give up, is raised to stop the run (`_check_saving`).
        Cancelled (the loop is closing), the batches stay unsettled and are delivered again.
        """
        try:
            # A sink's flush covers what was written before it began (the sink contract), so
            # the batches after the cut may write meanwhile.
            for sink in self.sinks:
                await self._retry(f"sink {sink.name}", sink.flush)
        except Exception as exc:
            # The cut's results may not have reached the sinks: none of it is saved.
            for name, shard, _ in cut.deltas:
                if self._shards.get(name) is shard:
                    await self._drop(name, exc)
            for entry in cut.pending:
                await self._nack(entry.batch, exc, entry.started)
            if self.metrics is not None:
                self.metrics.observe_state_flush(seconds=time.perf_counter() - started, ok=False)
            raise
        lost: dict[str, BaseException] = {}
        failure: BaseException | None = None
        for name, shard, delta in cut.deltas:
            save = functools.partial(self.store.save, name, delta, epoch=shard.epoch)
            try:
                await self._retry("state store", functools.partial(asyncio.to_thread, save))
            except FencedError as exc:
                logger.warning("shard %s was claimed by another owner; dropping it: %s", name, exc)
                lost[name] = exc
            except Exception as exc:
                logger.exception("shard %s could not be saved; dropping it", name)
                lost[name] = exc
                failure = failure or exc
        for name, shard, _ in cut.deltas:
            if name in lost and self._shards.get(name) is shard:
                await self._drop(name, lost[name])
        for entry in cut.pending:
            why = lost.get(entry.batch.shard)
            if why is not None:
                await self._nack(entry.batch, why, entry.started)
                continue
            await entry.batch.ack()
            if self.metrics is not None:
                self.metrics.observe_batch(
                    entry.batch.source, seconds=time.perf_counter() - entry.started
                )
        if self.metrics is not None:
            self.metrics.observe_state_flush(
                seconds=time.perf_counter() - started, ok=failure is None
            )
        if failure is not None:
            raise failure

    def _check_saving(self) -> None:
        """Raise the failure of a save that has ended, once."""
        task = self._saving
        if task is not None and task.done():
            self._saving = None
            task.result()

    async def _settle_saving(self) -> None:
        """Wait for the save in progress; raise its failure, once."""
        task, self._saving = self._saving, None
        if task is not None:
            await task

    async def _saved_so_far(self) -> None:
        """Wait for the save in progress without taking its failure (`_check_saving` does)."""
        if self._saving is not None:
            await asyncio.wait({self._saving})

    async def _refresh_tasks(self) -> None:
        """Re-read the task registry (`task start` / `task end` write it while the service
        runs), so the next batches bind tasks started and flag use of tasks ended since."""
        keep = timedelta(seconds=self.settings.state.session_idle_seconds)
        read = functools.partial(load_task_index, self.store, now=self._clock(), keep=keep)
        tasks = await asyncio.to_thread(read)
        if tasks != self._tasks:
            self._tasks = tasks
            for shard in self._shards.values():
                shard.pipeline.set_tasks(tasks)

    async def _retry(self, what: str, call: Callable[[], Any]) -> None:
        """Retry retriable failures with backoff; anything else propagates and stops the run."""
        pause = RETRY_FIRST_SECONDS
        while True:
            try:
                await call()
            except DetectorError as exc:
                if not exc.retriable or self.stopping:
                    raise
                logger.warning("%s failed, retrying in %.1fs: %s", what, pause, exc)
            else:
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)
