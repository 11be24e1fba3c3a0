"""What the sources that keep their own position share (LookupEvents poller, watched files).

The batch that redelivers itself when the runtime fails it, and a sleep that ends early on
stop. (Their settings are validated like every adapter's, by `detector.config.parse_adapter`;
the CheckpointStore their positions are saved through is part of the Source protocol in
`detector.sources.base`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sized

from detector.records import BadInput, Record
from detector.sources.base import Batch

logger = logging.getLogger(__name__)

# A nacked batch is delivered this many more times before its records are dead-lettered.
REDELIVERIES = 3

Sleep = Callable[[float], Awaitable[None]]


def redeliverable_batch(
    source: str,
    items: Iterable[Record | BadInput],
    *,
    on_ack: Callable[[], None],
    requeue: Callable[[Batch], None],
    on_give_up: Callable[[], None] | None = None,
    failures: int = 0,
) -> Batch:
    """A Batch whose ack runs `on_ack` once and whose nack hands a copy to `requeue`.

    After REDELIVERIES failed deliveries the records come back as BadInput, so the runtime's
    ordinary handling dead-letters them and the ack still advances the position. A batch
    that cannot even be dead-lettered is dropped with an error, its position not advanced,
    and `on_give_up` runs. The copy carries the batch's items as they are when it is nacked
    (the service packs a processed batch's items), so nothing here holds the list the
    source built.
    """
    settled = False

    async def ack() -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        on_ack()

    async def nack(error: BaseException) -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        attempt = failures + 1
        held = batch.items
        count = len(held) if isinstance(held, Sized) else sum(1 for _ in held)
        again: Iterable[Record | BadInput]
        if attempt <= REDELIVERIES:
            logger.warning(
                "%s: a batch of %d records failed (%s); delivering it again (%d of %d)",
                source,
                count,
                error,
                attempt,
                REDELIVERIES,
            )
            again = held
        elif attempt == REDELIVERIES + 1:
            logger.error(
                "%s: a batch of %d records failed %d times (%s); dead-lettering it",
                source,
                count,
                attempt,
                error,
            )
            reason = f"batch failed {attempt} times: {error}"
            again = [
                item if isinstance(item, BadInput) else BadInput(item.origin, reason, item.value)
                for item in held
            ]
        else:
            logger.error(
                "%s: dropping a batch of %d records that could not be dead-lettered: %s",
                source,
                count,
                error,
            )
            if on_give_up is not None:
                on_give_up()
            return
        requeue(
            redeliverable_batch(
                source,
                again,
                on_ack=on_ack,
                requeue=requeue,
                on_give_up=on_give_up,
                failures=attempt,
            )
        )

    batch = Batch(source=source, items=items, ack=ack, nack=nack)
    return batch


async def sleep_until_stopped(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep that setting `stopping` cuts short, so `stop` never waits out a poll interval."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
